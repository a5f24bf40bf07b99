// TransportIDs a PERSISTENT RESERVE OUT names initiators with (SPC-4, TransportID identifiers; iSCSI's, protocol
// identifier 5h), read and checked here and turned into the name the I_T nexus identities use (identities.ts):
//
//   |0 FORMAT CODE (7-6), reserved (5-4), PROTOCOL IDENTIFIER (3-0)|1 -|2-3 ADDITIONAL LENGTH (n - 3)|4-n text|
//   format 00b (initiator device): text "iSCSI name", null-terminated, padded to a multiple of 4
//   format 01b (initiator port):   text "iSCSI name" ",i,0x" "ISID in hexadecimal", null-terminated, padded
//
// ADDITIONAL LENGTH is a multiple of 4 and at least 20 (a TransportID is at least 24 bytes). The canonical name is
// the device's name, or "name,i,0x" with the ISID as twelve lowercase hexadecimal digits: what the iSCSI transport
// names a nexus at login, so a TransportID finds the same identity as the session. Any other protocol identifier
// or format is invalid: this target speaks only iSCSI.
import { carve } from "../kernel/carve";
import { PORT_NAME_BYTES_MAX } from "./identities";

export const TRANSPORT_ID_PROTOCOL_ISCSI: u32 = 0x5;
export const TRANSPORT_ID_BYTES_MIN: u32 = 24;
const ISCSI_NAME_BYTES_MAX: u32 = 223; // RFC 7143, iSCSI Names
const ISID_DIGITS: u32 = 12;
const FORMAT_DEVICE: u32 = 0;
const FORMAT_PORT: u32 = 1;

let name: usize = 0; // the canonical name of the last TransportID read
let nameBytes: u32 = 0;
let device = false;
let fieldByte: u32 = 0; // where the last invalid TransportID went wrong, from the start of the parameter list

export function transportIdInit(): void { name = carve(PORT_NAME_BYTES_MAX, 16); }

export function transportIdName(): usize { return name; }
export function transportIdNameBytes(): u32 { return nameBytes; }
/** True when the last TransportID named an initiator device (format 00b), not a port. */
export function transportIdDevice(): bool { return device; }
/** The byte of the parameter list an invalid TransportID is refused for (INVALID FIELD IN PARAMETER LIST). */
export function transportIdFieldByte(): u32 { return fieldByte; }

function invalid(byteInList: u32): u32 { fieldByte = byteInList; return 0; }

/**
 * Reads the TransportID at `at`, `availableBytes` of which are in the list, `offset` bytes into the parameter list;
 * answers its length in bytes with the canonical name in transportIdName(), or 0 when it is invalid (bad format,
 * protocol or length; a name missing, too long or not null-terminated; an ISID that is not 1 to 12 hex digits).
 */
export function transportIdRead(at: usize, availableBytes: u32, offset: u32): u32 {
  assert(name != 0, "transportIdRead before transportIdInit");
  if (availableBytes < 4) return invalid(offset);
  const head = <u32>load<u8>(at);
  const format = head >> 6;
  if ((head & 0x0f) != TRANSPORT_ID_PROTOCOL_ISCSI || (head & 0x30) != 0 || format > FORMAT_PORT) return invalid(offset);
  const additionalBytes = (<u32>load<u8>(at, 2) << 8) | <u32>load<u8>(at, 3);
  const idBytes: u32 = 4 + additionalBytes;
  if (additionalBytes < TRANSPORT_ID_BYTES_MIN - 4 || additionalBytes % 4 != 0 || idBytes > availableBytes) return invalid(offset + 2);
  let textBytes: u32 = 0; // up to the null
  while (textBytes < additionalBytes && load<u8>(at + 4 + textBytes) != 0) textBytes += 1;
  if (textBytes == additionalBytes) return invalid(offset + 4); // not null-terminated
  const text = at + 4;
  if (format == FORMAT_DEVICE) {
    if (!nameOk(text, textBytes)) return invalid(offset + 4);
    memory.copy(name, text, textBytes);
    nameBytes = textBytes;
    device = true;
    return idBytes;
  }
  const separator = separatorAt(text, textBytes);
  if (separator == textBytes || !nameOk(text, separator)) return invalid(offset + 4);
  const digits = textBytes - separator - 5;
  if (digits == 0 || digits > ISID_DIGITS) return invalid(offset + 4 + separator + 5);
  let isid: u64 = 0;
  for (let i: u32 = 0; i < digits; i++) {
    const nibble = hexValue(load<u8>(text + separator + 5 + i));
    if (nibble > 0xf) return invalid(offset + 4 + separator + 5 + i);
    isid = (isid << 4) | <u64>nibble;
  }
  memory.copy(name, text, separator);
  writeSeparator(name + separator);
  for (let i: u32 = 0; i < ISID_DIGITS; i++) {
    const nibble = <u32>(isid >> (<u64>(ISID_DIGITS - 1 - i) * 4)) & 0xf;
    store<u8>(name + separator + 5 + i, <u8>(nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10));
  }
  nameBytes = separator + 5 + ISID_DIGITS;
  device = false;
  return idBytes;
}

// An iSCSI name as far as this target cares: 1 to 223 printable bytes without a comma (RFC 7143, iSCSI Names).
function nameOk(text: usize, bytes: u32): bool {
  if (bytes == 0 || bytes > ISCSI_NAME_BYTES_MAX) return false;
  for (let i: u32 = 0; i < bytes; i++) {
    const c = <u32>load<u8>(text + i);
    if (c <= 0x20 || c >= 0x7f || c == 0x2c) return false;
  }
  return true;
}

// The index of ",i,0x" in the text ("i" and "x" in either case), or `bytes` when it is not there.
function separatorAt(text: usize, bytes: u32): u32 {
  for (let i: u32 = 0; i + 5 <= bytes; i++) {
    if (load<u8>(text + i) != 0x2c || load<u8>(text + i + 2) != 0x2c || load<u8>(text + i + 3) != 0x30) continue;
    if ((load<u8>(text + i + 1) | 0x20) == 0x69 && (load<u8>(text + i + 4) | 0x20) == 0x78) return i;
  }
  return bytes;
}

function writeSeparator(at: usize): void {
  store<u8>(at, 0x2c); store<u8>(at, 0x69, 1); store<u8>(at, 0x2c, 2); store<u8>(at, 0x30, 3); store<u8>(at, 0x78, 4);
}

// A hexadecimal digit's value, or 0xff.
function hexValue(c: u8): u32 {
  const v = <u32>c;
  if (v >= 0x30 && v <= 0x39) return v - 0x30;
  const lower = v | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return 0xff;
}
