// Real initiators nobody here wrote, against the board serving iSCSI on loopback: libiscsi's iscsi-ls, iscsi-inq,
// iscsi-readcapacity16 and iscsi-test-cu, and QEMU's iSCSI block driver (qemu-img, qemu-io). Data written by one
// is read back and compared, through a virtio-scsi-backed LUN (1) and an NVMe-backed one (2); two initiators writing disjoint ranges at once each read back their own bytes; the
// conformance suite must not regress against test/interop/conformance-baseline.json. Without the Debian tools
// these tests say what they skipped; under CI (CI=true) a missing tool is a failure.
import { execFile } from "node:child_process";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBaseline, runConformance } from "../../tools/cli/conformance.ts";
import { serveBoard, type ServingBoard } from "../../tools/conformance/serve.ts";
import { Prng } from "../../host/sim/prng.ts";
import { scaled } from "../support/time.ts";

const run = promisify(execFile);
const TOOLS = ["iscsi-ls", "iscsi-inq", "iscsi-readcapacity16", "iscsi-test-cu", "qemu-img", "qemu-io"];
const missing = TOOLS.filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `interop tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install libiscsi-bin qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

describe.skipIf(missing.length > 0)("interoperability with Debian's initiators", () => {
  let serving: ServingBoard;
  let tmp = ""; // the images written and read back; removed once the board has stopped
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "wasm-iop-interop-"));
    serving = await serveBoard({ timeoutMs: scaled(20_000) });
  }, scaled(60_000));
  afterAll(async () => {
    await serving?.stop();
    if (tmp !== "") rmSync(tmp, { recursive: true, force: true });
  });

  it("lists the target and its five LUNs (iscsi-ls, discovery and login)", async () => {
    const portal = serving.urls[0]!.replace(/\/[^/]+\/\d+$/, "");
    const { stdout } = await run("iscsi-ls", ["-s", portal]);
    expect(stdout).toContain("Target:iqn.2026-11.org.wasm-iop:iop-dev Portal:127.0.0.1:");
    expect(stdout.match(/^Lun:\d+\s+Type:DIRECT_ACCESS \(Size:63M\)$/gm)).toHaveLength(3); // the disks
    expect(stdout).toMatch(/^Lun:3\s+Type:DIRECT_ACCESS \(Size:125M\)$/m); // the RAID 5: 2 × 63 MiB
    expect(stdout).toMatch(/^Lun:4\s+Type:DIRECT_ACCESS \(Size:255M\)$/m); // the thin volume: 256 MiB
  });

  it("answers INQUIRY and READ CAPACITY(16) (iscsi-inq, iscsi-readcapacity16)", async () => {
    const inquiry = await run("iscsi-inq", [serving.urls[0]!]);
    expect(inquiry.stdout).toContain("Vendor:WASM-IOP");
    const capacity = await run("iscsi-readcapacity16", [serving.urls[1]!]);
    expect(capacity.stdout).toMatch(/LOGICAL BLOCK LENGTH IN BYTES:512/);
    expect(capacity.stdout).toMatch(/RETURNED LOGICAL BLOCK ADDRESS:131071/);
    expect(capacity.stdout).toMatch(/Total size:67108864/);
  });

  it("writes a 16 MiB random image to a storage processor's disk and reads it back identical (qemu-img)", async () => {
    const image = join(tmp, "random.img");
    const bytes = new Uint8Array(16 << 20);
    new Prng("qemu-img").fill(bytes);
    writeFileSync(image, bytes);
    await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, serving.urls[1]!]);
    const back = join(tmp, "back.img");
    await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", serving.urls[1]!, back]);
    expect(Buffer.compare(readFileSync(back).subarray(0, bytes.length), Buffer.from(bytes))).toBe(0);
  }, scaled(120_000));

  it("writes a 64 MiB random image through the NVMe-backed LUN (sp2's disk) and reads it back identical (qemu-img)", async () => {
    // LUN 2 is sp2-disk0, on sp2's NVMe controller (boards/iop-dev.json): the whole 64 MiB disk, written and read.
    const image = join(tmp, "random-nvme.img");
    const bytes = new Uint8Array(64 << 20);
    new Prng("qemu-img nvme").fill(bytes);
    writeFileSync(image, bytes);
    await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, serving.urls[2]!]);
    const back = join(tmp, "back-nvme.img");
    await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", serving.urls[2]!, back]);
    const read = readFileSync(back);
    expect(read.length).toBe(bytes.length);
    expect(Buffer.compare(read, Buffer.from(bytes))).toBe(0);
  }, scaled(300_000));

  it("keeps two initiators' disjoint writes apart when they write at the same time (qemu-io)", async () => {
    const url = serving.urls[2]!;
    await Promise.all([
      run("qemu-io", ["-f", "raw", "-c", "write -P 0x5a 0 8M", url]),
      run("qemu-io", ["-f", "raw", "-c", "write -P 0xa5 8M 8M", url]),
    ]);
    const first = await run("qemu-io", ["-f", "raw", "-c", "read -P 0x5a 0 8M", url]);
    const second = await run("qemu-io", ["-f", "raw", "-c", "read -P 0xa5 8M 8M", url]);
    expect(first.stdout + second.stdout).not.toMatch(/Pattern verification failed/);
    expect(first.stdout).toMatch(/read 8388608\/8388608 bytes/);
    expect(second.stdout).toMatch(/read 8388608\/8388608 bytes/);
  }, scaled(120_000));

  it("does not regress against the conformance baseline (iscsi-test-cu --dataloss --allow-sanitize -t ALL)", async () => {
    await serving.stop(); // the conformance run serves a board of its own, with empty disks
    const baseline = readBaseline();
    const result = await runConformance({ pattern: "ALL", baseline, notRun: Object.keys(baseline.notRun ?? {}), timeoutMs: scaled(900_000) });
    expect(result.crashed).toBeUndefined();
    expect(result.regressions).toEqual([]);
    expect(result.outcomes.length).toBeGreaterThan(150);
    // The tests the baseline says not to run were left out, and nothing else was.
    expect(result.notRun.sort()).toEqual(Object.keys(baseline.notRun ?? {}).sort());
  }, scaled(1_000_000));

  it("gives the NVMe-backed LUN the same verdict as the baseline in every test (iscsi-test-cu against LUN 2, sp2's NVMe disk)", async () => {
    // The baseline was recorded on LUN 0, a virtio-scsi disk: the controller below the RTA must not show through.
    const baseline = readBaseline();
    const result = await runConformance({ lun: 2, pattern: "ALL", baseline, notRun: Object.keys(baseline.notRun ?? {}), timeoutMs: scaled(900_000) });
    expect(result.crashed).toBeUndefined();
    expect(result.regressions).toEqual([]);
    const differing = result.outcomes.filter((o) => baseline.results[o.name] !== undefined && baseline.results[o.name] !== o.result && !(o.name in baseline.notJudged));
    expect(differing.map((o) => `${o.name}: ${o.result}, baseline ${baseline.results[o.name]}`)).toEqual([]);
    expect(result.outcomes.length).toBe(Object.keys(baseline.results).length);
  }, scaled(1_000_000));
});
