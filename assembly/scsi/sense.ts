// Sense data: fixed format only (SPC-4, Fixed format sense data). The Control mode page says D_SENSE 0, and REQUEST
// SENSE with DESC 1 is refused, so an initiator never needs descriptor format.
// |0 VALID,RESPONSE CODE|1 obsolete|2 SENSE KEY|3-6 INFORMATION|7 ADDITIONAL SENSE LENGTH|8-11 COMMAND-SPECIFIC|
// |12 ASC|13 ASCQ|14 FRU CODE|15 SKSV,C/D,BPV,BIT POINTER|16-17 FIELD POINTER|

export const SENSE_FIXED_BYTES: u32 = 18;
const RESPONSE_CODE_CURRENT_FIXED: u8 = 0x70;
const SENSE_VALID: u8 = 0x80;

// SPC-4, ASC and ASCQ assignments, as asc << 8 | ascq.
export const ASC_NO_ADDITIONAL_SENSE: u32 = 0x0000;
export const ASC_OPERATION_IN_PROGRESS: u32 = 0x0016;
export const ASC_LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS: u32 = 0x041b;
export const ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_TARGET_PORT_UNAVAILABLE: u32 = 0x040c; // ALUA: unavailable for these LBAs
export const ASC_LOGICAL_UNIT_COMMUNICATION_FAILURE: u32 = 0x0800;
export const ASC_COPY_TARGET_DEVICE_NOT_REACHABLE: u32 = 0x0d02;
export const ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE: u32 = 0x0d03;
export const ASC_WRITE_ERROR: u32 = 0x0c00;
export const ASC_INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT: u32 = 0x0e03;
export const ASC_UNRECOVERED_READ_ERROR: u32 = 0x1100;
export const ASC_PARAMETER_LIST_LENGTH_ERROR: u32 = 0x1a00;
export const ASC_MISCOMPARE_DURING_VERIFY: u32 = 0x1d00;
export const ASC_INVALID_COMMAND_OPERATION_CODE: u32 = 0x2000;
export const ASC_LBA_OUT_OF_RANGE: u32 = 0x2100;
export const ASC_INVALID_TOKEN_OPERATION_CAUSE_NOT_REPORTABLE: u32 = 0x2300;
export const ASC_TOKEN_UNSUPPORTED_TYPE: u32 = 0x2301; // INVALID TOKEN OPERATION, UNSUPPORTED TOKEN TYPE
export const ASC_TOKEN_UNKNOWN: u32 = 0x2304; // INVALID TOKEN OPERATION, TOKEN UNKNOWN
export const ASC_TOKEN_CORRUPT: u32 = 0x2305; // INVALID TOKEN OPERATION, TOKEN CORRUPT
export const ASC_TOKEN_EXPIRED: u32 = 0x2307; // INVALID TOKEN OPERATION, TOKEN EXPIRED
export const ASC_TOKEN_DELETED: u32 = 0x2309; // INVALID TOKEN OPERATION, TOKEN DELETED
export const ASC_TOKEN_INVALID_LENGTH: u32 = 0x230a; // INVALID TOKEN OPERATION, INVALID TOKEN LENGTH
export const ASC_INVALID_FIELD_IN_CDB: u32 = 0x2400;
export const ASC_LOGICAL_UNIT_NOT_SUPPORTED: u32 = 0x2500;
export const ASC_INVALID_FIELD_IN_PARAMETER_LIST: u32 = 0x2600;
export const ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION: u32 = 0x2604;
export const ASC_TOO_MANY_TARGET_DESCRIPTORS: u32 = 0x2606;
export const ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE: u32 = 0x2607;
export const ASC_TOO_MANY_SEGMENT_DESCRIPTORS: u32 = 0x2608;
export const ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE: u32 = 0x2609;
export const ASC_UNEXPECTED_INEXACT_SEGMENT: u32 = 0x260a;
export const ASC_INLINE_DATA_LENGTH_EXCEEDED: u32 = 0x260b;
export const ASC_WRITE_PROTECTED: u32 = 0x2700;
export const ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT: u32 = 0x2707; // a thin volume's pool is full
export const ASC_THIN_PROVISIONING_SOFT_THRESHOLD_REACHED: u32 = 0x3807;
export const ASC_POWER_ON_RESET: u32 = 0x2900;
export const ASC_I_T_NEXUS_LOSS_OCCURRED: u32 = 0x2907;
export const ASC_MODE_PARAMETERS_CHANGED: u32 = 0x2a01;
export const ASC_RESERVATIONS_PREEMPTED: u32 = 0x2a03;
export const ASC_RESERVATIONS_RELEASED: u32 = 0x2a04;
export const ASC_REGISTRATIONS_PREEMPTED: u32 = 0x2a05;
export const ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: u32 = 0x2f00;
export const ASC_SANITIZE_COMMAND_FAILED: u32 = 0x3103;
export const ASC_SAVING_PARAMETERS_NOT_SUPPORTED: u32 = 0x3900;
export const ASC_REPORTED_LUNS_DATA_HAS_CHANGED: u32 = 0x3f0e;
export const ASC_INTERNAL_TARGET_FAILURE: u32 = 0x4400;
export const ASC_INSUFFICIENT_RESOURCES: u32 = 0x5503;
export const ASC_INSUFFICIENT_REGISTRATION_RESOURCES: u32 = 0x5504;
export const ASC_INSUFFICIENT_RESOURCES_TO_CREATE_ROD_TOKEN: u32 = 0x550d;

// A field pointer (SPC-4, Field pointer sense key specific data): where the bad field is, packed in a u32.
// |31 valid|30 C/D (1: CDB, 0: parameter list)|29 BPV|18-16 bit|15-0 byte|
export const FIELD_NONE: u32 = 0;
const FIELD_VALID: u32 = 1 << 31;
const FIELD_IN_CDB: u32 = 1 << 30;
const FIELD_BIT_VALID: u32 = 1 << 29;
export const BIT_NONE: u32 = 0xff;

/** The field at CDB byte `byteIndex` (and bit `bitIndex`, its most significant bit, unless BIT_NONE). */
export function fieldInCdb(byteIndex: u32, bitIndex: u32 = BIT_NONE): u32 {
  return FIELD_VALID | FIELD_IN_CDB | fieldBits(byteIndex, bitIndex);
}

/** The field at byte `byteIndex` of the parameter list (the Data-Out). */
export function fieldInParameters(byteIndex: u32, bitIndex: u32 = BIT_NONE): u32 {
  return FIELD_VALID | fieldBits(byteIndex, bitIndex);
}

/**
 * A progress indication (SPC-4, Progress indication sense key specific data: |15 SKSV|16-17 PROGRESS INDICATION|),
 * `progress` of 65536, packed like a field pointer for senseFixed: SKSV set, the value in bytes 16-17.
 */
export function senseProgress(progress: u32): u32 {
  assert(progress <= 0xffff, "progress is a numerator of 65536");
  return FIELD_VALID | progress;
}

function fieldBits(byteIndex: u32, bitIndex: u32): u32 {
  assert(byteIndex <= 0xffff);
  return bitIndex == BIT_NONE ? byteIndex : FIELD_BIT_VALID | ((bitIndex & 7) << 16) | byteIndex;
}

export const INFORMATION_NONE: u64 = 0xffff_ffff_ffff_ffff;

/**
 * Writes 18 bytes of current-error fixed-format sense at `at`; answers the length. `information` sets the
 * INFORMATION field and VALID (it must fit 32 bits); `field` the sense-key specific field pointer (SKSV).
 */
export function senseFixed(at: usize, senseKey: u32, ascAscq: u32, field: u32 = FIELD_NONE,
  information: u64 = INFORMATION_NONE): u32 {
  assert(senseKey <= 0xf, "sense key is 4 bits");
  memory.fill(at, 0, SENSE_FIXED_BYTES);
  store<u8>(at, RESPONSE_CODE_CURRENT_FIXED, 0);
  store<u8>(at, <u8>senseKey, 2);
  if (information != INFORMATION_NONE) {
    assert(information <= 0xffff_ffff, "fixed sense carries 32 bits of information");
    store<u8>(at, RESPONSE_CODE_CURRENT_FIXED | SENSE_VALID, 0);
    store<u32>(at, bswap<u32>(<u32>information), 3);
  }
  store<u8>(at, <u8>(SENSE_FIXED_BYTES - 8), 7); // ADDITIONAL SENSE LENGTH: the bytes after byte 7
  store<u8>(at, <u8>(ascAscq >> 8), 12);
  store<u8>(at, <u8>ascAscq, 13);
  if (field != FIELD_NONE) {
    let b15: u32 = 0x80; // SKSV
    if ((field & FIELD_IN_CDB) != 0) b15 |= 0x40;
    if ((field & FIELD_BIT_VALID) != 0) b15 |= 0x08 | ((field >> 16) & 7);
    store<u8>(at, <u8>b15, 15);
    store<u16>(at, bswap<u16>(<u16>field), 16);
  }
  return SENSE_FIXED_BYTES;
}

/** Sets the COMMAND-SPECIFIC INFORMATION field (bytes 8-11) of fixed-format sense at `at` (EXTENDED COPY: the segment). */
export function senseCommandSpecific(at: usize, value: u32): void { store<u32>(at, bswap<u32>(value), 8); }
