// The CTA's record of one service (a requester's request, or one of the CTA's own), SERVICE_BYTES in the CTA's
// service table; read and written only through the accessors below.
// Service: |0 state u8|1 status u8|2 requester u16|4 outstanding u32|8 tag u64|16 bytes u64|24 fn u8|25 pending u8|
// |26 volume u16|28 blocks u32|32 lba u64|40 cursor u64|48 sgl u32|52 cursorWindow u32|56 internal u8|57 ordered u8|
// |58 -|60 arrival u32|
// status: the first failure (FrameStatus.Ok while none). outstanding: parts and parity operations not yet ended.
// bytes: the requester's bytes moved so far. pending: it has pieces not yet emitted (the CTA's servicesPending).
// internal: the CTA's own (metadata, rebuild): its parts address members directly, a failure is not recovered, and
// it answers the CTA itself (tag: INTERNAL_* | what the owner needs).
// cursor: the next volume LBA to emit (a RAID-5 write: the next stripe row, from the first, and cursorWindow the window in it);
// blocks past the end (cursor == lba + blocks) when everything is emitted.
// ordered: a replica write holds its range (lba, blocks) until it is answered: no other write of that volume that
// overlaps it, and no resync step there, is emitted meanwhile, so both copies see overlapping writes in one order.
// arrival: the service's number in the order services were opened (wraps).
import { FrameStatus } from "../board/frame";

export const SERVICE_BYTES: u32 = 64;

export enum ServiceState {
  Free = 0,
  Active = 1,
}

const AT_STATE: usize = 0;
const AT_STATUS: usize = 1;
const AT_REQUESTER: usize = 2;
const AT_OUTSTANDING: usize = 4;
const AT_TAG: usize = 8;
const AT_BYTES: usize = 16;
const AT_FUNCTION: usize = 24;
const AT_PENDING: usize = 25;
const AT_VOLUME: usize = 26;
const AT_BLOCKS: usize = 28;
const AT_LBA: usize = 32;
const AT_CURSOR: usize = 40;
const AT_SGL: usize = 48;
const AT_CURSOR_WINDOW: usize = 52;
const AT_INTERNAL: usize = 56;
const AT_ORDERED: usize = 57;
const AT_ARRIVAL: usize = 60;
if (AT_ARRIVAL + 4 != SERVICE_BYTES) ERROR("cta service record: the last field ends the record");

@inline export function serviceState(at: usize): ServiceState { return <ServiceState>load<u8>(at, AT_STATE); }
@inline export function serviceStatus(at: usize): FrameStatus { return <FrameStatus>load<u8>(at, AT_STATUS); }
@inline export function serviceRequester(at: usize): u32 { return <u32>load<u16>(at, AT_REQUESTER); }
@inline export function serviceOutstanding(at: usize): u32 { return load<u32>(at, AT_OUTSTANDING); }
@inline export function serviceTag(at: usize): u64 { return load<u64>(at, AT_TAG); }
@inline export function serviceBytes(at: usize): u64 { return load<u64>(at, AT_BYTES); }
@inline export function serviceFunction(at: usize): u32 { return <u32>load<u8>(at, AT_FUNCTION); }
@inline export function servicePending(at: usize): bool { return load<u8>(at, AT_PENDING) != 0; }
@inline export function serviceVolume(at: usize): u32 { return <u32>load<u16>(at, AT_VOLUME); }
@inline export function serviceBlocks(at: usize): u64 { return <u64>load<u32>(at, AT_BLOCKS); }
@inline export function serviceLba(at: usize): u64 { return load<u64>(at, AT_LBA); }
@inline export function serviceCursor(at: usize): u64 { return load<u64>(at, AT_CURSOR); }
@inline export function serviceSgl(at: usize): u32 { return load<u32>(at, AT_SGL); }
@inline export function serviceCursorWindow(at: usize): u32 { return load<u32>(at, AT_CURSOR_WINDOW); }
@inline export function serviceInternal(at: usize): bool { return load<u8>(at, AT_INTERNAL) != 0; }
@inline export function serviceOrdered(at: usize): bool { return load<u8>(at, AT_ORDERED) != 0; }
@inline export function serviceArrival(at: usize): u32 { return load<u32>(at, AT_ARRIVAL); }

@inline export function serviceSetState(at: usize, state: ServiceState): void { store<u8>(at, <u8>state, AT_STATE); }
@inline export function serviceSetStatus(at: usize, status: FrameStatus): void { store<u8>(at, <u8>status, AT_STATUS); }
@inline export function serviceSetRequester(at: usize, requester: u32): void { store<u16>(at, <u16>requester, AT_REQUESTER); }
@inline export function serviceSetOutstanding(at: usize, count: u32): void { store<u32>(at, count, AT_OUTSTANDING); }
@inline export function serviceSetTag(at: usize, tag: u64): void { store<u64>(at, tag, AT_TAG); }
@inline export function serviceSetBytes(at: usize, bytes: u64): void { store<u64>(at, bytes, AT_BYTES); }
@inline export function serviceSetFunction(at: usize, fn: u32): void { store<u8>(at, <u8>fn, AT_FUNCTION); }
@inline export function serviceSetPending(at: usize, pending: bool): void { store<u8>(at, pending ? 1 : 0, AT_PENDING); }
@inline export function serviceSetVolume(at: usize, volume: u32): void { store<u16>(at, <u16>volume, AT_VOLUME); }
@inline export function serviceSetBlocks(at: usize, blocks: u64): void { store<u32>(at, <u32>blocks, AT_BLOCKS); }
@inline export function serviceSetLba(at: usize, lba: u64): void { store<u64>(at, lba, AT_LBA); }
@inline export function serviceSetCursor(at: usize, cursor: u64): void { store<u64>(at, cursor, AT_CURSOR); }
@inline export function serviceSetSgl(at: usize, sgl: u32): void { store<u32>(at, sgl, AT_SGL); }
@inline export function serviceSetCursorWindow(at: usize, window: u32): void { store<u32>(at, window, AT_CURSOR_WINDOW); }
@inline export function serviceSetInternal(at: usize): void { store<u8>(at, 1, AT_INTERNAL); }
@inline export function serviceSetOrdered(at: usize): void { store<u8>(at, 1, AT_ORDERED); }
@inline export function serviceSetArrival(at: usize, arrival: u32): void { store<u32>(at, arrival, AT_ARRIVAL); }
