// `wasm-iop bench --record-ab --quick --json`: recording switched off and on in turns on one emulator. The on turns
// hand records to the file and the off turns none (so the switch works), and each pair's ratio is on over off. Speed
// is never asserted (DESIGN-NOTES §10). Needs qemu-img only; without it the test says what it skipped (a failure
// under CI).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RecordAbResult } from "../../tools/bench/record_ab.ts";
import { runCli } from "../support/cli.ts";

const missing = spawnSync("qemu-img", ["--version"], { stdio: "ignore" }).error !== undefined;
if (missing) {
  const message = "bench --record-ab test skipped: qemu-img missing (Debian: apt-get install qemu-utils qemu-block-extra)";
  if (process.env.CI === "true") throw new Error(`${message}; CI must have it`);
  process.stderr.write(`${message}\n`);
}

describe.skipIf(missing)("wasm-iop bench --record-ab --quick", () => {
  it("alternates recording off and on, on one board, and gives the ratio of each pair", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wasm-iop-bench-ab-test-"));
    const out = join(dir, "result.json");
    const { code, stdout, stderr } = await runCli(["bench", "--record-ab", "--quick", "--pairs", "2", "--only", "4k-write-qd32,1m-read-qd8", "--json", "--out", out]);
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as RecordAbResult;
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(result);
    rmSync(dir, { recursive: true, force: true });
    expect(result.format).toBe("wasm-iop-bench-record-ab/1");
    expect(result.options).toMatchObject({ quick: true, pairs: 2, lun: 1, disks: "memory" });
    expect(result.workloads.map((w) => w.name)).toEqual(["4k-write-qd32", "1m-read-qd8"]);
    for (const w of result.workloads) {
      expect(w.pairs.map((p) => p.onFirst)).toEqual([false, true]);
      for (const p of w.pairs) {
        expect(p.off.recordedBytesPerIo).toBe(0);
        expect(p.on.cpuUsPerIo).toBeGreaterThan(0);
        expect(p.off.cpuUsPerIo).toBeGreaterThan(0);
        expect(p.cpuRatio).toBeCloseTo(p.on.cpuUsPerIo / p.off.cpuUsPerIo, 9);
      }
      expect(result.targets.find((t) => t.what.startsWith(w.name))?.value).toBe(w.cpuRatio.median);
    }
    // A 4 KiB write's received bytes are recorded whole; a 1 MiB read's sends as their length and CRC only.
    const [write, read] = result.workloads;
    for (const p of write!.pairs) expect(p.on.recordedBytesPerIo).toBeGreaterThan(4096);
    for (const p of read!.pairs) expect(p.on.recordedBytesPerIo).toBeLessThan(4096);
  }, 180_000);
});
