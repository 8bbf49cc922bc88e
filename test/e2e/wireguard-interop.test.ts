// udptun speaks WireGuard with udptun and with both wireguard-go releases (Debian bookworm's
// 0.0.20220316; trixie's 0.0.20231211, with offloads), in namespaces: one udptun (U) has all
// three as peers. With each: U initiates, then the other side does (the counters and logs of
// both say who); ping and iperf3 TCP and UDP both ways; a large TCP transfer both ways,
// checked byte for byte, with every udptun offload on. Needs root, iproute2, iperf3, and both
// wireguard-go releases (the trixie one from scripts/fetch-wireguard-trixie.sh): missing ones
// fail the file rather than skip it, so CI runs against both.
import t from "tap";
import type { Test } from "tap";
import { Lab } from "./lib/netns.ts";
import type { Host } from "./lib/netns.ts";
import { iperf } from "./lib/iperf.ts";
import { run } from "./lib/proc.ts";
import { tcpStream } from "./lib/transfer.ts";
import { scrape, startInstance, stopInstance, sum, wireguardAddresses, wireguardConfig, wireguardEnd, wireguardPeer } from "./lib/udptun.ts";
import type { Instance, WireGuardEnd } from "./lib/udptun.ts";
import { BOOKWORM, TRIXIE, missingBins } from "./lib/wireguard-bins.ts";
import type { WireguardBins } from "./lib/wireguard-bins.ts";
import { killWireguardGo, startWireguardGo, wg } from "./lib/wireguard-go.ts";
import type { WireguardGo } from "./lib/wireguard-go.ts";

const lab = new Lab();
let uEnd: WireGuardEnd, vEnd: WireGuardEnd;
let u: Instance, v: Instance;
const wgs: WireguardGo[] = [];

/** The far side of one pair, U's peer `name`, whatever implements it. */
interface Other {
  name: string;
  /** What it is, for test names. */
  label: string;
  host: Host;
  /** Its tunnel address, IPv4 and IPv6. */
  addr4: string;
  addr6: string;
  /** Handshakes it has initiated towards U so far. */
  initiated(): Promise<number>;
  /** Its latest handshake with U, seconds since the epoch (0: none). */
  latestHandshake(): Promise<number>;
  /** Makes it forget its session with U, so its next packet to U starts a handshake. */
  forget(): Promise<void>;
}

const others: Other[] = [];

const uCounter = async (peer: string, event: string) => sum(await scrape(lab, u), "udptun_wireguard_handshakes_total", { peer, event });

function udptunOther(host: Host, n: number): Other {
  return {
    name: vEnd.name, label: "udptun", host, addr4: `10.78.0.${n}`, addr6: `fd78::${n}`,
    initiated: async () => sum(await scrape(lab, v), "udptun_wireguard_handshakes_total", { peer: "u", event: "initiated" }),
    latestHandshake: async () => sum(await scrape(lab, v), "udptun_wireguard_latest_handshake_timestamp_seconds", { peer: "u" }),
    // A new process with the same key: no session, and a handshake timestamp U accepts.
    forget: async () => {
      const { code } = await stopInstance(v);
      if (code !== 0) throw new Error(`udptun v exited ${code} on SIGTERM`);
      v = await startInstance(lab, host, "v", wireguardConfig(vEnd, [wireguardPeer(uEnd)]));
    },
  };
}

async function wireguardGoOther(name: string, host: Host, n: number, bins: WireguardBins): Promise<Other> {
  // verbose: it logs every handshake message it sends and receives
  const g = await startWireguardGo(lab, host, name, { bins, address: wireguardAddresses(n), logLevel: "verbose" });
  wgs.push(g);
  return {
    name, label: `${bins.release}'s wireguard-go`, host, addr4: `10.78.0.${n}`, addr6: `fd78::${n}`,
    initiated: async () => g.daemon.output().match(/ - Sending handshake initiation$/gm)?.length ?? 0,
    latestHandshake: async () => (await g.show()).peers.find((p) => p.publicKey === uEnd.publicKey)?.latestHandshake ?? 0,
    // Removed and added again: the peer starts over with no keypair.
    forget: async () => {
      await wg(lab, host, bins, ["set", g.device, "peer", uEnd.publicKey, "remove"]);
      await g.setPeers([wireguardPeer(uEnd)]);
    },
  };
}

t.before(async () => {
  for (const bins of [BOOKWORM, TRIXIE]) {
    const missing = missingBins(bins);
    if (missing) throw new Error(missing);
  }
  await lab.up();
  const hosts = await Promise.all([lab.addHost("u", 1), lab.addHost("v", 2), lab.addHost("b", 3), lab.addHost("t", 4)]);
  uEnd = wireguardEnd("u", hosts[0], 1);
  vEnd = wireguardEnd("v", hosts[1], 2);
  // others[i + 1] is wgs[i]
  others.push(udptunOther(hosts[1], 2), await wireguardGoOther("bookworm", hosts[2], 3, BOOKWORM), await wireguardGoOther("trixie", hosts[3], 4, TRIXIE));
  u = await startInstance(lab, hosts[0], "u", wireguardConfig(uEnd, [wireguardPeer(vEnd), ...wgs.map((g, i) => ({ name: others[i + 1].name, ...g.asPeer() }))]));
  v = await startInstance(lab, hosts[1], "v", wireguardConfig(vEnd, [wireguardPeer(uEnd)]));
  for (const g of wgs) await g.setPeers([wireguardPeer(uEnd)]);
});

t.teardown(async () => {
  for (const inst of [u, v]) if (inst && inst.daemon.child.exitCode === null) inst.daemon.child.kill("SIGKILL");
  for (const g of wgs) await killWireguardGo(g);
  await lab.destroy();
});

const ping = async (from: Host, to: string) =>
  run(...lab.exec(from, "ping", [...(to.includes(":") ? ["-6"] : []), "-c", "3", "-i", "0.2", "-w", "10", to]));

async function pings(t: Test, from: Host, to: string): Promise<void> {
  const r = await ping(from, to);
  t.equal(r.code, 0, `ping ${from.ns} -> ${to}`);
  t.match(r.stdout, /3 received/, `${to}: 3 of 3 answered`);
}

// Floors far below what either implementation does here: they catch a broken path, not a slow machine.
const TCP_FLOOR = 50e6;
// Moderate: on a busy machine a receiver left waiting for a CPU overflows its socket
// (Udp.RcvbufErrors), and that loss would be counted here as the tunnel's. Bookworm's
// wireguard-go, reading one datagram per call, did so at 100 Mbit/s; the receiving iperf3
// gets udptun's 4 MiB buffer (its default, 208 KiB, is 33 ms at this rate).
const UDP_RATE = "50M";
const IPERF_UDP_BUFFER = "4M";
const TRANSFER_BYTES = 64 << 20;

/** iperf3 runs from U: as it is, and reversed (-R). */
const directions = (o: Other): [string, string[]][] => [[`U -> ${o.name}`, []], [`${o.name} -> U`, ["-R"]]];

t.test("every udptun offload is on", async (t) => {
  const m = await scrape(lab, u);
  for (const name of ["udp_gso", "udp_gro", "tun", "coalesce"]) t.equal(sum(m, "udptun_offload_active", { offload: name }), 1, `U: ${name} active`);
});

// The others exist once t.before has run: one test per pair, each picking its own by index.
for (const [i, label] of ["udptun", "bookworm's wireguard-go", "trixie's wireguard-go"].entries()) {
  t.test(`udptun <-> ${label}`, async (t) => {
    const o = others[i];
    t.equal(o.label, label, "the pair under test");
    const uHost = u.host;

    t.test("udptun initiates", async (t) => {
      const [uBefore, oBefore] = [await uCounter(o.name, "initiated"), await o.initiated()];
      t.equal(await o.latestHandshake(), 0, "no handshake yet");
      await pings(t, uHost, o.addr4);
      t.equal(await uCounter(o.name, "initiated") - uBefore, 1, "U initiated one handshake");
      t.ok(await uCounter(o.name, "completed") >= 1, "and completed it");
      t.equal(await o.initiated() - oBefore, 0, `${o.name} initiated none`);
      const latest = await o.latestHandshake();
      t.ok(latest > Date.now() / 1000 - 30, `${o.name}'s latest handshake (${latest}) is recent`);
    });

    t.test(`${o.name} initiates`, async (t) => {
      await o.forget();
      t.equal(await o.latestHandshake(), 0, `${o.name} starts over with no session`);
      const uInitiated = await uCounter(o.name, "initiated");
      const uCompleted = await uCounter(o.name, "completed");
      const oBefore = await o.initiated();
      await pings(t, o.host, "10.78.0.1");
      t.equal(await o.initiated() - oBefore, 1, `${o.name} initiated one handshake`);
      t.equal(await uCounter(o.name, "initiated"), uInitiated, "U initiated none");
      t.ok(await uCounter(o.name, "completed") > uCompleted, "U completed one more (as responder)");
      t.ok(await o.latestHandshake() > Date.now() / 1000 - 30, `${o.name}'s latest handshake is recent`);
    });

    t.test("ping both ways, IPv4 and IPv6 inside", async (t) => {
      for (const [from, to] of [[uHost, o.addr4], [o.host, "10.78.0.1"], [uHost, o.addr6], [o.host, "fd78::1"]] as const) await pings(t, from, to);
    });

    t.test("iperf3 TCP both ways", async (t) => {
      for (const [name, args] of directions(o)) {
        const r = await iperf(lab, uHost, o.host, ["-c", o.addr4, ...args], 2);
        t.ok(r.bps > TCP_FLOOR, `${name}: ${(r.bps / 1e6).toFixed(0)} Mbit/s > ${TCP_FLOOR / 1e6}`);
      }
    });

    t.test(`iperf3 UDP both ways at ${UDP_RATE}bit/s`, async (t) => {
      for (const [name, args] of directions(o)) {
        const r = await iperf(lab, uHost, o.host, ["-u", "-b", UDP_RATE, "-l", "1300", "-w", IPERF_UDP_BUFFER, "-c", o.addr4, ...args], 2);
        t.ok(r.bps > 25e6, `${name}: ${(r.bps / 1e6).toFixed(0)} Mbit/s received`);
        t.ok(r.lostPercent < 5, `${name}: loss ${r.lostPercent.toFixed(2)}% < 5%`);
      }
    });

    t.test(`${TRANSFER_BYTES >> 20} MiB over TCP both ways, byte for byte`, async (t) => {
      for (const [from, to, addr] of [[uHost, o.host, o.addr4], [o.host, uHost, "10.78.0.1"]] as const) {
        const r = await tcpStream(lab, from, to, addr, 5301, TRANSFER_BYTES);
        t.equal(r.receivedBytes, TRANSFER_BYTES, `${from.ns} -> ${to.ns}: every byte arrived`);
        t.equal(r.receivedSha, r.sentSha, `${from.ns} -> ${to.ns}: as sent (sha256)`);
      }
    });
  });
}

t.test("U and V stop cleanly, every buffer back", async (t) => {
  for (const inst of [u, v]) {
    const { code } = await stopInstance(inst);
    t.equal(code, 0, `${inst.host.ns}: exit code 0`);
    const final = JSON.parse(inst.daemon.output().split("\n").find((l) => l.includes('"msg":"stopped"')) ?? "{}").final;
    t.equal(final?.pools.device.inUse, 0, `${inst.host.ns}: device pool all returned`);
    t.equal(final?.pools.network.inUse, 0, `${inst.host.ns}: network pool all returned`);
  }
});
