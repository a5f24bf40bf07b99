// REPORT SUPPORTED OPERATION CODES and REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4), from the command table.
import {
  COMMAND_COUNT, commandCdbLength, commandEntry, commandFind, commandOffered, commandOpcode, commandServiceAction, commandUsage,
  opcodeHasServiceActions, putBe16, putBe32, SA_NONE,
} from "./cdb";

const DESCRIPTOR_BYTES: u32 = 8;
const TIMEOUT_BYTES: u32 = 12;
const RECOMMENDED_TIMEOUT_SECONDS: u32 = 30;

export const REPORTING_ALL: u32 = 0;
export const REPORTING_OPCODE: u32 = 1; // one command without service actions
export const REPORTING_OPCODE_AND_SA: u32 = 2; // one command with service actions
export const REPORTING_OPCODE_SA_IF_ANY: u32 = 3; // one command, the service action if it has them

export const OPCODES_INVALID: u32 = 0xffff_ffff; // the reporting options do not fit the requested command

// SPC-4, Command timeouts descriptor: |0-1 DESCRIPTOR LENGTH 000Ah|2 -|3 COMMAND SPECIFIC|4-7 NOMINAL|8-11 RECOMMENDED|
function timeouts(at: usize): u32 {
  memory.fill(at, 0, TIMEOUT_BYTES);
  putBe16(at, 0x0a);
  putBe32(at + 8, RECOMMENDED_TIMEOUT_SECONDS);
  return TIMEOUT_BYTES;
}

/** All commands (options 000b): |0-3 COMMAND DATA LENGTH| then a descriptor per command. Answers the length. */
export function opcodesAll(at: usize, rctd: bool): u32 {
  let length: u32 = 4;
  for (let i: u32 = 0; i < COMMAND_COUNT; i++) {
    if (!commandOffered(i)) continue;
    const entry = commandEntry(i);
    const d = at + length;
    memory.fill(d, 0, DESCRIPTOR_BYTES);
    store<u8>(d, <u8>commandOpcode(entry));
    const sa = commandServiceAction(entry);
    if (sa != SA_NONE) putBe16(d + 2, sa);
    store<u8>(d + 5, <u8>((rctd ? 0x02 : 0) | (sa != SA_NONE ? 0x01 : 0))); // CTDP, SERVACTV
    putBe16(d + 6, commandCdbLength(entry));
    length += DESCRIPTOR_BYTES;
    if (rctd) length += timeouts(at + length);
  }
  putBe32(at, length - 4);
  return length;
}

/**
 * One command (options 001b, 010b, 011b): |0 -|1 CTDP, SUPPORT|2-3 CDB SIZE|4- CDB USAGE DATA| (+ timeouts).
 * OPCODES_INVALID when the options do not fit: a command with service actions asked without one, or the reverse.
 */
export function opcodesOne(at: usize, options: u32, opcode: u32, serviceAction: u32, rctd: bool): u32 {
  const hasSa = opcodeHasServiceActions(opcode);
  if (options == REPORTING_OPCODE && hasSa) return OPCODES_INVALID;
  if (options == REPORTING_OPCODE_AND_SA && !hasSa && commandFind(opcode, SA_NONE) != 0xffff_ffff) return OPCODES_INVALID;
  const index = commandFind(opcode, hasSa ? (serviceAction > 0x1f ? 0xfe : serviceAction) : SA_NONE);
  memory.fill(at, 0, 4);
  if (index == 0xffff_ffff) {
    store<u8>(at + 1, 0x01); // SUPPORT 001b: not supported; CDB SIZE 0
    return 4;
  }
  const entry = commandEntry(index);
  const cdbBytes = commandCdbLength(entry);
  store<u8>(at + 1, <u8>((rctd ? 0x80 : 0) | 0x03)); // CTDP, SUPPORT 011b: supported as the standard says
  putBe16(at + 2, cdbBytes);
  memory.copy(at + 4, commandUsage(entry), cdbBytes);
  let length = 4 + cdbBytes;
  if (rctd) length += timeouts(at + length);
  return length;
}

/** REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS parameter data (REPD 0): 4 bytes. */
export function tmfsSupported(at: usize): u32 {
  memory.fill(at, 0, 4);
  // ATS (ABORT TASK), ATSS (ABORT TASK SET), CTSS (CLEAR TASK SET), LURS (LOGICAL UNIT RESET), TRS (TARGET RESET).
  store<u8>(at, 0x80 | 0x40 | 0x10 | 0x08 | 0x02);
  return 4;
}
