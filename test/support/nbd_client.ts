// A scripted NBD client on a LoopbackBackend connection, on the board clock: it builds the protocol's messages
// (NetworkBlockDevice/nbd doc/proto.md) byte by byte and reads the server's answers, so tests can send what a real
// client would, and what it never would.
import type { Board } from "../../host/board/board.ts";
import type { ClientEnd, LoopbackBackend } from "../../host/devices/tcp_backend.ts";

export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
export const NBD_REP_MAGIC = 0x0003e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const Opt = { ExportName: 1, Abort: 2, List: 3, StartTls: 5, Info: 6, Go: 7, StructuredReply: 8, ListMetaContext: 9, SetMetaContext: 10 } as const;
export const Rep = { Ack: 1, Server: 2, Info: 3, MetaContext: 4, ErrUnsup: 0x8000_0001, ErrInvalid: 0x8000_0003, ErrUnknown: 0x8000_0006, ErrTooBig: 0x8000_0009 } as const;
export const Cmd = { Read: 0, Write: 1, Disc: 2, Flush: 3, Trim: 4, Cache: 5, WriteZeroes: 6, BlockStatus: 7 } as const;
export const Err = { EPERM: 1, EIO: 5, EINVAL: 22, ENOSPC: 28 } as const;
export const FLAG_FUA = 1;

export interface OptionReply { option: number; type: number; data: Uint8Array }
export interface Reply { cookie: bigint; error: number; type: number; flags: number; data: Uint8Array }

const text = (s: string) => new TextEncoder().encode(s);

function concat(...parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** An option: |IHAVEOPT u64|option u32|length u32|data|. */
export function option(opt: number, data: Uint8Array = new Uint8Array(0), magic = NBD_OPTS_MAGIC): Uint8Array {
  const header = new DataView(new ArrayBuffer(16));
  header.setBigUint64(0, magic);
  header.setUint32(8, opt);
  header.setUint32(12, data.length);
  return concat(new Uint8Array(header.buffer), data);
}

/** NBD_OPT_GO / NBD_OPT_INFO data: |name length u32|name|info count u16|infos u16…|. */
export function goData(name: string, infos: number[] = []): Uint8Array {
  const n = text(name);
  const v = new DataView(new ArrayBuffer(4 + n.length + 2 + 2 * infos.length));
  v.setUint32(0, n.length);
  new Uint8Array(v.buffer).set(n, 4);
  v.setUint16(4 + n.length, infos.length);
  infos.forEach((info, i) => v.setUint16(6 + n.length + 2 * i, info));
  return new Uint8Array(v.buffer);
}

/** NBD_OPT_{LIST,SET}_META_CONTEXT data: |name length u32|name|query count u32|queries: |length u32|query||. */
export function metaData(name: string, queries: string[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const u32 = (x: number) => { const v = new DataView(new ArrayBuffer(4)); v.setUint32(0, x); return new Uint8Array(v.buffer); };
  parts.push(u32(text(name).length), text(name), u32(queries.length));
  for (const q of queries) parts.push(u32(text(q).length), text(q));
  return concat(...parts);
}

/** A request: |magic u32|flags u16|type u16|cookie u64|offset u64|length u32|payload|. */
export function request(type: number, cookie: bigint, offset: bigint, length: number, flags = 0, payload: Uint8Array = new Uint8Array(0), magic = NBD_REQUEST_MAGIC): Uint8Array {
  const v = new DataView(new ArrayBuffer(28));
  v.setUint32(0, magic);
  v.setUint16(4, flags);
  v.setUint16(6, type);
  v.setBigUint64(8, cookie);
  v.setBigUint64(16, offset);
  v.setUint32(24, length);
  return concat(new Uint8Array(v.buffer), payload);
}

export class NbdClient {
  readonly client: ClientEnd;
  private at = 0; // bytes of the server's stream already parsed
  structured = false;

  constructor(readonly board: Board, network: LoopbackBackend, portal = 0) {
    this.client = network.connect(portal);
  }

  /** Runs the board until `n` more bytes have come (or the connection closed); undefined if they did not. */
  take(n: number, stepNs = 1_000_000, steps = 2000): Uint8Array | undefined {
    for (let i = 0; i < steps && this.client.received().length - this.at < n && !this.client.closed; i++) this.board.runFor(stepNs);
    const all = this.client.received();
    if (all.length - this.at < n) return undefined;
    const bytes = all.slice(this.at, this.at + n);
    this.at += n;
    return bytes;
  }

  /** Runs the board until the server closes the connection; true if it did. */
  closedByServer(steps = 500): boolean {
    for (let i = 0; i < steps && !this.client.closed; i++) this.board.runFor(1_000_000);
    return this.client.closed;
  }

  /** The greeting, then our flags (fixed newstyle, no zeroes unless told). Returns the handshake flags. */
  greet(clientFlags = 3): number {
    const greeting = this.take(18)!;
    const v = new DataView(greeting.buffer);
    if (v.getBigUint64(0) !== 0x4e42444d41474943n || v.getBigUint64(8) !== NBD_OPTS_MAGIC) throw new Error("bad greeting");
    const flags = new DataView(new ArrayBuffer(4));
    flags.setUint32(0, clientFlags);
    this.client.write(new Uint8Array(flags.buffer));
    return v.getUint16(16);
  }

  /** Sends an option and reads replies up to and including the first that is not NBD_REP_SERVER/INFO/META_CONTEXT. */
  option(opt: number, data?: Uint8Array): OptionReply[] {
    this.client.write(option(opt, data));
    const replies: OptionReply[] = [];
    for (;;) {
      const header = this.take(20);
      if (header === undefined) return replies;
      const v = new DataView(header.buffer);
      if (v.getBigUint64(0) !== NBD_REP_MAGIC) throw new Error("bad option reply magic");
      const length = v.getUint32(16);
      const reply = { option: v.getUint32(8), type: v.getUint32(12), data: length > 0 ? this.take(length)! : new Uint8Array(0) };
      replies.push(reply);
      if (reply.type !== Rep.Server && reply.type !== Rep.Info && reply.type !== Rep.MetaContext) return replies;
    }
  }

  /** Structured replies, base:allocation, then GO on `name`: the export's size. */
  open(name: string): bigint {
    this.greet();
    expect1(this.option(Opt.StructuredReply).at(-1)!.type, Rep.Ack);
    this.structured = true;
    expect1(this.option(Opt.SetMetaContext, metaData(name, ["base:allocation"])).at(-1)!.type, Rep.Ack);
    const replies = this.option(Opt.Go, goData(name));
    expect1(replies.at(-1)!.type, Rep.Ack);
    const info = replies.find((r) => r.type === Rep.Info && new DataView(r.data.buffer).getUint16(0) === 0)!;
    return new DataView(info.data.buffer).getBigUint64(2);
  }

  send(bytes: Uint8Array): void {
    this.client.write(bytes);
  }

  /** The next reply (structured: one chunk, its payload whole); undefined if none came. `readBytes` for a simple read. */
  reply(readBytes = 0): Reply | undefined {
    const first = this.take(4);
    if (first === undefined) return undefined;
    const magic = new DataView(first.buffer).getUint32(0);
    if (magic === SIMPLE_REPLY_MAGIC) {
      const rest = new DataView(this.take(12)!.buffer);
      const error = rest.getUint32(0);
      return { cookie: rest.getBigUint64(4), error, type: 0, flags: 1, data: error === 0 && readBytes > 0 ? this.take(readBytes)! : new Uint8Array(0) };
    }
    if (magic !== STRUCTURED_REPLY_MAGIC) throw new Error(`bad reply magic ${magic.toString(16)}`);
    const rest = new DataView(this.take(16)!.buffer);
    const length = rest.getUint32(12);
    const payload = length > 0 ? this.take(length)! : new Uint8Array(0);
    const type = rest.getUint16(2);
    const error = type === 0x8001 ? new DataView(payload.buffer).getUint32(0) : 0;
    return { cookie: rest.getBigUint64(4), error, type, flags: rest.getUint16(0), data: type === 1 ? payload.slice(8) : payload };
  }
}

function expect1(actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`expected ${expected.toString(16)}, got ${actual.toString(16)}`);
}

export const exportName = text;
