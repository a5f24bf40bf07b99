// The virtio 1.x modern PCI transport as the driver sees it (virtio §4.1.4; REFERENCE.md §4.2): the vendor
// capabilities that place each structure in a BAR, and the common configuration's registers. Little-endian.
// virtio_pci_cap, 16 B: |0 cap_vndr 0x09|1 cap_next|2 cap_len|3 cfg_type|4 bar|5 id|6-7 -|8 offset le32|12 length le32|
// virtio_pci_notify_cap adds |16 notify_off_multiplier le32|.
import { busRead16, busRead32, busRead8, busWrite16, busWrite32, busWrite8 } from "../../board/bus";
import { CAP_VENDOR, PCI_BARS, PciFunctionInfo } from "../../board/pci";

// cfg_type values (virtio §4.1.4).
export const CFG_TYPE_COMMON: u32 = 1;
export const CFG_TYPE_NOTIFY: u32 = 2;
export const CFG_TYPE_ISR: u32 = 3;
export const CFG_TYPE_DEVICE: u32 = 4;

// Capability fields.
const CAP_LEN: u32 = 2;
const CAP_CFG_TYPE: u32 = 3;
const CAP_BAR: u32 = 4;
const CAP_OFFSET: u32 = 8;
const CAP_LENGTH: u32 = 12;
const CAP_NOTIFY_MULTIPLIER: u32 = 16;
const CAP_BYTES_MIN: u32 = 16;
const NOTIFY_CAP_BYTES_MIN: u32 = 20;
const VENDOR_CAPS_MAX: u32 = 16; // a list with more vendor capabilities than this is not walked further

// Common configuration (virtio §4.1.4.3), offsets from its start.
export const COMMON_DEVICE_FEATURE_SELECT: u64 = 0x00; // le32
export const COMMON_DEVICE_FEATURE: u64 = 0x04; // le32
export const COMMON_DRIVER_FEATURE_SELECT: u64 = 0x08; // le32
export const COMMON_DRIVER_FEATURE: u64 = 0x0c; // le32
export const COMMON_CONFIG_MSIX_VECTOR: u64 = 0x10; // le16
export const COMMON_NUM_QUEUES: u64 = 0x12; // le16
export const COMMON_DEVICE_STATUS: u64 = 0x14; // u8
export const COMMON_CONFIG_GENERATION: u64 = 0x15; // u8
export const COMMON_QUEUE_SELECT: u64 = 0x16; // le16
export const COMMON_QUEUE_SIZE: u64 = 0x18; // le16
export const COMMON_QUEUE_MSIX_VECTOR: u64 = 0x1a; // le16
export const COMMON_QUEUE_ENABLE: u64 = 0x1c; // le16
export const COMMON_QUEUE_NOTIFY_OFF: u64 = 0x1e; // le16
export const COMMON_QUEUE_DESC: u64 = 0x20; // le64, written as two le32 halves, low first
export const COMMON_QUEUE_DRIVER: u64 = 0x28; // le64
export const COMMON_QUEUE_DEVICE: u64 = 0x30; // le64
const COMMON_BYTES_MIN: u32 = 0x38; // the virtio 1.0 layout, up to queue_device

// Device status bits (virtio §2.1).
export const STATUS_ACKNOWLEDGE: u32 = 1;
export const STATUS_DRIVER: u32 = 2;
export const STATUS_DRIVER_OK: u32 = 4;
export const STATUS_FEATURES_OK: u32 = 8;
export const STATUS_DEVICE_NEEDS_RESET: u32 = 64;
export const STATUS_FAILED: u32 = 128;

// Feature bits (virtio §6): VERSION_1 is bit 32, bit 0 of feature word 1.
export const FEATURE_WORD_VERSION_1: u32 = 1;
export const FEATURE_VERSION_1_IN_WORD: u32 = 1 << 0;

/** Where a function's virtio structures are, as bus addresses; found by walking its vendor capabilities. */
export class VirtioCaps {
  common: u64 = 0;
  notify: u64 = 0;
  notifyLengthBytes: u32 = 0;
  notifyMultiplier: u32 = 0;
  isr: u64 = 0;
  device: u64 = 0;
  deviceLengthBytes: u32 = 0;

  /**
   * Fills from `f`'s vendor capabilities, the first usable one of each type (virtio §4.1.4: ignore unknown types and
   * reserved BARs, accept a longer cap_len). False unless common, notify and device config were all found inside
   * placed BARs. Reads config space only; the device is not touched.
   */
  find(f: PciFunctionInfo, deviceBytesMin: u32): bool {
    let cap = f.capabilityFind(CAP_VENDOR);
    for (let walked: u32 = 0; cap != 0 && walked < VENDOR_CAPS_MAX; walked++) {
      this.take(f, cap, deviceBytesMin);
      cap = f.capabilityFind(CAP_VENDOR, cap);
    }
    return this.common != 0 && this.notify != 0 && this.device != 0;
  }

  private take(f: PciFunctionInfo, cap: u32, deviceBytesMin: u32): void {
    const capBytes = f.read8(cap + CAP_LEN);
    const bar = f.read8(cap + CAP_BAR);
    if (capBytes < CAP_BYTES_MIN || bar >= PCI_BARS) return;
    const barAddress = unchecked(f.barAddress[bar]);
    const offset = <u64>f.read32(cap + CAP_OFFSET);
    const lengthBytes = f.read32(cap + CAP_LENGTH);
    if (barAddress == 0 || offset + <u64>lengthBytes > unchecked(f.barSize[bar])) return; // unplaced, or outside its BAR
    const address = barAddress + offset;
    switch (<i32>f.read8(cap + CAP_CFG_TYPE)) {
      case CFG_TYPE_COMMON: {
        if (this.common == 0 && lengthBytes >= COMMON_BYTES_MIN) this.common = address;
        break;
      }
      case CFG_TYPE_NOTIFY: {
        if (this.notify == 0 && capBytes >= NOTIFY_CAP_BYTES_MIN && lengthBytes >= 2) {
          this.notify = address;
          this.notifyLengthBytes = lengthBytes;
          this.notifyMultiplier = f.read32(cap + CAP_NOTIFY_MULTIPLIER);
        }
        break;
      }
      case CFG_TYPE_ISR: {
        if (this.isr == 0 && lengthBytes >= 1) this.isr = address;
        break;
      }
      case CFG_TYPE_DEVICE: {
        if (this.device == 0 && lengthBytes >= deviceBytesMin) {
          this.device = address;
          this.deviceLengthBytes = lengthBytes;
        }
        break;
      }
      default: break; // PCI_CFG, shared memory, vendor: not used
    }
  }

  // Common configuration accessors: each is one bus access of the field's width (virtio §4.1.3).
  @inline read8(offset: u64): u32 { return busRead8(this.common + offset); }
  @inline read16(offset: u64): u32 { return busRead16(this.common + offset); }
  @inline read32(offset: u64): u32 { return busRead32(this.common + offset); }
  @inline write8(offset: u64, value: u32): void { busWrite8(this.common + offset, value); }
  @inline write16(offset: u64, value: u32): void { busWrite16(this.common + offset, value); }
  @inline write32(offset: u64, value: u32): void { busWrite32(this.common + offset, value); }

  /** A 64-bit common field as two 32-bit writes, low half first (virtio §4.1.3.1). */
  write64(offset: u64, value: u64): void {
    busWrite32(this.common + offset, <u32>value);
    busWrite32(this.common + offset + 4, <u32>(value >> 32));
  }

  /** An available-buffer notification for queue `queueIndex` at its notify address (virtio §4.1.4.4): 16 bits. */
  @inline notifyWrite(address: u64, queueIndex: u32): void { busWrite16(address, queueIndex); }

  @inline deviceRead32(offset: u64): u32 { return busRead32(this.device + offset); }
}
