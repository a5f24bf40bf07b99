// Fuzz findings as recordings (tools/replay/fuzz_recording.ts; docs/replay.md, "Fuzz findings"): a reproducer of a
// target with an iSCSI session (scsi) and of one that drives the messaging unit around the door (mu) is recorded
// while it runs from its snapshot, and the replay runs its input again to the same passages of the door, the same
// finding, bytes sent and trace hash; a changed received byte in the recording, or the recording's input changed,
// is named as the first divergence; --until stops before a record; the CLI does the same through
// `fuzz --replay --record --pcap` and `replay`, and the capture holds the session's packets.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { Trace } from "../../host/sim/trace.ts";
import { buildFirmware, FIRMWARE_FUZZ_PATH, ROOT } from "../../tools/build/firmware.ts";
import { decodeReproducer, replay as replayReproducer } from "../../tools/fuzz/engine.ts";
import { loadFuzzFirmware } from "../../tools/fuzz/harness.ts";
import { RecordKind } from "../../tools/replay/format.ts";
import { fuzzTraceHash, recordFuzzInput, replayFuzz } from "../../tools/replay/fuzz_recording.ts";
import { openRecording, parseRecording, streamOf } from "../../tools/replay/reader.ts";
import { runCli } from "../support/cli.ts";
import { scaled } from "../support/time.ts";
import { fileTempDir } from "../support/temp_dir.ts";

const dir = fileTempDir("wasm-iop-fuzz-rec-");
const reproducer = (name: string) => decodeReproducer(readFileSync(join(ROOT, "test/fuzz/regressions", name)), name);
let firmware: Uint8Array;

beforeAll(async () => {
  await buildFirmware(["fuzz"]); // a check: the global setup built it
  firmware = new Uint8Array(readFileSync(FIRMWARE_FUZZ_PATH));
}, scaled(120_000));

describe("fuzz findings as recordings", () => {
  it.each([["scsi-lost-command-9fac569a58d9.bin", true], ["mu-leak-c5d7540d5d18.bin", false]] as const)("%s: recorded and replayed to the same door passages, finding, sends and trace hash", (name, session) => {
    const r = reproducer(name);
    const path = join(dir, `${name}.rec`);
    const recorded = recordFuzzInput({ target: r.target, seed: r.seed, input: r.input, firmware, tool: "test", recordPath: path });
    // The same run as the plain reproducer replay: same finding and trace lines.
    const plain = replayReproducer(r, loadFuzzFirmware(FIRMWARE_FUZZ_PATH));
    expect(recorded.finding).toEqual(plain.finding);
    expect(fuzzTraceHash(recorded.trace)).toBe(fuzzTraceHash(plain.trace));
    expect(recorded.end!.traceHash).toBe(fuzzTraceHash(plain.trace));
    const recording = parseRecording(readFileSync(path), path);
    expect(recording.fuzzStart).toMatchObject({ target: r.target, seed: r.seed, input: Buffer.from(r.input).toString("base64") });
    const kinds = new Set(recording.events.map((e) => e.kind));
    if (session) for (const kind of [RecordKind.Received, RecordKind.Sent]) expect(kinds).toContain(kind);
    const reader = openRecording(path); // through the file window, as the CLI reads it
    const result = replayFuzz({ recording: reader, firmware: recording.firmware, trace: new Trace({ enabled: false }) });
    reader.close();
    expect(result.divergence).toBeUndefined();
    expect(result.identical).toBe(true);
    expect(result.traceHash).toBe(recorded.end!.traceHash);
    expect(result.expectedTraceHash).toBe(recorded.end!.traceHash);
    expect(result.sentSha256).toBe(recorded.end!.sentSha256);
  }, scaled(120_000));

  it("names a changed received byte, a changed input, and stops before a record with --until", () => {
    const r = reproducer("scsi-lost-command-9fac569a58d9.bin");
    const path = join(dir, "scsi.rec");
    recordFuzzInput({ target: r.target, seed: r.seed, input: r.input, firmware, tool: "test", recordPath: path });
    const original = readFileSync(path);
    const recording = parseRecording(original, path);
    const received = recording.events.filter((e) => e.kind === RecordKind.Received)[3]!;
    // Flip the received record's last byte and make its checksum right again.
    const bytes = Buffer.from(original);
    const next = recording.events.find((e) => e.index === received.index + 1)!;
    const crcAt = next.offset - 4;
    bytes[crcAt - 1]! ^= 0x01;
    bytes.writeUInt32LE(crc32(bytes.subarray(received.offset, crcAt)), crcAt);
    const mutated = replayFuzz({ recording: streamOf(parseRecording(bytes, "m.rec")), firmware, trace: new Trace({ enabled: false }) });
    expect(mutated.identical).toBe(false);
    expect(mutated.divergence).toMatch(new RegExp(`^expected record ${received.index} \\(received, \\d+ bytes on connection \\d+\\) at [\\d.]+ s, board event \\d+; the board received \\d+ bytes on connection \\d+, crc 0x[0-9a-f]{8} at`));

    // Another input in the fuzz start: the door sees other passages, or the end differs.
    const other = recordFuzzInput({ target: r.target, seed: r.seed, input: r.input.subarray(0, r.input.length >> 1), firmware, tool: "test", recordPath: join(dir, "half.rec") });
    expect(other.end!.traceHash).not.toBe(recording.end.end.traceHash);
    const spliced = { ...recording, fuzzStart: { ...recording.fuzzStart!, input: Buffer.from(r.input.subarray(0, r.input.length >> 1)).toString("base64") } };
    const changed = replayFuzz({ recording: streamOf(spliced), firmware, trace: new Trace({ enabled: false }) });
    expect(changed.identical).toBe(false);
    expect(changed.divergence).toBeDefined();

    const until = recording.events.filter((e) => e.kind === RecordKind.Received)[2]!;
    const stopped = replayFuzz({ recording: streamOf(recording), firmware, trace: new Trace({ enabled: false }), untilIndex: until.index });
    expect(stopped.divergence).toBeUndefined();
    expect(stopped.stoppedBefore).toMatch(new RegExp(`^record ${until.index} \\(received`));
    expect(stopped.boardTimeNs).toBe(until.at.timeNs);
  }, scaled(120_000));

  it("fuzz --replay --record --pcap, then wasm-iop replay of the recording: identical, and the capture holds the session", async () => {
    const repro = join(ROOT, "test/fuzz/regressions/scsi-lost-command-9fac569a58d9.bin");
    const path = join(dir, "cli.rec");
    const pcap = join(dir, "cli.pcap");
    const made = await runCli(["fuzz", "--replay", repro, "--quiet", "--record", path, "--pcap", pcap]);
    expect(made.stdout).toMatch(/recording: .*cli\.rec/);
    expect(made.stdout).toMatch(/packet capture: .*cli\.pcap, [1-9]\d* packets/);
    const replayed = await runCli(["replay", path, "--json"]);
    expect(replayed.code, replayed.stderr).toBe(0);
    const result = JSON.parse(replayed.stdout) as { identical: boolean; traceHash: string; expectedTraceHash: string };
    expect(result.identical).toBe(true);
    expect(result.traceHash).toBe(result.expectedTraceHash);
  }, scaled(180_000));
});
