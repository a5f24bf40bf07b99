// iSCSI PDUs (RFC 7143, "iSCSI PDU Formats"): the 48-byte Basic Header Segment of every PDU type, its fields as named
// accessors, the builders of the target's PDUs, and the check of every PDU an initiator sends.
// Everything is big-endian on the wire: load/store at the named offsets, through bswap.
//
// Common BHS (every PDU):
//   |0 .|I|opcode(6)|1 F|opcode-specific(7)|2-3 opcode-specific|4 TotalAHSLength|5-7 DataSegmentLength(24)|
//   |8-15 LUN or opcode-specific|16-19 Initiator Task Tag|20-47 opcode-specific|
// RFC 7143, "Data Segment": a data segment is padded to a multiple of 4 bytes; DataSegmentLength does not count the
// padding. TotalAHSLength counts 4-byte words of Additional Header Segments, which follow the BHS.

export const BHS_BYTES: u32 = 48;
export const DATA_SEGMENT_BYTES_MAX: u32 = 0xff_ffff; // 24 bits
export const TAG_RESERVED: u32 = 0xffff_ffff; // an ITT or TTT that names no task
export const ISCSI_VERSION: u32 = 0x00; // RFC 7143, Version-max: the only version there is

// Opcodes (byte 0, low six bits). Initiator opcodes are 0x00-0x1f, target opcodes 0x20-0x3f.
export const OP_NOP_OUT: u32 = 0x00;
export const OP_SCSI_COMMAND: u32 = 0x01;
export const OP_TMF_REQUEST: u32 = 0x02;
export const OP_LOGIN_REQUEST: u32 = 0x03;
export const OP_TEXT_REQUEST: u32 = 0x04;
export const OP_DATA_OUT: u32 = 0x05;
export const OP_LOGOUT_REQUEST: u32 = 0x06;
export const OP_SNACK_REQUEST: u32 = 0x10;
export const OP_NOP_IN: u32 = 0x20;
export const OP_SCSI_RESPONSE: u32 = 0x21;
export const OP_TMF_RESPONSE: u32 = 0x22;
export const OP_LOGIN_RESPONSE: u32 = 0x23;
export const OP_TEXT_RESPONSE: u32 = 0x24;
export const OP_DATA_IN: u32 = 0x25;
export const OP_LOGOUT_RESPONSE: u32 = 0x26;
export const OP_R2T: u32 = 0x31;
export const OP_ASYNC_MESSAGE: u32 = 0x32;
export const OP_REJECT: u32 = 0x3f;

const OPCODE_MASK: u8 = 0x3f;
const IMMEDIATE_BIT: u8 = 0x40;
const FINAL_BIT: u8 = 0x80; // F (final), T (transit, login), and the always-1 bit of TMF, Logout, SNACK, and target PDUs
const CONTINUE_BIT: u8 = 0x40; // C (continue): Login and Text

// Byte offsets, one per field as RFC 7143 ("iSCSI PDU Formats") names it. Fields of different opcodes share an
// offset (bytes 20-47 are opcode-specific); each still has its own name, so every access says which field it means.
const AT_OPCODE: usize = 0; // the I bit and the opcode
const AT_FLAGS: usize = 1; // F and the opcode-specific flags
const AT_RESPONSE: usize = 2; // SCSI Response, TMF Response, Logout Response
const AT_REASON: usize = 2; // Reject
const AT_VERSION_MAX: usize = 2; // Login Request and Response
const AT_STATUS: usize = 3; // SCSI Response, Data-In
const AT_VERSION_MIN: usize = 3; // Login Request
const AT_VERSION_ACTIVE: usize = 3; // Login Response
const AT_TOTAL_AHS_LENGTH: usize = 4;
const AT_DATA_SEGMENT_LENGTH: usize = 4; // the word whose low 24 bits (big-endian) are DataSegmentLength
const AT_LUN: usize = 8;
const AT_ISID: usize = 8; // Login: 6 bytes
const AT_ISID_LOW: usize = 10; // Login: the ISID's low 4 bytes (B and C, Qualifier)
const AT_TSIH: usize = 14; // Login
const AT_ITT: usize = 16; // Initiator Task Tag
const AT_TARGET_TRANSFER_TAG: usize = 20; // Data-Out, Data-In, R2T, NOP, Text, SNACK
const AT_EXPECTED_DATA_TRANSFER_LENGTH: usize = 20; // SCSI Command
const AT_REFERENCED_TASK_TAG: usize = 20; // TMF Request
const AT_SNACK_TAG: usize = 20; // SCSI Response, SNACK Request
const AT_CID: usize = 20; // Login Request, Logout Request: 2 bytes
const AT_CMD_SN: usize = 24; // initiator PDUs
const AT_STAT_SN: usize = 24; // target PDUs
const AT_EXP_STAT_SN: usize = 28; // initiator PDUs
const AT_EXP_CMD_SN: usize = 28; // target PDUs
const AT_MAX_CMD_SN: usize = 32; // target PDUs
const AT_REF_CMD_SN: usize = 32; // TMF Request
const AT_CDB: usize = 32; // SCSI Command: 16 bytes
const AT_DATA_SN: usize = 36; // Data-Out, Data-In
const AT_R2T_SN: usize = 36; // R2T
const AT_EXP_DATA_SN: usize = 36; // SCSI Response, TMF Request
const AT_STATUS_CLASS: usize = 36; // Login Response
const AT_STATUS_DETAIL: usize = 37; // Login Response
const AT_ASYNC_EVENT: usize = 36; // Asynchronous Message
const AT_ASYNC_VCODE: usize = 37; // Asynchronous Message
const AT_PARAMETER1: usize = 38; // Asynchronous Message: 2 bytes
const AT_PARAMETER2: usize = 40; // Asynchronous Message: 2 bytes
const AT_PARAMETER3: usize = 42; // Asynchronous Message: 2 bytes
const AT_BUFFER_OFFSET: usize = 40; // Data-Out, Data-In, R2T
const AT_BIDI_READ_RESIDUAL_COUNT: usize = 40; // SCSI Response
const AT_BEG_RUN: usize = 40; // SNACK Request
const AT_TIME2WAIT: usize = 40; // Logout Response: 2 bytes
const AT_TIME2RETAIN: usize = 42; // Logout Response: 2 bytes
const AT_RESIDUAL_COUNT: usize = 44; // SCSI Response, Data-In
const AT_DESIRED_DATA_TRANSFER_LENGTH: usize = 44; // R2T
const AT_RUN_LENGTH: usize = 44; // SNACK Request

// ---- Common fields ----

@inline export function bhsOpcode(bhs: usize): u32 { return <u32>(load<u8>(bhs, AT_OPCODE) & OPCODE_MASK); }
@inline export function bhsImmediate(bhs: usize): bool { return (load<u8>(bhs, AT_OPCODE) & IMMEDIATE_BIT) != 0; }
@inline export function bhsFlags(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_FLAGS); }
/** F (final) on most PDUs; T (transit) on Login; the always-1 bit of TMF, Logout and SNACK requests. */
@inline export function bhsFinal(bhs: usize): bool { return (load<u8>(bhs, AT_FLAGS) & FINAL_BIT) != 0; }
/** C (continue) on Login and Text PDUs. */
@inline export function bhsContinue(bhs: usize): bool { return (load<u8>(bhs, AT_FLAGS) & CONTINUE_BIT) != 0; }
/** TotalAHSLength in 4-byte words. */
@inline export function bhsTotalAhsWords(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_TOTAL_AHS_LENGTH); }
@inline export function bhsDataSegmentLength(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_DATA_SEGMENT_LENGTH)) & DATA_SEGMENT_BYTES_MAX; }
/** The 8-byte LUN field as one big-endian number (SAM LUN structure; see lunEncode). */
@inline export function bhsLun(bhs: usize): u64 { return bswap<u64>(load<u64>(bhs, AT_LUN)); }
@inline export function bhsInitiatorTaskTag(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_ITT)); }

@inline function setOpcode(bhs: usize, opcode: u32, immediate: bool): void {
  store<u8>(bhs, <u8>opcode | (immediate ? IMMEDIATE_BIT : 0), AT_OPCODE);
}
@inline export function bhsSetFlags(bhs: usize, flags: u32): void { store<u8>(bhs, <u8>flags, AT_FLAGS); }
@inline export function bhsSetTotalAhsWords(bhs: usize, words: u32): void { store<u8>(bhs, <u8>words, AT_TOTAL_AHS_LENGTH); }
/** Writes DataSegmentLength, keeping TotalAHSLength. */
@inline export function bhsSetDataSegmentLength(bhs: usize, lengthBytes: u32): void {
  assert(lengthBytes <= DATA_SEGMENT_BYTES_MAX, "data segment length is 24 bits");
  store<u32>(bhs, bswap<u32>((<u32>load<u8>(bhs, AT_TOTAL_AHS_LENGTH) << 24) | lengthBytes), AT_DATA_SEGMENT_LENGTH);
}
@inline export function bhsSetLun(bhs: usize, lun: u64): void { store<u64>(bhs, bswap<u64>(lun), AT_LUN); }
@inline export function bhsSetInitiatorTaskTag(bhs: usize, itt: u32): void { store<u32>(bhs, bswap<u32>(itt), AT_ITT); }

// ---- Fields at shared offsets, named as the spec names them in each PDU ----

/** Target Transfer Tag: NOP-Out/In, Data-Out/In, R2T, Text, SNACK (20-23). */
@inline export function bhsTargetTransferTag(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_TARGET_TRANSFER_TAG)); }
@inline export function bhsSetTargetTransferTag(bhs: usize, ttt: u32): void { store<u32>(bhs, bswap<u32>(ttt), AT_TARGET_TRANSFER_TAG); }
/** CmdSN: every initiator PDU but Data-Out and SNACK (24-27). */
@inline export function bhsCmdSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_CMD_SN)); }
@inline export function bhsSetCmdSn(bhs: usize, cmdSn: u32): void { store<u32>(bhs, bswap<u32>(cmdSn), AT_CMD_SN); }
/** ExpStatSN: initiator PDUs (28-31). */
@inline export function bhsExpStatSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_EXP_STAT_SN)); }
@inline export function bhsSetExpStatSn(bhs: usize, expStatSn: u32): void { store<u32>(bhs, bswap<u32>(expStatSn), AT_EXP_STAT_SN); }
/** StatSN: target PDUs (24-27). */
@inline export function bhsStatSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_STAT_SN)); }
@inline export function bhsSetStatSn(bhs: usize, statSn: u32): void { store<u32>(bhs, bswap<u32>(statSn), AT_STAT_SN); }
/** ExpCmdSN: target PDUs (28-31). */
@inline export function bhsExpCmdSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_EXP_CMD_SN)); }
@inline export function bhsSetExpCmdSn(bhs: usize, expCmdSn: u32): void { store<u32>(bhs, bswap<u32>(expCmdSn), AT_EXP_CMD_SN); }
/** MaxCmdSN: target PDUs (32-35). */
@inline export function bhsMaxCmdSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_MAX_CMD_SN)); }
@inline export function bhsSetMaxCmdSn(bhs: usize, maxCmdSn: u32): void { store<u32>(bhs, bswap<u32>(maxCmdSn), AT_MAX_CMD_SN); }
/** DataSN (Data-Out, Data-In), R2TSN (R2T), ExpDataSN (SCSI Response, TMF Request), DataSN/R2TSN (Reject): 36-39. */
@inline export function bhsDataSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_DATA_SN)); }
@inline export function bhsSetDataSn(bhs: usize, dataSn: u32): void { store<u32>(bhs, bswap<u32>(dataSn), AT_DATA_SN); }
@inline export function bhsR2tSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_R2T_SN)); }
@inline export function bhsSetR2tSn(bhs: usize, r2tSn: u32): void { store<u32>(bhs, bswap<u32>(r2tSn), AT_R2T_SN); }
@inline export function bhsExpDataSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_EXP_DATA_SN)); }
/** Buffer Offset: Data-Out, Data-In, R2T (40-43). */
@inline export function bhsBufferOffset(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_BUFFER_OFFSET)); }
@inline export function bhsSetBufferOffset(bhs: usize, offsetBytes: u32): void { store<u32>(bhs, bswap<u32>(offsetBytes), AT_BUFFER_OFFSET); }
/** Residual Count: SCSI Response, Data-In (44-47). */
@inline export function bhsResidualCount(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_RESIDUAL_COUNT)); }
@inline export function bhsSetResidualCount(bhs: usize, countBytes: u32): void { store<u32>(bhs, bswap<u32>(countBytes), AT_RESIDUAL_COUNT); }

// ---- SCSI Command (0x01) ----
//   |0 .|I|0x01|1 F|R|W|.|.|ATTR(3)|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|
//   |20 Expected Data Transfer Length|24 CmdSN|28 ExpStatSN|32-47 CDB (16 bytes)|
export const SCSI_CMD_READ: u32 = 0x40;
export const SCSI_CMD_WRITE: u32 = 0x20;
export const SCSI_CMD_ATTR_MASK: u32 = 0x07; // 0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA
export const SCSI_CDB_BYTES: u32 = 16;
@inline export function scsiCmdRead(bhs: usize): bool { return (bhsFlags(bhs) & SCSI_CMD_READ) != 0; }
@inline export function scsiCmdWrite(bhs: usize): bool { return (bhsFlags(bhs) & SCSI_CMD_WRITE) != 0; }
@inline export function scsiCmdAttr(bhs: usize): u32 { return bhsFlags(bhs) & SCSI_CMD_ATTR_MASK; }
@inline export function scsiCmdExpectedDataTransferLength(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_EXPECTED_DATA_TRANSFER_LENGTH)); }
/** The address of the 16-byte CDB inside the BHS. */
@inline export function scsiCmdCdb(bhs: usize): usize { return bhs + AT_CDB; }

// ---- SCSI Response (0x21) ----
//   |0 0x21|1 1|.|.|o|u|O|U|.|2 Response|3 Status|4 TotalAHSLength|5-7 DataSegmentLength|8-15 -|16 ITT|
//   |20 SNACK Tag|24 StatSN|28 ExpCmdSN|32 MaxCmdSN|36 ExpDataSN|40 Bidirectional Read Residual Count|44 Residual Count|
// Data segment: |0-1 SenseLength|2 sense data|… and any response data (scsiSenseSegmentWrite).
export const RESIDUAL_BIDI_OVERFLOW: u32 = 0x10; // o
export const RESIDUAL_BIDI_UNDERFLOW: u32 = 0x08; // u
export const RESIDUAL_OVERFLOW: u32 = 0x04; // O
export const RESIDUAL_UNDERFLOW: u32 = 0x02; // U
export const SCSI_RESPONSE_COMPLETED: u32 = 0x00; // Command Completed at Target
export const SCSI_RESPONSE_TARGET_FAILURE: u32 = 0x01;
@inline export function scsiRspResponse(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_RESPONSE); }
@inline export function scsiRspStatus(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_STATUS); }
@inline export function scsiRspSnackTag(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_SNACK_TAG)); }
@inline export function scsiRspBidiReadResidualCount(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_BIDI_READ_RESIDUAL_COUNT)); }
/** The residual flags (RESIDUAL_*) of a SCSI Response or Data-In. */
@inline export function bhsResidualFlags(bhs: usize): u32 { return bhsFlags(bhs) & 0x1e; }

// ---- Task Management Function Request (0x02) and Response (0x22) ----
//   Request:  |0 .|I|0x02|1 1|Function(7)|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|
//             |20 Referenced Task Tag|24 CmdSN|28 ExpStatSN|32 RefCmdSN|36 ExpDataSN|40-47 -|
//   Response: |0 0x22|1 1|2 Response|3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 -|16 ITT|20 -|24 StatSN|
//             |28 ExpCmdSN|32 MaxCmdSN|36-47 -|
@inline export function tmfFunction(bhs: usize): u32 { return bhsFlags(bhs) & 0x7f; }
@inline export function tmfReferencedTaskTag(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_REFERENCED_TASK_TAG)); }
@inline export function tmfRefCmdSn(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_REF_CMD_SN)); }
@inline export function tmfResponse(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_RESPONSE); }

// ---- SCSI Data-Out (0x05) and Data-In (0x25) ----
//   Data-Out: |0 0x05|1 F|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|20 TTT|24 -|28 ExpStatSN|
//             |32 -|36 DataSN|40 Buffer Offset|44 -|
//   Data-In:  |0 0x25|1 F|A|.|.|.|O|U|S|2 -|3 Status|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|20 TTT|
//             |24 StatSN|28 ExpCmdSN|32 MaxCmdSN|36 DataSN|40 Buffer Offset|44 Residual Count|
export const DATA_IN_ACKNOWLEDGE: u32 = 0x40; // A
export const DATA_IN_STATUS: u32 = 0x01; // S: phase-collapsed status follows in this PDU
@inline export function dataInStatus(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_STATUS); }
@inline export function dataInAcknowledge(bhs: usize): bool { return (bhsFlags(bhs) & DATA_IN_ACKNOWLEDGE) != 0; }
@inline export function dataInStatusPresent(bhs: usize): bool { return (bhsFlags(bhs) & DATA_IN_STATUS) != 0; }

// ---- Ready To Transfer (0x31) ----
//   |0 0x31|1 1|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|20 TTT|24 StatSN|28 ExpCmdSN|
//   |32 MaxCmdSN|36 R2TSN|40 Buffer Offset|44 Desired Data Transfer Length|
@inline export function r2tDesiredDataTransferLength(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_DESIRED_DATA_TRANSFER_LENGTH)); }

// ---- Asynchronous Message (0x32) ----
//   |0 0x32|1 1|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 0xffffffff|20 -|24 StatSN|28 ExpCmdSN|
//   |32 MaxCmdSN|36 AsyncEvent|37 AsyncVCode|38-39 Parameter1|40-41 Parameter2|42-43 Parameter3|44 -|
export const ASYNC_EVENT_SCSI: u32 = 0; // sense data in the data segment
export const ASYNC_EVENT_LOGOUT_REQUEST: u32 = 1;
export const ASYNC_EVENT_DROP_CONNECTION: u32 = 2;
export const ASYNC_EVENT_DROP_ALL_CONNECTIONS: u32 = 3;
export const ASYNC_EVENT_RENEGOTIATE: u32 = 4;
export const ASYNC_EVENT_VENDOR: u32 = 255;
@inline export function asyncEvent(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_ASYNC_EVENT); }
@inline export function asyncVCode(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_ASYNC_VCODE); }
@inline export function asyncParameter1(bhs: usize): u32 { return <u32>bswap<u16>(load<u16>(bhs, AT_PARAMETER1)); }
@inline export function asyncParameter2(bhs: usize): u32 { return <u32>bswap<u16>(load<u16>(bhs, AT_PARAMETER2)); }
@inline export function asyncParameter3(bhs: usize): u32 { return <u32>bswap<u16>(load<u16>(bhs, AT_PARAMETER3)); }

// ---- Text Request (0x04) and Response (0x24) ----
//   Request:  |0 .|I|0x04|1 F|C|.|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|20 TTT|24 CmdSN|
//             |28 ExpStatSN|32-47 -|
//   Response: |0 0x24|1 F|C|.|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|20 TTT|24 StatSN|
//             |28 ExpCmdSN|32 MaxCmdSN|36-47 -|

// ---- Login Request (0x03) and Response (0x23) ----
//   Request:  |0 .|1|0x03|1 T|C|.|.|CSG(2)|NSG(2)|2 Version-max|3 Version-min|4 TotalAHSLength|
//             |5-7 DataSegmentLength|8-13 ISID|14-15 TSIH|16 ITT|20-21 CID|22-23 -|24 CmdSN|28 ExpStatSN|32-47 -|
//   Response: |0 0x23|1 T|C|.|.|CSG|NSG|2 Version-max|3 Version-active|4 TotalAHSLength|5-7 DataSegmentLength|
//             |8-13 ISID|14-15 TSIH|16 ITT|20 -|24 StatSN|28 ExpCmdSN|32 MaxCmdSN|36 Status-Class|37 Status-Detail|
//             |38-47 -|
export const STAGE_SECURITY: u32 = 0; // SecurityNegotiation
export const STAGE_OPERATIONAL: u32 = 1; // LoginOperationalNegotiation
export const STAGE_FULL_FEATURE: u32 = 3; // FullFeaturePhase
@inline export function loginTransit(bhs: usize): bool { return bhsFinal(bhs); }
@inline export function loginContinue(bhs: usize): bool { return bhsContinue(bhs); }
@inline export function loginCsg(bhs: usize): u32 { return (bhsFlags(bhs) >> 2) & 3; }
@inline export function loginNsg(bhs: usize): u32 { return bhsFlags(bhs) & 3; }
@inline export function loginVersionMax(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_VERSION_MAX); }
@inline export function loginVersionMin(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_VERSION_MIN); }
@inline export function loginVersionActive(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_VERSION_ACTIVE); }
/** The 6-byte ISID as a 48-bit number (T and A in the top bits). */
@inline export function loginIsid(bhs: usize): u64 { return bswap<u64>(load<u64>(bhs, AT_ISID)) >> 16; }
@inline export function loginTsih(bhs: usize): u32 { return <u32>bswap<u16>(load<u16>(bhs, AT_TSIH)); }
/** Writes the TSIH of a Login Response: the engine's, into a final response of a new session. */
@inline export function loginSetTsih(bhs: usize, tsih: u32): void { store<u16>(bhs, bswap<u16>(<u16>tsih), AT_TSIH); }
@inline export function loginCid(bhs: usize): u32 { return <u32>bswap<u16>(load<u16>(bhs, AT_CID)); }
@inline export function loginStatusClass(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_STATUS_CLASS); }
@inline export function loginStatusDetail(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_STATUS_DETAIL); }

// Login status (RFC 7143, "Status-Class and Status-Detail"): class << 8 | detail.
export const LOGIN_SUCCESS: u32 = 0x0000;
export const LOGIN_TARGET_MOVED_TEMPORARILY: u32 = 0x0101;
export const LOGIN_TARGET_MOVED_PERMANENTLY: u32 = 0x0102;
export const LOGIN_INITIATOR_ERROR: u32 = 0x0200; // miscellaneous, and every protocol error during login
export const LOGIN_AUTHENTICATION_FAILURE: u32 = 0x0201;
export const LOGIN_AUTHORIZATION_FAILURE: u32 = 0x0202;
export const LOGIN_NOT_FOUND: u32 = 0x0203;
export const LOGIN_TARGET_REMOVED: u32 = 0x0204;
export const LOGIN_UNSUPPORTED_VERSION: u32 = 0x0205;
export const LOGIN_TOO_MANY_CONNECTIONS: u32 = 0x0206;
export const LOGIN_MISSING_PARAMETER: u32 = 0x0207;
export const LOGIN_CANT_INCLUDE_IN_SESSION: u32 = 0x0208;
export const LOGIN_SESSION_TYPE_NOT_SUPPORTED: u32 = 0x0209;
export const LOGIN_SESSION_DOES_NOT_EXIST: u32 = 0x020a;
export const LOGIN_INVALID_DURING_LOGIN: u32 = 0x020b;
export const LOGIN_TARGET_ERROR: u32 = 0x0300;
export const LOGIN_SERVICE_UNAVAILABLE: u32 = 0x0301;
export const LOGIN_OUT_OF_RESOURCES: u32 = 0x0302;

// ---- Logout Request (0x06) and Response (0x26) ----
//   Request:  |0 .|I|0x06|1 1|Reason Code(7)|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 -|16 ITT|
//             |20-21 CID|22-23 -|24 CmdSN|28 ExpStatSN|32-47 -|
//   Response: |0 0x26|1 1|2 Response|3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 -|16 ITT|20 -|24 StatSN|
//             |28 ExpCmdSN|32 MaxCmdSN|36 -|40-41 Time2Wait|42-43 Time2Retain|44 -|
export const LOGOUT_CLOSE_SESSION: u32 = 0;
export const LOGOUT_CLOSE_CONNECTION: u32 = 1;
export const LOGOUT_REMOVE_CONNECTION_FOR_RECOVERY: u32 = 2;
export const LOGOUT_RESPONSE_CLOSED: u32 = 0; // connection or session closed successfully
export const LOGOUT_RESPONSE_CID_NOT_FOUND: u32 = 1;
export const LOGOUT_RESPONSE_RECOVERY_NOT_SUPPORTED: u32 = 2;
export const LOGOUT_RESPONSE_CLEANUP_FAILED: u32 = 3;
@inline export function logoutReasonCode(bhs: usize): u32 { return bhsFlags(bhs) & 0x7f; }
@inline export function logoutCid(bhs: usize): u32 { return <u32>bswap<u16>(load<u16>(bhs, AT_CID)); }
@inline export function logoutResponse(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_RESPONSE); }
@inline export function logoutTime2Wait(bhs: usize): u32 { return <u32>bswap<u16>(load<u16>(bhs, AT_TIME2WAIT)); }
@inline export function logoutTime2Retain(bhs: usize): u32 { return <u32>bswap<u16>(load<u16>(bhs, AT_TIME2RETAIN)); }

// ---- SNACK Request (0x10) ----
//   |0 0x10|1 1|.|.|.|Type(4)|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|20 TTT or SNACK Tag|
//   |24 -|28 ExpStatSN|32-39 -|40 BegRun|44 RunLength|
export const SNACK_DATA_R2T: u32 = 0;
export const SNACK_STATUS: u32 = 1;
export const SNACK_DATA_ACK: u32 = 2;
export const SNACK_RDATA: u32 = 3;
@inline export function snackType(bhs: usize): u32 { return bhsFlags(bhs) & 0x0f; }
@inline export function snackBegRun(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_BEG_RUN)); }
@inline export function snackRunLength(bhs: usize): u32 { return bswap<u32>(load<u32>(bhs, AT_RUN_LENGTH)); }

// ---- NOP-Out (0x00) and NOP-In (0x20) ----
//   NOP-Out: |0 .|I|0x00|1 1|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|20 TTT|24 CmdSN|
//            |28 ExpStatSN|32-47 -|   (data: ping data)
//   NOP-In:  |0 0x20|1 1|2-3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 LUN|16 ITT|20 TTT|24 StatSN|
//            |28 ExpCmdSN|32 MaxCmdSN|36-47 -|

// ---- Reject (0x3f) ----
//   |0 0x3f|1 1|2 Reason|3 -|4 TotalAHSLength|5-7 DataSegmentLength|8-15 -|16 0xffffffff|20 -|24 StatSN|
//   |28 ExpCmdSN|32 MaxCmdSN|36 DataSN/R2TSN|40-47 -|   (data: the complete header of the rejected PDU)
// Reasons (RFC 7143, "Reason"):
export const REJECT_DATA_DIGEST_ERROR: u32 = 0x02;
export const REJECT_SNACK_REJECT: u32 = 0x03;
export const REJECT_PROTOCOL_ERROR: u32 = 0x04;
export const REJECT_COMMAND_NOT_SUPPORTED: u32 = 0x05;
export const REJECT_IMMEDIATE_COMMAND_REJECT: u32 = 0x06; // too many immediate commands
export const REJECT_TASK_IN_PROGRESS: u32 = 0x07;
export const REJECT_INVALID_DATA_ACK: u32 = 0x08;
export const REJECT_INVALID_PDU_FIELD: u32 = 0x09;
export const REJECT_LONG_OP_REJECT: u32 = 0x0a; // out of resources to serve the request
export const REJECT_WAITING_FOR_LOGOUT: u32 = 0x0c;
@inline export function rejectReason(bhs: usize): u32 { return <u32>load<u8>(bhs, AT_REASON); }

// ---- Sizes, padding, LUNs ----

/** Bytes a data segment takes on the wire: padded to a multiple of 4 (RFC 7143, "Data Segment"). */
@inline export function pduPaddedBytes(lengthBytes: u32): u32 { return (lengthBytes + 3) & ~(<u32>3); }

/** Zeroes the pad bytes after a `lengthBytes` data segment at `data`: padding never carries old data. */
export function pduZeroPadding(data: usize, lengthBytes: u32): void {
  memory.fill(data + lengthBytes, 0, pduPaddedBytes(lengthBytes) - lengthBytes);
}

/** Bytes of BHS, AHS and data (digests not included) of the PDU whose BHS is at `bhs`. */
export function pduTotalBytes(bhs: usize): u32 {
  return BHS_BYTES + bhsTotalAhsWords(bhs) * 4 + pduPaddedBytes(bhsDataSegmentLength(bhs));
}

/** SAM LUN structure of a LUN number: peripheral device addressing below 256, flat space addressing up to 16383. */
export function lunEncode(lun: u32): u64 {
  assert(lun < 16384, "LUN beyond flat space addressing");
  if (lun < 256) return <u64>lun << 48;
  return (<u64>(0x4000 | lun)) << 48;
}

/** The LUN number of a SAM LUN structure, or LUN_INVALID for a method or level this target does not give out. */
export const LUN_INVALID: u32 = 0xffff_ffff;
export function lunDecode(field: u64): u32 {
  if ((field & 0x0000_ffff_ffff_ffff) != 0) return LUN_INVALID; // second to fourth levels are not used
  const first = <u32>(field >> 48);
  const method = first >> 14;
  if (method == 0) return (first >> 8) == 0 ? first & 0xff : LUN_INVALID; // peripheral: bus 0 only
  if (method == 1) return first & 0x3fff; // flat space
  return LUN_INVALID;
}

// ---- Builders of the target's PDUs ----
// Each writes a whole 48-byte BHS at `bhs` from explicit arguments (unused fields zero, no AHS) and asserts what it
// wrote. Sequence numbers are the caller's: a builder never advances one.

function begin(bhs: usize, opcode: u32, flags: u32, dataBytes: u32): void {
  memory.fill(bhs, 0, BHS_BYTES);
  setOpcode(bhs, opcode, false);
  bhsSetFlags(bhs, flags);
  bhsSetDataSegmentLength(bhs, dataBytes);
}

function numbers(bhs: usize, statSn: u32, expCmdSn: u32, maxCmdSn: u32): void {
  bhsSetStatSn(bhs, statSn);
  bhsSetExpCmdSn(bhs, expCmdSn);
  bhsSetMaxCmdSn(bhs, maxCmdSn);
}

/**
 * SCSI Response. `residualFlags` is 0 or a mix of RESIDUAL_* (O and U exclusive, o and u exclusive); `dataBytes`
 * counts the sense segment (scsiSenseSegmentWrite) and any response data.
 */
export function buildScsiResponse(
  bhs: usize, itt: u32, response: u32, status: u32, residualFlags: u32, residualCount: u32, bidiResidualCount: u32,
  statSn: u32, expCmdSn: u32, maxCmdSn: u32, expDataSn: u32, dataBytes: u32,
): void {
  assert(response <= 0xff && status <= 0xff, "scsi response: byte fields");
  assert((residualFlags & ~(<u32>0x1e)) == 0, "scsi response: only o u O U");
  assert((residualFlags & 0x06) != 0x06 && (residualFlags & 0x18) != 0x18, "scsi response: overflow and underflow");
  begin(bhs, OP_SCSI_RESPONSE, 0x80 | residualFlags, dataBytes);
  store<u8>(bhs, <u8>response, AT_RESPONSE);
  store<u8>(bhs, <u8>status, AT_STATUS);
  bhsSetInitiatorTaskTag(bhs, itt);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
  bhsSetDataSn(bhs, expDataSn);
  store<u32>(bhs, bswap<u32>(bidiResidualCount), AT_BIDI_READ_RESIDUAL_COUNT);
  bhsSetResidualCount(bhs, residualCount);
}

const SENSE_AT_LENGTH: usize = 0; // SenseLength, 2 bytes
const SENSE_AT_DATA: usize = 2; // the sense data
/** Writes the SCSI Response data segment for `senseBytes` of sense data: |0-1 SenseLength|2 sense|. Returns its length. */
export function scsiSenseSegmentWrite(data: usize, sense: usize, senseBytes: u32): u32 {
  assert(senseBytes <= 0xffff, "sense length is 16 bits");
  store<u16>(data, bswap<u16>(<u16>senseBytes), SENSE_AT_LENGTH);
  memory.copy(data + SENSE_AT_DATA, sense, senseBytes);
  return senseBytes + <u32>SENSE_AT_DATA;
}

/**
 * SCSI Data-In. With `statusPresent` (S) the PDU also carries the command's status (phase-collapse, RFC 7143,
 * "Status"): then it must be the final one, and `residualFlags` (RESIDUAL_OVERFLOW or RESIDUAL_UNDERFLOW) and
 * `residualCount` apply; `statSn` is valid only then (0 otherwise). `acknowledge` (A) asks for a DataACK SNACK
 * (ErrorRecoveryLevel > 0 only); its `lun` and `ttt` are then valid, else pass 0 and TAG_RESERVED.
 */
export function buildDataIn(
  bhs: usize, lun: u64, itt: u32, ttt: u32, dataSn: u32, bufferOffset: u32, dataBytes: u32, final: bool,
  acknowledge: bool, statusPresent: bool, status: u32, residualFlags: u32, residualCount: u32,
  statSn: u32, expCmdSn: u32, maxCmdSn: u32,
): void {
  assert(!statusPresent || final, "data-in: status only in the final PDU");
  assert(statusPresent || (residualFlags == 0 && status == 0), "data-in: status fields need S");
  assert(residualFlags == 0 || residualFlags == RESIDUAL_OVERFLOW || residualFlags == RESIDUAL_UNDERFLOW, "data-in: O or U");
  assert(status <= 0xff, "data-in: status is a byte");
  const flags = (final ? 0x80 : 0) | (acknowledge ? DATA_IN_ACKNOWLEDGE : 0) | residualFlags | (statusPresent ? DATA_IN_STATUS : 0);
  begin(bhs, OP_DATA_IN, flags, dataBytes);
  store<u8>(bhs, <u8>status, AT_STATUS);
  bhsSetLun(bhs, lun);
  bhsSetInitiatorTaskTag(bhs, itt);
  bhsSetTargetTransferTag(bhs, ttt);
  numbers(bhs, statusPresent ? statSn : 0, expCmdSn, maxCmdSn);
  bhsSetDataSn(bhs, dataSn);
  bhsSetBufferOffset(bhs, bufferOffset);
  bhsSetResidualCount(bhs, statusPresent ? residualCount : 0);
}

/** Ready To Transfer: asks for `desiredBytes` of the command's Data-Out at `bufferOffset`. StatSN is not advanced. */
export function buildR2t(
  bhs: usize, lun: u64, itt: u32, ttt: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32, r2tSn: u32,
  bufferOffset: u32, desiredBytes: u32,
): void {
  assert(desiredBytes > 0, "r2t: asks for something");
  assert(ttt != TAG_RESERVED, "r2t: a real transfer tag");
  begin(bhs, OP_R2T, 0x80, 0);
  bhsSetLun(bhs, lun);
  bhsSetInitiatorTaskTag(bhs, itt);
  bhsSetTargetTransferTag(bhs, ttt);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
  bhsSetR2tSn(bhs, r2tSn);
  bhsSetBufferOffset(bhs, bufferOffset);
  store<u32>(bhs, bswap<u32>(desiredBytes), AT_DESIRED_DATA_TRANSFER_LENGTH);
}

/**
 * NOP-In: an answer to a NOP-Out ping (its `itt`, TTT reserved, the ping data echoed) or the target's own ping
 * (ITT reserved, a `ttt` the initiator echoes, LUN as the initiator should echo it).
 */
export function buildNopIn(
  bhs: usize, lun: u64, itt: u32, ttt: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32, dataBytes: u32,
): void {
  assert(itt == TAG_RESERVED || ttt == TAG_RESERVED, "nop-in: an answer or a ping, not both");
  begin(bhs, OP_NOP_IN, 0x80, dataBytes);
  bhsSetLun(bhs, lun);
  bhsSetInitiatorTaskTag(bhs, itt);
  bhsSetTargetTransferTag(bhs, ttt);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
}

/** Task Management Function Response; `response` is a TmfResponse (assembly/scsi/interface.ts). */
export function buildTmfResponse(bhs: usize, itt: u32, response: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32): void {
  assert(response <= 0xff, "tmf response: a byte");
  begin(bhs, OP_TMF_RESPONSE, 0x80, 0);
  store<u8>(bhs, <u8>response, AT_RESPONSE);
  bhsSetInitiatorTaskTag(bhs, itt);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
}

/** Logout Response; `time2Wait`/`time2Retain` in seconds (0 when response is not 0 or recovery does not apply). */
export function buildLogoutResponse(
  bhs: usize, itt: u32, response: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32, time2Wait: u32, time2Retain: u32,
): void {
  assert(response <= LOGOUT_RESPONSE_CLEANUP_FAILED, "logout response: 0..3");
  assert(time2Wait <= 0xffff && time2Retain <= 0xffff, "logout response: 16-bit times");
  begin(bhs, OP_LOGOUT_RESPONSE, 0x80, 0);
  store<u8>(bhs, <u8>response, AT_RESPONSE);
  bhsSetInitiatorTaskTag(bhs, itt);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
  store<u16>(bhs, bswap<u16>(<u16>time2Wait), AT_TIME2WAIT);
  store<u16>(bhs, bswap<u16>(<u16>time2Retain), AT_TIME2RETAIN);
}

/**
 * Reject: the BHS at `bhs` and, at `data`, a copy of the `rejectedHeaderBytes` (the BHS and any AHS) at `rejected`.
 * `dataSn` is the DataSN/R2TSN to resend for a data SNACK reject, else 0.
 */
export function buildReject(
  bhs: usize, data: usize, rejected: usize, rejectedHeaderBytes: u32, reason: u32,
  statSn: u32, expCmdSn: u32, maxCmdSn: u32, dataSn: u32,
): void {
  assert(reason >= REJECT_DATA_DIGEST_ERROR && reason <= REJECT_WAITING_FOR_LOGOUT && reason != 0x0b, "reject: a reason RFC 7143 names");
  assert(rejectedHeaderBytes >= BHS_BYTES && rejectedHeaderBytes % 4 == 0, "reject: a whole header");
  memory.copy(data, rejected, rejectedHeaderBytes); // first: `data` may overlap `rejected`, never `bhs`
  begin(bhs, OP_REJECT, 0x80, rejectedHeaderBytes);
  store<u8>(bhs, <u8>reason, AT_REASON);
  bhsSetInitiatorTaskTag(bhs, TAG_RESERVED);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
  bhsSetDataSn(bhs, dataSn);
}

/**
 * Login Response. `status` is LOGIN_* (class << 8 | detail); CSG/NSG are STAGE_*; NSG is written only with `transit`
 * (it is reserved otherwise). `isid` is the 48-bit ISID the request carried.
 */
export function buildLoginResponse(
  bhs: usize, transit: bool, cont: bool, csg: u32, nsg: u32, isid: u64, tsih: u32, itt: u32,
  statSn: u32, expCmdSn: u32, maxCmdSn: u32, status: u32, dataBytes: u32,
): void {
  assert(!(transit && cont), "login response: T and C exclusive");
  assert(csg <= STAGE_OPERATIONAL && nsg <= STAGE_FULL_FEATURE && nsg != 2, "login response: stages");
  assert(!transit || nsg > csg, "login response: transit goes forward");
  assert(isid <= 0xffff_ffff_ffff && tsih <= 0xffff && status <= 0xffff, "login response: field widths");
  begin(bhs, OP_LOGIN_RESPONSE, (transit ? 0x80 : 0) | (cont ? 0x40 : 0) | (csg << 2) | (transit ? nsg : 0), dataBytes);
  store<u8>(bhs, <u8>ISCSI_VERSION, AT_VERSION_MAX);
  store<u8>(bhs, <u8>ISCSI_VERSION, AT_VERSION_ACTIVE);
  store<u16>(bhs, bswap<u16>(<u16>(isid >> 32)), AT_ISID);
  store<u32>(bhs, bswap<u32>(<u32>isid), AT_ISID_LOW);
  loginSetTsih(bhs, tsih);
  bhsSetInitiatorTaskTag(bhs, itt);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
  store<u8>(bhs, <u8>(status >> 8), AT_STATUS_CLASS);
  store<u8>(bhs, <u8>status, AT_STATUS_DETAIL);
}

/** Text Response: `final` (F) ends the exchange; `cont` (C) says more text follows (then `ttt` names the exchange). */
export function buildTextResponse(
  bhs: usize, final: bool, cont: bool, lun: u64, itt: u32, ttt: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32,
  dataBytes: u32,
): void {
  assert(!(final && cont), "text response: F and C exclusive");
  assert(!final || ttt == TAG_RESERVED, "text response: a final response ends the exchange");
  begin(bhs, OP_TEXT_RESPONSE, (final ? 0x80 : 0) | (cont ? 0x40 : 0), dataBytes);
  bhsSetLun(bhs, lun);
  bhsSetInitiatorTaskTag(bhs, itt);
  bhsSetTargetTransferTag(bhs, ttt);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
}

/** Asynchronous Message: `event` is ASYNC_EVENT_*; the data segment (sense data for SCSI events) is the caller's. */
export function buildAsyncMessage(
  bhs: usize, lun: u64, statSn: u32, expCmdSn: u32, maxCmdSn: u32, event: u32, vendorCode: u32,
  parameter1: u32, parameter2: u32, parameter3: u32, dataBytes: u32,
): void {
  assert(event <= ASYNC_EVENT_RENEGOTIATE || event == ASYNC_EVENT_VENDOR, "async: an event RFC 7143 names");
  assert(vendorCode <= 0xff && parameter1 <= 0xffff && parameter2 <= 0xffff && parameter3 <= 0xffff, "async: widths");
  begin(bhs, OP_ASYNC_MESSAGE, 0x80, dataBytes);
  bhsSetLun(bhs, lun);
  bhsSetInitiatorTaskTag(bhs, TAG_RESERVED);
  numbers(bhs, statSn, expCmdSn, maxCmdSn);
  store<u8>(bhs, <u8>event, AT_ASYNC_EVENT);
  store<u8>(bhs, <u8>vendorCode, AT_ASYNC_VCODE);
  store<u16>(bhs, bswap<u16>(<u16>parameter1), AT_PARAMETER1);
  store<u16>(bhs, bswap<u16>(<u16>parameter2), AT_PARAMETER2);
  store<u16>(bhs, bswap<u16>(<u16>parameter3), AT_PARAMETER3);
}

// ---- Checking what the initiator sends ----

/** What is wrong with an initiator's BHS, if anything. pduCheckRejectReason gives the answer RFC 7143 prescribes. */
export enum PduCheck {
  Ok = 0,
  OpcodeUnknown = 1, // no initiator opcode RFC 7143 defines (vendor-specific ones included): Reject, command not supported
  OpcodeFromTarget = 2, // a target opcode: Reject, protocol error
  AhsNotAllowed = 3, // TotalAHSLength on a PDU other than SCSI Command: Reject, protocol error
  DataSegmentTooLong = 4, // DataSegmentLength beyond our MaxRecvDataSegmentLength: Reject, protocol error
  DataSegmentNotAllowed = 5, // TMF, Logout and SNACK carry no data: Reject, protocol error
  ImmediateNotAllowed = 6, // the I bit on Data-Out or SNACK: Reject, invalid PDU field
  FinalBitClear = 7, // the bit that must be 1 on NOP-Out, TMF, Logout and SNACK is 0: Reject, invalid PDU field
  TextContinueAndFinal = 8, // Text Request with C and F both set: Reject, protocol error
  LoginInFullFeature = 9, // a Login Request after login: Reject, protocol error
  NotLoginDuringLogin = 10, // anything but a Login Request during login: Login Response 0x020b, then close
  NotInDiscovery = 11, // SCSI Command, TMF, Data-Out or SNACK in a discovery session: Reject, protocol error
  LogoutReasonInvalid = 12, // a Logout reason code other than 0, 1, 2: Reject, invalid PDU field
  SnackTypeInvalid = 13, // a SNACK type other than 0..3: Reject, invalid PDU field
  NopOutUnanswerable = 14, // NOP-Out with ITT 0xffffffff (no answer wanted) but I clear: Reject, invalid PDU field
  ScsiCommandFlagsInvalid = 15, // a task attribute beyond ACA (4): Reject, invalid PDU field
  AhsMalformed = 16, // AHS entries that overrun TotalAHSLength or have an unknown type (validateAhs)
}

/** Where a connection is: login checks differ from full feature phase checks. */
export enum PduPhase {
  Login = 0, // before the final Login Response: only Login Requests
  FullFeature = 1, // a normal session
  FullFeatureDiscovery = 2, // a discovery session: no SCSI, TMF, Data-Out or SNACK
}

/**
 * Checks an initiator's BHS before anything acts on it: opcode, the fields RFC 7143 fixes, and DataSegmentLength
 * against `maxRecvDataSegmentBytes` (the MaxRecvDataSegmentLength this target declared; 8192 during login).
 * Digests and sequence numbers are the engine's to check.
 */
export function validateInitiatorPdu(bhs: usize, maxRecvDataSegmentBytes: u32, phase: PduPhase): PduCheck {
  const opcode = bhsOpcode(bhs);
  if (phase == PduPhase.Login) return opcode == OP_LOGIN_REQUEST ? checkLengths(bhs, opcode, maxRecvDataSegmentBytes) : PduCheck.NotLoginDuringLogin;
  if (opcode >= 0x20) return PduCheck.OpcodeFromTarget;
  if (!isInitiatorOpcode(opcode)) return PduCheck.OpcodeUnknown;
  if (opcode == OP_LOGIN_REQUEST) return PduCheck.LoginInFullFeature;
  if (phase == PduPhase.FullFeatureDiscovery && (opcode == OP_SCSI_COMMAND || opcode == OP_TMF_REQUEST ||
    opcode == OP_DATA_OUT || opcode == OP_SNACK_REQUEST)) return PduCheck.NotInDiscovery;
  const lengths = checkLengths(bhs, opcode, maxRecvDataSegmentBytes);
  if (lengths != PduCheck.Ok) return lengths;
  return checkFields(bhs, opcode);
}

function isInitiatorOpcode(opcode: u32): bool {
  return opcode <= OP_LOGOUT_REQUEST || opcode == OP_SNACK_REQUEST;
}

function checkLengths(bhs: usize, opcode: u32, maxRecvDataSegmentBytes: u32): PduCheck {
  if (bhsTotalAhsWords(bhs) != 0 && opcode != OP_SCSI_COMMAND) return PduCheck.AhsNotAllowed;
  const dataBytes = bhsDataSegmentLength(bhs);
  if (dataBytes > 0 && (opcode == OP_TMF_REQUEST || opcode == OP_LOGOUT_REQUEST || opcode == OP_SNACK_REQUEST)) {
    return PduCheck.DataSegmentNotAllowed;
  }
  if (dataBytes > maxRecvDataSegmentBytes) return PduCheck.DataSegmentTooLong;
  return PduCheck.Ok;
}

function checkFields(bhs: usize, opcode: u32): PduCheck {
  const immediate = bhsImmediate(bhs);
  const final = bhsFinal(bhs);
  switch (opcode) {
    case OP_NOP_OUT:
      if (!final) return PduCheck.FinalBitClear;
      if (bhsInitiatorTaskTag(bhs) == TAG_RESERVED && !immediate) return PduCheck.NopOutUnanswerable;
      return PduCheck.Ok;
    case OP_SCSI_COMMAND: return scsiCmdAttr(bhs) > 4 ? PduCheck.ScsiCommandFlagsInvalid : PduCheck.Ok;
    case OP_TMF_REQUEST: return final ? PduCheck.Ok : PduCheck.FinalBitClear;
    case OP_TEXT_REQUEST: return final && bhsContinue(bhs) ? PduCheck.TextContinueAndFinal : PduCheck.Ok;
    case OP_DATA_OUT: return immediate ? PduCheck.ImmediateNotAllowed : PduCheck.Ok;
    case OP_LOGOUT_REQUEST:
      if (!final) return PduCheck.FinalBitClear;
      return logoutReasonCode(bhs) > LOGOUT_REMOVE_CONNECTION_FOR_RECOVERY ? PduCheck.LogoutReasonInvalid : PduCheck.Ok;
    case OP_SNACK_REQUEST:
      if (immediate) return PduCheck.ImmediateNotAllowed;
      if (!final) return PduCheck.FinalBitClear;
      return snackType(bhs) > SNACK_RDATA ? PduCheck.SnackTypeInvalid : PduCheck.Ok;
    default: assert(false, "checkFields: not an initiator opcode");
  }
  return PduCheck.Ok;
}

const AHS_AT_LENGTH: usize = 0; // AHSLength, 2 bytes
const AHS_AT_TYPE: usize = 2; // AHSType
export const AHS_EXTENDED_CDB: u32 = 1;
export const AHS_BIDI_READ_LENGTH: u32 = 2;

/**
 * Checks the `totalBytes` of AHS at `ahs` of a SCSI Command: each entry |0-1 AHSLength|2 AHSType|3 specific|…|
 * takes 3 + AHSLength bytes padded to 4, and only types 1 (Extended CDB) and 2 (Expected Bidirectional Read-Data
 * Length, AHSLength 5) exist. Every entry takes at least 4 bytes: the loop ends.
 */
export function validateAhs(ahs: usize, totalBytes: u32): PduCheck {
  let offset: u32 = 0;
  while (offset < totalBytes) {
    if (totalBytes - offset < 4) return PduCheck.AhsMalformed;
    const length = <u32>bswap<u16>(load<u16>(ahs + offset, AHS_AT_LENGTH));
    const type = <u32>load<u8>(ahs + offset, AHS_AT_TYPE);
    const entryBytes = pduPaddedBytes(3 + length);
    if (entryBytes > totalBytes - offset) return PduCheck.AhsMalformed;
    if (type == AHS_BIDI_READ_LENGTH && length != 5) return PduCheck.AhsMalformed;
    if (type == AHS_EXTENDED_CDB && length < 2) return PduCheck.AhsMalformed;
    if (type != AHS_EXTENDED_CDB && type != AHS_BIDI_READ_LENGTH) return PduCheck.AhsMalformed;
    offset += entryBytes;
  }
  return PduCheck.Ok;
}

/**
 * The Reject reason for a failed check in full feature phase; 0 for Ok. During login nothing is answered with Reject:
 * see pduCheckLoginStatus.
 */
export function pduCheckRejectReason(check: PduCheck): u32 {
  switch (check) {
    case PduCheck.Ok: return 0;
    case PduCheck.NotLoginDuringLogin: return 0;
    case PduCheck.OpcodeUnknown: return REJECT_COMMAND_NOT_SUPPORTED;
    case PduCheck.OpcodeFromTarget:
    case PduCheck.AhsNotAllowed:
    case PduCheck.AhsMalformed:
    case PduCheck.DataSegmentTooLong:
    case PduCheck.DataSegmentNotAllowed:
    case PduCheck.TextContinueAndFinal:
    case PduCheck.LoginInFullFeature:
    case PduCheck.NotInDiscovery: return REJECT_PROTOCOL_ERROR;
    case PduCheck.ImmediateNotAllowed:
    case PduCheck.FinalBitClear:
    case PduCheck.LogoutReasonInvalid:
    case PduCheck.SnackTypeInvalid:
    case PduCheck.NopOutUnanswerable:
    case PduCheck.ScsiCommandFlagsInvalid: return REJECT_INVALID_PDU_FIELD;
    default: assert(false, "pduCheckRejectReason: unknown check");
  }
  return 0;
}

/**
 * During login a failed check ends the login: the Login Response status for it (RFC 7143, Status-Class and
 * Status-Detail: a PDU other than a Login Request is "invalid during login", anything else an initiator error);
 * LOGIN_SUCCESS for Ok. The engine sends the response and closes the connection.
 */
export function pduCheckLoginStatus(check: PduCheck): u32 {
  if (check == PduCheck.Ok) return LOGIN_SUCCESS;
  return check == PduCheck.NotLoginDuringLogin ? LOGIN_INVALID_DURING_LOGIN : LOGIN_INITIATOR_ERROR;
}
