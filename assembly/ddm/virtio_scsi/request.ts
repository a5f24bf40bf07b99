// One request's memory: the virtio-scsi command header the device reads, the response it writes, and the UNMAP
// parameter list, side by side in a 256-byte area carved per request slot (virtio §5.6.6.1; REFERENCE.md §4.4).
// Area: |0 header (51 B)|64 response (108 B)|176 UNMAP parameter list (24 B)|200-255 unused|
// Header (virtio_scsi_cmd_req, device-readable): |0 lun[8]|8 id le64|16 task_attr|17 prio|18 crn|19 cdb[32]|
// Response (virtio_scsi_cmd_resp, device-writable): |0 sense_len le32|4 residual le32|8 status_qualifier le16|
//   |10 status|11 response|12 sense[96]|
// cdb_size and sense_size are the device's defaults, 32 and 96; bring-up checks them.

export const REQUEST_AREA_BYTES: u32 = 256;
export const HEADER_OFFSET: usize = 0;
export const HEADER_BYTES: u32 = 51;
export const RESPONSE_OFFSET: usize = 64;
export const RESPONSE_BYTES: u32 = 108;
export const PARAMETERS_OFFSET: usize = 176;
export const CDB_BYTES: u32 = 32;
export const SENSE_BYTES: u32 = 96;

const HEADER_LUN: usize = 0;
const HEADER_ID: usize = 8;
const HEADER_TASK_ATTR: usize = 16;
const HEADER_CDB: usize = 19;
const RESPONSE_SENSE_LEN: usize = 0;
const RESPONSE_RESIDUAL: usize = 4;
const RESPONSE_STATUS: usize = 10;
const RESPONSE_RESPONSE: usize = 11;
const RESPONSE_SENSE: usize = 12;

const TASK_ATTR_SIMPLE: u8 = 0;
const LUN_FLAT_ADDRESSING: u32 = 0x40; // SAM-5 flat space addressing, as Linux's virtio_scsi.c encodes every LUN

// virtio-scsi response codes (virtio §5.6.6.1).
export const RESPONSE_OK: u32 = 0;
export const RESPONSE_OVERRUN: u32 = 1;
export const RESPONSE_ABORTED: u32 = 2;
export const RESPONSE_BAD_TARGET: u32 = 3;
export const RESPONSE_RESET: u32 = 4;
export const RESPONSE_BUSY: u32 = 5;
export const RESPONSE_TRANSPORT_FAILURE: u32 = 6;
export const RESPONSE_TARGET_FAILURE: u32 = 7;
export const RESPONSE_NEXUS_FAILURE: u32 = 8;
export const RESPONSE_FAILURE: u32 = 9;
// Not a virtio code: written into the response byte before the request goes out, so a response the device never
// wrote is seen as such.
export const RESPONSE_UNWRITTEN: u32 = 0xff;

@inline export function areaHeader(area: usize): usize { return area + HEADER_OFFSET; }
@inline export function areaResponse(area: usize): usize { return area + RESPONSE_OFFSET; }
@inline export function areaParameters(area: usize): usize { return area + PARAMETERS_OFFSET; }
@inline export function headerCdb(area: usize): usize { return area + HEADER_OFFSET + HEADER_CDB; }

/**
 * Writes the header for `lun` on target 0 with command id `id` and clears the CDB (the caller builds it in place),
 * and clears the response, marking it unwritten.
 */
export function requestPrepare(area: usize, lun: u32, id: u64): void {
  assert(lun < 0x4000, "single-level LUNs are 14 bits");
  const header = areaHeader(area);
  memory.fill(header, 0, HEADER_BYTES);
  store<u8>(header + HEADER_LUN, 1); // virtio §5.6.6.1: byte 0 is 1, byte 1 the target
  store<u8>(header + HEADER_LUN + 1, 0);
  store<u8>(header + HEADER_LUN + 2, <u8>((lun >> 8) | LUN_FLAT_ADDRESSING));
  store<u8>(header + HEADER_LUN + 3, <u8>(lun & 0xff));
  store<u64>(header + HEADER_ID, id);
  store<u8>(header + HEADER_TASK_ATTR, TASK_ATTR_SIMPLE);
  const response = areaResponse(area);
  memory.fill(response, 0, RESPONSE_BYTES);
  store<u8>(response + RESPONSE_RESPONSE, <u8>RESPONSE_UNWRITTEN);
}

@inline export function responseCode(area: usize): u32 { return load<u8>(areaResponse(area) + RESPONSE_RESPONSE); }
@inline export function responseStatus(area: usize): u32 { return load<u8>(areaResponse(area) + RESPONSE_STATUS); }
@inline export function responseResidual(area: usize): u32 { return load<u32>(areaResponse(area) + RESPONSE_RESIDUAL); }
@inline export function responseSenseLength(area: usize): u32 { return load<u32>(areaResponse(area) + RESPONSE_SENSE_LEN); }
@inline export function responseSense(area: usize): usize { return areaResponse(area) + RESPONSE_SENSE; }
