// A fake of the addon's four plain batch I/O calls (src/native/addon.ts PacketIo), keeping
// the contract of src/native/{udp,tun,udptun}.c: the batch is bounds-checked against the
// slab as arg_batch does, with the addon's own batch limits; udpRecv copies each datagram into its room and reports -1 for one that
// did not fit (MSG_TRUNC) and a 20-byte source; tunRead never hands over more than the room;
// tunWrite returns how many were written, with a status per packet; udpSend returns how many
// it processed (fewer only on EAGAIN), each with status 0 or -errno, and fails a datagram
// the socket's family cannot reach with -EAFNOSUPPORT without trying.
//
// Beyond the C contract it checks what the paths promise about buffers: every packet sits in
// its own pool buffer, datagrams land 4 bytes before the headroom and packets at it, and
// nothing is read from the TUN device while a send batch is held back.
import { MAX_BATCH, MAX_WRITE_BATCH } from "../../../src/native/addon.ts";
import type { PacketIo } from "../../../src/native/addon.ts";
import { EAFNOSUPPORT } from "./oracle.ts";
import type { SentDatagram } from "./oracle.ts";
import type { WireDatagram } from "./packets.ts";
import { BUFFER_SIZE, ENDPOINT_LEN, HEADROOM, MTU, WIRE_HEADER } from "./world.ts";

export class ContractError extends Error {
  override name = "ContractError";
}

export interface FakeIoOptions {
  /** Which path it serves: the other path's calls are contract errors. */
  role: "network" | "device";
  slab: Uint8Array;
  /** The socket's family flag as the path passes it to udpSend. */
  v6socket?: boolean;
  /** Per read call (udpRecv or tunRead): at most this many, 0 being EAGAIN; unlimited once used up. */
  readCaps?: readonly number[];
  /** Per udpSend call: how many the kernel takes before EAGAIN; unlimited once used up. */
  sendBudgets?: readonly number[];
  /** k -> errno: the k-th packet handed to write() on the TUN device fails. */
  tunFailures?: ReadonlyMap<number, number>;
  /** k -> errno: the k-th datagram handed to sendmmsg fails alone. */
  sendFailures?: ReadonlyMap<number, number>;
  /**
   * Let udpSend hit EAGAIN before it has processed anything (return 0), as the kernel may;
   * the device path must then keep its whole batch. Off: a send budget of 0 still lets the
   * first datagram through.
   */
  eagainFirst?: boolean;
  /** The pool's buffer size (default: the MTU pool's). */
  bufferSize?: number;
  /** Where in its buffer a datagram lands (default: our 4-byte header before the headroom). */
  datagramStart?: number;
  /** UDP GRO: udpRecv reports each datagram's segment size, and the packets written may
   * share a buffer (a datagram's segments), each anywhere past the headroom. */
  gro?: boolean;
}

export class FakeIo implements PacketIo {
  readonly calls = { udpRecv: 0, tunWrite: 0, tunRead: 0, udpSend: 0 };
  /** What reached the TUN device (copies, in order). */
  readonly tunOut: Buffer[] = [];
  /** What went out on the socket (copies, in order). */
  readonly sent: SentDatagram[] = [];
  /** Datagrams udpSend processed (sent or failed), all calls together. */
  processed = 0;
  /** Buffers the device path still holds after the last udpSend: count - processed. */
  held = 0;

  // The paths fuzzed here run without offloads; these calls must never be made.
  udpSendSegments(): number {
    throw new Error("FakeIo: udpSendSegments called without TUN offloads");
  }

  tunWriteOffload(): number {
    throw new Error("FakeIo: tunWriteOffload called without TUN offloads");
  }

  private readonly opts: FakeIoOptions;
  private rx: readonly WireDatagram[] = [];
  private tunIn: readonly Uint8Array[] = [];
  private next = 0;
  private readCall = 0;
  private sendCall = 0;
  private tunWrites = 0;
  private kernelSends = 0;
  /** The datagrams a short udpSend left behind: the next call must start with them. */
  private leftover: SentDatagram[] = [];

  constructor(opts: FakeIoOptions) {
    this.opts = opts;
  }

  /** Queues datagrams for udpRecv. */
  feedUdp(datagrams: readonly WireDatagram[]): void {
    this.rx = datagrams;
    this.next = 0;
  }

  /** Queues packets for tunRead. */
  feedTun(packets: readonly Uint8Array[]): void {
    this.tunIn = packets;
    this.next = 0;
  }

  /** Inputs not read yet. */
  get pending(): number {
    return (this.opts.role === "network" ? this.rx.length : this.tunIn.length) - this.next;
  }

  /** Inputs handed to the path so far. */
  get consumed(): number {
    return this.next;
  }

  udpRecv(
    fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, sources: Uint8Array, segs?: Int32Array,
  ): number {
    this.calls.udpRecv++;
    this.role("network", "udpRecv");
    const start = this.opts.datagramStart ?? HEADROOM - WIRE_HEADER;
    this.batch("udpRecv", fd, slab, offs, lens, count, MAX_BATCH, start, this.bufferSize - start);
    if (sources.length < count * ENDPOINT_LEN) throw new ContractError(`udpRecv: sources holds ${sources.length} bytes for ${count}`);
    if ((segs !== undefined) !== (this.opts.gro === true)) throw new ContractError(`udpRecv: segs ${segs ? "given" : "missing"} with GRO ${this.opts.gro ? "on" : "off"}`);
    if (segs !== undefined && segs.length < count) throw new ContractError(`udpRecv: segs holds ${segs.length} for ${count}`);
    const n = Math.min(count, this.pending, this.cap());
    for (let i = 0; i < n; i++) {
      const d = this.rx[this.next++];
      const room = lens[i];
      const copy = Math.min(d.length, room);
      if (d.bytes.length < copy) throw new Error("generator: datagram keeps fewer bytes than fit its room");
      slab.set(d.bytes.subarray(0, copy), offs[i]);
      lens[i] = d.length > room ? -1 : d.length;
      sources.set(d.source.subarray(0, ENDPOINT_LEN), i * ENDPOINT_LEN);
      if (segs !== undefined) segs[i] = d.seg ?? 0;
      else if (d.seg) throw new Error("generator: a GRO datagram without GRO");
    }
    return n;
  }

  tunWrite(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, status: Int32Array): number {
    this.calls.tunWrite++;
    this.role("network", "tunWrite");
    this.batch("tunWrite", fd, slab, offs, lens, count, MAX_WRITE_BATCH, this.opts.gro ? -1 : HEADROOM, -1);
    if (status.length < count) throw new ContractError(`tunWrite: status holds ${status.length} for ${count}`);
    let ok = 0;
    for (let i = 0; i < count; i++) {
      if (lens[i] > MTU) throw new ContractError(`tunWrite: packet ${i} of ${lens[i]} bytes exceeds the MTU`);
      const errno = this.opts.tunFailures?.get(this.tunWrites++) ?? 0;
      status[i] = -errno;
      if (errno === 0) {
        this.tunOut.push(Buffer.from(slab.subarray(offs[i], offs[i] + lens[i])));
        ok++;
      }
    }
    return ok;
  }

  tunRead(fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number): number {
    this.calls.tunRead++;
    this.role("device", "tunRead");
    if (this.held > 0) throw new ContractError(`tunRead while ${this.held} datagrams wait for the socket (reads must pause)`);
    this.batch("tunRead", fd, slab, offs, lens, count, MAX_BATCH, HEADROOM, MTU);
    const n = Math.min(count, this.pending, this.cap());
    for (let i = 0; i < n; i++) {
      const p = this.tunIn[this.next++];
      if (p.length > lens[i]) throw new Error("generator: TUN packet longer than the MTU");
      slab.set(p, offs[i]);
      lens[i] = p.length;
    }
    return n;
  }

  udpSend(
    fd: number, v6: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number,
    destinations: Uint8Array, status: Int32Array,
  ): number {
    this.calls.udpSend++;
    this.role("device", "udpSend");
    this.batch("udpSend", fd, slab, offs, lens, count, MAX_BATCH, HEADROOM - WIRE_HEADER, -1);
    if (v6 !== (this.opts.v6socket ? 1 : 0)) throw new ContractError(`udpSend: v6 flag ${v6} is not the socket's`);
    if (destinations.length < count * ENDPOINT_LEN || status.length < count) {
      throw new ContractError(`udpSend: destinations/status too small for ${count}`);
    }
    const dgram = (i: number): SentDatagram => ({
      bytes: Buffer.from(slab.subarray(offs[i], offs[i] + lens[i])),
      dest: destinations.slice(i * ENDPOINT_LEN, (i + 1) * ENDPOINT_LEN),
    });
    // A retry after EAGAIN must start with exactly what was left, bytes and destinations.
    if (count < this.leftover.length) throw new ContractError(`udpSend: ${count} datagrams, ${this.leftover.length} were held back`);
    this.leftover.forEach((l, i) => {
      const d = dgram(i);
      if (!Buffer.from(l.bytes).equals(d.bytes) || !Buffer.from(l.dest).equals(d.dest)) {
        throw new ContractError(`udpSend: held-back datagram ${i} changed between EAGAIN and the retry`);
      }
    });
    let budget = this.opts.sendBudgets?.[this.sendCall++] ?? Infinity;
    let done = 0;
    for (; done < count; done++) {
      const fam = destinations[done * ENDPOINT_LEN];
      if ((fam !== 4 && fam !== 6) || (fam === 6 && v6 === 0)) {
        status[done] = -EAFNOSUPPORT; // to_sockaddr cannot express it: fails alone, no syscall
        continue;
      }
      if (budget === 0 && (done > 0 || this.opts.eagainFirst)) break; // EAGAIN: the caller keeps [done, count)
      budget = Math.max(0, budget - 1);
      const errno = this.opts.sendFailures?.get(this.kernelSends++) ?? 0;
      status[done] = -errno;
      if (errno === 0) this.sent.push(dgram(done));
    }
    this.processed += done;
    this.held = count - done;
    this.leftover = [];
    for (let i = done; i < count; i++) this.leftover.push(dgram(i));
    return done;
  }

  private get bufferSize(): number {
    return this.opts.bufferSize ?? BUFFER_SIZE;
  }

  private cap(): number {
    return this.opts.readCaps?.[this.readCall++] ?? Infinity;
  }

  private role(want: "network" | "device", call: string): void {
    if (this.opts.role !== want) throw new ContractError(`the ${this.opts.role} path called ${call}`);
  }

  /** arg_batch_max's checks (max: the call's limit), plus where in its pool buffer each packet must sit. */
  private batch(
    call: string, fd: number, slab: Uint8Array, offs: Int32Array, lens: Int32Array, count: number, max: number, at: number,
    room: number,
  ): void {
    if (fd !== -1) throw new ContractError(`${call}: fd ${fd}`);
    if (slab !== this.opts.slab) throw new ContractError(`${call}: not the pool's slab`);
    if (!Number.isInteger(count) || count < 0 || count > max || count > offs.length || count > lens.length) {
      throw new ContractError(`${call}: count ${count} out of range`);
    }
    const seen = new Set<number>();
    for (let i = 0; i < count; i++) {
      const off = offs[i];
      const len = lens[i];
      if (off < 0 || len < 0 || off + len > slab.length) throw new ContractError(`${call}: packet ${i} [${off}, +${len}) outside the slab`);
      const size = this.bufferSize;
      const buffer = Math.floor(off / size);
      const inBuffer = off - buffer * size;
      if (at >= 0 ? inBuffer !== at : inBuffer < HEADROOM) throw new ContractError(`${call}: packet ${i} at ${inBuffer} in its buffer, not ${at >= 0 ? at : "past the headroom"}`);
      if (room >= 0 && len !== room) throw new ContractError(`${call}: room ${len}, not ${room}`);
      if (inBuffer + len > size) throw new ContractError(`${call}: packet ${i} runs past its buffer`);
      if (at < 0) continue; // GRO: a datagram's segments share its buffer
      if (seen.has(buffer)) throw new ContractError(`${call}: two packets in buffer ${buffer}`);
      seen.add(buffer);
    }
  }
}
