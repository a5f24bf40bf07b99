// Every limit of the XOR task (assembly/xor/xor.ts), and the sums that size its tables.
import { XOR_BYTE_COUNT_MAX } from "./descriptor";

export const XOR_REQUESTS_MAX: u32 = 16; // requests held at once, each with its own descriptor; more answer Busy
export const XOR_REQUEST_BYTES_MAX: u32 = 64 * 1024; // a segment's length: one large buffer (RAID chunk)
export const XOR_INBOX_DEPTH: u32 = 64;
// Answers a full requester inbox refused wait here, in order. A requester keeps at most this many requests
// unanswered (as with the DDM's outbox): every held request and a full inbox of Busy answers fit.
export const XOR_OUTBOX_DEPTH: u32 = XOR_REQUESTS_MAX + XOR_INBOX_DEPTH;
export const XOR_PRIORITY: u32 = 4;
export const XOR_BATCH_MAX: u32 = 16; // inbox messages per run
// The software fallback XORs at most this many destination bytes per run: 8 sources of 4 KiB is 36 KiB of memory
// traffic, well inside a run's budget on the slowest core we model.
export const XOR_SOFTWARE_BYTES_PER_RUN: u32 = 4096;
// A chain of XOR_REQUESTS_MAX descriptors of XOR_REQUEST_BYTES_MAX with 8 sources takes the engine under 5 ms;
// past this it is hung: reset, and the chain's requests answer Fault.
export const XOR_CHAIN_TIMEOUT_NS: u64 = 20_000_000;
// A request whose descriptor the engine left untouched (a chain stopped early, a reset) goes out again this often
// before it answers Fault, so an engine that never does the work cannot keep a request forever.
export const XOR_RESUBMITS_MAX: u32 = 2;

// @ts-ignore: ERROR is an AssemblyScript builtin
if (XOR_REQUEST_BYTES_MAX > XOR_BYTE_COUNT_MAX) ERROR("a request fits one descriptor");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (XOR_REQUESTS_MAX > 255) ERROR("request indexes are u8 in the queue");
