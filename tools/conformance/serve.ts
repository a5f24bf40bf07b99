// A board serving iSCSI in this process, in real time, for tools and tests that drive it with real initiators
// (conformance, interop tests, bench): fresh data directory, a free port on loopback, the release image.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileImage } from "../../host/abi/image_module.ts";
import { Board, withoutXorEngine } from "../../host/board/board.ts";
import { type BoardSpec, DEFAULT_BOARD_PATH, loadBoardFile, type TargetSpec } from "../../host/board/load.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import { TcpBackend } from "../../host/devices/tcp_backend.ts";
import { RealTimePacer } from "../../host/sim/realtime.ts";
import { Trace } from "../../host/sim/trace.ts";
import { buildFirmware, FIRMWARE_PATH } from "../build/firmware.ts";
import { iscsiUrls, nbdUrls } from "../cli/run.ts";
import { Recorder } from "../replay/recorder.ts";
import { packageVersion } from "../build/firmware.ts";

export interface ServingBoard {
  board: Board;
  spec: BoardSpec;
  urls: string[]; // iscsi://host:port/iqn/lun, one per LUN
  nbdUrls: string[]; // nbd://host:port/export, one per export of the board's nbd section (with `nbd`; else none)
  log: string[]; // the console, "[processor] line"
  panics: PanicReport[];
  /** With recordPath: recording on or off from now on (bench --record-ab); the recording then has gaps, not replayable. */
  recording(on: boolean): void;
  /** Bytes of records handed to the recording's file so far, and the board's waits for its writer (0: not recording). */
  recordingStats(): { bytes: number; waits: number; waitMs: number };
  stop(): Promise<void>;
}

export interface ServeOptions {
  boardPath?: string;
  dataDir?: string; // default: a fresh temporary directory, removed by stop()
  timeoutMs?: number; // how long to wait for the transport to come up
  memoryDisks?: boolean; // every disk in memory instead of in its file (bench)
  traceOff?: boolean; // no trace at all, not even its hash, as `wasm-iop run` serves (bench)
  trace?: Trace; // the board's trace (wasm-iop trace iscsi: a replayable one to a file); default: hashed only
  hostClockMs?: () => number; // measure host time inside firmware calls (bench)
  extraTargets?: readonly TargetSpec[]; // served after the board's own (conformance: a read-only LUN); their URLs last
  withoutXorEngine?: boolean; // the board's XOR engines left out: parity XORed by the firmware loop (bench --volumes)
  recordPath?: string; // record the session there, as run --record does but with no checking replay (bench --record)
  nbd?: boolean; // serve the board's NBD exports too, on a port of their own (bench --nbd)
}

/** Boots the board, binds 127.0.0.1:0, and resolves once the firmware's transport says it is serving. */
export async function serveBoard(options: ServeOptions = {}): Promise<ServingBoard> {
  await buildFirmware(["release"]);
  const file = loadBoardFile(options.boardPath ?? DEFAULT_BOARD_PATH);
  const loaded = options.withoutXorEngine === true ? withoutXorEngine(file) : file;
  const disks: BoardSpec = options.memoryDisks !== true ? loaded
    : { ...loaded, disks: loaded.disks.map((d) => ({ name: d.name, sizeMiB: d.sizeMiB, blockSize: d.blockSize, physicalBlockSize: d.physicalBlockSize, backend: "memory" as const })) };
  const spec: BoardSpec = options.extraTargets === undefined ? disks : { ...disks, targets: [...disks.targets, ...options.extraTargets] };
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), `wasm-iop-${spec.name}-`));
  const log: string[] = [];
  const withNbd = options.nbd === true && spec.nbd !== undefined;
  const tcp = new TcpBackend({ portals: withNbd ? [{ host: "127.0.0.1", port: 0 }, { host: "127.0.0.1", port: 0 }] : [{ host: "127.0.0.1", port: 0 }], log: (m) => log.push(`[nic] ${m}`) });
  tcp.attach({ opened: () => undefined, received: () => {}, closed: () => {} });
  const bound = await tcp.start();
  let serving: () => void = () => {};
  const up = new Promise<void>((resolve) => (serving = resolve));
  const board = new Board({
    spec,
    firmware: compileImage(readFileSync(FIRMWARE_PATH)),
    dataDir,
    network: tcp,
    portals: bound.slice(0, 1),
    nbdPortal: withNbd ? bound[1] : undefined,
    trace: options.traceOff === true ? new Trace({ enabled: false }) : options.trace,
    hostClockMs: options.hostClockMs,
    onConsole: (processor, _fd, line) => {
      log.push(`[${processor}] ${line}`);
      if (line.startsWith("tts: serving")) serving();
    },
  });
  const recorder = options.recordPath === undefined ? undefined : new Recorder({
    path: options.recordPath, command: "serve", tool: `wasm-iop ${packageVersion()}`, boardFile: spec.file, spec, seed: board.seed,
    portals: bound, verbose: false, dataDir, copyDisks: false, compress: false, // as run --record: real time, no deflate
  });
  if (!board.powerOn()) throw new Error(`the board did not boot:\n${log.join("\n")}`);
  recorder?.begin(board, new Uint8Array(readFileSync(FIRMWARE_PATH)));
  const pacer = new RealTimePacer(board.clock);
  pacer.start();
  const timeoutMs = options.timeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the board did not start serving in ${timeoutMs} ms:\n${log.join("\n")}`)), timeoutMs);
  });
  try {
    await Promise.race([up, timedOut]);
  } finally {
    clearTimeout(timer);
  }
  return {
    board,
    spec,
    urls: iscsiUrls(spec, bound[0]!),
    nbdUrls: withNbd ? nbdUrls(spec, bound[1]!) : [],
    log,
    panics: board.panics,
    recording(on) {
      if (recorder === undefined) throw new Error("recording: the board is not recording (no recordPath)");
      recorder.watch(on);
    },
    recordingStats: () => {
      const stats = recorder?.fileStats;
      return { bytes: stats?.recordBytes ?? 0, waits: stats?.waits ?? 0, waitMs: stats?.waitMs ?? 0 };
    },
    async stop() {
      pacer.stop();
      recorder?.watch(true);
      recorder?.end(board.ingress.position, recorder.gaps ? "stopped (recorded in turns, with gaps: not replayable)" : "stopped", board.trace);
      recorder?.close();
      await tcp.stop();
      board.powerOff();
      if (temporary) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
