// The thin layer's record of one allocation or free of a chunk (thin.ts, "Record"), THIN_RECORD_BYTES in its table;
// read and written only through the accessors below.
// Record: |0 state u8|1 status u8|2 volume u16|4 vc u32|8 chunk u32|12 request u16|14 outstanding u8|15 -|
// |16 generation u64|24 bytes u32|28-31 -|
// state: RecordState. vc: the virtual chunk, chunk: the pool chunk. request: the request it answers (POOL_NONE once
// told). outstanding: its children out. generation: the map's write generation that holds the change. bytes: the
// request's data it moved.
import { FrameStatus } from "../board/frame";

export const THIN_RECORD_BYTES: u32 = 32;

const AT_STATE: usize = 0;
const AT_STATUS: usize = 1;
const AT_VOLUME: usize = 2;
const AT_VC: usize = 4;
const AT_CHUNK: usize = 8;
const AT_REQUEST: usize = 12;
const AT_OUTSTANDING: usize = 14;
const AT_GENERATION: usize = 16;
const AT_BYTES: usize = 24;
const RECORD_UNUSED_BYTES: usize = 4; // |28-31|
if (AT_BYTES + 4 + RECORD_UNUSED_BYTES != THIN_RECORD_BYTES) ERROR("thin allocation record: the last field and the unused tail end the record");

@inline export function recordState(at: usize): u32 { return <u32>load<u8>(at, AT_STATE); }
@inline export function recordStatus(at: usize): FrameStatus { return <FrameStatus>load<u8>(at, AT_STATUS); }
@inline export function recordVolume(at: usize): u32 { return <u32>load<u16>(at, AT_VOLUME); }
@inline export function recordVc(at: usize): u32 { return load<u32>(at, AT_VC); }
@inline export function recordChunk(at: usize): u32 { return load<u32>(at, AT_CHUNK); }
@inline export function recordRequest(at: usize): u32 { return <u32>load<u16>(at, AT_REQUEST); }
@inline export function recordOutstanding(at: usize): u32 { return <u32>load<u8>(at, AT_OUTSTANDING); }
@inline export function recordGeneration(at: usize): u64 { return load<u64>(at, AT_GENERATION); }
@inline export function recordBytes(at: usize): u32 { return load<u32>(at, AT_BYTES); }

@inline export function recordSetState(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_STATE); }
@inline export function recordSetStatus(at: usize, status: FrameStatus): void { store<u8>(at, <u8>status, AT_STATUS); }
@inline export function recordSetVolume(at: usize, value: u32): void { store<u16>(at, <u16>value, AT_VOLUME); }
@inline export function recordSetVc(at: usize, value: u32): void { store<u32>(at, value, AT_VC); }
@inline export function recordSetChunk(at: usize, value: u32): void { store<u32>(at, value, AT_CHUNK); }
@inline export function recordSetRequest(at: usize, value: u32): void { store<u16>(at, <u16>value, AT_REQUEST); }
@inline export function recordSetOutstanding(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_OUTSTANDING); }
@inline export function recordSetGeneration(at: usize, value: u64): void { store<u64>(at, value, AT_GENERATION); }
@inline export function recordSetBytes(at: usize, value: u32): void { store<u32>(at, value, AT_BYTES); }
