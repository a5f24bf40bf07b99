// The smallest image the board ABI accepts, whose run() hits `unreachable`: a firmware that traps on its first run
// (never reaching a self-test or a confirm), for tests of panic reporting, resets and boot-ROM reverts.
import { writeFileSync } from "node:fs";
import wabtInit from "wabt";

const TRAP_WAT = `(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "abiVersion") (result i32) i32.const 1)
  (func (export "boot") (param i32) (result i32) i32.const 0)
  (func (export "irq") (param i32))
  (func (export "run") (param i64) (result i64) unreachable)
  (func (export "heapTop") (result i32) i32.const 65536))`;

/** Writes the trapping firmware to `path`. */
export async function writeTrapFirmware(path: string): Promise<void> {
  const wabt = await wabtInit();
  writeFileSync(path, wabt.parseWat("trap.wat", TRAP_WAT, { threads: true }).toBinary({}).buffer);
}
