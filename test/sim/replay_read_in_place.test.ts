// A session recorded the way `run --record` records it (no bus trace: nobody watches RAM), replayed with a trace.
// Without a trace a virtio-scsi READ of 32 KiB or more is read into the driver's buffer at submission, ahead of its
// completion's DMA (host/bus/bus.ts quietView); a replay, or the checking replay that seals a recording, has a trace,
// so it takes the watched path (the data moves at the DMA). The firmware never looks at a READ's buffer before its
// completion, so both paths must give the same board: the seed with the path taken (counted, so the test cannot pass
// without it) keeps the shadow (no lost write, no wrong read, under every fault), and its recording replays with a
// trace to the same sends, the same SHA-256 of every byte sent, and the trace hash of the same seed simulated with a
// trace from the start.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Bus } from "../../host/bus/bus.ts";
import { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { parseRecording } from "../../tools/replay/reader.ts";
import { Recorder } from "../../tools/replay/recorder.ts";
import { replay } from "../../tools/replay/replay.ts";
import { FAULT_KINDS_ALL } from "../../tools/simulate/faults.ts";
import { passed, simulate } from "../../tools/simulate/simulation.ts";

const dir = mkdtempSync(join(tmpdir(), "wasm-iop-replay-in-place-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a recording made with READs read in place", () => {
  it("replays with a trace to the same sends, bytes and trace hash as the seed simulated with a trace", () => {
    const path = join(dir, "seed.rec");
    const firmware = new Uint8Array(readFileSync(FIRMWARE_PATH));
    const options = { seed: 7, ops: 600, faults: FAULT_KINDS_ALL, faultEveryOps: 20 };
    // Count the READs that took the in-place path (a view handed out) while the recording ran.
    const quietView = Bus.prototype.quietView;
    let inPlace = 0;
    Bus.prototype.quietView = function (this: Bus, address: bigint, lengthBytes: number) {
      const view = quietView.call(this, address, lengthBytes);
      if (view !== undefined) inPlace += 1;
      return view;
    };
    let recorder: Recorder | undefined;
    const untraced = new Trace({ enabled: false });
    let recorded;
    try {
      recorded = simulate({
        ...options, trace: untraced,
        attach: (board) => {
          recorder = new Recorder({ path, command: "run", tool: "test", boardFile: board.spec.file, spec: board.spec, seed: board.seed, portals: board.spec.portals, verbose: false, dataDir: dir, copyDisks: false, hashSent: true });
          recorder.begin(board, firmware);
        },
        detach: (board) => recorder!.end(board.ingress.position, "end of simulation", untraced),
      });
    } finally {
      Bus.prototype.quietView = quietView;
    }
    recorder!.close();
    expect(inPlace, "READs read in place while recording").toBeGreaterThan(20);
    expect(recorded.failures).toEqual([]);
    expect(passed(recorded)).toBe(true);

    const traced = simulate({ ...options, trace: new Trace() });
    expect(passed(traced)).toBe(true);
    const recording = parseRecording(readFileSync(path), path);
    expect(recording.end.end.traceHash).toBeNull(); // no trace while recording, as run --record without --trace
    let replayedInPlace = 0;
    Bus.prototype.quietView = function (this: Bus, address: bigint, lengthBytes: number) {
      const view = quietView.call(this, address, lengthBytes);
      if (view !== undefined) replayedInPlace += 1;
      return view;
    };
    let result;
    try {
      result = replay({ recording, firmware: recording.firmware, trace: new Trace() });
    } finally {
      Bus.prototype.quietView = quietView;
    }
    expect(replayedInPlace, "a traced replay takes the watched path").toBe(0);
    expect(result.divergence).toBeUndefined();
    expect(result.identical).toBe(true);
    expect(result.sentSha256).toBe(recording.end.end.sentSha256);
    expect(result.traceHash).toBe(traced.traceHash);
    process.stdout.write(`read in place: ${inPlace} READs while recording, seed ${options.seed} × ${options.ops}, ${recorded.faultsInjected} faults; replay identical, trace ${result.traceHash.slice(0, 8)}\n`);
  }, 300_000);
});
