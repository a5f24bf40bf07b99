// The device profile: an RTA's reply to StartAgent, a message frame (frame.ts) whose body lists the processor's disks
// and its name; the UMA keeps each processor's copy and builds the inventory and the volumes' members from it. Read and
// written only through the accessors below.
// Profile: |0-23 the frame's header|24 diskCount u32 (the frame's blockCount field)|28-31 -|32 disk[0..3]:
// |0 blockCount u64 (0: an empty slot)|8 blockSizeBytes u32|12 controller u8|13 physicalExponent u8 (LBPPBE)|14 lun u16 (its index on the controller)||
// |96 processor name[32], NUL-padded|
import { PROCESSOR_NAME_BYTES } from "./boot_info";
import { FRAME_AT_BLOCK_COUNT, FRAME_BYTES } from "./frame";

export const PROFILE_DISKS_MAX: u32 = 4;
const PROFILE_DISK_BYTES: u32 = 16;
const AT_DISK_COUNT: usize = FRAME_AT_BLOCK_COUNT;
const AT_DISKS: usize = 32;
const AT_NAME: usize = 96;
if (AT_DISKS + PROFILE_DISKS_MAX * PROFILE_DISK_BYTES != AT_NAME) ERROR("profile: the disks end where the name starts");
if (AT_NAME + PROCESSOR_NAME_BYTES != FRAME_BYTES) ERROR("profile: the name ends the frame");

const AT_DISK_BLOCK_COUNT: usize = 0;
const AT_DISK_BLOCK_SIZE_BYTES: usize = 8;
const AT_DISK_CONTROLLER: usize = 12;
const AT_DISK_PHYSICAL_EXPONENT: usize = 13;
const AT_DISK_LUN: usize = 14;
if (AT_DISK_LUN + 2 != PROFILE_DISK_BYTES) ERROR("profile: the disk's lun ends its entry");

/** The disks listed, at most PROFILE_DISKS_MAX whatever the frame says (it came from another processor). */
@inline export function profileDiskCount(f: usize): u32 { return min(load<u32>(f, AT_DISK_COUNT), PROFILE_DISKS_MAX); }
/** Disk entry `i` (< profileDiskCount) of the profile at `f`. */
@inline export function profileDisk(f: usize, i: u32): usize { return f + AT_DISKS + <usize>i * PROFILE_DISK_BYTES; }
/** The processor's name, PROCESSOR_NAME_BYTES NUL-padded. */
@inline export function profileName(f: usize): usize { return f + AT_NAME; }

@inline export function profileDiskBlockCount(d: usize): u64 { return load<u64>(d, AT_DISK_BLOCK_COUNT); }
@inline export function profileDiskBlockSizeBytes(d: usize): u32 { return load<u32>(d, AT_DISK_BLOCK_SIZE_BYTES); }
@inline export function profileDiskController(d: usize): u32 { return <u32>load<u8>(d, AT_DISK_CONTROLLER); }
@inline export function profileDiskPhysicalExponent(d: usize): u32 { return <u32>load<u8>(d, AT_DISK_PHYSICAL_EXPONENT); }
@inline export function profileDiskLun(d: usize): u32 { return <u32>load<u16>(d, AT_DISK_LUN); }

@inline export function profileSetDiskCount(f: usize, count: u32): void { store<u32>(f, count, AT_DISK_COUNT); }
/** Fills disk entry `d`; `controller` fits a byte (asserted by the caller, which knows its controllers). */
@inline export function profileSetDisk(d: usize, blockCount: u64, blockSizeBytes: u32, controller: u32, physicalExponent: u32, lun: u32): void {
  store<u64>(d, blockCount, AT_DISK_BLOCK_COUNT);
  store<u32>(d, blockSizeBytes, AT_DISK_BLOCK_SIZE_BYTES);
  store<u8>(d, <u8>controller, AT_DISK_CONTROLLER);
  store<u8>(d, <u8>physicalExponent, AT_DISK_PHYSICAL_EXPONENT);
  store<u16>(d, <u16>lun, AT_DISK_LUN);
}
