// The XOR engine's registers and descriptor, as the driver (assembly/xor/registers.ts, descriptor.ts) and the model
// (host/devices/xor_engine.ts) define them: read from both sides (test/support/shared_constants.ts), every value and
// every accessor's offset must agree, so neither side can change alone.
import { describe, expect, it } from "vitest";
import * as model from "../../../host/devices/xor_engine.ts";
import { accessorOffsets, disagreements, moduleConstants, named, sourceConstants } from "../../support/shared_constants.ts";

const host = moduleConstants(model as unknown as Record<string, unknown>);

describe("XOR engine constants, firmware and host", () => {
  it("agree on the PCI identity and every BAR 0 register and bit", () => {
    const firmware = sourceConstants("assembly/xor/registers.ts");
    const names = [...firmware.keys()];
    expect(names.length).toBeGreaterThan(15);
    expect(disagreements(firmware, host, named(...names))).toEqual([]);
  });

  it("agree on the descriptor's size, limits, control and status bits", () => {
    const firmware = sourceConstants("assembly/xor/descriptor.ts");
    const names = [...firmware.keys()];
    expect(names.length).toBeGreaterThan(10);
    expect(disagreements(firmware, host, named(...names))).toEqual([]);
  });

  it("read and write each descriptor field at the model's offset", () => {
    const offsets = accessorOffsets("assembly/xor/descriptor.ts", "xorDesc");
    const fields: [string, number][] = [
      ["Next", model.XOR_DESC_NEXT], ["SetNext", model.XOR_DESC_NEXT],
      ["Destination", model.XOR_DESC_DESTINATION], ["SetDestination", model.XOR_DESC_DESTINATION],
      ["ByteCount", model.XOR_DESC_BYTE_COUNT], ["SetByteCount", model.XOR_DESC_BYTE_COUNT],
      ["Control", model.XOR_DESC_CONTROL], ["SetControl", model.XOR_DESC_CONTROL],
      ["SourceCount", model.XOR_DESC_SOURCE_COUNT], ["SetSourceCount", model.XOR_DESC_SOURCE_COUNT],
      ["Status", model.XOR_DESC_STATUS], ["SetStatus", model.XOR_DESC_STATUS],
      ["Source", model.XOR_DESC_SOURCES], ["SetSource", model.XOR_DESC_SOURCES],
    ];
    expect([...offsets.keys()].sort()).toEqual(fields.map(([name]) => name).sort());
    for (const [name, offset] of fields) expect(offsets.get(name), name).toEqual([BigInt(offset)]);
  });
});
