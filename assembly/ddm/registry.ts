// PROVISIONAL (the agents' side of the DDM registry, until the virtio-scsi DDM lands): the DDMs on this processor.
// The virtio-scsi DDM replaces this file with the real one, keeping these exports (the RTA and agents use them),
// and should use vectorAllocate from assembly/kernel/vectors.ts for MSI-X vectors.
import { DiskInfo } from "./block";

/** Creates one driver task per storage controller found by PCI enumeration; returns how many. Boot only. */
export function ddmBoot(bootInfo: usize, rtaTask: u32): u32 { return 0; }
export function ddmControllerCount(): u32 { return 0; }
export function ddmControllerTask(controller: u32): u32 { assert(false, "no controllers"); return 0; }
export function ddmDiskCount(controller: u32): u32 { return 0; }
export function ddmDisk(controller: u32, disk: u32): DiskInfo { assert(false, "no controllers"); return new DiskInfo(); }
