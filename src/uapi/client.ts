// A UAPI client: what `wg` does on the socket, for tests and tools that talk to a running
// device without wireguard-tools.
import { connect } from "node:net";
import type { Socket } from "node:net";

export interface UapiReply {
  /** The lines before `errno=` (a get's body; empty for a set). */
  body: string;
  errno: number;
}

const END = /errno=(-?\d+)\n\n$/;

/** The reply in `text` if it is complete (it ends with an errno line and a blank line). Only
 * the tail is searched: a get's body can be megabytes. */
function complete(text: string): UapiReply | null {
  const tail = text.slice(-32);
  const m = END.exec(tail);
  if (!m) return null;
  const at = text.length - tail.length + m.index;
  if (at > 0 && text[at - 1] !== "\n") return null;
  return { body: text.slice(0, at), errno: Number(m[1]) };
}

export class UapiClient {
  readonly #socket: Socket;
  #received = "";
  #waiter: { resolve: (r: UapiReply) => void; reject: (e: Error) => void } | null = null;
  #closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (text: string) => {
      this.#received += text;
      const reply = this.#waiter ? complete(this.#received) : null;
      if (!reply) return;
      this.#received = "";
      const waiter = this.#waiter!;
      this.#waiter = null;
      waiter.resolve(reply);
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#waiter?.reject(new Error("UAPI: the connection closed before the reply ended"));
      this.#waiter = null;
    });
    socket.on("error", () => {});
  }

  static connect(path: string): Promise<UapiClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => {
        socket.off("error", reject);
        resolve(new UapiClient(socket));
      });
      socket.once("error", reject);
    });
  }

  /** Sends raw text (a whole request, or any bytes) and waits for one reply. */
  request(text: string): Promise<UapiReply> {
    if (this.#closed) return Promise.reject(new Error("UAPI: the connection is closed"));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#socket.write(text);
    });
  }

  get(): Promise<UapiReply> {
    return this.request("get=1\n\n");
  }

  /** `lines` without the `set=1` line and the closing blank line. */
  set(lines: string[]): Promise<UapiReply> {
    return this.request(`set=1\n${lines.map((l) => `${l}\n`).join("")}\n`);
  }

  close(): void {
    this.#socket.destroy();
  }
}
