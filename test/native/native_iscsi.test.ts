// The native board serving one LUN over iSCSI to initiators nobody here wrote: libiscsi's iscsi-ls and iscsi-inq,
// qemu-img writing a 64 MiB random image and reading it back identical, and iscsi-test-cu --dataloss -t ALL with
// the same verdict per test as the JS board on the same one-disk board file (test/native/conformance-one-disk.json,
// written by `wasm-iop conformance --board boards/native/one-disk.json --update-baseline --baseline ...`). Without
// the Debian tools or cmake these tests say what they skipped; under CI (CI=true) that is a failure.
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBaseline, runConformance } from "../../tools/cli/conformance.ts";
import { serveNativeBoard, type ServingNativeBoard } from "../../tools/conformance/serve_native.ts";
import { buildNative, qemuArmPrefix } from "../../tools/build/native.mjs";
import { Prng } from "../../host/sim/prng.ts";
import { scaled } from "../support/time.ts";

const run = promisify(execFile);
const ONE_DISK_BASELINE = join(import.meta.dirname, "conformance-one-disk.json");
const TOOLS = ["cmake", "iscsi-ls", "iscsi-inq", "iscsi-test-cu", "qemu-img"];
const missing = TOOLS.filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `native iSCSI tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install cmake libiscsi-bin qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}
const missingArm = ["arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-g++", "qemu-arm"].filter((tool) => spawnSync(tool, ["--version"], { stdio: "ignore" }).error !== undefined);
if (missing.length === 0 && missingArm.length > 0) {
  const message = `native ARMv7 iSCSI test skipped: ${missingArm.join(", ")} not installed (Debian: apt-get install gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf qemu-user)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}
const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-native-iscsi-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true })); // 64 MiB images and flash files

/** qemu-img writes a 64 MiB random image to the board's LUN 0 and reads it back; true when identical. */
async function roundTrip(url: string, seed: string): Promise<boolean> {
  const bytes = new Uint8Array(64 << 20);
  new Prng(seed).fill(bytes);
  const image = join(tmp, `${seed}.img`);
  const back = join(tmp, `${seed}.back.img`);
  writeFileSync(image, bytes);
  await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, url], { timeout: scaled(600_000) });
  await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", url, back], { timeout: scaled(600_000) });
  return Buffer.compare(readFileSync(back).subarray(0, bytes.length), Buffer.from(bytes)) === 0;
}

describe.skipIf(missing.length > 0)("the native board serving iSCSI", () => {
  let serving: ServingNativeBoard;
  beforeAll(async () => {
    serving = await serveNativeBoard({ timeoutMs: scaled(60_000) });
  }, scaled(600_000));
  afterAll(async () => {
    await serving?.stop();
  });

  it("lists its target and LUN (iscsi-ls) and answers INQUIRY (iscsi-inq)", async () => {
    const portal = serving.urls[0]!.replace(/^(iscsi:\/\/[^/]+)\/.*$/, "$1");
    const listed = await run("iscsi-ls", ["-s", portal]);
    expect(listed.stdout).toContain("Target:iqn.2026-11.org.wasm-iop:native-one-disk");
    expect(listed.stdout).toMatch(/Lun:0\s+Type:DIRECT_ACCESS \(Size:63M\)/);
    const inquiry = await run("iscsi-inq", [serving.urls[0]!]);
    expect(inquiry.stdout).toContain("Peripheral Device Type:DIRECT_ACCESS");
    expect(inquiry.stdout).toContain("Vendor:WASM-IOP");
  });

  it("takes a 64 MiB random image from qemu-img and gives it back identical", async () => {
    expect(await roundTrip(serving.urls[0]!, "native qemu-img")).toBe(true);
    expect(serving.panics).toEqual([]);
  }, scaled(600_000));
});

describe.skipIf(missing.length > 0 || missingArm.length > 0)("the native board's ARMv7 build under qemu-arm", () => {
  it("serves the same round trip", async () => {
    const serving = await serveNativeBoard({ prefix: qemuArmPrefix(), executable: await buildNative({ arm: true, quiet: true }), timeoutMs: scaled(300_000) });
    try {
      expect(serving.log.join("\n")).toContain("[host] wasm-iop 0.1.0 abi 2: processor host #0 role host ram 64 MiB board native-one-disk");
      expect(await roundTrip(serving.urls[0]!, "native ARMv7 qemu-img")).toBe(true);
      expect(serving.panics).toEqual([]);
    } finally {
      await serving.stop();
    }
  }, scaled(1_500_000));
});

describe.skipIf(missing.length > 0)("the native board under iscsi-test-cu", () => {
  it("gives the JS board's verdict on every test (one disk, --dataloss -t ALL)", async () => {
    const baseline = readBaseline(ONE_DISK_BASELINE);
    const result = await runConformance({ native: true, pattern: "ALL", baseline, notRun: Object.keys(baseline.notRun ?? {}), timeoutMs: scaled(900_000) });
    expect(result.crashed).toBeUndefined();
    const verdicts = Object.fromEntries(result.outcomes.map((o) => [o.name, o.result]));
    const differences = Object.entries(baseline.results)
      .filter(([name, verdict]) => !(name in baseline.notJudged) && verdicts[name] !== verdict)
      .map(([name, verdict]) => `${name}: the JS board ${verdict}, the native board ${verdicts[name] ?? "did not run"}`);
    expect(differences).toEqual([]);
    expect(result.outcomes.length).toBe(Object.keys(baseline.results).length);
  }, scaled(1_200_000));
});
