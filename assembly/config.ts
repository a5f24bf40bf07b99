// Every limit of the firmware, and the sums that size its pools. Pools are carved once, in boot(), from these.

// Kernel.
export const TASKS_MAX: u32 = 20; // fits the u32 ready and waiter masks; the test image adds its probes to a cluster board's
export const PRIORITY_LOWEST: u32 = 7; // 0 is the highest priority
export const RUN_BATCH_MAX: u32 = 16; // messages a task handles per dispatch
export const TIMERS_MAX: u32 = 32;
export const VECTORS_MAX: u32 = 64; // MSI-X vectors the processor takes
export const MSG_BYTES: u32 = 32; // one kernel message record, copied by value
export const INBOX_DEPTH_DEFAULT: u32 = 64;

// Watchdog: a dispatch longer than its task's budget is reported; one longer than this stops the processor.
export const TASK_BUDGET_NS_DEFAULT: u64 = 100_000; // 100 us of board time
export const WATCHDOG_FATAL_NS: u64 = 100_000_000; // 100 ms of board time without yielding

// Data buffers: three size classes. A request too big for one buffer takes several and an SGL over them.
export const BUFFER_CLASS_COUNT: u32 = 3;
export const BUFFER_CLASS_SMALL: u32 = 0; // headers, sense data, PDUs without data
export const BUFFER_CLASS_PAGE: u32 = 1; // one 4 KiB block, the common I/O
export const BUFFER_CLASS_LARGE: u32 = 2; // bursts
export const BUFFER_SMALL_BYTES: u32 = 512;
export const BUFFER_PAGE_BYTES: u32 = 4096;
export const BUFFER_LARGE_BYTES: u32 = 65536;
export const POOL_SLOTS_MAX: u32 = 16384; // indexes are u16; 0xFFFF is POOL_NONE
// Shares of the buffer budget, in sixteenths: small 1, page 5, large 10.
export const BUFFER_RAM_SHARE_DIVISOR: u64 = 2; // half of RAM holds data buffers

// Scatter-gather lists: fixed-size blocks, chained for longer lists.
export const SGL_SEGMENTS_PER_BLOCK: u32 = 8;
export const SGL_BLOCK_HEADER_BYTES: u32 = 32;
export const SGL_SEGMENT_BYTES: u32 = 16; // |0 address u64|8 lengthBytes u32|12 flags u32|
export const SGL_BLOCK_BYTES: u32 = SGL_BLOCK_HEADER_BYTES + SGL_SEGMENTS_PER_BLOCK * SGL_SEGMENT_BYTES;
export const SGL_BLOCKS_PER_RAM_BYTES: u64 = 16384; // one SGL block per 16 KiB of RAM

// Health checks run this often.
export const HEALTH_PERIOD_NS: u64 = 1_000_000_000;

export function bufferClassBytes(bufferClass: u32): u32 {
  assert(bufferClass < BUFFER_CLASS_COUNT);
  return bufferClass == BUFFER_CLASS_SMALL ? BUFFER_SMALL_BYTES
    : bufferClass == BUFFER_CLASS_PAGE ? BUFFER_PAGE_BYTES : BUFFER_LARGE_BYTES;
}

/** How many buffers of a class a processor with `ramBytes` of RAM carves. */
export function bufferClassCount(bufferClass: u32, ramBytes: u64): u32 {
  const budgetBytes = ramBytes / BUFFER_RAM_SHARE_DIVISOR;
  const sixteenths: u64 = bufferClass == BUFFER_CLASS_SMALL ? 1 : bufferClass == BUFFER_CLASS_PAGE ? 5 : 10;
  const count = budgetBytes * sixteenths / 16 / <u64>bufferClassBytes(bufferClass);
  return <u32>min(max(count, 1), <u64>POOL_SLOTS_MAX);
}

export function sglBlockCount(ramBytes: u64): u32 {
  return <u32>min(max(ramBytes / SGL_BLOCKS_PER_RAM_BYTES, 16), <u64>POOL_SLOTS_MAX);
}

// Compile-time checks: these fail the build, not the run.
// @ts-ignore: ERROR is an AssemblyScript builtin
if (BUFFER_PAGE_BYTES % 512 != 0) ERROR("buffers hold whole 512-byte blocks");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (TASKS_MAX > 32) ERROR("task masks are u32");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (SGL_BLOCK_BYTES % 16 != 0) ERROR("SGL blocks stay 16-byte aligned");

// Identity.
export const ABI_VERSION: u32 = 2; // docs/board-abi.md; host/abi/board_imports.ts has the same, checked by test/unit/abi
export const FIRMWARE_VERSION: string = "0.1.0"; // kept equal to package.json's version by a test
