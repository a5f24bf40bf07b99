// Record and replay of a session served to real clients (docs/replay.md): `wasm-iop run --record --pcap` serves
// libiscsi's iscsi-test-cu (several families, LUN 0) and QEMU's qemu-img convert of a 64 MiB random image (LUN 1) at
// the same time, two initiators at once; SIGINT stops it and the run's checking replay must seal the recording. Then
// `wasm-iop replay` must reproduce every send, the SHA-256 of every byte sent and the trace hash, and the packet
// capture must dissect in Debian's tshark: every iSCSI PDU, none malformed at the iSCSI layer, and per connection the
// count of PDUs the initiator sent and of R2Ts equal to what the target itself counted (its "connection N ends: P PDUs
// in, ..., R R2Ts" console line). Without the Debian tools the test says what it skipped; under CI that fails.
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";
import { Prng } from "../../host/sim/prng.ts";
import { runCli, startCli } from "../support/cli.ts";
import { scaled } from "../support/time.ts";

const run = promisify(execFile);
const TOOLS = ["iscsi-test-cu", "qemu-img", "tshark"];
const missing = TOOLS.filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `replay interop test skipped: ${missing.join(", ")} not installed (Debian: apt-get install libiscsi-bin qemu-utils qemu-block-extra tshark)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

// Families that read, write, compare and query; each a separate iscsi-test-cu process (its own logins).
const FAMILIES = ["Inquiry", "ReadCapacity10", "TestUnitReady", "Read10", "Write10", "Write16", "Verify10", "CompareAndWrite", "ModeSense6"];

describe.skipIf(missing.length > 0)("record and replay of a session with real initiators", () => {
  it("replays to the same sends and trace hash, and its capture dissects in tshark with the target's own PDU counts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wasm-iop-replay-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true })); // ~1.3 GB: the recording, the capture, the image
    const recording = join(dir, "session.rec");
    const capture = join(dir, "session.pcap");
    const image = join(dir, "source.img");
    const bytes = new Uint8Array(64 << 20);
    new Prng("replay-interop").fill(bytes);
    writeFileSync(image, bytes);
    const board = startCli(["run", "--data-dir", join(dir, "data"), "--portal", "127.0.0.1:0", "--record", recording, "--pcap", capture]);
    try {
      await board.waitFor(/iscsi:\/\/\S+\/4\n/, 60_000);
      const urls = board.output().match(/iscsi:\/\/\S+/g)!;
      const cu = (async () => {
        for (const family of FAMILIES) await run("iscsi-test-cu", ["-d", "-s", "-t", `SCSI.${family}`, urls[0]!], { timeout: scaled(120_000) }).catch((e) => e);
      })();
      const convert = run("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", image, urls[1]!], { timeout: scaled(300_000) });
      await Promise.all([cu, convert]);
    } finally {
      board.child.kill("SIGINT");
    }
    const served = await board.result;
    expect(served.code).toBe(0);
    expect(served.stdout).toMatch(/recording: sealed by a checking replay/);
    const sent = /sealed by a checking replay \([\d.]+ s\): every send as recorded, (\d+) bytes, sha256 ([0-9a-f]{64}); trace \d+ events, sha256 ([0-9a-f]{64})/.exec(served.stdout)!;
    expect(Number(sent[1])).toBeGreaterThan(1 << 20);

    // The replay: every send and the end as recorded, and the trace hash the seal holds.
    const replayed = await runCli(["replay", recording, "--json"]);
    expect(replayed.code, replayed.stdout + replayed.stderr).toBe(0);
    const result = JSON.parse(replayed.stdout) as { identical: boolean; sentSha256: string; sentBytes: number; traceHash: string; expectedTraceHash: string };
    expect(result.identical).toBe(true);
    expect(result.sentSha256).toBe(sent[2]);
    expect(result.traceHash).toBe(sent[3]);
    expect(result.expectedTraceHash).toBe(sent[3]);

    // The capture: per TCP stream, the initiator's PDUs and the target's R2Ts, against the target's own counters.
    const { stdout: pdus } = await run("tshark", ["-r", capture, "-Y", "iscsi", "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "iscsi.opcode"], { maxBuffer: 256 << 20 });
    const initiatorPdus = new Map<string, number>();
    const r2ts = new Map<string, number>();
    for (const line of pdus.trim().split("\n")) {
      const [stream, port, opcodes] = line.split("\t") as [string, string, string];
      for (const opcode of opcodes.split(",")) {
        if (port !== "3260") initiatorPdus.set(stream, (initiatorPdus.get(stream) ?? 0) + 1);
        else if (opcode === "0x31") r2ts.set(stream, (r2ts.get(stream) ?? 0) + 1);
      }
    }
    const fromCapture = [...initiatorPdus.keys()].map((s) => `${initiatorPdus.get(s)} PDUs, ${r2ts.get(s) ?? 0} R2Ts`).sort();
    const fromTarget = [...served.stdout.matchAll(/connection \d+ ends: (\d+) PDUs in.*?, (\d+) R2Ts/g)].map((m) => `${m[1]} PDUs, ${m[2]} R2Ts`).sort();
    expect(fromCapture.length).toBeGreaterThan(FAMILIES.length);
    expect(fromCapture).toEqual(fromTarget);
    // Nothing malformed: no frame flagged, at any layer (the families above read no truncated parameter data that
    // Wireshark's SCSI dissector cannot take; docs/replay.md, "Packet capture").
    const { stdout: malformed } = await run("tshark", ["-r", capture, "-Y", "_ws.malformed || _ws.expert.severity >= error"], { maxBuffer: 64 << 20 });
    expect(malformed.trim()).toBe("");
    expect(readFileSync(capture).readUInt32LE(0)).toBe(0xa1b23c4d); // pcap with nanosecond timestamps
  }, scaled(600_000));
});
