// Lines from a stream, one at a time, with a bound on their length: the reader pulls the next
// chunk only when a caller wants a line it does not yet hold, so a client that sends faster
// than requests are applied is held back by the socket, not buffered here.
import type { Readable } from "node:stream";

/** A line longer than the limit (the reader is unusable afterwards). */
export class LineTooLong extends Error {}

export class LineReader {
  readonly #chunks: AsyncIterator<Buffer>;
  readonly #maxLine: number;
  /** What has arrived and is not yet taken, as latin1 text (a byte per character): each chunk
   * is decoded once, and a line is then a slice of it, where a decode per line would cross
   * into C++ twice per line (a large request has 100k of them). */
  #text = "";
  #pos = 0;

  constructor(stream: Readable, maxLine: number) {
    this.#chunks = stream[Symbol.asyncIterator]();
    this.#maxLine = maxLine;
  }

  /** The next complete line already received (without its "\n"), or undefined. */
  take(): string | undefined {
    const nl = this.#text.indexOf("\n", this.#pos);
    if (nl < 0) return undefined;
    if (nl - this.#pos > this.#maxLine) throw new LineTooLong();
    const line = this.#text.slice(this.#pos, nl);
    this.#pos = nl + 1;
    return line;
  }

  /** The next line, or null at EOF (a line cut short by EOF is dropped with it). */
  async next(): Promise<string | null> {
    for (;;) {
      const line = this.take();
      if (line !== undefined) return line;
      const rest = this.#text.length - this.#pos;
      if (rest > this.#maxLine) throw new LineTooLong();
      const r = await this.#chunks.next();
      if (r.done) return null;
      this.#text = this.#text.slice(this.#pos) + r.value.toString("latin1");
      this.#pos = 0;
    }
  }
}
