// Proves that the shipped board loads with its defaults filled in, and that each kind of mistake in a board file
// (schema violations, broken cross-references, bad JSON, a missing file) is reported as one BoardFileError whose
// message names the file, the field and what was expected. Each bad board is the shipped one with one change, so
// the exact message asserted can only come from that change.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  BoardFileError,
  DEFAULT_BOARD_PATH,
  GOT_END_OF_FILE,
  GOT_NOTHING,
  GOT_UNKNOWN_FIELD,
  loadBoardFile,
  parseBoard,
} from "../../../host/board/load.ts";

// The shipped board as plain JSON, fresh for each case so cases cannot leak into one another.
// Untyped on purpose: the cases write whatever a person might type into a board file.
type Json = any;
function shippedJson(): Json {
  return JSON.parse(readFileSync(DEFAULT_BOARD_PATH, "utf8"));
}

// Applies `change` to the shipped board and returns the message parseBoard throws (failing if it does not throw).
function messageFor(change: (board: Json) => Json | void): string {
  const board = shippedJson();
  const replaced = change(board);
  try {
    parseBoard(replaced === undefined ? board : replaced, "boards/bad.json");
  } catch (error) {
    expect(error).toBeInstanceOf(BoardFileError);
    return (error as BoardFileError).message;
  }
  throw new Error("parseBoard accepted a bad board");
}

const tempDir = mkdtempSync(join(tmpdir(), "board-load-"));
afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

function loadText(name: string, text: string): BoardFileError {
  const path = join(tempDir, name);
  writeFileSync(path, text);
  try {
    loadBoardFile(path);
  } catch (error) {
    expect(error).toBeInstanceOf(BoardFileError);
    return error as BoardFileError;
  }
  throw new Error("loadBoardFile accepted a bad file");
}

describe("loadBoardFile: the shipped board", () => {
  it("loads boards/iop-dev.json with 3 processors, 10 disks, 6 volumes, one target and the defaults filled in", () => {
    const board = loadBoardFile(DEFAULT_BOARD_PATH);
    expect(board.file).toBe(DEFAULT_BOARD_PATH);
    expect(board.name).toBe("iop-dev");
    expect(board.seed).toBe(1);
    expect(board.processors.map((p) => `${p.name}:${p.role}`)).toEqual(["host:host", "sp1:storage", "sp2:storage"]);
    expect(board.disks.map((d) => `${d.name}:${d.sizeMiB}:${d.backend}`)).toEqual([
      "host-disk0:64:file",
      "sp1-disk0:64:file",
      "sp2-disk0:64:file",
      "sp1-disk1:64:file",
      "sp1-disk2:64:file",
      "sp2-disk1:64:file",
      "sp2-disk2:64:file",
      "sp1-disk3:64:file",
      "sp2-disk3:64:file",
      "host-disk1:64:file",
    ]);
    // The first three disks keep volume numbers 0-2, as before volumes existed; then a RAID-5 LUN, and a thin LUN on a
    // second RAID-5 that is not itself a LUN.
    expect(board.volumes.map((v) => `${v.name}:${v.type}`)).toEqual(["host-disk0:disk", "sp1-disk0:disk", "sp2-disk0:disk", "r5:raid5", "pool5:raid5", "thin0:thin"]);
    expect(board.targets.map((t) => [t.name, t.luns?.map((lun) => lun.volume)])).toEqual([["iqn.2026-11.org.wasm-iop:iop-dev", [0, 1, 2, 3, 5]]]);
    expect(board.portals).toEqual([{ host: "127.0.0.1", port: 3260 }]);
    expect(board.processors[0]!.pci).toEqual([
      { model: "iop-bridge", slot: 1, function: 0, processor: "sp1" },
      { model: "iop-bridge", slot: 2, function: 0, processor: "sp2" },
      { model: "virtio-scsi", slot: 3, function: 0, disks: ["host-disk0", "host-disk1"], queueSize: 128 },
      { model: "nic", slot: 4, function: 0, rxRingEntries: 256, copyGBps: 5 },
      { model: "xor-engine", slot: 5, function: 0 },
      { model: "nvram", slot: 6, function: 0, sizeKiB: 512, backend: "file", image: "nvram.bin" },
    ]);
  });

  it("fills seed, description and portals when absent, keeps given values, and accepts a memory disk", () => {
    const json = shippedJson();
    delete json.seed;
    delete json.description;
    delete json.portals;
    delete json.processors[0].pci[3].copyGBps; // the shipped board names 5 (docs/hardware.md, NIC copy rate)
    json.processors[0].pci[2].queueSize = 256;
    json.processors[0].pci[2].function = 3;
    json.disks[0] = { name: "host-disk0", sizeMiB: 8, blockSize: 4096, backend: "memory" };
    const board = parseBoard(json, "boards/x.json");
    expect(board.file).toBe("boards/x.json");
    expect(board.seed).toBe(1);
    expect(board.description).toBe("");
    expect(board.portals).toEqual([]);
    expect(board.processors[0]!.pci[2]).toEqual({
      model: "virtio-scsi",
      slot: 3,
      function: 3,
      disks: ["host-disk0", "host-disk1"],
      queueSize: 256,
    });
    expect(board.processors[0]!.pci[3]).toMatchObject({ model: "nic", copyGBps: 1 });
    // physicalBlockSize defaults to blockSize; the shipped disks give 4096-byte physical blocks of 512 bytes.
    expect(board.disks[0]).toEqual({ name: "host-disk0", sizeMiB: 8, blockSize: 4096, physicalBlockSize: 4096, backend: "memory" });
    expect(board.disks[1]).toMatchObject({ blockSize: 512, physicalBlockSize: 4096 });
  });
});

describe("parseBoard: storage controller models", () => {
  it("reads an NVMe controller with its defaults (sp2 on the shipped board), and names a bad NVMe field", () => {
    const board = parseBoard(shippedJson(), "boards/iop-dev.json");
    expect(board.processors[1]!.pci).toEqual([{ model: "virtio-scsi", slot: 1, function: 0, disks: ["sp1-disk0", "sp1-disk1", "sp1-disk2", "sp1-disk3"], queueSize: 128 }]);
    expect(board.processors[2]!.pci).toEqual([{ model: "nvme", slot: 1, function: 0, disks: ["sp2-disk0", "sp2-disk1", "sp2-disk2", "sp2-disk3"], queueEntriesMax: 1024, ioQueues: 4 }]);
    expect(messageFor((b) => void (b.processors[2].pci[0].queueEntriesMax = 1))).toBe(
      "boards/bad.json: processors[2].pci[0].queueEntriesMax: expected an integer from 2 to 4096, got 1",
    );
    expect(messageFor((b) => void (b.processors[2].pci[0].queueSize = 128))).toMatch(/^boards\/bad.json: processors\[2\].pci\[0\].queueSize: unknown field \(expected one of slot, function, model, disks, queueEntriesMax, ioQueues\)$/);
  });
});

describe("parseBoard: schema errors", () => {
  it("names a value of the wrong type with the field's range", () => {
    expect(messageFor((b) => void (b.processors[1].ramMiB = "lots"))).toBe(
      'boards/bad.json: processors[1].ramMiB: expected an integer from 4 to 4096, got "lots"',
    );
  });

  it("names a value out of range", () => {
    expect(messageFor((b) => void (b.portals[0].port = 70000))).toBe(
      "boards/bad.json: portals[0].port: expected an integer from 0 to 65535, got 70000",
    );
    expect(messageFor((b) => void (b.processors[0].pci[3].slot = 32))).toBe(
      "boards/bad.json: processors[0].pci[3].slot: expected an integer from 0 to 31, got 32",
    );
  });

  it("names an unknown field and lists the known ones, even when it hides a required field", () => {
    expect(
      messageFor((b) => {
        b.processors[2].pcu = b.processors[2].pci;
        delete b.processors[2].pci;
      }),
    ).toBe("boards/bad.json: processors[2].pcu: unknown field (expected one of name, role, ramMiB, pci)");
    expect(messageFor((b) => void (b.nmae = "x"))).toBe(
      "boards/bad.json: nmae: unknown field (expected one of $schema, name, description, seed, processors, disks, volumes, portals, flash, targets, nbd, cluster)",
    );
  });

  it("names an unknown PCI model and lists the models", () => {
    expect(messageFor((b) => void (b.processors[0].pci[2].model = "scsi"))).toBe(
      "boards/bad.json: processors[0].pci[2].model: " +
        'expected one of "iop-bridge", "virtio-scsi", "nic", "xor-engine", "nvram", "nvme", got "scsi"',
    );
  });

  it("names the field a model needs when it is missing", () => {
    expect(messageFor((b) => void delete b.processors[0].pci[2].disks)).toBe(
      "boards/bad.json: processors[0].pci[2].disks: expected a non-empty array of disk names " +
        '(required when model is "virtio-scsi"), got nothing',
    );
    expect(messageFor((b) => void delete b.processors[0].pci[0].processor)).toBe(
      "boards/bad.json: processors[0].pci[0].processor: expected the name of a storage processor " +
        '(required when model is "iop-bridge"), got nothing',
    );
  });

  it("refuses a queue size that is not a power of two, a NIC copy rate out of range, and an image path that leaves the data directory", () => {
    expect(messageFor((b) => void (b.processors[0].pci[2].queueSize = 100))).toBe(
      "boards/bad.json: processors[0].pci[2].queueSize: expected a power of two from 2 to 1024, got 100",
    );
    expect(messageFor((b) => void (b.processors[0].pci[3].copyGBps = 0.5))).toBe(
      "boards/bad.json: processors[0].pci[3].copyGBps: expected an integer from 1 to 16, got 0.5",
    );
    expect(messageFor((b) => void (b.disks[1].image = "../sp1.img"))).toBe(
      "boards/bad.json: disks[1].image: expected a relative file name under the data directory " +
        '(letters, digits, ".", "_", "-", parts joined by "/"; no "..", no leading "/"), got "../sp1.img"',
    );
  });

  it("refuses a file-backend field on a memory disk and an unknown block size", () => {
    expect(messageFor((b) => void (b.disks[0].backend = "memory"))).toBe(
      "boards/bad.json: disks[0].image: unknown field (expected one of name, sizeMiB, blockSize, physicalBlockSize, backend)",
    );
    expect(messageFor((b) => void (b.disks[0].blockSize = 1024))).toBe(
      "boards/bad.json: disks[0].blockSize: expected one of 512, 4096, got 1024",
    );
  });

  it("refuses a top level that is not an object", () => {
    expect(messageFor((b) => [b])).toBe(
      "boards/bad.json: top level: expected a board object, got an array of 1 item",
    );
  });
});

describe("parseBoard: cross-field errors", () => {
  it("refuses a physical block smaller than the block, and one that is not a power of two", () => {
    expect(messageFor((b) => void (b.disks[1].blockSize = 4096, b.disks[1].physicalBlockSize = 512))).toBe(
      "boards/bad.json: disks[1].physicalBlockSize: expected a size not below blockSize (4096), got 512",
    );
    expect(messageFor((b) => void (b.disks[1].physicalBlockSize = 3000))).toContain("disks[1].physicalBlockSize: expected one of 512, 1024");
  });

  it("refuses a duplicate processor name and a duplicate disk name", () => {
    expect(messageFor((b) => void (b.processors[2].name = "sp1"))).toBe(
      'boards/bad.json: processors[2].name: expected a name not already used by processors[1], got "sp1"',
    );
    expect(messageFor((b) => void (b.disks[2].name = "host-disk0"))).toBe(
      'boards/bad.json: disks[2].name: expected a name not already used by disks[0], got "host-disk0"',
    );
  });

  it("refuses a bridge to a processor that does not exist or is the host", () => {
    expect(messageFor((b) => void (b.processors[0].pci[1].processor = "sp3"))).toBe(
      "boards/bad.json: processors[0].pci[1].processor: " +
        'expected the name of a storage processor ("sp1", "sp2"), got "sp3"',
    );
    expect(messageFor((b) => void (b.processors[0].pci[1].processor = "host"))).toBe(
      "boards/bad.json: processors[0].pci[1].processor: " +
        'expected the name of a storage processor ("sp1", "sp2"), got "host"',
    );
  });

  it("refuses two hosts, and a host that is not first", () => {
    expect(messageFor((b) => void (b.processors[1].role = "host"))).toBe(
      'boards/bad.json: processors[1].role: expected "storage" (only processors[0] is the host), got "host"',
    );
    expect(messageFor((b) => void b.processors.reverse())).toBe(
      'boards/bad.json: processors[0].role: expected "host" (the first processor is the host), got "storage"',
    );
  });

  it("refuses a storage processor bridged twice or not at all", () => {
    expect(messageFor((b) => void (b.processors[0].pci[1].processor = "sp1"))).toBe(
      "boards/bad.json: processors[0].pci[1].processor: expected a storage processor not already bridged by " +
        'processors[0].pci[0], got "sp1"',
    );
    expect(messageFor((b) => void b.processors[0].pci.splice(1, 1))).toBe(
      'boards/bad.json: processors[2]: expected an "iop-bridge" on the host\'s bus naming "sp2", got nothing',
    );
  });

  it("refuses a disk used twice, a disk that does not exist and a disk used by nobody", () => {
    expect(messageFor((b) => void (b.processors[2].pci[0].disks = ["sp1-disk0"]))).toBe(
      "boards/bad.json: processors[2].pci[0].disks[0]: expected a disk not already attached by processors[1].pci[0], " +
        'got "sp1-disk0"',
    );
    expect(messageFor((b) => void (b.processors[2].pci[0].disks = ["nope"]))).toBe(
      'boards/bad.json: processors[2].pci[0].disks[0]: expected the name of a disk listed in disks, got "nope"',
    );
    expect(messageFor((b) => void (b.processors[2].pci = []))).toBe(
      'boards/bad.json: disks[2]: expected a "virtio-scsi" or "nvme" function whose disks name "sp2-disk0", got nothing',
    );
  });

  it("refuses two functions at the same slot and function number on one bus", () => {
    expect(messageFor((b) => void (b.processors[0].pci[3].slot = 1))).toBe(
      "boards/bad.json: processors[0].pci[3].slot: expected a slot not already used with function 0 by " +
        "processors[0].pci[0], got 1",
    );
    // The same slot with another function number is a different address and loads.
    const json = shippedJson();
    json.processors[0].pci[3].slot = 1;
    json.processors[0].pci[3].function = 1;
    expect(parseBoard(json, "boards/ok.json").processors[0]!.pci[3]!.slot).toBe(1);
  });

  it("refuses an iop-bridge on a storage processor's bus", () => {
    expect(
      messageFor((b) => {
        b.processors[0].pci.splice(1, 1);
        b.processors[1].pci.push({ slot: 2, model: "iop-bridge", processor: "sp2" });
      }),
    ).toBe(
      "boards/bad.json: processors[1].pci[1].model: expected a model other than \"iop-bridge\" " +
        '(only the host\'s bus bridges to storage processors), got "iop-bridge"',
    );
  });
});

describe("loadBoardFile: unreadable files and bad JSON", () => {
  it("reports a JSON syntax error with its line and column and what was expected", () => {
    const error = loadText("comma.json", '{\n  "name": "iop-dev"\n  "seed": 1\n}\n');
    expect(error.message).toBe(
      `${join(tempDir, "comma.json")}: line 3, column 3: expected "," or "}" after a property value, got a string`,
    );
    expect(error.field).toBe("line 3, column 3");
  });

  it("reports a trailing comma, a misspelt literal and a file cut short", () => {
    expect(loadText("trailing.json", '{\n  "disks": [1,]\n}').message).toBe(
      `${join(tempDir, "trailing.json")}: line 2, column 15: expected a value ` +
        '(object, array, string, number, true, false or null), got "]"',
    );
    expect(loadText("literal.json", '{"seed": tru}').message).toBe(
      `${join(tempDir, "literal.json")}: line 1, column 10: expected a value ` +
        '(object, array, string, number, true, false or null), got "tru"',
    );
    const cut = loadText("cut.json", '{"name": "iop-dev"');
    expect(cut.message).toBe(
      `${join(tempDir, "cut.json")}: line 1, column 19: expected "," or "}" after a property value, got end of file`,
    );
    expect(cut.got).toBe(GOT_END_OF_FILE);
  });

  it("reports a file that does not exist", () => {
    const path = join(tempDir, "missing.json");
    expect(() => loadBoardFile(path)).toThrow(BoardFileError);
    expect(() => loadBoardFile(path)).toThrow(
      `${path}: expected a readable board file, got ENOENT (no such file or directory)`,
    );
  });

  it("reports schema errors found in a file under the file's path", () => {
    const json = shippedJson();
    json.processors[1].ramMiB = 2;
    const error = loadText("small.json", JSON.stringify(json, null, 2));
    expect(error.message).toBe(
      `${join(tempDir, "small.json")}: processors[1].ramMiB: expected an integer from 4 to 4096, got 2`,
    );
    expect([error.file, error.field, error.expected, error.got]).toEqual([
      join(tempDir, "small.json"),
      "processors[1].ramMiB",
      "an integer from 4 to 4096",
      2,
    ]);
  });

  it("gives unknown and missing fields distinct got markers", () => {
    const unknown = shippedJson();
    unknown.extra = 1;
    const missing = shippedJson();
    delete missing.processors[0].pci[0].processor;
    const gots = [unknown, missing].map((json) => {
      try {
        parseBoard(json, "b.json");
      } catch (error) {
        return (error as BoardFileError).got;
      }
      return undefined;
    });
    expect(gots).toEqual([GOT_UNKNOWN_FIELD, GOT_NOTHING]);
  });
});

// Targets: the iSCSI side of the board file.
describe("parseBoard: targets", () => {
  // The shipped board without its targets: its five volumes, served by the default target.
  const base = () => {
    const json = JSON.parse(readFileSync(DEFAULT_BOARD_PATH, "utf8")) as Record<string, unknown>;
    delete json.targets;
    return json;
  };

  it("gives a board without targets one default target over every volume, without CHAP", () => {
    const spec = parseBoard(base(), "boards/iop-dev.json");
    expect(spec.targets).toEqual([{ name: "iqn.2026-11.org.wasm-iop:iop-dev", alias: "", luns: undefined, chap: undefined, initiators: [] }]);
  });

  it("names the field of a LUN beyond the volumes, a half-configured mutual CHAP, and a bad iSCSI name", () => {
    const withTargets = (targets: unknown) => () => parseBoard({ ...base(), targets }, "boards/bad.json");
    expect(withTargets([{ name: "iqn.2026-11.org.example:t", luns: [0, 6] }])).toThrow("boards/bad.json: targets[0].luns[1]: expected a volume number below 6 (one per entry of volumes), got 6");
    expect(withTargets([{ name: "iqn.2026-11.org.example:t", chap: { user: "u", secret: "twelve-chars", mutualUser: "m" } }])).toThrow("boards/bad.json: targets[0].chap.mutualSecret: expected both mutualUser and mutualSecret, or neither, got nothing");
    expect(withTargets([{ name: "target-one" }])).toThrow(/^boards\/bad\.json: targets\[0\]\.name: expected an iSCSI name/);
  });

  it("takes a LUN as a volume number or as {volume, readOnly}, read-only only when it says so", () => {
    const spec = parseBoard({ ...base(), targets: [{ name: "iqn.2026-11.org.example:t", luns: [2, { volume: 0, readOnly: true }, { volume: 1 }] }] }, "boards/ro.json");
    expect(spec.targets[0]!.luns).toEqual([{ volume: 2, readOnly: false }, { volume: 0, readOnly: true }, { volume: 1, readOnly: false }]);
  });

  it("names the field of a bad LUN entry: a read-only flag not a boolean, a misspelt field, a volume listed twice or missing", () => {
    const withLuns = (luns: unknown) => () => parseBoard({ ...base(), targets: [{ name: "iqn.2026-11.org.example:t", luns }] }, "boards/bad.json");
    expect(withLuns([{ volume: 0, readOnly: "yes" }])).toThrow('boards/bad.json: targets[0].luns[0].readOnly: expected true or false, got "yes"');
    expect(withLuns([{ volume: 0, readonly: true }])).toThrow('boards/bad.json: targets[0].luns[0]: expected a volume number 0 to 15 or a volume name, or {"volume": n or name, "readOnly": true}, got {"volume":0,"readonly":true}');
    expect(withLuns([0, { volume: 0, readOnly: true }])).toThrow("boards/bad.json: targets[0].luns[1].volume: expected a volume not already listed by targets[0].luns[0], got 0");
    expect(withLuns([{ volume: 6, readOnly: true }])).toThrow("boards/bad.json: targets[0].luns[0].volume: expected a volume number below 6 (one per entry of volumes), got 6");
    expect(withLuns(["0"])).toThrow(/^boards\/bad\.json: targets\[0\]\.luns\[0\]: expected a volume number 0 to 15/);
  });
});
