// The emulator side of `wasm-iop bench`: a child process that serves the board on loopback in real time, so the
// parent can measure this process alone (CPU time, RSS) while the initiators drive it. It talks to the parent over
// the fork() IPC channel; the messages are EmulatorRequest and EmulatorReply in emulator.ts.
//
// argv: --memory-disks (every disk in memory instead of in a file), --data-dir DIR (file disks go there), --board FILE
// (default boards/iop-dev.json), --without-xor-engine (the board file's XOR engine left out), --record FILE (the session
// recorded as run --record does, to measure what recording costs), --nbd (its NBD exports served too),
// --ignore-sigint (forked in the bench's process group: a Ctrl-C at the terminal is the bench's to act on).
import { readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { serveBoard } from "../conformance/serve.ts";
import type { EmulatorReply, EmulatorRequest, EmulatorStats } from "./emulator.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    "memory-disks": { type: "boolean", default: false },
    "data-dir": { type: "string" },
    board: { type: "string" },
    "without-xor-engine": { type: "boolean", default: false },
    record: { type: "string" },
    nbd: { type: "boolean", default: false },
    "ignore-sigint": { type: "boolean", default: false },
  },
  strict: true,
});

if (values["ignore-sigint"]) process.on("SIGINT", () => {}); // the bench stops the board (stop, or its disconnect)

function reply(message: EmulatorReply): void {
  process.send!(message);
}

const serving = await serveBoard({
  boardPath: values.board,
  memoryDisks: values["memory-disks"],
  dataDir: values["data-dir"],
  withoutXorEngine: values["without-xor-engine"],
  recordPath: values.record,
  nbd: values.nbd,
  traceOff: true, // as `wasm-iop run` serves: no per-access trace lines or hash
  hostClockMs: () => performance.now(),
});
let profiler: Session | undefined;
let stopping: Promise<void> | undefined;
const stopOnce = (): Promise<void> => (stopping ??= serving.stop());

// The main thread's time on a CPU, in ns (the first field of its scheduler statistics; 0 where there is no /proc).
function schedRunNs(): number {
  try {
    return Number(readFileSync("/proc/self/schedstat", "utf8").split(" ")[0] ?? 0);
  } catch {
    return 0;
  }
}

function stats(): EmulatorStats {
  const runNs = schedRunNs();
  const loop = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const calls = serving.board.firmwareCallStats();
  return {
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rssBytes: process.memoryUsage.rss(),
    heapUsedBytes: process.memoryUsage().heapUsed,
    firmwareCallMs: calls.hostCallMs,
    firmwareBusMs: calls.hostBusMs,
    firmwareRunCount: calls.runCount,
    busAccessCount: calls.busAccessCount,
    layerMs: calls.layerMs,
    processorCallMs: Object.fromEntries(serving.board.processors.map((p) => [p.name, p.hostCallMs])),
    schedRunNs: runNs,
    loopActiveMs: loop.active,
    panics: serving.panics.length,
    recordedBytes: serving.recordingStats().bytes,
    recordWaitMs: serving.recordingStats().waitMs,
  };
}

async function handle(request: EmulatorRequest): Promise<void> {
  switch (request.kind) {
    case "stats":
      if (request.collect === true) (globalThis as { gc?: () => void }).gc?.(); // --expose-gc, from emulator.ts
      return reply({ kind: "stats", stats: stats() });
    case "meter":
      serving.board.meterLayers(request.on);
      return reply({ kind: "meter-set" });
    case "record":
      serving.recording(request.on);
      return reply({ kind: "record-set" });
    case "profile-start":
      profiler = new Session();
      profiler.connect();
      await profiler.post("Profiler.enable");
      await profiler.post("Profiler.setSamplingInterval", { interval: 200 }); // µs: fine enough for short runs
      await profiler.post("Profiler.start");
      return reply({ kind: "profile-started" });
    case "profile-stop": {
      if (profiler === undefined) return reply({ kind: "error", message: "profile-stop without profile-start" });
      const { profile } = await profiler.post("Profiler.stop");
      profiler.disconnect();
      profiler = undefined;
      writeFileSync(request.path, JSON.stringify(profile));
      return reply({ kind: "profile-written", path: request.path });
    }
    case "stop":
      await stopOnce();
      reply({ kind: "stopped" });
      process.disconnect();
      return;
    default:
      return reply({ kind: "error", message: `unknown request ${JSON.stringify(request)}` });
  }
}

process.on("message", (request: EmulatorRequest) => {
  handle(request).catch((error: unknown) => reply({ kind: "error", message: (error as Error).stack ?? String(error) }));
});
// The parent went away without saying stop: power off so file disks are flushed and closed.
process.on("disconnect", () => void stopOnce().finally(() => process.exit(0)));
reply({ kind: "ready", urls: serving.urls, nbdUrls: serving.nbdUrls, pid: process.pid });
