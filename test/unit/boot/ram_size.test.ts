// How much RAM a processor needs. Below what its pools and its role's agents take, boot() refuses with a message
// (board ABI boot error 1) instead of trapping half-way (a 2-3 MiB host did); at the board schema's minimum, 4 MiB,
// both roles boot (the host's pools sized down to leave its agents room) and the host serves iSCSI (a 4 MiB host used
// to close every login: its NIC held the whole page pool): its NIC takes only part of the page pool for receive buffers, leaving the rest for the answers.
// The board file cannot ask for less than 4 MiB (the schema), but another board implementation may hand the image
// less, so the smaller sizes are set on the parsed description here.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Board } from "../../../host/board/board.ts";
import { parseBoard, type BoardSpec } from "../../../host/board/load.ts";
import type { PanicReport } from "../../../host/board/processor.ts";
import { Trace } from "../../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../../../tools/build/firmware.ts";
import { bootIscsiBoard, TEST_BOARD_TARGET } from "../../support/iscsi_board.ts";
import { Initiator } from "../../support/iscsi_initiator.ts";

function bootWithRam(role: "host" | "storage", ramMiB: number): { console: string[]; stops: { processor: string; report: PanicReport | undefined }[] } {
  const processors = [
    { name: "host", role: "host", ramMiB: 8, pci: [{ slot: 1, model: "iop-bridge", processor: "sp1" }, { slot: 4, model: "nic" }] },
    { name: "sp1", role: "storage", ramMiB: 8, pci: [] },
  ];
  const spec = parseBoard({ name: "ram-board", seed: 1, processors, disks: [] }, "ram-board.json");
  (spec.processors.find((p) => p.role === role) as { ramMiB: number }).ramMiB = ramMiB;
  const lines: string[] = [];
  const stops: { processor: string; report: PanicReport | undefined }[] = [];
  const board = new Board({
    spec: spec as BoardSpec, firmware: new WebAssembly.Module(readFileSync(FIRMWARE_PATH)), trace: new Trace({}),
    onConsole: (p, fd, line) => lines.push(`${p} ${fd}: ${line}`), onStop: (processor, report) => stops.push({ processor, report }),
  });
  board.powerOn();
  board.runFor(50_000_000);
  return { console: lines, stops };
}

describe("RAM size", () => {
  it("a host processor with too little RAM refuses to boot with a message, and never traps", () => {
    for (const ramMiB of [1, 2, 3]) {
      const { console, stops } = bootWithRam("host", ramMiB);
      expect(stops, `${ramMiB} MiB`).toHaveLength(1);
      expect(stops[0]).toMatchObject({ processor: "host", report: { kind: "boot", message: "boot() returned 1 (RAM too small)" } });
      expect(console.filter((l) => l.startsWith(`host 2: boot: RAM too small: ${ramMiB * 1024} KiB; pools need `))).toHaveLength(1);
      expect(console.some((l) => l.startsWith("host 1: wasm-iop "))).toBe(false); // no banner
    }
  });

  it("a storage processor boots in 1 MiB: its pools shrink with RAM and its agents take little", () => {
    const { console, stops } = bootWithRam("storage", 1);
    expect(stops).toEqual([]);
    expect(console.some((l) => l.startsWith("sp1 1: wasm-iop 0.1.0 abi 2: processor sp1 #1 role storage ram 1 MiB"))).toBe(true);
  });

  it("at 4 MiB both roles boot, and the host serves iSCSI with smaller pools and a smaller receive ring", () => {
    const env = bootIscsiBoard({ ramMiB: [4, 4], diskMiB: 8 });
    expect(env.console).toContain("host 1: boot: pools sized for 3584 KiB of the 4096 KiB of RAM: the host role's agents need 2048 KiB");
    expect(env.console).toContain("host 1: nic: 70 of 256 receive buffers (RAM)");
    const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, initiatorName: "iqn.2026-11.org.wasm-iop:small", isid: 1 });
    i.login();
    i.testUnitReady(1); // the power-on unit attention
    const data = new Uint8Array(256 * 1024).map((_, k) => (k * 7 + 3) & 0xff);
    i.write(1, 100, data);
    expect(i.read(1, 100, data.length / 512)).toEqual(data);
  });
});
