// wasm-iop: one CLI, subcommands in the style of git and qemu-img.
import type { Command } from "./command.ts";
import { UsageError } from "./command.ts";

interface CommandEntry {
  name: string;
  summary: string; // one line, for the command list
  load: () => Promise<Command>; // imports the command's module: only the command that runs pays for its code
}

const commands: CommandEntry[] = [
  { name: "run", summary: "boot a board and run it until stopped", load: async () => (await import("./run.ts")).runCommand },
  { name: "replay", summary: "run a recording of a served session again on the virtual clock and check it byte for byte", load: async () => (await import("./replay.ts")).replayCommand },
  { name: "fault", summary: "inject a fault into a running board (pull or replace a disk, hang a controller), or ask its status", load: async () => (await import("./fault.ts")).faultCommand },
  { name: "inventory", summary: "print the hardware the firmware discovers on a board", load: async () => (await import("./inventory.ts")).inventoryCommand },
  { name: "conformance", summary: "run libiscsi's iscsi-test-cu against the board and compare with the baseline", load: async () => (await import("./conformance.ts")).conformanceCommand },
  { name: "simulate", summary: "seeded whole-board runs: random iSCSI workload, injected faults, data checked", load: async () => (await import("./simulate.ts")).simulateCommand },
  { name: "bench", summary: "measure the board against Debian's tgt (IOPS, MiB/s, latency, CPU per I/O)", load: async () => (await import("./bench.ts")).benchCommand },
  { name: "fuzz", summary: "fuzz the firmware through one of its inputs (`fuzz --help` lists the targets) or replay a finding", load: async () => (await import("./fuzz.ts")).fuzzCommand },
  { name: "image", summary: "build, sign, verify and inspect signed firmware images", load: async () => (await import("./image.ts")).imageCommand },
  { name: "flash", summary: "write a signed image to a board's flash for a trial boot", load: async () => (await import("./flash.ts")).flashCommand },
  { name: "trace", summary: "record a replayable bus trace (boot, an iSCSI session) or replay one under wasmtime", load: async () => (await import("./trace.ts")).traceCommand },
];

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    "usage: wasm-iop <command> [options]",
    "",
    "Storage I/O processor firmware (WebAssembly) and the board emulator that runs it.",
    "",
    "commands:",
    ...lines,
    "",
    "`wasm-iop <command> --help` explains a command.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(overview() + "\n");
    return name === undefined ? 2 : 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (entry === undefined) {
    process.stderr.write(`wasm-iop: unknown command '${name}'\n\n${overview()}\n`);
    return 2;
  }
  const command = await entry.load();
  if (!command.handlesHelp && (rest.includes("--help") || rest.includes("-h"))) {
    process.stdout.write(command.help + "\n");
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`wasm-iop ${command.name}: ${error.message}\n\n${command.help}\n`);
      return 2;
    }
    if (error instanceof Error && error.name === "BoardFileError") {
      process.stderr.write(`wasm-iop ${command.name}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
