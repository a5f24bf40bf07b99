// The thin layer's record of one map block being made durable (thin.ts, "Commit"), THIN_COMMIT_BYTES in its table;
// read and written only through the accessors below.
// Commit: |0 state u8|1 copy u8|2 volume u16|4 block u32|8 generation u64|16 sgl u32|20-23 -|
// state: CommitState. copy: the map copy written. block: the map block. generation: the one it writes.

export const THIN_COMMIT_BYTES: u32 = 24;

const AT_STATE: usize = 0;
const AT_COPY: usize = 1;
const AT_VOLUME: usize = 2;
const AT_BLOCK: usize = 4;
const AT_GENERATION: usize = 8;
const AT_SGL: usize = 16;
const COMMIT_UNUSED_BYTES: usize = 4; // |20-23|
if (AT_SGL + 4 + COMMIT_UNUSED_BYTES != THIN_COMMIT_BYTES) ERROR("thin commit record: the last field and the unused tail end the record");

@inline export function commitState(at: usize): u32 { return <u32>load<u8>(at, AT_STATE); }
@inline export function commitCopy(at: usize): u32 { return <u32>load<u8>(at, AT_COPY); }
@inline export function commitVolume(at: usize): u32 { return <u32>load<u16>(at, AT_VOLUME); }
@inline export function commitBlock(at: usize): u32 { return load<u32>(at, AT_BLOCK); }
@inline export function commitGeneration(at: usize): u64 { return load<u64>(at, AT_GENERATION); }
@inline export function commitSgl(at: usize): u32 { return load<u32>(at, AT_SGL); }

@inline export function commitSetState(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_STATE); }
@inline export function commitSetCopy(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_COPY); }
@inline export function commitSetVolume(at: usize, value: u32): void { store<u16>(at, <u16>value, AT_VOLUME); }
@inline export function commitSetBlock(at: usize, value: u32): void { store<u32>(at, value, AT_BLOCK); }
@inline export function commitSetGeneration(at: usize, value: u64): void { store<u64>(at, value, AT_GENERATION); }
@inline export function commitSetSgl(at: usize, value: u32): void { store<u32>(at, value, AT_SGL); }
