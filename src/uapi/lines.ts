// Lines from a stream, one at a time, with a bound on their length: the reader pulls the next
// chunk only when a caller wants a line it does not yet hold, so a client that sends faster
// than requests are applied is held back by the socket, not buffered here.
import type { Readable } from "node:stream";

/** A line longer than the limit (the reader is unusable afterwards). */
export class LineTooLong extends Error {}

export class LineReader {
  readonly #chunks: AsyncIterator<Buffer>;
  readonly #maxLine: number;
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;

  constructor(stream: Readable, maxLine: number) {
    this.#chunks = stream[Symbol.asyncIterator]();
    this.#maxLine = maxLine;
  }

  /** The next complete line already received (without its "\n"), or undefined. */
  take(): string | undefined {
    const nl = this.#buf.indexOf(10, this.#pos);
    if (nl < 0) return undefined;
    if (nl - this.#pos > this.#maxLine) throw new LineTooLong();
    const line = this.#buf.toString("latin1", this.#pos, nl);
    this.#pos = nl + 1;
    return line;
  }

  /** The next line, or null at EOF (a line cut short by EOF is dropped with it). */
  async next(): Promise<string | null> {
    for (;;) {
      const line = this.take();
      if (line !== undefined) return line;
      const rest = this.#buf.length - this.#pos;
      if (rest > this.#maxLine) throw new LineTooLong();
      const r = await this.#chunks.next();
      if (r.done) return null;
      this.#buf = rest > 0 ? Buffer.concat([this.#buf.subarray(this.#pos), r.value]) : r.value;
      this.#pos = 0;
    }
  }
}
