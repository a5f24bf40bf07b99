// The DDMs of this processor: at boot, every unclaimed virtio-scsi function found by the PCI enumeration gets a
// driver task (assembly/ddm/virtio_scsi/controller.ts); afterwards the RTA asks here which controllers and disks
// there are and which task serves each.
import { bootInfoMsiAddress } from "../board/boot_info";
import { msixEnable, pciFunctionAt, pciFunctionCount } from "../board/pci";
import { line } from "../kernel/console";
import { irqRoute, taskAdd } from "../kernel/scheduler";
import { vectorAllocate, VECTOR_NONE } from "../kernel/vectors";
import { DiskInfo } from "./block";
import { REQUEST_QUEUE_INDEX, SCSI_CONFIG_BYTES, VirtioScsiController, VSCSI_VECTORS } from "./virtio_scsi/controller";
import { VSCSI_CONTROLLERS_MAX, VSCSI_DEVICE_ID, VSCSI_QUEUE_SIZE_MAX, VSCSI_VENDOR_ID } from "./virtio_scsi/limits";
import { VscsiStats } from "./virtio_scsi/stats";
import { COMMON_QUEUE_SELECT, COMMON_QUEUE_SIZE, VirtioCaps } from "./virtio_scsi/virtio_pci";

const CONTROLLER_NAMES: StaticArray<string> = ["vscsi0", "vscsi1", "vscsi2", "vscsi3"];
// @ts-ignore: ERROR is an AssemblyScript builtin
if (VSCSI_CONTROLLERS_MAX > 4) ERROR("name every controller in CONTROLLER_NAMES");

const controllers = new StaticArray<VirtioScsiController | null>(VSCSI_CONTROLLERS_MAX);
let controllerCount: u32 = 0;

/**
 * Boot, after pciEnumerate and before the kernel seals: claims every unclaimed virtio-scsi function (vendor 0x1AF4,
 * device 0x1048), carves its queue and request areas, gives it VSCSI_VECTORS MSI-X vectors routed to a new driver
 * task, and arms the task, whose first run resets the controller. Each controller posts DdmReady{a: its index} to
 * `rtaTask` once its disks are known (or it was given up). Returns the number of controllers.
 * A function whose capabilities, queue or MSI-X are unusable is left unclaimed, with a console line.
 */
export function ddmBoot(bootInfo: usize, rtaTask: u32): u32 {
  const count = pciFunctionCount();
  for (let i: u32 = 0; i < count; i++) {
    const f = pciFunctionAt(i);
    if (f.claimed || f.vendorId != VSCSI_VENDOR_ID || f.deviceId != VSCSI_DEVICE_ID) continue;
    if (controllerCount == VSCSI_CONTROLLERS_MAX) {
      line().s("ddm: virtio-scsi in slot ").u32(f.device).s(" skipped: VSCSI_CONTROLLERS_MAX reached").err();
      continue;
    }
    const caps = new VirtioCaps();
    if (!caps.find(f, SCSI_CONFIG_BYTES)) {
      line().s("ddm: virtio-scsi in slot ").u32(f.device).s(": virtio capabilities missing or outside BARs").err();
      continue;
    }
    caps.write16(COMMON_QUEUE_SELECT, REQUEST_QUEUE_INDEX);
    const queueSize = queueSizeFor(caps.read16(COMMON_QUEUE_SIZE));
    if (queueSize == 0) {
      line().s("ddm: virtio-scsi in slot ").u32(f.device).s(": no usable request queue").err();
      continue;
    }
    const vector = vectorAllocate(VSCSI_VECTORS);
    if (vector == VECTOR_NONE) {
      line().s("ddm: virtio-scsi in slot ").u32(f.device).s(": out of interrupt vectors").err();
      continue;
    }
    if (!msixEnable(f, bootInfoMsiAddress(bootInfo), vector, VSCSI_VECTORS)) {
      line().s("ddm: virtio-scsi in slot ").u32(f.device).s(": MSI-X setup failed").err();
      continue; // its vectors stay unused
    }
    f.claimed = true;
    const controller = new VirtioScsiController(
      controllerCount, unchecked(CONTROLLER_NAMES[controllerCount]), f, caps, queueSize, vector, rtaTask);
    taskAdd(controller);
    for (let v: u32 = 0; v < VSCSI_VECTORS; v++) irqRoute(vector + v, controller.index);
    controller.start();
    unchecked(controllers[controllerCount] = controller);
    controllerCount += 1;
  }
  return controllerCount;
}

// The largest power of two up to both the device's maximum and VSCSI_QUEUE_SIZE_MAX; 0 when too small to use.
function queueSizeFor(deviceMax: u32): u32 {
  if (deviceMax == 0xffff) return 0; // a master abort, not a size
  const limit = min(deviceMax, VSCSI_QUEUE_SIZE_MAX);
  if (limit < 8) return 0; // a request needs 3 descriptors, and a few should fit
  return (<u32>1) << (31 - clz(limit));
}

export function ddmControllerCount(): u32 { return controllerCount; }

export function ddmController(controller: u32): VirtioScsiController {
  assert(controller < controllerCount, "ddm: controller index out of range");
  return unchecked(controllers[controller])!;
}

/** The task serving `controller`: BlockIo messages go there. */
export function ddmControllerTask(controller: u32): u32 { return ddmController(controller).index; }

/** Disks found on `controller`; 0 until its DdmReady. */
export function ddmDiskCount(controller: u32): u32 { return ddmController(controller).diskCount; }

export function ddmDisk(controller: u32, disk: u32): DiskInfo {
  const c = ddmController(controller);
  assert(disk < c.diskCount, "ddm: disk index out of range");
  return unchecked(c.disks[disk])!;
}

export function ddmStats(controller: u32): VscsiStats { return ddmController(controller).stats; }
