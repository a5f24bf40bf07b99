// wasm-iop: one CLI, subcommands in the style of git and qemu-img.
import type { Command } from "./command.ts";
import { UsageError } from "./command.ts";
import { benchCommand } from "./bench.ts";
import { conformanceCommand } from "./conformance.ts";
import { flashCommand } from "./flash.ts";
import { fuzzCommand } from "./fuzz.ts";
import { imageCommand } from "./image.ts";
import { inventoryCommand } from "./inventory.ts";
import { runCommand } from "./run.ts";
import { simulateCommand } from "./simulate.ts";

const commands: Command[] = [runCommand, inventoryCommand, conformanceCommand, simulateCommand, benchCommand, fuzzCommand, imageCommand, flashCommand];

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
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`wasm-iop: unknown command '${name}'\n\n${overview()}\n`);
    return 2;
  }
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
