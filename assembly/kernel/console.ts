// Console lines built in a static buffer: logging never allocates, so it is safe after boot.
// Usage: line().s("ram ").u64(n).s(" bytes").out();  A line longer than the buffer is cut, never overrun.
import { consoleWrite, FD_STDERR, FD_STDOUT } from "../board/wasi";

const LINE_BYTES_MAX: u32 = 240;
const DIGITS_MAX: u32 = 20; // u64 in decimal

export class ConsoleLine {
  private readonly buf: usize = memory.data(LINE_BYTES_MAX + 1);
  private lengthBytes: u32 = 0;

  begin(): ConsoleLine { this.lengthBytes = 0; return this; }

  /** Appends an ASCII string; other code points become '?'. */
  s(text: string): ConsoleLine {
    const count = <u32>text.length;
    for (let i: u32 = 0; i < count; i++) {
      const code = text.charCodeAt(i);
      this.byte(code < 0x80 ? <u8>code : 0x3f);
    }
    return this;
  }

  /** Appends the NUL-terminated bytes at `ptr`, at most `maxBytes` of them. */
  bytes(ptr: usize, maxBytes: u32): ConsoleLine {
    for (let i: u32 = 0; i < maxBytes; i++) {
      const b = load<u8>(ptr + i);
      if (b == 0) break;
      this.byte(b);
    }
    return this;
  }

  u32(value: u32): ConsoleLine { return this.u64(<u64>value); }

  u64(value: u64): ConsoleLine {
    const digits = memory.data(DIGITS_MAX);
    let count: u32 = 0;
    do {
      store<u8>(digits + count, <u8>(0x30 + value % 10));
      value /= 10;
      count += 1;
    } while (value != 0 && count < DIGITS_MAX);
    while (count > 0) { count -= 1; this.byte(load<u8>(digits + count)); }
    return this;
  }

  hex(value: u64, digitCount: u32 = 8): ConsoleLine {
    assert(digitCount >= 1 && digitCount <= 16);
    this.s("0x");
    for (let i: i32 = <i32>digitCount - 1; i >= 0; i--) {
      const nibble = <u32>((value >> (<u64>i * 4)) & 0xf);
      this.byte(<u8>(nibble < 10 ? 0x30 + nibble : 0x57 + nibble));
    }
    return this;
  }

  /** Appends a newline and writes the line to stdout. */
  out(): void { this.flush(FD_STDOUT); }

  /** Appends a newline and writes the line to stderr. */
  err(): void { this.flush(FD_STDERR); }

  private flush(fd: u32): void {
    store<u8>(this.buf + this.lengthBytes, 0x0a);
    consoleWrite(fd, this.buf, this.lengthBytes + 1);
    this.lengthBytes = 0;
  }

  @inline private byte(b: u8): void {
    if (this.lengthBytes < LINE_BYTES_MAX) {
      store<u8>(this.buf + this.lengthBytes, b);
      this.lengthBytes += 1;
    }
  }
}

const theLine = new ConsoleLine();

/** The one console line; begin a new one with every call. Not re-entrant: finish a line before starting another. */
export function line(): ConsoleLine { return theLine.begin(); }
