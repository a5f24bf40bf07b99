// The two traces a trace-driven board is checked on (docs/trace-format.md, "The CI traces"): the default board's
// boot and first seconds in simulation, and a real iSCSI session: the board serving on loopback in real time while
// qemu-img writes a random image to a LUN, reads it back and compares, over and over for the session's length.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { compileImage } from "../../host/abi/image_module.ts";
import { Board } from "../../host/board/board.ts";
import { DEFAULT_BOARD_PATH, loadBoardFile } from "../../host/board/load.ts";
import { Prng } from "../../host/sim/prng.ts";
import { Trace } from "../../host/sim/trace.ts";
import { buildFirmware, FIRMWARE_PATH } from "../build/firmware.ts";
import { serveBoard } from "../conformance/serve.ts";

const run = promisify(execFile);

export interface RecordedTrace {
  path: string;
  boardTimeNs: number;
  hashedLines: number;
  replayLines: number;
  sha256: string;
  /** The firmware's console, "[processor] line". */
  log: string[];
  /** What the workload did (iSCSI: round trips), for the summary. */
  note: string;
}

/** Boots the default board from build/firmware.wasm in simulation and runs it for `seconds` of board time. */
export async function recordBootTrace(path: string, seconds: number, boardPath = DEFAULT_BOARD_PATH): Promise<RecordedTrace> {
  await buildFirmware(["release"]);
  const spec = loadBoardFile(boardPath);
  const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-trace-boot-"));
  const trace = new Trace({ path });
  const log: string[] = [];
  const board = new Board({ spec, firmware: compileImage(readFileSync(FIRMWARE_PATH)), dataDir, trace, onConsole: (p, _fd, line) => log.push(`[${p}] ${line}`) });
  try {
    if (!board.powerOn()) throw new Error(`the board did not boot:\n${log.join("\n")}`);
    board.runFor(Math.round(seconds * 1e9));
    if (board.panics.length > 0) throw new Error(`a processor stopped: ${board.panics[0]!.message}`);
  } finally {
    board.powerOff();
    await trace.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { path, boardTimeNs: board.clock.nowNs, hashedLines: trace.count, replayLines: trace.replayCount, sha256: trace.digest(), log, note: "boot" };
}

export interface IscsiSessionOptions {
  seconds: number; // how long the rounds go on (the last one finishes)
  imageMiB: number; // the random image each round writes and compares
  intervalMs: number; // a round starts this long after the previous one started (at once if that one took longer)
  lun?: number; // default 1, a disk on a storage processor
}

/**
 * Serves the default board in real time with the trace on, and runs qemu-img against a LUN for about `seconds`:
 * each round writes an `imageMiB` random image (a new seed per round), reads it back and compares. Every byte the
 * NIC and the disks move into RAM is in the trace (about 1.4 bytes per byte moved, base64), so the default paces
 * the rounds: one a second. Needs qemu-img with its iSCSI driver (Debian: qemu-utils, qemu-block-extra).
 */
export async function recordIscsiTrace(path: string, options: IscsiSessionOptions): Promise<RecordedTrace> {
  const { seconds, imageMiB, intervalMs } = options;
  const lun = options.lun ?? 1;
  const work = mkdtempSync(join(tmpdir(), "wasm-iop-trace-iscsi-"));
  const trace = new Trace({ path });
  const serving = await serveBoard({ trace, timeoutMs: 60_000 });
  const url = serving.urls[lun];
  let rounds = 0;
  try {
    if (url === undefined) throw new Error(`the board serves no LUN ${lun}`);
    const endMs = performance.now() + seconds * 1000;
    const image = join(work, "image.raw");
    do {
      const startMs = performance.now();
      const bytes = new Uint8Array(imageMiB * 1024 * 1024);
      new Prng(`trace-iscsi/${rounds}`).fill(bytes);
      writeFileSync(image, bytes);
      await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, url]);
      // Compared through a raw window of the image's size over the LUN: only what was written is read back.
      await run("qemu-img", ["compare", "--image-opts", `driver=raw,file.driver=file,file.filename=${image}`, lunWindow(url, lun, bytes.length)]);
      rounds += 1;
      const waitMs = Math.min(startMs + intervalMs, endMs) - performance.now();
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    } while (performance.now() < endMs);
  } finally {
    await serving.stop();
    await trace.close();
    rmSync(work, { recursive: true, force: true });
  }
  if (serving.panics.length > 0) throw new Error(`a processor stopped: ${serving.panics[0]!.message}`);
  return { path, boardTimeNs: serving.board.clock.nowNs, hashedLines: trace.count, replayLines: trace.replayCount, sha256: trace.digest(), log: serving.log, note: `${rounds} qemu-img round trips of ${imageMiB} MiB` };
}

/** qemu's --image-opts for the first `sizeBytes` of LUN `lun` at `url` (iscsi://HOST:PORT/IQN/LUN). */
function lunWindow(url: string, lun: number, sizeBytes: number): string {
  const parsed = new URL(url);
  return `driver=raw,size=${sizeBytes},file.driver=iscsi,file.transport=tcp,file.portal=${parsed.host},file.target=${parsed.pathname.split("/")[1]!},file.lun=${lun}`;
}
