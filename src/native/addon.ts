// The typed face of the C addon (src/native/*.c). Every call takes a whole batch: the
// pool's slab plus Int32Arrays of offsets and lengths, so JS crosses into C once per batch.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const READABLE = 1;
export const WRITABLE = 2;

export interface Addon {
  readonly MAX_BATCH: number;
  pollStart(fd: number, events: number, cb: (status: number, events: number) => void): object;
  pollSet(handle: object, events: number): void;
  pollStop(handle: object): void;
  tunOpen(name: string): { fd: number; name: string };
  tunAttached(fd: number): boolean;
  tunRead(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number): number;
  tunWrite(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, status: Int32Array): number;
  udpOpen(endpoint: Uint8Array, rcvbuf: number, sndbuf: number): { fd: number; endpoint: Uint8Array };
  udpRecv(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, sources: Uint8Array): number;
  udpSend(
    fd: number, v6: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number,
    destinations: Uint8Array, status: Int32Array,
  ): number;
  /** Attaches the peer filter (count 20-byte endpoints; none: drop all) or, with null, detaches
   * it; returns the program's length in instructions. Throws E2BIG past BPF_MAXINSNS. */
  udpFilter(fd: number, v6: number, endpoints: Uint8Array | null, count: number): number;
  /** Datagrams the kernel dropped for the socket (SO_MEMINFO): 32 bits, wraps. */
  udpDrops(fd: number): number;
  close(fd: number): void;
}

/** The packet I/O calls the two paths make: the addon in production, a fake in fuzz tests. */
export type PacketIo = Pick<Addon, "tunRead" | "tunWrite" | "udpRecv" | "udpSend">;

function load(): Addon {
  // The addon is built by `npm ci` (node-gyp) into src/native/build; from dist/ walk back to it.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = here.includes(`${path.sep}dist${path.sep}`) ? here.replace(/[/\\]dist[/\\].*$/, "") : path.resolve(here, "../..");
  const require = createRequire(import.meta.url);
  return require(path.join(root, "src/native/build/Release/udptun.node")) as Addon;
}

export const addon: Addon = load();
