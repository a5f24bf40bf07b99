// Sense data and status codes for the emulated SCSI logical units. Builds fixed-format sense data only: the
// logical units report D_SENSE=0 in the Control mode page, and initiators that ask for descriptor format are refused.

// SAM-5, Status codes.
export const SAM_STATUS_GOOD = 0x00;
export const SAM_STATUS_CHECK_CONDITION = 0x02;
export const SAM_STATUS_BUSY = 0x08;
export const SAM_STATUS_RESERVATION_CONFLICT = 0x18;
export const SAM_STATUS_TASK_SET_FULL = 0x28;

// SPC-4, Sense key and sense code definitions: the sense keys.
export const SENSE_KEY_NO_SENSE = 0x0;
export const SENSE_KEY_RECOVERED_ERROR = 0x1;
export const SENSE_KEY_NOT_READY = 0x2;
export const SENSE_KEY_MEDIUM_ERROR = 0x3;
export const SENSE_KEY_HARDWARE_ERROR = 0x4;
export const SENSE_KEY_ILLEGAL_REQUEST = 0x5;
export const SENSE_KEY_UNIT_ATTENTION = 0x6;
export const SENSE_KEY_DATA_PROTECT = 0x7;
export const SENSE_KEY_ABORTED_COMMAND = 0xb;
export const SENSE_KEY_MISCOMPARE = 0xe;

/** An additional sense code and its qualifier (SPC-4, ASC and ASCQ assignments). */
export interface AdditionalSense {
  readonly asc: number;
  readonly ascq: number;
}

export const ASC_NO_ADDITIONAL_SENSE: AdditionalSense = { asc: 0x00, ascq: 0x00 };
export const ASC_WRITE_ERROR: AdditionalSense = { asc: 0x0c, ascq: 0x00 };
export const ASC_UNRECOVERED_READ_ERROR: AdditionalSense = { asc: 0x11, ascq: 0x00 };
export const ASC_PARAMETER_LIST_LENGTH_ERROR: AdditionalSense = { asc: 0x1a, ascq: 0x00 };
export const ASC_INVALID_COMMAND_OPERATION_CODE: AdditionalSense = { asc: 0x20, ascq: 0x00 };
export const ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE: AdditionalSense = { asc: 0x21, ascq: 0x00 };
export const ASC_INVALID_FIELD_IN_CDB: AdditionalSense = { asc: 0x24, ascq: 0x00 };
export const ASC_LOGICAL_UNIT_NOT_SUPPORTED: AdditionalSense = { asc: 0x25, ascq: 0x00 };
export const ASC_INVALID_FIELD_IN_PARAMETER_LIST: AdditionalSense = { asc: 0x26, ascq: 0x00 };
export const ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED: AdditionalSense = { asc: 0x29, ascq: 0x00 };
export const ASC_MODE_PARAMETERS_CHANGED: AdditionalSense = { asc: 0x2a, ascq: 0x01 };
export const ASC_CAPACITY_DATA_HAS_CHANGED: AdditionalSense = { asc: 0x2a, ascq: 0x09 };
export const ASC_SAVING_PARAMETERS_NOT_SUPPORTED: AdditionalSense = { asc: 0x39, ascq: 0x00 };
export const ASC_REPORTED_LUNS_DATA_HAS_CHANGED: AdditionalSense = { asc: 0x3f, ascq: 0x0e };
export const ASC_INTERNAL_TARGET_FAILURE: AdditionalSense = { asc: 0x44, ascq: 0x00 };

/**
 * Where in the CDB or parameter list the bad field is (SPC-4, Field pointer sense key specific data): the byte,
 * and the most significant bit of the field when the whole byte is not meant.
 */
export interface FieldPointer {
  readonly inCdb: boolean; // C/D: true for the CDB, false for the parameter list (the Data-Out Buffer)
  readonly byteIndex: number;
  readonly bitIndex?: number;
}

export interface SenseOptions {
  /** The INFORMATION field (e.g. the failing LBA); VALID is set only when it is given. */
  readonly information?: number;
  readonly fieldPointer?: FieldPointer;
}

// SPC-4, Fixed format sense data: |0 VALID,RESPONSE CODE|2 SENSE KEY|3-6 INFORMATION|7 ADDITIONAL SENSE LENGTH|
// 8-11 COMMAND-SPECIFIC INFORMATION|12 ASC|13 ASCQ|14 FRU CODE|15 SKSV,sense key specific|16-17 sense key specific|
export const FIXED_SENSE_LENGTH_BYTES = 18;
export const SENSE_RESPONSE_CODE_CURRENT_FIXED = 0x70;
const SENSE_VALID = 0x80;
const SENSE_SKSV = 0x80;
const SENSE_FIELD_POINTER_IN_CDB = 0x40;
const SENSE_BIT_POINTER_VALID = 0x08;
const INFORMATION_MAX = 0xffff_ffff;

/** Fixed-format sense data for a current error, 18 bytes. */
export function fixedSense(senseKey: number, additional: AdditionalSense, options: SenseOptions = {}): Uint8Array {
  if (!Number.isInteger(senseKey) || senseKey < 0 || senseKey > 0xf) throw new RangeError(`sense key ${senseKey} is not 0..15`);
  const sense = new Uint8Array(FIXED_SENSE_LENGTH_BYTES);
  sense[0] = SENSE_RESPONSE_CODE_CURRENT_FIXED;
  sense[2] = senseKey;
  sense[7] = FIXED_SENSE_LENGTH_BYTES - 8; // ADDITIONAL SENSE LENGTH counts the bytes after byte 7
  sense[12] = additional.asc;
  sense[13] = additional.ascq;
  if (options.information !== undefined) writeInformation(sense, options.information);
  if (options.fieldPointer !== undefined) writeFieldPointer(sense, options.fieldPointer);
  return sense;
}

function writeInformation(sense: Uint8Array, information: number): void {
  // A value that does not fit the 4-byte field is not reported at all, rather than reported wrong.
  if (!Number.isInteger(information) || information < 0 || information > INFORMATION_MAX) return;
  sense[0] = (sense[0] as number) | SENSE_VALID;
  new DataView(sense.buffer, sense.byteOffset).setUint32(3, information);
}

function writeFieldPointer(sense: Uint8Array, pointer: FieldPointer): void {
  if (!Number.isInteger(pointer.byteIndex) || pointer.byteIndex < 0 || pointer.byteIndex > 0xffff) {
    throw new RangeError(`field pointer byte ${pointer.byteIndex} is not 0..65535`);
  }
  let flags = SENSE_SKSV | (pointer.inCdb ? SENSE_FIELD_POINTER_IN_CDB : 0);
  if (pointer.bitIndex !== undefined) {
    if (!Number.isInteger(pointer.bitIndex) || pointer.bitIndex < 0 || pointer.bitIndex > 7) throw new RangeError(`bit ${pointer.bitIndex} is not 0..7`);
    flags |= SENSE_BIT_POINTER_VALID | pointer.bitIndex;
  }
  sense[15] = flags;
  sense[16] = pointer.byteIndex >> 8;
  sense[17] = pointer.byteIndex & 0xff;
}
