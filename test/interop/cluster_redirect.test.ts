// Login redirect with real initiators (docs/cluster.md, "Login redirect"): two boards of a cluster, each its own
// `wasm-iop run` process with its own board file naming the other, board b owning every page of the partitioned
// volume (the two processes share no fabric, so b must own what it serves: a page of a's would be proxied over a
// fabric that is not there, and fail) and board a set to redirect. libiscsi's iscsi-ls (discovery: every board's
// portals), iscsi-inq and QEMU's iSCSI driver (qemu-img) log in to a, are answered Target Moved Temporarily with b's
// portal, and follow it: the image qemu-img writes through a's URL is read back byte-identical through b's, from b's
// own disk (the boards share no data, so the bytes can only be there if the writes went to b), and a's console
// counts one redirect per login. iscsi-inq also parses b's ALUA designators in VPD 83h. A cluster run by
// `run --cluster` (one process, a fabric, proxy I/O) is redirected the same way. Without the Debian tools the tests
// say what they skipped; under CI a missing tool is a failure.
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Prng } from "../../host/sim/prng.ts";
import { scaled } from "../support/time.ts";

const run = promisify(execFile);
const TOOLS = ["iscsi-ls", "iscsi-inq", "qemu-img"];
const missing = TOOLS.filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `cluster redirect interop skipped: ${missing.join(", ")} not installed (Debian: apt-get install libiscsi-bin qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const TARGET = "iqn.2026-11.org.wasm-iop:cluster";
// Two ports of the 22000-22999 range, different for concurrent runs of this file.
const PORT_A = 22000 + (process.pid % 400) * 2;
const PORT_B = PORT_A + 1;
const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-cluster-"));

/** A one-processor board: a NIC and a 16 MiB disk, the disk a partitioned volume of 16 pages of 1 MiB, all b's. */
function boardFile(name: "a" | "b"): string {
  const owners = Array.from({ length: 16 }, () => "b");
  const spec = {
    name: `cluster-${name}`, seed: 1,
    processors: [{ name: "host", role: "host", ramMiB: 64, pci: [{ slot: 3, model: "virtio-scsi", disks: ["disk0"] }, { slot: 4, model: "nic" }] }],
    disks: [{ name: "disk0", sizeMiB: 16, blockSize: 512, backend: "memory" }],
    volumes: [{ name: "pv0", type: "disk", disk: "disk0" }],
    targets: [{ name: TARGET, luns: ["pv0"] }],
    cluster: {
      version: 1, board: name, redirect: true,
      boards: [
        { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: PORT_A }] },
        { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: PORT_B }] },
      ],
      volumes: [{ volume: "pv0", pageBlocks: 2048, pageCount: 16, owners }],
    },
  };
  const file = join(tmp, `${name}.json`);
  writeFileSync(file, JSON.stringify(spec, null, 2));
  return file;
}

interface Running { child: ChildProcess; out: string[]; exited: Promise<number | null> }

async function start(name: "a" | "b", port: number): Promise<Running> {
  return spawnRun(name, ["--board", boardFile(name), "--portal", `127.0.0.1:${port}`, "--data-dir", join(tmp, name)], 1);
}

/** `wasm-iop run ARGS`, resolved once `urls` iscsi:// lines are printed. */
async function spawnRun(name: string, args: string[], urls: number): Promise<Running> {
  const child = spawn(process.execPath, ["bin/wasm-iop.js", "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const out: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let ready: () => void = () => {};
  const up = new Promise<void>((resolve) => (ready = resolve));
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      out.push(...chunk.split("\n").filter((l) => l !== ""));
      if (out.filter((l) => l.includes("iscsi://")).length >= urls) ready();
    });
  }
  const timeoutMs = scaled(60_000);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([up, exited.then((code) => { throw new Error(`board ${name} exited ${code}:\n${out.join("\n")}`); }),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`board ${name} not serving in ${timeoutMs} ms:\n${out.join("\n")}`)), timeoutMs)))])
    .finally(() => clearTimeout(timer));
  return { child, out, exited };
}

async function stop(r: Running | undefined): Promise<void> {
  if (r === undefined || r.child.exitCode !== null) return;
  r.child.kill("SIGTERM");
  await r.exited;
}

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const redirects = (r: Running): number => r.out.filter((l) => l.includes("iscsi: login redirected")).length;

describe.skipIf(missing.length > 0)("login redirect across two `run` processes (libiscsi, qemu-img)", () => {
  let a: Running | undefined;
  let b: Running | undefined;
  beforeAll(async () => {
    [a, b] = await Promise.all([start("a", PORT_A), start("b", PORT_B)]);
  }, scaled(120_000));
  afterAll(async () => {
    await Promise.all([stop(a), stop(b)]);
  });

  it("SendTargets through either board lists both boards' portals, tags 1 and 2 (iscsi-ls)", async () => {
    for (const port of [PORT_A, PORT_B]) {
      const { stdout } = await run("iscsi-ls", [`iscsi://127.0.0.1:${port}`]);
      expect(stdout).toContain(`Target:${TARGET} Portal:127.0.0.1:${PORT_A},1`);
      expect(stdout).toContain(`Target:${TARGET} Portal:127.0.0.1:${PORT_B},2`);
    }
  }, scaled(60_000));

  it("iscsi-inq logs in to a, is redirected to b, and gets b's INQUIRY", async () => {
    const before = redirects(a!);
    const { stdout } = await run("iscsi-inq", [`iscsi://127.0.0.1:${PORT_A}/${TARGET}/0`]);
    expect(stdout).toContain("Vendor:WASM-IOP");
    expect(redirects(a!)).toBe(before + 1);
  }, scaled(60_000));

  it("qemu-img writes 4 MiB through a's URL (redirected to b) and reads it back identical through b's", async () => {
    const image = join(tmp, "random.img");
    const bytes = new Uint8Array(4 << 20);
    new Prng("cluster redirect").fill(bytes);
    writeFileSync(image, bytes);
    const before = redirects(a!);
    await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, `iscsi://127.0.0.1:${PORT_A}/${TARGET}/0`]);
    expect(redirects(a!)).toBeGreaterThan(before);
    const back = join(tmp, "back.img");
    await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", `iscsi://127.0.0.1:${PORT_B}/${TARGET}/0`, back]);
    expect(Buffer.compare(readFileSync(back).subarray(0, bytes.length), Buffer.from(bytes))).toBe(0);
  }, scaled(180_000));

  it("iscsi-inq parses b's VPD 83h with its target port group and relative target port designators (iSCSI, target port)", async () => {
    const { stdout } = await run("iscsi-inq", ["-e", "1", "-c", "131", `iscsi://127.0.0.1:${PORT_B}/${TARGET}/0`]);
    const designators = stdout.split("DEVICE DESIGNATOR #").slice(1);
    expect(designators).toHaveLength(4);
    for (const type of ["(5) TARGET_PORT_GROUP", "(4) RELATIVE_TARGET_PORT"]) {
      const d = designators.find((text) => text.includes(`Designator Type:${type}`));
      expect(d, type).toBeDefined();
      expect(d).toContain("Device Protocol Identifier:(5) ISCSI");
      expect(d).toContain("Association:(1) TARGET_PORT");
      expect(d).toContain("PIV:1");
    }
    const pages = await run("iscsi-inq", ["-e", "1", `iscsi://127.0.0.1:${PORT_B}/${TARGET}/0`]);
    expect(pages.stdout).toContain("Page:0x86");
    expect(pages.stdout).toContain("Page:0xb3");
  }, scaled(60_000));
});

// The same with the cluster tooling (docs/cluster.md, "The cluster file"): three boards of boards/cluster-node.json in
// one `run --cluster` process, the cluster file giving a 32, b 16 and c 48 of pv0's 96 pages, and redirect on.
// iscsi-ls through a lists the three portals; iscsi-inq and qemu-img given a's URL end up on c; what qemu-img wrote
// reads back through c's URL.
const PORT_C0 = 22800 + (process.pid % 60) * 3;
describe.skipIf(missing.length > 0)("login redirect in a cluster run by `run --cluster` (one process, three boards)", () => {
  let cluster: Running | undefined;
  const url = (k: number) => `iscsi://127.0.0.1:${PORT_C0 + k}/iqn.2026-12.org.wasm-iop:trio/0`;
  beforeAll(async () => {
    const owners = Array.from({ length: 96 }, (_, p) => (p % 3 === 0 ? "a" : p % 6 === 1 ? "b" : "c"));
    const file = join(tmp, "trio-redirect.json");
    writeFileSync(file, JSON.stringify({
      name: "trio-redirect", seed: 17, version: 1, redirect: true,
      boards: ["a", "b", "c"].map((name, k) => ({ name, id: k + 1, file: join(process.cwd(), "boards/cluster-node.json"), portals: [{ host: "127.0.0.1", port: PORT_C0 + k }] })),
      volumes: [{ volume: "pv0", pageBlocks: 2048, pageCount: 96, owners }],
    }));
    cluster = await spawnRun("trio-redirect", ["--cluster", file, "--data-dir", join(tmp, "trio")], 3);
  }, scaled(120_000));
  afterAll(async () => {
    await stop(cluster);
  });

  it("iscsi-ls lists the three boards' portals; iscsi-inq and qemu-img through a are redirected to c", async () => {
    const { stdout } = await run("iscsi-ls", [`iscsi://127.0.0.1:${PORT_C0}`]);
    for (let k = 0; k < 3; k++) expect(stdout).toContain(`Portal:127.0.0.1:${PORT_C0 + k},${k + 1}`);
    expect((await run("iscsi-inq", [url(0)])).stdout).toContain("Vendor:WASM-IOP");
    expect(redirects(cluster!)).toBe(1);
    const image = join(tmp, "trio.img");
    const bytes = new Uint8Array(4 << 20);
    new Prng("cluster redirect trio").fill(bytes);
    writeFileSync(image, bytes);
    await run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, url(0)]);
    expect(redirects(cluster!)).toBeGreaterThan(1);
    const back = join(tmp, "trio-back.img");
    await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", url(2), back]);
    expect(Buffer.compare(readFileSync(back).subarray(0, bytes.length), Buffer.from(bytes))).toBe(0);
  }, scaled(240_000));
});

