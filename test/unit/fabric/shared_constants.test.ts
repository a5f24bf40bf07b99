// The cluster port's registers, codes and ring entries, as the fabric task (assembly/fabric/registers.ts, entries.ts)
// and the model (host/devices/cluster_port.ts) define them: read from both sides (test/support/shared_constants.ts),
// every value and every accessor's offset must agree, so neither side can change alone.
import { describe, expect, it } from "vitest";
import * as model from "../../../host/devices/cluster_port.ts";
import * as fabricHello from "../../../tools/fuzz/fabric_hello.ts";
import * as messageFrame from "../../../tools/fuzz/message_frame.ts";
import { accessorOffsets, disagreements, moduleConstants, named, sameNames, sourceConstants } from "../../support/shared_constants.ts";

const host = moduleConstants(model as unknown as Record<string, unknown>);

describe("cluster port constants, firmware and host", () => {
  it("agree on the PCI identity, every BAR 0 register and bit, the limits, opcodes and statuses", () => {
    const firmware = sourceConstants("assembly/fabric/registers.ts");
    const names = [...firmware.keys()];
    expect(names.length).toBeGreaterThan(60); // the parser found the constants and both enums
    expect(names).toContain("FabricStatus.NotEnabled");
    expect(disagreements(firmware, host, named(...names))).toEqual([]);
  });

  it("agree on the ring entries' sizes", () => {
    const firmware = sourceConstants("assembly/fabric/entries.ts");
    expect([...firmware.keys()].sort()).toEqual(["CP_CQE_BYTES", "CP_RQE_BYTES", "CP_WR_BYTES"]);
    expect(disagreements(firmware, host, named(...firmware.keys()))).toEqual([]);
  });

  it("agree on the hello's layout with the fuzz targets' hostile boards (they forge and read hellos), name for name", () => {
    const firmware = sourceConstants("assembly/fabric/hello.ts");
    const fuzz = moduleConstants(fabricHello as unknown as Record<string, unknown>);
    expect([...firmware.keys()].sort()).toEqual([
      "FABRIC_HELLO_ANSWER", "FABRIC_HELLO_AT_FLAGS", "FABRIC_HELLO_AT_KEY", "FABRIC_HELLO_AT_MAGIC",
      "FABRIC_HELLO_AT_REGION_BASE", "FABRIC_HELLO_AT_REGION_LENGTH", "FABRIC_HELLO_AT_TABLE_VERSION", "FABRIC_HELLO_BYTES",
      "FABRIC_HELLO_MAGIC",
    ]); // the parser found every constant of the firmware's hello
    expect(disagreements(firmware, fuzz, sameNames(firmware, fuzz))).toEqual([]);
  });

  it("agree on the message frame's layout, agent kinds, functions and statuses with the fuzz targets (they forge frames), name for name", () => {
    const firmware = sourceConstants("assembly/board/frame.ts");
    const fuzz = moduleConstants(messageFrame as unknown as Record<string, unknown>);
    expect([...fuzz.keys()].filter((name) => !firmware.has(name))).toEqual([]); // every constant of the fuzz side has a firmware twin
    expect(fuzz.size).toBeGreaterThan(40);
    expect(disagreements(firmware, fuzz, sameNames(firmware, fuzz))).toEqual([]);
  });

  it("read back through the host's decoder what its encoder wrote, and tell a frame from a hello", () => {
    const hello = { flags: fabricHello.FABRIC_HELLO_ANSWER, key: 0x4200, regionBase: 0x12_3456_7800n, regionLength: 0x9_0000n, tableVersion: 3 };
    const bytes = fabricHello.encodeFabricHello(hello);
    expect(bytes.length).toBe(fabricHello.FABRIC_HELLO_BYTES);
    expect(Buffer.from(bytes.subarray(0, 4)).toString("latin1")).toBe("HELO");
    expect(fabricHello.decodeFabricHello(bytes)).toEqual(hello);
    expect(fabricHello.decodeFabricHello(bytes.subarray(0, 31)), "another length").toBeUndefined();
    const frame = bytes.slice();
    frame[0] = 1; // a frame starts with its version, 1
    expect(fabricHello.decodeFabricHello(frame), "no magic").toBeUndefined();
  });

  it("read and write each entry field at the model's offset", () => {
    const fields: [string, string, number][] = [
      ["cpWr", "SetOpcode", model.CP_WR_OPCODE], ["cpWr", "SetDestination", model.CP_WR_DESTINATION], ["cpWr", "SetKey", model.CP_WR_KEY],
      ["cpWr", "SetLocalAddress", model.CP_WR_LOCAL_ADDRESS], ["cpWr", "SetRemoteOffset", model.CP_WR_REMOTE_OFFSET],
      ["cpWr", "SetLength", model.CP_WR_LENGTH], ["cpWr", "SetTag", model.CP_WR_TAG],
      ["cpRqe", "SetAddress", model.CP_RQE_ADDRESS], ["cpRqe", "SetLength", model.CP_RQE_LENGTH], ["cpRqe", "SetTag", model.CP_RQE_TAG],
      ["cpCqe", "Tag", model.CP_CQE_TAG], ["cpCqe", "Status", model.CP_CQE_STATUS], ["cpCqe", "Opcode", model.CP_CQE_OPCODE],
      ["cpCqe", "Peer", model.CP_CQE_PEER], ["cpCqe", "Length", model.CP_CQE_LENGTH], ["cpCqe", "Count", model.CP_CQE_COUNT],
    ];
    for (const prefix of ["cpWr", "cpRqe", "cpCqe"]) {
      const offsets = accessorOffsets("assembly/fabric/entries.ts", prefix);
      const mine = fields.filter(([p]) => p === prefix);
      expect([...offsets.keys()].sort(), prefix).toEqual(mine.map(([, name]) => name).sort());
      for (const [, name, offset] of mine) expect(offsets.get(name), `${prefix}${name}`).toEqual([BigInt(offset)]);
    }
  });
});
