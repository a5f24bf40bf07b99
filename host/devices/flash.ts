// A NOR flash: erased bytes read 0xFF, programming only clears bits, erasing sets a whole block back to 0xFF.
// Backed by a file (so a board keeps its firmware between runs) or by memory (tests). Every erase and program is
// one step that an injected PowerCut can tear, so tests can kill the power at each step of an update.
import { closeSync, existsSync, fstatSync, openSync, readSync, writeSync } from "node:fs";

export const FLASH_ERASED_BYTE = 0xff;
const KIB = 1024;
const MIB = 1024 * KIB;

export interface FlashGeometry {
  eraseBlockSizeBytes: number;
  sizeBytes: number; // a whole number of erase blocks
}

export type SlotName = "A" | "B";
export const SLOT_NAMES: readonly SlotName[] = ["A", "B"];

export interface FlashRegion {
  offsetBytes: number;
  sizeBytes: number;
}

/** Where the boot state and the two image slots sit; each region is a whole number of erase blocks. */
export interface FlashLayout {
  bootState: FlashRegion;
  slots: Record<SlotName, FlashRegion>;
}

/** Two boot-state blocks: the state log lives in one while the other can be erased (see host/boot/boot_state.ts). */
export const BOOT_STATE_BLOCK_COUNT = 2;
/** The default part: 64 KiB erase blocks, two state blocks, and two slots of 4 MiB (the largest image). */
export const FLASH_ERASE_BLOCK_SIZE_DEFAULT_BYTES = 64 * KIB;
export const FLASH_SLOT_SIZE_DEFAULT_BYTES = 4 * MIB;
export const FLASH_GEOMETRY_DEFAULT: FlashGeometry = {
  eraseBlockSizeBytes: FLASH_ERASE_BLOCK_SIZE_DEFAULT_BYTES,
  sizeBytes: BOOT_STATE_BLOCK_COUNT * FLASH_ERASE_BLOCK_SIZE_DEFAULT_BYTES + 2 * FLASH_SLOT_SIZE_DEFAULT_BYTES,
};

/** The boot-state blocks first, then the rest split into two equal slots of whole blocks (any odd block unused). */
export function flashLayout(geometry: FlashGeometry): FlashLayout {
  checkGeometry(geometry);
  const blockBytes = geometry.eraseBlockSizeBytes;
  const blockCount = geometry.sizeBytes / blockBytes;
  const slotBlockCount = Math.floor((blockCount - BOOT_STATE_BLOCK_COUNT) / 2);
  if (slotBlockCount < 1) throw new RangeError(`flash of ${blockCount} blocks has no room for two slots`);
  const slotBytes = slotBlockCount * blockBytes;
  const slotAOffsetBytes = BOOT_STATE_BLOCK_COUNT * blockBytes;
  return {
    bootState: { offsetBytes: 0, sizeBytes: BOOT_STATE_BLOCK_COUNT * blockBytes },
    slots: {
      A: { offsetBytes: slotAOffsetBytes, sizeBytes: slotBytes },
      B: { offsetBytes: slotAOffsetBytes + slotBytes, sizeBytes: slotBytes },
    },
  };
}

function checkGeometry(geometry: FlashGeometry): void {
  const { eraseBlockSizeBytes, sizeBytes } = geometry;
  if (!Number.isInteger(eraseBlockSizeBytes) || eraseBlockSizeBytes <= 0) throw new RangeError(`erase block size ${eraseBlockSizeBytes} is not a positive integer`);
  if (!Number.isInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % eraseBlockSizeBytes !== 0) {
    throw new RangeError(`flash size ${sizeBytes} is not a whole number of ${eraseBlockSizeBytes}-byte blocks`);
  }
}

/** The power went off during a flash step; the flash refuses every later step until power is restored. */
export class PowerLoss extends Error {
  override name = "PowerLoss";
  constructor(
    readonly stepIndex: number,
    readonly operation: "erase" | "program",
  ) {
    super(`power lost during flash step ${stepIndex} (${operation})`);
  }
}

/** A flash file that exists with the wrong size, or cannot be opened. */
export class FlashFileError extends Error {
  override name = "FlashFileError";
}

/**
 * Cuts the power at step `cutStepIndex` (0-based, counted over erases and programs since the cut was armed).
 * The cut step is torn: a program writes only its first `tornFraction` of bytes, an erase erases only its first
 * `tornFraction` of the block and leaves the rest as it was. Real parts leave worse; the boot state's CRC and the
 * image hash catch any tear, and these two shapes are the ones that leave a record or header looking half-valid.
 */
export class PowerCut {
  stepCount = 0; // steps started since the cut was armed
  fired = false;
  constructor(
    readonly cutStepIndex: number,
    readonly tornFraction = 0.5,
  ) {
    if (!(tornFraction >= 0 && tornFraction <= 1)) throw new RangeError(`torn fraction ${tornFraction} is not in [0, 1]`);
  }
}

export interface FlashOptions {
  geometry?: FlashGeometry;
  /** Told about each guest error (bad range, programming a 0 bit back to 1). */
  onGuestError?: (message: string) => void;
}

export class Flash {
  readonly geometry: FlashGeometry;
  readonly layout: FlashLayout;
  /** Armed by tests; null: the power stays on. */
  powerCut: PowerCut | null = null;
  eraseCount = 0;
  programCount = 0;
  guestErrorCount = 0;
  private readonly bytes: Uint8Array;
  private readonly onGuestError: (message: string) => void;
  private fd: number | null;

  private constructor(bytes: Uint8Array, fd: number | null, options: FlashOptions) {
    this.geometry = options.geometry ?? FLASH_GEOMETRY_DEFAULT;
    this.layout = flashLayout(this.geometry);
    this.bytes = bytes;
    this.fd = fd;
    this.onGuestError = options.onGuestError ?? (() => {});
  }

  /** A part in memory: blank (all 0xFF), or holding a copy of `contents` (e.g. another part's `snapshot()`). */
  static inMemory(options: FlashOptions & { contents?: Uint8Array } = {}): Flash {
    const geometry = options.geometry ?? FLASH_GEOMETRY_DEFAULT;
    checkGeometry(geometry);
    const bytes = new Uint8Array(geometry.sizeBytes).fill(FLASH_ERASED_BYTE);
    if (options.contents !== undefined) {
      if (options.contents.length !== geometry.sizeBytes) throw new RangeError(`contents are ${options.contents.length} bytes; the part is ${geometry.sizeBytes}`);
      bytes.set(options.contents);
    }
    return new Flash(bytes, null, options);
  }

  /** Opens a file-backed part, creating it 0xFF-filled when missing; every erase and program writes through. */
  static openFile(path: string, options: FlashOptions = {}): Flash {
    const geometry = options.geometry ?? FLASH_GEOMETRY_DEFAULT;
    checkGeometry(geometry);
    const bytes = new Uint8Array(geometry.sizeBytes).fill(FLASH_ERASED_BYTE);
    const isNew = !existsSync(path);
    let fd: number;
    try {
      fd = openSync(path, isNew ? "w+" : "r+");
    } catch (error) {
      throw new FlashFileError(`cannot open flash file ${path}: ${(error as Error).message}`);
    }
    if (isNew) {
      writeSync(fd, bytes, 0, bytes.length, 0);
    } else {
      const sizeBytes = fstatSync(fd).size;
      if (sizeBytes !== geometry.sizeBytes) {
        closeSync(fd);
        throw new FlashFileError(`flash file ${path} is ${sizeBytes} bytes; the board's flash is ${geometry.sizeBytes}`);
      }
      readSync(fd, bytes, 0, bytes.length, 0);
    }
    return new Flash(bytes, fd, options);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** Restores power after a PowerLoss: later steps run again (the torn contents stay, as on a real part). */
  restorePower(): void {
    this.powerCut = null;
  }

  /** A copy of the whole part, for tests that boot a copy without disturbing the original. */
  snapshot(): Uint8Array {
    return this.bytes.slice();
  }

  /** A copy of `lengthBytes` from `offsetBytes`; a range outside the part is a guest error and reads as 0xFF. */
  read(offsetBytes: number, lengthBytes: number): Uint8Array {
    if (!this.inRange(offsetBytes, lengthBytes)) {
      this.guestError(`read 0x${offsetBytes.toString(16)}+${lengthBytes} outside the ${this.geometry.sizeBytes}-byte flash`);
      return new Uint8Array(Math.max(0, lengthBytes)).fill(FLASH_ERASED_BYTE);
    }
    return this.bytes.slice(offsetBytes, offsetBytes + lengthBytes);
  }

  /** Erases block `blockIndex` to 0xFF; one step. */
  erase(blockIndex: number): void {
    const blockBytes = this.geometry.eraseBlockSizeBytes;
    const blockCount = this.geometry.sizeBytes / blockBytes;
    if (!Number.isInteger(blockIndex) || blockIndex < 0 || blockIndex >= blockCount) {
      this.guestError(`erase of block ${blockIndex}; the flash has ${blockCount}`);
      return;
    }
    const start = blockIndex * blockBytes;
    const tornFraction = this.stepBegins("erase");
    const erasedBytes = tornFraction === null ? blockBytes : Math.floor(blockBytes * tornFraction);
    this.bytes.fill(FLASH_ERASED_BYTE, start, start + erasedBytes);
    this.writeThrough(start, erasedBytes);
    this.eraseCount += 1;
    if (tornFraction !== null) this.powerLost("erase");
  }

  /**
   * Programs `data` at `offsetBytes`; one step. NOR only clears bits, so the cell becomes `old & new`; asking for a
   * 0 bit to become 1 is a guest error (it needed an erase first) and those bits stay 0, as on the part.
   */
  program(offsetBytes: number, data: Uint8Array): void {
    if (!this.inRange(offsetBytes, data.length)) {
      this.guestError(`program 0x${offsetBytes.toString(16)}+${data.length} outside the ${this.geometry.sizeBytes}-byte flash`);
      return;
    }
    const tornFraction = this.stepBegins("program");
    const writtenBytes = tornFraction === null ? data.length : Math.floor(data.length * tornFraction);
    let raisedBitAt = -1;
    for (let index = 0; index < writtenBytes; index += 1) {
      const old = this.bytes[offsetBytes + index] as number;
      const wanted = data[index] as number;
      if ((old & wanted) !== wanted && raisedBitAt < 0) raisedBitAt = offsetBytes + index;
      this.bytes[offsetBytes + index] = old & wanted;
    }
    this.writeThrough(offsetBytes, writtenBytes);
    this.programCount += 1;
    if (raisedBitAt >= 0) this.guestError(`program at 0x${raisedBitAt.toString(16)} asks a 0 bit to become 1 without an erase`);
    if (tornFraction !== null) this.powerLost("program");
  }

  /** Erases every block of `region` in order, one step each. */
  eraseRegion(region: FlashRegion): void {
    const blockBytes = this.geometry.eraseBlockSizeBytes;
    const firstBlockIndex = region.offsetBytes / blockBytes;
    const blockCount = region.sizeBytes / blockBytes;
    for (let index = 0; index < blockCount; index += 1) this.erase(firstBlockIndex + index);
  }

  private inRange(offsetBytes: number, lengthBytes: number): boolean {
    return Number.isInteger(offsetBytes) && Number.isInteger(lengthBytes) && offsetBytes >= 0 && lengthBytes >= 0 &&
      offsetBytes + lengthBytes <= this.geometry.sizeBytes;
  }

  /** Counts a step against the armed cut: null when it runs whole, else the fraction that lands before the cut. */
  private stepBegins(operation: "erase" | "program"): number | null {
    const cut = this.powerCut;
    if (cut === null) return null;
    if (cut.fired) throw new PowerLoss(cut.stepCount, operation); // still off: nothing lands
    const stepIndex = cut.stepCount;
    cut.stepCount += 1;
    if (stepIndex !== cut.cutStepIndex) return null;
    cut.fired = true;
    return cut.tornFraction;
  }

  private powerLost(operation: "erase" | "program"): never {
    throw new PowerLoss((this.powerCut as PowerCut).cutStepIndex, operation);
  }

  private writeThrough(offsetBytes: number, lengthBytes: number): void {
    if (this.fd !== null && lengthBytes > 0) writeSync(this.fd, this.bytes, offsetBytes, lengthBytes, offsetBytes);
  }

  private guestError(message: string): void {
    this.guestErrorCount += 1;
    this.onGuestError(`flash: ${message}`);
  }
}
