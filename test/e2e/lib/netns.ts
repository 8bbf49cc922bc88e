// A small network of namespaces for end-to-end tests: a hub namespace with a bridge, and
// hosts attached to it by veth pairs, all on 198.18.0.0/24 (the benchmarking range) and
// fd18::/64. Every name carries a random tag so runs never collide; destroy() removes all.
import { randomBytes } from "node:crypto";
import { must, run } from "./proc.ts";

export interface Host {
  ns: string;
  ip4: string;
  ip6: string;
}

export class Lab {
  readonly tag = `ut${randomBytes(3).toString("hex")}`;
  readonly hub = `${this.tag}-hub`;
  readonly hosts = new Map<string, Host>();
  private created: string[] = [];

  async up(): Promise<void> {
    await this.addNs(this.hub);
    await must("ip", ["-n", this.hub, "link", "add", "br0", "type", "bridge"]);
    await must("ip", ["-n", this.hub, "link", "set", "br0", "up"]);
  }

  /** Adds a host on the bridge with address 198.18.0.<n> and fd18::<n>. */
  async addHost(name: string, n: number): Promise<Host> {
    const ns = `${this.tag}-${name}`;
    await this.addNs(ns);
    const hostSide = `${this.tag}${name}`.slice(0, 15);
    await must("ip", ["link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", hostSide, "netns", this.hub]);
    await must("ip", ["-n", this.hub, "link", "set", hostSide, "master", "br0", "up"]);
    const host = { ns, ip4: `198.18.0.${n}`, ip6: `fd18::${n}` };
    await must("ip", ["-n", ns, "addr", "add", `${host.ip4}/24`, "dev", "eth0"]);
    await must("ip", ["-n", ns, "-6", "addr", "add", `${host.ip6}/64`, "dev", "eth0", "nodad"]);
    await must("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    this.hosts.set(name, host);
    return host;
  }

  /** Gives the hub itself an address, so a monitoring process there can reach every host. */
  async addressHub(n: number): Promise<string> {
    await must("ip", ["-n", this.hub, "addr", "add", `198.18.0.${n}/24`, "dev", "br0"]);
    return `198.18.0.${n}`;
  }

  exec(host: Host | string, cmd: string, args: string[]): [string, string[]] {
    return ["ip", ["netns", "exec", typeof host === "string" ? host : host.ns, cmd, ...args]];
  }

  async destroy(): Promise<void> {
    // Killing what still runs inside, then the namespaces (their veths go with them).
    for (const ns of this.created.reverse()) {
      const pids = (await run("ip", ["netns", "pids", ns])).stdout.split("\n").filter(Boolean);
      for (const pid of pids) {
        try { process.kill(Number(pid), "SIGKILL"); } catch { /* already gone */ }
      }
      await run("ip", ["netns", "del", ns]);
    }
    this.created = [];
  }

  private async addNs(ns: string): Promise<void> {
    await must("ip", ["netns", "add", ns]);
    this.created.push(ns);
    await must("ip", ["-n", ns, "link", "set", "lo", "up"]);
  }
}
