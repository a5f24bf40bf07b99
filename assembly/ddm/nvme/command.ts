// Submission and completion queue entries as the driver builds and reads them (NVMe 1.4 §4.2, §4.6), little-endian.
// SQE, 64 B: |0 CDW0: 7:0 opcode, 15:14 PSDT, 31:16 CID|4 NSID|8-15 -|16 MPTR|24 PRP1 / SGL1 (16 B)|32 PRP2|
//            |40 CDW10|44 CDW11|48 CDW12|52 CDW13|56 CDW14|60 CDW15|
// CQE, 16 B: |0 DW0 command specific|4 -|8 SQHD 15:0, SQID 31:16|12 CID 15:0, P 16, Status Field 31:17|
import { SQ_ENTRY_BYTES } from "./registers";

// Admin opcodes (NVMe 1.4 §5) and NVM command set opcodes (§6).
export const ADMIN_DELETE_SQ: u32 = 0x00;
export const ADMIN_CREATE_SQ: u32 = 0x01;
export const ADMIN_GET_LOG_PAGE: u32 = 0x02;
export const ADMIN_DELETE_CQ: u32 = 0x04;
export const ADMIN_CREATE_CQ: u32 = 0x05;
export const ADMIN_IDENTIFY: u32 = 0x06;
export const ADMIN_ABORT: u32 = 0x08;
export const ADMIN_SET_FEATURES: u32 = 0x09;
export const ADMIN_ASYNC_EVENT_REQUEST: u32 = 0x0c;
export const IO_FLUSH: u32 = 0x00;
export const IO_WRITE: u32 = 0x01;
export const IO_READ: u32 = 0x02;
export const IO_WRITE_ZEROES: u32 = 0x08;
export const IO_DATASET_MANAGEMENT: u32 = 0x09;

export const CNS_NAMESPACE: u32 = 0x00;
export const CNS_CONTROLLER: u32 = 0x01;
export const CNS_ACTIVE_NAMESPACES: u32 = 0x02;
export const FEATURE_NUMBER_OF_QUEUES: u32 = 0x07;
export const LOG_CHANGED_NAMESPACES: u32 = 0x04;
export const PSDT_PRP: u32 = 0;
export const PSDT_SGL: u32 = 1; // SGL for data, MPTR a buffer address

const AT_CDW0: usize = 0;
const AT_NSID: usize = 4;
const AT_PRP1: usize = 24;
const AT_PRP2: usize = 32;
const AT_CDW10: usize = 40;
const AT_CDW11: usize = 44;
const AT_CDW12: usize = 48;
const AT_DW0: usize = 0;
const AT_DW2: usize = 8;
const AT_DW3: usize = 12;

/** Clears the entry and writes CDW0 (opcode, PSDT, CID) and NSID; the caller sets the rest through the setters. */
export function sqeInit(sqe: usize, opcode: u32, cid: u32, nsid: u32, psdt: u32 = PSDT_PRP): void {
  assert(cid <= 0xffff && opcode <= 0xff && psdt <= 2);
  memory.fill(sqe, 0, SQ_ENTRY_BYTES);
  store<u32>(sqe + AT_CDW0, opcode | (psdt << 14) | (cid << 16));
  store<u32>(sqe + AT_NSID, nsid);
}
@inline export function sqeSetPrp(sqe: usize, prp1: u64, prp2: u64): void { store<u64>(sqe + AT_PRP1, prp1); store<u64>(sqe + AT_PRP2, prp2); }
/** SGL1, a 16-byte descriptor: |0 address|8 length|15 type << 4 | subtype|. */
export function sqeSetSgl(sqe: usize, address: u64, lengthBytes: u32, type: u32): void {
  store<u64>(sqe + AT_PRP1, address);
  store<u32>(sqe + AT_PRP1 + 8, lengthBytes);
  store<u8>(sqe + AT_PRP1 + 15, <u8>(type << 4));
}
@inline export function sqeSetCdw10(sqe: usize, value: u32): void { store<u32>(sqe + AT_CDW10, value); }
@inline export function sqeSetCdw11(sqe: usize, value: u32): void { store<u32>(sqe + AT_CDW11, value); }
@inline export function sqeSetCdw12(sqe: usize, value: u32): void { store<u32>(sqe + AT_CDW12, value); }
@inline export function sqeCid(sqe: usize): u32 { return load<u32>(sqe + AT_CDW0) >>> 16; }

@inline export function cqeDw0(cqe: usize): u32 { return load<u32>(cqe + AT_DW0); }
@inline export function cqeSqHead(cqe: usize): u32 { return load<u32>(cqe + AT_DW2) & 0xffff; }
@inline export function cqeSqId(cqe: usize): u32 { return load<u32>(cqe + AT_DW2) >>> 16; }
@inline export function cqeCid(cqe: usize): u32 { return load<u32>(cqe + AT_DW3) & 0xffff; }
/** The phase tag: an acquire load of DW3, so the rest of the entry is read after the device wrote it. */
@inline export function cqeDw3(cqe: usize): u32 { return atomic.load<u32>(cqe + AT_DW3); }
@inline export function dw3Phase(dw3: u32): u32 { return (dw3 >>> 16) & 1; }
@inline export function dw3Status(dw3: u32): u32 { return dw3 >>> 17; }

// SGL descriptor types (NVMe 1.4 §4.4).
export const SGL_DATA_BLOCK: u32 = 0x0;
export const SGL_LAST_SEGMENT: u32 = 0x3;
export const SGL_DESCRIPTOR_BYTES: u32 = 16;

/** A Data Block descriptor at `at`. */
export function sglDataBlock(at: usize, address: u64, lengthBytes: u32): void {
  store<u64>(at, address);
  store<u32>(at, lengthBytes, 8);
  store<u32>(at, 0, 12); // reserved, type 0 (Data Block), subtype 0
}

// Identify Controller (NVMe 1.4 Figure 247) and Identify Namespace (Figure 245) fields the driver reads.
@inline export function idCtrlMdts(data: usize): u32 { return load<u8>(data, 77); }
@inline export function idCtrlSqes(data: usize): u32 { return load<u8>(data, 512); }
@inline export function idCtrlCqes(data: usize): u32 { return load<u8>(data, 513); }
@inline export function idCtrlNn(data: usize): u32 { return load<u32>(data, 516); }
@inline export function idCtrlOncs(data: usize): u32 { return load<u16>(data, 520); }
@inline export function idCtrlSgls(data: usize): u32 { return load<u32>(data, 536); }
@inline export function idNsSize(data: usize): u64 { return load<u64>(data, 0); }
@inline export function idNsFeatures(data: usize): u32 { return load<u8>(data, 24); }
@inline export function idNsFormatCount(data: usize): u32 { return load<u8>(data, 25) + 1; }
@inline export function idNsFormatIndex(data: usize): u32 { return load<u8>(data, 26) & 0xf; }
@inline export function idNsPreferredWriteGranularity(data: usize): u32 { return load<u16>(data, 64) + 1; }
/** LBA Format `index`: |15:0 MS|23:16 LBADS|25:24 RP|. */
@inline export function idNsFormat(data: usize, index: u32): u32 { return load<u32>(data + 128 + <usize>index * 4); }
export const ONCS_DATASET_MANAGEMENT: u32 = 1 << 2;
export const ONCS_WRITE_ZEROES: u32 = 1 << 3;
export const NSFEAT_OPTPERF: u32 = 1 << 4;
