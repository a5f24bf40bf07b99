// One NBD session of the simulator (NetworkBlockDevice/nbd doc/proto.md): a connection per LUN's export on the NIC's
// loopback network, each through the fixed newstyle handshake with structured replies and NBD_OPT_GO, then several
// requests in flight, driven by the replies as they arrive (clock events, so the run replays from its seed). It takes
// the simulator's tasks as the iSCSI session does (session.ts): READ, WRITE (FUA), and SYNCHRONIZE CACHE as
// NBD_CMD_FLUSH. It checks what a correct server must do (magics, known cookies, one OFFSET_DATA chunk covering a
// read exactly, DONE on the last chunk) and reports anything else as a protocol violation, after which it drops
// every connection. A lost connection fails every request in flight on all of them, as a lost iSCSI session does.
import type { Board } from "../../host/board/board.ts";
import type { ClientEnd, LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import { BLOCK_BYTES } from "../iscsi/pdu.ts";
import type { Outcome, Task } from "./session.ts";

export interface NbdSessionOptions {
  board: Board;
  network: LoopbackBackend;
  portal: number; // the NIC's NBD portal
  exports: readonly string[]; // the export of LUN n is exports[n]
  queueDepth: number;
  onReady(): void;
  onLost(reason: string): void;
  onViolation(message: string): void;
}

type State = "idle" | "handshake" | "full" | "closed";

const OPTS_MAGIC = 0x49484156454f5054n;
const REP_MAGIC = 0x0003e889045565a9n;
const STRUCTURED_MAGIC = 0x668e33ef;
const OPT_GO = 7;
const OPT_STRUCTURED_REPLY = 8;
const REP_ACK = 1;
const REP_INFO = 3;
const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_FLUSH = 3;
const FLAG_FUA = 1;
const REPLY_DONE = 1;
const REPLY_NONE = 0;
const REPLY_OFFSET_DATA = 1;
const REPLY_ERROR = 0x8001;
// An NBD error as the simulator's outcome: the sense the same failure has through iSCSI, so its checks (27h/07h on a
// full thin pool, above all) read both protocols alike.
const SENSE_OF_ERROR: Record<number, [number, number, number]> = { 1: [0x7, 0x27, 0x00], 5: [0x4, 0, 0], 22: [0x5, 0x24, 0], 28: [0x7, 0x27, 0x07] };

function option(opt: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, OPTS_MAGIC);
  v.setUint32(8, opt);
  v.setUint32(12, data.length);
  out.set(data, 16);
  return out;
}

function goData(name: string): Uint8Array {
  const n = new TextEncoder().encode(name);
  const out = new Uint8Array(4 + n.length + 2);
  new DataView(out.buffer).setUint32(0, n.length);
  out.set(n, 4);
  return out; // no information requests: the export's size and the block sizes come anyway
}

// One connection's incoming bytes, taken as they are needed.
class Stream {
  private chunks: Uint8Array[] = [];
  private bytes = 0;
  constructor(client: ClientEnd, onData: () => void) {
    client.deliver = (chunk: Uint8Array) => {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
      onData();
    };
  }

  get pending(): number {
    return this.bytes;
  }

  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, n - at);
      out.set(chunk.subarray(0, part), at);
      at += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    this.bytes -= n;
    return out;
  }
}

class Connection {
  readonly client: ClientEnd;
  readonly stream: Stream;
  phase: "greeting" | "options" | "transmission" = "greeting";
  optionsLeft = 2; // STRUCTURED_REPLY, GO
  header: DataView | undefined; // an option reply's or a chunk's header whose payload has not all come
  constructor(client: ClientEnd, onData: () => void) {
    this.client = client;
    this.stream = new Stream(client, onData);
  }
}

export class NbdSession {
  state: State = "idle";
  private connections: Connection[] = [];
  private readonly tasks = new Map<bigint, Task>();
  private cookieNext = 1n;
  loginCount = 0;

  constructor(private readonly options: NbdSessionOptions) {}

  get inFlight(): number {
    return this.tasks.size;
  }

  pending(): IterableIterator<Task> {
    return this.tasks.values();
  }

  get canSubmit(): boolean {
    return this.state === "full" && this.tasks.size < this.options.queueDepth;
  }

  connect(): void {
    if (this.state !== "idle" && this.state !== "closed") throw new Error("NbdSession.connect: already connected");
    this.tasks.clear();
    this.connections = [];
    this.state = "handshake";
    for (const name of this.options.exports) {
      const client = this.options.network.connect(this.options.portal);
      if (client.refused) {
        this.close("connection refused");
        return;
      }
      const connection: Connection = new Connection(client, () => this.onData(connection));
      client.onClose = () => this.close("server closed the connection", connection);
      this.connections.push(connection);
      const flags = new Uint8Array(4);
      new DataView(flags.buffer).setUint32(0, 3); // FIXED_NEWSTYLE | NO_ZEROES
      client.write(flags);
      client.write(option(OPT_STRUCTURED_REPLY, new Uint8Array(0)));
      client.write(option(OPT_GO, goData(name)));
    }
  }

  /** The connections break under the session (the simulator's connection-drop fault). */
  abort(reason: string): void {
    if (this.state === "closed" || this.state === "idle") return;
    for (const c of this.connections) this.options.network.abort(c.client);
    this.close(reason);
  }

  submit(task: Task): void {
    if (!this.canSubmit) throw new Error("NbdSession.submit: cannot submit now");
    const cookie = this.cookieNext++;
    task.itt = Number(cookie);
    this.tasks.set(cookie, task);
    const type = task.kind === "read" ? CMD_READ : task.kind === "write" ? CMD_WRITE : CMD_FLUSH;
    const length = task.kind === "sync" ? 0 : task.blocks * BLOCK_BYTES;
    const request = new Uint8Array(28 + (task.kind === "write" ? length : 0));
    const v = new DataView(request.buffer);
    v.setUint32(0, 0x25609513);
    v.setUint16(4, task.fua && task.kind === "write" ? FLAG_FUA : 0);
    v.setUint16(6, type);
    v.setBigUint64(8, cookie);
    v.setBigUint64(16, task.kind === "sync" ? 0n : BigInt(task.lba * BLOCK_BYTES));
    v.setUint32(24, length);
    if (task.kind === "write") request.set(task.data, 28);
    this.connections[task.lun]!.client.write(request);
  }

  private close(reason: string, from?: Connection): void {
    if (this.state === "closed") return;
    if (from !== undefined && !this.connections.includes(from)) return; // an earlier session's connection
    this.state = "closed";
    for (const c of this.connections) if (!c.client.closed) this.options.network.abort(c.client);
    const lost = [...this.tasks.values()];
    this.tasks.clear();
    for (const task of lost) task.done({ kind: "lost", reason });
    this.options.onLost(reason);
  }

  private violation(message: string): void {
    this.options.onViolation(message);
    this.abort(`protocol violation: ${message}`);
  }

  private onData(c: Connection): void {
    // Bounded by the bytes received: every pass takes a whole message or stops.
    for (let guard = 0; guard < 100_000 && this.state !== "closed" && this.connections.includes(c); guard++) {
      if (!this.step(c)) return;
    }
  }

  // One message from connection c, if whole: false when more bytes are needed. A header is taken first and kept on
  // the connection until its payload has come.
  private step(c: Connection): boolean {
    const s = c.stream;
    if (c.phase === "greeting") {
      if (s.pending < 18) return false;
      const g = new DataView(s.take(18).buffer);
      if (g.getBigUint64(0) !== 0x4e42444d41474943n || g.getBigUint64(8) !== OPTS_MAGIC) return this.fail("bad greeting");
      c.phase = "options";
      return true;
    }
    if (c.header === undefined) {
      if (s.pending < 20) return false;
      c.header = new DataView(s.take(20).buffer);
    }
    const length = c.header.getUint32(16); // both headers keep their length there
    if (s.pending < length) return false;
    const header = c.header;
    c.header = undefined;
    const payload = s.take(length);
    return c.phase === "options" ? this.optionReply(c, header, payload) : this.chunk(header, payload);
  }

  // |0 magic u64|8 option u32|12 reply type u32|16 length u32|.
  private optionReply(c: Connection, h: DataView, payload: Uint8Array): boolean {
    if (h.getBigUint64(0) !== REP_MAGIC) return this.fail("bad option reply magic");
    const type = h.getUint32(12);
    if (type === REP_INFO) return true;
    if (type !== REP_ACK) return this.fail(`option ${h.getUint32(8)} refused with 0x${type.toString(16)} (${payload.length} bytes)`);
    c.optionsLeft -= 1;
    if (c.optionsLeft > 0) return true;
    c.phase = "transmission";
    if (this.connections.every((each) => each.phase === "transmission")) {
      this.state = "full";
      this.loginCount += 1;
      this.options.onReady();
    }
    return true;
  }

  // A structured reply chunk: |0 magic u32|4 flags u16|6 type u16|8 cookie u64|16 length u32|.
  private chunk(h: DataView, payload: Uint8Array): boolean {
    if (h.getUint32(0) !== STRUCTURED_MAGIC) return this.fail(`bad reply magic 0x${h.getUint32(0).toString(16)}`);
    const cookie = h.getBigUint64(8);
    const task = this.tasks.get(cookie);
    if (task === undefined) return this.fail(`a reply for cookie ${cookie}, which is not in flight`);
    const flags = h.getUint16(4);
    const type = h.getUint16(6);
    if ((flags & REPLY_DONE) === 0) return this.fail(`cookie ${cookie}: a chunk without DONE (reads are never fragmented)`);
    let outcome: Outcome = { kind: "good" };
    if (type === REPLY_ERROR) {
      const error = new DataView(payload.buffer).getUint32(0);
      const [senseKey, asc, ascq] = SENSE_OF_ERROR[error] ?? [0x4, 0, 0];
      outcome = { kind: "status", status: 0x02, senseKey, asc, ascq };
    } else if (type === REPLY_OFFSET_DATA) {
      if (task.kind !== "read") return this.fail(`cookie ${cookie}: data for a ${task.kind}`);
      const offset = new DataView(payload.buffer).getBigUint64(0);
      if (offset !== BigInt(task.lba * BLOCK_BYTES) || payload.length - 8 !== task.data.length) {
        return this.fail(`cookie ${cookie}: data at ${offset}, ${payload.length - 8} bytes, for a read of ${task.data.length} at ${task.lba * BLOCK_BYTES}`);
      }
      task.data.set(payload.subarray(8));
    } else if (type !== REPLY_NONE || task.kind === "read") {
      return this.fail(`cookie ${cookie}: reply type ${type} for a ${task.kind}`);
    }
    this.tasks.delete(cookie);
    task.done(outcome);
    return true;
  }

  private fail(message: string): boolean {
    this.violation(message);
    return false;
  }
}
