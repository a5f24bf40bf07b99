// The configuration ROM's layout as the firmware reads it (assembly/tts/iscsi/config_rom.ts) and as the host writes
// it (host/bus/config_rom.ts): the firmware's source is parsed and compared with the host's exports one for one, so
// that a record number, the magic or the size changed on one side alone fails here rather than as targets that
// silently go missing at boot.
import { describe, expect, it } from "vitest";
import { parseBoard } from "../../../host/board/load.ts";
import * as host from "../../../host/bus/config_rom.ts";
import { disagreements, moduleConstants, sameNames, sourceConstants, withPrefix } from "../../support/shared_constants.ts";

const firmware = sourceConstants("assembly/tts/iscsi/config_rom.ts");
const firmwareRom = sourceConstants("assembly/board/config_rom.ts"); // the walk over the records
const hosts = moduleConstants(host);

describe("configuration ROM: firmware and host agree", () => {
  // The volume records (host VolumeRecord, 0x20-0x2F) are not in this comparison: the firmware's reader here does
  // not know them yet and skips them. When the firmware defines them (assembly/board/config_rom.ts, issue 16), compare
  // withPrefix(hosts, "VolumeRecord.") with its names the same way, and VolumeLayoutType with its layout types.
  it("every record type on one side is on the other, with the same number", () => {
    const firmwareRecords = withPrefix(firmware, "Record.");
    const hostRecords = withPrefix(hosts, "ConfigRecord.");
    expect(firmwareRecords.size).toBeGreaterThanOrEqual(10); // the parser found the enum at all
    expect(disagreements(firmwareRecords, hostRecords, sameNames(firmwareRecords, hostRecords))).toEqual([]);
  });

  it("the magic and the ROM's size", () => {
    expect(disagreements(firmwareRom, hosts, [["CONFIG_ROM_MAGIC", "CONFIG_ROM_MAGIC"], ["ROM_BYTES_MAX", "CONFIG_ROM_SIZE_BYTES"]])).toEqual([]);
  });

  it("the read-only flag of a Lun record, and the host sets it only for a read-only LUN", () => {
    expect(disagreements(firmware, hosts, [["LUN_FLAG_READ_ONLY", "CONFIG_LUN_READ_ONLY"]])).toEqual([]);
    const disks = ["d0", "d1"].map((name) => ({ name, sizeMiB: 1, blockSize: 512, backend: "memory" }));
    const processors = [{ name: "host", role: "host", ramMiB: 64, pci: [{ slot: 3, model: "virtio-scsi", disks: ["d0", "d1"] }] }];
    const targets = [{ name: "iqn.2026-11.org.example:t", luns: [1, { volume: 0, readOnly: true }] }];
    const view = new DataView(host.encodeConfigRom(parseBoard({ name: "t", processors, disks, targets }, "t.json")).buffer);
    const lunValues: number[] = [];
    for (let at = 16; at < view.getUint32(8, true);) {
      const type = view.getUint16(at, true);
      const lengthBytes = view.getUint16(at + 2, true);
      if (type === host.ConfigRecord.Lun) lunValues.push(view.getUint32(at + 4, true));
      at += 4 + Math.ceil(lengthBytes / 4) * 4;
    }
    expect(lunValues).toEqual([1, (0 | host.CONFIG_LUN_READ_ONLY) >>> 0]);
  });
});
