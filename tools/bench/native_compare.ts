// `npm run bench:native`: the native board (boards/native, C) against the JS board and Debian's tgt, side by side in
// one run, on the same one-disk board file (boards/native/one-disk.json; the JS board in the bench's emulator child,
// file disks) and the same clients: qemu-img bench 4 KiB requests at depth 1 (latency) and 32 (IOPS), reads and
// writes. Rounds alternate native, JS, tgt, so a busy machine's drift falls on all three alike; each side's first run
// of a workload is a warm-up that sizes its measured runs to about --duration. Then the native board's binary size
// and its memory beyond the processor's RAM (peak RSS less the RAM), and the JS board's RSS for comparison.
// Figures go to stdout (a table) and --out (JSON, default var/bench/native.json), with the load average.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../build/firmware.ts";
import { nativeBoardPath } from "../build/native.mjs";
import { NATIVE_ONE_DISK_BOARD, serveNativeBoard } from "../conformance/serve_native.ts";
import { runWorkload, WORKLOADS, type RunFigures, type Workload } from "./clients.ts";
import { Emulator } from "./emulator.ts";
import { Tgt } from "./tgt.ts";

const WORKLOAD_NAMES = ["4k-read-qd1", "4k-write-qd1", "4k-read-qd32", "4k-write-qd32"];
type Side = "native" | "js" | "tgt";
const SIDES: Side[] = ["native", "js", "tgt"];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** VmRSS and VmHWM of a process, in bytes. */
function memoryOf(pid: number): { rssBytes: number; peakBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rssBytes: field("VmRSS"), peakBytes: field("VmHWM") };
}

function sizeOf(path: string): { fileBytes: number; textBytes: number } {
  const out = spawnSync("size", [path], { encoding: "utf8" }).stdout ?? "";
  const text = Number(out.split("\n")[1]?.trim().split(/\s+/)[0] ?? NaN);
  return { fileBytes: statSync(path).size, textBytes: text };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { pairs: { type: "string", default: "3" }, duration: { type: "string", default: "3" }, out: { type: "string" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write("usage: npm run bench:native -- [--pairs N] [--duration S] [--out FILE]\n\nThe native board, the JS board and tgt, 4 KiB QD1 and QD32 with qemu-img bench, rounds alternating; see the top of tools/bench/native_compare.ts.\n");
    return 0;
  }
  const rounds = Number(values.pairs);
  const durationS = Number(values.duration);
  const outPath = values.out ?? join(ROOT, "var", "bench", "native.json");
  const loadAtStart = loadavg();
  const dir = mkdtempSync(join(tmpdir(), "wasm-iop-bench-native-"));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const native = await serveNativeBoard({ dataDir: join(dir, "native"), timeoutMs: 120_000 }).catch(async (error) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  mkdirSync(join(dir, "js"), { recursive: true });
  const js = await Emulator.start({ boardPath: NATIVE_ONE_DISK_BOARD, memoryDisks: false, dataDir: join(dir, "js"), log: () => {} });
  const tgt = await Tgt.start({ dir, sizeBytes: 64 << 20, port: await freePort(), controlPort: 1000 + (process.pid % 30000), log: () => {} });
  const urls: Record<Side, string> = { native: native.urls[0]!, js: js.urls[0]!, tgt: tgt.url };
  const results: Record<string, Record<Side, RunFigures[]>> = {};
  let nativeMemory = { rssBytes: 0, peakBytes: 0 };
  let jsMemory = { rssBytes: 0, peakBytes: 0 };
  try {
    for (const name of WORKLOAD_NAMES) {
      const workload = WORKLOADS.find((w) => w.name === name)! as Workload;
      const runs: Record<Side, RunFigures[]> = { native: [], js: [], tgt: [] };
      const last: Partial<Record<Side, RunFigures>> = {};
      for (let round = 0; round <= rounds; round += 1) { // round 0: the warm-up
        for (const side of SIDES) {
          const count = last[side] === undefined ? Math.max(32, workload.depth * 8) : Math.max(workload.depth * 2, Math.round(last[side]!.iops * durationS));
          const figures = await runWorkload(workload, urls[side], count, durationS);
          last[side] = figures;
          if (round > 0) runs[side].push(figures);
          log(`${name} ${side} round ${round}: ${figures.iops.toFixed(0)} IOPS, ${figures.latencyUs.toFixed(0)} us`);
        }
      }
      results[name] = runs;
    }
    nativeMemory = memoryOf(native.child.pid!);
    jsMemory = memoryOf(js.pid);
  } finally {
    await native.stop();
    await js.stop();
    await tgt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const ramBytes = 64 << 20;
  const binary = sizeOf(nativeBoardPath());
  const summary = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "", loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg() },
    rounds,
    durationS,
    workloads: Object.fromEntries(Object.entries(results).map(([name, runs]) => [name, Object.fromEntries(SIDES.map((side) => [side, {
      iops: median(runs[side].map((r) => r.iops)),
      latencyUs: median(runs[side].map((r) => r.latencyUs)),
      runs: runs[side].map((r) => Math.round(r.iops)),
    }]))])),
    native: {
      binaryBytes: binary.fileBytes,
      textBytes: binary.textBytes,
      ramBytes,
      peakRssBytes: nativeMemory.peakBytes,
      rssBytes: nativeMemory.rssBytes,
      beyondRamBytes: nativeMemory.peakBytes - ramBytes,
    },
    js: { rssBytes: jsMemory.rssBytes, peakRssBytes: jsMemory.peakBytes },
  };
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, JSON.stringify(summary, null, 2) + "\n");
  const mib = (b: number) => (b / (1 << 20)).toFixed(1);
  const lines = [
    `load average ${loadAtStart.map((l) => l.toFixed(2)).join(" ")} at start, ${summary.machine.loadAverageAtEnd.map((l) => l.toFixed(2)).join(" ")} at end; ${summary.machine.cpus} x ${summary.machine.model}`,
    `workload        native IOPS (lat us)   JS IOPS (lat us)   tgt IOPS (lat us)   native/JS   native/tgt`,
  ];
  for (const [name, sides] of Object.entries(summary.workloads)) {
    const n = sides.native, j = sides.js, t = sides.tgt;
    lines.push(`${name.padEnd(15)} ${n.iops.toFixed(0).padStart(8)} (${n.latencyUs.toFixed(0).padStart(6)})   ${j.iops.toFixed(0).padStart(8)} (${j.latencyUs.toFixed(0).padStart(6)})   ${t.iops.toFixed(0).padStart(8)} (${t.latencyUs.toFixed(0).padStart(6)})   ${(n.iops / j.iops).toFixed(2).padStart(9)}   ${(n.iops / t.iops).toFixed(2).padStart(10)}`);
  }
  lines.push(`native binary ${binary.fileBytes} bytes (text ${binary.textBytes}); RSS peak ${mib(nativeMemory.peakBytes)} MiB with ${mib(ramBytes)} MiB of processor RAM: ${mib(summary.native.beyondRamBytes)} MiB beyond it; the JS board's RSS ${mib(jsMemory.rssBytes)} MiB`);
  process.stdout.write(lines.join("\n") + "\n");
  return 0;
}

process.exitCode = await main();
