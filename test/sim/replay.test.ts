// Record and replay on the virtual clock (docs/replay.md), without sockets: a simulation seed under every fault is
// recorded through the board's door and replayed by tools/replay with no simulator, to the same sends, the same
// SHA-256 of every byte sent and the same trace hash; one received byte changed (its record's checksum made right)
// gives a divergence naming the first send that differs, at its board time; --until stops exactly at an input's
// place; and the packet capture of the run is byte-identical to the replay's.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { RecordKind } from "../../tools/replay/format.ts";
import { parseRecording, type Recording } from "../../tools/replay/reader.ts";
import { PcapWriter } from "../../tools/replay/pcap.ts";
import { Recorder } from "../../tools/replay/recorder.ts";
import { replay } from "../../tools/replay/replay.ts";
import { FAULT_KINDS_ALL } from "../../tools/simulate/faults.ts";
import { simulate, type SimulationResult } from "../../tools/simulate/simulation.ts";
import { fileTempDir } from "../support/temp_dir.ts";

const dir = fileTempDir("wasm-iop-replay-sim-");
const path = join(dir, "seed.rec");
const firmware = new Uint8Array(readFileSync(FIRMWARE_PATH));
let simulated: SimulationResult;
let recording: Recording;

describe("record and replay of a simulation seed", () => {
  beforeAll(() => {
    let recorder: Recorder | undefined;
    let pcap: PcapWriter | undefined;
    const trace = new Trace();
    simulated = simulate({
      seed: 5, ops: 600, faults: FAULT_KINDS_ALL, trace, faultEveryOps: 20,
      attach: (board) => {
        board.ingress.observe((pcap = new PcapWriter(join(dir, "simulated.pcap"))));
        recorder = new Recorder({ path, command: "simulate", tool: "test", boardFile: board.spec.file, spec: board.spec, seed: board.seed, portals: board.spec.portals, verbose: false, dataDir: dir, copyDisks: false, hashSent: true });
        recorder.begin(board, firmware);
      },
      detach: (board) => recorder!.end(board.ingress.position, "end of simulation", trace),
    });
    recorder!.close();
    pcap!.finish();
    recording = parseRecording(readFileSync(path), path);
  }, 120_000);

  it("replays with no simulator to the same sends, bytes and trace hash", () => {
    expect(simulated.faultsInjected).toBeGreaterThan(5);
    const kinds = new Set(recording.events.map((e) => e.kind));
    for (const kind of [RecordKind.Opened, RecordKind.Received, RecordKind.Sent, RecordKind.Fault, RecordKind.Note]) expect(kinds).toContain(kind);
    expect(recording.end.end.traceHash).toBe(simulated.traceHash);
    const pcap = new PcapWriter(join(dir, "replayed.pcap"));
    const result = replay({ recording, firmware: recording.firmware, trace: new Trace(), observers: [pcap] });
    pcap.finish();
    expect(result.divergence).toBeUndefined();
    expect(result.identical).toBe(true);
    expect(result.traceHash).toBe(simulated.traceHash);
    expect(result.sentSha256).toBe(recording.end.end.sentSha256);
    expect(readFileSync(join(dir, "replayed.pcap")).equals(readFileSync(join(dir, "simulated.pcap")))).toBe(true);
  });

  it("names the first send that differs when a received byte is changed", () => {
    const original = readFileSync(path);
    const bytes = new Uint8Array(original); // a copy to change
    // The 3rd received record (a PDU header of a login or a command): flip its last byte, make its checksum right again.
    const target = parseRecording(original, path).events.filter((e) => e.kind === RecordKind.Received)[2]!;
    const data = (target as { bytes: Uint8Array }).bytes;
    const dataEnd = data.byteOffset - original.byteOffset + data.length; // the payload ends where the CRC starts
    bytes[dataEnd - 1]! ^= 0x01;
    new DataView(bytes.buffer).setUint32(dataEnd, crc32(bytes.subarray(target.offset, dataEnd)), true);
    const mutated = parseRecording(bytes, "mutated.rec");
    const result = replay({ recording: mutated, firmware: recording.firmware, trace: new Trace() });
    expect(result.identical).toBe(false);
    expect(result.divergence).toMatch(/^expected record \d+ \((sent|board-closed)[^)]*\) at \d+\.\d{9} s, board event \d+; the board /);
    const index = Number(/^expected record (\d+)/.exec(result.divergence!)![1]);
    expect(index).toBeGreaterThan(target.index);
  });

  it("--until stops just before an input, at its board time", () => {
    const input = recording.events.filter((e) => e.kind === RecordKind.Received)[10]!;
    const result = replay({ recording, firmware: recording.firmware, trace: new Trace(), untilIndex: input.index });
    expect(result.divergence).toBeUndefined();
    expect(result.stoppedBefore).toMatch(new RegExp(`^record ${input.index} \\(received`));
    expect(result.boardTimeNs).toBe(input.at.timeNs);
    expect(result.identical).toBe(false); // stopped, not finished
  });
});
