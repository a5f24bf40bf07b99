// The smallest image the board ABI accepts, whose run() hits `unreachable`: a firmware that traps on its first run
// (never reaching a self-test or a confirm), for tests of panic reporting, resets and boot-ROM reverts.
import { writeFileSync } from "node:fs";
import wabtInit from "wabt";

const trapWat = (abiVersion: number) => `(module
  (import "env" "memory" (memory 1 65536 shared))${abiVersion === 1 ? `
  (import "board" "bus_read32" (func (param i64) (result i32)))` : ""}
  (func (export "abiVersion") (result i32) i32.const ${abiVersion})
  (func (export "boot") (param i32) (result i32) i32.const 0)
  (func (export "irq") (param i32))
  (func (export "run") (param i64) (result i64) unreachable)
  (func (export "heapTop") (result i32) i32.const 65536))`;

/**
 * Writes the trapping firmware to `path`. With `abiVersion: 1` it is an image of board ABI 1 instead: it says so
 * and imports ABI 1's `bus_read32 (i64) → i32`, for tests of how a board refuses it.
 */
export async function writeTrapFirmware(path: string, options: { abiVersion?: 1 | 2 } = {}): Promise<void> {
  const wabt = await wabtInit();
  writeFileSync(path, wabt.parseWat("trap.wat", trapWat(options.abiVersion ?? 2), { threads: true }).toBinary({}).buffer);
}
