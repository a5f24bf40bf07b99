// Proves the configuration ROM's volume records (docs/hardware.md, "Configuration ROM"): the ROM that
// host/bus/config_rom.ts encodes is decoded back here by a small reader written from the documented layout, and each
// record must carry what the board file says: VolumeBegin with the name, VolumeLayout's 16 bytes per type,
// VolumeDisk and VolumeSpare as (index on the processor, processor name), VolumeMember as the pool's number,
// VolumeEnd; every volume in order and before the first target, on every board, with or without `volumes`.
import { describe, expect, it } from "vitest";
import { parseBoard } from "../../../host/board/load.ts";
import { CONFIG_ROM_MAGIC, CONFIG_ROM_VERSION, ConfigRecord, encodeConfigRom, VolumeLayoutType, VolumeRecord } from "../../../host/bus/config_rom.ts";

type Json = any; // a board file as a person writes it

interface RomRecord { type: number; value: Uint8Array }

// The documented layout, read back: a 16-byte header, then |type u16|length u16|value padded to 4|.
function decodeRom(rom: Uint8Array): RomRecord[] {
  const view = new DataView(rom.buffer, rom.byteOffset, rom.byteLength);
  expect(view.getUint32(0, true)).toBe(CONFIG_ROM_MAGIC);
  expect(view.getUint16(4, true)).toBe(CONFIG_ROM_VERSION);
  const records: RomRecord[] = [];
  const totalBytes = view.getUint32(8, true);
  for (let at = 16; at < totalBytes;) {
    const lengthBytes = view.getUint16(at + 2, true);
    records.push({ type: view.getUint16(at, true), value: rom.slice(at + 4, at + 4 + lengthBytes) });
    at += 4 + Math.ceil(lengthBytes / 4) * 4;
  }
  expect(records).toHaveLength(view.getUint16(6, true));
  return records;
}

// One volume, as its records say it, in words a test can compare.
interface DecodedVolume { name: string; layout: { type: number; softThresholdPercent: number; reserved: number; chunkBytes: number; virtualBytes: bigint }; disks: string[]; members: number[]; spares: string[] }

function decodeVolumes(records: readonly RomRecord[]): DecodedVolume[] {
  const volumes: DecodedVolume[] = [];
  let open: DecodedVolume | undefined;
  const text = (value: Uint8Array) => new TextDecoder().decode(value);
  const u32 = (value: Uint8Array) => new DataView(value.buffer, value.byteOffset).getUint32(0, true);
  const disk = (value: Uint8Array) => `${text(value.subarray(4))}:${u32(value)}`;
  for (const { type, value } of records) {
    if (type === VolumeRecord.VolumeBegin) {
      expect(open).toBeUndefined();
      open = { name: text(value), layout: { type: -1, softThresholdPercent: -1, reserved: -1, chunkBytes: -1, virtualBytes: -1n }, disks: [], members: [], spares: [] };
      continue;
    }
    if (type < 0x20 || type > 0x2f) continue;
    expect(open).toBeDefined();
    switch (type) {
      case VolumeRecord.VolumeLayout: {
        expect(value).toHaveLength(16);
        const view = new DataView(value.buffer, value.byteOffset, 16);
        open!.layout = { type: view.getUint8(0), softThresholdPercent: view.getUint8(1), reserved: view.getUint16(2, true), chunkBytes: view.getUint32(4, true), virtualBytes: view.getBigUint64(8, true) };
        break;
      }
      case VolumeRecord.VolumeDisk: open!.disks.push(disk(value)); break;
      case VolumeRecord.VolumeMember: expect(value).toHaveLength(4); open!.members.push(u32(value)); break;
      case VolumeRecord.VolumeSpare: open!.spares.push(disk(value)); break;
      case VolumeRecord.VolumeEnd: expect(value).toHaveLength(0); volumes.push(open!); open = undefined; break;
      default: throw new Error(`unknown volume record 0x${type.toString(16)}`);
    }
  }
  expect(open).toBeUndefined();
  return volumes;
}

function board(volumes: Json[] | undefined, targets?: Json[]): Json {
  const names = ["host-disk0", "sp1-disk0", "sp1-disk1", "sp1-disk2", "sp2-disk0", "sp2-disk1", "sp2-disk2"];
  return {
    name: "rom-board",
    processors: [
      { name: "host", role: "host", ramMiB: 64, pci: [{ slot: 1, model: "iop-bridge", processor: "sp1" }, { slot: 2, model: "iop-bridge", processor: "sp2" }, { slot: 3, model: "virtio-scsi", disks: ["host-disk0"] }] },
      { name: "sp1", role: "storage", ramMiB: 32, pci: [{ slot: 1, model: "virtio-scsi", disks: ["sp1-disk0", "sp1-disk1", "sp1-disk2"] }] },
      { name: "sp2", role: "storage", ramMiB: 32, pci: [{ slot: 1, model: "virtio-scsi", disks: ["sp2-disk0", "sp2-disk1", "sp2-disk2"] }] },
    ],
    disks: names.map((name) => ({ name, sizeMiB: 64, blockSize: 512, backend: "memory" })),
    ...(volumes === undefined ? {} : { volumes }),
    ...(targets === undefined ? {} : { targets }),
  };
}

const VOLUMES = [
  { name: "host-disk0", type: "disk", disk: "host-disk0" },
  { name: "r5", type: "raid5", members: ["sp1-disk1", "sp2-disk1", "sp1-disk2"], chunkKiB: 128, spares: ["sp2-disk2"] },
  { name: "thin0", type: "thin", pool: "r5", sizeMiB: 256, chunkKiB: 1024, softThresholdPercent: 80 },
  { name: "m", type: "raid1", members: ["sp1-disk0", "sp2-disk0"] },
];

const romOf = (json: Json) => decodeRom(encodeConfigRom(parseBoard(json, "rom.json"), [{ host: "127.0.0.1", port: 3260 }]));

describe("configuration ROM: volume records", () => {
  it("carries each volume's name, layout, disks, pool and spares, in volume order", () => {
    const layout = (type: number, softThresholdPercent: number, chunkBytes: number, virtualBytes: bigint) => ({ type, softThresholdPercent, reserved: 0, chunkBytes, virtualBytes });
    expect(decodeVolumes(romOf(board(VOLUMES)))).toEqual([
      { name: "host-disk0", layout: layout(VolumeLayoutType.Disk, 0, 0, 0n), disks: ["host:0"], members: [], spares: [] },
      { name: "r5", layout: layout(VolumeLayoutType.Raid5, 0, 128 * 1024, 0n), disks: ["sp1:1", "sp2:1", "sp1:2"], members: [], spares: ["sp2:2"] },
      { name: "thin0", layout: layout(VolumeLayoutType.Thin, 80, 1024 * 1024, 256n << 20n), disks: [], members: [1], spares: [] },
      { name: "m", layout: layout(VolumeLayoutType.Raid1, 0, 64 * 1024, 0n), disks: ["sp1:0", "sp2:0"], members: [], spares: [] },
    ]);
  });

  it("numbers the layout types 0 disk, 1 raid0, 2 raid1, 3 raid5, 4 thin, and leaves a thin volume without a threshold at 0", () => {
    const volumes = [
      { name: "r0", type: "raid0", members: ["sp1-disk0", "sp2-disk0"], chunkKiB: 4 },
      { name: "thin1", type: "thin", pool: "r0", sizeMiB: 64 },
    ];
    const decoded = decodeVolumes(romOf(board(volumes)));
    expect(decoded.map((v) => [v.layout.type, v.layout.softThresholdPercent, v.layout.chunkBytes])).toEqual([[1, 0, 4096], [4, 0, 1024 * 1024]]);
    expect([VolumeLayoutType.Disk, VolumeLayoutType.Raid0, VolumeLayoutType.Raid1, VolumeLayoutType.Raid5, VolumeLayoutType.Thin]).toEqual([0, 1, 2, 3, 4]);
    expect([VolumeRecord.VolumeBegin, VolumeRecord.VolumeLayout, VolumeRecord.VolumeDisk, VolumeRecord.VolumeMember, VolumeRecord.VolumeSpare, VolumeRecord.VolumeEnd]).toEqual([0x20, 0x21, 0x22, 0x23, 0x24, 0x2f]);
  });

  it("gives a board without volumes one disk volume per disk, named after it, over that disk", () => {
    expect(decodeVolumes(romOf(board(undefined))).map((v) => `${v.name} ${v.layout.type} ${v.disks.join(",")}`)).toEqual([
      "host-disk0 0 host:0", "sp1-disk0 0 sp1:0", "sp1-disk1 0 sp1:1", "sp1-disk2 0 sp1:2", "sp2-disk0 0 sp2:0", "sp2-disk1 0 sp2:1", "sp2-disk2 0 sp2:2",
    ]);
  });

  it("puts every volume record after the portal and before the first target", () => {
    const records = romOf(board(VOLUMES));
    const types = records.map((r) => r.type);
    const lastVolumeRecord = types.lastIndexOf(VolumeRecord.VolumeEnd);
    expect(types[0]).toBe(ConfigRecord.Portal);
    expect(types[1]).toBe(VolumeRecord.VolumeBegin);
    expect(types.indexOf(ConfigRecord.TargetBegin)).toBe(lastVolumeRecord + 1);
  });

  it("lists the top-level volumes as the default target's LUNs, and a target's own LUNs by number", () => {
    const luns = (json: Json) => romOf(json).filter((r) => r.type === ConfigRecord.Lun).map((r) => new DataView(r.value.buffer).getUint32(0, true));
    expect(luns(board(VOLUMES))).toEqual([0, 2, 3]); // r5 is thin0's pool
    expect(luns(board(VOLUMES, [{ name: "iqn.2026-11.org.example:t", luns: ["r5", { volume: "thin0", readOnly: true }] }]))).toEqual([1, (2 | 0x8000_0000) >>> 0]);
  });
});
