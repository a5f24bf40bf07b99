// The SCSI sense keys the firmware speaks (assembly/protocol/sense_keys.ts, used by the SCSI target and the
// virtio-scsi DDM) and those the host's emulated disks answer with (host/devices/scsi_sense.ts): every key the host
// uses must be the firmware's under the same name and number, or the DDM would misread the disks' sense data.
import { describe, expect, it } from "vitest";
import * as host from "../../../host/devices/scsi_sense.ts";
import { disagreements, moduleConstants, named, sourceConstants } from "../../support/shared_constants.ts";

describe("sense keys: firmware and host agree", () => {
  it("every sense key of the host's disks is the firmware's, with the same number", () => {
    const firmware = sourceConstants("assembly/protocol/sense_keys.ts");
    const hosts = moduleConstants(host);
    const keys = [...hosts.keys()].filter((name) => name.startsWith("SENSE_KEY_"));
    expect(keys.length).toBeGreaterThanOrEqual(10);
    expect(disagreements(firmware, hosts, named(...keys))).toEqual([]);
  });
});
