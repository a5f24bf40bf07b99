// A trace line's UTF-8 bytes written straight into a buffer (host/sim/trace.ts): what `TextEncoder` makes of the
// line's text, without building the text. A replay hashes millions of lines; building each as a string, then
// encoding it, was about a fifth of its board's thread (docs/replay.md, "Replay's speed"). Each method writes the
// same bytes as the text it names; a full buffer goes to `sink` (the hash), so a line may be cut between two chunks.
// The class refers to nothing outside itself: the trace's hashing thread (trace_thread.ts) runs its source as is.

export class LineBytes {
  private readonly buffer: Uint8Array;
  private at = 0;

  constructor(private readonly sink: (chunk: Uint8Array) => void, bufferBytes = 64 * 1024) {
    this.buffer = new Uint8Array(bufferBytes);
  }

  /** Hands what is buffered to the sink. */
  flush(): void {
    if (this.at === 0) return;
    this.sink(this.buffer.subarray(0, this.at));
    this.at = 0;
  }

  // Room for `bytes` more, flushing when there is not; false when `bytes` is more than the whole buffer holds.
  private room(bytes: number): boolean {
    if (this.at + bytes <= this.buffer.length) return true;
    this.flush();
    return bytes <= this.buffer.length;
  }

  byte(value: number): void {
    if (this.at >= this.buffer.length) this.flush();
    this.buffer[this.at++] = value;
  }

  /** Bytes made by `LineBytes.encode` (a line's fixed parts, kept by the trace): copied in. */
  put(bytes: Uint8Array): void {
    const n = bytes.length;
    if (!this.room(n)) {
      this.sink(bytes);
      return;
    }
    const buffer = this.buffer;
    let at = this.at;
    for (let i = 0; i < n; i++) buffer[at++] = bytes[i]!;
    this.at = at;
  }

  /** What raw(text) writes, as bytes to put() later. */
  static encode(text: string): Uint8Array {
    return new TextEncoder().encode(text);
  }

  /** Text known to be ASCII (the line's own punctuation, written by the trace itself). */
  ascii(text: string): void {
    if (!this.room(text.length)) {
      this.sink(new TextEncoder().encode(text));
      return;
    }
    const buffer = this.buffer;
    let at = this.at;
    for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i);
    this.at = at;
  }

  /** Any text as UTF-8, as TextEncoder writes it (a lone surrogate becomes U+FFFD). */
  raw(text: string): void {
    if (!this.room(3 * text.length)) {
      this.sink(new TextEncoder().encode(text));
      return;
    }
    const buffer = this.buffer;
    let at = this.at;
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      if (c < 0x80) {
        buffer[at++] = c;
        continue;
      }
      if (c < 0x800) {
        buffer[at++] = 0xc0 | (c >> 6);
        buffer[at++] = 0x80 | (c & 0x3f);
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          const point = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i += 1;
          buffer[at++] = 0xf0 | (point >> 18);
          buffer[at++] = 0x80 | ((point >> 12) & 0x3f);
          buffer[at++] = 0x80 | ((point >> 6) & 0x3f);
          buffer[at++] = 0x80 | (point & 0x3f);
          continue;
        }
        c = 0xfffd;
      }
      buffer[at++] = 0xe0 | (c >> 12);
      buffer[at++] = 0x80 | ((c >> 6) & 0x3f);
      buffer[at++] = 0x80 | (c & 0x3f);
    }
    this.at = at;
  }

  /** String(value): a safe integer's digits written here, anything else (fractions, exponents, NaN) by String. */
  number(value: number): void {
    if (!Number.isSafeInteger(value)) {
      this.raw(String(value));
      return;
    }
    this.room(17);
    const buffer = this.buffer;
    if (value < 0) {
      buffer[this.at++] = 0x2d;
      value = -value;
    }
    if (value < 0x80000000) {
      // 31 bits: integer arithmetic
      let v = value | 0;
      const digits = v < 10 ? 1 : v < 100 ? 2 : v < 1000 ? 3 : v < 10000 ? 4 : v < 100000 ? 5 : v < 1000000 ? 6 : v < 10000000 ? 7 : v < 100000000 ? 8 : v < 1000000000 ? 9 : 10;
      let at = this.at + digits;
      this.at = at;
      do {
        const next = (v / 10) | 0;
        buffer[--at] = 0x30 + v - next * 10;
        v = next;
      } while (v > 0);
      return;
    }
    // Up to 2^53: the digits above the last nine (under 2^31), then those nine, zero-padded; integer arithmetic.
    const high = Math.floor(value / 1e9);
    this.number(high);
    let low = (value - high * 1e9) | 0;
    let at = this.at + 9;
    this.at = at;
    for (let i = 0; i < 9; i++) {
      const next = (low / 10) | 0;
      buffer[--at] = 0x30 + low - next * 10;
      low = next;
    }
  }

  /** JSON.stringify(value) of a string: quoted as it is when nothing in it needs escaping, else by JSON.stringify. */
  json(value: string): void {
    if (this.room(value.length + 2)) {
      const buffer = this.buffer;
      const start = this.at;
      let at = start;
      buffer[at++] = 0x22;
      let i = 0;
      for (; i < value.length; i++) {
        const c = value.charCodeAt(i);
        if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) break;
        buffer[at++] = c;
      }
      if (i === value.length) {
        buffer[at++] = 0x22;
        this.at = at;
        return;
      }
    }
    this.raw(JSON.stringify(value));
  }

  /** A bigint as the trace writes it: `"0x` and its hex digits`"` (negative: `"0x-...`, as toString(16) gives). */
  bigHex(value: bigint): void {
    this.ascii(`"0x${value.toString(16)}"`);
  }
}
