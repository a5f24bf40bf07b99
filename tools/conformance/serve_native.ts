// The native board (boards/native/, C) serving iSCSI in a child process, for the tools and tests that drive it with
// real initiators as serve.ts drives the JS board: a fresh data directory whose flash holds the release image, signed
// with the board's populate key (as `wasm-iop flash --build` writes it), a free port on loopback, extra targets
// written into a copy of the board file.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { type BoardSpec, loadBoardFile, type TargetSpec, targetLuns } from "../../host/board/load.ts";
import { FlashBoot } from "../../host/boot/flash_boot.ts";
import { buildFirmware, FIRMWARE_PATH, packageVersion, ROOT } from "../build/firmware.ts";
import { buildNative, nativeBoardPath } from "../build/native.mjs";

export const NATIVE_ONE_DISK_BOARD = join(ROOT, "boards", "native", "one-disk.json");

export interface ServingNativeBoard {
  spec: BoardSpec;
  urls: string[]; // iscsi://host:port/iqn/lun, one per LUN, as the board printed them
  log: string[]; // its stdout and stderr lines
  panics: { message: string }[]; // "board: ... stopped: ..." lines
  child: ChildProcess;
  dataDir: string;
  stop(): Promise<void>;
}

export interface NativeServeOptions {
  boardPath?: string;
  dataDir?: string; // default: a fresh temporary directory, removed by stop()
  timeoutMs?: number;
  extraTargets?: readonly TargetSpec[];
  /** A command prefix (qemu-arm and its options) and the executable to run; default the x86-64 build. */
  prefix?: string[];
  executable?: string;
}

/** The board file as JSON, with paths made absolute (the copy lives elsewhere) and `extraTargets` appended. */
function boardFileCopy(path: string, spec: BoardSpec, extraTargets: readonly TargetSpec[]): object {
  const raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown> & { flash?: Record<string, unknown> };
  const base = dirname(resolve(path));
  if (raw.flash !== undefined) {
    raw.flash.trustedKeys = (raw.flash.trustedKeys as string[]).map((key) => resolve(base, key));
    if (typeof raw.flash.populateKey === "string") raw.flash.populateKey = resolve(base, raw.flash.populateKey);
  }
  delete raw.$schema;
  if (extraTargets.length > 0) {
    const own = spec.targets.map((t) => ({ name: t.name }));
    raw.targets = [...((raw.targets as object[] | undefined) ?? own), ...extraTargets.map((t) => ({
      name: t.name,
      luns: (t.luns ?? []).map((l) => ({ volume: l.volume, readOnly: l.readOnly })),
    }))];
  }
  return raw;
}

/** Builds the board if needed, writes its flash, starts it on 127.0.0.1:0, resolves once the firmware serves. */
export async function serveNativeBoard(options: NativeServeOptions = {}): Promise<ServingNativeBoard> {
  await buildFirmware(["release"]);
  const executable = options.executable ?? (await buildNative({ quiet: true }));
  const boardPath = options.boardPath ?? NATIVE_ONE_DISK_BOARD;
  const spec = loadBoardFile(boardPath);
  if (spec.flash === undefined || spec.flash.populateKey === undefined) throw new Error(`${boardPath}: the native board boots from its flash; the file needs flash.populateKey`);
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), `wasm-iop-native-${spec.name}-`));
  mkdirSync(dataDir, { recursive: true });
  const copy = join(dataDir, "board.json");
  writeFileSync(copy, JSON.stringify(boardFileCopy(boardPath, spec, options.extraTargets ?? [])));
  const flash = new FlashBoot(spec.flash, dataDir);
  try {
    if (flash.isBlank()) flash.populate(FIRMWARE_PATH, packageVersion(), null);
  } finally {
    flash.close();
  }
  const command = [...(options.prefix ?? []), executable, "--board", copy, "--data-dir", dataDir, "--portal", "127.0.0.1:0"];
  const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  const urls: string[] = [];
  const panics: { message: string }[] = [];
  // The board prints one URL per LUN right after the firmware says it serves: ready once all are in.
  const expectedUrls = [...spec.targets, ...(options.extraTargets ?? [])].reduce((sum, t) => sum + targetLuns(spec, t).length, 0);
  let servingSeen = false;
  let serving: () => void = () => {};
  let failed: (error: Error) => void = () => {};
  const up = new Promise<void>((resolvePromise, reject) => {
    serving = resolvePromise;
    failed = reject;
  });
  const take = (stream: NodeJS.ReadableStream) => {
    let pending = "";
    stream.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        log.push(line);
        if (line.startsWith("iscsi://")) urls.push(line);
        if (/^board: \S+ stopped: /.test(line)) panics.push({ message: line });
        if (line.includes("] tts: serving")) servingSeen = true;
        if (servingSeen && urls.length >= expectedUrls) serving();
      }
    });
  };
  take(child.stdout!);
  take(child.stderr!);
  child.on("exit", (code, signal) => failed(new Error(`the native board exited (${signal ?? code}) before serving:\n${log.join("\n")}`)));
  const timeoutMs = options.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the native board did not start serving in ${timeoutMs} ms:\n${log.join("\n")}`)), timeoutMs);
  });
  try {
    await Promise.race([up, timedOut]);
  } catch (error) {
    child.kill("SIGKILL");
    if (temporary) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    spec,
    urls,
    log,
    panics,
    child,
    dataDir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolvePromise) => child.once("exit", () => resolvePromise()));
        child.kill("SIGTERM");
        await exited;
      }
      if (temporary) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The native board's executable for `arch`, built or not. */
export { nativeBoardPath };
