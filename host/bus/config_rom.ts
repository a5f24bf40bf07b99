// The board's configuration ROM, on the host processor's bus: what the board file says about the iSCSI targets
// (names, LUNs, CHAP, allowed initiators), as TLV records the firmware reads at boot (docs/hardware.md,
// "Configuration ROM"). The firmware never sees the board file; this is the board's NVRAM.
import type { TargetSpec } from "../board/load.ts";
import type { AccessSize, BusRegion } from "./bus.ts";
import { readLe } from "./pci_function.ts";

export const CONFIG_ROM_MAGIC = 0x4746_4357; // "WCFG"
export const CONFIG_ROM_VERSION = 1;
export const CONFIG_ROM_SIZE_BYTES = 65536;
export const CONFIG_LUN_READ_ONLY = 0x8000_0000; // or'd into a Lun record's volume number: the LUN refuses writes

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

/** |0 magic u32|4 version u16|6 recordCount u16|8 totalBytes u32|12 -|16 records: |0 type u16|2 length u16|4 value, padded to 4||. */
export function encodeConfigRom(targets: readonly TargetSpec[], volumeCount: number, portals: readonly { host: string; port: number }[] = []): Uint8Array {
  const records: { type: ConfigRecord; value: Uint8Array }[] = [];
  const text = (type: ConfigRecord, value: string) => records.push({ type, value: new TextEncoder().encode(value) });
  for (const portal of portals) text(ConfigRecord.Portal, portal.host.includes(":") ? `[${portal.host}]:${portal.port}` : `${portal.host}:${portal.port}`);
  for (const target of targets) {
    text(ConfigRecord.TargetBegin, target.name);
    if (target.alias !== "") text(ConfigRecord.TargetAlias, target.alias);
    for (const lun of target.luns ?? Array.from({ length: volumeCount }, (_, volume) => ({ volume, readOnly: false }))) {
      const value = new Uint8Array(4);
      new DataView(value.buffer).setUint32(0, (lun.volume | (lun.readOnly ? CONFIG_LUN_READ_ONLY : 0)) >>> 0, true);
      records.push({ type: ConfigRecord.Lun, value });
    }
    if (target.chap !== undefined) {
      text(ConfigRecord.ChapUser, target.chap.user);
      text(ConfigRecord.ChapSecret, target.chap.secret);
      if (target.chap.mutualUser !== undefined) text(ConfigRecord.MutualUser, target.chap.mutualUser);
      if (target.chap.mutualSecret !== undefined) text(ConfigRecord.MutualSecret, target.chap.mutualSecret);
    }
    for (const initiator of target.initiators) text(ConfigRecord.AllowedInitiator, initiator);
    records.push({ type: ConfigRecord.TargetEnd, value: new Uint8Array(0) });
  }
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
