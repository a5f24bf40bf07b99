// Staging slots: large buffers taken at boot that hold a command's unsolicited data (iSCSI: immediate data and
// Data-Out before any R2T) until the SCSI target, which owns the command's buffers, has them and asks for the data.
// Each slot has one holder at a time, a command or a PDU still arriving. None free: the transport stops reading the
// connection until one comes back (held_receive.ts), or answers BUSY when waiting could never end (iscsi/target.ts).
import { BUFFER_CLASS_LARGE } from "../config";
import { bufferPool, bufferReserve, sgls } from "../kernel/buffers";
import { POOL_NONE } from "../kernel/pool";
import { SCSI_TASKS_MAX } from "../scsi/tasks";

export const STAGING_SLOTS_MAX: u32 = 16;
export const STAGE_NONE: u8 = 0xff;

export class StagingSlots {
  private readonly buffers: StaticArray<u32> = new StaticArray<u32>(STAGING_SLOTS_MAX); // large-pool indexes
  private readonly held: StaticArray<bool> = new StaticArray<bool>(STAGING_SLOTS_MAX);
  private readonly slotOfCommand: StaticArray<u8> = new StaticArray<u8>(SCSI_TASKS_MAX); // or STAGE_NONE
  private count: u32 = 0;

  /** Boot: reserves up to STAGING_SLOTS_MAX large buffers, leaving the pool three quarters. Returns the slot count. */
  boot(): u32 {
    const large = bufferPool(BUFFER_CLASS_LARGE);
    const slots = min(STAGING_SLOTS_MAX, large.capacity / 4);
    for (let i: u32 = 0; i < slots; i++) {
      unchecked(this.buffers[i] = bufferReserve(BUFFER_CLASS_LARGE));
      assert(unchecked(this.buffers[i]) != POOL_NONE, "staging buffers");
    }
    this.count = slots;
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) unchecked(this.slotOfCommand[t] = STAGE_NONE);
    return slots;
  }

  /** Slots taken at boot. */
  slotCount(): u32 { return this.count; }

  /** Bytes one slot holds. */
  slotBytes(): u32 { return bufferPool(BUFFER_CLASS_LARGE).slotBytes; }

  /** A free slot, now held; STAGE_NONE when all are held. */
  take(): u8 {
    for (let i: u32 = 0; i < this.count; i++) {
      if (unchecked(this.held[i])) continue;
      unchecked(this.held[i] = true);
      return <u8>i;
    }
    return STAGE_NONE;
  }

  give(stage: u8): void {
    assert(<u32>stage < this.count, "staging slot out of range");
    assert(unchecked(this.held[<u32>stage]), "staging slot given back twice");
    unchecked(this.held[<u32>stage] = false);
  }

  freeCount(): u32 {
    let free: u32 = 0;
    for (let i: u32 = 0; i < this.count; i++) if (!unchecked(this.held[i])) free += 1;
    return free;
  }

  address(stage: u32): usize {
    assert(stage < this.count, "staging slot out of range");
    return bufferPool(BUFFER_CLASS_LARGE).address(unchecked(this.buffers[stage]));
  }

  /** True when `address` lies inside slot `stage`. */
  holds(stage: u32, address: usize): bool {
    const base = this.address(stage);
    return address >= base && address < base + this.slotBytes();
  }

  /** The slot command t holds, or STAGE_NONE. */
  ofCommand(t: u32): u8 { return this.slotOfCommand[t]; }
  setOfCommand(t: u32, stage: u8): void { this.slotOfCommand[t] = stage; }

  /** Copies [offset, offset + lengthBytes) of command t's staged data into `sgl` at the same offset (what fits in it). */
  copyToSgl(t: u32, sgl: u32, offset: u32, lengthBytes: u32): void {
    const stage = <u32>this.ofCommand(t);
    if (stage == <u32>STAGE_NONE || lengthBytes == 0) return;
    assert(offset + lengthBytes <= this.slotBytes(), "staged data within its slot");
    const total = sgls().totalBytes(sgl);
    if (<u64>offset >= total) return;
    const fits = min(<u64>lengthBytes, total - <u64>offset);
    sgls().copyFlat(sgl, <u64>offset, this.address(stage) + offset, fits, true);
  }
}
