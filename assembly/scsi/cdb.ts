// CDBs: operation codes, the table of supported commands with their CDB usage data (SPC-4, REPORT SUPPORTED
// OPERATION CODES), and big-endian field readers over a task's CDB.
// The usage data doubles as the reserved-bit check: a bit set in the CDB that the usage data does not list is an
// INVALID FIELD IN CDB (SPC-4, Reserved: a recipient may check reserved fields). For commands with service actions,
// the service action byte of the usage data holds the service action (SPC-4 says so) and its other bits are reserved.
import { scsiTaskCdb } from "./tasks";

// SPC-4 and SBC-3 operation codes.
export const OP_TEST_UNIT_READY: u32 = 0x00;
export const OP_REQUEST_SENSE: u32 = 0x03;
export const OP_READ_6: u32 = 0x08;
export const OP_WRITE_6: u32 = 0x0a;
export const OP_INQUIRY: u32 = 0x12;
export const OP_MODE_SELECT_6: u32 = 0x15;
export const OP_RESERVE_6: u32 = 0x16;
export const OP_RELEASE_6: u32 = 0x17;
export const OP_MODE_SENSE_6: u32 = 0x1a;
export const OP_START_STOP_UNIT: u32 = 0x1b;
export const OP_PREVENT_ALLOW_MEDIUM_REMOVAL: u32 = 0x1e;
export const OP_READ_CAPACITY_10: u32 = 0x25;
export const OP_READ_10: u32 = 0x28;
export const OP_WRITE_10: u32 = 0x2a;
export const OP_WRITE_AND_VERIFY_10: u32 = 0x2e;
export const OP_VERIFY_10: u32 = 0x2f;
export const OP_PRE_FETCH_10: u32 = 0x34;
export const OP_SYNCHRONIZE_CACHE_10: u32 = 0x35;
export const OP_READ_DEFECT_DATA_10: u32 = 0x37;
export const OP_WRITE_SAME_10: u32 = 0x41;
export const OP_UNMAP: u32 = 0x42;
export const OP_MODE_SELECT_10: u32 = 0x55;
export const OP_MODE_SENSE_10: u32 = 0x5a;
export const OP_PERSISTENT_RESERVE_IN: u32 = 0x5e;
export const OP_PERSISTENT_RESERVE_OUT: u32 = 0x5f;
export const OP_READ_16: u32 = 0x88;
export const OP_COMPARE_AND_WRITE: u32 = 0x89;
export const OP_WRITE_16: u32 = 0x8a;
export const OP_ORWRITE_16: u32 = 0x8b;
export const OP_WRITE_AND_VERIFY_16: u32 = 0x8e;
export const OP_VERIFY_16: u32 = 0x8f;
export const OP_PRE_FETCH_16: u32 = 0x90;
export const OP_SYNCHRONIZE_CACHE_16: u32 = 0x91;
export const OP_WRITE_SAME_16: u32 = 0x93;
export const OP_WRITE_ATOMIC_16: u32 = 0x9c;
export const OP_SERVICE_ACTION_IN_16: u32 = 0x9e;
export const OP_REPORT_LUNS: u32 = 0xa0;
export const OP_MAINTENANCE_IN: u32 = 0xa3;
export const OP_READ_12: u32 = 0xa8;
export const OP_WRITE_12: u32 = 0xaa;
export const OP_WRITE_AND_VERIFY_12: u32 = 0xae;
export const OP_VERIFY_12: u32 = 0xaf;
export const OP_READ_DEFECT_DATA_12: u32 = 0xb7;

export const SA_READ_CAPACITY_16: u32 = 0x10;
export const SA_GET_LBA_STATUS: u32 = 0x12;
export const SA_REPORT_SUPPORTED_OPERATION_CODES: u32 = 0x0c;
export const SA_REPORT_SUPPORTED_TMFS: u32 = 0x0d;
export const SA_NONE: u32 = 0xff;

// How a command meets reservations (SPC-4, Reservations; SBC-3, Reservations).
export enum Access {
  Always = 0, // never conflicts: INQUIRY, REPORT LUNS, REQUEST SENSE, REPORT SUPPORTED …
  Persistent = 1, // PERSISTENT RESERVE IN/OUT: conflicts with any RESERVE(6) reservation
  Reserve = 2, // RESERVE(6)/RELEASE(6): conflicts with any persistent registration (CRH 0)
  Info = 3, // conflicts with another's RESERVE(6); allowed under persistent reservations
  Read = 4, // conflicts with another's RESERVE(6) and with exclusive-access persistent reservations
  Write = 5, // conflicts with another's RESERVE(6) and with any persistent reservation it does not hold
}

// Command table entry, 20 bytes: |0 opcode|1 service action (SA_NONE)|2 CDB length|3 Access|4-19 CDB usage data|
export const COMMAND_ENTRY_BYTES: u32 = 20;
// Control byte usage: NACA and LINK are not supported (refused), vendor bits unused.
const C: u8 = 0x00;
const COMMANDS: usize = memory.data<u8>([
  0x00, 0xff, 6, 3, 0x00, 0x00, 0x00, 0x00, 0x00, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // TEST UNIT READY
  0x03, 0xff, 6, 0, 0x03, 0x01, 0x00, 0x00, 0xff, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // REQUEST SENSE
  0x08, 0xff, 6, 4, 0x08, 0x1f, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // READ (6)
  0x0a, 0xff, 6, 5, 0x0a, 0x1f, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // WRITE (6)
  0x12, 0xff, 6, 0, 0x12, 0x01, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // INQUIRY
  0x15, 0xff, 6, 5, 0x15, 0x11, 0x00, 0x00, 0xff, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // MODE SELECT (6)
  0x16, 0xff, 6, 2, 0x16, 0x00, 0x00, 0x00, 0x00, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // RESERVE (6)
  0x17, 0xff, 6, 2, 0x17, 0x00, 0x00, 0x00, 0x00, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // RELEASE (6)
  0x1a, 0xff, 6, 4, 0x1a, 0x08, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // MODE SENSE (6)
  0x1b, 0xff, 6, 5, 0x1b, 0x01, 0x00, 0x0f, 0xf7, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // START STOP UNIT
  0x1e, 0xff, 6, 3, 0x1e, 0x00, 0x00, 0x00, 0x03, C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // PREVENT ALLOW MEDIUM REMOVAL
  0x25, 0xff, 10, 3, 0x25, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x01, C, 0, 0, 0, 0, 0, 0, // READ CAPACITY (10)
  0x28, 0xff, 10, 4, 0x28, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // READ (10)
  0x2a, 0xff, 10, 5, 0x2a, 0x18, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // WRITE (10)
  0x2e, 0xff, 10, 5, 0x2e, 0x12, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // WRITE AND VERIFY (10)
  0x2f, 0xff, 10, 4, 0x2f, 0x16, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // VERIFY (10)
  0x34, 0xff, 10, 4, 0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PRE-FETCH (10)
  0x35, 0xff, 10, 5, 0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // SYNCHRONIZE CACHE (10)
  0x37, 0xff, 10, 4, 0x37, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // READ DEFECT DATA (10)
  0x41, 0xff, 10, 5, 0x41, 0x08, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // WRITE SAME (10)
  0x42, 0xff, 10, 5, 0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // UNMAP
  0x55, 0xff, 10, 5, 0x55, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // MODE SELECT (10)
  0x5a, 0xff, 10, 4, 0x5a, 0x18, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // MODE SENSE (10)
  0x5e, 0x00, 10, 1, 0x5e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR IN: READ KEYS
  0x5e, 0x01, 10, 1, 0x5e, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR IN: READ RESERVATION
  0x5e, 0x02, 10, 1, 0x5e, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR IN: REPORT CAPABILITIES
  0x5e, 0x03, 10, 1, 0x5e, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR IN: READ FULL STATUS
  0x5f, 0x00, 10, 1, 0x5f, 0x00, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR OUT: REGISTER
  0x5f, 0x01, 10, 1, 0x5f, 0x01, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR OUT: RESERVE
  0x5f, 0x02, 10, 1, 0x5f, 0x02, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR OUT: RELEASE
  0x5f, 0x03, 10, 1, 0x5f, 0x03, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR OUT: CLEAR
  0x5f, 0x04, 10, 1, 0x5f, 0x04, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR OUT: PREEMPT
  0x5f, 0x05, 10, 1, 0x5f, 0x05, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR OUT: PREEMPT AND ABORT
  0x5f, 0x06, 10, 1, 0x5f, 0x06, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, C, 0, 0, 0, 0, 0, 0, // PR OUT: REGISTER AND IGNORE
  0x88, 0xff, 16, 4, 0x88, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // READ (16)
  0x89, 0xff, 16, 5, 0x89, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0x1f, C, // COMPARE AND WRITE
  0x8a, 0xff, 16, 5, 0x8a, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // WRITE (16)
  0x8b, 0xff, 16, 5, 0x8b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // ORWRITE (16)
  0x8e, 0xff, 16, 5, 0x8e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // WRITE AND VERIFY (16)
  0x8f, 0xff, 16, 4, 0x8f, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // VERIFY (16)
  0x90, 0xff, 16, 4, 0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // PRE-FETCH (16)
  0x91, 0xff, 16, 5, 0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // SYNCHRONIZE CACHE (16)
  0x93, 0xff, 16, 5, 0x93, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // WRITE SAME (16)
  0x9c, 0xff, 16, 5, 0x9c, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, // WRITE ATOMIC (16)
  0x9e, 0x10, 16, 3, 0x9e, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, C, // READ CAPACITY (16)
  0x9e, 0x12, 16, 4, 0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, C, // GET LBA STATUS
  0xa0, 0xff, 12, 0, 0xa0, 0x00, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, C, 0, 0, 0, 0, // REPORT LUNS
  0xa3, 0x0c, 12, 0, 0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, C, 0, 0, 0, 0, // REPORT SUPPORTED OPCODES
  0xa3, 0x0d, 12, 0, 0xa3, 0x0d, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, C, 0, 0, 0, 0, // REPORT SUPPORTED TMFS
  0xa8, 0xff, 12, 4, 0xa8, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, 0, 0, 0, 0, // READ (12)
  0xaa, 0xff, 12, 5, 0xaa, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, 0, 0, 0, 0, // WRITE (12)
  0xae, 0xff, 12, 5, 0xae, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, 0, 0, 0, 0, // WRITE AND VERIFY (12)
  0xaf, 0xff, 12, 4, 0xaf, 0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, C, 0, 0, 0, 0, // VERIFY (12)
  0xb7, 0xff, 12, 4, 0xb7, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, C, 0, 0, 0, 0, // READ DEFECT DATA (12)
]);
export const COMMAND_COUNT: u32 = 54;
export const COMMAND_NONE: u32 = 0xffff_ffff;

/** The address of command table entry `index`. */
export function commandEntry(index: u32): usize {
  assert(index < COMMAND_COUNT, "command index out of range");
  return COMMANDS + <usize>index * COMMAND_ENTRY_BYTES;
}
@inline export function commandOpcode(entry: usize): u32 { return load<u8>(entry, 0); }
@inline export function commandServiceAction(entry: usize): u32 { return load<u8>(entry, 1); }
@inline export function commandCdbLength(entry: usize): u32 { return load<u8>(entry, 2); }
@inline export function commandAccess(entry: usize): Access { return <Access>load<u8>(entry, 3); }
@inline export function commandUsage(entry: usize): usize { return entry + 4; }

/** True when some entry has `opcode` with service actions. */
export function opcodeHasServiceActions(opcode: u32): bool {
  for (let i: u32 = 0; i < COMMAND_COUNT; i++) {
    const entry = commandEntry(i);
    if (commandOpcode(entry) == opcode) return commandServiceAction(entry) != SA_NONE;
  }
  return false;
}

/** True when some entry has `opcode`. */
export function opcodeKnown(opcode: u32): bool {
  for (let i: u32 = 0; i < COMMAND_COUNT; i++) if (commandOpcode(commandEntry(i)) == opcode) return true;
  return false;
}

/** The entry for `opcode` and `serviceAction` (SA_NONE for commands without); COMMAND_NONE if not supported. */
export function commandFind(opcode: u32, serviceAction: u32): u32 {
  for (let i: u32 = 0; i < COMMAND_COUNT; i++) {
    const entry = commandEntry(i);
    if (commandOpcode(entry) == opcode && commandServiceAction(entry) == serviceAction) return i;
  }
  return COMMAND_NONE;
}

export const CDB_OK: u32 = 0xffff_ffff;

/**
 * Checks the task's CDB against entry `index`'s usage data; CDB_OK, or the byte index << 8 | bit of the first bit
 * set that the command does not use (the most significant such bit of that byte).
 */
export function cdbReservedBits(t: u32, index: u32): u32 {
  const entry = commandEntry(index);
  const cdb = scsiTaskCdb(t);
  const length = commandCdbLength(entry);
  const hasSa = commandServiceAction(entry) != SA_NONE;
  for (let i: u32 = 1; i < length; i++) {
    let usage = <u32>load<u8>(commandUsage(entry) + i);
    if (hasSa && i == 1) usage = 0x1f; // the service action bits, matched by commandFind
    const extra = <u32>load<u8>(cdb + i) & ~usage & 0xff;
    if (extra != 0) return (i << 8) | (31 - clz<u32>(extra));
  }
  return CDB_OK;
}

/** SPC-4, Operation code: the group code (top three bits) fixes the CDB length; 0 for groups 3, 6 and 7. */
export function cdbLengthOfOpcode(opcode: u32): u32 {
  switch (opcode >> 5) {
    case 0: return 6;
    case 1: case 2: return 10;
    case 4: return 16;
    case 5: return 12;
    default: return 0;
  }
}

// Big-endian fields of the task's CDB.
@inline export function cdbU8(t: u32, i: u32): u32 { return load<u8>(scsiTaskCdb(t) + i); }
@inline export function cdbBe16(t: u32, i: u32): u32 { return bswap<u16>(load<u16>(scsiTaskCdb(t) + i)); }
export function cdbBe24(t: u32, i: u32): u32 { return (cdbU8(t, i) << 16) | cdbBe16(t, i + 1); }
@inline export function cdbBe32(t: u32, i: u32): u32 { return bswap<u32>(load<u32>(scsiTaskCdb(t) + i)); }
@inline export function cdbBe64(t: u32, i: u32): u64 { return bswap<u64>(load<u64>(scsiTaskCdb(t) + i)); }

// Big-endian stores into parameter data.
@inline export function putBe16(at: usize, value: u32): void { store<u16>(at, bswap<u16>(<u16>value)); }
@inline export function putBe32(at: usize, value: u32): void { store<u32>(at, bswap<u32>(value)); }
@inline export function putBe64(at: usize, value: u64): void { store<u64>(at, bswap<u64>(value)); }
@inline export function getBe16(at: usize): u32 { return bswap<u16>(load<u16>(at)); }
@inline export function getBe32(at: usize): u32 { return bswap<u32>(load<u32>(at)); }
@inline export function getBe64(at: usize): u64 { return bswap<u64>(load<u64>(at)); }
