// The boot-info block's layout as the firmware reads and writes it (assembly/board/boot_info.ts, field accessors at
// named offsets, AT_…) and as the host writes and reads it (host/abi/boot_info.ts, BootInfoOffset): the firmware's source
// is parsed and each accessor's offset compared with the host's, so that a field moved on one side alone fails here.
import { describe, expect, it } from "vitest";
import * as host from "../../../host/abi/boot_info.ts";
import { accessorOffsets, disagreements, moduleConstants, named, sourceConstants, type Constants } from "../../support/shared_constants.ts";

// Accessor (without "bootInfo") -> the BootInfoOffset member of each offset it uses, in order.
const FIELDS: Record<string, string[]> = {
  Magic: ["Magic"], AbiVersion: ["AbiVersion"], SizeBytes: ["SizeBytes"], Role: ["Role"], ProcessorIndex: ["ProcessorIndex"],
  RamBytes: ["RamBytes"], EcamBase: ["EcamBase"], EcamBusCount: ["EcamBusCount"], Flags: ["Flags"],
  PciMemBase: ["PciMemBase"], PciMemSize: ["PciMemSize"], MsiAddress: ["MsiAddress"], MuLocalBase: ["MuLocalBase"],
  DmaBase: ["DmaBase"], OutboundWindowBase: ["OutboundWindowBase"], OutboundWindowSize: ["OutboundWindowSize"],
  SysctlBase: ["SysctlBase"], ConfigRomBase: ["ConfigRomBase"], ConfigRomBytes: ["ConfigRomBytes"],
  NamePtr: ["Name"], BoardNamePtr: ["BoardName"], SetPanic: ["PanicCode", "PanicTaskIndex"],
  PanicTaskNamePtr: ["PanicTaskName"], SetPanicMessageLength: ["PanicMessageLength"], PanicMessagePtr: ["PanicMessage"],
  SetCurrentTask: ["CurrentTaskIndex"],
};

describe("boot-info block: firmware and host agree", () => {
  const accessors = accessorOffsets("assembly/board/boot_info.ts", "bootInfo");
  const hosts = moduleConstants(host);

  it("every firmware accessor is listed here, and every host field has an accessor", () => {
    expect([...accessors.keys()].sort()).toEqual(Object.keys(FIELDS).sort());
    const hostFields = [...hosts.keys()].filter((name) => name.startsWith("BootInfoOffset.")).map((name) => name.slice(15));
    expect(hostFields.sort()).toEqual(Object.values(FIELDS).flat().sort());
  });

  it("each accessor's offset is the host's offset of that field", () => {
    const firmware = new Map<string, bigint>();
    const pairs: [string, string][] = [];
    for (const [accessor, fields] of Object.entries(FIELDS)) {
      const offsets = accessors.get(accessor) ?? [];
      expect(offsets.length, `bootInfo${accessor}'s offsets`).toBe(fields.length);
      fields.forEach((field, i) => {
        firmware.set(field, offsets[i]);
        pairs.push([field, `BootInfoOffset.${field}`]);
      });
    }
    expect(disagreements(firmware as Constants, hosts, pairs)).toEqual([]);
  });

  it("the magic, the size and the no-task index", () => {
    const firmware = sourceConstants("assembly/board/boot_info.ts");
    expect(disagreements(firmware, hosts, named("BOOT_INFO_MAGIC", "BOOT_INFO_SIZE_BYTES", "TASK_INDEX_NONE"))).toEqual([]);
  });

  it("the firmware's text field sizes are the host's gaps between offsets (the host writes them as literals)", () => {
    const firmware = sourceConstants("assembly/board/boot_info.ts");
    const at = (field: string) => hosts.get(`BootInfoOffset.${field}`) ?? -1n;
    const gaps = new Map<string, bigint>([
      ["Name", at("BoardName") - at("Name")], ["BoardName", at("PanicCode") - at("BoardName")],
      ["PanicTaskName", at("PanicMessageLength") - at("PanicTaskName")], ["PanicMessage", at("CurrentTaskIndex") - at("PanicMessage")],
    ]);
    expect(disagreements(firmware, gaps, [
      ["PROCESSOR_NAME_BYTES", "Name"], ["BOARD_NAME_BYTES", "BoardName"], ["PANIC_TASK_NAME_BYTES", "PanicTaskName"],
      ["PANIC_MESSAGE_BYTES", "PanicMessage"],
    ])).toEqual([]);
  });
});
