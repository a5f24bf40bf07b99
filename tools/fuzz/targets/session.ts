// What the scsi, bus and nvme targets share: a board with one host processor, a disk and the NIC, a logged-in
// iSCSI session, the shadow model of the disk, and the end of every input (wait for every command, hang up,
// quiesce, check for leaks).
import type { FuzzBoard } from "../harness.ts";
import { FindingError } from "../harness.ts";
import type { LoopbackBackend } from "../../../host/devices/tcp_backend.ts";
import { FuzzInitiator, type Task } from "../iscsi_client.ts";
import type { InputReader } from "../target.ts";

export const BLOCK_BYTES = 512;
export const DISK_BLOCKS = 2048; // 1 MiB
export const SESSION_BOARD = { processors: [{ ramMiB: 8, disksMiB: [1], nic: true }] };
// Board time within which every command must be answered: the CTA gives a request up 5 s after it first sent it
// (assembly/cta/cta.ts, GIVE_UP_NS), past the DDM's 2 s device timeout and a controller reset or two, and answers
// it then; one more second covers the sweep and the answer's way back. Shorter, and a device that fails two
// requests in a row (timeout, reset, timeout again) looks like a lost command though the firmware keeps its bound.
export const ANSWER_WITHIN_NS = 6_000_000_000;

/** The disk as the initiator should see it: its content at the snapshot plus every write answered GOOD. */
export class ShadowDisk {
  readonly base: Uint8Array;
  readonly written = new Map<number, Uint8Array>(); // lba -> block, this input's writes
  readonly unknown = new Set<number>(); // blocks whose content a failed or raced write left undefined
  valid = true; // false once a command the model does not follow (WRITE SAME, UNMAP, ...) may have changed the disk

  constructor(fuzz: FuzzBoard) {
    this.base = new Uint8Array(DISK_BLOCKS * BLOCK_BYTES);
    fuzz.board.disk("host-disk0")!.read(0, this.base);
  }

  wrote(lba: number, data: Uint8Array, good: boolean): void {
    for (let i = 0; i * BLOCK_BYTES < data.length; i++) {
      if (good) {
        this.written.set(lba + i, data.slice(i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES));
        this.unknown.delete(lba + i);
      } else this.unknown.add(lba + i);
    }
  }

  /** Throws a data-mismatch finding if a GOOD read of `blocks` at `lba` returned other than the model holds. */
  check(lba: number, data: Uint8Array, what: string): void {
    if (!this.valid) return;
    for (let i = 0; i * BLOCK_BYTES < data.length; i++) {
      const block = lba + i;
      if (this.unknown.has(block) || block >= DISK_BLOCKS) continue;
      const expected = this.written.get(block) ?? this.base.subarray(block * BLOCK_BYTES, (block + 1) * BLOCK_BYTES);
      const got = data.subarray(i * BLOCK_BYTES, (i + 1) * BLOCK_BYTES);
      if (got.length === expected.length && Buffer.compare(got, expected) === 0) continue; // native; the loop names the byte
      for (let b = 0; b < BLOCK_BYTES; b++) {
        if (got[b] !== expected[b]) throw new FindingError({ kind: "data-mismatch", message: `${what}: block ${block} byte ${b} is 0x${got[b]?.toString(16)}, the shadow model holds 0x${expected[b]!.toString(16)}` });
      }
    }
  }

  reset(): void {
    this.written.clear();
    this.unknown.clear();
    this.valid = true;
  }
}

export interface SessionState {
  initiator: FuzzInitiator;
  shadow: ShadowDisk;
}

export function prepareSession(fuzz: FuzzBoard): SessionState {
  fuzz.board.runFor(100_000_000); // until the transport serves
  fuzz.recordBaseline();
  const initiator = new FuzzInitiator(fuzz.board, fuzz.board.network as LoopbackBackend);
  if (!initiator.login()) throw new Error(`the fuzzing board refused the standard login\n${fuzz.console.join("\n")}`);
  fuzz.board.runFor(1_000_000);
  return { initiator, shadow: new ShadowDisk(fuzz) };
}

/** The chunks as one array: the only chunk itself when there is one (most reads fit one Data-In PDU). */
export function joined(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** READ(10)/(16) of `blocks` at `lba`, waited for; a GOOD answer is checked against the shadow model. */
export function readChecked(fuzz: FuzzBoard, state: SessionState, lba: number, blocks: number, sixteen: boolean, wait: boolean): Task {
  const cdb = new Uint8Array(16);
  const v = new DataView(cdb.buffer);
  if (sixteen) {
    cdb[0] = 0x88;
    v.setUint32(6, lba);
    v.setUint32(10, blocks);
  } else {
    cdb[0] = 0x28;
    v.setUint32(2, lba);
    v.setUint16(7, blocks);
  }
  const task = state.initiator.command(0, cdb, blocks * BLOCK_BYTES, new Uint8Array(0), true);
  if (wait) settle(fuzz, state, task, lba);
  return task;
}

// The data of a WRITE with pattern byte p: (p + 7i + i/512) at byte i, made once per pattern (up to 16 blocks).
const PATTERN_BYTES = 16 * BLOCK_BYTES;
const patterns: (Uint8Array | undefined)[] = [];
function writePattern(pattern: number): Uint8Array {
  let data = patterns[pattern];
  if (data === undefined) {
    data = new Uint8Array(PATTERN_BYTES);
    for (let i = 0; i < data.length; i++) data[i] = (pattern + i * 7 + (i >> 9)) & 0xff;
    patterns[pattern] = data;
  }
  return data;
}

/** WRITE(10)/(16) of a pattern, waited for; the shadow model takes it if GOOD, forgets the blocks otherwise. */
export function writeChecked(fuzz: FuzzBoard, state: SessionState, lba: number, blocks: number, pattern: number, sixteen: boolean): void {
  if (blocks * BLOCK_BYTES > PATTERN_BYTES) throw new RangeError(`writeChecked: ${blocks} blocks, at most ${PATTERN_BYTES / BLOCK_BYTES}`);
  const data = writePattern(pattern).slice(0, blocks * BLOCK_BYTES);
  const cdb = new Uint8Array(16);
  const v = new DataView(cdb.buffer);
  if (sixteen) {
    cdb[0] = 0x8a;
    v.setUint32(6, lba);
    v.setUint32(10, blocks);
  } else {
    cdb[0] = 0x2a;
    v.setUint32(2, lba);
    v.setUint16(7, blocks);
  }
  const task = state.initiator.command(0, cdb, data.length, data, false);
  state.initiator.pumpUntil(() => task.status !== undefined, ANSWER_WITHIN_NS);
  if (lba + blocks <= DISK_BLOCKS) state.shadow.wrote(lba, data, task.status === 0);
}

/** A target whose READ operations are not waited for: each is checked once the input ends (checkReads). */
export interface ReadsInFlight {
  reads: { task: Task; lba: number }[]; // lba -1: not checked (a write landed while it was in flight)
}

/** Operation READ: LBA (2 bytes), blocks - 1 (1 byte); sent (READ(16) at odd LBAs) and not waited for, when `live`. */
export function readOperation(fuzz: FuzzBoard, state: SessionState & ReadsInFlight, input: InputReader, live: boolean, log: (line: string) => void): void {
  const lba = input.u16() % DISK_BLOCKS;
  const blocks = (input.u8() % 8) + 1;
  if (!live) return;
  log(`read LBA ${lba} blocks ${blocks}`);
  state.reads.push({ task: readChecked(fuzz, state, lba, blocks, (lba & 1) === 1, false), lba });
}

/** Operation WRITE: LBA (2 bytes), blocks - 1 (1 byte), pattern (1 byte); waited for, the shadow model follows it. */
export function writeOperation(fuzz: FuzzBoard, state: SessionState & ReadsInFlight, input: InputReader, live: boolean, log: (line: string) => void): void {
  const lba = input.u16() % DISK_BLOCKS;
  const blocks = (input.u8() % 8) + 1;
  const pattern = input.u8();
  if (!live) return;
  log(`write LBA ${lba} blocks ${blocks}`);
  for (const r of state.reads) r.lba = -1; // reads racing the write may see either content: not checked
  writeChecked(fuzz, state, lba, blocks, pattern, (lba & 1) === 1);
}

/** Once the input ended (finishSession): every READ answered GOOD holds what the shadow model says. */
export function checkReads(state: SessionState & ReadsInFlight): void {
  for (const r of state.reads) {
    if (r.lba >= 0 && r.task.status === 0 && r.task.response === 0) state.shadow.check(r.lba, joined(r.task.dataIn), `READ at LBA ${r.lba}`);
  }
}

/** Waits for a read and checks it; reads still outstanding at the end are checked by finish(). */
export function settle(fuzz: FuzzBoard, state: SessionState, task: Task, lba: number): void {
  state.initiator.pumpUntil(() => task.status !== undefined, ANSWER_WITHIN_NS);
  fuzz.check();
  if (task.status === 0 && task.response === 0) state.shadow.check(lba, joined(task.dataIn), `READ at LBA ${lba}`);
}

/** The end of every session input: every command answered, then hang up, quiesce, and the leak oracle. */
export function finishSession(fuzz: FuzzBoard, state: SessionState): void {
  const { initiator } = state;
  initiator.pumpUntil(() => initiator.outstanding() === 0, ANSWER_WITHIN_NS);
  fuzz.check();
  if (initiator.outstanding() > 0 && !initiator.client.closed) {
    // Outstanding: neither answered nor rejected.
    const lost = [...initiator.tasks.values()].filter((t) => t.status === undefined).map((t) => `ITT ${t.itt} opcode 0x${t.cdb[0]!.toString(16)}`);
    throw new FindingError({ kind: "lost-command", message: `no response in ${ANSWER_WITHIN_NS / 1e9} s of board time to ${lost.length} commands, the first ${lost[0]}` });
  }
  quiesce(fuzz, initiator);
}

export function quiesce(fuzz: FuzzBoard, initiator: FuzzInitiator | undefined): void {
  if (initiator !== undefined && !initiator.client.closed) initiator.client.end();
  fuzz.quiesce(ANSWER_WITHIN_NS);
}
