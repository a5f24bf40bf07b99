// The seal of a recording (docs/replay.md, "The seal"): at a clean shutdown, `run --record` replays what it has just
// recorded, on the virtual clock, with the bus trace on. When every send matches, the replay's trace hash is appended
// as the Seal record: the trace hash of the session, obtained without paying for a live trace while serving. When
// something does not match, the recording is left unsealed and the divergence is printed: that is a determinism bug.
import { Trace } from "../../host/sim/trace.ts";
import { RecordingError, type RecordingSeal } from "./format.ts";
import { openRecording, type RecordingReader } from "./reader.ts";
import { replay } from "./replay.ts";

/** Replays the recording at `path` with `firmware`; the seal when it replays exactly, else undefined (said on `out`). */
export function sealRecording(path: string, firmware: Uint8Array, out: (line: string) => void): RecordingSeal | undefined {
  const started = performance.now();
  let recording: RecordingReader | undefined;
  try {
    recording = openRecording(path);
    const trace = new Trace({ hashOffThread: true });
    const result = replay({ recording, firmware, trace });
    void trace.close(); // its hash thread (no file)
    const wallS = (performance.now() - started) / 1000;
    if (!result.identical) {
      out(`recording: not sealed: the checking replay diverged: ${result.divergence}`);
      return undefined;
    }
    out(`recording: sealed by a checking replay (${wallS.toFixed(1)} s): every send as recorded, ${result.sentBytes} bytes, sha256 ${result.sentSha256}; trace ${result.traceEvents} events, sha256 ${result.traceHash}`);
    return { traceHash: result.traceHash, traceEvents: result.traceEvents, sentSha256: result.sentSha256, by: "replay at shutdown" };
  } catch (error) {
    // The board has stopped and its recording is written: a failure here must not lose the shutdown.
    if (error instanceof RecordingError) out(`recording: not sealed: ${error.message}`);
    else out(`recording: not sealed: the checking replay failed: ${(error as Error).stack ?? String(error)}`);
    return undefined;
  } finally {
    recording?.close();
  }
}
