// The board's system controller (docs/hardware.md): what the boot ROM booted, and the image confirm.
import { busRead32, busWrite32 } from "./bus";

const SYSCTL_ID: u32 = 0x5359_5343; // "SYSC"
const SYSCTL_CONFIRM_MAGIC: u32 = 0x434f_4e46; // "CONF"
const REG_ID: u64 = 0x00;
const REG_BOOT_FLAGS: u64 = 0x08;
const REG_CONFIRM: u64 = 0x10;
const BOOT_FLAG_TRIAL: u32 = 1;

/** True when the controller at `base` says the running image is on trial. */
export function sysctlOnTrial(base: u64): bool {
  if (base == 0 || busRead32(base + REG_ID) != SYSCTL_ID) return false;
  return (busRead32(base + REG_BOOT_FLAGS) & BOOT_FLAG_TRIAL) != 0;
}

/** Confirms the image on trial: the ROM keeps it from now on. */
export function sysctlConfirm(base: u64): void {
  busWrite32(base + REG_CONFIRM, SYSCTL_CONFIRM_MAGIC);
}
