// wasm-iop trace: records the replayable traces a trace-driven board is checked on, and replays one under wasmtime.
import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../../host/root.ts";
import { FIRMWARE_PATH } from "../build/firmware.ts";
import { buildNativeTraceBoard, nativeTraceBoardMissing } from "../trace_board/native_build.ts";
import { recordBootTrace, recordIscsiTrace, type RecordedTrace } from "../trace_board/record.ts";
import { type Command, UsageError } from "./command.ts";

const help = `usage: wasm-iop trace boot FILE [--seconds N]
       wasm-iop trace iscsi FILE [--seconds N] [--image-mib N] [--interval-ms N]
       wasm-iop trace replay FILE [--image WASM ...] [--native] [--json]

Records a replayable bus trace (docs/trace-format.md) of build/firmware.wasm on the default board, or replays one
on the trace-driven board under wasmtime (tools/trace_board/replay.py), which answers every import from the trace
and names the first difference. A FILE ending in .gz is written and read gzip-compressed.

  boot     boot the board in simulation and run it for N seconds of board time (default 2)
  iscsi    serve the board in real time on a free loopback port while qemu-img writes a random image of
           --image-mib MiB (default 1) to LUN 1, reads it back and compares, one round every --interval-ms
           (default 1000; 0: back to back), for about N seconds (default 10); every byte moved is in the trace.
           Needs qemu-img with its iSCSI driver (Debian: qemu-utils, qemu-block-extra)
  replay   run FILE under wasmtime (python3 with \`pip install wasmtime\`); --image names the image(s) the trace may
           name (default build/firmware.wasm); --json prints the result as one JSON object. --native runs it on the
           C trace-driven board instead (tools/trace_board/native/, built with CMake into build/trace-board/ on the
           native board's runtime port, boards/native/src/runtime.h)

Exit status: 0 recorded, or replayed with no difference; 1 a difference or a failed recording; 2 usage error or a
missing python3/wasmtime.`;

export const REPLAY_SCRIPT = join(ROOT, "tools/trace_board/replay.py");

function summary(recorded: RecordedTrace): string {
  const bytes = statSync(recorded.path).size;
  return `${recorded.path}: ${recorded.note}, ${(recorded.boardTimeNs / 1e9).toFixed(3)} s of board time, ${recorded.hashedLines} hashed lines ` +
    `(sha256 ${recorded.sha256}) and ${recorded.replayLines} replay lines, ${(bytes / 1048576).toFixed(2)} MiB`;
}

export const traceCommand: Command = {
  name: "trace",
  help,
  async run(argv) {
    const [action, ...rest] = argv;
    const { values, positionals } = parseArgs({
      args: rest,
      options: {
        seconds: { type: "string" },
        "image-mib": { type: "string" },
        "interval-ms": { type: "string" },
        image: { type: "string", multiple: true },
        json: { type: "boolean", default: false },
        native: { type: "boolean", default: false },
      },
      allowPositionals: true,
      strict: true,
    });
    if (action !== "boot" && action !== "iscsi" && action !== "replay") {
      throw new UsageError(action === undefined ? "expected boot, iscsi or replay" : `unknown action '${action}': expected boot, iscsi or replay`);
    }
    if (positionals.length !== 1) throw new UsageError(`expected one FILE, got ${positionals.length}`);
    const file = positionals[0]!;
    const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
    if (seconds !== undefined && !(seconds > 0)) throw new UsageError(`--seconds: expected a number > 0, got "${values.seconds}"`);
    const imageMiB = values["image-mib"] === undefined ? 1 : Number(values["image-mib"]);
    if (!(Number.isInteger(imageMiB) && imageMiB >= 1 && imageMiB <= 60)) throw new UsageError(`--image-mib: expected an integer from 1 to 60, got "${values["image-mib"]}"`);
    const intervalMs = values["interval-ms"] === undefined ? 1000 : Number(values["interval-ms"]);
    if (!(Number.isInteger(intervalMs) && intervalMs >= 0)) throw new UsageError(`--interval-ms: expected an integer >= 0, got "${values["interval-ms"]}"`);
    switch (action) {
      case "boot":
        process.stdout.write(summary(await recordBootTrace(file, seconds ?? 2)) + "\n");
        return 0;
      case "iscsi":
        process.stdout.write(summary(await recordIscsiTrace(file, { seconds: seconds ?? 10, imageMiB, intervalMs })) + "\n");
        return 0;
      case "replay":
        return replay(file, values.image ?? [], values.json, values.native);
    }
  },
};

async function replay(file: string, images: string[], json: boolean, native: boolean): Promise<number> {
  const options = [file, ...(images.length > 0 ? images : [FIRMWARE_PATH]).flatMap((image) => ["--image", image]), ...(json ? ["--json"] : [])];
  let program = "python3";
  let args = [REPLAY_SCRIPT, ...options];
  if (native) {
    const missing = nativeTraceBoardMissing();
    if (missing !== undefined) {
      process.stderr.write(`wasm-iop trace replay --native: ${missing}\n`);
      return 2;
    }
    program = await buildNativeTraceBoard();
    args = options;
  }
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: "inherit" });
    child.on("error", (error) => {
      process.stderr.write(`wasm-iop trace replay: cannot run ${program} (${error.message})${native ? "" : "; the trace-driven board needs python3 and \`pip install wasmtime\`"}\n`);
      resolve(2);
    });
    child.on("exit", (code) => resolve(code ?? 1));
  });
}
