// ALUA target port groups and SBC-3 referrals on a board of a cluster (assembly/scsi/alua.ts; docs/cluster.md, "ALUA
// and referrals"), through the test build's fake transport: INQUIRY's TPGS, the Device Identification, Extended
// INQUIRY and Referrals VPD pages, REPORT TARGET PORT GROUPS and REPORT REFERRALS byte for byte from the routing table
// the board file gave, their CDB errors with the sense key, ASC and field pointer SPC-4 asks for, a single board that
// still refuses them, and a newer routing table seen by REPORT REFERRALS only once it is activated.
import { describe, expect, it } from "vitest";
import { be16, be32, be64, boot, fullStatus, identify, inquiry, Key, portName, prList, prOut } from "../../support/scsi_probe.ts";

// The probe board's disks: host-disk0 (16 MiB, 32768 blocks, LUN 0) partitioned in 8 pages of 4096 blocks over
// boards a (id 1, this one), b (id 2) and c (id 7); host-disk1 (8 MiB, LUN 1) an ordinary volume.
const OWNERS = ["a", "b", "c", "a", "b", "c", "a", "b"];
const CLUSTER = {
  version: 1, board: "a",
  boards: [
    { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 3260 }] },
    { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: 3261 }] },
    { id: 7, name: "c", portals: [{ host: "127.0.0.1", port: 3262 }] },
  ],
  volumes: [{ volume: "host-disk0", pageBlocks: 4096, pageCount: 8, owners: OWNERS }],
};
const IDS = { a: 1, b: 2, c: 7 } as const;
const rtpg = (format = 0, alloc = 1024, extra: Partial<Record<number, number>> = {}): number[] => {
  const cdb = [0xa3, 0x0a | (format << 5), 0, 0, 0, 0, ...be32(alloc), 0, 0];
  for (const [k, v] of Object.entries(extra)) cdb[Number(k)] = v!;
  return cdb;
};
const referrals = (lba: number, oneSegment = false, alloc = 4096, extra: Partial<Record<number, number>> = {}): number[] => {
  const cdb = [0x9e, 0x13, ...be64(lba), ...be32(alloc), oneSegment ? 1 : 0, 0];
  for (const [k, v] of Object.entries(extra)) cdb[Number(k)] = v!;
  return cdb;
};
const clusterBoard = () => {
  const i = boot(undefined, { cluster: CLUSTER });
  const nexus = identify(i, portName("alua", 1), 1); // local port 1: relative target port (1 << 4) | 1
  i.login(nexus);
  return { i, nexus };
};
/** One user data segment referral descriptor: [first, last], the owner active/optimized, the others non-optimized. */
const segment = (first: number, last: number, owner: keyof typeof IDS): number[] =>
  [0, 0, 0, 3, ...be64(first), ...be64(last), ...(["a", "b", "c"] as const).flatMap((b) => [b === owner ? 0 : 1, 0, ...be16(IDS[b])])];

describe("ALUA on a board of a cluster: INQUIRY and VPD pages", () => {
  it("standard INQUIRY says TPGS 01b (implicit ALUA) beside 3PC", () => {
    const { i, nexus } = clusterBoard();
    expect(i.good(inquiry(0, 0, 96), { nexus, expected: 96 })[5]).toBe(0x18);
    i.quiescent();
  });

  it("lists 86h for every LUN and B3h for the partitioned one; 83h adds the relative port and group designators", () => {
    const { i, nexus } = clusterBoard();
    const page = (code: number, lun = 0) => i.good(inquiry(1, code, 255), { nexus, lun, expected: 255 });
    expect([...page(0x00)]).toEqual([0, 0x00, 0, 9, 0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2, 0xb3]);
    expect([...page(0x00, 1)]).toEqual([0, 0x00, 0, 8, 0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2]);
    const id = page(0x83);
    expect(id[3]).toBe(56 + 16);
    expect([...id.subarray(4 + 56)]).toEqual([0x51, 0x94, 0, 4, 0, 0, ...be16(0x11), 0x51, 0x95, 0, 4, 0, 0, ...be16(1)]);
    const extended = page(0x86);
    expect(extended.length).toBe(64);
    expect([extended[1], extended[3], extended[8]]).toEqual([0x86, 0x3c, 0x10]); // R_SUP
    expect(page(0x86, 1)[8]).toBe(0x00); // an ordinary volume: no referrals
    expect([...page(0xb3)]).toEqual([0, 0xb3, 0, 12, 0, 0, 0, 0, ...be32(4096), ...be32(0)]);
    expect(i.check(inquiry(1, 0xb3, 255), { nexus, lun: 1, expected: 255 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, ascq: 0, field: { inCdb: true, byte: 2 } });
    i.quiescent();
  });
});

describe("REPORT TARGET PORT GROUPS", () => {
  it("a partitioned volume: every board's group in the LBA dependent state, each with its relative port", () => {
    const { i, nexus } = clusterBoard();
    const group = (id: number) => [0x04, 0x13, ...be16(id), 0, 0, 0, 1, 0, 0, ...be16((id << 4) | 1)];
    const expected = [...be32(36), ...group(1), ...group(2), ...group(7)];
    expect([...i.good(rtpg(), { nexus, expected: 1024 })]).toEqual(expected);
    // The extended header: FORMAT TYPE 001b, implicit transition time 0; the length counts it.
    expect([...i.good(rtpg(1), { nexus, expected: 1024 })]).toEqual([...be32(40), 0x10, 0, 0, 0, ...group(1), ...group(2), ...group(7)]);
    // An allocation length of 8 cuts the data, the length still says all of it.
    expect([...i.good(rtpg(0, 8), { nexus, expected: 8 })]).toEqual(expected.slice(0, 8));
    i.quiescent();
  });

  it("an ordinary volume: this board's group alone, active/optimized", () => {
    const { i, nexus } = clusterBoard();
    expect([...i.good(rtpg(), { nexus, lun: 1, expected: 1024 })]).toEqual([...be32(12), 0x00, 0x03, ...be16(1), 0, 0, 0, 1, 0, 0, ...be16(0x11)]);
    i.quiescent();
  });

  it("refuses a PARAMETER DATA FORMAT other than 000b and 001b, reserved bits and NACA, each with its field pointer", () => {
    const { i, nexus } = clusterBoard();
    const invalid = (cdb: number[], byte: number, bit: number) =>
      expect(i.check(cdb, { nexus, expected: 1024 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, ascq: 0, field: { inCdb: true, byte, bit } });
    invalid(rtpg(2), 1, 6); // 010b
    invalid(rtpg(7), 1, 7); // 111b
    invalid(rtpg(0, 1024, { 2: 0x80 }), 2, 7);
    invalid(rtpg(0, 1024, { 10: 0x01 }), 10, 0);
    invalid(rtpg(0, 1024, { 11: 0x04 }), 11, 2); // NACA
    i.quiescent();
  });
});

describe("REPORT REFERRALS", () => {
  it("one descriptor per page from the one holding the LBA: the owner active/optimized, the other boards not", () => {
    const { i, nexus } = clusterBoard();
    const all = i.good(referrals(0), { nexus, expected: 4096 });
    const expected = [0, 0, ...be16(8 * 32), ...OWNERS.flatMap((o, p) => segment(p * 4096, p * 4096 + 4095, o as keyof typeof IDS))];
    expect([...all]).toEqual(expected);
    // From an LBA inside page 5: pages 5 to 7; ONE_SEG: page 5 alone.
    expect([...i.good(referrals(5 * 4096 + 17), { nexus, expected: 4096 })]).toEqual([0, 0, ...be16(96), ...segment(20480, 24575, "c"), ...segment(24576, 28671, "a"), ...segment(28672, 32767, "b")]);
    expect([...i.good(referrals(5 * 4096 + 17, true), { nexus, expected: 4096 })]).toEqual([0, 0, ...be16(32), ...segment(20480, 24575, "c")]);
    i.quiescent();
  });

  it("an ordinary volume is one segment, this board's alone", () => {
    const { i, nexus } = clusterBoard();
    expect([...i.good(referrals(100), { nexus, lun: 1, expected: 4096 })]).toEqual([0, 0, ...be16(24), 0, 0, 0, 1, ...be64(0), ...be64(16383), 0, 0, ...be16(1)]);
    i.quiescent();
  });

  it("an LBA past the last block is LOGICAL BLOCK ADDRESS OUT OF RANGE; reserved bits and NACA are INVALID FIELD IN CDB", () => {
    const { i, nexus } = clusterBoard();
    expect(i.check(referrals(32768), { nexus, expected: 4096 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x21, ascq: 0 });
    expect(i.check(referrals(0, false, 4096, { 14: 0x02 }), { nexus, expected: 4096 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 14, bit: 1 } });
    expect(i.check(referrals(0, false, 4096, { 1: 0x33 }), { nexus, expected: 4096 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 1, bit: 5 } });
    expect(i.check(referrals(0, false, 4096, { 15: 0x04 }), { nexus, expected: 4096 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 15, bit: 2 } });
    i.quiescent();
  });

  it("a newer routing table is seen only once activated: staged version 2 moves page 0 to c; REPORT REFERRALS changes at activation", () => {
    const { i, nexus } = clusterBoard();
    const page0 = () => [...i.good(referrals(0, true), { nexus, expected: 4096 })];
    expect(page0()).toEqual([0, 0, ...be16(32), ...segment(0, 4095, "a")]);
    expect(i.t.call("testClusterStage", 2)).toBe(1);
    i.t.call("testClusterStageOwner", 0, 0, 2); // board index 2: c
    expect(page0(), "staged, not active").toEqual([0, 0, ...be16(32), ...segment(0, 4095, "a")]);
    expect(i.t.call("testClusterVersion")).toBe(1);
    expect(i.t.call("testClusterActivate", 3), "activation names the version staged").toBe(0);
    expect(i.t.call("testClusterActivate", 2)).toBe(1);
    expect(i.t.call("testClusterVersion")).toBe(2);
    expect(page0()).toEqual([0, 0, ...be16(32), ...segment(0, 4095, "c")]);
    expect(i.t.call("testClusterStage", 2)).toBe(1);
    expect(i.t.call("testClusterActivate", 2), "not newer than the active one").toBe(0);
    i.quiescent();
  });
});

describe("a single board: no ALUA, no referrals, as before", () => {
  it("TPGS 00b; REPORT TARGET PORT GROUPS and REPORT REFERRALS refused (service action field) and not reported supported", () => {
    const i = boot();
    expect(i.good(inquiry(0, 0, 96), { expected: 96 })[5]).toBe(0x08);
    i.login(1);
    expect(i.check(rtpg(), { nexus: 1, expected: 1024 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 1, bit: 4 } });
    expect(i.check(referrals(0), { nexus: 1, expected: 4096 })).toMatchObject({ key: Key.IllegalRequest, asc: 0x24, field: { inCdb: true, byte: 1, bit: 4 } });
    const one = (opcode: number, sa: number) => i.good([0xa3, 0x0c, 0x02, opcode, ...be16(sa), ...be32(64), 0, 0], { nexus: 1, expected: 64 })[1]! & 0x07;
    expect(one(0xa3, 0x0a)).toBe(1); // SUPPORT 001b: not supported
    expect(one(0x9e, 0x13)).toBe(1);
    expect(i.check(inquiry(1, 0xb3, 255), { nexus: 1, expected: 255 })).toMatchObject({ asc: 0x24, field: { inCdb: true, byte: 2 } });
    i.quiescent();
  });

  it("on a board of a cluster REPORT SUPPORTED OPERATION CODES reports both supported", () => {
    const { i, nexus } = clusterBoard();
    const one = (opcode: number, sa: number) => i.good([0xa3, 0x0c, 0x02, opcode, ...be16(sa), ...be32(64), 0, 0], { nexus, expected: 64 });
    expect([...one(0xa3, 0x0a).subarray(0, 6)]).toEqual([0, 0x03, 0, 12, 0xa3, 0x2a]); // usage: PARAMETER DATA FORMAT's low bit
    expect(one(0x9e, 0x13)[1]! & 0x07).toBe(3);
    i.quiescent();
  });
});

describe("persistent reservations name ports as the wire does", () => {
  it("READ FULL STATUS reports (board id << 4) | port; REGISTER AND MOVE takes this board's ports only", () => {
    const { i, nexus } = clusterBoard();
    const y = identify(i, portName("alua-y", 2), 1);
    i.login(y);
    i.good(prOut(0), { nexus, data: prList(0n, 0x11n) });
    i.good(prOut(1, 1), { nexus, data: prList(0x11n, 0n) }); // Write Exclusive
    expect(fullStatus(i, nexus).map((d) => d.port)).toEqual([0x11]);
    const name = [...Buffer.from(portName("alua-y", 2), "latin1"), 0];
    while (name.length % 4 !== 0 || name.length < 20) name.push(0);
    const id = [(1 << 6) | 5, 0, ...be16(name.length), ...name];
    const moveList = (port: number) => Uint8Array.from([...be64(0x11n), ...be64(0x22n), 0, 0, ...be16(port), ...be32(id.length), ...id]);
    const move = (port: number) => ({ cdb: [0x5f, 7, 0, 0, 0, ...be32(moveList(port).length), 0], data: moveList(port) });
    for (const port of [0x01, 0x21, 0x71]) { // the local number bare, board b's port 1, board c's port 1
      const { cdb, data } = move(port);
      expect(i.check(cdb, { nexus, data }), `port 0x${port.toString(16)}`).toMatchObject({ key: Key.IllegalRequest, asc: 0x26, field: { inCdb: false, byte: 18 } });
    }
    const { cdb, data } = move(0x11);
    i.good(cdb, { nexus, data });
    expect(fullStatus(i, nexus).map((d) => [d.key, d.port])).toEqual([[0x11n, 0x11], [0x22n, 0x11]]);
    i.quiescent();
  });
});
