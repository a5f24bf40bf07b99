// The cluster port's ring entries (docs/hardware.md, "cluster-port"), little-endian, in this processor's RAM.
// Work request (send queue), 32 bytes:
// |0 opcode u8|1 reserved u8|2 destination fabric address u16|4 key u32|8 local address u64|16 remote offset u64|
// |24 length u32|28 tag u32|
// Receive entry, 16 bytes: |0 buffer address u64|8 buffer length u32|12 tag u32|
// Completion, 16 bytes: |0 tag u32|4 status u8|5 opcode u8|6 peer fabric address u16|8 length u32|12 count u32|
// The port writes completions beside us: a completion is read only once CQ_TAIL has passed it.

export const CP_WR_BYTES: u32 = 32;
export const CP_RQE_BYTES: u32 = 16;
export const CP_CQE_BYTES: u32 = 16;

@inline export function cpWrSetOpcode(wr: usize, opcode: u8): void { store<u8>(wr, opcode, 0); }
@inline export function cpWrSetDestination(wr: usize, address: u16): void { store<u16>(wr, address, 2); }
@inline export function cpWrSetKey(wr: usize, key: u32): void { store<u32>(wr, key, 4); }
@inline export function cpWrSetLocalAddress(wr: usize, address: u64): void { store<u64>(wr, address, 8); }
@inline export function cpWrSetRemoteOffset(wr: usize, offset: u64): void { store<u64>(wr, offset, 16); }
@inline export function cpWrSetLength(wr: usize, lengthBytes: u32): void { store<u32>(wr, lengthBytes, 24); }
@inline export function cpWrSetTag(wr: usize, tag: u32): void { store<u32>(wr, tag, 28); }

@inline export function cpRqeSetAddress(rqe: usize, address: u64): void { store<u64>(rqe, address, 0); }
@inline export function cpRqeSetLength(rqe: usize, lengthBytes: u32): void { store<u32>(rqe, lengthBytes, 8); }
@inline export function cpRqeSetTag(rqe: usize, tag: u32): void { store<u32>(rqe, tag, 12); }

@inline export function cpCqeTag(cqe: usize): u32 { return load<u32>(cqe, 0); }
@inline export function cpCqeStatus(cqe: usize): u8 { return load<u8>(cqe, 4); }
@inline export function cpCqeOpcode(cqe: usize): u8 { return load<u8>(cqe, 5); }
@inline export function cpCqePeer(cqe: usize): u16 { return load<u16>(cqe, 6); }
@inline export function cpCqeLength(cqe: usize): u32 { return load<u32>(cqe, 8); }
@inline export function cpCqeCount(cqe: usize): u32 { return load<u32>(cqe, 12); }
