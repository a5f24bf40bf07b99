// The message frame: one 128-byte format for every agent-to-agent call (UMA, CTA, RTA), the same whether the peer is
// on this processor or across the bus (then it travels through a messaging unit). Little-endian.
// |0 version u8|1 flags u8|2 function u8|3 status u8|4 source u16|6 target u16|8 connection u32|12 transaction u32|
// |16 ack u32|20 attempt u8|21 segmentCount u8|22 disk u16|24 blockCount u32|28 reserved u32|32 lba u64|
// |40 bytes u64|48 segment[0..4]: |0 address u64|8 lengthBytes u32|12 reserved u32||
// Agent addresses: processor index << 8 | AgentKind. Data is described by segments in the requester's bus addresses.
// Read and written only through the accessors below (StartAgent's reply, the device profile, through profile.ts).

export const FRAME_BYTES: u32 = 128;
export const FRAME_VERSION: u8 = 1;
export const FRAME_SEGMENTS_MAX: u32 = 5;
export const FRAME_ADDRESS_NONE: u32 = 0xffff_ffff; // an empty messaging-unit queue port

// The fields' offsets, exported for test/unit/fabric/shared_constants.test.ts: the fuzz targets' hostile peers forge
// frames with tools/fuzz/message_frame.ts, which must agree name for name. Agents use the accessors below.
export const FRAME_AT_VERSION: usize = 0;
export const FRAME_AT_FLAGS: usize = 1;
export const FRAME_AT_FUNCTION: usize = 2;
export const FRAME_AT_STATUS: usize = 3;
export const FRAME_AT_SOURCE: usize = 4;
export const FRAME_AT_TARGET: usize = 6;
export const FRAME_AT_CONNECTION: usize = 8;
export const FRAME_AT_TRANSACTION: usize = 12;
export const FRAME_AT_ACK: usize = 16;
export const FRAME_AT_ATTEMPT: usize = 20;
export const FRAME_AT_SEGMENT_COUNT: usize = 21;
export const FRAME_AT_DISK: usize = 22;
export const FRAME_AT_BLOCK_COUNT: usize = 24; // the device profile puts its disk count here (profile.ts)
export const FRAME_AT_LBA: usize = 32;
export const FRAME_AT_BYTES: usize = 40;
export const FRAME_AT_SEGMENTS: usize = 48;
export const FRAME_SEGMENT_BYTES: u32 = 16;
export const FRAME_SEGMENT_AT_ADDRESS: usize = 0;
export const FRAME_SEGMENT_AT_LENGTH: usize = 8;
if (FRAME_AT_SEGMENTS + FRAME_SEGMENTS_MAX * FRAME_SEGMENT_BYTES != FRAME_BYTES) ERROR("frame: the last segment ends the frame");
@inline function segmentAt(f: usize, i: u32): usize { return f + FRAME_AT_SEGMENTS + <usize>i * FRAME_SEGMENT_BYTES; }

export enum AgentKind {
  Uma = 1,
  Cta = 2,
  Rta = 3,
}

export enum FrameFunction {
  StartAgent = 1, // UMA → RTA: start serving; bytes: the size of the requester's RAM, where every segment of its
  // requests must lie; reply: the device profile (Profile layout below)
  Read = 3, // CTA → RTA: read blockCount blocks at lba of disk into the segments
  Write = 4, // CTA → RTA: write the segments' bytes to blockCount blocks at lba
  WriteFua = 5, // as Write, on the medium before the reply
  Flush = 6, // CTA → RTA: flush disk's caches
  Unmap = 7, // CTA → RTA: deallocate blockCount blocks at lba
  LbaStatus = 8, // requester → CTA only, never in a frame: is lba mapped, and for how many blocks (cta/thin.ts)
}

export const FRAME_FLAG_REPLY: u8 = 1;

export enum FrameStatus {
  Ok = 0,
  MediumError = 1,
  IllegalRequest = 2,
  DeviceError = 3,
  Timeout = 4,
  Busy = 5,
  Aborted = 6,
  NoDisk = 7,
  BadFrame = 8, // the receiver could not parse the frame
  NotStarted = 9, // the RTA has not been started by the UMA yet
  SpaceAllocFailed = 10, // CTA → requester: a thin volume's pool has no free chunk for the write
  DiskChanged = 11, // RTA → CTA: the disk powered on since its last command (inserted in a pulled one's place?)
  Unreachable = 12, // CTA → SCSI target: the board that owns the pages has no fabric link from this one
}

@inline export function frameVersion(f: usize): u8 { return load<u8>(f, FRAME_AT_VERSION); }
@inline export function frameFlags(f: usize): u8 { return load<u8>(f, FRAME_AT_FLAGS); }
@inline export function frameFunction(f: usize): u32 { return load<u8>(f, FRAME_AT_FUNCTION); }
@inline export function frameStatus(f: usize): u32 { return load<u8>(f, FRAME_AT_STATUS); }
@inline export function frameSource(f: usize): u32 { return load<u16>(f, FRAME_AT_SOURCE); }
@inline export function frameTarget(f: usize): u32 { return load<u16>(f, FRAME_AT_TARGET); }
@inline export function frameConnection(f: usize): u32 { return load<u32>(f, FRAME_AT_CONNECTION); }
@inline export function frameTransaction(f: usize): u32 { return load<u32>(f, FRAME_AT_TRANSACTION); }
@inline export function frameAck(f: usize): u32 { return load<u32>(f, FRAME_AT_ACK); }
@inline export function frameAttempt(f: usize): u32 { return load<u8>(f, FRAME_AT_ATTEMPT); }
@inline export function frameSegmentCount(f: usize): u32 { return load<u8>(f, FRAME_AT_SEGMENT_COUNT); }
@inline export function frameDisk(f: usize): u32 { return load<u16>(f, FRAME_AT_DISK); }
@inline export function frameBlockCount(f: usize): u32 { return load<u32>(f, FRAME_AT_BLOCK_COUNT); }
@inline export function frameLba(f: usize): u64 { return load<u64>(f, FRAME_AT_LBA); }
@inline export function frameBytes(f: usize): u64 { return load<u64>(f, FRAME_AT_BYTES); }
@inline export function frameSegmentAddress(f: usize, i: u32): u64 { return load<u64>(segmentAt(f, i), FRAME_SEGMENT_AT_ADDRESS); }
@inline export function frameSegmentLength(f: usize, i: u32): u32 { return load<u32>(segmentAt(f, i), FRAME_SEGMENT_AT_LENGTH); }

@inline export function frameIsReply(f: usize): bool { return (frameFlags(f) & FRAME_FLAG_REPLY) != 0; }

/** Starts a frame: zeroes it and writes the header. */
export function frameInit(f: usize, fn: FrameFunction, source: u32, target: u32, connection: u32, transaction: u32): void {
  memory.fill(f, 0, FRAME_BYTES);
  store<u8>(f, FRAME_VERSION, FRAME_AT_VERSION);
  store<u8>(f, <u8>fn, FRAME_AT_FUNCTION);
  store<u16>(f, <u16>source, FRAME_AT_SOURCE);
  store<u16>(f, <u16>target, FRAME_AT_TARGET);
  store<u32>(f, connection, FRAME_AT_CONNECTION);
  store<u32>(f, transaction, FRAME_AT_TRANSACTION);
}

@inline export function frameSetStatus(f: usize, status: FrameStatus): void { store<u8>(f, <u8>status, FRAME_AT_STATUS); }
@inline export function frameSetReply(f: usize): void { store<u8>(f, frameFlags(f) | FRAME_FLAG_REPLY, FRAME_AT_FLAGS); }
@inline export function frameSetTransaction(f: usize, transaction: u32): void { store<u32>(f, transaction, FRAME_AT_TRANSACTION); }
@inline export function frameSetAck(f: usize, ack: u32): void { store<u32>(f, ack, FRAME_AT_ACK); }
@inline export function frameSetAttempt(f: usize, attempt: u32): void { store<u8>(f, <u8>attempt, FRAME_AT_ATTEMPT); }
@inline export function frameSetBlocks(f: usize, disk: u32, lba: u64, blockCount: u32): void {
  store<u16>(f, <u16>disk, FRAME_AT_DISK);
  store<u64>(f, lba, FRAME_AT_LBA);
  store<u32>(f, blockCount, FRAME_AT_BLOCK_COUNT);
}
@inline export function frameSetBytes(f: usize, bytes: u64): void { store<u64>(f, bytes, FRAME_AT_BYTES); }

/** Appends a data segment; false when the frame already holds FRAME_SEGMENTS_MAX. */
export function frameAddSegment(f: usize, address: u64, lengthBytes: u32): bool {
  const count = frameSegmentCount(f);
  if (count >= FRAME_SEGMENTS_MAX) return false;
  store<u64>(segmentAt(f, count), address, FRAME_SEGMENT_AT_ADDRESS);
  store<u32>(segmentAt(f, count), lengthBytes, FRAME_SEGMENT_AT_LENGTH);
  store<u8>(f, <u8>(count + 1), FRAME_AT_SEGMENT_COUNT);
  return true;
}

/** Checks what a receiver must not trust: version, segment count. Returns BadFrame or Ok. */
export function frameValidate(f: usize): FrameStatus {
  if (frameVersion(f) != FRAME_VERSION) return FrameStatus.BadFrame;
  if (frameSegmentCount(f) > FRAME_SEGMENTS_MAX) return FrameStatus.BadFrame;
  return FrameStatus.Ok;
}

@inline export function agentAddress(processor: u32, kind: AgentKind): u32 { return (processor << 8) | <u32>kind; }
@inline export function agentProcessor(address: u32): u32 { return address >> 8; }
@inline export function agentKind(address: u32): u32 { return address & 0xff; }
