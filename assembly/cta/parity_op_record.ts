// The record of one RAID-5 parity operation (parity_ops.ts), OP_BYTES in its table; read and written only through the
// accessors below.
// Op: |0 state u8|1 kind u8|2 service u16|4 volume u16|6 outstanding u8|7 failed u8|8 row u64|16 winLo u32|
// |20 winHi u32|24 seq u32|28 status u8|29 replan u8|30 target u8|31 step u8|32 columns u16 × MEMBERS_MAX|48 rLo u32|
// |52 rHi u32|56 dLo u32|60 dHi u32|
// outstanding: its parts out. failed: the member down in its row (MEMBER_NONE: none). winLo..winHi: blocks into each
// member's chunk. seq: its number in the order operations opened (the window's lock goes to the lowest). status: the
// first failure (FrameStatus.Ok while none). replan: a read whose member has just failed plans again once its parts
// are back. target: a Read's member (rLo..rHi on it), a Rebuild's member. step: a write's XOR so far (XOR_STEP_*).
// columns: the large buffer of each member (POOL_NONE: none held). dLo..dHi: the part of the window a write writes in
// any member, the only part its parity changes.
import { FrameStatus } from "../board/frame";
import { MEMBERS_MAX } from "../volumes/volume";

export const OP_BYTES: u32 = 64;

const AT_STATE: usize = 0;
const AT_KIND: usize = 1;
const AT_SERVICE: usize = 2;
const AT_VOLUME: usize = 4;
const AT_OUTSTANDING: usize = 6;
const AT_FAILED: usize = 7;
const AT_ROW: usize = 8;
const AT_WIN_LO: usize = 16;
const AT_WIN_HI: usize = 20;
const AT_SEQ: usize = 24;
const AT_STATUS: usize = 28;
const AT_REPLAN: usize = 29;
const AT_TARGET: usize = 30;
const AT_STEP: usize = 31;
const AT_COLUMNS: usize = 32;
const AT_R_LO: usize = 48;
const AT_R_HI: usize = 52;
const AT_D_LO: usize = 56;
const AT_D_HI: usize = 60;
if (AT_COLUMNS + MEMBERS_MAX * 2 != AT_R_LO) ERROR("parity op record: the columns end where rLo starts");
if (AT_D_HI + 4 != OP_BYTES) ERROR("parity op record: the last field ends the record");

@inline export function opState(at: usize): u32 { return <u32>load<u8>(at, AT_STATE); }
@inline export function opKind(at: usize): u32 { return <u32>load<u8>(at, AT_KIND); }
@inline export function opService(at: usize): u32 { return <u32>load<u16>(at, AT_SERVICE); }
@inline export function opVolume(at: usize): u32 { return <u32>load<u16>(at, AT_VOLUME); }
@inline export function opOutstanding(at: usize): u32 { return <u32>load<u8>(at, AT_OUTSTANDING); }
@inline export function opFailed(at: usize): u32 { return <u32>load<u8>(at, AT_FAILED); }
@inline export function opRow(at: usize): u64 { return load<u64>(at, AT_ROW); }
@inline export function opWinLo(at: usize): u32 { return load<u32>(at, AT_WIN_LO); }
@inline export function opWinHi(at: usize): u32 { return load<u32>(at, AT_WIN_HI); }
@inline export function opSeq(at: usize): u32 { return load<u32>(at, AT_SEQ); }
@inline export function opStatus(at: usize): FrameStatus { return <FrameStatus>load<u8>(at, AT_STATUS); }
@inline export function opReplan(at: usize): bool { return load<u8>(at, AT_REPLAN) != 0; }
@inline export function opTarget(at: usize): u32 { return <u32>load<u8>(at, AT_TARGET); }
@inline export function opStep(at: usize): u32 { return <u32>load<u8>(at, AT_STEP); }
@inline export function opColumn(at: usize, m: u32): u32 { return <u32>load<u16>(at + AT_COLUMNS + <usize>m * 2); }
@inline export function opRLo(at: usize): u32 { return load<u32>(at, AT_R_LO); }
@inline export function opRHi(at: usize): u32 { return load<u32>(at, AT_R_HI); }
@inline export function opDLo(at: usize): u32 { return load<u32>(at, AT_D_LO); }
@inline export function opDHi(at: usize): u32 { return load<u32>(at, AT_D_HI); }

@inline export function opSetState(at: usize, state: u32): void { store<u8>(at, <u8>state, AT_STATE); }
@inline export function opSetKind(at: usize, kind: u32): void { store<u8>(at, <u8>kind, AT_KIND); }
@inline export function opSetService(at: usize, s: u32): void { store<u16>(at, <u16>s, AT_SERVICE); }
@inline export function opSetVolume(at: usize, volume: u32): void { store<u16>(at, <u16>volume, AT_VOLUME); }
@inline export function opSetOutstanding(at: usize, count: u32): void { store<u8>(at, <u8>count, AT_OUTSTANDING); }
@inline export function opSetFailed(at: usize, member: u32): void { store<u8>(at, <u8>member, AT_FAILED); }
@inline export function opSetRow(at: usize, row: u64): void { store<u64>(at, row, AT_ROW); }
@inline export function opSetWinLo(at: usize, lo: u32): void { store<u32>(at, lo, AT_WIN_LO); }
@inline export function opSetWinHi(at: usize, hi: u32): void { store<u32>(at, hi, AT_WIN_HI); }
@inline export function opSetSeq(at: usize, seq: u32): void { store<u32>(at, seq, AT_SEQ); }
@inline export function opSetStatus(at: usize, status: FrameStatus): void { store<u8>(at, <u8>status, AT_STATUS); }
@inline export function opSetReplan(at: usize, replan: bool): void { store<u8>(at, replan ? 1 : 0, AT_REPLAN); }
@inline export function opSetTarget(at: usize, member: u32): void { store<u8>(at, <u8>member, AT_TARGET); }
@inline export function opSetStep(at: usize, step: u32): void { store<u8>(at, <u8>step, AT_STEP); }
@inline export function opSetColumn(at: usize, m: u32, column: u32): void { store<u16>(at + AT_COLUMNS + <usize>m * 2, <u16>column); }
@inline export function opSetRLo(at: usize, lo: u32): void { store<u32>(at, lo, AT_R_LO); }
@inline export function opSetRHi(at: usize, hi: u32): void { store<u32>(at, hi, AT_R_HI); }
@inline export function opSetDLo(at: usize, lo: u32): void { store<u32>(at, lo, AT_D_LO); }
@inline export function opSetDHi(at: usize, hi: u32): void { store<u32>(at, hi, AT_D_HI); }
