// Register reads that lie, for the targets whose input makes a device lie to the firmware (bus, nvme). The input arms
// a lie: let `countdown` reads through, then answer the next one falsely. Armed lies wait in order, at most
// REGISTER_LIES_MAX; each told lie is logged for the replay.
import type { InputReader } from "../target.ts";

export interface RegisterLie {
  countdown: number; // register reads to let through first
  mode: number; // 0 xor mask, 1 zero, 2 all ones, 3 the value
  value: number;
}

export const REGISTER_LIES_MAX = 8;

/** Decodes a lie from the input (3 fields: countdown below `countdownMax`, mode, value), logs it and arms it. */
export function registerLieArm(input: InputReader, countdownMax: number, armed: RegisterLie[], log: (line: string) => void): void {
  const lie: RegisterLie = { countdown: input.u8() % countdownMax, mode: input.u8() % 4, value: input.u32() };
  log(`register read override ${JSON.stringify(lie)}`);
  if (armed.length < REGISTER_LIES_MAX) armed.push(lie);
}

/**
 * What a register read of `value` answers: `value` while no lie is armed or the first one's countdown runs; else that
 * lie, taken off the list and told in `told` (`where` names the register, given the access's width in bits).
 */
export function registerReadAnswer(armed: RegisterLie[], told: string[], value: number | bigint, sizeBytes: number, where: (bits: number) => string): number | bigint {
  const next = armed[0]!;
  if (next.countdown > 0) {
    next.countdown -= 1;
    return value;
  }
  armed.shift();
  const bits = sizeBytes * 8;
  const mask = bits === 64 ? 0xffff_ffff_ffff_ffffn : (1n << BigInt(bits)) - 1n;
  const wide = BigInt(value);
  const lie = next.mode === 0 ? wide ^ (BigInt(next.value) & mask) : next.mode === 1 ? 0n : next.mode === 2 ? mask : BigInt(next.value) & mask;
  told.push(`lie: ${where(bits)} answered 0x${lie.toString(16)} instead of 0x${wide.toString(16)}`);
  return sizeBytes === 8 ? lie : Number(lie);
}
