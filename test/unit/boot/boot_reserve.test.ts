// The boot reserve (assembly/kernel/boot.ts): what each processor's agents carve at boot must leave at least 64 KiB
// of the reserve free on every board we ship (boards/*.json) and on the two simulation boards, so the next table an
// agent adds does not stop those boards at boot ("boot: the agents took … bytes, over the … reserved"). Each board
// boots the release image in simulation mode; every processor's banner says "boot reserve USED of SIZE bytes".
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Board } from "../../../host/board/board.ts";
import { loadBoardFile } from "../../../host/board/load.ts";
import { Trace } from "../../../host/sim/trace.ts";
import { ROOT } from "../../../host/root.ts";
import { FIRMWARE_PATH } from "../../../tools/build/firmware.ts";
import { simBoardPlan, simulationBoard } from "../../../tools/simulate/boards.ts";
import { firmwareModule } from "../../support/board.ts";

const HEADROOM_BYTES_MIN = 64 * 1024;
const BANNER = /^wasm-iop \S+ abi \d+: processor (\S+) .* role (host|storage) .*, boot reserve (\d+) of (\d+) bytes$/;

interface Reserve { processor: string; role: string; usedBytes: number; sizeBytes: number }

// Boots `board` until every processor printed its banner (or 2 s of board time); the reserves they report.
function reserves(board: Board, lines: string[]): Reserve[] {
  expect(board.powerOn()).toBe(true);
  const found = () => lines.map((l) => BANNER.exec(l)).filter((m) => m !== null);
  for (let i = 0; i < 200 && found().length < board.processors.length; i++) board.runFor(10_000_000);
  board.powerOff();
  return found().map((m) => ({ processor: m[1]!, role: m[2]!, usedBytes: Number(m[3]), sizeBytes: Number(m[4]) }));
}

function expectHeadroom(name: string, found: Reserve[], processorCount: number): void {
  expect(found, `${name}: banners`).toHaveLength(processorCount);
  for (const r of found) {
    expect(r.usedBytes, `${name} ${r.processor}`).toBeGreaterThan(0);
    expect(r.sizeBytes - r.usedBytes, `${name} ${r.processor} (${r.role}): ${r.usedBytes} of ${r.sizeBytes} bytes used`).toBeGreaterThanOrEqual(HEADROOM_BYTES_MIN);
  }
}

const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-reserve-")); // the boards' disk images
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const boardFiles = readdirSync(join(ROOT, "boards")).filter((f) => f.endsWith(".json") && f !== "board.schema.json").sort();

describe("the boot reserve", () => {
  it("lists the boards it checks", () => {
    expect(boardFiles).toContain("iop-dev.json");
  });

  it.each(boardFiles)("boards/%s boots with 64 KiB of every processor's reserve free", (file) => {
    const spec = loadBoardFile(join(ROOT, "boards", file));
    const lines: string[] = [];
    const board = new Board({
      spec, firmware: firmwareModule(FIRMWARE_PATH), trace: new Trace({ enabled: false }),
      dataDir: join(dataDir, file), onConsole: (_p, _fd, line) => lines.push(line),
    });
    expectHeadroom(file, reserves(board, lines), spec.processors.length);
  });

  it.each(["disks", "volumes"] as const)("the %s simulation board boots with 64 KiB of every processor's reserve free", (kind) => {
    const lines: string[] = [];
    const board = simulationBoard(simBoardPlan(kind), 1, new Trace({ enabled: false }), (_p, _fd, line) => lines.push(line), () => {});
    expectHeadroom(kind, reserves(board, lines), board.processors.length);
  });
});
