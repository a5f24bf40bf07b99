// What the board's loader and configuration ROM (host/) and the firmware's volume layer (assembly/volumes/) must agree
// on, read from both sides: the volume records' numbers, the layout's type numbers, the volume table's size and the
// RAID metadata area. A number changed on one side alone fails here rather than as volumes that assemble wrong.
import { describe, expect, it } from "vitest";
import * as rom from "../../../host/bus/config_rom.ts";
import * as geometry from "../../../host/board/volume_geometry.ts";
import { disagreements, moduleConstants, sourceConstants, withPrefix } from "../../support/shared_constants.ts";

const firmwareConfig = sourceConstants("assembly/volumes/config.ts");
const firmwareVolume = sourceConstants("assembly/volumes/volume.ts");
const hostRom = moduleConstants(rom);

describe("volumes: firmware and host agree", () => {
  it("every volume record has the same number on both sides", () => {
    const firmware = withPrefix(firmwareConfig, "VolumeRecord.");
    const host = withPrefix(hostRom, "VolumeRecord.");
    expect(firmware.size).toBe(7); // the parser found the enum
    expect([...firmware.values()]).toEqual([...host.values()]);
  });

  it("the layout's type numbers, the name length and the table's size", () => {
    expect(disagreements(firmwareVolume, hostRom, [
      ["VolumeType.Disk", "VolumeLayoutType.Disk"], ["VolumeType.Raid0", "VolumeLayoutType.Raid0"],
      ["VolumeType.Raid1", "VolumeLayoutType.Raid1"], ["VolumeType.Raid5", "VolumeLayoutType.Raid5"],
      ["VolumeType.Thin", "VolumeLayoutType.Thin"], ["VolumeType.Replica", "VolumeLayoutType.Replica"], ["VOLUME_NAME_BYTES_MAX", "CONFIG_VOLUME_NAME_BYTES_MAX"],
    ])).toEqual([]);
    expect(disagreements(firmwareConfig, hostRom, [["LAYOUT_BYTES", "CONFIG_VOLUME_LAYOUT_BYTES"], ["REMOTE_DISK_BYTES", "CONFIG_REMOTE_DISK_BYTES"],
      ["REMOTE_DISK_AT_INDEX", "CONFIG_REMOTE_DISK_AT_INDEX"], ["REMOTE_DISK_AT_BOARD_ID", "CONFIG_REMOTE_DISK_AT_BOARD_ID"],
      ["REMOTE_DISK_AT_PHYSICAL_EXPONENT", "CONFIG_REMOTE_DISK_AT_PHYSICAL_EXPONENT"], ["REMOTE_DISK_AT_BLOCKS", "CONFIG_REMOTE_DISK_AT_BLOCKS"],
      ["REMOTE_DISK_AT_BLOCK_SIZE", "CONFIG_REMOTE_DISK_AT_BLOCK_SIZE"]])).toEqual([]);
    // The loader's limit (and the schema's maxItems) is the firmware's table.
    expect(disagreements(firmwareVolume, sourceConstants("host/board/load.ts"), [["VOLUMES_MAX", "VOLUMES_MAX"]])).toEqual([]);
  });

  it("the RAID metadata area every member keeps before its data", () => {
    expect(firmwareVolume.get("RAID_METADATA_BYTES")).toBe(BigInt(geometry.RAID_METADATA_BYTES));
  });
});
