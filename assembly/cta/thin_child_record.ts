// The thin layer's record of one child request (thin.ts): a service of the CTA's own on the pool volume, for a request,
// an allocation, a map commit or the loader; THIN_CHILD_BYTES in its table; read and written only through the
// accessors below.
// Child: |0 state u8|1 ownerKind u8|2 owner u16|4 fn u8|5 busy u8|6 volume u16|8 lba u64|16 blocks u32|20 sgl u32|
// |24 status u8|25-31 -|
// state: ChildState. ownerKind: ThinOwner, owner: its index. busy: the CTA answered it Busy: posted again only once
// some service has finished since.
import { FrameStatus } from "../board/frame";

export const THIN_CHILD_BYTES: u32 = 32;

const AT_STATE: usize = 0;
const AT_OWNER_KIND: usize = 1;
const AT_OWNER: usize = 2;
const AT_FUNCTION: usize = 4;
const AT_BUSY: usize = 5;
const AT_VOLUME: usize = 6;
const AT_LBA: usize = 8;
const AT_BLOCKS: usize = 16;
const AT_SGL: usize = 20;
const AT_STATUS: usize = 24;
const CHILD_UNUSED_BYTES: usize = 7; // |25-31|
if (AT_STATUS + 1 + CHILD_UNUSED_BYTES != THIN_CHILD_BYTES) ERROR("thin child record: the last field and the unused tail end the record");

@inline export function childState(at: usize): u32 { return <u32>load<u8>(at, AT_STATE); }
@inline export function childOwnerKind(at: usize): u32 { return <u32>load<u8>(at, AT_OWNER_KIND); }
@inline export function childOwner(at: usize): u32 { return <u32>load<u16>(at, AT_OWNER); }
@inline export function childFunction(at: usize): u32 { return <u32>load<u8>(at, AT_FUNCTION); }
@inline export function childBusy(at: usize): bool { return load<u8>(at, AT_BUSY) != 0; }
@inline export function childVolume(at: usize): u32 { return <u32>load<u16>(at, AT_VOLUME); }
@inline export function childLba(at: usize): u64 { return load<u64>(at, AT_LBA); }
@inline export function childBlocks(at: usize): u32 { return load<u32>(at, AT_BLOCKS); }
@inline export function childSgl(at: usize): u32 { return load<u32>(at, AT_SGL); }
@inline export function childStatus(at: usize): FrameStatus { return <FrameStatus>load<u8>(at, AT_STATUS); }

@inline export function childSetState(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_STATE); }
@inline export function childSetOwnerKind(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_OWNER_KIND); }
@inline export function childSetOwner(at: usize, value: u32): void { store<u16>(at, <u16>value, AT_OWNER); }
@inline export function childSetFunction(at: usize, value: u32): void { store<u8>(at, <u8>value, AT_FUNCTION); }
@inline export function childSetBusy(at: usize, busy: bool): void { store<u8>(at, busy ? 1 : 0, AT_BUSY); }
@inline export function childSetVolume(at: usize, value: u32): void { store<u16>(at, <u16>value, AT_VOLUME); }
@inline export function childSetLba(at: usize, value: u64): void { store<u64>(at, value, AT_LBA); }
@inline export function childSetBlocks(at: usize, value: u32): void { store<u32>(at, value, AT_BLOCKS); }
@inline export function childSetSgl(at: usize, value: u32): void { store<u32>(at, value, AT_SGL); }
@inline export function childSetStatus(at: usize, status: FrameStatus): void { store<u8>(at, <u8>status, AT_STATUS); }
