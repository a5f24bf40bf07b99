// iSCSI PDUs (RFC 7143) for the tools and tests that play an initiator: opcodes, building a PDU, text keys, the LUN
// field, and cutting PDUs out of a loopback client's byte stream. No state, no checks: the callers decide what is
// right (test/support/iscsi_initiator.ts checks a target strictly, the simulator's sessions check the protocol,
// the fuzzer's client trusts nothing).
import type { ClientEnd } from "../../host/devices/tcp_backend.ts";

export const BHS_BYTES = 48;
export const BLOCK_BYTES = 512;

export const Op = {
  NopOut: 0x00, ScsiCommand: 0x01, TmfRequest: 0x02, LoginRequest: 0x03, TextRequest: 0x04, DataOut: 0x05, LogoutRequest: 0x06, Snack: 0x10,
  NopIn: 0x20, ScsiResponse: 0x21, TmfResponse: 0x22, LoginResponse: 0x23, TextResponse: 0x24, DataIn: 0x25, LogoutResponse: 0x26,
  R2t: 0x31, AsyncMessage: 0x32, Reject: 0x3f,
} as const;

// " sense K/ASC/ASCQ" from a SCSI Response data segment (|0-1 SenseLength|fixed-format sense|), or "".
export function senseText(data: Uint8Array): string {
  if (data.length < 2 + 14) return "";
  const sense = data.subarray(2);
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return ` sense ${hex(sense[2]! & 0x0f)}/${hex(sense[12]!)}/${hex(sense[13]!)}`;
}

/** One PDU as received: its BHS, AHS and data segment (padding removed). */
export interface Pdu {
  bhs: Uint8Array;
  ahs: Uint8Array;
  data: Uint8Array;
}

export const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
export const opcodeOf = (bhs: Uint8Array): number => bhs[0]! & 0x3f;
export const u32At = (bhs: Uint8Array, at: number): number => view(bhs).getUint32(at);
export const dataSegmentLength = (bhs: Uint8Array): number => (bhs[5]! << 16) | (bhs[6]! << 8) | bhs[7]!;
export const pad4 = (n: number) => (n + 3) & ~3;

/** Builds a PDU: a 48-byte BHS (filled by `fill`), then the data segment padded to 4 bytes. DSL is set from `data`. */
export function pdu(fill: (bhs: Uint8Array, v: DataView) => void, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const bytes = new Uint8Array(BHS_BYTES + pad4(data.length));
  const bhs = bytes.subarray(0, BHS_BYTES);
  fill(bhs, view(bhs));
  bhs[5] = (data.length >> 16) & 0xff;
  bhs[6] = (data.length >> 8) & 0xff;
  bhs[7] = data.length & 0xff;
  bytes.set(data, BHS_BYTES);
  return bytes;
}

/** key=value pairs, each NUL-terminated (RFC 7143, text format). */
export function textKeys(pairs: readonly (readonly [string, string])[]): Uint8Array {
  return new TextEncoder().encode(pairs.map(([k, v]) => `${k}=${v}\0`).join(""));
}

export function parseKeys(data: Uint8Array): Map<string, string> {
  const keys = new Map<string, string>();
  for (const item of new TextDecoder().decode(data).split("\0")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    keys.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? "" : item.slice(eq + 1));
  }
  return keys;
}

/** The 8-byte LUN field for LUN `lun` (peripheral device addressing, < 256). */
export function lunField(lun: number): Uint8Array {
  const field = new Uint8Array(8);
  field[1] = lun;
  return field;
}

/** The fields of a SCSI Data-Out PDU (RFC 7143 §11.7); `lun` is the 8-byte LUN field (lunField). */
export interface DataOutFields {
  final: boolean;
  lun: Uint8Array;
  itt: number;
  ttt: number; // 0xffffffff for unsolicited data
  expStatSn: number;
  dataSn: number;
  offset: number; // Buffer Offset
}

/** A Data-Out PDU carrying `data`. */
export function dataOutPdu(f: DataOutFields, data: Uint8Array): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = Op.DataOut;
    bhs[1] = f.final ? 0x80 : 0;
    bhs.set(f.lun, 8);
    v.setUint32(16, f.itt);
    v.setUint32(20, f.ttt);
    v.setUint32(28, f.expStatSn);
    v.setUint32(36, f.dataSn);
    v.setUint32(40, f.offset);
  }, data);
}

/**
 * Cuts PDUs out of a client's byte stream. Replaces the client's delivery so bytes are not also kept in its inbox
 * (a long session reads many MiB).
 */
export class PduReader {
  private chunks: Uint8Array[] = [];
  private bytes = 0;
  /** Every byte received so far, for tests that look at the raw stream. */
  totalBytes = 0;

  /** `onData`, when given, runs after each chunk arrives (an event-driven reader takes its PDUs there). */
  constructor(client: ClientEnd, onData?: () => void) {
    client.deliver = (chunk: Uint8Array) => {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
      this.totalBytes += chunk.length;
      onData?.();
    };
  }

  get pending(): number {
    return this.bytes;
  }

  // The first `n` bytes (the caller made sure they are in): joins only the chunks that hold them, not the whole
  // backlog, which a deep pipeline makes long.
  private peek(n: number): Uint8Array {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    let count = 0;
    let bytes = 0;
    while (bytes < n) bytes += this.chunks[count++]!.length;
    const joined = new Uint8Array(bytes);
    for (let i = 0, at = 0; i < count; at += this.chunks[i]!.length, i++) joined.set(this.chunks[i]!, at);
    this.chunks.splice(0, count, joined);
    return joined.subarray(0, n);
  }

  // A view, not a copy: the chunks are the reader's own (the loopback copies what the NIC sends) and never change.
  private take(n: number): Uint8Array {
    const out = this.peek(n);
    const first = this.chunks[0]!;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.bytes -= n;
    return out;
  }

  /** The next whole PDU, or undefined when not all of it is in yet. */
  next(): Pdu | undefined {
    if (this.bytes < BHS_BYTES) return undefined;
    const head = this.peek(BHS_BYTES);
    const ahsBytes = head[4]! * 4;
    const dsl = dataSegmentLength(head);
    const total = BHS_BYTES + ahsBytes + pad4(dsl);
    if (this.bytes < total) return undefined;
    const all = this.take(total);
    return { bhs: all.subarray(0, BHS_BYTES), ahs: all.subarray(BHS_BYTES, BHS_BYTES + ahsBytes), data: all.subarray(BHS_BYTES + ahsBytes, BHS_BYTES + ahsBytes + dsl) };
  }
}

