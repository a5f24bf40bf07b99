// `wasm-iop conformance --cluster` (tools/cli/conformance.ts, runClusterConformance): libiscsi's iscsi-test-cu through
// every board's portal of a cluster in turn, each board judged against the committed baseline. Here two boards of
// boards/cluster-node.json in one process (fabric and proxy I/O: half of each board's pages are the other's), the
// INQUIRY family only, to keep it short: every board runs it, passes it as the baseline does, and the ReadOnly family
// is reported not run. The whole suite through clusters/trio.json is in docs/cluster.md.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readBaseline, runClusterConformance } from "../../tools/cli/conformance.ts";
import { tally } from "../../tools/conformance/cunit.ts";
import { scaled } from "../support/time.ts";

const missing = spawnSync("iscsi-test-cu", ["--help"], { stdio: "ignore" }).error !== undefined;
if (missing) {
  const message = "cluster conformance skipped: iscsi-test-cu not installed (Debian: apt-get install libiscsi-bin)";
  if (process.env.CI === "true") throw new Error(`${message}; CI must have it`);
  process.stderr.write(`${message}\n`);
}
const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-cluster-conformance-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const PORT = 22900 + (process.pid % 40) * 2; // two ports of the 22000-22999 range

describe.skipIf(missing)("conformance --cluster", () => {
  it("runs the INQUIRY family through both boards' portals, each as the baseline says, ReadOnly not run", async () => {
    const file = join(tmp, "duo.json");
    writeFileSync(file, JSON.stringify({
      name: "duo", seed: 3, version: 1,
      boards: ["a", "b"].map((name, k) => ({ name, id: k + 1, file: join(process.cwd(), "boards/cluster-node.json"), portals: [{ host: "127.0.0.1", port: PORT + k }] })),
      volumes: [{ volume: "pv0", pageBlocks: 2048, pageCount: 96, owners: { roundRobinFrom: "a" } }],
    }));
    const baseline = readBaseline();
    const result = await runClusterConformance({ clusterPath: file, lun: 0, pattern: "ALL.Inquiry", baseline, notRun: Object.keys(baseline.notRun ?? {}), timeoutMs: scaled(300_000) });
    expect(result.crashed).toBeUndefined();
    const expected = Object.entries(baseline.results).filter(([name]) => name.startsWith("Inquiry."));
    expect(expected.length).toBeGreaterThan(5);
    expect(result.boards.map((b) => b.name)).toEqual(["a", "b"]);
    for (const b of result.boards) {
      expect(b.outcomes.map((o) => [o.name, o.result]).sort()).toEqual(expected.sort());
      expect(b.regressions).toEqual([]);
      expect(tally(b.outcomes).fail).toBe(expected.filter(([, r]) => r === "fail").length);
    }
    expect(result.notRun).toEqual([]); // ALL.Inquiry selects neither ReadOnly nor the baseline's not-run test
  }, scaled(600_000));
});
