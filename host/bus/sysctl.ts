// The board's system controller, on the host processor's bus: what the boot ROM booted, and the register through
// which the firmware confirms an image on trial (docs/hardware.md, "System controller").
import type { AccessSize, BusRegion } from "./bus.ts";

export const SYSCTL_ID = 0x5359_5343; // "SYSC"
export const SYSCTL_CONFIRM_MAGIC = 0x434f_4e46; // "CONF"
const REG_ID = 0x00;
const REG_BOOT_SLOT = 0x04;
const REG_BOOT_FLAGS = 0x08;
const REG_CONFIRM = 0x10;
const REG_CONFIRMED = 0x14;

export interface BootReport {
  slot: "A" | "B" | undefined; // undefined: not booted from flash
  trial: boolean;
}

export class SystemController implements BusRegion {
  readonly name = "sysctl";
  private confirmed = false;

  constructor(private readonly boot: BootReport, private readonly onConfirm: () => void, private readonly log: (m: string) => void) {}

  read(offset: number, sizeBytes: AccessSize): number {
    if (sizeBytes !== 4) return this.guestError(`read of ${sizeBytes} bytes at ${offset}`);
    switch (offset) {
      case REG_ID: return SYSCTL_ID;
      case REG_BOOT_SLOT: return this.boot.slot === undefined ? 0xff : this.boot.slot === "A" ? 0 : 1;
      case REG_BOOT_FLAGS: return this.boot.trial && !this.confirmed ? 1 : 0;
      case REG_CONFIRMED: return this.confirmed ? 1 : 0;
      default: return this.guestError(`read of unknown register ${offset}`);
    }
  }

  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (sizeBytes !== 4 || offset !== REG_CONFIRM) {
      this.guestError(`write of ${sizeBytes} bytes at ${offset}`);
      return;
    }
    if (Number(value) !== SYSCTL_CONFIRM_MAGIC) {
      this.guestError(`confirm with ${Number(value).toString(16)} instead of the magic`);
      return;
    }
    if (this.confirmed) return;
    this.confirmed = true;
    this.onConfirm();
  }

  private guestError(message: string): number {
    this.log(`sysctl: guest error: ${message}`);
    return 0xffff_ffff;
  }
}
