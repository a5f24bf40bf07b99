// The SCSI operation codes the firmware speaks (assembly/protocol/scsi_opcodes.ts, used by the SCSI target and the
// virtio-scsi DDM) and those the host's emulated disks implement (host/devices/scsi_disk.ts): every opcode the host
// knows must be the firmware's under the same name (the host's OPCODE_ is the firmware's OP_) and number, or the DDM
// would send its disks commands they read as others.
import { describe, expect, it } from "vitest";
import * as host from "../../../host/devices/scsi_disk.ts";
import { disagreements, moduleConstants, sourceConstants } from "../../support/shared_constants.ts";

describe("SCSI operation codes: firmware and host agree", () => {
  it("every opcode of the host's disks is the firmware's, with the same number; READ CAPACITY(16)'s service action too", () => {
    const firmware = sourceConstants("assembly/protocol/scsi_opcodes.ts");
    const hosts = moduleConstants(host);
    const opcodes = [...hosts.keys()].filter((name) => name.startsWith("OPCODE_"));
    expect(opcodes.length).toBeGreaterThanOrEqual(24);
    const pairs = opcodes.map((name): [string, string] => [`OP_${name.slice("OPCODE_".length)}`, name]);
    expect(disagreements(firmware, hosts, [...pairs, ["SA_READ_CAPACITY_16", "SERVICE_ACTION_READ_CAPACITY_16"]])).toEqual([]);
  });
});
