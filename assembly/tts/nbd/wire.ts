// The NBD protocol's numbers and wire layouts (NetworkBlockDevice/nbd doc/proto.md), big-endian, read and written
// through named accessors. Numbers only here, and the headers' builders: the server (server.ts) decides what to send.

// "Newstyle negotiation": the server's greeting, |0 NBDMAGIC u64|8 IHAVEOPT u64|16 handshake flags u16|.
export const NBD_MAGIC: u64 = 0x4e42444d41474943; // "NBDMAGIC"
export const NBD_OPTS_MAGIC: u64 = 0x49484156454f5054; // "IHAVEOPT"
export const GREETING_BYTES: u32 = 18;
export const NBD_FLAG_FIXED_NEWSTYLE: u32 = 1 << 0;
export const NBD_FLAG_NO_ZEROES: u32 = 1 << 1;
// The client's flags, u32, after the greeting.
export const CLIENT_FLAGS_BYTES: u32 = 4;
export const NBD_FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES: u32 = 1 << 1;

// An option: |0 IHAVEOPT u64|8 option u32|12 length u32|16 data|.
export const OPTION_HEADER_BYTES: u32 = 16;
export const NBD_OPT_EXPORT_NAME: u32 = 1;
export const NBD_OPT_ABORT: u32 = 2;
export const NBD_OPT_LIST: u32 = 3;
export const NBD_OPT_STARTTLS: u32 = 5;
export const NBD_OPT_INFO: u32 = 6;
export const NBD_OPT_GO: u32 = 7;
export const NBD_OPT_STRUCTURED_REPLY: u32 = 8;
export const NBD_OPT_LIST_META_CONTEXT: u32 = 9;
export const NBD_OPT_SET_META_CONTEXT: u32 = 10;

// An option reply: |0 magic u64|8 option u32|12 reply type u32|16 length u32|20 data|.
export const NBD_REP_MAGIC: u64 = 0x0003e889045565a9;
export const OPTION_REPLY_HEADER_BYTES: u32 = 20;
export const NBD_REP_ACK: u32 = 1;
export const NBD_REP_SERVER: u32 = 2;
export const NBD_REP_INFO: u32 = 3;
export const NBD_REP_META_CONTEXT: u32 = 4;
export const NBD_REP_ERR_UNSUP: u32 = 0x8000_0001;
export const NBD_REP_ERR_POLICY: u32 = 0x8000_0002;
export const NBD_REP_ERR_INVALID: u32 = 0x8000_0003;
export const NBD_REP_ERR_UNKNOWN: u32 = 0x8000_0006;
export const NBD_REP_ERR_TOO_BIG: u32 = 0x8000_0009;

// NBD_REP_INFO payloads: |0 type u16|…|.
export const NBD_INFO_EXPORT: u32 = 0; // |2 size u64|10 transmission flags u16|
export const NBD_INFO_NAME: u32 = 1;
export const NBD_INFO_DESCRIPTION: u32 = 2;
export const NBD_INFO_BLOCK_SIZE: u32 = 3; // |2 minimum u32|6 preferred u32|10 maximum u32|
// NBD_OPT_EXPORT_NAME's answer: |0 size u64|8 transmission flags u16|10 124 zero bytes unless NO_ZEROES|.
export const EXPORT_NAME_REPLY_BYTES: u32 = 10;
export const EXPORT_NAME_ZEROES_BYTES: u32 = 124;

// Transmission flags.
export const NBD_FLAG_HAS_FLAGS: u32 = 1 << 0;
export const NBD_FLAG_READ_ONLY: u32 = 1 << 1;
export const NBD_FLAG_SEND_FLUSH: u32 = 1 << 2;
export const NBD_FLAG_SEND_FUA: u32 = 1 << 3;
export const NBD_FLAG_SEND_TRIM: u32 = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES: u32 = 1 << 6;
export const NBD_FLAG_SEND_DF: u32 = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN: u32 = 1 << 8;
export const NBD_FLAG_SEND_CACHE: u32 = 1 << 10;

// A request: |0 magic u32|4 command flags u16|6 type u16|8 cookie u64|16 offset u64|24 length u32|28 payload|.
export const NBD_REQUEST_MAGIC: u32 = 0x25609513;
export const REQUEST_BYTES: u32 = 28;
export const NBD_CMD_READ: u32 = 0;
export const NBD_CMD_WRITE: u32 = 1;
export const NBD_CMD_DISC: u32 = 2;
export const NBD_CMD_FLUSH: u32 = 3;
export const NBD_CMD_TRIM: u32 = 4;
export const NBD_CMD_CACHE: u32 = 5;
export const NBD_CMD_WRITE_ZEROES: u32 = 6;
export const NBD_CMD_BLOCK_STATUS: u32 = 7;
export const NBD_CMD_FLAG_FUA: u32 = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE: u32 = 1 << 1;
export const NBD_CMD_FLAG_DF: u32 = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE: u32 = 1 << 3;

// A simple reply: |0 magic u32|4 error u32|8 cookie u64|16 data|.
export const NBD_SIMPLE_REPLY_MAGIC: u32 = 0x67446698;
export const SIMPLE_REPLY_BYTES: u32 = 16;
// A structured reply chunk: |0 magic u32|4 flags u16|6 type u16|8 cookie u64|16 length u32|20 payload|.
export const NBD_STRUCTURED_REPLY_MAGIC: u32 = 0x668e33ef;
export const CHUNK_HEADER_BYTES: u32 = 20;
export const NBD_REPLY_FLAG_DONE: u32 = 1 << 0;
export const NBD_REPLY_TYPE_NONE: u32 = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA: u32 = 1; // |20 offset u64|28 data|
export const NBD_REPLY_TYPE_BLOCK_STATUS: u32 = 5; // |20 context id u32|24 extents: |length u32|flags u32||
export const NBD_REPLY_TYPE_ERROR: u32 = 0x8001; // |20 error u32|24 message length u16|26 message|
export const NBD_STATE_HOLE: u32 = 1 << 0;
export const NBD_STATE_ZERO: u32 = 1 << 1;

// Error numbers (proto.md, "Error values"): the protocol's own, whatever the server's platform uses.
export const NBD_EPERM: u32 = 1;
export const NBD_EIO: u32 = 5;
export const NBD_ENOMEM: u32 = 12;
export const NBD_EINVAL: u32 = 22;
export const NBD_ENOSPC: u32 = 28;
export const NBD_EOVERFLOW: u32 = 75;
export const NBD_ENOTSUP: u32 = 95;
export const NBD_ESHUTDOWN: u32 = 108;

// The one metadata context this server knows, and its id on every connection.
export const META_BASE_ALLOCATION: string = "base:allocation";
export const META_BASE_ALLOCATION_ID: u32 = 1;

// ---- accessors ----

@inline export function be16(at: usize): u32 { return <u32>bswap<u16>(load<u16>(at)); }
@inline export function be32(at: usize): u32 { return bswap<u32>(load<u32>(at)); }
@inline export function be64(at: usize): u64 { return bswap<u64>(load<u64>(at)); }
@inline export function putBe16(at: usize, value: u32): void { store<u16>(at, bswap<u16>(<u16>value)); }
@inline export function putBe32(at: usize, value: u32): void { store<u32>(at, bswap<u32>(value)); }
@inline export function putBe64(at: usize, value: u64): void { store<u64>(at, bswap<u64>(value)); }

@inline export function optionMagic(header: usize): u64 { return be64(header); }
@inline export function optionType(header: usize): u32 { return be32(header + 8); }
@inline export function optionLength(header: usize): u32 { return be32(header + 12); }

@inline export function requestMagic(header: usize): u32 { return be32(header); }
@inline export function requestFlags(header: usize): u32 { return be16(header + 4); }
@inline export function requestType(header: usize): u32 { return be16(header + 6); }
@inline export function requestCookie(header: usize): u64 { return be64(header + 8); }
@inline export function requestOffset(header: usize): u64 { return be64(header + 16); }
@inline export function requestLength(header: usize): u32 { return be32(header + 24); }

/** The greeting, GREETING_BYTES at `at`. */
export function buildGreeting(at: usize): void {
  putBe64(at, NBD_MAGIC);
  putBe64(at + 8, NBD_OPTS_MAGIC);
  putBe16(at + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
}

/** An option reply's header at `at` (its data, `lengthBytes`, follows). */
export function buildOptionReply(at: usize, option: u32, replyType: u32, lengthBytes: u32): void {
  putBe64(at, NBD_REP_MAGIC);
  putBe32(at + 8, option);
  putBe32(at + 12, replyType);
  putBe32(at + 16, lengthBytes);
}

/** A simple reply at `at`. */
export function buildSimpleReply(at: usize, error: u32, cookie: u64): void {
  putBe32(at, NBD_SIMPLE_REPLY_MAGIC);
  putBe32(at + 4, error);
  putBe64(at + 8, cookie);
}

/** A structured reply chunk's header at `at` (its payload, `lengthBytes`, follows). */
export function buildChunk(at: usize, flags: u32, replyType: u32, cookie: u64, lengthBytes: u32): void {
  putBe32(at, NBD_STRUCTURED_REPLY_MAGIC);
  putBe16(at + 4, flags);
  putBe16(at + 6, replyType);
  putBe64(at + 8, cookie);
  putBe32(at + 16, lengthBytes);
}
