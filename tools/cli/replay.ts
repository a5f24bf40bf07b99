// wasm-iop replay: runs a recording of `run --record` (or `simulate --record`) again, offline, on the virtual clock.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Trace } from "../../host/sim/trace.ts";
import { hashDiskFile, replayDisk } from "../replay/disks.ts";
import { DISK_CHUNK_BYTES, RecordingError } from "../replay/format.ts";
import { openRecording, type RecordingReader } from "../replay/reader.ts";
import { PcapWriter } from "../replay/pcap.ts";
import { replayFuzz } from "../replay/fuzz_recording.ts";
import { describeRecord, replay } from "../replay/replay.ts";
import { type Command, UsageError } from "./command.ts";

const help = `usage: wasm-iop replay FILE [options]

Runs a recording made by \`wasm-iop run --record FILE\` (or \`simulate --record\`, or \`fuzz --replay F --record\`)
again, offline, on the board's virtual clock and as fast as the host allows: the same board file, seed and
disks, every connection, received byte and control command applied where it entered the board (at the same board
time, after the same count of board events). Each send of the board is checked against the recording (its place, connection, length and
CRC-32), and at the end every byte sent (SHA-256) and the trace hash. The first difference is named: the record,
its board time, and what was expected against what the board did. A fuzz finding's recording is run on its
target's board from the target's snapshot, its input made again, and every passage of the door is checked, what
came in as well as what went out. Details: docs/replay.md.

options:
  --firmware IMAGE   run this .wasm instead of the image the recording holds (a debug build, a fix): where its
                     behaviour differs from the recorded image's is the divergence
  --trace OUT        write the bus trace as JSON lines (its SHA-256 is the trace hash)
  --until EVENT      stop just before record EVENT (its number, as a divergence names it), or before the first
                     record at or after a board time given as SECONDS followed by s (12.5s)
  --pcap OUT         write the NIC's traffic as a pcap file (synthesized TCP/IP, board-time timestamps)
  --list             print the recording's records (number, kind, board time, board event) and exit
  --disks DIR        images of disks the recording did not copy (DIR/<image> as the board file names them),
                     as they were when recording began; checked against the recorded hashes
  --verbose          print the board's console
  --json             print the result as a JSON object on stdout
  -h, --help         this help

Exit status: 0 when the replay matched the recording (or --until stopped it before a divergence), 1 when it
diverged or the recording cannot be read (one line names what is wrong and where), 2 for a usage error.`;

function parseUntil(text: string): { untilIndex?: number; untilNs?: number } {
  const time = /^(\d+(?:\.\d+)?)s$/.exec(text);
  if (time !== null) return { untilNs: Math.round(Number(time[1]) * 1e9) };
  const index = Number(text);
  if (!Number.isSafeInteger(index) || index < 0) throw new UsageError(`--until: expected a record number or a board time such as 12.5s, got "${text}"`);
  return { untilIndex: index };
}

export const replayCommand: Command = {
  name: "replay",
  help,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        firmware: { type: "string" },
        trace: { type: "string" },
        until: { type: "string" },
        pcap: { type: "string" },
        disks: { type: "string" },
        verbose: { type: "boolean", default: false },
        list: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
      strict: true,
    });
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "expected the recording FILE" : `expected one recording, got ${positionals.length}`);
    const file = positionals[0]!;
    const until = values.until === undefined ? {} : parseUntil(values.until);
    const say = (line: string) => (values.json ? process.stderr : process.stdout).write(line + "\n");
    let sizeBytes: number;
    try {
      sizeBytes = statSync(file).size;
    } catch (error) {
      process.stderr.write(`wasm-iop replay: ${file}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}\n`);
      return 1;
    }
    // Read through a window as the replay goes (tools/replay/reader.ts): a recording of gigabytes costs a few MiB.
    let recording: RecordingReader | undefined;
    try {
      recording = openRecording(file);
      const { meta } = recording;
      if (values.list) {
        for (let record = recording.peek(); record !== undefined; record = recording.peek()) {
          process.stdout.write(describeRecord(record) + "\n");
          recording.advance();
        }
        if (recording.seal !== undefined) process.stdout.write(`sealed: trace ${recording.seal.traceEvents} events, sha256 ${recording.seal.traceHash} (${recording.seal.by})\n`);
        return 0;
      }
      const firmwarePath = values.firmware ?? "the recorded image";
      const firmware = values.firmware === undefined ? recording.firmware : new Uint8Array(readFileSync(resolve(values.firmware)));
      say(`replay ${file}: ${meta.command} of board ${(meta.spec as { name?: string }).name ?? "?"} (${meta.boardFile}), seed ${meta.seed}, ` +
        `${sizeBytes} bytes, recorded ${meta.created} by ${meta.tool}`);
      const diskImages = values.disks === undefined ? undefined : readDiskImages(values.disks, meta.spec as { disks: { name: string; backend: string; image?: string }[] }, meta.disks);
      // A fuzz replay writes its own; the lines are hashed on a worker thread (host/sim/hash_thread.ts).
      const trace = new Trace({ path: recording.fuzzStart !== undefined ? undefined : values.trace, hashOffThread: true });
      const pcap = values.pcap === undefined ? undefined : new PcapWriter(resolve(values.pcap), { adoptOpen: recording.fuzzStart !== undefined });
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      const mainBeforeNs = mainThreadCpuNs();
      const observers = pcap === undefined ? [] : [pcap];
      // A fuzz finding's recording: its target's board, its input run again, every passage of the door checked.
      const result = recording.fuzzStart !== undefined ? replayFuzz({ recording, firmware, trace, ...until, observers, tracePath: values.trace }) : replay({
        recording, firmware, trace, ...until, observers, diskImages,
        onConsole: values.verbose ? (processor, _fd, line) => say(`[${processor}] ${line}`) : undefined,
      });
      const wallS = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const mainS = mainBeforeNs === undefined ? undefined : (mainThreadCpuNs()! - mainBeforeNs) / 1e9;
      await trace.close();
      pcap?.finish();
      if (!result.firmwareMatches) say(`firmware ${firmwarePath} is not the recorded image (sha256 ${meta.firmwareSha256.slice(0, 16)}...): a divergence shows where its behaviour changed`);
      const speed = wallS > 0 ? (result.boardTimeNs / 1e9 / wallS).toFixed(1) : "-";
      const ended = recording.end === undefined ? "" : `recording ended by ${recording.end.end.reason}; `;
      const cpuText = `${((cpu.user + cpu.system) / 1e6).toFixed(2)} s of CPU${mainS === undefined ? "" : `, ${mainS.toFixed(2)} s of it the board's thread`}`;
      const summary = `${ended}board time ${(result.boardTimeNs / 1e9).toFixed(6)} s in ${wallS.toFixed(2)} s of wall time (${speed}x real time; ${cpuText}), ${result.recordsApplied} inputs applied, ` +
        `${result.sentBytes} bytes sent (sha256 ${result.sentSha256.slice(0, 16)}...), trace ${result.traceEvents} events (sha256 ${result.traceHash})`;
      if (result.stoppedBefore !== undefined) say(`stopped before ${result.stoppedBefore}: ${summary}`);
      else if (result.divergence !== undefined) say(`DIVERGED: ${result.divergence}\n  ${summary}`);
      else say(`identical: every send, the ${result.sentBytes} bytes sent${result.expectedTraceHash === null ? "" : " and the trace hash"} match the recording${result.expectedTraceHash === null ? " (it holds no trace hash: unsealed)" : ""}; ${summary}`);
      for (const panic of result.panics) say(`panic on ${panic.processor} at ${(panic.timeNs / 1e9).toFixed(6)} s: ${panic.kind}, task ${panic.task}, code ${panic.code}: ${panic.message}`);
      if (pcap !== undefined) say(`packet capture: ${pcap.path}, ${pcap.packetCount} packets`);
      if (values.json) process.stdout.write(JSON.stringify({ ...result, file, wallSeconds: Number(wallS.toFixed(3)) }, null, 2) + "\n");
      return result.divergence === undefined ? 0 : 1;
    } catch (error) {
      if (!(error instanceof RecordingError)) throw error;
      process.stderr.write(`wasm-iop replay: ${error.message}\n`);
      return 1;
    } finally {
      recording?.close();
    }
  },
};

// The images under DIR of the disks the recording did not copy, read as the recorder read them.
function readDiskImages(dir: string, spec: { disks: { name: string; backend: string; image?: string }[] }, disks: readonly { name: string; sizeBytes: number; blockSize: 512 | 4096; backend: "file" | "memory"; sha256: string; copied: boolean }[]) {
  const images = new Map<string, ReturnType<typeof replayDisk>>();
  const present = new Set(readdirSync(dir));
  for (const disk of disks) {
    const image = spec.disks.find((d) => d.name === disk.name)?.image;
    if (disk.copied || image === undefined || !present.has(image)) continue;
    const chunks: { chunk: number; bytes: Uint8Array }[] = [];
    hashDiskFile(join(dir, image), disk.sizeBytes, (chunk, bytes) => chunks.push({ chunk, bytes: bytes.slice(0, DISK_CHUNK_BYTES) }));
    images.set(disk.name, replayDisk(disk, chunks));
  }
  return images;
}

/** The main thread's time on a CPU so far, in ns (Linux: /proc/self/schedstat); undefined elsewhere. */
function mainThreadCpuNs(): number | undefined {
  try {
    return Number(readFileSync("/proc/self/schedstat", "utf8").split(" ")[0]);
  } catch {
    return undefined;
  }
}
