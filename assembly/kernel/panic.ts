// Programmer errors end here: a panic record in the boot-info block, a console line, and proc_exit(code).
// The board reads the record to report processor, task, code and message (docs/board-abi.md, "Panics").
import {
  bootInfoPanicMessagePtr, bootInfoPanicTaskNamePtr, bootInfoSetCurrentTask, bootInfoSetPanic,
  bootInfoSetPanicMessageLength, PANIC_MESSAGE_BYTES, PANIC_TASK_NAME_BYTES, TASK_INDEX_NONE,
} from "../board/boot_info";
import { exit } from "../board/wasi";
import { line } from "./console";

export enum PanicCode {
  Assert = 1, // an assertion failed: a bug
  Boot = 2, // boot could not complete
  Watchdog = 3, // a task did not yield in time
  Abort = 4, // the runtime gave up (out of memory, unreachable)
}

let bootInfo: usize = 0;
let taskIndex: u32 = TASK_INDEX_NONE;
let taskName: string = "";
let panicking = false;

/** Called once by boot: where the panic record goes. */
export function panicInit(info: usize): void { bootInfo = info; }

/** Called by the scheduler around every dispatch, so a panic names its task. */
export function panicSetTask(index: u32, name: string): void {
  taskIndex = index;
  taskName = name;
  if (bootInfo != 0) bootInfoSetCurrentTask(bootInfo, index);
}

/** Stops the processor with `code`; never returns. */
export function panic(code: PanicCode, message: string): void {
  panicWith(code, message, null, 0);
}

// The runtime's abort, routed here by `--use abort=…` in asconfig.json: failed asserts and runtime errors.
export function onAbort(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  panicWith(PanicCode.Assert, message != null ? message : "assertion failed", fileName, lineNumber);
}

function panicWith(code: PanicCode, message: string, fileName: string | null, lineNumber: u32): void {
  if (panicking) exit(code); // A panic inside the panic path: stop without recording again.
  panicking = true;
  if (bootInfo != 0) {
    bootInfoSetPanic(bootInfo, code, taskIndex);
    copyAscii(bootInfoPanicTaskNamePtr(bootInfo), PANIC_TASK_NAME_BYTES, taskName, null, 0);
    const lengthBytes = copyAscii(bootInfoPanicMessagePtr(bootInfo), PANIC_MESSAGE_BYTES, message, fileName, lineNumber);
    bootInfoSetPanicMessageLength(bootInfo, lengthBytes);
  }
  const l = line().s("PANIC task=").s(taskIndex == TASK_INDEX_NONE ? "-" : taskName).s(" code=").u32(code).s(": ").s(message);
  if (fileName != null) l.s(" (").s(fileName).s(":").u32(lineNumber).s(")");
  l.err();
  exit(code);
}

// Writes `text` and an optional " (file:line)" as ASCII, NUL-padded to `capacity`; returns the bytes written.
function copyAscii(dest: usize, capacity: u32, text: string, fileName: string | null, lineNumber: u32): u32 {
  memory.fill(dest, 0, capacity);
  let n = appendAscii(dest, capacity, 0, text);
  if (fileName != null) {
    n = appendAscii(dest, capacity, n, " (");
    n = appendAscii(dest, capacity, n, fileName);
    n = appendAscii(dest, capacity, n, ":");
    n = appendDecimal(dest, capacity, n, lineNumber);
    n = appendAscii(dest, capacity, n, ")");
  }
  return n;
}

function appendAscii(dest: usize, capacity: u32, at: u32, text: string): u32 {
  const count = <u32>text.length;
  for (let i: u32 = 0; i < count && at < capacity; i++) {
    const code = text.charCodeAt(i);
    store<u8>(dest + at, code < 0x80 ? <u8>code : 0x3f);
    at += 1;
  }
  return at;
}

function appendDecimal(dest: usize, capacity: u32, at: u32, value: u32): u32 {
  let divisor: u32 = 1;
  while (value / divisor >= 10) divisor *= 10;
  while (divisor > 0 && at < capacity) {
    store<u8>(dest + at, <u8>(0x30 + (value / divisor) % 10));
    at += 1;
    divisor /= 10;
  }
  return at;
}
