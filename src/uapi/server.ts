// The configuration socket `${dir}/${name}.sock` that `wg` and `wg-quick` talk to: a unix
// stream socket, mode 0600, one request after another on each connection; requests from all
// connections are applied one at a time. Behaviour follows wireguard-go's ipc/uapi_unix.go and
// device.IpcHandle, except that a request is applied only once it has arrived whole and valid.
import { connect, createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { ERRNO_INVALID, ERRNO_IO, ERRNO_PROTOCOL, ERRNO_UNKNOWN, UapiError } from "./errors.ts";
import { LineReader, LineTooLong } from "./lines.ts";
import { SetParser } from "./protocol.ts";
import { serializeGet } from "./serialize.ts";
import type { UapiDevice } from "./target.ts";

export const DEFAULT_DIR = "/var/run/wireguard";
/** Far above the longest valid line (an IPv6 allowed_ip is under 60 characters). */
export const DEFAULT_MAX_LINE = 4096;
/** About 500k allowed IPs in one request; the parsed request is held until it is complete. */
export const DEFAULT_MAX_REQUEST = 16 * 1024 * 1024;

export interface UapiServerOptions {
  /** The interface name: the socket is `${dir}/${name}.sock`. */
  name: string;
  device: UapiDevice;
  dir?: string;
  maxLineBytes?: number;
  maxRequestBytes?: number;
  /** Each refused request or failed connection, for the log. */
  onError?: (err: Error) => void;
}

/** An interface name as Linux takes it (at most 15 bytes, no "/", ":" or white space). */
function checkName(name: string): void {
  if (!/^[^/:\s]{1,15}$/.test(name) || name === "." || name === "..") {
    throw new Error(`UAPI: interface name ${JSON.stringify(name)} is not a valid interface name (1-15 characters, no "/", ":" or spaces)`);
  }
}

function reply(socket: Socket, errno: number): void {
  if (!socket.destroyed) socket.write(`errno=${errno}\n\n`);
}

/** Resolves once the socket can take more, or is gone. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}

export class UapiServer {
  readonly path: string;
  readonly #server: Server;
  readonly #device: UapiDevice;
  readonly #maxLine: number;
  readonly #maxRequest: number;
  readonly #onError: (err: Error) => void;
  readonly #sockets = new Set<Socket>();
  readonly #idleWaiters: (() => void)[] = [];
  /** Requests wait here for the one before them (wireguard-go's ipcMutex). */
  #queue: Promise<unknown> = Promise.resolve();
  #inode = -1;

  private constructor(options: UapiServerOptions) {
    checkName(options.name);
    this.path = `${options.dir ?? DEFAULT_DIR}/${options.name}.sock`;
    this.#device = options.device;
    this.#maxLine = options.maxLineBytes ?? DEFAULT_MAX_LINE;
    this.#maxRequest = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST;
    this.#onError = options.onError ?? (() => {});
    // Half-open: a client that shuts down its side after a truncated request still hears why.
    this.#server = createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
  }

  /** Listens on `${dir}/${name}.sock`, replacing a stale socket file; refuses (with an error
   * naming the path) if another process answers on it. Main thread only (it sets the umask). */
  static async listen(options: UapiServerOptions): Promise<UapiServer> {
    const server = new UapiServer(options);
    mkdirSync(options.dir ?? DEFAULT_DIR, { recursive: true, mode: 0o755 });
    try {
      await server.#listen();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
      await server.#removeStale();
      await server.#listen();
    }
    // bind() made it 0700 under the umask; only read and write mean anything on a socket.
    chmodSync(server.path, 0o600);
    server.#inode = lstatSync(server.path).ino;
    return server;
  }

  /** Open connections (each one's state is dropped when it closes). */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Resolves when no connection is open. */
  idle(): Promise<void> {
    if (this.#sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops listening, drops every connection and removes the socket file (if it is still ours). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    try {
      if (lstatSync(this.path).ino === this.#inode) unlinkSync(this.path);
    } catch {}
  }

  #listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once("error", onError);
      // The socket file is created by bind() inside listen(): under the umask it is owner-only from the start.
      const umask = process.umask(0o077);
      try {
        this.#server.listen(this.path, () => {
          this.#server.off("error", onError);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
  }

  /** The path is taken: a socket nobody answers on is left over from a process that died. */
  async #removeStale(): Promise<void> {
    const live = await new Promise<boolean>((resolve) => {
      const probe = connect(this.path, () => {
        probe.destroy();
        resolve(true);
      });
      probe.on("error", () => resolve(false));
    });
    if (live) throw new Error(`UAPI: ${this.path} is in use: another process serves this interface`);
    if (!lstatSync(this.path).isSocket()) throw new Error(`UAPI: ${this.path} exists and is not a socket; not removing it`);
    unlinkSync(this.path);
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on("error", (err) => this.#onError(err));
    socket.on("close", () => {
      this.#sockets.delete(socket);
      if (this.#sockets.size > 0) return;
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    });
    this.#serve(socket)
      .catch((err: Error) => {
        if (err instanceof LineTooLong) {
          this.#onError(new UapiError(ERRNO_IO, `UAPI: a line longer than ${this.#maxLine} bytes; closing the connection`));
          reply(socket, ERRNO_IO);
        } else {
          this.#onError(err);
        }
      })
      // Half-close first so the last reply is flushed, then let go even of a client that never closes.
      .finally(() => socket.end(() => socket.destroy()));
  }

  /** Runs `fn` after every request queued before it. */
  #exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #serve(socket: Socket): Promise<void> {
    const reader = new LineReader(socket, this.#maxLine);
    for (;;) {
      const op = await reader.next();
      if (op === "get=1") {
        const blank = await reader.next();
        if (blank === null) return;
        if (blank !== "") {
          this.#onError(new UapiError(ERRNO_INVALID, `UAPI: get=1 followed by ${JSON.stringify(blank)}, not a blank line`));
          reply(socket, ERRNO_INVALID);
          continue;
        }
        await this.#get(socket);
      } else if (op === "set=1") {
        if (!(await this.#set(socket, reader))) return;
      } else {
        // wireguard-go closes on an unknown operation without a reply.
        if (op !== null) this.#onError(new Error(`UAPI: unknown operation ${JSON.stringify(op.slice(0, 64))}; closing the connection`));
        return;
      }
    }
  }

  async #get(socket: Socket): Promise<void> {
    let chunks: Generator<Buffer>;
    try {
      chunks = serializeGet(await this.#exclusive(() => this.#device.get()));
    } catch (err) {
      this.#onError(err as Error);
      reply(socket, ERRNO_UNKNOWN);
      return;
    }
    for (const chunk of chunks) {
      if (socket.destroyed) return;
      if (!socket.write(chunk)) await drained(socket);
    }
    reply(socket, 0);
  }

  /** One set request: read to its blank line, then apply it whole or not at all. False if the
   * connection must close (the request was cut short or too large). */
  async #set(socket: Socket, reader: LineReader): Promise<boolean> {
    const parser = new SetParser();
    let error: UapiError | null = null;
    let bytes = 0;
    for (;;) {
      const line = reader.take() ?? (await reader.next());
      if (line === null) {
        // Cut short (EOF before the blank line): nothing is applied.
        this.#onError(new UapiError(ERRNO_PROTOCOL, "UAPI: set request ended before its blank line; not applied"));
        reply(socket, ERRNO_PROTOCOL);
        return false;
      }
      if (line === "") break;
      bytes += line.length + 1;
      if (bytes > this.#maxRequest) {
        this.#onError(new UapiError(ERRNO_IO, `UAPI: set request over ${this.#maxRequest} bytes; closing the connection`));
        reply(socket, ERRNO_IO);
        return false;
      }
      // After a bad line the rest is read (to keep the connection in step) but not parsed.
      if (error) continue;
      try {
        parser.line(line);
      } catch (err) {
        if (!(err instanceof UapiError)) throw err;
        error = err;
      }
    }
    if (!error) {
      try {
        await this.#exclusive(() => this.#device.apply(parser.finish()));
      } catch (err) {
        error = err instanceof UapiError ? err : new UapiError(ERRNO_UNKNOWN, `UAPI: the device failed to apply a set request: ${(err as Error).message}`);
      }
    }
    if (error) this.#onError(error);
    reply(socket, error ? error.errno : 0);
    return true;
  }
}
