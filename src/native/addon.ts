// The typed face of the C addon (src/native/*.c). Every call takes a whole batch: the
// pool's slab plus Int32Arrays of offsets and lengths, so JS crosses into C once per batch.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

export const READABLE = 1;
export const WRITABLE = 2;

/** tunOpen flag: virtio-net header and TUNSETOFFLOAD (src/native/tun.c). */
export const TUN_OPEN_VNET = 2;
/** TUN_F_* bits of linux/if_tun.h, as tunOpen reports them. */
export const TUN_OFFLOAD_BITS = { csum: 0x01, tso4: 0x02, tso6: 0x04, uso4: 0x20, uso6: 0x40 } as const;
/** udpOffload bits. */
export const UDP_GSO = 1;
export const UDP_GRO = 2;

export interface Addon {
  readonly MAX_BATCH: number;
  /** udpFilter modes (src/native/filter_program.h): admit the endpoints only; or the endpoints,
   * plus exact WireGuard handshake messages (initiation, response, cookie reply) from anyone. */
  readonly FILTER_PLAIN: number;
  readonly FILTER_WIREGUARD: number;
  pollStart(fd: number, events: number, cb: (status: number, events: number) => void): object;
  pollSet(handle: object, events: number): void;
  pollStop(handle: object): void;
  /** flags: TUN_OPEN_VNET, TUN_MULTI_QUEUE, TUN_DETACHED (tun.ts); 0 or missing for a plain
   * single-queue device. vnet: the fd carries a virtio-net header; offload: TUN_F_* bits accepted. */
  tunOpen(name: string, flags?: number): { fd: number; name: string; vnet: boolean; offload: number };
  tunAttached(fd: number): boolean;
  /** Stops at EAGAIN, after count packets, or once maxBytes have been read. */
  tunRead(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, maxBytes?: number): number;
  tunWrite(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, status: Int32Array): number;
  /** reusePort nonzero: SO_REUSEPORT before bind (one socket per worker on one address). */
  udpOpen(endpoint: Uint8Array, rcvbuf: number, sndbuf: number, reusePort?: number): { fd: number; endpoint: Uint8Array };
  /** With segs (UDP GRO on): segs[i] is the segment size of datagram i, 0 if it is one. */
  udpRecv(
    fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, sources: Uint8Array, segs?: Int32Array,
  ): number;
  /** Asks for UDP_GSO / UDP_GRO bits; returns the ones the kernel accepted. */
  udpOffload(fd: number, wanted: number): number;
  /** Splits virtio-header super-packets and sends them (see segment.c). */
  udpSendSegments(
    fd: number, v6: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number,
    destinations: Uint8Array, status: Int32Array, bytes: Int32Array, state: Int32Array, header: Uint8Array, gso: number,
  ): number;
  /** Writes behind a virtio-net header, joining runs of the kinds in join (JOIN_TCP, JOIN_UDP; see coalesce.c). */
  tunWriteOffload(
    fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, status: Int32Array, join: number,
    stats: Int32Array,
  ): number;
  udpSend(
    fd: number, v6: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number,
    destinations: Uint8Array, status: Int32Array,
  ): number;
  /** Attaches the peer filter (count 20-byte endpoints, in mode FILTER_PLAIN or FILTER_WIREGUARD)
   * or, with null, detaches it (mode not needed); returns the program's length in instructions.
   * Throws E2BIG past BPF_MAXINSNS, EINVAL (RangeError) for another mode. */
  udpFilter(fd: number, v6: number, endpoints: Uint8Array | null, count: number, mode?: PeerFilterMode): number;
  /** Datagrams the kernel dropped for the socket (SO_MEMINFO): 32 bits, wraps. */
  udpDrops(fd: number): number;
  close(fd: number): void;
}

/** FILTER_PLAIN or FILTER_WIREGUARD. */
export type PeerFilterMode = number;

/** The packet I/O calls the two paths make: the addon in production, a fake in fuzz tests. */
export type PacketIo = Pick<Addon, "tunRead" | "tunWrite" | "udpRecv" | "udpSend" | "udpSendSegments" | "tunWriteOffload">;

function load(): Addon {
  // The addon is built by `npm ci` (node-gyp) into src/native/build; from dist/ walk back to it.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = here.includes(`${path.sep}dist${path.sep}`) ? here.replace(/[/\\]dist[/\\].*$/, "") : path.resolve(here, "../..");
  const require = createRequire(import.meta.url);
  return require(path.join(root, "src/native/build/Release/udptun.node")) as Addon;
}

export const addon: Addon = load();

export const { FILTER_PLAIN, FILTER_WIREGUARD } = addon;
