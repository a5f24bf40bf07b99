// The board's configuration ROM, on the host processor's bus: what the board file says about the volumes (their
// layout and disks) and the iSCSI targets (names, LUNs, CHAP, allowed initiators), as TLV records the firmware reads
// at boot (docs/hardware.md, "Configuration ROM"). The firmware never sees the board file; this is the board's NVRAM.
import { diskAddresses, type DiskAddress } from "../board/disk_address.ts";
import { type BoardSpec, type RemoteDiskSpec, targetLuns, type VolumeSpec } from "../board/load.ts";
import { diskBytes } from "../board/volume_geometry.ts";
import type { AccessSize, BusRegion } from "./bus.ts";
import { ClusterRecord, clusterRecords } from "./cluster_rom.ts";
import { readLe } from "./pci_function.ts";

export const CONFIG_ROM_MAGIC = 0x4746_4357; // "WCFG"
// Still 1 with the volume records: a reader skips record types it does not know (assembly/tts/iscsi/config_rom.ts).
export const CONFIG_ROM_VERSION = 1;
export const CONFIG_ROM_SIZE_BYTES = 65536;
export const CONFIG_LUN_READ_ONLY = 0x8000_0000; // or'd into a Lun record's volume number: the LUN refuses writes
export const CONFIG_VOLUME_NAME_BYTES_MAX = 31; // a VolumeBegin record's name, without a NUL
export const CONFIG_VOLUME_LAYOUT_BYTES = 16; // a VolumeLayout record's value

export enum ConfigRecord {
  TargetBegin = 0x01, // value: the target's iSCSI name
  TargetAlias = 0x02,
  Lun = 0x03, // value: u32 volume number, | CONFIG_LUN_READ_ONLY (a firmware without the flag finds no such volume)
  ChapUser = 0x04,
  ChapSecret = 0x05,
  MutualUser = 0x06,
  MutualSecret = 0x07,
  AllowedInitiator = 0x08,
  TargetEnd = 0x0f,
  Portal = 0x10, // value: "address:port" the board listens on
}

// The NBD server's records (docs/nbd.md), read by assembly/tts/nbd/config_rom.ts (its NbdRecord, matched one for one by
// test/unit/nbd/config_rom.test.ts). NIC portal i is the i-th Portal or NbdPortal record: the portals come first, in
// the NIC's order (the iSCSI ones, then the NBD one).
export enum NbdRecord {
  NbdPortal = 0x11, // value: "address:port" of the NBD portal
  NbdExport = 0x12, // value: |0 volume u32 (| CONFIG_LUN_READ_ONLY)|4 the export's name|
}

// The volume records, in an enum of their own: the firmware reads them in assembly/volumes/config.ts (its VolumeRecord,
// matched one for one by test/unit/volumes/shared_constants.test.ts), not in the iSCSI reader whose Record enum
// test/unit/iscsi/config_rom.test.ts matches with ConfigRecord. A volume is VolumeBegin, VolumeLayout, its
// VolumeDisk, VolumeMember and VolumeSpare records, then VolumeEnd.
export enum VolumeRecord {
  VolumeBegin = 0x20, // value: the volume's name (1..31 bytes); volume n is the n-th VolumeBegin
  VolumeLayout = 0x21, // value: 16 bytes, see volumeLayoutValue
  VolumeDisk = 0x22, // value: |0 index u32 (the disk's index on its processor)|4 the processor's name|; members in order
  VolumeMember = 0x23, // value: u32 number of a member volume (a thin volume's pool)
  VolumeSpare = 0x24, // value: as VolumeDisk, a hot spare
  VolumeEnd = 0x2f, // value: empty
  // value: 20 bytes, |0 disk index u32 (on that board's host processor)|4 board id u16|6 physicalExponent u8|7 - u8|
  // |8 blocks u64|16 blockSize u32|: a replica's copy on another board of the cluster (remoteDiskRecord)
  VolumeRemoteDisk = 0x50,
}
export const CONFIG_REMOTE_DISK_BYTES = 20;
// Its fields, where the firmware reads them (assembly/volumes/config.ts, REMOTE_DISK_AT_…).
export const CONFIG_REMOTE_DISK_AT_INDEX = 0;
export const CONFIG_REMOTE_DISK_AT_BOARD_ID = 4;
export const CONFIG_REMOTE_DISK_AT_PHYSICAL_EXPONENT = 6;
export const CONFIG_REMOTE_DISK_AT_BLOCKS = 8;
export const CONFIG_REMOTE_DISK_AT_BLOCK_SIZE = 16;

/** A VolumeLayout record's type byte. */
export enum VolumeLayoutType {
  Disk = 0,
  Raid0 = 1,
  Raid1 = 2,
  Raid5 = 3,
  Thin = 4,
  Replica = 5,
}

const LAYOUT_TYPES: Record<VolumeSpec["type"], VolumeLayoutType> = {
  disk: VolumeLayoutType.Disk,
  raid0: VolumeLayoutType.Raid0,
  raid1: VolumeLayoutType.Raid1,
  raid5: VolumeLayoutType.Raid5,
  thin: VolumeLayoutType.Thin,
  replica: VolumeLayoutType.Replica,
};

type RomRecord = { type: ConfigRecord | VolumeRecord | NbdRecord | ClusterRecord; value: Uint8Array };

/**
 * |0 magic u32|4 version u16|6 recordCount u16|8 totalBytes u32|12 -|16 records: |0 type u16|2 length u16|4 value, padded to 4||.
 * Records: the portals, then every volume in order, then every target (a target without LUNs in the board file
 * lists every top-level volume).
 */
export function encodeConfigRom(spec: Pick<BoardSpec, "processors" | "volumes" | "targets"> & Partial<Pick<BoardSpec, "nbd" | "cluster" | "remoteDisks">>,
  portals: readonly { host: string; port: number }[] = [], nbdPortal: { host: string; port: number } | undefined = spec.nbd?.portal): Uint8Array {
  const records: RomRecord[] = [];
  const portalText = (portal: { host: string; port: number }) => (portal.host.includes(":") ? `[${portal.host}]:${portal.port}` : `${portal.host}:${portal.port}`);
  for (const portal of portals) records.push(textRecord(ConfigRecord.Portal, portalText(portal)));
  if (spec.nbd !== undefined && nbdPortal !== undefined) records.push(textRecord(NbdRecord.NbdPortal, portalText(nbdPortal)));
  records.push(...volumeRecords(spec));
  for (const target of spec.targets) {
    records.push(textRecord(ConfigRecord.TargetBegin, target.name));
    if (target.alias !== "") records.push(textRecord(ConfigRecord.TargetAlias, target.alias));
    for (const lun of targetLuns(spec, target)) records.push(u32Record(ConfigRecord.Lun, (lun.volume | (lun.readOnly ? CONFIG_LUN_READ_ONLY : 0)) >>> 0));
    if (target.chap !== undefined) {
      records.push(textRecord(ConfigRecord.ChapUser, target.chap.user));
      records.push(textRecord(ConfigRecord.ChapSecret, target.chap.secret));
      if (target.chap.mutualUser !== undefined) records.push(textRecord(ConfigRecord.MutualUser, target.chap.mutualUser));
      if (target.chap.mutualSecret !== undefined) records.push(textRecord(ConfigRecord.MutualSecret, target.chap.mutualSecret));
    }
    for (const initiator of target.initiators) records.push(textRecord(ConfigRecord.AllowedInitiator, initiator));
    records.push({ type: ConfigRecord.TargetEnd, value: new Uint8Array(0) });
  }
  for (const entry of spec.nbd?.exports ?? []) {
    const name = new TextEncoder().encode(entry.name);
    const value = new Uint8Array(4 + name.length);
    new DataView(value.buffer).setUint32(0, (entry.volume | (entry.readOnly ? CONFIG_LUN_READ_ONLY : 0)) >>> 0, true);
    value.set(name, 4);
    records.push({ type: NbdRecord.NbdExport, value });
  }
  records.push(...clusterRecords(spec.cluster)); // docs/cluster.md; host/bus/cluster_rom.ts
  return romImage(records);
}

// Every volume in order: VolumeBegin, VolumeLayout, the disks (members in order) or the member volume, the spares,
// VolumeEnd. Disks go by (processor, index there), the only names the firmware has for them.
function volumeRecords(spec: Pick<BoardSpec, "processors" | "volumes"> & Partial<Pick<BoardSpec, "remoteDisks">>): RomRecord[] {
  const addresses = diskAddresses(spec.processors);
  const addressOf = (name: string): DiskAddress => {
    const address = addresses.get(name);
    if (address === undefined) throw new RangeError(`configuration ROM: no processor holds disk ${JSON.stringify(name)}`);
    return address;
  };
  const records: RomRecord[] = [];
  for (const volume of spec.volumes) {
    if (volume.name.length < 1 || volume.name.length > CONFIG_VOLUME_NAME_BYTES_MAX) throw new RangeError(`configuration ROM: volume name ${JSON.stringify(volume.name)} is not 1 to 31 bytes`);
    records.push(textRecord(VolumeRecord.VolumeBegin, volume.name));
    records.push({ type: VolumeRecord.VolumeLayout, value: volumeLayoutValue(volume) });
    switch (volume.type) {
      case "disk":
        records.push(diskRecord(VolumeRecord.VolumeDisk, addressOf(volume.disk)));
        break;
      case "raid0":
      case "raid1":
      case "raid5":
      case "replica":
        for (const member of volume.members) {
          const remote = spec.remoteDisks?.find((d) => d.name === member);
          records.push(remote !== undefined ? remoteDiskRecord(remote) : diskRecord(VolumeRecord.VolumeDisk, addressOf(member)));
        }
        for (const spare of volume.spares) records.push(diskRecord(VolumeRecord.VolumeSpare, addressOf(spare)));
        break;
      case "thin": {
        const pool = spec.volumes.findIndex((v) => v.name === volume.pool);
        if (pool < 0) throw new RangeError(`configuration ROM: volume ${volume.name} has no pool ${JSON.stringify(volume.pool)}`);
        records.push(u32Record(VolumeRecord.VolumeMember, pool));
        break;
      }
    }
    records.push({ type: VolumeRecord.VolumeEnd, value: new Uint8Array(0) });
  }
  return records;
}

/**
 * A VolumeLayout value, 16 bytes, little-endian: |0 type u8 (VolumeLayoutType)|1 softThresholdPercent u8 (0: none)|
 * 2 reserved u16 = 0|4 chunkBytes u32 (RAID: the stripe unit; thin: the chunk; disk: 0)|8 virtualBytes u64 (thin:
 * the virtual size; else 0)|.
 */
function volumeLayoutValue(volume: VolumeSpec): Uint8Array {
  const value = new Uint8Array(CONFIG_VOLUME_LAYOUT_BYTES);
  const view = new DataView(value.buffer);
  view.setUint8(0, LAYOUT_TYPES[volume.type]);
  if (volume.type === "thin") {
    view.setUint8(1, volume.softThresholdPercent ?? 0);
    view.setBigUint64(8, BigInt(volume.sizeMiB) << 20n, true);
  }
  if (volume.type !== "disk") view.setUint32(4, volume.chunkKiB * 1024, true);
  return value;
}

function diskRecord(type: VolumeRecord, address: DiskAddress): RomRecord {
  const name = ascii(address.processor);
  const value = new Uint8Array(4 + name.length);
  new DataView(value.buffer).setUint32(0, address.index, true);
  value.set(name, 4);
  return { type, value };
}

// A member on another board: where it is (the board's id, the disk's index on its host processor) and its geometry,
// which no discovery on this board sees (docs/volumes.md, "Copies on two boards").
function remoteDiskRecord(remote: RemoteDiskSpec): RomRecord {
  const value = new Uint8Array(CONFIG_REMOTE_DISK_BYTES);
  const view = new DataView(value.buffer);
  view.setUint32(CONFIG_REMOTE_DISK_AT_INDEX, remote.index, true);
  view.setUint16(CONFIG_REMOTE_DISK_AT_BOARD_ID, remote.boardId, true);
  view.setUint8(CONFIG_REMOTE_DISK_AT_PHYSICAL_EXPONENT, Math.log2(remote.disk.physicalBlockSize / remote.disk.blockSize));
  view.setBigUint64(CONFIG_REMOTE_DISK_AT_BLOCKS, BigInt(diskBytes(remote.disk) / remote.disk.blockSize), true);
  view.setUint32(CONFIG_REMOTE_DISK_AT_BLOCK_SIZE, remote.disk.blockSize, true);
  return { type: VolumeRecord.VolumeRemoteDisk, value };
}

function u32Record(type: ConfigRecord | VolumeRecord | NbdRecord, number: number): RomRecord {
  const value = new Uint8Array(4);
  new DataView(value.buffer).setUint32(0, number, true);
  return { type, value };
}

function textRecord(type: ConfigRecord | VolumeRecord | NbdRecord, text: string): RomRecord {
  return { type, value: ascii(text) };
}

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function romImage(records: readonly RomRecord[]): Uint8Array {
  const rom = new Uint8Array(CONFIG_ROM_SIZE_BYTES);
  const view = new DataView(rom.buffer);
  let at = 16;
  for (const record of records) {
    const padded = Math.ceil(record.value.length / 4) * 4;
    if (at + 4 + padded > rom.length) throw new RangeError("the board's configuration does not fit the 64 KiB configuration ROM");
    view.setUint16(at, record.type, true);
    view.setUint16(at + 2, record.value.length, true);
    rom.set(record.value, at + 4);
    at += 4 + padded;
  }
  view.setUint32(0, CONFIG_ROM_MAGIC, true);
  view.setUint16(4, CONFIG_ROM_VERSION, true);
  view.setUint16(6, records.length, true);
  view.setUint32(8, at, true);
  return rom;
}

export class ConfigRom implements BusRegion {
  readonly name = "config-rom";

  constructor(private readonly bytes: Uint8Array) {}

  read(offset: number, sizeBytes: AccessSize): number | bigint {
    return readLe(this.bytes, offset, sizeBytes);
  }

  write(): void {
    // Read-only: a write to a ROM is ignored.
  }

  readBytes(offset: number, lengthBytes: number): Uint8Array {
    return this.bytes.slice(offset, offset + lengthBytes);
  }
}
