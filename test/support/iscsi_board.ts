// A board serving iSCSI on the board clock for sim tests: the host with the NIC (slot 4) and a disk, sp1 with a disk,
// the board's LoopbackBackend as the network. `targets` is the board file's `targets` (absent: the default target,
// iqn.2026-11.org.wasm-iop:test-board, with both disks as LUNs 0 and 1).
import { expect } from "vitest";
import { Board } from "../../host/board/board.ts";
import { parseBoard } from "../../host/board/load.ts";
import type { LoopbackBackend } from "../../host/devices/tcp_backend.ts";
import { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../tools/build/firmware.ts";
import { firmwareModule } from "./board.ts";

export const TEST_BOARD_TARGET = "iqn.2026-11.org.wasm-iop:test-board";

export interface IscsiEnv {
  board: Board;
  network: LoopbackBackend;
  console: string[];
}

/** `nvramDir`: an NVRAM card (slot 6) whose array is nvram.bin in that directory, the board's data directory.
 * `nbd`: the board file's nbd section (absent: no NBD server); its portal is the NIC's portal 0 (the board lists no
 * iSCSI portals, so the NBD one is the configuration ROM's first). `cluster`: the board file's cluster section
 * (docs/cluster.md; the board is named "test-board", its volumes "host-disk0" and "sp1-disk0"). */
export function bootIscsiBoard(options: { targets?: unknown[]; diskMiB?: number; ramMiB?: [number, number]; nvramDir?: string; nbd?: unknown; cluster?: unknown } = {}): IscsiEnv {
  const [hostMiB, sp1MiB] = options.ramMiB ?? [64, 32];
  const processors = [
    { name: "host", role: "host", ramMiB: hostMiB, pci: [{ slot: 1, model: "iop-bridge", processor: "sp1" }, { slot: 4, model: "nic" }, { slot: 8, model: "virtio-scsi", disks: ["host-disk0"] },
      ...(options.nvramDir === undefined ? [] : [{ slot: 6, model: "nvram" }])] },
    { name: "sp1", role: "storage", ramMiB: sp1MiB, pci: [{ slot: 8, model: "virtio-scsi", disks: ["sp1-disk0"] }] },
  ];
  const disks = ["host-disk0", "sp1-disk0"].map((name) => ({ name, sizeMiB: options.diskMiB ?? 16, blockSize: 512, backend: "memory" }));
  const raw = { name: "test-board", seed: 7, processors, disks, ...(options.targets === undefined ? {} : { targets: options.targets }),
    ...(options.nbd === undefined ? {} : { nbd: options.nbd }), ...(options.cluster === undefined ? {} : { cluster: options.cluster }) };
  const spec = parseBoard(raw, "test-board.json");
  const lines: string[] = [];
  const board = new Board({ spec, firmware: firmwareModule(FIRMWARE_PATH), trace: new Trace({}), dataDir: options.nvramDir, onConsole: (p, fd, line) => lines.push(`${p} ${fd}: ${line}`) });
  const network = board.network as LoopbackBackend;
  expect(board.powerOn()).toBe(true);
  for (let i = 0; i < 1000 && !lines.some((l) => l.includes("tts: serving")); i++) board.runFor(5_000_000);
  expect(lines.some((l) => l.includes("tts: serving"))).toBe(true);
  return { board, network, console: lines };
}
