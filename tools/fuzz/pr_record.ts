// The persistent reservation record (assembly/scsi/pr_record.ts; docs/iscsi.md, "Persistent reservations through power
// loss"), as the nvram fuzz target forges it: one copy of a volume's record in the NVRAM, little-endian, a multiple of
// 8 bytes, checked by FNV-1a 64 over its 8-byte words with the checksum read as 0.
//   header, 64 bytes: |0 magic u32 "WPRR"|4 version u16 (1)|6 entryCount u16|8 sequence u64|16 recordBytes u32|
//   |20 type u8|21 holder u8 (entry index; 0xFF none)|22 aptpl u8|23 nameBytes u8|24 volume name[32]|56 checksum u64|
//   entry: |0 key u64|8 flags u8 (bit 0 ALL_TG_PT, bit 1 an initiator device's name)|9 -|10 targetPort u16|
//   |12 nameBytes u16|14 -|16 the initiator port's (or device's) name, zero-padded to a multiple of 8|
// The firmware cannot import this file, so test/unit/scsi/shared_constants.test.ts reads the firmware's constants from
// its source and checks that every one below agrees with its twin there (the firmware's file-private AT_X is
// PR_RECORD_AT_X here); test/unit/scsi/pr_aptpl.test.ts has the firmware restore a record made by makeRecord.
export const PR_RECORD_COPY_BYTES = 16384;
export const PR_RECORD_MAGIC = 0x5252_5057; // "WPRR"
export const PR_RECORD_VERSION = 1;
export const PR_RECORD_HEADER_BYTES = 64;
export const PR_RECORD_ENTRY_HEADER_BYTES = 16;
export const PR_RECORD_AT_MAGIC = 0;
export const PR_RECORD_AT_VERSION = 4;
export const PR_RECORD_AT_ENTRY_COUNT = 6;
export const PR_RECORD_AT_SEQUENCE = 8;
export const PR_RECORD_AT_RECORD_BYTES = 16;
export const PR_RECORD_AT_TYPE = 20;
export const PR_RECORD_AT_HOLDER = 21;
export const PR_RECORD_AT_APTPL = 22;
export const PR_RECORD_AT_NAME_BYTES = 23;
export const PR_RECORD_AT_NAME = 24;
export const PR_RECORD_AT_CHECKSUM = 56;
export const PR_RECORD_ENTRY_AT_KEY = 0;
export const PR_RECORD_ENTRY_AT_FLAGS = 8;
export const PR_RECORD_ENTRY_AT_TARGET_PORT = 10;
export const PR_RECORD_ENTRY_AT_NAME_BYTES = 12;
export const PR_RECORD_HOLDER_NONE = 0xff;
const VOLUME_NAME_BYTES = PR_RECORD_AT_CHECKSUM - PR_RECORD_AT_NAME; // the header's name field

/** FNV-1a 64 over the record's 8-byte words, the checksum word read as zero (pr_record.ts prRecordChecksum). */
export function recordChecksum(record: Uint8Array): bigint {
  const v = new DataView(record.buffer, record.byteOffset, record.byteLength);
  let h = 0xcbf2_9ce4_8422_2325n;
  for (let i = 0; i < record.length; i += 8) {
    const word = i === PR_RECORD_AT_CHECKSUM ? 0n : v.getBigUint64(i, true);
    h = BigInt.asUintN(64, (h ^ word) * 0x0000_0100_0000_01b3n);
  }
  return h;
}

export interface RecordEntry { key: bigint; flags: number; targetPort: number; name: string }

/** A record as pr_record.ts writes it; `fix` false leaves the checksum as it falls. */
export function makeRecord(fields: { sequence: bigint; type: number; holder: number; aptpl: number; volume: string; entries: RecordEntry[]; version?: number; fix?: boolean }): Uint8Array {
  const names = fields.entries.map((e) => Buffer.from(e.name, "latin1"));
  const length = PR_RECORD_HEADER_BYTES + names.reduce((n, b) => n + PR_RECORD_ENTRY_HEADER_BYTES + ((b.length + 7) & ~7), 0);
  const record = new Uint8Array(Math.min(length, PR_RECORD_COPY_BYTES));
  const v = new DataView(record.buffer);
  v.setUint32(PR_RECORD_AT_MAGIC, PR_RECORD_MAGIC, true);
  v.setUint16(PR_RECORD_AT_VERSION, fields.version ?? PR_RECORD_VERSION, true);
  v.setUint16(PR_RECORD_AT_ENTRY_COUNT, fields.entries.length, true);
  v.setBigUint64(PR_RECORD_AT_SEQUENCE, fields.sequence, true);
  v.setUint32(PR_RECORD_AT_RECORD_BYTES, length, true);
  record[PR_RECORD_AT_TYPE] = fields.type;
  record[PR_RECORD_AT_HOLDER] = fields.holder;
  record[PR_RECORD_AT_APTPL] = fields.aptpl;
  const volume = Buffer.from(fields.volume, "latin1").subarray(0, VOLUME_NAME_BYTES);
  record[PR_RECORD_AT_NAME_BYTES] = volume.length;
  record.set(volume, PR_RECORD_AT_NAME);
  let at = PR_RECORD_HEADER_BYTES;
  fields.entries.forEach((e, i) => {
    if (at + PR_RECORD_ENTRY_HEADER_BYTES > record.length) return;
    v.setBigUint64(at + PR_RECORD_ENTRY_AT_KEY, e.key, true);
    record[at + PR_RECORD_ENTRY_AT_FLAGS] = e.flags;
    v.setUint16(at + PR_RECORD_ENTRY_AT_TARGET_PORT, e.targetPort, true);
    v.setUint16(at + PR_RECORD_ENTRY_AT_NAME_BYTES, names[i]!.length, true);
    record.set(names[i]!.subarray(0, Math.max(0, record.length - at - PR_RECORD_ENTRY_HEADER_BYTES)), at + PR_RECORD_ENTRY_HEADER_BYTES);
    at += PR_RECORD_ENTRY_HEADER_BYTES + ((names[i]!.length + 7) & ~7);
  });
  if (fields.fix !== false) v.setBigUint64(PR_RECORD_AT_CHECKSUM, recordChecksum(record), true);
  return record;
}
