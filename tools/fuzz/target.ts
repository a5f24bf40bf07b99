// What a fuzzing target is: a board, how to bring it to the snapshot state, and how to run one input on it.
import type { FuzzBoard, FuzzBoardOptions } from "./harness.ts";

/** An input, read as a stream of operations: reads past the end give zeros, and `done` says when to stop. */
export class InputReader {
  private at = 0;
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  u8(): number {
    return this.at < this.bytes.length ? this.bytes[this.at++]! : 0;
  }

  u16(): number {
    return (this.u8() << 8) | this.u8();
  }

  u32(): number {
    return ((this.u16() << 16) | this.u16()) >>> 0;
  }

  take(count: number): Uint8Array {
    const out = new Uint8Array(count);
    const available = this.bytes.subarray(this.at, this.at + count);
    out.set(available);
    this.at += available.length;
    return out;
  }
}

/** Operations one input may run: bounds a single exec's cost whatever its length. */
export const OPS_PER_INPUT_MAX = 48;

export interface FuzzTarget<State extends object = object> {
  name: string;
  summary: string;
  board: Omit<FuzzBoardOptions, "firmware" | "seed" | "trace">;
  /** After boot: bring the board to the state every input starts from. Returns the target's own state, which the
   * snapshot saves and restores with the board. */
  prepare(fuzz: FuzzBoard): State;
  /** Runs one input from the snapshot state; throws FindingError when an oracle fires. Logs to `log` on replay. */
  run(fuzz: FuzzBoard, state: State, input: InputReader, log: (line: string) => void): void;
  /** Objects of the state that inputs only read (the shadow model's copy of the disk at the snapshot): the snapshot
   * leaves them out, so they are not copied back for every input. */
  constants?(state: State): object[];
  /** Protocol constants the mutator splices in. */
  dictionary: Uint8Array[];
  /** Starting inputs. */
  seeds: Uint8Array[];
}

export const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
export const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);
