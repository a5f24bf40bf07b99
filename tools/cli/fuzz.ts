// wasm-iop fuzz: coverage-guided fuzzing of the firmware on the deterministic board, and replay of reproducers.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildFirmware, FIRMWARE_FUZZ_PATH, packageVersion, ROOT } from "../build/firmware.ts";
import { type CampaignStatus, campaign, decodeReproducer, replay, TARGETS, targetNamed } from "../fuzz/engine.ts";
import { loadFuzzFirmware } from "../fuzz/harness.ts";
import { recordFuzzInput } from "../replay/fuzz_recording.ts";
import { PcapWriter } from "../replay/pcap.ts";
import { type Command, UsageError } from "./command.ts";

const help = `usage: wasm-iop fuzz --target NAME [--seconds N] [--seed S] [--corpus DIR] [--findings DIR] [--jobs J] [--json]
       wasm-iop fuzz --replay FILE [--quiet] [--record OUT] [--pcap OUT]

Coverage-guided fuzzing of the firmware on the deterministic board. The fuzzing image (build/firmware.fuzz.wasm:
the release image with edge counters injected by binaryen, built on demand) boots once; every input then starts
from a snapshot of the prepared board, is decoded into operations, runs, and is checked by the oracles: a panic or
trap, a task over its budget, an access or DMA outside every window, a buffer or frame still held once the board
quiesces, data that differs from the shadow model of the disks, a command never answered, a host exception.
Inputs that reach new coverage join the corpus; each finding is minimized and saved as a reproducer.
docs/fuzzing.md describes the input format of each target, the oracles, and how to triage.

targets:
${TARGETS.map((t) => `  ${t.name.padEnd(6)}  ${t.summary}`).join("\n")}

options:
  --target NAME     what to fuzz (required unless --replay)
  --seconds N       wall-clock length of the campaign (default 60)
  --seed S          the campaign's seed: the board's and the mutator's (default 1)
  --corpus DIR      start from the inputs in DIR and keep new coverage there
  --findings DIR    where reproducers go (default var/fuzz/<target>)
  --jobs J          J campaigns in parallel processes, seeds S..S+J-1, one summary (default 1)
  --json            print the summary as one JSON object instead of text
  --replay FILE     run one reproducer deterministically and print its bus trace, what it did and what it found
  --quiet           with --replay: the operations and the finding, not the trace
  --record OUT      with --replay: also write the run as a recording (docs/replay.md, "Fuzz findings"), which
                    \`wasm-iop replay OUT\` runs again and checks, as it does a served session's
  --pcap OUT        with --replay: write the NIC's traffic during the input as a pcap file
  -h, --help        this help

While it runs, a status line every 2 s (stderr): execs, execs per second, edges, corpus size, findings.
SIGINT or SIGTERM ends the campaign after the input running (with --jobs, every campaign): the summary covers what
ran. Exit status: 0 when no finding (a replay: when the reproducer no longer fails), 1 otherwise, 2 for a usage
error, 130 after SIGINT and 143 after SIGTERM.`;

function describe(status: CampaignStatus): string {
  return `[${status.target}] ${status.seconds.toFixed(0)} s  execs ${status.execs}  ${status.execsPerSecond}/s  edges ${status.edges}  corpus ${status.corpusSize}  findings ${status.findings.length}`;
}

export const fuzzCommand: Command = {
  name: "fuzz",
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        target: { type: "string" }, seconds: { type: "string" }, seed: { type: "string" }, corpus: { type: "string" },
        findings: { type: "string" }, jobs: { type: "string" }, json: { type: "boolean", default: false },
        replay: { type: "string" }, quiet: { type: "boolean", default: false }, record: { type: "string" }, pcap: { type: "string" },
      },
      strict: true,
    });
    const out = (text: string) => process.stdout.write(text + "\n");
    const built = await buildFirmware(["fuzz"]);
    if (built.length > 0) process.stderr.write(`built ${built.join(", ")}\n`);
    const firmware = loadFuzzFirmware(FIRMWARE_FUZZ_PATH);

    if ((values.record !== undefined || values.pcap !== undefined) && values.replay === undefined) throw new UsageError("--record and --pcap go with --replay FILE");
    if (values.replay !== undefined) {
      const file = resolve(values.replay);
      const reproducer = decodeReproducer(readFileSync(file), file);
      // The target's session was opened before the snapshot: its connections appear at their first byte.
      const pcap = values.pcap === undefined ? undefined : new PcapWriter(resolve(values.pcap), { adoptOpen: true });
      // With --record or --pcap, the same run with the door watched (docs/replay.md, "Fuzz findings"): same trace.
      const result = values.record === undefined && pcap === undefined ? replay(reproducer, firmware) : recordFuzzInput({
        target: reproducer.target, seed: reproducer.seed, input: reproducer.input, firmware: new Uint8Array(readFileSync(FIRMWARE_FUZZ_PATH)),
        tool: `wasm-iop ${packageVersion()}`, recordPath: values.record === undefined ? undefined : resolve(values.record), observers: pcap === undefined ? [] : [pcap],
      });
      pcap?.finish();
      out(`replay ${file}: target ${reproducer.target}, seed ${reproducer.seed}, ${reproducer.input.length} input bytes`);
      if (reproducer.finding !== undefined) out(`recorded: ${reproducer.finding.kind}: ${reproducer.finding.message}`);
      if (!values.quiet) for (const line of result.trace) process.stdout.write(line);
      for (const line of result.log) out(`op: ${line}`);
      for (const line of result.console) out(`console: ${line}`);
      out(result.finding === undefined ? "no finding: the reproducer passes" : `finding: ${result.finding.kind}: ${result.finding.message}`);
      if (values.record !== undefined) out(`recording: ${resolve(values.record)} (wasm-iop replay ${values.record})`);
      if (pcap !== undefined) out(`packet capture: ${pcap.path}, ${pcap.packetCount} packets`);
      return result.finding === undefined ? 0 : 1;
    }

    if (values.target === undefined) throw new UsageError("--target is required (or --replay FILE)");
    const target = targetNamed(values.target);
    if (target === undefined) throw new UsageError(`--target: expected one of ${TARGETS.map((t) => t.name).join(", ")}, got "${values.target}"`);
    const seconds = values.seconds === undefined ? 60 : Number(values.seconds);
    if (!(seconds > 0)) throw new UsageError(`--seconds: expected a number > 0, got "${values.seconds}"`);
    const seed = values.seed === undefined ? 1 : Number(values.seed);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw new UsageError(`--seed: expected an integer from 0 to 2^32-1, got "${values.seed}"`);
    const jobs = values.jobs === undefined ? 1 : Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw new UsageError(`--jobs: expected an integer from 1 to 64, got "${values.jobs}"`);
    const findingsDir = resolve(values.findings ?? join("var", "fuzz", target.name));
    const corpusDir = values.corpus === undefined ? undefined : resolve(values.corpus);

    let summary: CampaignStatus;
    const stop = { requested: false };
    let stoppedBy: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      stop.requested = true;
      stoppedBy ??= signal;
      process.stderr.write(`${signal}: stopping after the input running\n`);
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      if (jobs > 1) summary = await parallel(target.name, seconds, seed, jobs, findingsDir, corpusDir, () => stoppedBy);
      else {
        process.stderr.write(`fuzzing ${target.name} for ${seconds} s, seed ${seed}; findings in ${findingsDir}\n`);
        summary = await campaign({ target, firmware, seed, seconds, corpusDir, findingsDir, stop, progress: (s) => process.stderr.write(describe(s) + "\n") });
      }
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    if (values.json) out(JSON.stringify(summary));
    else {
      out(describe(summary));
      for (const f of summary.findings) out(`finding ${f.kind}: ${f.message}${f.file === undefined ? "" : `\n  reproducer ${f.file} (${f.inputBytes} bytes): wasm-iop fuzz --replay ${f.file}`}`);
      if (summary.findings.length === 0) out("no findings");
    }
    if (stoppedBy !== undefined) return stoppedBy === "SIGINT" ? 130 : 143;
    return summary.findings.length === 0 ? 0 : 1;
  },
};

// --jobs: one child process per seed, each printing its JSON summary; merged into one (sums, union of findings). A
// signal to this process is passed on to every child (a terminal's SIGINT reaches them anyway), which ends its
// campaign after the input running and prints its summary.
async function parallel(target: string, seconds: number, seed: number, jobs: number, findingsDir: string, corpusDir: string | undefined,
  stoppedBy: () => NodeJS.Signals | undefined): Promise<CampaignStatus> {
  const children = new Set<ReturnType<typeof spawn>>();
  const forward = (signal: NodeJS.Signals) => {
    for (const child of children) child.kill(signal);
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  try {
    return await merged(target, seconds, seed, jobs, findingsDir, corpusDir, children, stoppedBy);
  } finally {
    process.off("SIGINT", forward);
    process.off("SIGTERM", forward);
  }
}

async function merged(target: string, seconds: number, seed: number, jobs: number, findingsDir: string, corpusDir: string | undefined,
  children: Set<ReturnType<typeof spawn>>, stoppedBy: () => NodeJS.Signals | undefined): Promise<CampaignStatus> {
  const runs = Array.from({ length: jobs }, (_, i) => new Promise<CampaignStatus>((resolveRun, reject) => {
    const args = [join(ROOT, "bin/wasm-iop.js"), "fuzz", "--target", target, "--seconds", String(seconds), "--seed", String(seed + i), "--findings", findingsDir, "--json"];
    if (corpusDir !== undefined) args.push("--corpus", corpusDir);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    children.add(child);
    if (stoppedBy() !== undefined) child.kill(stoppedBy()); // a signal came while the others started
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.on("error", reject);
    child.on("close", () => {
      children.delete(child);
      try {
        resolveRun(JSON.parse(text.trim().split("\n").pop()!) as CampaignStatus);
      } catch {
        // A signal that came before the child set its handler ended it at once: it ran nothing worth a summary.
        if (stoppedBy() !== undefined) resolveRun({ target, seed: seed + i, seconds: 0, execs: 0, execsPerSecond: 0, edges: 0, corpusSize: 0, findings: [] });
        else reject(new Error(`fuzz job ${i} (seed ${seed + i}) printed no summary`));
      }
    });
  }));
  const all = await Promise.all(runs);
  const findings = new Map(all.flatMap((s) => s.findings).map((f) => [f.signature, f]));
  return {
    target, seed, seconds: Math.max(...all.map((s) => s.seconds)), execs: all.reduce((n, s) => n + s.execs, 0),
    execsPerSecond: all.reduce((n, s) => n + s.execsPerSecond, 0), edges: Math.max(...all.map((s) => s.edges)),
    corpusSize: all.reduce((n, s) => n + s.corpusSize, 0), findings: [...findings.values()],
  };
}
