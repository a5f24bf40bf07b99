// The CTA's record of one part (one frame of a service's piece, out to one RTA), PART_BYTES in the CTA's part table;
// read and written only through the accessors below.
// Part: |0 state u8|1 attempts u8|2 processor u8|3 member u8|4 service u16|6 slot u16|8 transaction u32|12 op u16|
// |14 fn u8|15 copy u8|16 deadlineNs u64|24 giveUpNs u64|32 sglOffset u32|36 blocks u32|40 volumeLba u64|48 disk u16|
// |50 retries u8|51 stale u8|52-63 -|
// slot: its frame's. op: the parity operation it belongs to (OP_NONE: the requester's data, at sglOffset, for
// volumeLba). copy: a RAID-1 write to a second (third…) member, whose bytes are not counted again. retries: sent again
// after its member's error (MEMBER_RETRIES_MAX). stale: its member failed while it was out (memberFail), so what it
// read says nothing of the volume's data.
export const PART_BYTES: u32 = 64;

export enum PartState {
  Free = 0, // unused
  Queued = 1, // built, waiting for room on its link (or a retry time)
  Sent = 2, // on its way or at the RTA; retransmitted at its deadline
}

const AT_STATE: usize = 0;
const AT_ATTEMPTS: usize = 1;
const AT_PROCESSOR: usize = 2;
const AT_MEMBER: usize = 3;
const AT_SERVICE: usize = 4;
const AT_SLOT: usize = 6;
const AT_TRANSACTION: usize = 8;
const AT_OP: usize = 12;
const AT_FUNCTION: usize = 14;
const AT_COPY: usize = 15;
const AT_DEADLINE_NS: usize = 16;
const AT_GIVE_UP_NS: usize = 24;
const AT_SGL_OFFSET: usize = 32;
const AT_BLOCKS: usize = 36;
const AT_VOLUME_LBA: usize = 40;
const AT_DISK: usize = 48;
const AT_RETRIES: usize = 50;
const AT_STALE: usize = 51;
const PART_UNUSED_BYTES: usize = 12; // |52-63|
if (AT_STALE + 1 + PART_UNUSED_BYTES != PART_BYTES) ERROR("cta part record: the last field and the unused tail end the record");

@inline export function partState(at: usize): PartState { return <PartState>load<u8>(at, AT_STATE); }
@inline export function partAttempts(at: usize): u32 { return <u32>load<u8>(at, AT_ATTEMPTS); }
@inline export function partProcessor(at: usize): u32 { return <u32>load<u8>(at, AT_PROCESSOR); }
@inline export function partMember(at: usize): u32 { return <u32>load<u8>(at, AT_MEMBER); }
@inline export function partService(at: usize): u32 { return <u32>load<u16>(at, AT_SERVICE); }
@inline export function partSlot(at: usize): u32 { return <u32>load<u16>(at, AT_SLOT); }
@inline export function partTransaction(at: usize): u32 { return load<u32>(at, AT_TRANSACTION); }
@inline export function partOp(at: usize): u32 { return <u32>load<u16>(at, AT_OP); }
@inline export function partFunction(at: usize): u32 { return <u32>load<u8>(at, AT_FUNCTION); }
@inline export function partCopy(at: usize): bool { return load<u8>(at, AT_COPY) != 0; }
@inline export function partDeadlineNs(at: usize): u64 { return load<u64>(at, AT_DEADLINE_NS); }
@inline export function partGiveUpNs(at: usize): u64 { return load<u64>(at, AT_GIVE_UP_NS); }
@inline export function partBlocks(at: usize): u64 { return <u64>load<u32>(at, AT_BLOCKS); }
@inline export function partVolumeLba(at: usize): u64 { return load<u64>(at, AT_VOLUME_LBA); }
@inline export function partDisk(at: usize): u32 { return <u32>load<u16>(at, AT_DISK); }
@inline export function partRetries(at: usize): u32 { return <u32>load<u8>(at, AT_RETRIES); }
@inline export function partStale(at: usize): bool { return load<u8>(at, AT_STALE) != 0; }

@inline export function partSetState(at: usize, state: PartState): void { store<u8>(at, <u8>state, AT_STATE); }
@inline export function partSetAttempts(at: usize, attempts: u32): void { store<u8>(at, <u8>attempts, AT_ATTEMPTS); }
@inline export function partSetProcessor(at: usize, processor: u32): void { store<u8>(at, <u8>processor, AT_PROCESSOR); }
@inline export function partSetMember(at: usize, member: u32): void { store<u8>(at, <u8>member, AT_MEMBER); }
@inline export function partSetService(at: usize, s: u32): void { store<u16>(at, <u16>s, AT_SERVICE); }
@inline export function partSetSlot(at: usize, slot: u32): void { store<u16>(at, <u16>slot, AT_SLOT); }
@inline export function partSetTransaction(at: usize, transaction: u32): void { store<u32>(at, transaction, AT_TRANSACTION); }
@inline export function partSetOp(at: usize, op: u32): void { store<u16>(at, <u16>op, AT_OP); }
@inline export function partSetFunction(at: usize, fn: u32): void { store<u8>(at, <u8>fn, AT_FUNCTION); }
@inline export function partSetCopy(at: usize, copy: bool): void { store<u8>(at, copy ? 1 : 0, AT_COPY); }
@inline export function partSetDeadlineNs(at: usize, atNs: u64): void { store<u64>(at, atNs, AT_DEADLINE_NS); }
@inline export function partSetGiveUpNs(at: usize, atNs: u64): void { store<u64>(at, atNs, AT_GIVE_UP_NS); }
@inline export function partSetSglOffset(at: usize, offset: u32): void { store<u32>(at, offset, AT_SGL_OFFSET); }
@inline export function partSetBlocks(at: usize, blocks: u64): void { store<u32>(at, <u32>blocks, AT_BLOCKS); }
@inline export function partSetVolumeLba(at: usize, lba: u64): void { store<u64>(at, lba, AT_VOLUME_LBA); }
@inline export function partSetDisk(at: usize, disk: u32): void { store<u16>(at, <u16>disk, AT_DISK); }
@inline export function partSetRetries(at: usize, retries: u32): void { store<u8>(at, <u8>retries, AT_RETRIES); }
@inline export function partSetStale(at: usize): void { store<u8>(at, 1, AT_STALE); }
