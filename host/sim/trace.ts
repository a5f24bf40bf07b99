// The bus-transaction trace: every bus access, interrupt, DMA, clock and random read, console line and run call,
// as one JSON object per line. Same board, inputs and seed give byte-identical lines, so the SHA-256 of the lines
// is the run's fingerprint (DESIGN-NOTES §4). Recording is optional; hashing is what tests compare.
import { createHash, type Hash } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";

export type TraceValue = number | bigint | string;

const PENDING_CHARS_MAX = 64 * 1024;

export interface TraceOptions {
  /** Write the lines to this file as JSON lines. */
  path?: string;
  /** Keep the lines in memory (tests, replay); off by default. */
  keepLines?: boolean;
  /** Compute the hash (on by default). A board serving real clients turns the whole trace off instead. */
  enabled?: boolean;
}

export class Trace {
  readonly enabled: boolean;
  private readonly hash: Hash = createHash("sha256");
  private readonly out: WriteStream | undefined;
  readonly lines: string[] | undefined;
  count = 0;
  // Lines not yet hashed (or written): one hash update per PENDING_CHARS_MAX instead of one per line is most of
  // what a trace costs to keep (a replay hashes a million lines for a few seconds of a busy session).
  private pending = "";

  constructor(options: TraceOptions = {}) {
    this.enabled = options.enabled ?? true;
    this.out = this.enabled && options.path !== undefined ? createWriteStream(options.path) : undefined;
    this.lines = options.keepLines === true ? [] : undefined;
  }

  /** Records one event at board time `timeNs` on processor or device `source`. */
  record(timeNs: number, source: string, event: string, fields: Record<string, TraceValue> = {}): void {
    if (!this.enabled) return;
    let text = `{"seq":${this.count},"t":${timeNs},"src":"${source}","ev":"${event}"`;
    for (const key in fields) text += `,"${key}":${encode(fields[key]!)}`;
    text += "}\n";
    this.count += 1;
    this.pending += text;
    if (this.pending.length >= PENDING_CHARS_MAX) this.flushPending();
    this.lines?.push(text);
  }

  private flushPending(): void {
    this.hash.update(this.pending);
    this.out?.write(this.pending);
    this.pending = "";
  }

  /** The SHA-256 of every line so far, in hex. */
  digest(): string {
    this.flushPending();
    return this.hash.copy().digest("hex");
  }

  async close(): Promise<void> {
    this.flushPending();
    const out = this.out;
    if (out === undefined) return;
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }
}

/** Bus addresses and values as hex strings, so 64-bit values survive JSON. */
export function hex(value: number | bigint): string {
  return "0x" + value.toString(16);
}

function encode(value: TraceValue): string {
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value === "bigint" ? `"${hex(value)}"` : String(value);
}
