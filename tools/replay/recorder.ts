// `--record FILE`: writes what passes the board's door (host/board/ingress.ts) into a recording (format.ts) as it
// happens. Inputs are written whole; what the board sends is written as its length and CRC-32 only, and hashed, so a
// replay can name the first send that differs without the recording holding every byte read from the disks. The
// records go to the file through record_file.ts: copied, then checksummed, deflated and written off the board's thread.
import { createHash, type Hash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import type { Board } from "../../host/board/board.ts";
import type { BoardFault, IngressObserver, IngressPosition, TraceNote } from "../../host/board/ingress.ts";
import type { BoardSpec, NvramSpec } from "../../host/board/load.ts";
import { DISK_CHUNK_BYTES, type FuzzStart, RecordKind, RecordWriter, SendsDigest, type RecordedDisk, type RecordingEnd, type RecordingMeta, type RecordingSeal } from "./format.ts";
import { hashDiskFile } from "./disks.ts";
import { RecordFile, type RecordFileStats } from "./record_file.ts";

export interface RecorderStart {
  path: string;
  command: string;
  tool: string;
  boardFile: string;
  spec: BoardSpec;
  seed: number;
  portals: readonly { host: string; port: number }[];
  verbose: boolean;
  /** Where file disks live; their images are hashed (and copied with copyDisks) before the board opens them. */
  dataDir: string;
  copyDisks: boolean;
  /** Also hash every byte sent (SHA-256) as it goes; off when serving: the checking replay computes it (docs/replay.md). */
  hashSent?: boolean;
  /**
   * Deflate received bytes that compress (default true). Off where time is real (run, bench): a deflate call costs
   * 25-35 µs of CPU whatever its size. Zero blocks are left out either way (RecordKind.ReceivedSparse).
   */
  compress?: boolean;
  /**
   * A fuzz finding's input (fuzz --replay --record): the board is the target's, at its snapshot when begin() is
   * called; its disks and NVRAM are the target's (prepare() makes them), so none are read or listed.
   */
  fuzz?: { target: string; seed: number; input: Uint8Array };
}

/** Hashes (and with copyDisks, collects the chunks of) every disk of `spec` as it is before power-on. */
function readDisks(spec: BoardSpec, dataDir: string, copy: boolean, chunk: (disk: number, index: number, bytes: Uint8Array) => void): RecordedDisk[] {
  return spec.disks.map((d, index) => {
    const sizeBytes = d.sizeMiB * 1024 * 1024;
    const path = d.backend === "file" ? join(dataDir, d.image) : undefined;
    const sha256 = hashDiskFile(path, sizeBytes, copy ? (i, bytes) => chunk(index, i, bytes) : undefined);
    return { name: d.name, sizeBytes, blockSize: d.blockSize, backend: d.backend, sha256, copied: copy };
  });
}

/** The NVRAM card's array as the board will open it (its image under the data directory; zeros when absent or in memory). */
function readNvram(spec: BoardSpec, dataDir: string): Uint8Array | undefined {
  const card = spec.processors.flatMap((p) => p.pci).find((f): f is NvramSpec => f.model === "nvram");
  if (card === undefined) return undefined;
  const bytes = new Uint8Array(card.sizeKiB * 1024);
  const path = join(dataDir, card.image);
  if (card.backend === "file" && existsSync(path)) {
    const image = readFileSync(path);
    if (image.length === bytes.length) bytes.set(image); // another size: the board refuses it at power-on
  }
  return bytes;
}

export class Recorder implements IngressObserver {
  private readonly writer = new RecordWriter({ header: false, crcLater: true });
  private readonly file: RecordFile;
  private readonly sentHash: Hash | undefined;
  private readonly sends = new SendsDigest();
  private ended = false;
  private closed = false;
  private lastCount = 0; // the last timed record's place (each record's is a delta from it)
  private lastTimeNs = 0;
  readonly path: string;
  private meta: RecordingMeta | undefined;
  private readonly pendingChunks: { disk: number; index: number; bytes: Uint8Array }[] = [];
  private readonly disks: RecordedDisk[];
  private readonly nvram: Uint8Array | undefined;
  private board: Board | undefined;
  private unwatch: (() => void) | undefined;
  /** True once watch(false) left a gap: the recording then misses inputs and cannot be replayed (bench --record-ab). */
  gaps = false;

  /** Reads the disks (before the board opens them) and opens the file; begin() writes the metadata once booted. */
  constructor(private readonly start: RecorderStart) {
    this.path = start.path;
    this.sentHash = start.hashSent === true ? createHash("sha256") : undefined;
    this.disks = start.fuzz !== undefined ? [] : readDisks(start.spec, start.dataDir, start.copyDisks, (disk, index, bytes) => this.pendingChunks.push({ disk, index, bytes: bytes.slice() }));
    this.nvram = start.fuzz !== undefined ? undefined : readNvram(start.spec, start.dataDir);
    mkdirSync(dirname(start.path), { recursive: true });
    this.file = new RecordFile(start.path, { compress: start.compress ?? true });
    this.file.appendRaw([new RecordWriter().take()]); // the header
  }

  /** What went to the file so far (the records' bytes before deflating, slabs, the board's waits for the writer). */
  get fileStats(): RecordFileStats {
    return this.file.stats;
  }

  /** After close(): bytes of received records deflated, and what they became. */
  get deflated(): Promise<{ deflatedIn: number; deflatedOut: number }> {
    return this.file.deflated;
  }

  /** After power-on (the boot ROM's choice is known): the metadata and the disks' chunks; then watches the door. */
  begin(board: Board, firmware: Uint8Array): void {
    const s = this.start;
    this.meta = {
      tool: s.tool,
      command: s.command,
      created: new Date().toISOString(),
      boardFile: s.boardFile,
      spec: s.spec,
      seed: s.seed,
      firmwareSha256: createHash("sha256").update(firmware).digest("hex"),
      bootSlot: board.bootSlot ?? null,
      bootTrial: board.bootTrial,
      portals: s.portals.map((p) => ({ host: p.host, port: p.port })),
      verbose: s.verbose,
      disks: this.disks,
      nvram: this.nvram === undefined ? null : { sizeBytes: this.nvram.length, sha256: createHash("sha256").update(this.nvram).digest("hex") },
    };
    const text = Buffer.from(JSON.stringify(this.meta), "utf8");
    this.untimed(RecordKind.Meta, text.length, (w) => w.bytes(text));
    this.untimed(RecordKind.Firmware, firmware.length, (w) => w.data(firmware));
    const nvram = this.nvram;
    if (nvram !== undefined && nvram.some((b) => b !== 0)) this.untimed(RecordKind.Nvram, nvram.length, (w) => w.data(nvram));
    if (s.fuzz !== undefined) {
      const fuzz: FuzzStart = { target: s.fuzz.target, seed: s.fuzz.seed, input: Buffer.from(s.fuzz.input).toString("base64"), snapshot: board.ingress.position };
      const start = Buffer.from(JSON.stringify(fuzz), "utf8");
      this.untimed(RecordKind.FuzzStart, start.length, (w) => w.bytes(start));
    }
    for (const { disk, index, bytes } of this.pendingChunks.splice(0)) {
      this.untimed(RecordKind.DiskChunk, 16 + DISK_CHUNK_BYTES, (w) => {
        w.varint(disk);
        w.varint(index);
        w.data(bytes);
      });
    }
    this.board = board;
    this.unwatch = board.ingress.observe(this);
  }

  /**
   * Stops or resumes watching the door (bench --record-ab: recording on and off in turns on one board, to measure
   * what it costs). A recording with a gap misses inputs: its end record says so, and it is not replayable.
   */
  watch(on: boolean): void {
    if (this.board === undefined) throw new Error("Recorder.watch: before begin()");
    if (on && this.unwatch === undefined) this.unwatch = this.board.ingress.observe(this);
    if (!on && this.unwatch !== undefined) {
      this.unwatch();
      this.unwatch = undefined;
      this.gaps = true;
    }
  }

  opened(at: IngressPosition, portal: number, connection: number | undefined): void {
    this.timed(RecordKind.Opened, at, portal, connection === undefined ? 0 : connection + 1, -1, undefined);
  }

  received(at: IngressPosition, connection: number, bytes: Uint8Array): void {
    // Copied into the file's slab before this returns (record_file.ts).
    this.timed(RecordKind.Received, at, connection, -1, -1, bytes);
  }

  peerClosed(at: IngressPosition, connection: number): void {
    this.timed(RecordKind.PeerClosed, at, connection, -1, -1, undefined);
  }

  control(at: IngressPosition, request: unknown): void {
    this.timed(RecordKind.Control, at, -1, -1, -1, Buffer.from(JSON.stringify(request), "utf8"));
  }

  reset(at: IngressPosition): void {
    this.timed(RecordKind.Reset, at, -1, -1, -1, undefined);
  }

  fault(at: IngressPosition, fault: BoardFault): void {
    this.timed(RecordKind.Fault, at, -1, -1, -1, Buffer.from(JSON.stringify(fault), "utf8"));
  }

  note(at: IngressPosition, note: TraceNote): void {
    this.timed(RecordKind.Note, at, -1, -1, -1, Buffer.from(JSON.stringify(note), "utf8"));
  }

  sent(at: IngressPosition, connection: number, bytes: Uint8Array): void {
    this.sentHash?.update(bytes);
    const crc = crc32(bytes);
    this.sends.add(connection, bytes.length, crc);
    this.timed(RecordKind.Sent, at, connection, bytes.length, crc, undefined);
  }

  boardClosed(at: IngressPosition, connection: number): void {
    this.timed(RecordKind.BoardClosed, at, connection, -1, -1, undefined);
  }

  /** What the board sent so far: bytes, sends, and the digest of the sends as recorded. */
  get sentSoFar(): { bytes: number; sends: number; sendsSha256: string } {
    return { bytes: this.sends.bytes, sends: this.sends.count, sendsSha256: this.sends.digest() };
  }

  /** The last timed record: where the board stopped, what it sent, and the live trace's hash if it had one. */
  end(at: IngressPosition, reason: string, trace: { enabled: boolean; digest(): string; count: number }): RecordingEnd {
    const end: RecordingEnd = {
      reason,
      sentBytes: this.sends.bytes,
      sends: this.sends.count,
      sendsSha256: this.sends.digest(),
      sentSha256: this.sentHash === undefined ? null : this.sentHash.copy().digest("hex"),
      traceHash: trace.enabled ? trace.digest() : null,
      traceEvents: trace.enabled ? trace.count : null,
    };
    this.timed(RecordKind.End, at, -1, -1, -1, Buffer.from(JSON.stringify(end), "utf8"));
    this.ended = true;
    this.flush();
    return end;
  }

  /** After end(): the trace hash a verifying replay computed. */
  seal(seal: RecordingSeal): void {
    const text = Buffer.from(JSON.stringify(seal), "utf8");
    this.untimed(RecordKind.Seal, text.length, (w) => w.bytes(text));
    this.flush();
  }

  close(): void {
    if (this.closed) return;
    this.file.close();
    this.closed = true;
  }

  // A timed record: its place as deltas from the last one's, up to two varints and a u32 (-1: absent), then `data`
  // (format.ts); written straight into the file's slab.
  private timed(kind: RecordKind, at: IngressPosition, v1: number, v2: number, u32: number, data: Uint8Array | undefined): void {
    if (this.ended || this.meta === undefined) return;
    const eventDelta = at.eventCount - this.lastCount;
    const timeDelta = at.timeNs - this.lastTimeNs;
    this.lastCount = at.eventCount;
    this.lastTimeNs = at.timeNs;
    this.file.appendTimed(kind, eventDelta, timeDelta, v1, v2, u32, data);
  }

  private untimed(kind: RecordKind, payloadBytesMax: number, payload: (w: RecordWriter) => void): void {
    this.writer.record(kind, payloadBytesMax, payload);
    this.file.appendRecord(this.writer.takePieces());
  }

  /** Everything recorded so far is in the file once this returns. */
  flush(): void {
    if (this.closed) return;
    this.file.drain();
  }
}
