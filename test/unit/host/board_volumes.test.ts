// Proves the board file's `volumes` and the LUNs that name them (docs/volumes.md, "Board file"): a good board loads
// with its defaults filled in, a board without volumes has one disk volume per disk, each mistake the schema or the
// loader refuses gives one line naming the file, the field and what was expected, LUNs take volume names, and a
// target without LUNs serves the top-level volumes. Each bad board is the good one with one change, so the message
// asserted can only come from that change.
import { describe, expect, it } from "vitest";
import { BoardFileError, parseBoard, targetLuns, topLevelVolumes } from "../../../host/board/load.ts";

type Json = any; // untyped on purpose: the cases write whatever a person might type into a board file

// A host with one disk and two storage processors with three each, all 64 MiB; a RAID-5 across both storage
// processors with a spare, and a thin volume on it. sp1-disk0 and sp2-disk0 are left out of every volume.
function goodBoard(): Json {
  const diskNames = ["host-disk0", "sp1-disk0", "sp1-disk1", "sp1-disk2", "sp2-disk0", "sp2-disk1", "sp2-disk2"];
  return {
    name: "vol-board",
    processors: [
      { name: "host", role: "host", ramMiB: 64, pci: [{ slot: 1, model: "iop-bridge", processor: "sp1" }, { slot: 2, model: "iop-bridge", processor: "sp2" }, { slot: 3, model: "virtio-scsi", disks: ["host-disk0"] }] },
      { name: "sp1", role: "storage", ramMiB: 32, pci: [{ slot: 1, model: "virtio-scsi", disks: ["sp1-disk0", "sp1-disk1", "sp1-disk2"] }] },
      { name: "sp2", role: "storage", ramMiB: 32, pci: [{ slot: 1, model: "virtio-scsi", disks: ["sp2-disk0", "sp2-disk1", "sp2-disk2"] }] },
    ],
    disks: diskNames.map((name) => ({ name, sizeMiB: 64, blockSize: 512, backend: "memory" })),
    volumes: [
      { name: "host-disk0", type: "disk", disk: "host-disk0" },
      { name: "r5", type: "raid5", members: ["sp1-disk1", "sp2-disk1", "sp1-disk2"], spares: ["sp2-disk2"] },
      { name: "thin0", type: "thin", pool: "r5", sizeMiB: 256, softThresholdPercent: 80 },
    ],
  };
}

const disk = (b: Json, name: string): Json => b.disks.find((d: Json) => d.name === name);

// Applies `change` to the good board and returns the message parseBoard throws (failing if it does not throw).
function messageFor(change: (board: Json) => void): string {
  const board = goodBoard();
  change(board);
  try {
    parseBoard(board, "boards/vol.json");
  } catch (error) {
    expect(error).toBeInstanceOf(BoardFileError);
    return (error as BoardFileError).message;
  }
  throw new Error("parseBoard accepted a bad board");
}

describe("parseBoard: volumes", () => {
  it("loads volumes with their defaults: a 64 KiB stripe unit, no spares, 1 MiB thin chunks, no soft threshold", () => {
    const board = goodBoard();
    board.volumes.push({ name: "r0", type: "raid0", members: ["sp1-disk0", "sp2-disk0"] }, { name: "thin1", type: "thin", pool: "r0", sizeMiB: 64 });
    expect(parseBoard(board, "boards/vol.json").volumes).toEqual([
      { name: "host-disk0", type: "disk", disk: "host-disk0" },
      { name: "r5", type: "raid5", members: ["sp1-disk1", "sp2-disk1", "sp1-disk2"], chunkKiB: 64, spares: ["sp2-disk2"] },
      { name: "thin0", type: "thin", pool: "r5", sizeMiB: 256, chunkKiB: 1024, softThresholdPercent: 80 },
      { name: "r0", type: "raid0", members: ["sp1-disk0", "sp2-disk0"], chunkKiB: 64, spares: [] },
      { name: "thin1", type: "thin", pool: "r0", sizeMiB: 64, chunkKiB: 1024, softThresholdPercent: undefined },
    ]);
  });

  it("gives a board without volumes one disk volume per disk, in board order, named after the disk", () => {
    const board = goodBoard();
    delete board.volumes;
    const spec = parseBoard(board, "boards/vol.json");
    expect(spec.volumes.map((v) => [v.name, v.type, v.type === "disk" ? v.disk : ""])).toEqual(board.disks.map((d: Json) => [d.name, "disk", d.name]));
  });

  it("refuses more than 16 volumes, from the file or from the disks of a board without volumes", () => {
    expect(messageFor((b) => { b.volumes = Array.from({ length: 17 }, (_, i) => ({ name: `v${i}`, type: "disk", disk: "host-disk0" })); }))
      .toBe("boards/vol.json: volumes: expected an array of 1 to 16 volumes, got an array of 17 items");
    expect(messageFor((b) => {
      delete b.volumes;
      for (let i = 0; i < 10; i++) { b.disks.push({ name: `extra${i}`, sizeMiB: 1, blockSize: 512, backend: "memory" }); b.processors[0].pci[2].disks.push(`extra${i}`); }
    })).toBe("boards/vol.json: disks: expected at most 16 disks on a board without volumes (one volume per disk, at most 16 volumes), got 17 disks");
  });
});

describe("parseBoard: volumes the schema refuses", () => {
  it("names a type it does not know and lists the types", () => {
    expect(messageFor((b) => void (b.volumes[1].type = "raid6"))).toBe('boards/vol.json: volumes[1].type: expected one of "disk", "raid0", "raid1", "raid5", "replica", "thin", got "raid6"');
  });

  it("names too few or too many members for the type", () => {
    expect(messageFor((b) => void b.volumes[1].members.pop())).toBe('boards/vol.json: volumes[1].members: expected an array of 3 to 8 disk names, got ["sp1-disk1","sp2-disk1"]');
    expect(messageFor((b) => void b.volumes.push({ name: "r1", type: "raid1", members: ["sp1-disk0"] }))).toBe('boards/vol.json: volumes[3].members: expected an array of 2 to 8 disk names, got ["sp1-disk0"]');
    expect(messageFor((b) => void (b.volumes[1].members = Array.from({ length: 9 }, (_, i) => `x${i}`)))).toBe("boards/vol.json: volumes[1].members: expected an array of 3 to 8 disk names, got an array of 9 items");
  });

  it("names a stripe unit or thin chunk that is not a power of two in range", () => {
    expect(messageFor((b) => void (b.volumes[1].chunkKiB = 2048))).toBe("boards/vol.json: volumes[1].chunkKiB: expected a power of two from 4 to 1024, got 2048");
    expect(messageFor((b) => void (b.volumes[1].chunkKiB = 48))).toBe("boards/vol.json: volumes[1].chunkKiB: expected a power of two from 4 to 1024, got 48");
    expect(messageFor((b) => void (b.volumes[2].chunkKiB = 32))).toBe("boards/vol.json: volumes[2].chunkKiB: expected a power of two from 64 to 16384, got 32");
  });

  it("names a soft threshold outside 1 to 99 percent, and a missing virtual size", () => {
    expect(messageFor((b) => void (b.volumes[2].softThresholdPercent = 100))).toBe("boards/vol.json: volumes[2].softThresholdPercent: expected an integer from 1 to 99, got 100");
    expect(messageFor((b) => void (b.volumes[2].softThresholdPercent = 0))).toBe("boards/vol.json: volumes[2].softThresholdPercent: expected an integer from 1 to 99, got 0");
    expect(messageFor((b) => void delete b.volumes[2].sizeMiB)).toBe('boards/vol.json: volumes[2].sizeMiB: expected an integer from 1 to 16777216 (required when type is "thin"), got nothing');
  });

  it("refuses spares on raid0, which has no redundancy to rebuild", () => {
    expect(messageFor((b) => void b.volumes.push({ name: "r0", type: "raid0", members: ["sp1-disk0", "sp2-disk0"], spares: ["x"] })))
      .toBe("boards/vol.json: volumes[3].spares: unknown field (expected one of name, type, members, chunkKiB)");
  });

  it("names a volume name that breaks the pattern", () => {
    expect(messageFor((b) => void (b.volumes[1].name = "R5"))).toBe('boards/vol.json: volumes[1].name: expected a volume name of 1 to 31 lower-case letters, digits or "-", starting with a letter, got "R5"');
  });
});

describe("parseBoard: volume names and references", () => {
  it("refuses a name another volume has, naming the first", () => {
    expect(messageFor((b) => void (b.volumes[2].name = "r5"))).toBe('boards/vol.json: volumes[2].name: expected a name not already used by volumes[1], got "r5"');
  });

  it("refuses a disk's name, except on the disk volume over that very disk", () => {
    expect(messageFor((b) => void (b.volumes[1].name = "sp1-disk0"))).toBe(`boards/vol.json: volumes[1].name: expected a name no disk has (disks[1] has it; only a "disk" volume may take its own disk's name), got "sp1-disk0"`);
    expect(messageFor((b) => void (b.volumes[0].name = "sp1-disk0"))).toBe(`boards/vol.json: volumes[0].name: expected a name no disk has (disks[1] has it; only a "disk" volume may take its own disk's name), got "sp1-disk0"`);
    const board = goodBoard();
    board.volumes[0].name = "boot";
    expect(parseBoard(board, "boards/vol.json").volumes[0]).toEqual({ name: "boot", type: "disk", disk: "host-disk0" });
  });

  it("names an unknown disk in a disk volume, a member or a spare; members are disks, not volumes, for now", () => {
    expect(messageFor((b) => void (b.volumes[0].disk = "host-disk9"))).toBe('boards/vol.json: volumes[0].disk: expected the name of a disk listed in disks, got "host-disk9"');
    expect(messageFor((b) => void (b.volumes[1].members[1] = "sp2-disk9"))).toBe('boards/vol.json: volumes[1].members[1]: expected the name of a disk listed in disks (members are disks for now), got "sp2-disk9"');
    expect(messageFor((b) => void (b.volumes[1].members[2] = "host-disk0x"))).toBe('boards/vol.json: volumes[1].members[2]: expected the name of a disk listed in disks (members are disks for now), got "host-disk0x"');
    expect(messageFor((b) => void b.volumes.push({ name: "r1", type: "raid1", members: ["sp1-disk0", "thin0"] }))).toBe('boards/vol.json: volumes[3].members[1]: expected the name of a disk listed in disks (members are disks for now), got "thin0"');
    expect(messageFor((b) => void (b.volumes[1].spares[0] = "spare"))).toBe('boards/vol.json: volumes[1].spares[0]: expected the name of a disk listed in disks, got "spare"');
  });

  it("names a disk used twice (as a disk volume, a member or a spare) and where it was first used", () => {
    expect(messageFor((b) => void (b.volumes[1].members[0] = "host-disk0"))).toBe('boards/vol.json: volumes[1].members[0]: expected a disk not already used by volumes[0].disk, got "host-disk0"');
    expect(messageFor((b) => void (b.volumes[1].members[2] = "sp1-disk1"))).toBe('boards/vol.json: volumes[1].members[2]: expected a disk not already used by volumes[1].members[0], got "sp1-disk1"');
    expect(messageFor((b) => void (b.volumes[1].spares[0] = "sp2-disk1"))).toBe('boards/vol.json: volumes[1].spares[0]: expected a disk not already used by volumes[1].members[1], got "sp2-disk1"');
    expect(messageFor((b) => void b.volumes.push({ name: "again", type: "disk", disk: "sp2-disk2" }))).toBe('boards/vol.json: volumes[3].disk: expected a disk not already used by volumes[1].spares[0], got "sp2-disk2"');
  });

  it("names a pool that is unknown, not earlier, thin, or already another's pool", () => {
    expect(messageFor((b) => void (b.volumes[2].pool = "r6"))).toBe('boards/vol.json: volumes[2].pool: expected the name of an earlier volume listed in volumes, got "r6"');
    expect(messageFor((b) => void (b.volumes[2].pool = "thin0"))).toBe('boards/vol.json: volumes[2].pool: expected a volume listed before volumes[2] (volumes[2] comes after), got "thin0"');
    expect(messageFor((b) => void b.volumes.splice(1, 2, b.volumes[2], b.volumes[1]))).toBe('boards/vol.json: volumes[1].pool: expected a volume listed before volumes[1] (volumes[2] comes after), got "r5"');
    expect(messageFor((b) => void b.volumes.push({ name: "thin1", type: "thin", pool: "thin0", sizeMiB: 8 }))).toBe('boards/vol.json: volumes[3].pool: expected a volume that is not thin (volumes[2] is thin), got "thin0"');
    expect(messageFor((b) => void b.volumes.push({ name: "thin1", type: "thin", pool: "r5", sizeMiB: 8 }))).toBe('boards/vol.json: volumes[3].pool: expected a volume not already used by volumes[2].pool, got "r5"');
  });
});

describe("parseBoard: volume sizes", () => {
  it("refuses members, and spares, of another block size than the first member's", () => {
    expect(messageFor((b) => void (disk(b, "sp1-disk2").blockSize = 4096))).toBe('boards/vol.json: volumes[1].members[2]: expected a disk of blockSize 512, as volumes[1].members[0] ("sp1-disk1") has, got "sp1-disk2" of blockSize 4096');
    expect(messageFor((b) => void (disk(b, "sp2-disk2").blockSize = 4096))).toBe('boards/vol.json: volumes[1].spares[0]: expected a disk of blockSize 512, as volumes[1].members[0] ("sp1-disk1") has, got "sp2-disk2" of blockSize 4096');
  });

  it("refuses a smallest member with no room for one stripe unit after its 1 MiB of metadata", () => {
    expect(messageFor((b) => void (disk(b, "sp2-disk1").sizeMiB = 1))).toBe('boards/vol.json: volumes[1].members[1]: expected a disk larger than 1 MiB by at least one 64 KiB chunk (each member keeps its first 1 MiB for metadata), got "sp2-disk1" of 1 MiB');
    // 2 MiB holds the metadata and one 1 MiB stripe unit exactly.
    const board = goodBoard();
    for (const name of ["sp1-disk1", "sp2-disk1", "sp1-disk2", "sp2-disk2"]) disk(board, name).sizeMiB = 2;
    board.volumes[1].chunkKiB = 1024;
    board.volumes[2].sizeMiB = 1; // a pool of 2 MiB holds the 2 MiB of metadata, but no chunk
    expect(() => parseBoard(board, "boards/vol.json")).toThrow("volumes[2].pool");
    board.volumes.pop();
    expect(parseBoard(board, "boards/vol.json").volumes).toHaveLength(2);
  });

  it("refuses a spare smaller than the smallest member", () => {
    expect(messageFor((b) => {
      disk(b, "sp1-disk1").sizeMiB = 32;
      disk(b, "sp2-disk2").sizeMiB = 16;
    })).toBe('boards/vol.json: volumes[1].spares[0]: expected a disk of at least 32 MiB, as the smallest member volumes[1].members[0] ("sp1-disk1"), got "sp2-disk2" of 16 MiB');
  });

  it("refuses a thin pool that cannot hold the metadata and one chunk, and takes a virtual size beyond the pool", () => {
    // r5 over three 4 MiB disks offers 2 × 3 MiB; 64 GiB in 1 MiB chunks needs 1 MiB and a 512 KiB map rounded up
    // to 1 MiB of metadata: 4 chunks remain.
    const small = goodBoard();
    for (const name of ["sp1-disk1", "sp2-disk1", "sp1-disk2", "sp2-disk2"]) disk(small, name).sizeMiB = 4;
    small.volumes[2].sizeMiB = 64 * 1024;
    expect(parseBoard(small, "boards/vol.json").volumes[2]).toMatchObject({ sizeMiB: 64 * 1024 });
    small.volumes[2].sizeMiB = 128 * 1024 + 1; // one chunk over 1 MiB of map: 3 MiB of metadata, 3 chunks remain
    expect(parseBoard(small, "boards/vol.json").volumes[2]).toMatchObject({ sizeMiB: 128 * 1024 + 1 });
    small.volumes[2].sizeMiB = 5 * 128 * 1024 + 1; // 7 MiB of metadata: more than the pool
    expect(() => parseBoard(small, "boards/vol.json")).toThrow('boards/vol.json: volumes[2].pool: expected a pool of at least 8 MiB (7 MiB of metadata for 655361 MiB in 1024 KiB chunks, and one chunk), got "r5" of 6 MiB');
    // 16 TiB in 64 KiB chunks: 2^28 entries of 8 bytes, 2 GiB of map and 1 MiB.
    expect(messageFor((b) => {
      b.volumes[2].sizeMiB = 16 * 1024 * 1024;
      b.volumes[2].chunkKiB = 64;
    })).toBe('boards/vol.json: volumes[2].pool: expected a pool of at least 2066.0625 MiB (2066 MiB of metadata for 16777216 MiB in 64 KiB chunks, and one chunk), got "r5" of 126 MiB');
  });
});

describe("parseBoard: LUNs name volumes", () => {
  const withLuns = (luns: unknown) => () => {
    const board = goodBoard();
    board.targets = [{ name: "iqn.2026-11.org.example:t", luns }];
    return parseBoard(board, "boards/vol.json").targets[0]!.luns;
  };

  it("takes a volume's name or number, alone or in a LUN object, and may export a thin volume's pool too", () => {
    expect(withLuns(["thin0", 0, { volume: "r5", readOnly: true }])()).toEqual([
      { volume: 2, readOnly: false }, { volume: 0, readOnly: false }, { volume: 1, readOnly: true },
    ]);
  });

  it("names an unknown volume name, a number beyond the volumes, and a volume listed twice by name and number", () => {
    expect(withLuns(["sp1-disk1"])).toThrow('boards/vol.json: targets[0].luns[0]: expected the name of a volume listed in volumes ("host-disk0", "r5", "thin0"), got "sp1-disk1"');
    expect(withLuns([{ volume: "r6" }])).toThrow('boards/vol.json: targets[0].luns[0].volume: expected the name of a volume listed in volumes ("host-disk0", "r5", "thin0"), got "r6"');
    expect(withLuns([3])).toThrow("boards/vol.json: targets[0].luns[0]: expected a volume number below 3 (one per entry of volumes), got 3");
    expect(withLuns(["r5", { volume: 1, readOnly: true }])).toThrow("boards/vol.json: targets[0].luns[1].volume: expected a volume not already listed by targets[0].luns[0], got 1");
    expect(withLuns([1, "r5"])).toThrow('boards/vol.json: targets[0].luns[1]: expected a volume not already listed by targets[0].luns[0], got "r5"');
    expect(withLuns(["R5"])).toThrow(/^boards\/vol\.json: targets\[0\]\.luns\[0\]: expected a volume number 0 to 15 or a volume name/);
  });

  it("takes a disk's name as a volume on a board without volumes", () => {
    const board = goodBoard();
    delete board.volumes;
    board.targets = [{ name: "iqn.2026-11.org.example:t", luns: ["sp2-disk0", { volume: "host-disk0", readOnly: true }] }];
    expect(parseBoard(board, "boards/vol.json").targets[0]!.luns).toEqual([{ volume: 4, readOnly: false }, { volume: 0, readOnly: true }]);
    board.targets[0].luns = ["disk7"];
    expect(() => parseBoard(board, "boards/vol.json")).toThrow('boards/vol.json: targets[0].luns[0]: expected the name of a volume, named after its disk ("host-disk0", "sp1-disk0", "sp1-disk1", "sp1-disk2", "sp2-disk0", "sp2-disk1", "sp2-disk2"), got "disk7"');
  });
});

describe("targets without LUNs serve the top-level volumes", () => {
  it("leaves out a volume that is another's pool", () => {
    const spec = parseBoard(goodBoard(), "boards/vol.json");
    expect(spec.targets[0]!.luns).toBeUndefined();
    expect(topLevelVolumes(spec.volumes)).toEqual([0, 2]);
    expect(targetLuns(spec, spec.targets[0]!)).toEqual([{ volume: 0, readOnly: false }, { volume: 2, readOnly: false }]);
  });

  it("serves every disk, in board order, on a board without volumes", () => {
    const board = goodBoard();
    delete board.volumes;
    const spec = parseBoard(board, "boards/vol.json");
    expect(targetLuns(spec, spec.targets[0]!).map((lun) => lun.volume)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it("serves a target's own LUNs when it lists them", () => {
    const board = goodBoard();
    board.targets = [{ name: "iqn.2026-11.org.example:t", luns: ["r5"] }];
    const spec = parseBoard(board, "boards/vol.json");
    expect(targetLuns(spec, spec.targets[0]!)).toEqual([{ volume: 1, readOnly: false }]);
  });
});

describe("parseBoard: replica volumes", () => {
  it("loads a replica's two copies as its members, with the default chunk and no spares", () => {
    const board = goodBoard();
    board.volumes.push({ name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0"] });
    expect(parseBoard(board, "boards/vol.json").volumes[3]).toEqual({ name: "rep", type: "replica", members: ["sp1-disk0", "sp2-disk0"], chunkKiB: 64, spares: [] });
  });

  it("refuses one copy, three, two on one processor, a disk used twice, and a spare that is no disk, used, or too small", () => {
    expect(messageFor((b) => void b.volumes.push({ name: "rep", type: "replica", copies: ["sp1-disk0"] })))
      .toBe('boards/vol.json: volumes[3].copies: expected an array of 2 disk names, got ["sp1-disk0"]');
    expect(messageFor((b) => void b.volumes.push({ name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0", "host-disk0"] })))
      .toBe('boards/vol.json: volumes[3].copies: expected an array of 2 disk names, got ["sp1-disk0","sp2-disk0","host-disk0"]');
    expect(messageFor((b) => { b.volumes.splice(1, 2); b.volumes.push({ name: "rep", type: "replica", copies: ["sp1-disk0", "sp1-disk1"] }); }))
      .toBe('boards/vol.json: volumes[1].copies[1]: expected a disk on another processor than copies[0] (sp1), got "sp1-disk1"');
    expect(messageFor((b) => void b.volumes.push({ name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk1"] })))
      .toBe('boards/vol.json: volumes[3].copies[1]: expected a disk not already used by volumes[1].members[1], got "sp2-disk1"');
    expect(messageFor((b) => void b.volumes.push({ name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0"], spares: ["x"] })))
      .toBe('boards/vol.json: volumes[3].spares[0]: expected the name of a disk listed in disks, got "x"');
    expect(messageFor((b) => void b.volumes.push({ name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0"], spares: ["sp2-disk0"] })))
      .toBe('boards/vol.json: volumes[3].spares[0]: expected a disk not already used by volumes[3].copies[1], got "sp2-disk0"');
    expect(messageFor((b) => { disk(b, "host-disk0").sizeMiB = 32; b.volumes[0] = { name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0"], spares: ["host-disk0"] }; }))
      .toBe('boards/vol.json: volumes[0].spares[0]: expected a disk of at least 64 MiB, as the smallest member volumes[0].members[0] ("sp1-disk0"), got "host-disk0" of 32 MiB');
  });

  it("loads a replica's hot spares", () => {
    const board = goodBoard();
    board.volumes[0] = { name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0"], spares: ["host-disk0"] };
    expect(parseBoard(board, "boards/vol.json").volumes[0]).toEqual({ name: "rep", type: "replica", members: ["sp1-disk0", "sp2-disk0"], chunkKiB: 64, spares: ["host-disk0"] });
  });
});
