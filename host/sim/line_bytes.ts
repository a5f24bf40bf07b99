// A trace line's UTF-8 bytes written straight into a buffer (host/sim/trace.ts): what `TextEncoder` makes of the
// line's text, without building the text. A replay hashes millions of lines; building each as a string, then
// encoding it, was about a fifth of its board's thread (docs/replay.md, "Replay's speed"). Each method writes the
// same bytes as the text it names; a full buffer goes to `sink` (the hash), so a line may be cut between two chunks.

const BUFFER_BYTES = 64 * 1024;

// A number's digits kept to be written again (see counter() and repeat()): right-aligned in DIGITS_BYTES.
const DIGITS_BYTES = 24;

export class LineBytes {
  private readonly buffer = new Uint8Array(BUFFER_BYTES);
  private at = 0;
  // The last counter() value's digits, and the last repeat() value's: a trace writes its line number (one more each
  // line) and board time (the same for many lines in a row) on every line, and formatting them was the largest part
  // of number()'s cost.
  private readonly counterDigits = new Uint8Array(DIGITS_BYTES);
  private counterLength = 0;
  private counterValue = -2;
  private readonly repeatDigits = new Uint8Array(DIGITS_BYTES);
  private repeatLength = 0;
  private repeatValue = -1;

  constructor(private readonly sink: (chunk: Uint8Array) => void) {}

  /** Hands what is buffered to the sink. */
  flush(): void {
    if (this.at === 0) return;
    this.sink(this.buffer.subarray(0, this.at));
    this.at = 0;
  }

  // Room for `bytes` more, flushing when there is not; false when `bytes` is more than the whole buffer holds.
  private room(bytes: number): boolean {
    if (this.at + bytes <= BUFFER_BYTES) return true;
    this.flush();
    return bytes <= BUFFER_BYTES;
  }

  byte(value: number): void {
    if (this.at >= BUFFER_BYTES) this.flush();
    this.buffer[this.at++] = value;
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

  /** number(value) for a value usually one more than the last one given here (a line number): its digits counted up. */
  counter(value: number): void {
    const digits = this.counterDigits;
    if (value !== this.counterValue + 1 || value <= 0 || value > Number.MAX_SAFE_INTEGER) {
      this.counterLength = this.formatKept(value, digits);
      this.counterValue = this.counterLength > 0 ? value : -2; // -2: the next value takes this path again
      return;
    }
    // One more, in decimal: nines become zeros up to the first digit that is not a nine.
    let i = DIGITS_BYTES - 1;
    for (; i >= DIGITS_BYTES - this.counterLength && digits[i] === 0x39; i--) digits[i] = 0x30;
    if (i >= DIGITS_BYTES - this.counterLength) digits[i]! += 1;
    else {
      digits[i] = 0x31;
      this.counterLength += 1;
    }
    this.counterValue = value;
    this.copyDigits(digits, this.counterLength);
  }

  /** number(value) for a value often the same as the last one given here (a board time): its digits kept. */
  repeat(value: number): void {
    if (value === this.repeatValue) {
      this.copyDigits(this.repeatDigits, this.repeatLength);
      return;
    }
    this.repeatLength = this.formatKept(value, this.repeatDigits);
    this.repeatValue = this.repeatLength > 0 ? value : -1; // -1: never matched (a value kept is >= 0)
  }

  // number(value) written here, and its digits kept right-aligned in `into`; 0 (nothing kept) unless it is a safe
  // integer >= 0 (written in one piece: the room is made first, so number() does not flush inside it).
  private formatKept(value: number, into: Uint8Array): number {
    this.room(DIGITS_BYTES);
    const start = this.at;
    this.number(value);
    const length = this.at - start;
    if (!Number.isSafeInteger(value) || value < 0 || length <= 0 || length > DIGITS_BYTES) return 0;
    into.set(this.buffer.subarray(start, this.at), DIGITS_BYTES - length);
    return length;
  }

  private copyDigits(digits: Uint8Array, length: number): void {
    this.room(length);
    const buffer = this.buffer;
    let at = this.at;
    for (let i = DIGITS_BYTES - length; i < DIGITS_BYTES; i++) buffer[at++] = digits[i]!;
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
