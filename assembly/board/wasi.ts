// WASI preview1, only what the board ABI takes from it: console, board clock, random, exit (docs/board-abi.md).

@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, iovsLength: u32, writtenPtr: usize): u16;
@external("wasi_snapshot_preview1", "clock_time_get")
declare function clock_time_get(clockId: u32, precision: u64, timePtr: usize): u16;
@external("wasi_snapshot_preview1", "random_get")
declare function random_get(buf: usize, lengthBytes: u32): u16;
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: u32): void;

const CLOCK_MONOTONIC: u32 = 1;
export const FD_STDOUT: u32 = 1;
export const FD_STDERR: u32 = 2;

// Scratch for the calls' out-parameters and the one iovec: static, so a call never allocates.
const scratch: usize = memory.data(16, 8); // |0 iov.buf|4 iov.len|8 u64 result|

/** The board clock in ns. */
export function clockNowNs(): u64 {
  const errno = clock_time_get(CLOCK_MONOTONIC, 1, scratch + 8);
  assert(errno == 0, "board clock unreadable");
  return load<u64>(scratch, 8);
}

/** Writes `lengthBytes` bytes at `buf` to the console stream `fd`. The console never blocks; a short write is lost. */
export function consoleWrite(fd: u32, buf: usize, lengthBytes: u32): void {
  store<u32>(scratch, <u32>buf, 0);
  store<u32>(scratch, lengthBytes, 4);
  fd_write(fd, scratch, 1, scratch + 8);
}

/** Fills `lengthBytes` at `buf` from the board's random source. */
export function randomFill(buf: usize, lengthBytes: u32): void {
  const errno = random_get(buf, lengthBytes);
  assert(errno == 0, "board random source failed");
}

/** Stops this processor; does not return. */
export function exit(code: u32): void {
  proc_exit(code);
  unreachable();
}
