// The board's configuration ROM (docs/hardware.md, "Configuration ROM"): TLV records the host's agents read at boot.
// |0 magic u32|4 version u16|6 recordCount u16|8 totalBytes u32|12 -|16 records: |0 type u16|2 length u16|4 value,
// padded to 4||. The ROM is the board's, but a bad one must not panic the firmware: a malformed record ends the walk
// and is reported. Each reader (the iSCSI targets, the volumes) takes the record types it knows and skips the rest.
import { busRead32 } from "./bus";
import { carve } from "../kernel/carve";
import { line } from "../kernel/console";

export const CONFIG_ROM_MAGIC: u32 = 0x4746_4357; // "WCFG"
export const CONFIG_RECORD_BYTES_MAX: u32 = 256;
const RECORDS_MAX: u32 = 1024;
const ROM_BYTES_MAX: u32 = 65536;

/** Walks the records of the ROM at `base`: `next()` copies one record's value out and says whether there was one. */
export class ConfigRomReader {
  readonly value: usize = carve(CONFIG_RECORD_BYTES_MAX, 4); // the current record's value, padded to 4
  type: u32 = 0;
  lengthBytes: u32 = 0;
  private at: u32 = 16;
  private records: u32 = 0;
  private readonly totalBytes: u32;
  readonly present: bool;

  /** Boot only (carves). `who` names the reader in messages. */
  constructor(private readonly base: u64, private readonly who: string) {
    this.present = base != 0 && busRead32(base) == CONFIG_ROM_MAGIC;
    this.totalBytes = this.present ? min(busRead32(base + 8), ROM_BYTES_MAX) : 0;
  }

  next(): bool {
    if (this.records >= RECORDS_MAX || this.at + 4 > this.totalBytes) return false;
    const header = busRead32(this.base + this.at);
    const lengthBytes = header >>> 16;
    const padded = (lengthBytes + 3) & ~(<u32>3);
    if (lengthBytes > CONFIG_RECORD_BYTES_MAX || this.at + 4 + padded > this.totalBytes) {
      line().s(this.who).s(": configuration ROM record at ").u32(this.at).s(" is malformed; stopped reading").err();
      this.records = RECORDS_MAX;
      return false;
    }
    for (let i: u32 = 0; i < padded; i += 4) store<u32>(this.value + i, busRead32(this.base + this.at + 4 + i));
    this.type = header & 0xffff;
    this.lengthBytes = lengthBytes;
    this.at += 4 + padded;
    this.records += 1;
    return true;
  }
}
