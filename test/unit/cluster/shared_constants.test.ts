// What the host's configuration ROM (host/bus/cluster_rom.ts), the board file's schema and the firmware's routing
// table (assembly/cluster/) must agree on, read from both sides: the cluster records' numbers and layouts, the owners
// modes, the format, and the table's limits against the schema's. A number changed on one side alone fails here
// rather than as a board that silently runs alone.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import * as host from "../../../host/bus/cluster_rom.ts";
import { CLUSTER_TARGET_PORTS_MAX } from "../../../host/board/cluster_spec.ts";
import { ROOT } from "../../../tools/build/firmware.ts";
import { disagreements, moduleConstants, sameNames, sourceConstants, withPrefix } from "../../support/shared_constants.ts";

const firmwareRom = sourceConstants("assembly/cluster/config_rom.ts");
const firmwareTable = sourceConstants("assembly/cluster/routing_table.ts");
const hosts = moduleConstants(host);
const schema = JSON.parse(readFileSync(join(ROOT, "boards/board.schema.json"), "utf8")) as { $defs: Record<string, any> };

describe("cluster records: firmware and host agree", () => {
  it("every cluster record has the same number on both sides, in 0x40-0x4F", () => {
    const firmware = withPrefix(firmwareRom, "ClusterRecord.");
    const hostRecords = withPrefix(hosts, "ClusterRecord.");
    expect(firmware.size).toBe(6); // the parser found the enum
    expect(disagreements(firmware, hostRecords, sameNames(firmware, hostRecords))).toEqual([]);
    for (const value of firmware.values()) expect(value >= 0x40n && value <= 0x4fn).toBe(true);
  });

  it("the owners modes, the format, the fixed record sizes and the redirect flag", () => {
    const firmwareModes = withPrefix(firmwareTable, "ClusterOwners.");
    const hostModes = withPrefix(hosts, "ClusterOwners.");
    expect(firmwareModes.size).toBe(2);
    expect(disagreements(firmwareModes, hostModes, sameNames(firmwareModes, hostModes))).toEqual([]);
    expect(disagreements(firmwareTable, hosts, [["CLUSTER_FORMAT", "CLUSTER_FORMAT"]])).toEqual([]);
    expect(disagreements(firmwareRom, hosts, [
      ["CLUSTER_BEGIN_BYTES", "CLUSTER_BEGIN_BYTES"], ["CLUSTER_VOLUME_BYTES", "CLUSTER_VOLUME_BYTES"],
      ["CLUSTER_FLAG_REDIRECT", "CLUSTER_FLAG_REDIRECT"], ["CLUSTER_OWNERS_PER_RECORD_MAX", "CLUSTER_OWNERS_PER_RECORD_MAX"],
    ])).toEqual([]);
    // An Owners record at its fullest fits the ROM walk's 256-byte record.
    const recordMax = sourceConstants("assembly/board/config_rom.ts").get("CONFIG_RECORD_BYTES_MAX")!;
    expect(8n + 2n * firmwareRom.get("CLUSTER_OWNERS_PER_RECORD_MAX")!).toBeLessThanOrEqual(recordMax);
  });

  it("the schema's limits are the firmware table's", () => {
    const cluster = schema.$defs.cluster.properties;
    const board = schema.$defs.clusterBoard.properties;
    const volume = schema.$defs.clusterVolume.properties;
    expect(BigInt(cluster.boards.maxItems)).toBe(firmwareTable.get("CLUSTER_BOARDS_MAX"));
    expect(BigInt(cluster.volumes.maxItems)).toBe(firmwareTable.get("CLUSTER_VOLUMES_MAX"));
    expect(BigInt(board.id.maximum)).toBe(firmwareTable.get("CLUSTER_BOARD_ID_MAX"));
    expect(BigInt(board.portals.maxItems)).toBe(firmwareTable.get("CLUSTER_PORTALS_PER_BOARD_MAX"));
    expect(BigInt(volume.pageCount.maximum)).toBe(firmwareTable.get("CLUSTER_PAGES_MAX"));
    expect(schema.$defs.clusterBoardName.pattern).toBe(`^[a-z][a-z0-9-]{0,${Number(firmwareTable.get("CLUSTER_BOARD_NAME_BYTES_MAX")!) - 1}}$`);
  });

  it("a board's local target ports (targets × portals) are as many on both sides", () => {
    expect(BigInt(CLUSTER_TARGET_PORTS_MAX)).toBe(sourceConstants("assembly/scsi/target_port.ts").get("TARGET_PORT_LOCAL_MAX"));
  });
});
