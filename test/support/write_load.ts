// A random write load through one qemu-io process (qemu-utils; qemu-block-extra for iscsi://), in flushed rounds, that
// knows afterwards what every block must hold: the interop tests kill the board under it (kill -9) or fail a copy
// under it, then check the volume (or a disk image) against it. Shared by test/interop/volumes.test.ts and
// test/interop/replica.test.ts.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { Prng } from "../../host/sim/prng.ts";

const LOAD_BLOCK_BYTES = 4096;
const WRITES_PER_ROUND = 16;
const SLOT_BYTES = 64 << 10;

/**
 * Random writes through one qemu-io process on `url`, in rounds: WRITES_PER_ROUND aio_writes to distinct 64 KiB
 * slots of the region [baseBytes, baseBytes + regionBytes) (4 KiB-aligned, 4-64 KiB long, each with its own fill
 * byte), then aio_flush (every write answered) and flush (SYNCHRONIZE CACHE, or NBD_CMD_FLUSH); the next round is sent
 * once the flush is answered. qemu-io reads one line per wake-up of its stdin, so a command goes only after the prompt
 * for it ("qemu-io> ", the k-th prompt asks for the k-th command, so the (n+1)-th says command n is done). The rounds
 * before `roundsDurable` are durable, and at most the one after them is in flight.
 */
export class WriteLoad {
  readonly durable: Uint8Array; // each 4 KiB block's fill byte; 0: never written
  private pending = new Map<number, number>(); // the round in flight: block -> fill byte
  roundsDurable = 0;
  private writes = 0;
  private queue: string[] = [];
  private sent = 0; // commands sent
  private flushOrdinal = 0; // the in-flight round's flush is the flushOrdinal-th command
  private readonly prng: Prng;
  private readonly child: ChildProcessWithoutNullStreams;
  private output = "";
  private stopping = false;

  constructor(url: string, readonly name: string, readonly regionBytes: number, readonly baseBytes = 0, private readonly roundsMax = Infinity) {
    this.durable = new Uint8Array(regionBytes / LOAD_BLOCK_BYTES);
    this.prng = new Prng(`write-load-${name}`);
    this.child = spawn("stdbuf", ["-o0", "qemu-io", "-f", "raw", url]); // unbuffered: the prompt comes at once
    this.child.stdout.on("data", (chunk: Buffer) => this.received(chunk.toString()));
    this.child.stderr.on("data", (chunk: Buffer) => (this.output += chunk.toString()));
    this.child.stdin.on("error", () => {}); // the target dies under it: the pipe breaks
    this.queueRound();
  }

  /** Every round it was to write is flushed (with a finite `roundsMax`). */
  get done(): boolean { return this.roundsDurable >= this.roundsMax; }

  private received(text: string): void {
    this.output += text;
    const prompts = this.output.match(/qemu-io> /g)?.length ?? 0;
    if (this.flushOrdinal > 0 && prompts > this.flushOrdinal) {
      for (const [block, fill] of this.pending) this.durable[block] = fill;
      this.pending.clear();
      this.roundsDurable += 1;
      this.flushOrdinal = 0;
      if (this.roundsDurable < this.roundsMax && !this.stopping) this.queueRound();
    }
    while (prompts > this.sent && this.queue.length > 0) {
      this.child.stdin.write(`${this.queue.shift()!}\n`);
      this.sent += 1;
    }
  }

  private queueRound(): void {
    const slots = this.regionBytes / SLOT_BYTES;
    const chosen = new Set<number>();
    while (chosen.size < WRITES_PER_ROUND) chosen.add(this.prng.intBelow(slots));
    for (const slot of chosen) {
      const blocks = 1 + this.prng.intBelow(16);
      const first = slot * 16 + this.prng.intBelow(17 - blocks);
      const fill = 1 + (this.writes++ % 255);
      for (let b = first; b < first + blocks; b++) this.pending.set(b, fill);
      this.queue.push(`aio_write -P ${fill} ${this.baseBytes + first * LOAD_BLOCK_BYTES} ${blocks * LOAD_BLOCK_BYTES}`);
    }
    this.queue.push("aio_flush", "flush");
    this.flushOrdinal = this.sent + this.queue.length;
  }

  outputSoFar(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const closed = new Promise((resolve) => this.child.on("close", resolve));
    this.child.kill("SIGKILL");
    await closed;
  }

  /** The blocks of `back` (the region read after the restart) that hold neither what was flushed nor, for a block
   * of the round in flight, whole 512-byte sectors of its new fill byte (a write cut short lands sector by sector). */
  check(back: Uint8Array): number[] {
    const wrong: number[] = [];
    for (let block = 0; block < this.durable.length; block++) {
      const allowed = [this.durable[block]!, this.pending.get(block) ?? this.durable[block]!];
      for (let sector = 0; sector < LOAD_BLOCK_BYTES / 512; sector++) {
        const start = block * LOAD_BLOCK_BYTES + sector * 512;
        const bytes = back.subarray(start, start + 512);
        if (!allowed.some((fill) => bytes.every((b) => b === fill))) {
          wrong.push(block);
          break;
        }
      }
    }
    return wrong;
  }
}
