// Persistent reservations through power loss (SPC-4, Preserving persistent reservations and registrations; APTPL)
// on the probe's board with an NVRAM card whose array is a file in the data directory (docs/hardware.md, "nvram";
// assembly/scsi/pr_record.ts). Each case registers and reserves as named initiator ports, powers the board off, builds
// a new board on the same data directory and looks at what came back: everything with APTPL one, nothing with APTPL
// zero, and a damaged record refused with a console line naming the volume, the copy and the check.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  boot, fullStatus, GOOD, identify, type Initiator, Key, pattern, portName, prIn, prList, prOut, readKeys,
  RESERVATION_CONFLICT, tur, write10,
} from "../../support/scsi_probe.ts";
import { sourceConstants } from "../../support/shared_constants.ts";
import { NVRAM_SIZE_DEFAULT_KIB } from "../../../host/devices/nvram.ts";
import { makeRecord, PR_RECORD_COPY_BYTES, PR_RECORD_MAGIC } from "../../../tools/fuzz/pr_record.ts";

const record = sourceConstants("assembly/scsi/pr_record.ts"); // the record's layout, as the firmware defines it
const COPY_BYTES = Number(record.get("PR_RECORD_COPY_BYTES"));
const MAGIC = Number(record.get("PR_RECORD_MAGIC"));
const HEADER_BYTES = Number(record.get("PR_RECORD_HEADER_BYTES"));
const APTPL = 0x01;
const WRITE_EXCLUSIVE = 1;
const kx = 0x1111n;
const ky = 0x2222n;

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "wasm-iop-aptpl-"));
  dirs.push(d);
  return d;
}

function start(dir: string): Initiator {
  return boot(undefined, { nvram: "file", dataDir: dir });
}

/** Powers the board off (the NVRAM file closed) after checking every buffer is back. */
function stop(i: Initiator): void {
  i.quiescent();
  i.t.board.powerOff();
}

/** Two named initiator ports, logged in (their POWER ON heard on both LUNs). */
function ports(i: Initiator): { x: number; y: number } {
  const x = identify(i, portName("host1", 1));
  const y = identify(i, portName("host2", 2));
  i.login(x);
  i.login(y);
  return { x, y };
}

/** REPORT CAPABILITIES bytes 2 and 3: PTPL_C is bit 0 of byte 2, PTPL_A bit 0 of byte 3. */
function capabilities(i: Initiator, nexus: number, lun = 0): [number, number] {
  const d = i.good(prIn(2), { nexus, lun, expected: 4096 });
  return [d[2]!, d[3]!];
}

/** READ RESERVATION as [key, type], or undefined with none. */
function reservation(i: Initiator, nexus: number, lun = 0): [bigint, number] | undefined {
  const d = i.good(prIn(1), { nexus, lun, expected: 4096 });
  const v = new DataView(d.buffer, d.byteOffset);
  return v.getUint32(4) === 0 ? undefined : [v.getBigUint64(8), d[21]! & 0x0f];
}

function writeStatus(i: Initiator, nexus: number): number {
  return i.run(write10(100, 1), { nexus, data: pattern(nexus, 1) }).status;
}

/** x and y register on LUN 0 (`flags`: APTPL or not), x takes a Write Exclusive reservation. */
function registerAndReserve(i: Initiator, x: number, y: number, flags: number): void {
  i.good(prOut(0), { nexus: x, data: prList(0n, kx, flags) });
  i.good(prOut(0), { nexus: y, data: prList(0n, ky, flags) });
  i.good(prOut(1, WRITE_EXCLUSIVE), { nexus: x, data: prList(kx, 0n) });
  expect(writeStatus(i, y)).toBe(RESERVATION_CONFLICT);
}

function nvramFile(dir: string): Buffer { return readFileSync(join(dir, "nvram.bin")); }

function recordSequence(file: Buffer, volume: number, copy: number): bigint | undefined {
  const at = (volume * 2 + copy) * COPY_BYTES;
  return file.readUInt32LE(at) === MAGIC ? file.readBigUInt64LE(at + 8) : undefined;
}

describe("persistent reservations through power loss (APTPL)", () => {
  it("the default NVRAM holds both copies of every volume's record", () => {
    expect(COPY_BYTES).toBeGreaterThan(0);
    expect(NVRAM_SIZE_DEFAULT_KIB * 1024).toBeGreaterThanOrEqual(16 * 2 * COPY_BYTES); // VOLUMES_MAX volumes
  });

  it("with APTPL one, the registrations and the reservation come back after the board restarts on the same data dir", () => {
    const dir = dataDir();
    let i = start(dir);
    let { x, y } = ports(i);
    expect(capabilities(i, x)).toEqual([0x0d, 0x80]); // SIP_C, ATP_C, PTPL_C; TMV, PTPL_A 0
    registerAndReserve(i, x, y, APTPL);
    expect(capabilities(i, x)).toEqual([0x0d, 0x81]); // PTPL_A: the last APTPL was one
    // LUN 1: registered without APTPL, so a power cycle is to lose it.
    i.good(prOut(0), { nexus: x, lun: 1, data: prList(0n, 0x77n) });
    // Durable before GOOD: the answered commands' record is in the NVRAM's file already, and was synced.
    expect(i.t.board.nvrams[0]!.syncCount).toBe(3);
    expect(recordSequence(nvramFile(dir), 0, 0)).toBe(3n); // register x, register y (copy 1), reserve
    expect(recordSequence(nvramFile(dir), 0, 1)).toBe(2n);
    expect(recordSequence(nvramFile(dir), 1, 0)).toBeUndefined();
    stop(i);

    i = start(dir);
    expect(i.t.console.join("\n")).toContain("pr: volume 0: 2 registrations and its reservation restored from the NVRAM (APTPL)");
    ({ x, y } = ports(i));
    expect(readKeys(i, x)).toEqual([0, [kx, ky]]); // SPC-4: the generation starts at zero after power on
    expect(reservation(i, y)).toEqual([kx, WRITE_EXCLUSIVE]);
    expect(fullStatus(i, y).map((d) => [d.key, d.flags & 1, d.name])).toEqual([[kx, 1, portName("host1", 1)], [ky, 0, portName("host2", 2)]]);
    expect(writeStatus(i, y)).toBe(RESERVATION_CONFLICT);
    expect(writeStatus(i, x)).toBe(GOOD);
    expect(capabilities(i, x)).toEqual([0x0d, 0x81]);
    expect(readKeys(i, x, 1)).toEqual([0, []]);
    expect(capabilities(i, x, 1)).toEqual([0x0d, 0x80]);
    // The restored holder releases; the state after that is kept too.
    i.good(prOut(2, WRITE_EXCLUSIVE), { nexus: x, data: prList(kx, 0n) });
    expect(writeStatus(i, y)).toBe(GOOD);
    stop(i);

    i = start(dir);
    ({ x, y } = ports(i));
    expect(readKeys(i, x)).toEqual([0, [kx, ky]]);
    expect(reservation(i, x)).toBeUndefined();
    stop(i);
  });

  it("with APTPL zero they are gone after the restart, also when an earlier registration had APTPL one", () => {
    const dir = dataDir();
    let i = start(dir);
    let { x, y } = ports(i);
    registerAndReserve(i, x, y, 0);
    expect(i.t.board.nvrams[0]!.syncCount).toBe(0); // APTPL zero throughout: nothing to keep, nothing written
    i.good(prOut(0), { nexus: x, lun: 1, data: prList(0n, 0x77n, APTPL) });
    i.good(prOut(1, WRITE_EXCLUSIVE), { nexus: x, lun: 1, data: prList(0x77n, 0n) });
    i.good(prOut(6), { nexus: y, lun: 1, data: prList(0n, 0x88n, 0) }); // REGISTER AND IGNORE EXISTING KEY, APTPL 0
    expect(capabilities(i, x, 1)).toEqual([0x0d, 0x80]);
    stop(i);

    i = start(dir);
    expect(i.t.console.join("\n")).not.toContain("restored from the NVRAM");
    ({ x, y } = ports(i));
    expect(readKeys(i, x)).toEqual([0, []]);
    expect(readKeys(i, x, 1)).toEqual([0, []]);
    expect(reservation(i, x, 1)).toBeUndefined();
    expect(writeStatus(i, y)).toBe(GOOD);
    stop(i);
  });

  it("a damaged copy is refused with a console line; the other copy, the state before the last command, is used", () => {
    const dir = dataDir();
    let i = start(dir);
    let { x, y } = ports(i);
    registerAndReserve(i, x, y, APTPL); // sequences 1 (copy 0), 2 (copy 1), 3 (copy 0)
    stop(i);
    const file = nvramFile(dir);
    file[0 * COPY_BYTES + HEADER_BYTES + 3] ^= 0x40; // a bit of copy 0's first key: the reservation's record
    writeFileSync(join(dir, "nvram.bin"), file);

    i = start(dir);
    const consoleText = i.t.console.join("\n");
    expect(consoleText).toContain("pr: volume 0: NVRAM record copy 0 refused: checksum mismatch");
    expect(consoleText).toContain("pr: volume 0: 2 registrations and no reservation restored");
    ({ x, y } = ports(i));
    expect(readKeys(i, x)).toEqual([0, [kx, ky]]);
    expect(reservation(i, x)).toBeUndefined();
    // The next change writes over the damaged copy, not the one in use.
    i.good(prOut(1, WRITE_EXCLUSIVE), { nexus: y, data: prList(ky, 0n) });
    expect(recordSequence(nvramFile(dir), 0, 0)).toBe(3n);
    expect(recordSequence(nvramFile(dir), 0, 1)).toBe(2n);
    stop(i);
  });

  it("a power cut in the middle of a record's store: the command is undone and not answered GOOD, and the boot takes the other copy", () => {
    const dir = dataDir();
    let i = start(dir);
    let { x, y } = ports(i);
    i.good(prOut(0), { nexus: x, data: prList(0n, kx, APTPL) }); // sequence 1, copy 0
    i.good(prOut(0), { nexus: y, data: prList(0n, ky, APTPL) }); // sequence 2, copy 1
    i.t.board.nvrams[0]!.cutPowerAfter(5); // the RESERVE's record (to copy 0) stops after 5 of its 8-byte stores
    expect(i.check(prOut(1, WRITE_EXCLUSIVE), { nexus: x, data: prList(kx, 0n) })).toEqual({ key: 0x4, asc: 0x44, ascq: 0x00 }); // HARDWARE ERROR, INTERNAL TARGET FAILURE
    expect(i.t.board.nvrams[0]!.droppedStoreCount).toBeGreaterThan(0);
    expect(i.t.console.join("\n")).toContain("pr: volume 0: the NVRAM did not keep record copy 0");
    // The command was undone: no reservation now either, and y may write.
    expect(reservation(i, y)).toBeUndefined();
    expect(readKeys(i, y)).toEqual([2, [kx, ky]]);
    expect(writeStatus(i, y)).toBe(GOOD);
    stop(i);

    i = start(dir);
    const consoleText = i.t.console.join("\n");
    expect(consoleText).toContain("pr: volume 0: NVRAM record copy 0 refused: checksum mismatch"); // torn: old tail, new head
    expect(consoleText).toContain("pr: volume 0: 2 registrations and no reservation restored");
    ({ x, y } = ports(i));
    expect(readKeys(i, x)).toEqual([0, [kx, ky]]);
    expect(reservation(i, x)).toBeUndefined();
    stop(i);
  });

  it("refuses copies that are not records, that have an unknown version, or that are another volume's", () => {
    const dir = dataDir();
    let i = start(dir);
    let { x, y } = ports(i);
    registerAndReserve(i, x, y, APTPL);
    stop(i);
    const file = nvramFile(dir);
    file.writeUInt32LE(0xdead_beef, 0); // copy 0: not a record
    file.writeUInt16LE(9, COPY_BYTES + 4); // copy 1: version 9
    file.copy(file, 2 * COPY_BYTES, 0, COPY_BYTES); // volume 1 copy 0: garbage too
    // Volume 1 copy 1: a valid record, but of volume 0 (host-disk0), whose name does not match host-disk1.
    const good = start(dataDir()); // a record of volume 0 made on a fresh board, for its bytes
    const g = ports(good);
    good.good(prOut(0), { nexus: g.x, data: prList(0n, kx, APTPL) });
    const fresh = nvramFile(dirs.at(-1)!);
    stop(good);
    fresh.copy(file, 3 * COPY_BYTES, 0, COPY_BYTES);
    writeFileSync(join(dir, "nvram.bin"), file);

    i = start(dir);
    const consoleText = i.t.console.join("\n");
    expect(consoleText).toContain("pr: volume 0: NVRAM record copy 0 refused: bad magic");
    expect(consoleText).toContain("pr: volume 0: NVRAM record copy 1 refused: unknown version");
    expect(consoleText).toContain("pr: volume 1: NVRAM record copy 0 refused: bad magic");
    expect(consoleText).toContain('pr: volume 1: NVRAM record copy 1 is for volume "host-disk0": refused');
    expect(consoleText).not.toContain("restored from the NVRAM");
    ({ x, y } = ports(i));
    expect(readKeys(i, x)).toEqual([0, []]);
    expect(readKeys(i, x, 1)).toEqual([0, []]);
    expect(i.run(tur(), { nexus: y }).status).toBe(GOOD);
    // A new registration with APTPL writes a fresh record over a refused copy and is kept again.
    i.good(prOut(0), { nexus: x, data: prList(0n, kx, APTPL) });
    stop(i);
    i = start(dir);
    ({ x } = ports(i));
    expect(readKeys(i, x)).toEqual([0, [kx]]);
    stop(i);
  });

  it("restores a record made by the nvram fuzz target's writer (the two layouts agree)", () => {
    expect([PR_RECORD_COPY_BYTES, PR_RECORD_MAGIC]).toEqual([COPY_BYTES, MAGIC]);
    const dir = dataDir();
    stop(start(dir)); // makes nvram.bin
    const file = nvramFile(dir);
    const entries = [{ key: kx, flags: 0, targetPort: 1, name: portName("host1", 1) }, { key: ky, flags: 1, targetPort: 1, name: portName("host2", 2) }];
    file.set(makeRecord({ sequence: 5n, type: 3, holder: 1, aptpl: 1, volume: "host-disk1", entries }), 3 * COPY_BYTES); // volume 1, copy 1
    writeFileSync(join(dir, "nvram.bin"), file);
    const i = start(dir);
    expect(i.t.console.join("\n")).toContain("pr: volume 1: 2 registrations and its reservation restored");
    const { x } = ports(i);
    expect(readKeys(i, x, 1)).toEqual([0, [kx, ky]]);
    expect(reservation(i, x, 1)).toEqual([ky, 3]);
    expect(fullStatus(i, x, 1).map((d) => d.flags)).toEqual([0, 0x03]); // y: ALL_TG_PT and the holder
    expect(i.run(write10(0, 1), { nexus: x, lun: 1, data: pattern(1, 1) }).status).toBe(RESERVATION_CONFLICT); // Exclusive Access, y's
    stop(i);
  });

  it("without an NVRAM, APTPL one is refused and PTPL_C is zero", () => {
    const i = boot();
    const { x } = ports(i);
    expect(capabilities(i, x)).toEqual([0x0c, 0x80]);
    expect(i.check(prOut(0), { nexus: x, data: prList(0n, kx, APTPL) })).toMatchObject({ key: Key.IllegalRequest, asc: 0x26, field: { inCdb: false, byte: 20, bit: 0 } });
    expect(readKeys(i, x)).toEqual([0, []]);
    i.quiescent();
  });
});

