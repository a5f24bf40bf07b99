// The thin layer's record of one request on a thin volume (thin.ts), THIN_REQUEST_BYTES in its table; read and written
// only through the accessors below.
// Request: |0 active u8|1 status u8|2 requester u16|4 outstanding u32|8 tag u64|16 bytes u64|24 fn u8|25 events u8|
// |26 volume u16|28 blocks u32|32 lba u64|40 cursor u64|48 sgl u32|52 blocked u8|53 flushIssued u8|54-63 -|
// status: the first failure (FrameStatus.Ok while none). outstanding: children and allocations not yet ended.
// events: THIN_EVENT_* for the answer. cursor: the next LBA to resolve. blocked: it waits (a held chunk, no children
// free) and poll() advances it again. flushIssued: a Flush's child on the pool was posted.
import { FrameStatus } from "../board/frame";

export const THIN_REQUEST_BYTES: u32 = 64;

const AT_ACTIVE: usize = 0;
const AT_STATUS: usize = 1;
const AT_REQUESTER: usize = 2;
const AT_OUTSTANDING: usize = 4;
const AT_TAG: usize = 8;
const AT_BYTES: usize = 16;
const AT_FUNCTION: usize = 24;
const AT_EVENTS: usize = 25;
const AT_VOLUME: usize = 26;
const AT_BLOCKS: usize = 28;
const AT_LBA: usize = 32;
const AT_CURSOR: usize = 40;
const AT_SGL: usize = 48;
const AT_BLOCKED: usize = 52;
const AT_FLUSH_ISSUED: usize = 53;
const REQUEST_UNUSED_BYTES: usize = 10; // |54-63|
if (AT_FLUSH_ISSUED + 1 + REQUEST_UNUSED_BYTES != THIN_REQUEST_BYTES) ERROR("thin request record: the last field and the unused tail end the record");

@inline export function requestActive(at: usize): bool { return load<u8>(at, AT_ACTIVE) != 0; }
@inline export function requestStatus(at: usize): FrameStatus { return <FrameStatus>load<u8>(at, AT_STATUS); }
@inline export function requestRequester(at: usize): u32 { return <u32>load<u16>(at, AT_REQUESTER); }
@inline export function requestOutstanding(at: usize): u32 { return load<u32>(at, AT_OUTSTANDING); }
@inline export function requestTag(at: usize): u64 { return load<u64>(at, AT_TAG); }
@inline export function requestBytes(at: usize): u64 { return load<u64>(at, AT_BYTES); }
@inline export function requestFunction(at: usize): u32 { return <u32>load<u8>(at, AT_FUNCTION); }
@inline export function requestEvents(at: usize): u32 { return <u32>load<u8>(at, AT_EVENTS); }
@inline export function requestVolume(at: usize): u32 { return <u32>load<u16>(at, AT_VOLUME); }
@inline export function requestBlocks(at: usize): u32 { return load<u32>(at, AT_BLOCKS); }
@inline export function requestLba(at: usize): u64 { return load<u64>(at, AT_LBA); }
@inline export function requestCursor(at: usize): u64 { return load<u64>(at, AT_CURSOR); }
@inline export function requestSgl(at: usize): u32 { return load<u32>(at, AT_SGL); }
@inline export function requestBlocked(at: usize): bool { return load<u8>(at, AT_BLOCKED) != 0; }
@inline export function requestFlushIssued(at: usize): bool { return load<u8>(at, AT_FLUSH_ISSUED) != 0; }

@inline export function requestSetActive(at: usize, active: bool): void { store<u8>(at, active ? 1 : 0, AT_ACTIVE); }
@inline export function requestSetStatus(at: usize, status: FrameStatus): void { store<u8>(at, <u8>status, AT_STATUS); }
@inline export function requestSetRequester(at: usize, value: u32): void { store<u16>(at, <u16>value, AT_REQUESTER); }
@inline export function requestSetOutstanding(at: usize, value: u32): void { store<u32>(at, value, AT_OUTSTANDING); }
@inline export function requestSetTag(at: usize, value: u64): void { store<u64>(at, value, AT_TAG); }
@inline export function requestSetBytes(at: usize, value: u64): void { store<u64>(at, value, AT_BYTES); }
@inline export function requestSetFunction(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_FUNCTION); }
@inline export function requestSetEvents(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_EVENTS); }
@inline export function requestSetVolume(at: usize, value: u32): void { store<u16>(at, <u16>value, AT_VOLUME); }
@inline export function requestSetBlocks(at: usize, value: u32): void { store<u32>(at, value, AT_BLOCKS); }
@inline export function requestSetLba(at: usize, value: u64): void { store<u64>(at, value, AT_LBA); }
@inline export function requestSetCursor(at: usize, value: u64): void { store<u64>(at, value, AT_CURSOR); }
@inline export function requestSetSgl(at: usize, value: u32): void { store<u32>(at, value, AT_SGL); }
@inline export function requestSetBlocked(at: usize, blocked: bool): void { store<u8>(at, blocked ? 1 : 0, AT_BLOCKED); }
@inline export function requestSetFlushIssued(at: usize, flushIssued: bool): void { store<u8>(at, flushIssued ? 1 : 0, AT_FLUSH_ISSUED); }
