// The message frame (assembly/board/frame.ts), as the fuzz targets' hostile peers forge and read it: a processor's
// or a board's agent-to-agent call, 128 bytes, little-endian.
// |0 version u8|1 flags u8|2 function u8|3 status u8|4 source u16|6 target u16|8 connection u32|12 transaction u32|
// |16 ack u32|20 attempt u8|21 segmentCount u8|22 disk u16|24 blockCount u32|28 reserved u32|32 lba u64|
// |40 bytes u64|48 segment[0..4]: |0 address u64|8 lengthBytes u32|12 reserved u32||
// The firmware cannot import this file, so test/unit/fabric/shared_constants.test.ts reads the firmware's constants
// from its source and checks that every one below agrees, name for name.
export const FRAME_BYTES = 128;
export const FRAME_VERSION = 1;
export const FRAME_SEGMENTS_MAX = 5;
export const FRAME_ADDRESS_NONE = 0xffff_ffff; // an empty messaging-unit queue port
export const FRAME_FLAG_REPLY = 1;

export const FRAME_AT_VERSION = 0;
export const FRAME_AT_FLAGS = 1;
export const FRAME_AT_FUNCTION = 2;
export const FRAME_AT_STATUS = 3;
export const FRAME_AT_SOURCE = 4;
export const FRAME_AT_TARGET = 6;
export const FRAME_AT_CONNECTION = 8;
export const FRAME_AT_TRANSACTION = 12;
export const FRAME_AT_ACK = 16;
export const FRAME_AT_ATTEMPT = 20;
export const FRAME_AT_SEGMENT_COUNT = 21;
export const FRAME_AT_DISK = 22;
export const FRAME_AT_BLOCK_COUNT = 24;
export const FRAME_AT_LBA = 32;
export const FRAME_AT_BYTES = 40;
export const FRAME_AT_SEGMENTS = 48;
export const FRAME_SEGMENT_BYTES = 16;
export const FRAME_SEGMENT_AT_ADDRESS = 0;
export const FRAME_SEGMENT_AT_LENGTH = 8;

export const AgentKind = { Uma: 1, Cta: 2, Rta: 3 } as const;
export const FrameFunction = { StartAgent: 1, Read: 3, Write: 4, WriteFua: 5, Flush: 6, Unmap: 7, LbaStatus: 8 } as const;
export const FrameStatus = {
  Ok: 0, MediumError: 1, IllegalRequest: 2, DeviceError: 3, Timeout: 4, Busy: 5, Aborted: 6, NoDisk: 7, BadFrame: 8,
  NotStarted: 9, SpaceAllocFailed: 10, DiskChanged: 11, Unreachable: 12,
} as const;

/** An agent's address: processor index << 8 | AgentKind. */
export function agentAddress(processor: number, kind: number): number {
  return ((processor & 0xff) << 8) | kind;
}

/** The offset of segment `index` in the frame. */
export function frameSegmentAt(index: number): number {
  return FRAME_AT_SEGMENTS + index * FRAME_SEGMENT_BYTES;
}
