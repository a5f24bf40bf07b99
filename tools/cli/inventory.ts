// wasm-iop inventory: boots a board in simulation mode, lets the UMA discover it, and prints the hardware resource
// table as the firmware built it. The table comes from the firmware's `inventory …` console lines, never from the
// board file: what is listed is what the UMA found on the bus, what each RTA reported and the volumes the firmware
// built. The board file is read for one thing only: to say where the firmware's volume sizes differ from the
// capacity rules of host/board/volume_geometry.ts.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Board } from "../../host/board/board.ts";
import { type BoardSpec, DEFAULT_BOARD_PATH, loadBoardFile } from "../../host/board/load.ts";
import { type ConsoleRecord, parseConsoleRecord } from "../../host/board/console_record.ts";
import { volumeBlockSizeBytes, volumeCapacityBytes } from "../../host/board/volume_geometry.ts";
import { buildFirmware, FIRMWARE_PATH } from "../build/firmware.ts";
import type { Command } from "./command.ts";

const help = `usage: wasm-iop inventory [--board FILE] [--json] [--data-dir DIR]

Boots the board in simulation mode, waits for the unit management agent (UMA) to enumerate the PCI bus and collect
every processor's device profile, and prints the hardware resource table the firmware built: processors, the PCI
functions on the host processor's bus (IDs, class, BARs), every processor's storage controllers (virtio-scsi or NVMe,
with their queues) and NVMe namespaces, every disk with its capacity and block size, and every
volume with its type, members and state (optimal, degraded, rebuilding, failed; a thin volume its chunks in use;
a replica its copies' states and the regions pending in its write-intent log),
when the firmware reports volumes. A volume whose size differs from the board file's capacity rules is named on
standard error.

options:
  --board FILE     board description (default: boards/iop-dev.json)
  --data-dir DIR   where disk images live (default: ./var/<board name>; created at their size when missing)
  --firmware FILE  the image to run (default: build/firmware.wasm)
  --json           print the table as one JSON object
  -h, --help       this help

Exit status: 0 when discovery completed; 1 when it did not within 10 s of board time, or a processor panicked.`;

export type InventoryRecord = ConsoleRecord;

export interface Inventory {
  board: string;
  processors: InventoryRecord[];
  pci: InventoryRecord[];
  disks: InventoryRecord[];
  controllers: InventoryRecord[]; // every processor's storage controllers, as their DDMs report them (processor: its name)
  namespaces: InventoryRecord[]; // the NVMe namespaces the DDMs use (processor: its name)
  volumes: InventoryRecord[]; // [] when the firmware reports none
  summary: InventoryRecord;
}

/** Parses one `inventory <kind> key=value …` line; numbers stay numbers, hex stays a string. */
export function parseInventoryLine(text: string): { kind: string; record: InventoryRecord } | undefined {
  const parsed = parseConsoleRecord(text, "inventory");
  if (parsed?.kind === undefined) return undefined;
  return { kind: parsed.kind, record: parsed.record };
}

/** Boots `boardPath` and collects the firmware's inventory; undefined fields when discovery did not finish. */
export function collectInventory(options: { boardPath: string; dataDir?: string; firmwarePath: string; timeoutNs?: number }): {
  inventory: Inventory | undefined;
  log: string[];
  spec: BoardSpec; // the board file it booted
} {
  const spec = loadBoardFile(options.boardPath);
  const log: string[] = [];
  const inventory: Inventory = { board: spec.name, processors: [], pci: [], disks: [], controllers: [], namespaces: [], volumes: [], summary: {} };
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
      else if (parsed.kind === "volume") inventory.volumes.push(parsed.record);
      else if (parsed.kind === "controller") inventory.controllers.push({ processor, ...parsed.record });
      else if (parsed.kind === "namespace") inventory.namespaces.push({ processor, ...parsed.record });
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
  return { inventory: done ? inventory : undefined, log, spec };
}

/**
 * Where the firmware's volumes (`inventory volume` records) differ from what the board file's volumes give by the
 * capacity rules of host/board/volume_geometry.ts, one sentence each; [] when they agree.
 */
export function volumeDisagreements(spec: Pick<BoardSpec, "disks" | "volumes">, volumes: readonly InventoryRecord[]): string[] {
  const sentences: string[] = [];
  for (const record of volumes) {
    const volume = spec.volumes.find((v) => v.name === record.name);
    if (volume === undefined) {
      sentences.push(`volume ${record.index} ${JSON.stringify(record.name)}: the board file has no volume of this name`);
      continue;
    }
    const blockSize = volumeBlockSizeBytes(volume, spec.disks, spec.volumes);
    const blocks = volumeCapacityBytes(volume, spec.disks, spec.volumes) / blockSize;
    if (record.blocks !== blocks || record.blockSize !== blockSize) {
      sentences.push(`volume ${record.index} ${volume.name}: the firmware has ${record.blocks} blocks of ${record.blockSize} bytes, the board file's rules give ${blocks} of ${blockSize}`);
    }
  }
  return sentences;
}

function mib(bytes: unknown): string {
  return `${Math.round(Number(bytes) / 1048576)} MiB`;
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
    const { inventory, log, spec } = collectInventory({
      boardPath: values.board ?? DEFAULT_BOARD_PATH,
      dataDir: values["data-dir"],
      firmwarePath: values.firmware !== undefined ? resolve(values.firmware) : FIRMWARE_PATH,
    });
    if (inventory === undefined) {
      process.stderr.write(`wasm-iop inventory: discovery did not complete; the firmware said:\n${log.join("\n")}\n`);
      return 1;
    }
    for (const sentence of volumeDisagreements(spec, inventory.volumes)) process.stderr.write(`wasm-iop inventory: ${sentence}\n`);
    if (values.json) {
      process.stdout.write(JSON.stringify(inventory, null, 2) + "\n");
      return 0;
    }
    process.stdout.write(`board ${inventory.board}\n\nprocessors\n`);
    process.stdout.write(table(inventory.processors.map((p) => ({ ...p, ram: mib(p.ram) })), ["index", "name", "role", "ram", "slot", "state"]) + "\n\n");
    process.stdout.write("PCI functions on the host processor's bus\n");
    const pciRows = inventory.pci.map((f) => ({ ...f, bars: Object.keys(f).filter((k) => k.startsWith("bar")).map((k) => `${k}=${f[k]}`).join(" ") }));
    process.stdout.write(table(pciRows, ["slot", "vendor", "device", "class", "revision", "bars"]) + "\n\n");
    process.stdout.write("storage controllers\n");
    const order = (name: unknown): number => inventory.processors.findIndex((p) => p.name === name);
    const controllerRows = [...inventory.controllers].sort((a, b) => order(a.processor) - order(b.processor)).map((c) => ({
      ...c,
      queues: c.model === "nvme" ? `admin ${c.adminQueueEntries}, ${c.ioQueues} I/O of ${c.ioQueueEntries}` : `request ${c.queueSize}`,
      disks: c.model === "nvme" ? `${c.namespaces} namespaces` : `${c.luns} LUNs`,
    }));
    process.stdout.write(table(controllerRows, ["processor", "index", "name", "model", "slot", "vendor", "device", "queues", "transferBytesMax", "disks"]) + "\n\n");
    if (inventory.namespaces.length > 0) {
      process.stdout.write("NVMe namespaces\n");
      const nsRows = inventory.namespaces.map((n) => ({ ...n, capacity: mib(Number(n.blocks) * Number(n.blockSize)) }));
      process.stdout.write(table(nsRows, ["processor", "controller", "disk", "nsid", "blocks", "blockSize", "capacity"]) + "\n\n");
    }
    process.stdout.write("disks\n");
    const diskRows = inventory.disks.map((d) => ({ ...d, capacity: mib(Number(d.blocks) * Number(d.blockSize)) }));
    process.stdout.write(table(diskRows, ["processor", "index", "controller", "lun", "blocks", "blockSize", "capacity"]) + "\n");
    if (inventory.volumes.length > 0) process.stdout.write(`\nvolumes\n${volumeTable(inventory.volumes)}\n`);
    return 0;
  },
};

/**
 * The volumes as a table: a thin volume's usage as "U of C chunks", a replica's copies' states and the regions in its
 * write-intent log ("current,failed; 12 regions pending"), blank for the others.
 */
export function volumeTable(volumes: readonly InventoryRecord[]): string {
  const rows = volumes.map((v) => ({
    ...v,
    capacity: mib(Number(v.blocks) * Number(v.blockSize)),
    usage: v.chunks !== undefined ? `${v.used} of ${v.chunks} chunks`
      : v.copies !== undefined ? `copies ${v.copies}; ${v.pending} regions pending` : "",
  }));
  return table(rows, ["index", "name", "type", "blocks", "blockSize", "capacity", "members", "state", "usage"]);
}
