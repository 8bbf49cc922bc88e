// The configuration API's stages at 40 peers x 2,500 allowed IPs, in process and in CPU time
// (the machine may be shared), for bench/uapi-scale.ts and the unit test that bounds them:
//   parse    the request text, as `wg setconf` writes it, through LineReader and SetParser in
//            the 64 KiB chunks a unix socket delivers
//   plan     plan() and commit on an empty ModelDevice
//   resync   the same configuration again as `wg syncconf` sends it (no replace_peers):
//            parse and plan, and nothing changes
//   get      the whole get reply (serializeGet), every chunk
import { Readable } from "node:stream";
import { LineReader } from "../../src/uapi/lines.ts";
import { ModelDevice } from "../../src/uapi/model.ts";
import { SetParser } from "../../src/uapi/protocol.ts";
import { serializeGet } from "../../src/uapi/serialize.ts";
import type { SetRequest } from "../../src/uapi/target.ts";

export const PEERS = 40;
export const PER_PEER = 2500;
const SOCKET_CHUNK = 64 * 1024;

const hex = (seed: number): string => seed.toString(16).padStart(8, "0").repeat(8);

/** The request body after `set=1`, through its blank line, in wg's order (ipc-uapi.h): v4
 * host routes (whose keys are the widest integers), v4 networks, v6 hosts and networks. */
export function scaleRequest(opts: { replacePeers: boolean }): Buffer {
  const lines = [`private_key=${hex(0x7f000001)}`, "listen_port=56100"];
  if (opts.replacePeers) lines.push("replace_peers=true");
  for (let p = 0; p < PEERS; p++) {
    lines.push(`public_key=${hex(0x10000 + p)}`, `endpoint=192.0.2.${p + 1}:56101`, "persistent_keepalive_interval=25", "replace_allowed_ips=true");
    for (let i = 0; i < 1250; i++) lines.push(`allowed_ip=198.${18 + (p >> 5)}.${((p & 31) << 3) | (i >> 8)}.${i & 255}/32`);
    for (let i = 0; i < 500; i++) lines.push(`allowed_ip=10.${p}.${i >> 3}.${(i & 7) * 32}/27`);
    for (let i = 0; i < 500; i++) lines.push(`allowed_ip=fd00:${(p + 1).toString(16)}::${(i + 1).toString(16)}/128`);
    for (let i = 0; i < 250; i++) lines.push(`allowed_ip=2001:db8:${(p + 1).toString(16)}:${(i + 1).toString(16)}::/64`);
  }
  return Buffer.from(lines.join("\n") + "\n\n", "latin1");
}

function* chunks(text: Buffer): Generator<Buffer> {
  for (let at = 0; at < text.length; at += SOCKET_CHUNK) yield text.subarray(at, at + SOCKET_CHUNK);
}

/** As the server reads a set request: line by line to the blank one. */
async function parse(text: Buffer): Promise<SetRequest> {
  const reader = new LineReader(Readable.from(chunks(text)), 4096);
  const parser = new SetParser();
  for (;;) {
    const line = reader.take() ?? (await reader.next());
    if (line === null || line === "") break;
    parser.line(line);
  }
  return parser.finish();
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

export interface ScaleTimes {
  parse: number;
  plan: number;
  resync: number;
  get: number;
}

/** The minimum over `runs` of each stage's CPU milliseconds (process.cpuUsage: GC threads
 * included); throws if a stage's result is not what it should be (so a fast wrong answer is
 * not a pass). */
export async function measureScale(runs: number): Promise<ScaleTimes> {
  const setconf = scaleRequest({ replacePeers: true });
  const syncconf = scaleRequest({ replacePeers: false });
  const best: ScaleTimes = { parse: Infinity, plan: Infinity, resync: Infinity, get: Infinity };
  const keep = (stage: keyof ScaleTimes, ms: number): void => {
    best[stage] = Math.min(best[stage], ms);
  };
  for (let run = 0; run < runs; run++) {
    let t = process.cpuUsage();
    const request = await parse(setconf);
    keep("parse", cpuMs(t));

    const dev = new ModelDevice();
    t = process.cpuUsage();
    const { state } = dev.plan(request);
    dev.commit(state);
    keep("plan", cpuMs(t));
    if (state.owners.size !== PEERS * PER_PEER) throw new Error(`plan: ${state.owners.size} allowed IPs, not ${PEERS * PER_PEER}`);

    t = process.cpuUsage();
    const again = dev.plan(await parse(syncconf));
    keep("resync", cpuMs(t));
    const { change } = again;
    if (change.added.length + change.removed.length + change.updated.length > 0) throw new Error("resync: the same configuration changed a peer");
    // Re-sending what is in force must not even copy the owners map.
    if (again.state.owners !== state.owners) throw new Error("resync: the owners map was rebuilt for a request that changes nothing");

    t = process.cpuUsage();
    let bytes = 0;
    for (const chunk of serializeGet(dev.get())) bytes += chunk.length;
    keep("get", cpuMs(t));
    if (bytes < setconf.length) throw new Error(`get: ${bytes} bytes, fewer than the ${setconf.length} of the request`);
  }
  return best;
}
