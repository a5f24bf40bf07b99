// The NBD server's board-file section and configuration ROM records, host and firmware: the loader names the field
// of a bad export; the firmware's NbdRecord numbers and read-only flag (assembly/tts/nbd/config_rom.ts, parsed from
// the source) agree with the host's (host/bus/config_rom.ts); the host writes the portals first, in the NIC's order,
// the NBD one last, then one NbdExport record per export with its volume, flag and name.
import { describe, expect, it } from "vitest";
import { parseBoard } from "../../../host/board/load.ts";
import * as host from "../../../host/bus/config_rom.ts";
import { disagreements, moduleConstants, sourceConstants, withPrefix } from "../../support/shared_constants.ts";

const firmware = sourceConstants("assembly/tts/nbd/config_rom.ts");
const hosts = moduleConstants(host);

type Json = Record<string, unknown>;
function board(nbd: unknown): Json {
  const disks = ["d0", "d1"].map((name) => ({ name, sizeMiB: 1, blockSize: 512, backend: "memory" }));
  const processors = [{ name: "host", role: "host", ramMiB: 64, pci: [{ slot: 3, model: "virtio-scsi", disks: ["d0", "d1"] }, { slot: 4, model: "nic" }] }];
  return { name: "t", processors, disks, portals: [{ host: "127.0.0.1", port: 3260 }], nbd };
}

function records(rom: Uint8Array): { type: number; value: Uint8Array }[] {
  const view = new DataView(rom.buffer, rom.byteOffset);
  const out: { type: number; value: Uint8Array }[] = [];
  for (let at = 16; at < view.getUint32(8, true);) {
    const lengthBytes = view.getUint16(at + 2, true);
    out.push({ type: view.getUint16(at, true), value: rom.slice(at + 4, at + 4 + lengthBytes) });
    at += 4 + Math.ceil(lengthBytes / 4) * 4;
  }
  return out;
}

describe("NBD in the board file and the configuration ROM", () => {
  it("firmware and host agree on the record numbers and the read-only flag", () => {
    const firmwareRecords = withPrefix(firmware, "NbdRecord.");
    const hostRecords = withPrefix(hosts, "NbdRecord.");
    expect(firmwareRecords.size).toBe(3); // Portal (counted), NbdPortal, NbdExport: the parser found the enum
    // The firmware's enum also names the iSCSI Portal record it counts; the host has that one in ConfigRecord.
    expect(disagreements(firmwareRecords, hostRecords, [["NbdPortal", "NbdPortal"], ["NbdExport", "NbdExport"]])).toEqual([]);
    expect(disagreements(firmware, hosts, [["NbdRecord.Portal", "ConfigRecord.Portal"], ["EXPORT_READ_ONLY", "CONFIG_LUN_READ_ONLY"]])).toEqual([]);
  });

  it("writes the iSCSI portals, then the NBD portal, then an export record per export", () => {
    const spec = parseBoard(board({ exports: [{ name: "first", volume: "d1" }, { name: "ro", volume: 0, readOnly: true }] }), "t.json");
    expect(spec.nbd!.portal).toEqual({ host: "127.0.0.1", port: 10809 }); // the default
    const all = records(host.encodeConfigRom(spec, spec.portals));
    const portals = all.filter((r) => r.type === host.ConfigRecord.Portal || r.type === host.NbdRecord.NbdPortal);
    expect(portals.map((r) => [r.type, new TextDecoder().decode(r.value)])).toEqual([[0x10, "127.0.0.1:3260"], [0x11, "127.0.0.1:10809"]]);
    expect(all.findIndex((r) => r.type === host.NbdRecord.NbdPortal)).toBeLessThan(all.findIndex((r) => r.type === 0x20)); // before the volumes
    const exports = all.filter((r) => r.type === host.NbdRecord.NbdExport).map((r) => [new DataView(r.value.buffer).getUint32(0, true), new TextDecoder().decode(r.value.subarray(4))]);
    expect(exports).toEqual([[1, "first"], [(0 | host.CONFIG_LUN_READ_ONLY) >>> 0, "ro"]]);
  });

  it("names the field of an export that names no volume, twice the same name, or a bad name", () => {
    expect(() => parseBoard(board({ exports: [{ name: "a", volume: "d7" }] }), "t.json")).toThrow('t.json: nbd.exports[0].volume: expected the name of a volume, named after its disk ("d0", "d1"), got "d7"');
    expect(() => parseBoard(board({ exports: [{ name: "a", volume: 2 }] }), "t.json")).toThrow("t.json: nbd.exports[0].volume: expected a volume number below 2 (one volume per disk), got 2");
    expect(() => parseBoard(board({ exports: [{ name: "a", volume: 0 }, { name: "a", volume: 1 }] }), "t.json")).toThrow('t.json: nbd.exports[1].name: expected a name not already used by nbd.exports[0], got "a"');
    expect(() => parseBoard(board({ exports: [{ name: "has space", volume: 0 }] }), "t.json")).toThrow(/nbd\.exports\[0\]\.name: expected 1 to 200 printable ASCII characters without spaces/);
    expect(() => parseBoard(board({ exports: [] }), "t.json")).toThrow(/nbd\.exports: expected an array of 1 to 16 exports/);
    expect(() => parseBoard(board({ exports: [{ name: "a", volume: 0 }], extra: 1 }), "t.json")).toThrow(/nbd\.extra/);
  });
});
