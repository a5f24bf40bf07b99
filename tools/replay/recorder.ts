// `--record FILE`: writes what passes the board's door (host/board/ingress.ts) into a recording (format.ts) as it
// happens. Inputs are written whole; what the board sends is written as its length and CRC-32 only, and hashed, so a
// replay can name the first send that differs without the recording holding every byte read from the disks.
import { createHash, type Hash } from "node:crypto";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import type { Board } from "../../host/board/board.ts";
import type { BoardFault, IngressObserver, IngressPosition, TraceNote } from "../../host/board/ingress.ts";
import type { BoardSpec } from "../../host/board/load.ts";
import { DISK_CHUNK_BYTES, RecordKind, RecordWriter, type RecordedDisk, type RecordingEnd, type RecordingMeta, type RecordingSeal } from "./format.ts";
import { hashDiskFile } from "./disks.ts";

// What the recorder holds before writing it out: large enough that a busy session costs few system calls.
const FLUSH_BYTES = 1 << 20;
// A record's fixed part: kind, length, two deltas, a connection or portal or two, a CRC (each varint at most 8 bytes).
const FRAME_BYTES_MAX = 1 + 8 + 8 + 8 + 8 + 8 + 4;

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

export class Recorder implements IngressObserver {
  private readonly writer = new RecordWriter();
  private readonly fd: number;
  private readonly sentHash: Hash = createHash("sha256");
  private sentBytes = 0;
  private ended = false;
  private closed = false;
  readonly path: string;
  private meta: RecordingMeta | undefined;
  private readonly pendingChunks: { disk: number; index: number; bytes: Uint8Array }[] = [];
  private readonly disks: RecordedDisk[];

  /** Reads the disks (before the board opens them) and opens the file; begin() writes the metadata once booted. */
  constructor(private readonly start: RecorderStart) {
    this.path = start.path;
    this.disks = readDisks(start.spec, start.dataDir, start.copyDisks, (disk, index, bytes) => this.pendingChunks.push({ disk, index, bytes: bytes.slice() }));
    mkdirSync(dirname(start.path), { recursive: true });
    this.fd = openSync(start.path, "w");
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
    };
    const text = Buffer.from(JSON.stringify(this.meta), "utf8");
    this.writer.record(RecordKind.Meta, text.length, (w) => w.bytes(text));
    this.writer.record(RecordKind.Firmware, firmware.length, (w) => w.bytes(firmware));
    for (const { disk, index, bytes } of this.pendingChunks.splice(0)) {
      this.writer.record(RecordKind.DiskChunk, 16 + DISK_CHUNK_BYTES, (w) => {
        w.varint(disk);
        w.varint(index);
        w.bytes(bytes);
      });
      this.flushIfFull();
    }
    board.ingress.observe(this);
  }

  opened(at: IngressPosition, portal: number, connection: number | undefined): void {
    this.timed(RecordKind.Opened, 0, at, (w) => {
      w.varint(portal);
      w.varint(connection === undefined ? 0 : connection + 1);
    });
  }

  received(at: IngressPosition, connection: number, bytes: Uint8Array): void {
    this.timed(RecordKind.Received, bytes.length, at, (w) => {
      w.varint(connection);
      w.bytes(bytes);
    });
  }

  peerClosed(at: IngressPosition, connection: number): void {
    this.timed(RecordKind.PeerClosed, 0, at, (w) => w.varint(connection));
  }

  control(at: IngressPosition, request: unknown): void {
    const text = Buffer.from(JSON.stringify(request), "utf8");
    this.timed(RecordKind.Control, text.length, at, (w) => w.bytes(text));
  }

  reset(at: IngressPosition): void {
    this.timed(RecordKind.Reset, 0, at, () => {});
  }

  fault(at: IngressPosition, fault: BoardFault): void {
    const text = Buffer.from(JSON.stringify(fault), "utf8");
    this.timed(RecordKind.Fault, text.length, at, (w) => w.bytes(text));
  }

  note(at: IngressPosition, note: TraceNote): void {
    const text = Buffer.from(JSON.stringify(note), "utf8");
    this.timed(RecordKind.Note, text.length, at, (w) => w.bytes(text));
  }

  sent(at: IngressPosition, connection: number, bytes: Uint8Array): void {
    this.sentHash.update(bytes);
    this.sentBytes += bytes.length;
    this.timed(RecordKind.Sent, 0, at, (w) => {
      w.varint(connection);
      w.varint(bytes.length);
      w.u32(crc32(bytes));
    });
  }

  boardClosed(at: IngressPosition, connection: number): void {
    this.timed(RecordKind.BoardClosed, 0, at, (w) => w.varint(connection));
  }

  /** Bytes the board sent so far, and their SHA-256. */
  get sentSoFar(): { bytes: number; sha256: string } {
    return { bytes: this.sentBytes, sha256: this.sentHash.copy().digest("hex") };
  }

  /** The last timed record: where the board stopped, what it sent, and the live trace's hash if it had one. */
  end(at: IngressPosition, reason: string, trace: { enabled: boolean; digest(): string; count: number }): RecordingEnd {
    const end: RecordingEnd = {
      reason,
      sentBytes: this.sentBytes,
      sentSha256: this.sentHash.copy().digest("hex"),
      traceHash: trace.enabled ? trace.digest() : null,
      traceEvents: trace.enabled ? trace.count : null,
    };
    const text = Buffer.from(JSON.stringify(end), "utf8");
    this.timed(RecordKind.End, text.length, at, (w) => w.bytes(text));
    this.ended = true;
    this.flush();
    return end;
  }

  /** After end(): the trace hash a verifying replay computed. */
  seal(seal: RecordingSeal): void {
    const text = Buffer.from(JSON.stringify(seal), "utf8");
    this.writer.record(RecordKind.Seal, text.length, (w) => w.bytes(text));
    this.flush();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    closeSync(this.fd);
    this.closed = true;
  }

  private timed(kind: RecordKind, dataBytes: number, at: IngressPosition, payload: (w: RecordWriter) => void): void {
    if (this.ended || this.meta === undefined) return;
    this.writer.record(kind, FRAME_BYTES_MAX + dataBytes, (w) => {
      w.at(at.eventCount, at.timeNs);
      payload(w);
    });
    this.flushIfFull();
  }

  private flushIfFull(): void {
    if (this.writer.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.closed) return;
    const bytes = this.writer.take();
    let at = 0;
    while (at < bytes.length) at += writeSync(this.fd, bytes, at, bytes.length - at);
  }
}
