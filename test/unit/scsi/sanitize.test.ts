// SANITIZE (SBC-4; assembly/scsi/sanitize.ts) through the test build's fake transport, on the SCSI target's test
// board (two in-memory disks, LUN 0 of 16 MiB and LUN 1 of 8 MiB, 512-byte blocks): each service action's effect on
// what the disk then holds, every refused field with its sense, the logical unit NOT READY with the progress while the
// operation runs (and only INQUIRY, REPORT LUNS and REQUEST SENSE let through), the operation going on after its
// command is aborted, and failure mode after a failed write until a SANITIZE succeeds or EXIT FAILURE MODE. Every
// case ends with each record, buffer and service back where boot left them.
import { describe, expect, it } from "vitest";
import type { VirtioScsiDevice } from "../../../host/devices/virtio_scsi.ts";
import {
  A, B, be16, be32, be64, BLOCK, boot, CHECK_CONDITION, GOOD, Initiator, inquiry, Key, LUN0_BLOCKS, LUN1_BLOCKS,
  parseSense, pattern, requestSense, RESERVATION_CONFLICT, Tmf, TmfResponse, TASK_ABORTED, tur, read16, write10,
} from "../../support/scsi_probe.ts";

const NOT_READY = 0x2;
const MEDIUM_ERROR = 0x3;
const SA = { Overwrite: 0x01, BlockErase: 0x02, CryptoErase: 0x03, ExitFailureMode: 0x1f } as const;
const IMMED = 0x80;
const AUSE = 0x20;

const sanitize = (sa: number, listBytes = 0, flags = 0): number[] => [0x48, flags | sa, 0, 0, 0, 0, 0, ...be16(listBytes), 0];
/** An OVERWRITE parameter list: |0 INVERT, OVERWRITE COUNT|1 -|2-3 INITIALIZATION PATTERN LENGTH|4- pattern|. */
function overwriteList(patternBytes: number[], passes = 1, invert = false): Uint8Array {
  return Uint8Array.from([(invert ? 0x80 : 0) | passes, 0, ...be16(patternBytes.length), ...patternBytes]);
}
/** `blocks` blocks, each the pattern repeated from its first byte. */
function filled(patternBytes: number[], blocks: number): Uint8Array {
  const out = new Uint8Array(blocks * BLOCK);
  for (let i = 0; i < out.length; i++) out[i] = patternBytes[(i % BLOCK) % patternBytes.length]!;
  return out;
}
const reportLuns = (): number[] => [0xa0, 0, 0, 0, 0, 0, ...be32(256), 0, 0];
const getLbaStatus = (lba: number): number[] => [0x9e, 0x12, ...be64(lba), ...be32(64), 0, 0];

function controller(i: Initiator): VirtioScsiDevice { return i.t.board.controllers[0]! as VirtioScsiDevice; }

/** Runs the board in small steps until `task`'s SANITIZE has a write or unmap at the CTA: its operation is running. */
function untilServiceActive(i: Initiator, task: number): void {
  for (let n = 0; n < 2000 && i.t.call("testScsiServicesActive") === 0 && !i.done(task); n++) i.t.board.runFor(2_000);
  expect(i.t.call("testScsiServicesActive")).toBeGreaterThan(0);
}

/** The NOT READY, SANITIZE IN PROGRESS sense with its progress indication (SKSV, bytes 16-17); answers the progress. */
function inProgress(sense: Uint8Array): number {
  expect(sense.length).toBe(18);
  expect([sense[2]! & 0x0f, sense[12], sense[13]]).toEqual([NOT_READY, 0x04, 0x1b]);
  expect(sense[15]).toBe(0x80); // SKSV, and nothing else in byte 15: a progress indication
  return (sense[16]! << 8) | sense[17]!;
}

describe("SANITIZE's service actions, and what the medium holds afterwards", () => {
  it("OVERWRITE writes the pattern, repeated from the start of each block, over every block of the logical unit", () => {
    const i = boot();
    i.login(A);
    i.writeBlocks(1, 0, pattern(1, 4));
    i.writeBlocks(1, LUN1_BLOCKS - 4, pattern(2, 4));
    i.writeBlocks(0, 0, pattern(3, 2)); // the other logical unit is left alone
    const list = overwriteList([0xde, 0xad, 0xbe]);
    expect(i.run(sanitize(SA.Overwrite, list.length), { lun: 1, data: list }).status).toBe(GOOD);
    expect(i.readBlocks(1, 0, 4)).toEqual(filled([0xde, 0xad, 0xbe], 4));
    expect(i.readBlocks(1, LUN1_BLOCKS / 2, 3)).toEqual(filled([0xde, 0xad, 0xbe], 3));
    expect(i.readBlocks(1, LUN1_BLOCKS - 4, 4)).toEqual(filled([0xde, 0xad, 0xbe], 4));
    expect(i.readBlocks(0, 0, 2)).toEqual(pattern(3, 2));
    // A whole block of pattern; three passes, inverted between them: the last pass writes the pattern itself.
    const block = Array.from(pattern(4, 1));
    const three = overwriteList(block, 3, true);
    expect(i.run(sanitize(SA.Overwrite, three.length), { lun: 1, data: three }).status).toBe(GOOD);
    expect(i.readBlocks(1, 7, 2)).toEqual(filled(block, 2));
    // An even count with INVERT starts from the inverted pattern and so ends on the pattern too.
    const two = overwriteList([0x0f], 2, true);
    expect(i.run(sanitize(SA.Overwrite, two.length), { lun: 1, data: two }).status).toBe(GOOD);
    expect(i.readBlocks(1, LUN1_BLOCKS - 1, 1)).toEqual(filled([0x0f], 1));
    i.quiescent();
  });

  it("BLOCK ERASE and CRYPTOGRAPHIC ERASE deallocate every block: zeros read back, GET LBA STATUS says deallocated until a write", () => {
    const i = boot();
    i.login(A);
    for (const sa of [SA.BlockErase, SA.CryptoErase]) {
      i.writeBlocks(1, 0, pattern(sa, 8));
      i.writeBlocks(1, LUN1_BLOCKS - 8, pattern(sa + 1, 8));
      expect(i.good(getLbaStatus(0), { lun: 1, expected: 64 })[20]).toBe(0); // mapped
      expect(i.run(sanitize(sa), { lun: 1 }).status).toBe(GOOD);
      expect(i.readBlocks(1, 0, 8)).toEqual(new Uint8Array(8 * BLOCK));
      expect(i.readBlocks(1, LUN1_BLOCKS - 8, 8)).toEqual(new Uint8Array(8 * BLOCK));
      // One descriptor from the LBA to the end, PROVISIONING STATUS 1: deallocated.
      expect(i.good(getLbaStatus(0), { lun: 1, expected: 64 })).toEqual(
        Uint8Array.from([...be32(20), 0, 0, 0, 0, ...be64(0), ...be32(LUN1_BLOCKS), 1, 0, 0, 0]));
      expect(i.good(getLbaStatus(0), { lun: 0, expected: 64 })[20]).toBe(0); // the other logical unit: mapped
      // Reads and refused commands write nothing: still deallocated (libiscsi's test asks after both). A write maps.
      expect(i.check(sanitize(sa, 8), { lun: 1, data: new Uint8Array(8) })).toMatchObject({ asc: 0x24 });
      expect(i.readBlocks(1, 0, 1)).toEqual(new Uint8Array(BLOCK));
      expect(i.good(getLbaStatus(100), { lun: 1, expected: 64 })[20]).toBe(1);
      i.writeBlocks(1, 3, pattern(9, 1));
      expect(i.good(getLbaStatus(0), { lun: 1, expected: 64 })[20]).toBe(0);
    }
    // WABEREQ and WACEREQ 01b: reads after an erase complete without error, as they did above.
    expect(i.good(inquiry(1, 0xb1, 255), { lun: 1, expected: 255 })[7]).toBe(0x50);
    i.quiescent();
  });

  it("REPORT SUPPORTED OPERATION CODES lists each service action with IMMED and AUSE in its CDB usage data", () => {
    const i = boot();
    i.login(A);
    const rsoc = (sa: number) => [0xa3, 0x0c, 0x02, 0x48, ...be16(sa), ...be32(512), 0, 0];
    for (const sa of [SA.Overwrite, SA.BlockErase, SA.CryptoErase, SA.ExitFailureMode]) {
      expect(i.good(rsoc(sa), { expected: 512 })).toEqual(Uint8Array.from([0, 0x03, 0, 10, 0x48, 0xa0 | sa, 0, 0, 0, 0, 0, 0xff, 0xff, 0x00]));
    }
    expect(i.good(rsoc(0x00), { expected: 512 })).toEqual(Uint8Array.from([0, 0x01, 0, 0])); // not supported
    i.quiescent();
  });
});

describe("SANITIZE's refusals, each with its sense", () => {
  it("invalid service actions, reserved CDB bits and bytes: INVALID FIELD IN CDB with the field", () => {
    const i = boot();
    i.login(A);
    for (const sa of [0x00, 0x04, 0x10, 0x1e]) {
      expect(i.check(sanitize(sa))).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, ascq: 0, field: { inCdb: true, byte: 1, bit: 4 } });
    }
    expect(i.check(sanitize(SA.BlockErase, 0, 0x40))).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 1, bit: 6 } });
    for (let byte = 2; byte <= 6; byte++) {
      const cdb = sanitize(SA.CryptoErase);
      cdb[byte] = byte;
      expect(i.check(cdb)).toMatchObject({ asc: 0x24, field: { inCdb: true, byte } });
    }
    i.quiescent();
  });

  it("PARAMETER LIST LENGTH: 5 to block length + 4 for OVERWRITE, 0 for the others (INVALID FIELD IN CDB)", () => {
    const i = boot();
    i.login(A);
    const list = overwriteList(Array.from(pattern(5, 1)));
    for (const length of [0, 1, 4, BLOCK + 5]) {
      const data = length === 0 ? undefined : new Uint8Array(length);
      expect(i.check(sanitize(SA.Overwrite, length), { data })).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 7 } });
    }
    for (const sa of [SA.BlockErase, SA.CryptoErase, SA.ExitFailureMode]) {
      expect(i.check(sanitize(sa, 8), { data: new Uint8Array(8) })).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 7 } });
    }
    // Less Data-Out than the CDB announces: PARAMETER LIST LENGTH ERROR.
    expect(i.check(sanitize(SA.Overwrite, list.length), { data: list.subarray(0, 100) })).toMatchObject({ asc: 0x1a, field: { inCdb: true, byte: 7 } });
    i.quiescent();
  });

  it("the OVERWRITE parameter list: OVERWRITE COUNT 0, reserved bits, a pattern empty, longer than a block or than the list", () => {
    const i = boot();
    i.login(A);
    const bad = (list: Uint8Array) => i.check(sanitize(SA.Overwrite, list.length), { data: list });
    expect(bad(overwriteList([1, 2], 0))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 0, bit: 4 } });
    expect(bad(Uint8Array.from([0x21, 0, 0, 1, 7]))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 0, bit: 6 } });
    expect(bad(Uint8Array.from([0x01, 0x80, 0, 1, 7]))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 1 } });
    expect(bad(Uint8Array.from([0x01, 0, 0, 0, 7]))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 2 } });
    expect(bad(Uint8Array.from([0x01, 0, 0, 2, 7]))).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 2 } });
    const long = new Uint8Array(BLOCK + 4);
    long.set([0x01, 0, ...be16(BLOCK + 4)]);
    expect(bad(long)).toMatchObject({ asc: 0x26, field: { inCdb: false, byte: 2 } });
    // Nothing was written: the medium still reads as it did.
    i.writeBlocks(0, 0, pattern(6, 1));
    expect(bad(overwriteList([1], 0))).toMatchObject({ asc: 0x26 });
    expect(i.readBlocks(0, 0, 1)).toEqual(pattern(6, 1));
    i.quiescent();
  });

  it("another nexus's RESERVE (6): RESERVATION CONFLICT for every service action", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    expect(i.run([0x16, 0, 0, 0, 0, 0], { nexus: B }).status).toBe(GOOD); // RESERVE (6)
    const list = overwriteList([1]);
    expect(i.run(sanitize(SA.Overwrite, list.length), { data: list }).status).toBe(RESERVATION_CONFLICT);
    expect(i.run(sanitize(SA.BlockErase)).status).toBe(RESERVATION_CONFLICT);
    expect(i.run(sanitize(SA.CryptoErase)).status).toBe(RESERVATION_CONFLICT);
    expect(i.run([0x17, 0, 0, 0, 0, 0], { nexus: B }).status).toBe(GOOD); // RELEASE (6)
    expect(i.run(sanitize(SA.BlockErase)).status).toBe(GOOD);
    i.quiescent();
  });
});

describe("while a sanitize operation runs", () => {
  it("NOT READY, SANITIZE IN PROGRESS with a growing progress, INQUIRY, REPORT LUNS and REQUEST SENSE let through", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    const list = overwriteList([0x5a], 4); // four passes over 16 MiB: long enough to look at
    const task = i.submit(sanitize(SA.Overwrite, list.length), { data: list });
    untilServiceActive(i, task);
    const first = inProgress(i.run(tur()).sense);
    expect(inProgress(i.run(read16(0, 1), { expected: BLOCK }).sense)).toBeGreaterThanOrEqual(first);
    expect(inProgress(i.run(sanitize(SA.BlockErase), { nexus: B }).sense)).toBeGreaterThanOrEqual(first);
    expect(i.run(inquiry(0, 0, 96), { expected: 96 }).status).toBe(GOOD);
    expect(i.run(reportLuns(), { nexus: B, expected: 256 }).status).toBe(GOOD);
    // REQUEST SENSE answers GOOD with the progress as its data.
    const progress: number[] = [];
    for (let n = 0; n < 200 && !i.done(task); n++) {
      const r = i.run(requestSense(), { expected: 18 });
      expect(r.status).toBe(GOOD);
      if (i.done(task)) break;
      progress.push(inProgress(r.data));
      i.t.board.runFor(20_000);
    }
    expect(progress.length).toBeGreaterThan(1);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)!).toBeGreaterThan(progress[0]!);
    // The other logical unit is not sanitizing.
    expect(i.run(tur(), { lun: 1 }).status).toBe(GOOD);
    i.wait(task);
    expect(i.result(task).status).toBe(GOOD);
    i.release(task);
    i.t.call("testScsiStage", 0);
    expect(i.run(tur()).status).toBe(GOOD);
    expect(i.readBlocks(0, LUN0_BLOCKS - 2, 2)).toEqual(filled([0x5a], 2));
    const sense = i.run(requestSense(), { expected: 18 }).data;
    expect(parseSense(sense)).toMatchObject({ key: Key.NoSense, asc: 0, ascq: 0 });
    i.quiescent();
  });

  it("a SANITIZE whose list comes in after another one began gets NOT READY, not a second operation", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    const list = overwriteList([0x66]);
    const late = i.submit(sanitize(SA.Overwrite, list.length), { lun: 0, data: list, hold: true });
    i.t.board.runFor(100_000);
    expect(i.t.call("testScsiDataOutAsked", late)).toBe(list.length);
    const first = i.submit(sanitize(SA.BlockErase), { lun: 0, nexus: B, tag: 0x200 });
    untilServiceActive(i, first);
    i.t.call("testScsiDataOutSend", late, 0);
    i.wait(late);
    expect(inProgress(i.result(late).sense)).toBeGreaterThanOrEqual(0);
    i.release(late);
    i.wait(first);
    expect(i.result(first).status).toBe(GOOD);
    i.release(first);
    expect(i.readBlocks(0, 0, 1)).toEqual(new Uint8Array(BLOCK)); // erased, not overwritten
    i.quiescent();
  });

  it("waits for the commands already running on its unit before its first chunk: a write begun before it is overwritten too", () => {
    const i = boot();
    i.login(A);
    i.login(B);
    // A write to the unit's first blocks, under way (waiting for its Data-Out) when the SANITIZE comes.
    const before = i.submit(write10(0, 8), { lun: 1, nexus: B, data: pattern(70, 8), hold: true });
    i.t.board.runFor(100_000);
    expect(i.t.call("testScsiDataOutAsked", before)).toBe(8 * BLOCK);
    const list = overwriteList([0x5a]);
    expect(i.run(sanitize(SA.Overwrite, list.length, IMMED), { lun: 1, data: list }).status).toBe(GOOD);
    i.t.board.runFor(2_000_000);
    expect(i.t.call("testScsiServicesActive"), "no chunk while the write is under way (old code: the chunks began)").toBe(0);
    expect(inProgress(i.run(tur(), { lun: 1 }).sense), "NOT READY at once for what comes after it").toBe(0);
    i.t.call("testScsiDataOutSend", before, 0);
    i.wait(before);
    expect(i.result(before).status, "the write that came first completes").toBe(GOOD);
    i.release(before);
    for (let n = 0; n < 400 && i.run(tur(), { lun: 1 }).status !== GOOD; n++) i.t.board.runFor(50_000);
    expect(i.readBlocks(1, 0, 8), "the operation came after the write: the write's blocks hold the pattern").toEqual(filled([0x5a], 8));
    i.quiescent();
  });

  it("IMMED: GOOD once the list is checked, and the operation runs on", () => {
    const i = boot();
    i.login(A);
    const list = overwriteList([0x11, 0x22], 3);
    expect(i.run(sanitize(SA.Overwrite, list.length, IMMED), { data: list }).status).toBe(GOOD);
    expect(inProgress(i.run(tur()).sense)).toBeLessThan(65536);
    for (let n = 0; n < 400 && i.run(tur()).status !== GOOD; n++) i.t.board.runFor(50_000);
    expect(i.run(tur()).status).toBe(GOOD);
    expect(i.readBlocks(0, 100, 1)).toEqual(filled([0x11, 0x22], 1));
    i.quiescent();
  });

  it("the operation survives ABORT TASK of its command, ABORT TASK SET, LOGICAL UNIT RESET, target reset and its nexus's end", () => {
    const i = boot();
    i.login(A);
    const list = overwriteList([0x77], 6);
    const task = i.submit(sanitize(SA.Overwrite, list.length), { data: list, tag: 0x55 });
    untilServiceActive(i, task);
    const abort = i.tmf(A, 0, Tmf.AbortTask, 0x55);
    i.wait(abort);
    expect(i.t.call("testScsiTmfResponse", abort)).toBe(TmfResponse.Complete);
    i.release(abort);
    i.wait(task);
    expect(i.result(task)).toMatchObject({ status: TASK_ABORTED, aborted: true });
    i.release(task);
    i.t.call("testScsiStage", 0);
    for (const fn of [Tmf.AbortTaskSet, Tmf.LunReset, Tmf.TargetWarmReset]) {
      const tmf = i.tmf(A, 0, fn);
      i.wait(tmf);
      i.release(tmf);
    }
    i.t.call("testScsiNexusGone", A);
    i.t.board.runFor(10_000);
    // A new nexus finds the operation still running (after its POWER ON unit attention).
    expect(i.check(tur(), { nexus: B })).toMatchObject({ key: Key.UnitAttention });
    expect(inProgress(i.run(tur(), { nexus: B }).sense)).toBeGreaterThan(0);
    for (let n = 0; n < 400 && i.run(tur(), { nexus: B }).status !== GOOD; n++) i.t.board.runFor(50_000);
    expect(i.run(tur(), { nexus: B }).status).toBe(GOOD);
    expect(i.readBlocks(0, 0, 2, B)).toEqual(filled([0x77], 2));
    expect(i.readBlocks(0, LUN0_BLOCKS - 1, 1, B)).toEqual(filled([0x77], 1));
    i.quiescent();
  });
});

describe("failure mode", () => {
  it("a failed write: MEDIUM ERROR, SANITIZE COMMAND FAILED until a SANITIZE succeeds; with AUSE 0 no EXIT FAILURE MODE", () => {
    const i = boot();
    i.login(A);
    const list = overwriteList([0x33]);
    const task = i.submit(sanitize(SA.Overwrite, list.length), { lun: 1, data: list });
    untilServiceActive(i, task);
    controller(i).inject({ kind: "dma-fault-next" });
    i.wait(task);
    const failed = i.result(task);
    expect(failed.status).toBe(CHECK_CONDITION);
    expect(parseSense(failed.sense)).toMatchObject({ key: MEDIUM_ERROR, asc: 0x31, ascq: 0x03 });
    i.release(task);
    i.t.call("testScsiStage", 0);
    expect(i.check(tur(), { lun: 1 })).toMatchObject({ key: MEDIUM_ERROR, asc: 0x31, ascq: 0x03 });
    expect(i.check(read16(0, 1), { lun: 1, expected: BLOCK })).toMatchObject({ key: MEDIUM_ERROR, asc: 0x31, ascq: 0x03 });
    expect(parseSense(i.good(requestSense(), { lun: 1, expected: 18 }))).toMatchObject({ key: MEDIUM_ERROR, asc: 0x31, ascq: 0x03 });
    expect(i.run(inquiry(0, 0, 96), { lun: 1, expected: 96 }).status).toBe(GOOD);
    expect(i.run(tur(), { lun: 0 }).status).toBe(GOOD); // only the logical unit that failed
    // Restricted completion mode (AUSE 0): EXIT FAILURE MODE and AUSE 1 refused; a SANITIZE that succeeds ends it.
    expect(i.check(sanitize(SA.ExitFailureMode), { lun: 1 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 1, bit: 4 } });
    expect(i.check(sanitize(SA.BlockErase, 0, AUSE), { lun: 1 })).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 1, bit: 5 } });
    expect(i.run(sanitize(SA.BlockErase), { lun: 1 }).status).toBe(GOOD);
    expect(i.run(tur(), { lun: 1 }).status).toBe(GOOD);
    expect(i.readBlocks(1, 0, 1)).toEqual(new Uint8Array(BLOCK));
    i.quiescent();
  });

  it("after a failure with AUSE 1, EXIT FAILURE MODE leaves failure mode; with none to leave it is GOOD", () => {
    const i = boot();
    i.login(A);
    expect(i.run(sanitize(SA.ExitFailureMode), { lun: 1 }).status).toBe(GOOD);
    const list = overwriteList([0x44], 2);
    const task = i.submit(sanitize(SA.Overwrite, list.length, AUSE), { lun: 1, data: list });
    untilServiceActive(i, task);
    controller(i).inject({ kind: "dma-fault-next" });
    i.wait(task);
    expect(parseSense(i.result(task).sense)).toMatchObject({ key: MEDIUM_ERROR, asc: 0x31, ascq: 0x03 });
    i.release(task);
    i.t.call("testScsiStage", 0);
    expect(i.check(tur(), { lun: 1 })).toMatchObject({ key: MEDIUM_ERROR, asc: 0x31, ascq: 0x03 });
    expect(i.check(sanitize(SA.ExitFailureMode, 8), { lun: 1, data: new Uint8Array(8) })).toMatchObject({ asc: 0x24, field: { byte: 7 } });
    expect(i.run(sanitize(SA.ExitFailureMode), { lun: 1 }).status).toBe(GOOD);
    expect(i.run(tur(), { lun: 1 }).status).toBe(GOOD);
    i.quiescent();
  });
});
