// A peer's transport keypairs and their rotation, exactly as wireguard-go's
// BeginSymmetricSession and ReceivedWithKeypair: the initiator sends with a new keypair at
// once; the responder holds it as `next` until the first data message arrives on it, which
// proves the initiator has it too.
export class Keypair {
  readonly slot: number;
  readonly localIndex: number;
  readonly remoteIndex: number;
  readonly isInitiator: boolean;
  /** `now` when derived. */
  readonly created: number;
  /** Messages sent with it, as reported by WgDevice.dataSent and our keepalives: a number
   * while exact (to 2^53: adding to it allocates nothing), then a bigint. */
  sent: number | bigint = 0;
  #sendKey: Uint8Array;
  #recvKey: Uint8Array;

  constructor(o: { slot: number; localIndex: number; remoteIndex: number; isInitiator: boolean; created: number; sendKey: Uint8Array; recvKey: Uint8Array }) {
    this.slot = o.slot;
    this.localIndex = o.localIndex;
    this.remoteIndex = o.remoteIndex;
    this.isInitiator = o.isInitiator;
    this.created = o.created;
    this.#sendKey = o.sendKey;
    this.#recvKey = o.recvKey;
  }

  /** Hands the keys to `use` (the native install), then erases our copies. */
  release(use: (sendKey: Uint8Array, recvKey: Uint8Array) => void): void {
    use(this.#sendKey, this.#recvKey);
    this.#sendKey.fill(0);
    this.#recvKey.fill(0);
  }

  toJSON(): object {
    return { slot: this.slot, isInitiator: this.isInitiator, created: this.created, sent: String(this.sent) };
  }
}

/** Retires a keypair: the device removes it from the native table and frees its slot. */
export type Retire = (kp: Keypair) => void;

export class Keypairs {
  current: Keypair | null = null;
  previous: Keypair | null = null;
  next: Keypair | null = null;

  /** A keypair we derived as initiator: in use at once. */
  installInitiator(kp: Keypair, retire: Retire): void {
    const { previous, next, current } = this;
    if (next) {
      // The responder side's unconfirmed keypair is newer than current: keep it as previous.
      this.next = null;
      this.previous = next;
      if (current) retire(current);
    } else {
      this.previous = current;
    }
    if (previous) retire(previous);
    this.current = kp;
  }

  /** A keypair we derived as responder: waits in `next` for its first data message. */
  installResponder(kp: Keypair, retire: Retire): void {
    const { previous, next } = this;
    this.next = kp;
    if (next) retire(next);
    this.previous = null;
    if (previous) retire(previous);
  }

  /** Data arrived on `kp`: if it is `next`, it becomes current. True if it was promoted. */
  receivedWith(kp: Keypair, retire: Retire): boolean {
    if (this.next !== kp) return false;
    const old = this.previous;
    this.previous = this.current;
    if (old) retire(old);
    this.current = kp;
    this.next = null;
    return true;
  }

  clear(retire: Retire): void {
    const all = [this.previous, this.current, this.next];
    this.previous = this.current = this.next = null;
    for (const kp of all) if (kp) retire(kp);
  }
}
