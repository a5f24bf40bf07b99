// The SAM status codes the firmware speaks (assembly/protocol/scsi_status.ts, used by the SCSI target and the
// virtio-scsi DDM) and those the host's emulated disks answer with (host/devices/scsi_sense.ts): every status the
// host uses must be the firmware's under the same name and number, or the DDM would misread its disks' answers.
import { describe, expect, it } from "vitest";
import * as host from "../../../host/devices/scsi_sense.ts";
import { disagreements, moduleConstants, named, sourceConstants } from "../../support/shared_constants.ts";

describe("SAM status codes: firmware and host agree", () => {
  it("every status code of the host's disks is the firmware's, with the same number", () => {
    const firmware = sourceConstants("assembly/protocol/scsi_status.ts");
    const hosts = moduleConstants(host);
    const statuses = [...hosts.keys()].filter((name) => name.startsWith("SAM_STATUS_"));
    expect(statuses.length).toBeGreaterThanOrEqual(5);
    expect(disagreements(firmware, hosts, named(...statuses))).toEqual([]);
  });
});
