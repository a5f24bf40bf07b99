// iSCSI's reply batches (assembly/tts/reply_batch.ts, shared with NBD; iscsi/data_in.ts, transmit.ts): a one-PDU
// answer (a 4 KiB read's Data-In with its status, a write's SCSI Response) is copied into its connection's batch and
// a turn's batch leaves as one NIC entry, so a pipelined burst of 4 KiB commands ends in far fewer Sent events than
// answers. The answers still come whole, with the right data, in StatSN order, also when longer answers that leave
// from the command's buffers (64 KiB reads: several Data-In PDUs) are built between short ones in the same turn.
import { beforeAll, describe, expect, it } from "vitest";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { Initiator, Op, opcodeOf, seeded, u32At, write10Command, type Pdu } from "../support/iscsi_initiator.ts";

const LUN = 1; // on sp1: the data crosses the bus
const BLOCK_BYTES = 512;

let number = 0;
function session(env: IscsiEnv): Initiator {
  number += 1;
  const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: `iqn.2026-12.org.wasm-iop:batch-${number}`, isid: number });
  i.login([["ImmediateData", "Yes"]]);
  i.clearUnitAttention(LUN);
  return i;
}

function read10(i: Initiator, itt: number, lba: number, blocks: number): Uint8Array {
  const cdb = new Uint8Array(10);
  const v = new DataView(cdb.buffer);
  cdb[0] = 0x28;
  v.setUint32(2, lba);
  v.setUint16(7, blocks);
  return i.command(0x80 | 0x40 | 1, LUN, blocks * BLOCK_BYTES, cdb, itt);
}

// Every PDU of `count` answers, in the order they came (the status-bearing ones checked for StatSN order).
function answers(env: IscsiEnv, i: Initiator, count: number): Pdu[] {
  const got: Pdu[] = [];
  let done = 0;
  const until = env.board.clock.nowNs + 200_000_000;
  while (done < count && env.board.clock.nowNs < until) {
    env.board.runFor(50_000);
    for (let p = i.reader.next(); p !== undefined; p = i.reader.next()) {
      got.push(p);
      const op = opcodeOf(p.bhs);
      if (op === Op.ScsiResponse || (op === Op.DataIn && (p.bhs[1]! & 0x01) !== 0)) {
        i.status(p); // throws on a StatSN out of order
        done += 1;
      }
    }
  }
  return got;
}

describe("iSCSI reply batches", () => {
  let env: IscsiEnv;
  beforeAll(() => {
    env = bootIscsiBoard({ diskMiB: 64 });
  });

  it("answers 32 pipelined 4 KiB writes and reads whole and in order, in far fewer NIC entries than answers", () => {
    const i = session(env);
    const nic = env.board.nics[0]!;
    const data = (k: number) => seeded(`batch-${k}`, 4096);
    const writes: Uint8Array[] = [];
    for (let k = 0; k < 32; k++) {
      writes.push(write10Command(i, 100 + k, i.cmdSn, LUN, 1000 + k * 8, data(k)));
      i.cmdSn += 1;
    }
    let events = nic.stats.eventsWritten;
    i.send(Buffer.concat(writes));
    const written = answers(env, i, 32);
    expect(written.map((p) => [opcodeOf(p.bhs), p.bhs[3]])).toEqual(Array.from({ length: 32 }, () => [Op.ScsiResponse, 0]));
    expect(new Set(written.map((p) => u32At(p.bhs, 16))).size).toBe(32);
    // Unbatched, each SCSI Response is a NIC entry ending in a Sent event: 32 of them besides the Received ones.
    const writeEvents = nic.stats.eventsWritten - events;
    expect(writeEvents).toBeLessThan(24);

    const reads: Uint8Array[] = [];
    for (let k = 0; k < 32; k++) reads.push(read10(i, 200 + k, 1000 + k * 8, 8));
    events = nic.stats.eventsWritten;
    i.send(Buffer.concat(reads));
    const read = answers(env, i, 32);
    expect(read.length).toBe(32); // one Data-In each, status collapsed
    for (const p of read) {
      const k = u32At(p.bhs, 16) - 200;
      expect(opcodeOf(p.bhs)).toBe(Op.DataIn);
      expect(Buffer.compare(p.data, data(k)), `read ${k}`).toBe(0);
    }
    // Unbatched, each Data-In is two NIC entries (header, data), each ending in a Sent event: 64 of them.
    expect(nic.stats.eventsWritten - events).toBeLessThan(24);
    i.logout();
  });

  it("keeps StatSN order when long answers are built between short ones", () => {
    const i = session(env);
    const big = seeded("batch-big", 65536);
    i.write(LUN, 4000, big);
    const burst: Uint8Array[] = [];
    for (let k = 0; k < 48; k++) burst.push(k % 3 === 1 ? read10(i, 300 + k, 4000, 128) : read10(i, 300 + k, 4000 + (k % 16) * 8, 8));
    i.send(Buffer.concat(burst));
    const got = answers(env, i, 48); // StatSN checked in arrival order
    const bytes = new Map<number, number>();
    for (const p of got) bytes.set(u32At(p.bhs, 16), (bytes.get(u32At(p.bhs, 16)) ?? 0) + p.data.length);
    expect(bytes.size).toBe(48);
    for (let k = 0; k < 48; k++) expect(bytes.get(300 + k), `command ${k}`).toBe(k % 3 === 1 ? 65536 : 4096);
    i.logout();
  });
});
