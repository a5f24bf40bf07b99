// The cluster port's registers, codes and ring entries, as the fabric task (assembly/fabric/registers.ts, entries.ts)
// and the model (host/devices/cluster_port.ts) define them: read from both sides (test/support/shared_constants.ts),
// every value and every accessor's offset must agree, so neither side can change alone.
import { describe, expect, it } from "vitest";
import * as model from "../../../host/devices/cluster_port.ts";
import { accessorOffsets, disagreements, moduleConstants, named, sourceConstants } from "../../support/shared_constants.ts";

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

  it("agree on the hello's magic with the fabric fuzz target's hostile board (it forges and recognises hellos)", () => {
    const firmware = sourceConstants("assembly/fabric/limits.ts");
    const fuzz = sourceConstants("tools/fuzz/targets/fabric.ts");
    expect(fuzz.get("HELLO_MAGIC"), "the parser found the target's HELLO_MAGIC").toBeDefined();
    expect(disagreements(firmware, fuzz, [["FABRIC_HELLO_MAGIC", "HELLO_MAGIC"]])).toEqual([]);
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
