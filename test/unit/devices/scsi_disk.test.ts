// Proves the SCSI disk logical unit command by command: each command's success path against the bytes SPC-4 and
// SBC-3 lay out (golden bytes for standard INQUIRY, READ CAPACITY (16), sense and REPORT LUNS data), the sense
// key/ASC/ASCQ and field pointer for each class of error, allocation-length and buffer truncation with residuals,
// that FUA and SYNCHRONIZE CACHE reach the backend's flush (through a spy backend that records every call), that
// host I/O failures become MEDIUM ERROR, and, with fast-check, that random sequences of WRITE, READ, WRITE SAME and
// UNMAP leave the disk equal to a plain Uint8Array model.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type BlockSize, type DiskBackend, DiskIoError, memoryDisk } from "../../../host/devices/disk_backend.ts";
import {
  INQUIRY_STANDARD_LENGTH_BYTES,
  naaFromName,
  OPCODE_INQUIRY,
  OPCODE_MODE_SENSE_10,
  OPCODE_MODE_SENSE_6,
  OPCODE_READ_10,
  OPCODE_READ_12,
  OPCODE_READ_16,
  OPCODE_READ_6,
  OPCODE_READ_CAPACITY_10,
  OPCODE_REPORT_LUNS,
  OPCODE_REQUEST_SENSE,
  OPCODE_SERVICE_ACTION_IN_16,
  OPCODE_START_STOP_UNIT,
  OPCODE_SYNCHRONIZE_CACHE_10,
  OPCODE_SYNCHRONIZE_CACHE_16,
  OPCODE_TEST_UNIT_READY,
  OPCODE_UNMAP,
  OPCODE_VERIFY_10,
  OPCODE_VERIFY_16,
  OPCODE_WRITE_10,
  OPCODE_WRITE_12,
  OPCODE_WRITE_16,
  OPCODE_WRITE_6,
  OPCODE_WRITE_SAME_10,
  OPCODE_WRITE_SAME_16,
  reportLunsData,
  ScsiDisk,
  type ScsiIdentity,
  type ScsiResult,
  UNMAP_DESCRIPTOR_COUNT_MAX,
} from "../../../host/devices/scsi_disk.ts";
import {
  ASC_INVALID_COMMAND_OPERATION_CODE,
  ASC_INVALID_FIELD_IN_CDB,
  ASC_INVALID_FIELD_IN_PARAMETER_LIST,
  ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE,
  ASC_PARAMETER_LIST_LENGTH_ERROR,
  ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED,
  ASC_CAPACITY_DATA_HAS_CHANGED,
  ASC_SAVING_PARAMETERS_NOT_SUPPORTED,
  ASC_UNRECOVERED_READ_ERROR,
  ASC_WRITE_ERROR,
  type AdditionalSense,
  fixedSense,
  SAM_STATUS_CHECK_CONDITION,
  SAM_STATUS_GOOD,
  SENSE_KEY_ILLEGAL_REQUEST,
  SENSE_KEY_MEDIUM_ERROR,
  SENSE_KEY_NO_SENSE,
  SENSE_KEY_UNIT_ATTENTION,
} from "../../../host/devices/scsi_sense.ts";

const MIB = 1024 * 1024;
const DISK_BYTES = 4 * MIB; // 8192 blocks of 512
const identity: ScsiIdentity = { vendor: "WASMIOP", product: "VIRTUAL DISK", serial: "SN0001", naa: 0x5020_0011_2345_6789n };
const NONE = new Uint8Array(0);

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.trim().split(/\s+/).map((pair) => Number.parseInt(pair, 16)));
}

function zeros(count: number): string {
  return " 00".repeat(count);
}

// CDB builders: the field layouts of SBC-3 for the 6, 10, 12 and 16-byte block commands.
function cdb6(opcode: number, lba: number, count: number): Uint8Array {
  return Uint8Array.of(opcode, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, count, 0);
}

function cdb10(opcode: number, lba: number, count: number, byte1 = 0): Uint8Array {
  const cdb = new Uint8Array(10);
  const view = new DataView(cdb.buffer);
  cdb[0] = opcode;
  cdb[1] = byte1;
  view.setUint32(2, lba);
  view.setUint16(7, count);
  return cdb;
}

function cdb12(opcode: number, lba: number, count: number, byte1 = 0): Uint8Array {
  const cdb = new Uint8Array(12);
  const view = new DataView(cdb.buffer);
  cdb[0] = opcode;
  cdb[1] = byte1;
  view.setUint32(2, lba);
  view.setUint32(6, count);
  return cdb;
}

function cdb16(opcode: number, lba: number | bigint, count: number, byte1 = 0): Uint8Array {
  const cdb = new Uint8Array(16);
  const view = new DataView(cdb.buffer);
  cdb[0] = opcode;
  cdb[1] = byte1;
  view.setBigUint64(2, BigInt(lba));
  view.setUint32(10, count);
  return cdb;
}

function inquiry(evpd: boolean, pageCode: number, allocationLengthBytes: number): Uint8Array {
  return Uint8Array.of(OPCODE_INQUIRY, evpd ? 1 : 0, pageCode, allocationLengthBytes >> 8, allocationLengthBytes & 0xff, 0);
}

function readCapacity16(allocationLengthBytes: number): Uint8Array {
  const cdb = cdb16(OPCODE_SERVICE_ACTION_IN_16, 0, 0, 0x10);
  new DataView(cdb.buffer).setUint32(10, allocationLengthBytes);
  return cdb;
}

function unmapCdb(parameterListLengthBytes: number, byte1 = 0): Uint8Array {
  return cdb10(OPCODE_UNMAP, 0, parameterListLengthBytes, byte1);
}

/** SBC-3, UNMAP parameter list: 8-byte header, then 16 bytes per descriptor. */
function unmapList(ranges: Array<[number | bigint, number]>, descriptorLengthBytes = 16 * ranges.length): Uint8Array {
  const list = new Uint8Array(8 + 16 * ranges.length);
  const view = new DataView(list.buffer);
  view.setUint16(0, list.length - 2);
  view.setUint16(2, descriptorLengthBytes);
  ranges.forEach(([lba, count], index) => {
    view.setBigUint64(8 + 16 * index, BigInt(lba));
    view.setUint32(16 + 16 * index, count);
  });
  return list;
}

/** Bytes that differ from block to block and from seed to seed, so a misplaced block cannot pass. */
function pattern(lengthBytes: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(lengthBytes);
  for (let index = 0; index < lengthBytes; index += 1) bytes[index] = (seed * 131 + index * 7 + (index >> 9) * 13 + 1) & 0xff;
  return bytes;
}

function backendBytes(backend: DiskBackend, offsetBytes: number, lengthBytes: number): Uint8Array {
  const into = new Uint8Array(lengthBytes);
  backend.read(offsetBytes, into);
  return into;
}

/** A backend that records each call by name and throws DiskIoError from the operations listed in `failing`. */
function spyBackend(inner: DiskBackend) {
  const calls: string[] = [];
  const failing = new Set<string>();
  const enter = (name: string): void => {
    calls.push(name);
    if (failing.has(name)) throw new DiskIoError(`injected ${name} failure`);
  };
  const backend: DiskBackend = {
    sizeBytes: inner.sizeBytes,
    blockSize: inner.blockSize,
    name: inner.name,
    read: (offsetBytes, into) => { enter("read"); inner.read(offsetBytes, into); },
    write: (offsetBytes, data) => { enter("write"); inner.write(offsetBytes, data); },
    flush: () => { enter("flush"); inner.flush(); },
    unmap: (offsetBytes, lengthBytes) => { enter("unmap"); inner.unmap(offsetBytes, lengthBytes); },
    isMapped: (offsetBytes, lengthBytes) => inner.isMapped(offsetBytes, lengthBytes),
    close: () => inner.close(),
  };
  return { backend, calls, failing };
}

function newDisk(sizeBytes = DISK_BYTES, blockSize: BlockSize = 512) {
  const spy = spyBackend(memoryDisk("lu0", sizeBytes, blockSize));
  return { ...spy, disk: new ScsiDisk(spy.backend, identity) };
}

function expectGood(result: ScsiResult): Uint8Array {
  expect(result.sense).toBeUndefined();
  expect(result.status).toBe(SAM_STATUS_GOOD);
  return result.dataIn as Uint8Array;
}

/** Checks CHECK CONDITION with current fixed-format sense of the given key and ASC/ASCQ. */
function expectCheck(result: ScsiResult, senseKey: number, additional: AdditionalSense): Uint8Array {
  expect(result.status).toBe(SAM_STATUS_CHECK_CONDITION);
  expect(result.dataIn).toBeUndefined();
  const sense = result.sense as Uint8Array;
  expect([sense[0], (sense[2] as number) & 0x0f, sense[12], sense[13]]).toEqual([0x70, senseKey, additional.asc, additional.ascq]);
  return sense;
}

/** The SPC-4 field pointer of the sense key specific bytes, as [C/D, byte, bit or null]. */
function fieldPointer(sense: Uint8Array): [boolean, number, number | null] | null {
  const flags = sense[15] as number;
  if ((flags & 0x80) === 0) return null;
  return [(flags & 0x40) !== 0, ((sense[16] as number) << 8) | (sense[17] as number), (flags & 0x08) !== 0 ? flags & 0x07 : null];
}

function expectInvalidField(result: ScsiResult, byteIndex: number, bitIndex: number | null = null): void {
  expect(fieldPointer(expectCheck(result, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB))).toEqual([true, byteIndex, bitIndex]);
}

describe("sense data and REPORT LUNS data", () => {
  it("builds fixed-format sense byte for byte, with the field pointer and the information field", () => {
    // Golden bytes from SPC-4, Fixed format sense data: response code 70h, ADDITIONAL SENSE LENGTH 0Ah, SKSV with
    // C/D=1 and BPV=1 (bit 7 of byte 1) in byte 15; VALID (F0h) only when INFORMATION is given.
    const invalidField = fixedSense(SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byteIndex: 1, bitIndex: 7 } });
    expect(invalidField).toEqual(hex("70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 cf 00 01"));
    const medium = fixedSense(SENSE_KEY_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR, { information: 0x1234_5678 });
    expect(medium).toEqual(hex("f0 00 03 12 34 56 78 0a 00 00 00 00 11 00 00 00 00 00"));
  });

  it("builds REPORT LUNS data with single-level peripheral-addressed LUNs and refuses LUNs above 255", () => {
    // SPC-4, REPORT LUNS parameter data: LUN LIST LENGTH 24 for three LUNs; SAM-5 peripheral addressing puts the
    // LUN in byte 1 of each 8-byte entry.
    expect(reportLunsData([0, 1, 5])).toEqual(hex(`00 00 00 18 00 00 00 00  00 00${zeros(6)}  00 01${zeros(6)}  00 05${zeros(6)}`));
    expect(reportLunsData([])).toEqual(hex("00 00 00 00 00 00 00 00"));
    expect(() => reportLunsData([256])).toThrow(RangeError);
  });

  it("derives a stable NAA 5 designator from a name", () => {
    // Same name, same value; another name, another value; the top nibble is 5 and the company ID follows it.
    const a = naaFromName("disk0");
    expect(naaFromName("disk0")).toBe(a);
    expect(naaFromName("disk1")).not.toBe(a);
    expect(a >> 60n).toBe(5n);
    expect((a >> 36n) & 0xff_ffffn).toBe(0x02_00_01n);
    expect(() => new ScsiDisk(memoryDisk("x", MIB, 512), { ...identity, naa: 0x6000_0000_0000_0001n })).toThrow(RangeError);
  });
});

describe("INQUIRY", () => {
  it("returns the standard data byte for byte", () => {
    // Golden bytes: type 00h, VERSION 06h (SPC-4), HISUP + format 2, ADDITIONAL LENGTH 91, CMDQUE, space-padded
    // vendor/product/revision, then version descriptors SAM-5 00A0h, SPC-4 0460h, SBC-3 04C0h at byte 58.
    const { disk } = newDisk();
    const data = expectGood(disk.execute(inquiry(false, 0, 255), NONE, 255));
    expect(data.length).toBe(INQUIRY_STANDARD_LENGTH_BYTES);
    const golden = hex(`00 00 06 12 5b 00 00 02  57 41 53 4d 49 4f 50 20
      56 49 52 54 55 41 4c 20 44 49 53 4b 20 20 20 20  30 30 30 31 ${zeros(22)}
      00 a0 04 60 04 c0 ${zeros(32)}`);
    expect(data).toEqual(golden);
  });

  it("cuts to the allocation length and to the buffers, reporting residual and overflow", () => {
    // Allocation 36 with 255 bytes of buffers: 36 sent, 219 residual. Allocation 96 into a 36-byte buffer: 36
    // sent, 60 overflow, no residual. Allocation 0: nothing sent and no error.
    const { disk } = newDisk();
    const short = disk.execute(inquiry(false, 0, 36), NONE, 255);
    expect(expectGood(short).length).toBe(36);
    expect([short.residualBytes, short.overflowBytes]).toEqual([219, 0]);
    const overflow = disk.execute(inquiry(false, 0, 96), NONE, 36);
    expect(expectGood(overflow)).toEqual(expectGood(short));
    expect([overflow.residualBytes, overflow.overflowBytes]).toEqual([0, 60]);
    expect(expectGood(disk.execute(inquiry(false, 0, 0), NONE, 255)).length).toBe(0);
  });

  it("refuses a page code without EVPD, CMDDT, an unknown VPD page, and NACA in the CONTROL byte", () => {
    // Each is ILLEGAL REQUEST / INVALID FIELD IN CDB with the field pointer on the offending field.
    const { disk } = newDisk();
    expectInvalidField(disk.execute(inquiry(false, 0x80, 255), NONE, 255), 2);
    expectInvalidField(disk.execute(Uint8Array.of(OPCODE_INQUIRY, 0x02, 0, 0, 255, 0), NONE, 255), 1, 1);
    expectInvalidField(disk.execute(inquiry(true, 0x81, 255), NONE, 255), 2);
    expectInvalidField(disk.execute(Uint8Array.of(OPCODE_INQUIRY, 0, 0, 0, 255, 0x04), NONE, 255), 5, 2);
  });

  it("returns the supported, serial, identification, limits, characteristics and provisioning pages", () => {
    // Each page is checked field by field against SPC-4 and SBC-3 layouts, at 512-byte blocks.
    const { disk } = newDisk();
    const page = (code: number) => expectGood(disk.execute(inquiry(true, code, 1024), NONE, 1024));
    expect(page(0x00)).toEqual(hex("00 00 00 06 00 80 83 b0 b1 b2"));
    expect(page(0x80)).toEqual(Uint8Array.of(0, 0x80, 0, 6, ...new TextEncoder().encode("SN0001")));
    const identification = page(0x83);
    expect(identification.subarray(0, 16)).toEqual(hex("00 83 00 2e  01 03 00 08  50 20 00 11 23 45 67 89"));
    expect(identification.subarray(16, 20)).toEqual(hex("02 01 00 1e"));
    expect(new TextDecoder().decode(identification.subarray(20))).toBe("WASMIOP VIRTUAL DISK    SN0001");
    const limits = new DataView(page(0xb0).buffer);
    expect([limits.getUint16(2), limits.getUint8(4), limits.getUint16(6), limits.getUint32(8)]).toEqual([0x3c, 1, 8, 2048]);
    expect([limits.getUint32(20), limits.getUint32(24), limits.getUint32(28), limits.getBigUint64(36)]).toEqual([65536, 64, 8, 65536n]);
    const characteristics = page(0xb1);
    expect([characteristics.length, characteristics[4], characteristics[5]]).toEqual([64, 0x00, 0x01]);
    expect(page(0xb2)).toEqual(hex("00 b2 00 04 00 e4 02 00")); // LBPU, LBPWS, LBPWS10, LBPRZ; thin provisioned
  });
});

describe("READ CAPACITY", () => {
  it("returns READ CAPACITY (16) data byte for byte, and READ CAPACITY (10) data", () => {
    // 8192 blocks of 512: last LBA 1FFFh, block length 200h, LBPME and LBPRZ in byte 14.
    const { disk } = newDisk();
    const golden16 = hex(`00 00 00 00 00 00 1f ff  00 00 02 00  00 00 c0 00 ${zeros(16)}`);
    expect(expectGood(disk.execute(readCapacity16(32), NONE, 32))).toEqual(golden16);
    expect(expectGood(disk.execute(readCapacity16(12), NONE, 32))).toEqual(golden16.subarray(0, 12));
    expect(expectGood(disk.execute(cdb10(OPCODE_READ_CAPACITY_10, 0, 0), NONE, 8))).toEqual(hex("00 00 1f ff 00 00 02 00"));
  });

  it("reports 4096-byte physical blocks of 512 as LBPPBE 3, and refuses a physical size that is not 2^n blocks", () => {
    const disk = new ScsiDisk(memoryDisk("lu0", DISK_BYTES, 512), identity, { physicalBlockSize: 4096 });
    expect(expectGood(disk.execute(readCapacity16(32), NONE, 32)).subarray(12, 15)).toEqual(hex("00 03 c0"));
    expect(() => new ScsiDisk(memoryDisk("lu0", DISK_BYTES, 4096), identity, { physicalBlockSize: 512 })).toThrow(RangeError);
    expect(() => new ScsiDisk(memoryDisk("lu0", DISK_BYTES, 512), identity, { physicalBlockSize: 1536 })).toThrow(RangeError);
  });

  it("saturates READ CAPACITY (10) at FFFFFFFFh for a disk past 2 TiB, while READ CAPACITY (16) and READ (16) reach the end", () => {
    // 3 TiB of 512-byte blocks (sparse, nothing allocated): 6 Gi blocks, more than 32 bits of LBA.
    const { disk } = newDisk(3 * 1024 * 1024 * MIB);
    const blockCount = 6 * 1024 * 1024 * 1024;
    expect(expectGood(disk.execute(cdb10(OPCODE_READ_CAPACITY_10, 0, 0), NONE, 8))).toEqual(hex("ff ff ff ff 00 00 02 00"));
    const data16 = new DataView(expectGood(disk.execute(readCapacity16(32), NONE, 32)).buffer);
    expect(data16.getBigUint64(0)).toBe(BigInt(blockCount - 1));
    expectGood(disk.execute(cdb16(OPCODE_WRITE_16, blockCount - 1, 1), pattern(512, 4), 0));
    expect(expectGood(disk.execute(cdb16(OPCODE_READ_16, blockCount - 1, 1), NONE, 512))).toEqual(pattern(512, 4));
  });

  it("refuses another service action, and an LBA without PMI", () => {
    // Service action 11h is not READ CAPACITY (16); SBC-3 lets the LBA field be non-zero only with PMI.
    const { disk } = newDisk();
    expectInvalidField(disk.execute(cdb16(OPCODE_SERVICE_ACTION_IN_16, 0, 32, 0x11), NONE, 32), 1, 4);
    const withLba = readCapacity16(32);
    withLba[9] = 1;
    expectInvalidField(disk.execute(withLba, NONE, 32), 2);
    expectInvalidField(disk.execute(cdb10(OPCODE_READ_CAPACITY_10, 1, 0), NONE, 8), 2);
  });
});

describe("READ and WRITE", () => {
  it("round-trips data through every CDB size, with the data in the backend when GOOD returns", () => {
    // Each size writes its own pattern at its own LBA; the backend holds it right after execute() returns, and
    // the matching READ returns it. READ (6) with a TRANSFER LENGTH of 0 reads 256 blocks.
    const { disk, backend } = newDisk();
    const cases: Array<[number, number, (lba: number, count: number) => Uint8Array, (lba: number, count: number) => Uint8Array]> = [
      [6, 10, (lba, count) => cdb6(OPCODE_WRITE_6, lba, count), (lba, count) => cdb6(OPCODE_READ_6, lba, count)],
      [10, 100, (lba, count) => cdb10(OPCODE_WRITE_10, lba, count), (lba, count) => cdb10(OPCODE_READ_10, lba, count)],
      [12, 200, (lba, count) => cdb12(OPCODE_WRITE_12, lba, count), (lba, count) => cdb12(OPCODE_READ_12, lba, count)],
      [16, 8000, (lba, count) => cdb16(OPCODE_WRITE_16, lba, count), (lba, count) => cdb16(OPCODE_READ_16, lba, count)],
    ];
    for (const [size, lba, write, read] of cases) {
      const data = pattern(3 * 512, size);
      const result = disk.execute(write(lba, 3), data, 0);
      expectGood(result);
      expect(result.residualBytes).toBe(0);
      expect(backendBytes(backend, lba * 512, 3 * 512)).toEqual(data);
      expect(expectGood(disk.execute(read(lba, 3), NONE, 3 * 512))).toEqual(data);
    }
    const whole = expectGood(disk.execute(cdb6(OPCODE_READ_6, 0, 0), NONE, 256 * 512));
    expect(whole.length).toBe(256 * 512);
    expect(whole.subarray(10 * 512, 13 * 512)).toEqual(pattern(3 * 512, 6));
  });

  it("accepts DPO and FUA; FUA flushes after the write and before GOOD, a plain write does not flush", () => {
    // The spy records the order of backend calls.
    const { disk, calls } = newDisk();
    expectGood(disk.execute(cdb10(OPCODE_WRITE_10, 0, 1, 0x10), pattern(512, 1), 0)); // DPO only
    expect(calls).toEqual(["write"]);
    calls.length = 0;
    expectGood(disk.execute(cdb16(OPCODE_WRITE_16, 5, 1, 0x08), pattern(512, 2), 0)); // FUA
    expect(calls).toEqual(["write", "flush"]);
    calls.length = 0;
    expectGood(disk.execute(cdb10(OPCODE_READ_10, 5, 1, 0x18), NONE, 512)); // DPO + FUA on a read: just a read
    expect(calls).toEqual(["read"]);
  });

  it("refuses transfers past the last LBA, including 64-bit LBAs that would wrap", () => {
    // LOGICAL BLOCK ADDRESS OUT OF RANGE, and nothing reaches the backend.
    const { disk, calls } = newDisk();
    expectCheck(disk.execute(cdb10(OPCODE_READ_10, 8191, 2), NONE, 1024), SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    expectCheck(disk.execute(cdb16(OPCODE_WRITE_16, 0xffff_ffff_ffff_ffffn, 1), pattern(512, 1), 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    expectCheck(disk.execute(cdb10(OPCODE_READ_10, 8192, 0), NONE, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    expect(calls).toEqual([]);
    expect(expectGood(disk.execute(cdb10(OPCODE_READ_10, 8191, 1), NONE, 512)).length).toBe(512); // the last block is fine
    expect(expectGood(disk.execute(cdb10(OPCODE_READ_10, 8191, 0), NONE, 0)).length).toBe(0); // zero blocks: no error
  });

  it("refuses a transfer over the MAXIMUM TRANSFER LENGTH, and RDPROTECT/WRPROTECT", () => {
    // 2048 blocks of 512 is the advertised maximum: 2049 is INVALID FIELD IN CDB at the TRANSFER LENGTH field.
    const { disk } = newDisk();
    expect(expectGood(disk.execute(cdb10(OPCODE_READ_10, 0, 2048), NONE, MIB)).length).toBe(MIB);
    expectInvalidField(disk.execute(cdb10(OPCODE_READ_10, 0, 2049), NONE, MIB + 512), 7);
    expectInvalidField(disk.execute(cdb16(OPCODE_WRITE_16, 0, 2049), new Uint8Array(MIB + 512), 0), 10);
    expectInvalidField(disk.execute(cdb10(OPCODE_READ_10, 0, 1, 0x20), NONE, 512), 1, 7);
    expectInvalidField(disk.execute(cdb12(OPCODE_WRITE_12, 0, 1, 0x60), pattern(512, 1), 0), 1, 7);
  });

  it("refuses a WRITE whose Data-Out is shorter than the transfer, writing nothing, and reports unused Data-Out", () => {
    // Two blocks asked, one and a half sent: INVALID FIELD IN CDB and the disk unchanged. Two blocks asked and
    // three sent: GOOD with one block of residual.
    const { disk, backend } = newDisk();
    expectInvalidField(disk.execute(cdb10(OPCODE_WRITE_10, 4, 2), pattern(768, 1), 0), 7);
    expect(backendBytes(backend, 4 * 512, 1024).every((byte) => byte === 0)).toBe(true);
    const extra = disk.execute(cdb10(OPCODE_WRITE_10, 4, 2), pattern(1536, 2), 0);
    expectGood(extra);
    expect(extra.residualBytes).toBe(512);
    expect(backendBytes(backend, 4 * 512, 1536)).toEqual(Uint8Array.of(...pattern(1536, 2).subarray(0, 1024), ...new Uint8Array(512)));
  });

  it("cuts a READ to the initiator's buffers and reports the overflow; a short READ reports the residual", () => {
    // Four blocks into a two-block buffer: the first two blocks, 1024 bytes overflow. Two blocks into a 4 KiB
    // buffer: 3072 bytes residual.
    const { disk } = newDisk();
    const data = pattern(4 * 512, 7);
    expectGood(disk.execute(cdb10(OPCODE_WRITE_10, 0, 4), data, 0));
    const over = disk.execute(cdb10(OPCODE_READ_10, 0, 4), NONE, 1024);
    expect(expectGood(over)).toEqual(data.subarray(0, 1024));
    expect([over.residualBytes, over.overflowBytes]).toEqual([0, 1024]);
    const under = disk.execute(cdb10(OPCODE_READ_10, 0, 2), NONE, 4096);
    expect(expectGood(under).length).toBe(1024);
    expect([under.residualBytes, under.overflowBytes]).toEqual([3072, 0]);
  });

  it("turns host read and write failures into MEDIUM ERROR", () => {
    // The spy throws DiskIoError: UNRECOVERED READ ERROR for a read, WRITE ERROR for a write or a failed FUA flush.
    const { disk, failing } = newDisk();
    failing.add("read");
    expectCheck(disk.execute(cdb10(OPCODE_READ_10, 0, 1), NONE, 512), SENSE_KEY_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR);
    failing.add("write");
    expectCheck(disk.execute(cdb10(OPCODE_WRITE_10, 0, 1), pattern(512, 1), 0), SENSE_KEY_MEDIUM_ERROR, ASC_WRITE_ERROR);
    failing.delete("write");
    failing.add("flush");
    expectCheck(disk.execute(cdb10(OPCODE_WRITE_10, 0, 1, 0x08), pattern(512, 1), 0), SENSE_KEY_MEDIUM_ERROR, ASC_WRITE_ERROR);
  });
});

describe("SYNCHRONIZE CACHE, VERIFY, START STOP UNIT, TEST UNIT READY", () => {
  it("flushes the backend for SYNCHRONIZE CACHE (10) and (16), and refuses a range past the end without flushing", () => {
    // A count of zero means "to the end"; an LBA past the last block is LBA OUT OF RANGE and calls nothing.
    const { disk, calls, failing } = newDisk();
    expectGood(disk.execute(cdb10(OPCODE_SYNCHRONIZE_CACHE_10, 0, 0), NONE, 0));
    expectGood(disk.execute(cdb16(OPCODE_SYNCHRONIZE_CACHE_16, 100, 50), NONE, 0));
    expect(calls).toEqual(["flush", "flush"]);
    expectCheck(disk.execute(cdb16(OPCODE_SYNCHRONIZE_CACHE_16, 8192, 0), NONE, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    expect(calls).toEqual(["flush", "flush"]);
    failing.add("flush");
    expectCheck(disk.execute(cdb10(OPCODE_SYNCHRONIZE_CACHE_10, 0, 0), NONE, 0), SENSE_KEY_MEDIUM_ERROR, ASC_WRITE_ERROR);
  });

  it("verifies in range with BYTCHK 0, and refuses a compare, VRPROTECT, a range past the end and an over-long verify", () => {
    // VERIFY touches no backend call; the refusals carry their field pointers. SBC-3 bounds the VERIFICATION
    // LENGTH by the MAXIMUM TRANSFER LENGTH (2048 blocks here).
    const { disk, calls } = newDisk();
    expectGood(disk.execute(cdb10(OPCODE_VERIFY_10, 0, 2048), NONE, 0));
    expectInvalidField(disk.execute(cdb10(OPCODE_VERIFY_10, 0, 2049), NONE, 0), 7);
    expectGood(disk.execute(cdb16(OPCODE_VERIFY_16, 8000, 192), NONE, 0));
    expect(calls).toEqual([]);
    expectInvalidField(disk.execute(cdb10(OPCODE_VERIFY_10, 0, 1, 0x02), pattern(512, 1), 0), 1, 2);
    expectInvalidField(disk.execute(cdb16(OPCODE_VERIFY_16, 0, 1, 0x20), NONE, 0), 1, 7);
    expectCheck(disk.execute(cdb16(OPCODE_VERIFY_16, 8000, 193), NONE, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
  });

  it("answers START STOP UNIT with GOOD, flushing on a stop unless NO_FLUSH is set", () => {
    // Byte 4: START (bit 0), NO_FLUSH (bit 2).
    const { disk, calls } = newDisk();
    const startStop = (byte4: number) => Uint8Array.of(OPCODE_START_STOP_UNIT, 0, 0, 0, byte4, 0);
    expectGood(disk.execute(startStop(0x01), NONE, 0));
    expect(calls).toEqual([]);
    expectGood(disk.execute(startStop(0x04), NONE, 0));
    expect(calls).toEqual([]);
    expectGood(disk.execute(startStop(0x00), NONE, 0));
    expect(calls).toEqual(["flush"]);
  });

  it("answers TEST UNIT READY with GOOD and everything in the buffers as residual", () => {
    // No data moves, so the whole Data-In capacity is residual.
    const { disk } = newDisk();
    const result = disk.execute(new Uint8Array(6), NONE, 64);
    expect(expectGood(result).length).toBe(0);
    expect(result.residualBytes).toBe(64);
  });

  it("refuses unknown operation codes, REPORT LUNS (the controller's), LINK, and a truncated CDB", () => {
    // FORMAT UNIT (04h), REPORT LUNS (A0h) and a vendor-specific group-7 code are INVALID COMMAND OPERATION CODE.
    const { disk } = newDisk();
    for (const opcode of [0x04, OPCODE_REPORT_LUNS, 0xe0]) {
      expectCheck(disk.execute(Uint8Array.of(opcode, ...new Array(15).fill(0)), NONE, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE);
    }
    expectCheck(disk.execute(NONE, NONE, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE);
    expectInvalidField(disk.execute(Uint8Array.of(OPCODE_TEST_UNIT_READY, 0, 0, 0, 0, 0x01), NONE, 0), 5, 0);
    expectCheck(disk.execute(cdb16(OPCODE_READ_16, 0, 1).subarray(0, 10), NONE, 512), SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
  });
});

describe("unit attention and REQUEST SENSE", () => {
  it("reports a queued unit attention on the next command but INQUIRY, once, in order", () => {
    // Two conditions queued: INQUIRY runs untouched, the next two commands each report one, the third is GOOD.
    const { disk } = newDisk();
    disk.unitAttention(0x29, 0x00);
    disk.unitAttention(0x2a, 0x09);
    disk.unitAttention(0x29, 0x00); // already queued: not queued again
    expectGood(disk.execute(inquiry(false, 0, 36), NONE, 36));
    expectCheck(disk.execute(new Uint8Array(6), NONE, 0), SENSE_KEY_UNIT_ATTENTION, ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED);
    expectCheck(disk.execute(cdb10(OPCODE_READ_10, 0, 1), NONE, 512), SENSE_KEY_UNIT_ATTENTION, ASC_CAPACITY_DATA_HAS_CHANGED);
    expectGood(disk.execute(new Uint8Array(6), NONE, 0));
  });

  it("returns and clears the unit attention through REQUEST SENSE, then NO SENSE, and refuses DESC", () => {
    // REQUEST SENSE answers GOOD with the sense as data (cut to the allocation length).
    const { disk } = newDisk();
    disk.unitAttention(0x29, 0x00);
    const requestSense = (allocationLengthBytes: number, byte1 = 0) => Uint8Array.of(OPCODE_REQUEST_SENSE, byte1, 0, 0, allocationLengthBytes, 0);
    expect(expectGood(disk.execute(requestSense(252), NONE, 252))).toEqual(fixedSense(SENSE_KEY_UNIT_ATTENTION, ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED));
    const none = expectGood(disk.execute(requestSense(8), NONE, 252));
    expect([none.length, none[0], (none[2] as number) & 0x0f]).toEqual([8, 0x70, SENSE_KEY_NO_SENSE]);
    expectGood(disk.execute(new Uint8Array(6), NONE, 0)); // cleared: TEST UNIT READY is GOOD
    expectInvalidField(disk.execute(requestSense(252, 0x01), NONE, 252), 1, 0);
  });
});

describe("MODE SENSE", () => {
  it("returns the header, a short block descriptor and all pages for MODE SENSE (6) page 3Fh", () => {
    // Header: MODE DATA LENGTH 43, DPOFUA, descriptor length 8; descriptor 8192 blocks of 512; Caching page with
    // WCE; Control page all zeros.
    const { disk } = newDisk();
    const data = expectGood(disk.execute(Uint8Array.of(OPCODE_MODE_SENSE_6, 0, 0x3f, 0, 255, 0), NONE, 255));
    expect(data).toEqual(hex(`2b 00 10 08  00 00 20 00 00 00 02 00  08 12 04 ${zeros(17)}  0a 0a ${zeros(10)}`));
  });

  it("omits the block descriptor with DBD, gives a long one with LLBAA, and zero masks for changeable values", () => {
    // MODE SENSE (10) page 08h with LLBAA: LONGLBA set and a 16-byte descriptor. DBD: no descriptor at all.
    const { disk } = newDisk();
    const long = expectGood(disk.execute(Uint8Array.of(OPCODE_MODE_SENSE_10, 0x10, 0x08, 0, 0, 0, 0, 0, 255, 0), NONE, 255));
    expect(long.subarray(0, 24)).toEqual(hex("00 2a 00 10 01 00 00 10  00 00 00 00 00 00 20 00 00 00 00 00 00 00 02 00"));
    expect(long.subarray(24, 27)).toEqual(hex("08 12 04"));
    const noDescriptor = expectGood(disk.execute(Uint8Array.of(OPCODE_MODE_SENSE_6, 0x08, 0x08, 0, 255, 0), NONE, 255));
    expect(noDescriptor.subarray(0, 7)).toEqual(hex("17 00 10 00 08 12 04"));
    const changeable = expectGood(disk.execute(Uint8Array.of(OPCODE_MODE_SENSE_6, 0x08, 0x48, 0, 255, 0), NONE, 255));
    expect(changeable.subarray(4, 7)).toEqual(hex("08 12 00"));
  });

  it("refuses saved values, an unsupported page or subpage, and cuts to the allocation length", () => {
    // PC=11b is SAVING PARAMETERS NOT SUPPORTED; page 01h and subpage 01h are INVALID FIELD IN CDB.
    const { disk } = newDisk();
    expectCheck(disk.execute(Uint8Array.of(OPCODE_MODE_SENSE_6, 0, 0xc8, 0, 255, 0), NONE, 255), SENSE_KEY_ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
    expectInvalidField(disk.execute(Uint8Array.of(OPCODE_MODE_SENSE_6, 0, 0x01, 0, 255, 0), NONE, 255), 2, 5);
    expectInvalidField(disk.execute(Uint8Array.of(OPCODE_MODE_SENSE_6, 0, 0x08, 0x01, 255, 0), NONE, 255), 3);
    expect(expectGood(disk.execute(Uint8Array.of(OPCODE_MODE_SENSE_6, 0, 0x3f, 0, 4, 0), NONE, 255))).toEqual(hex("2b 00 10 08"));
  });
});

describe("WRITE SAME and UNMAP", () => {
  it("writes one block over a range with WRITE SAME (10) and (16), in batches past the maximum transfer", () => {
    // 3000 blocks (more than one 2048-block batch) each equal to the block sent; the blocks around stay zero.
    const { disk, backend } = newDisk();
    const block = pattern(512, 9);
    expectGood(disk.execute(cdb16(OPCODE_WRITE_SAME_16, 10, 3000), block, 0));
    const written = backendBytes(backend, 9 * 512, 3002 * 512);
    expect(written.subarray(0, 512).every((byte) => byte === 0)).toBe(true);
    for (let index = 1; index <= 3000; index += 1) expect(Buffer.from(written.subarray(index * 512, (index + 1) * 512)).equals(block)).toBe(true);
    expect(written.subarray(3001 * 512).every((byte) => byte === 0)).toBe(true);
    expectGood(disk.execute(cdb10(OPCODE_WRITE_SAME_10, 5000, 2), pattern(512, 3), 0));
    expect(backendBytes(backend, 5001 * 512, 512)).toEqual(pattern(512, 3));
  });

  it("deallocates with the UNMAP bit and a zero block, and writes when the block is not zeros", () => {
    // LBPRZ=1 makes deallocated blocks read as the zeros sent; other data must be written to read back.
    const { disk, backend, calls } = newDisk();
    expectGood(disk.execute(cdb10(OPCODE_WRITE_10, 100, 4), pattern(2048, 1), 0));
    calls.length = 0;
    expectGood(disk.execute(cdb16(OPCODE_WRITE_SAME_16, 100, 4, 0x08), new Uint8Array(512), 0));
    expect(calls).toEqual(["unmap"]);
    expect(backend.isMapped(100 * 512, 4 * 512)).toBe(false);
    expect(expectGood(disk.execute(cdb10(OPCODE_READ_10, 100, 4), NONE, 2048)).every((byte) => byte === 0)).toBe(true);
    expectGood(disk.execute(cdb10(OPCODE_WRITE_SAME_10, 100, 2, 0x08), pattern(512, 2), 0));
    expect(backend.isMapped(100 * 512, 2 * 512)).toBe(true);
    expect(expectGood(disk.execute(cdb10(OPCODE_READ_10, 101, 1), NONE, 512))).toEqual(pattern(512, 2));
  });

  it("refuses WRITE SAME with zero blocks, over the maximum, ANCHOR, NDOB, WRPROTECT, past the end, or without a block", () => {
    // WSNZ=1 and MAXIMUM WRITE SAME LENGTH 65536 blocks are advertised in the Block Limits page.
    const { disk, calls } = newDisk(64 * MIB);
    const block = pattern(512, 1);
    expectInvalidField(disk.execute(cdb16(OPCODE_WRITE_SAME_16, 0, 0), block, 0), 10);
    expectInvalidField(disk.execute(cdb16(OPCODE_WRITE_SAME_16, 0, 65537), block, 0), 10);
    expectInvalidField(disk.execute(cdb10(OPCODE_WRITE_SAME_10, 0, 1, 0x10), block, 0), 1, 4);
    expectInvalidField(disk.execute(cdb16(OPCODE_WRITE_SAME_16, 0, 1, 0x01), NONE, 0), 1, 0);
    expectInvalidField(disk.execute(cdb16(OPCODE_WRITE_SAME_16, 0, 1, 0x20), block, 0), 1, 7);
    expectInvalidField(disk.execute(cdb10(OPCODE_WRITE_SAME_10, 0, 1), block.subarray(0, 100), 0), 7);
    expectCheck(disk.execute(cdb16(OPCODE_WRITE_SAME_16, 131071, 2), block, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    expect(calls).toEqual([]);
  });

  it("unmaps every descriptor's range, ignoring zero-length and truncated descriptors", () => {
    // Two ranges unmapped; a zero-length descriptor is fine; a descriptor cut by the BLOCK DESCRIPTOR DATA
    // LENGTH (not a multiple of 16) is ignored, so its blocks keep their data.
    const { disk, backend } = newDisk();
    expectGood(disk.execute(cdb10(OPCODE_WRITE_10, 0, 64), pattern(64 * 512, 5), 0));
    const list = unmapList([[2, 3], [40, 0], [10, 4], [50, 2]], 16 * 3 + 8);
    const result = disk.execute(unmapCdb(list.length), list, 0);
    expectGood(result);
    expect(result.residualBytes).toBe(0);
    const after = backendBytes(backend, 0, 64 * 512);
    const expected = pattern(64 * 512, 5);
    expected.fill(0, 2 * 512, 5 * 512);
    expected.fill(0, 10 * 512, 14 * 512);
    expect(after).toEqual(expected);
    expect(backend.isMapped(2 * 512, 3 * 512)).toBe(false);
    expectGood(disk.execute(unmapCdb(0), NONE, 0)); // no parameter list: not an error
  });

  it("refuses UNMAP lists that are too short, too many, too long in total, or out of range, changing nothing", () => {
    // PARAMETER LIST LENGTH 1..7, or more than was sent: PARAMETER LIST LENGTH ERROR. 65 descriptors, or more
    // blocks than MAXIMUM UNMAP LBA COUNT: INVALID FIELD IN PARAMETER LIST. A range past the end after a good one:
    // LBA OUT OF RANGE and the good one is not unmapped either. ANCHOR: INVALID FIELD IN CDB.
    const { disk, calls } = newDisk(64 * MIB);
    expectCheck(disk.execute(unmapCdb(4), new Uint8Array(4), 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
    expectCheck(disk.execute(unmapCdb(24), unmapList([[0, 1]]).subarray(0, 20), 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
    const tooMany = unmapList(Array.from({ length: UNMAP_DESCRIPTOR_COUNT_MAX + 1 }, (_, index): [number, number] => [index, 1]));
    const sense = expectCheck(disk.execute(unmapCdb(tooMany.length), tooMany, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST);
    expect(fieldPointer(sense)).toEqual([false, 2, null]);
    const tooLong = unmapList([[0, 65536], [70000, 1]]);
    expect(fieldPointer(expectCheck(disk.execute(unmapCdb(tooLong.length), tooLong, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST))).toEqual([false, 32, null]);
    const outOfRange = unmapList([[0, 1], [131071, 2]]);
    expectCheck(disk.execute(unmapCdb(outOfRange.length), outOfRange, 0), SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
    expectInvalidField(disk.execute(unmapCdb(24, 0x01), unmapList([[0, 1]]), 0), 1, 0);
    expect(calls).toEqual([]);
  });
});

/** One step of the model test; `lba` may point past the end on purpose. */
type Step =
  | { kind: "write"; cdbSize: 10 | 16; lba: number; count: number; seed: number; fua: boolean }
  | { kind: "read"; cdbSize: 10 | 16; lba: number; count: number }
  | { kind: "writeSame"; cdbSize: 10 | 16; lba: number; count: number; seed: number; zero: boolean; unmap: boolean }
  | { kind: "unmap"; ranges: Array<[number, number]> };

function stepArbitrary(blockCount: number): fc.Arbitrary<Step> {
  const cdbSize = fc.constantFrom<10 | 16>(10, 16);
  const lba = fc.integer({ min: 0, max: blockCount + 3 });
  const count = fc.integer({ min: 0, max: 40 });
  const seed = fc.integer({ min: 0, max: 255 });
  return fc.oneof(
    fc.record({ kind: fc.constant("write" as const), cdbSize, lba, count, seed, fua: fc.boolean() }),
    fc.record({ kind: fc.constant("read" as const), cdbSize, lba, count }),
    fc.record({ kind: fc.constant("writeSame" as const), cdbSize, lba, count, seed, zero: fc.boolean(), unmap: fc.boolean() }),
    fc.record({ kind: fc.constant("unmap" as const), ranges: fc.array(fc.tuple(lba, count), { maxLength: 4 }) }),
  );
}

function inRange(blockCount: number, lba: number, count: number): boolean {
  return lba < blockCount && lba + count <= blockCount;
}

/** Runs one step against the disk and the model; checks status and, for READ, the data. */
function runStep(disk: ScsiDisk, model: Uint8Array, blockSize: number, step: Step): void {
  const blockCount = model.length / blockSize;
  const cdbFor = (opcode10: number, opcode16: number, lba: number, count: number, byte1 = 0) =>
    (step.kind !== "unmap" && step.cdbSize === 16) ? cdb16(opcode16, lba, count, byte1) : cdb10(opcode10, lba, count, byte1);
  switch (step.kind) {
    case "write": {
      const data = pattern(step.count * blockSize, step.seed);
      const result = disk.execute(cdbFor(OPCODE_WRITE_10, OPCODE_WRITE_16, step.lba, step.count, step.fua ? 0x08 : 0), data, 0);
      expect(result.status).toBe(inRange(blockCount, step.lba, step.count) ? SAM_STATUS_GOOD : SAM_STATUS_CHECK_CONDITION);
      if (result.status === SAM_STATUS_GOOD) model.set(data, step.lba * blockSize);
      return;
    }
    case "read": {
      const result = disk.execute(cdbFor(OPCODE_READ_10, OPCODE_READ_16, step.lba, step.count), NONE, step.count * blockSize);
      expect(result.status).toBe(inRange(blockCount, step.lba, step.count) ? SAM_STATUS_GOOD : SAM_STATUS_CHECK_CONDITION);
      if (result.status === SAM_STATUS_GOOD) {
        expect(Buffer.from(result.dataIn as Uint8Array).equals(model.subarray(step.lba * blockSize, (step.lba + step.count) * blockSize))).toBe(true);
      }
      return;
    }
    case "writeSame": {
      const block = step.zero ? new Uint8Array(blockSize) : pattern(blockSize, step.seed);
      const result = disk.execute(cdbFor(OPCODE_WRITE_SAME_10, OPCODE_WRITE_SAME_16, step.lba, step.count, step.unmap ? 0x08 : 0), block, 0);
      const good = step.count > 0 && inRange(blockCount, step.lba, step.count);
      expect(result.status).toBe(good ? SAM_STATUS_GOOD : SAM_STATUS_CHECK_CONDITION);
      for (let index = 0; good && index < step.count; index += 1) model.set(block, (step.lba + index) * blockSize);
      return;
    }
    case "unmap": {
      const list = unmapList(step.ranges);
      const result = disk.execute(unmapCdb(list.length), list, 0);
      const good = step.ranges.every(([lba, count]) => count === 0 || inRange(blockCount, lba, count));
      expect(result.status).toBe(good ? SAM_STATUS_GOOD : SAM_STATUS_CHECK_CONDITION);
      for (const [lba, count] of good ? step.ranges : []) model.fill(0, lba * blockSize, (lba + count) * blockSize);
      return;
    }
  }
}

describe("model", () => {
  it.each([[512, 401], [4096, 50]] as const)(
    "matches a Uint8Array model over random WRITE/READ/WRITE SAME/UNMAP sequences (%i-byte blocks, %i blocks)",
    (blockSize, blockCount) => {
      // The disks span several 64 KiB memory chunks, so ranges cross chunk edges; LBAs up to 3 past the end make
      // some commands fail, and a failed command must leave the model (and so the disk) unchanged. After each
      // sequence the whole disk is read back and compared with the model.
      fc.assert(
        fc.property(fc.array(stepArbitrary(blockCount), { minLength: 1, maxLength: 40 }), (steps) => {
          const backend = memoryDisk("model", blockCount * blockSize, blockSize);
          const disk = new ScsiDisk(backend, identity);
          const model = new Uint8Array(blockCount * blockSize);
          for (const step of steps) runStep(disk, model, blockSize, step);
          const whole = expectGood(disk.execute(cdb16(OPCODE_READ_16, 0, blockCount), NONE, model.length));
          expect(Buffer.from(whole).equals(model)).toBe(true);
        }),
        { numRuns: 150, seed: 20240611 },
      );
    },
  );
});
