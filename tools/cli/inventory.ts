// wasm-iop inventory: boots a board in simulation mode, lets the UMA discover it, and prints the hardware resource
// table as the firmware built it. The table comes from the firmware's `inventory …` console lines, never from the
// board file: what is listed is what the UMA found on the bus and what each RTA reported.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Board } from "../../host/board/board.ts";
import { DEFAULT_BOARD_PATH, loadBoardFile } from "../../host/board/load.ts";
import { buildFirmware, FIRMWARE_PATH } from "../build/firmware.ts";
import type { Command } from "./command.ts";

const help = `usage: wasm-iop inventory [--board FILE] [--json] [--data-dir DIR]

Boots the board in simulation mode, waits for the unit management agent (UMA) to enumerate the PCI bus and collect
every processor's device profile, and prints the hardware resource table the firmware built: processors, the PCI
functions on the host processor's bus (IDs, class, BARs), and every disk with its capacity and block size.

options:
  --board FILE     board description (default: boards/iop-dev.json)
  --data-dir DIR   where disk images live (default: ./var/<board name>; created at their size when missing)
  --firmware FILE  the image to run (default: build/firmware.wasm)
  --json           print the table as one JSON object
  -h, --help       this help

Exit status: 0 when discovery completed; 1 when it did not within 10 s of board time, or a processor panicked.`;

export type InventoryRecord = Record<string, string | number>;

export interface Inventory {
  board: string;
  processors: InventoryRecord[];
  pci: InventoryRecord[];
  disks: InventoryRecord[];
  summary: InventoryRecord;
}

/** Parses one `inventory <kind> key=value …` line; numbers stay numbers, hex stays a string. */
export function parseInventoryLine(text: string): { kind: string; record: InventoryRecord } | undefined {
  const match = /^inventory (\w+)(.*)$/.exec(text);
  if (match === null) return undefined;
  const record: InventoryRecord = {};
  for (const pair of match[2]!.trim().split(/\s+/)) {
    if (pair === "") continue;
    const at = pair.indexOf("=");
    const key = pair.slice(0, at);
    const value = pair.slice(at + 1);
    record[key] = /^\d+$/.test(value) ? Number(value) : value;
  }
  return { kind: match[1]!, record };
}

/** Boots `boardPath` and collects the firmware's inventory; undefined fields when discovery did not finish. */
export function collectInventory(options: { boardPath: string; dataDir?: string; firmwarePath: string; timeoutNs?: number }): {
  inventory: Inventory | undefined;
  log: string[];
} {
  const spec = loadBoardFile(options.boardPath);
  const log: string[] = [];
  const inventory: Inventory = { board: spec.name, processors: [], pci: [], disks: [], summary: {} };
  let done = false;
  const board = new Board({
    spec,
    firmware: new WebAssembly.Module(readFileSync(options.firmwarePath)),
    dataDir: resolve(options.dataDir ?? join("var", spec.name)),
    onConsole: (processor, _fd, text) => {
      log.push(`[${processor}] ${text}`);
      const parsed = parseInventoryLine(text);
      if (parsed === undefined) return;
      if (parsed.kind === "processor") inventory.processors.push(parsed.record);
      else if (parsed.kind === "pci") inventory.pci.push(parsed.record);
      else if (parsed.kind === "disk") inventory.disks.push(parsed.record);
      else if (parsed.kind === "done") {
        inventory.summary = parsed.record;
        done = true;
      }
    },
  });
  if (board.powerOn()) {
    const deadline = options.timeoutNs ?? 10_000_000_000;
    while (!done && board.panics.length === 0 && board.clock.nowNs < deadline) board.runFor(10_000_000);
  }
  board.powerOff();
  return { inventory: done ? inventory : undefined, log };
}

function table(rows: InventoryRecord[], columns: string[]): string {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? "").length)));
  const format = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd();
  return [format(columns), ...rows.map((r) => format(columns.map((c) => String(r[c] ?? ""))))].join("\n");
}

export const inventoryCommand: Command = {
  name: "inventory",
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { board: { type: "string" }, "data-dir": { type: "string" }, firmware: { type: "string" }, json: { type: "boolean", default: false } },
      strict: true,
    });
    if (values.firmware === undefined) await buildFirmware(["release"]);
    const { inventory, log } = collectInventory({
      boardPath: values.board ?? DEFAULT_BOARD_PATH,
      dataDir: values["data-dir"],
      firmwarePath: values.firmware !== undefined ? resolve(values.firmware) : FIRMWARE_PATH,
    });
    if (inventory === undefined) {
      process.stderr.write(`wasm-iop inventory: discovery did not complete; the firmware said:\n${log.join("\n")}\n`);
      return 1;
    }
    if (values.json) {
      process.stdout.write(JSON.stringify(inventory, null, 2) + "\n");
      return 0;
    }
    const mib = (bytes: unknown) => `${Math.round(Number(bytes) / 1048576)} MiB`;
    process.stdout.write(`board ${inventory.board}\n\nprocessors\n`);
    process.stdout.write(table(inventory.processors.map((p) => ({ ...p, ram: mib(p.ram) })), ["index", "name", "role", "ram", "slot", "state"]) + "\n\n");
    process.stdout.write("PCI functions on the host processor's bus\n");
    const pciRows = inventory.pci.map((f) => ({ ...f, bars: Object.keys(f).filter((k) => k.startsWith("bar")).map((k) => `${k}=${f[k]}`).join(" ") }));
    process.stdout.write(table(pciRows, ["slot", "vendor", "device", "class", "revision", "bars"]) + "\n\n");
    process.stdout.write("disks\n");
    const diskRows = inventory.disks.map((d) => ({ ...d, capacity: mib(Number(d.blocks) * Number(d.blockSize)) }));
    process.stdout.write(table(diskRows, ["processor", "index", "controller", "lun", "blocks", "blockSize", "capacity"]) + "\n");
    return 0;
  },
};
