// Boards for tests: the test build (or the release image) on one or more processors, console captured.
import { readFileSync } from "node:fs";
import { compileImage } from "../../host/abi/image_module.ts";
import { Board, withXorEngine } from "../../host/board/board.ts";
import { parseBoard } from "../../host/board/load.ts";
import type { PanicReport, Processor, ProcessorCosts } from "../../host/board/processor.ts";
import { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH, FIRMWARE_TEST_PATH } from "../../tools/build/firmware.ts";

const modules = new Map<string, WebAssembly.Module>();

export function firmwareModule(path: string): WebAssembly.Module {
  let module = modules.get(path);
  if (module === undefined) {
    module = compileImage(readFileSync(path));
    modules.set(path, module);
  }
  return module;
}

export interface TestBoardOptions {
  image?: "test" | "release";
  ramMiB?: number[]; // one entry per processor; the first is the host
  /** Per processor, the sizes of the in-memory disks on one storage controller (none when empty or absent). */
  disksMiB?: number[][];
  diskBackend?: "memory" | "file"; // memory by default; file disks go under dataDir
  physicalBlockSize?: number; // of every disk (512-byte logical blocks); 512 when absent
  dataDir?: string;
  seed?: number;
  keepTrace?: boolean;
  costs?: Partial<ProcessorCosts>;
  /** The board file's `volumes` (docs/volumes.md); absent: one disk volume per disk. */
  volumes?: object[];
  xorEngine?: boolean; // an XOR engine in slot 9 of the host's bus
  /** An NVRAM card in slot 10 of the host's bus (docs/hardware.md, "nvram"); a file one keeps nvram.bin in dataDir. */
  nvram?: "memory" | "file";
  /** The model of the controller holding each processor's disks; virtio-scsi when absent. */
  controller?: "virtio-scsi" | "nvme";
  /** The board file's `cluster` section (docs/cluster.md); the board's volumes are named after its disks. */
  cluster?: object;
}

export interface TestBoard {
  board: Board;
  host: Processor;
  console: string[]; // "name fd: line"
  stops: { processor: string; report: PanicReport | undefined }[];
  /** Calls an export on the host processor through the board (charged, panics caught); i32 results unsigned. */
  call(name: string, ...args: unknown[]): unknown;
}

export function testBoard(options: TestBoardOptions = {}): TestBoard {
  const ramMiB = options.ramMiB ?? [16];
  const disks: { name: string; sizeMiB: number; blockSize: number; physicalBlockSize?: number; backend: string; image?: string }[] = [];
  const processors = ramMiB.map((ram, i) => {
    const name = i === 0 ? "host" : `sp${i}`;
    const pci: object[] = i === 0 ? ramMiB.slice(1).map((_, j) => ({ slot: j + 1, model: "iop-bridge", processor: `sp${j + 1}` })) : [];
    if (i === 0 && options.nvram !== undefined) pci.push({ slot: 10, model: "nvram", backend: options.nvram });
    const sizes = options.disksMiB?.[i] ?? [];
    if (sizes.length > 0) {
      const names = sizes.map((sizeMiB, d) => {
        const backend = options.diskBackend ?? "memory";
        const physical = options.physicalBlockSize === undefined ? {} : { physicalBlockSize: options.physicalBlockSize };
        disks.push({ name: `${name}-disk${d}`, sizeMiB, blockSize: 512, ...physical, backend, ...(backend === "file" ? { image: `${name}-disk${d}.img` } : {}) });
        return `${name}-disk${d}`;
      });
      pci.push({ slot: 8, model: options.controller ?? "virtio-scsi", disks: names });
    }
    return { name, role: i === 0 ? "host" : "storage", ramMiB: ram, pci };
  });
  const volumes = options.volumes === undefined ? {} : { volumes: options.volumes };
  const cluster = options.cluster === undefined ? {} : { cluster: options.cluster };
  const parsed = parseBoard({ name: "test-board", seed: options.seed ?? 7, processors, disks, ...volumes, ...cluster }, "test-board.json");
  const spec = options.xorEngine === true ? withXorEngine(parsed, "host", 9) : parsed;
  const consoleLines: string[] = [];
  const stops: TestBoard["stops"] = [];
  const board = new Board({
    spec,
    firmware: firmwareModule(options.image === "release" ? FIRMWARE_PATH : FIRMWARE_TEST_PATH),
    trace: new Trace({ keepLines: options.keepTrace }),
    dataDir: options.dataDir,
    costs: options.costs,
    onConsole: (processor, fd, line) => consoleLines.push(`${processor} ${fd}: ${line}`),
    onStop: (processor, report) => stops.push({ processor, report }),
  });
  board.powerOn();
  const host = board.processors[0]!;
  return { board, host, console: consoleLines, stops, call: (name, ...args) => unsigned(host.invoke(name, ...args)) };
}

/** WebAssembly returns i32 as a signed number; the firmware's are u32 (bool is 0 or 1). */
export function unsigned(value: unknown): unknown {
  return typeof value === "number" ? value >>> 0 : value;
}

/** The test build's iSCSI scratch area in the host processor's RAM (testIscsiScratch): the probes work on it in place. */
export function iscsiScratch(t: TestBoard) {
  const base = t.call("testIscsiScratch") as number;
  const ram = () => new Uint8Array(t.host.memory.buffer);
  return {
    base,
    write(offset: number, bytes: Uint8Array): number { ram().set(bytes, base + offset); return base + offset; },
    read(offset: number, n: number): Uint8Array { return ram().slice(base + offset, base + offset + n); },
    fill(offset: number, n: number, value: number): void { ram().fill(value, base + offset, base + offset + n); },
  };
}
