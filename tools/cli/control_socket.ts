// The control socket of a running board: a Unix domain socket in the board's data directory (control.sock) that
// takes one JSON request per line and answers each with one JSON line, in order (docs/fault.md, "The socket
// protocol"). It is I/O only: what a request means is host/board/control.ts's business, reached through `handle`.
//
// One board per data directory: a socket that answers means another board is live there, and this one refuses to
// start; a socket nobody answers on is what a board that did not stop cleanly left behind, and it is replaced.
import { lstatSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";

export const CONTROL_SOCKET_NAME = "control.sock";
/** sun_path holds 108 bytes with its terminating NUL (Linux unix(7)); a longer path cannot be bound. */
export const SOCKET_PATH_BYTES_MAX = 107;
/** A request line longer than this is not a control command: the connection is answered and closed. */
const REQUEST_BYTES_MAX = 64 * 1024;

/** The socket cannot be opened: another board is live on it, or something else is in its place. */
export class ControlSocketError extends Error {
  override name = "ControlSocketError";
}

/** Answers one parsed request (a JSON value, unchecked) by calling `reply` once, now or later. */
export type ControlHandler = (request: unknown, reply: (answer: object) => void) => void;

export function controlSocketPath(dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET_NAME);
}

export class ControlSocket {
  private readonly connections = new Set<Socket>();
  private closed = false;

  // If the process ends without close() (an exception on the way out), the socket file goes with it all the same.
  private readonly removeAtExit = () => {
    if (!this.closed) removeSocketFile(this.path);
  };

  private constructor(readonly path: string, private readonly server: Server, private readonly handle: ControlHandler) {
    server.on("connection", (socket) => this.serve(socket));
    process.once("exit", this.removeAtExit);
  }

  /**
   * Binds `<dataDir>/control.sock`, replacing a stale one. Throws ControlSocketError when a board answers there, when
   * something other than a socket has the name, or when the path is too long for a Unix socket.
   */
  static async open(dataDir: string, handle: ControlHandler): Promise<ControlSocket> {
    const path = controlSocketPath(dataDir);
    if (Buffer.byteLength(path) > SOCKET_PATH_BYTES_MAX) {
      throw new ControlSocketError(`control socket ${path}: the path is ${Buffer.byteLength(path)} bytes, more than a Unix socket takes (${SOCKET_PATH_BYTES_MAX}); use a shorter --data-dir`);
    }
    await removeStale(path);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error: NodeJS.ErrnoException) => {
        reject(error.code === "EADDRINUSE" ? busy(path) : new ControlSocketError(`control socket ${path}: ${error.message}`));
      });
      server.listen(path, () => resolve());
    });
    return new ControlSocket(path, server, handle);
  }

  /** Stops listening, drops every connection (a request still waiting gets no answer) and removes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.destroy();
    await closing;
    process.off("exit", this.removeAtExit);
    removeSocketFile(this.path); // Node removes it on close; this is for the platforms that do not
  }

  // One connection: lines in, each answered before the next is read, so answers come back in request order.
  private serve(socket: Socket): void {
    this.connections.add(socket);
    socket.on("close", () => this.connections.delete(socket));
    socket.on("error", () => socket.destroy()); // a client that went away; nothing to answer
    let buffered = "";
    let busy = false;
    const next = (): void => {
      if (busy || socket.destroyed) return;
      const end = buffered.indexOf("\n");
      if (end < 0) {
        if (buffered.length > REQUEST_BYTES_MAX) {
          socket.end(JSON.stringify({ ok: false, error: "bad-request", message: `request longer than ${REQUEST_BYTES_MAX} bytes without a newline` }) + "\n");
          buffered = "";
        }
        return;
      }
      const text = buffered.slice(0, end).trim();
      buffered = buffered.slice(end + 1);
      if (text === "") return next();
      let request: unknown;
      try {
        request = JSON.parse(text);
      } catch (error) {
        this.answer(socket, { ok: false, error: "bad-request", message: `a request is one JSON object per line: ${(error as Error).message}` });
        return next();
      }
      busy = true;
      const id = typeof request === "object" && request !== null ? (request as { id?: unknown }).id : undefined;
      this.handle(request, (answer) => {
        this.answer(socket, id === undefined ? answer : { id, ...answer });
        busy = false;
        next();
      });
    };
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      next();
    });
  }

  private answer(socket: Socket, answer: object): void {
    if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(answer) + "\n");
  }
}

function removeSocketFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

function busy(path: string): ControlSocketError {
  return new ControlSocketError(`another board is running on this data directory (its control socket ${path} answers); stop it, or use another --data-dir`);
}

// A socket file nobody answers on is left from a board that did not stop cleanly: removed. One that answers is a live
// board's. Anything else under the name is not ours to remove.
async function removeStale(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new ControlSocketError(`control socket ${path}: ${(error as Error).message}`);
  }
  if (!isSocket) throw new ControlSocketError(`${path} exists and is not a socket; remove it, or use another --data-dir`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false)); // ECONNREFUSED: nobody listens
  });
  if (live) throw busy(path);
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new ControlSocketError(`cannot remove the stale control socket ${path}: ${(error as Error).message}`);
  }
}
