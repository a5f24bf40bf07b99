// Residuals on the wire: the SCSI layer's answer to an Expected Data Transfer Length that disagrees with the CDB
// (assembly/scsi/commands.ts, shortDataOut; test/unit/scsi/residuals.test.ts has every command) as the iSCSI target
// carries it, O or U and the Residual Count in the SCSI Response or the final Data-In, sense in the response's data
// segment. A board serves iSCSI on its loopback network; the initiator builds each SCSI Command PDU itself, with
// immediate data or none (then the target must answer a refused write without an R2T), and reads the blocks back.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { Initiator, Op, opcodeOf, type Pdu, u32At } from "../support/iscsi_initiator.ts";

const LUN = 1; // on sp1: the data crosses the bus
const BLOCK = 512;
const FLAG_OVERFLOW = 0x04; // RFC 7143, SCSI Response and Data-In: O
const FLAG_UNDERFLOW = 0x02; // U
const GOOD = 0x00;
const CHECK_CONDITION = 0x02;

interface Answer {
  opcode: number;
  status: number;
  residual: "overflow" | "underflow" | "none";
  count: number;
  sense?: [number, number, number]; // key, ASC, ASCQ
  dataIn: number; // bytes
}

/** Sends a SCSI Command PDU (W or R by `write`, neither when `expected` is 0) and reads its one answering PDU. */
function command(i: Initiator, cdb: number[], expected: number, write: boolean, immediate = new Uint8Array(0)): Answer {
  const itt = i.nextItt();
  const commandFlags = 0x80 | (expected > 0 ? (write ? 0x20 : 0x40) : 0) | 1; // F, W or R, SIMPLE
  const bytes = i.command(commandFlags, LUN, expected, Uint8Array.from(cdb), itt, immediate);
  // The reads here fit one Data-In PDU, which then carries the status (S) as well.
  const p: Pdu = i.exchange(bytes, itt);
  if (opcodeOf(p.bhs) === Op.DataIn) expect(p.bhs[1]! & 0x81).toBe(0x81); // F and S
  const dataIn = opcodeOf(p.bhs) === Op.DataIn ? p.data.length : 0;
  i.status(p);
  const flags = p.bhs[1]!;
  const answer: Answer = {
    opcode: opcodeOf(p.bhs),
    status: p.bhs[3]!,
    residual: (flags & FLAG_OVERFLOW) !== 0 ? "overflow" : (flags & FLAG_UNDERFLOW) !== 0 ? "underflow" : "none",
    count: (flags & (FLAG_OVERFLOW | FLAG_UNDERFLOW)) !== 0 ? u32At(p.bhs, 44) : 0,
    dataIn,
  };
  if (opcodeOf(p.bhs) === Op.ScsiResponse && p.data.length > 2) { // |0-1 SenseLength|fixed-format sense|
    const sense = p.data.subarray(2);
    answer.sense = [sense[2]! & 0x0f, sense[12]!, sense[13]!];
  }
  return answer;
}

const write10 = (lba: number, blocks: number): number[] => [0x2a, 0, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, 0, blocks, 0];
const read10 = (lba: number, blocks: number): number[] => [0x28, 0, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, 0, blocks, 0];

describe("iSCSI residuals: what the SCSI layer decided, on the wire", () => {
  let env: IscsiEnv;
  let i: Initiator;
  const before = new Uint8Array(2 * BLOCK).fill(0x61);
  beforeAll(() => {
    env = bootIscsiBoard({ diskMiB: 16 });
    i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: "iqn.2026-12.org.wasm-iop:residuals", isid: 1 });
    i.login([["ImmediateData", "Yes"]]);
    i.clearUnitAttention(LUN);
  });

  it("WRITE (10) of one block with EDTL 200 as immediate data: CHECK CONDITION 0Eh/03h, O 312, the block unchanged", () => {
    i.write(LUN, 100, before);
    const a = command(i, write10(100, 1), 200, true, new Uint8Array(200).fill(0x63));
    expect(a).toEqual({ opcode: Op.ScsiResponse, status: CHECK_CONDITION, residual: "overflow", count: BLOCK - 200, sense: [0x5, 0x0e, 0x03], dataIn: 0 });
    expect(i.read(LUN, 100, 2)).toEqual(before);
  });

  it("WRITE (10) of one block with EDTL 200 and no immediate data: refused at once, no R2T", () => {
    i.write(LUN, 110, before);
    const a = command(i, write10(110, 1), 200, true);
    expect(a).toEqual({ opcode: Op.ScsiResponse, status: CHECK_CONDITION, residual: "overflow", count: BLOCK - 200, sense: [0x5, 0x0e, 0x03], dataIn: 0 });
    expect(i.read(LUN, 110, 2)).toEqual(before);
  });

  it("WRITE (10) of two blocks with EDTL one block: GOOD, O one block, the first block written", () => {
    i.write(LUN, 120, before);
    const a = command(i, write10(120, 2), BLOCK, true, new Uint8Array(BLOCK).fill(0x62));
    expect(a).toEqual({ opcode: Op.ScsiResponse, status: GOOD, residual: "overflow", count: BLOCK, dataIn: 0 });
    expect(i.read(LUN, 120, 2)).toEqual(Uint8Array.from([...new Uint8Array(BLOCK).fill(0x62), ...before.subarray(BLOCK)]));
  });

  it("WRITE (10) of one block with EDTL two blocks: GOOD, U one block, the block written", () => {
    i.write(LUN, 130, before);
    const a = command(i, write10(130, 1), 2 * BLOCK, true, new Uint8Array(2 * BLOCK).fill(0x64));
    expect(a).toEqual({ opcode: Op.ScsiResponse, status: GOOD, residual: "underflow", count: BLOCK, dataIn: 0 });
    expect(i.read(LUN, 130, 2)).toEqual(Uint8Array.from([...new Uint8Array(BLOCK).fill(0x64), ...before.subarray(BLOCK)]));
  });

  it("READ (10) of one block with EDTL 200: 200 bytes of Data-In, status in the last one with O 312", () => {
    i.write(LUN, 140, before);
    expect(command(i, read10(140, 1), 200, false)).toEqual({ opcode: Op.DataIn, status: GOOD, residual: "overflow", count: BLOCK - 200, dataIn: 200 });
    expect(command(i, read10(140, 1), 3 * BLOCK, false)).toEqual({ opcode: Op.DataIn, status: GOOD, residual: "underflow", count: 2 * BLOCK, dataIn: BLOCK });
    i.logout();
    expect(env.board.panics).toEqual([]);
  });
});
