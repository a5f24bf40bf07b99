// The DDMs of this processor: at boot, every unclaimed virtio-scsi function (assembly/ddm/virtio_scsi/controller.ts)
// and every unclaimed NVM Express function (class 01h/08h/02h, assembly/ddm/nvme/controller.ts) found by the PCI
// enumeration gets a driver task, in the order the enumeration found them (by slot); afterwards the RTA asks here
// which controllers and disks there are and which task serves each. Nothing above this file knows the kinds apart.
import { bootInfoMsiAddress } from "../board/boot_info";
import { msixEnable, PciFunctionInfo, pciFunctionAt, pciFunctionCount } from "../board/pci";
import { line } from "../kernel/console";
import { irqRoute, taskAdd } from "../kernel/scheduler";
import { vectorAllocate, VECTOR_NONE } from "../kernel/vectors";
import { DiskInfo } from "./block";
import { REQUEST_QUEUE_INDEX, SCSI_CONFIG_BYTES, VirtioScsiController, VSCSI_VECTORS } from "./virtio_scsi/controller";
import { VSCSI_CONTROLLERS_MAX, VSCSI_DEVICE_ID, VSCSI_QUEUE_SIZE_MAX, VSCSI_VENDOR_ID } from "./virtio_scsi/limits";
import { VscsiStats } from "./virtio_scsi/stats";
import { NvmeController, NVME_VECTORS } from "./nvme/controller";
import { NVME_CLASS_CODE, NVME_CONTROLLERS_MAX } from "./nvme/limits";
import { NvmeMemory } from "./nvme/memory";
import { NvmeRegisters } from "./nvme/registers";
import { COMMON_QUEUE_SELECT, COMMON_QUEUE_SIZE, VirtioCaps } from "./virtio_scsi/virtio_pci";

const CONTROLLER_NAMES: StaticArray<string> = ["vscsi0", "vscsi1", "vscsi2", "vscsi3"];
const NVME_NAMES: StaticArray<string> = ["nvme0", "nvme1", "nvme2", "nvme3"];
// @ts-ignore: ERROR is an AssemblyScript builtin
if (VSCSI_CONTROLLERS_MAX > 4 || NVME_CONTROLLERS_MAX > 4) ERROR("name every controller in CONTROLLER_NAMES and NVME_NAMES");
const DDM_CONTROLLERS_MAX: u32 = VSCSI_CONTROLLERS_MAX + NVME_CONTROLLERS_MAX;
const NVME_BAR_REGISTERS: u32 = 0;
const NVME_BAR_BYTES_MIN: u64 = 0x2000; // the registers and the doorbells of two queue pairs at the widest stride we accept

export enum DdmKind {
  VirtioScsi = 0,
  Nvme = 1,
}

// Indexed by controller index (the RTA's order): the kind, and the driver of that kind.
const controllerKinds = new StaticArray<u8>(DDM_CONTROLLERS_MAX);
const controllers = new StaticArray<VirtioScsiController | null>(DDM_CONTROLLERS_MAX);
const nvmeControllers = new StaticArray<NvmeController | null>(DDM_CONTROLLERS_MAX);
let controllerCount: u32 = 0;
let vscsiCount: u32 = 0;
let nvmeCount: u32 = 0;

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
    if (f.claimed) continue;
    if (f.classCode == NVME_CLASS_CODE) {
      nvmeClaim(f, bootInfo, rtaTask);
      continue;
    }
    if (f.vendorId != VSCSI_VENDOR_ID || f.deviceId != VSCSI_DEVICE_ID) continue;
    if (vscsiCount == VSCSI_CONTROLLERS_MAX) {
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
      controllerCount, unchecked(CONTROLLER_NAMES[vscsiCount]), f, caps, queueSize, vector, rtaTask);
    taskAdd(controller);
    for (let v: u32 = 0; v < VSCSI_VECTORS; v++) irqRoute(vector + v, controller.index);
    controller.start();
    unchecked(controllerKinds[controllerCount] = <u8>DdmKind.VirtioScsi);
    unchecked(controllers[controllerCount] = controller);
    controllerCount += 1;
    vscsiCount += 1;
  }
  return controllerCount;
}

// An NVMe function: BAR 0 placed and large enough for the registers and our doorbells, NVME_VECTORS MSI-X vectors
// (admin CQ, I/O CQ) routed to a new driver task. The controller itself is checked at bring-up (CAP, IDENTIFY).
function nvmeClaim(f: PciFunctionInfo, bootInfo: usize, rtaTask: u32): void {
  if (nvmeCount == NVME_CONTROLLERS_MAX) {
    line().s("ddm: NVMe in slot ").u32(f.device).s(" skipped: NVME_CONTROLLERS_MAX reached").err();
    return;
  }
  const base = unchecked(f.barAddress[NVME_BAR_REGISTERS]);
  const size = unchecked(f.barSize[NVME_BAR_REGISTERS]);
  if (base == 0 || size < NVME_BAR_BYTES_MIN) {
    line().s("ddm: NVMe in slot ").u32(f.device).s(": BAR 0 unplaced or smaller than the registers").err();
    return;
  }
  const dma = new NvmeMemory();
  if (!dma.reserve()) {
    line().s("ddm: NVMe in slot ").u32(f.device).s(": no large buffers left for its queues").err();
    return;
  }
  const vector = vectorAllocate(NVME_VECTORS);
  if (vector == VECTOR_NONE) {
    line().s("ddm: NVMe in slot ").u32(f.device).s(": out of interrupt vectors").err();
    return;
  }
  if (!msixEnable(f, bootInfoMsiAddress(bootInfo), vector, NVME_VECTORS)) {
    line().s("ddm: NVMe in slot ").u32(f.device).s(": MSI-X setup failed").err();
    return;
  }
  f.claimed = true;
  const controller = new NvmeController(
    controllerCount, unchecked(NVME_NAMES[nvmeCount]), f, new NvmeRegisters(base, size), dma, vector, rtaTask);
  taskAdd(controller);
  for (let v: u32 = 0; v < NVME_VECTORS; v++) irqRoute(vector + v, controller.index);
  controller.start();
  unchecked(controllerKinds[controllerCount] = <u8>DdmKind.Nvme);
  unchecked(nvmeControllers[controllerCount] = controller);
  controllerCount += 1;
  nvmeCount += 1;
}

// The largest power of two up to both the device's maximum and VSCSI_QUEUE_SIZE_MAX; 0 when too small to use.
function queueSizeFor(deviceMax: u32): u32 {
  if (deviceMax == 0xffff) return 0; // a master abort, not a size
  const limit = min(deviceMax, VSCSI_QUEUE_SIZE_MAX);
  if (limit < 8) return 0; // a request needs 3 descriptors, and a few should fit
  return (<u32>1) << (31 - clz(limit));
}

export function ddmControllerCount(): u32 { return controllerCount; }

export function ddmControllerKind(controller: u32): DdmKind {
  assert(controller < controllerCount, "ddm: controller index out of range");
  return <DdmKind>unchecked(controllerKinds[controller]);
}

/** The virtio-scsi driver of `controller` (which must be one). */
export function ddmController(controller: u32): VirtioScsiController {
  assert(ddmControllerKind(controller) == DdmKind.VirtioScsi, "ddm: not a virtio-scsi controller");
  return unchecked(controllers[controller])!;
}

/** The NVMe driver of `controller` (which must be one). */
export function ddmNvmeController(controller: u32): NvmeController {
  assert(ddmControllerKind(controller) == DdmKind.Nvme, "ddm: not an NVMe controller");
  return unchecked(nvmeControllers[controller])!;
}

/** The task serving `controller`: BlockIo messages go there. */
export function ddmControllerTask(controller: u32): u32 {
  return ddmControllerKind(controller) == DdmKind.Nvme ? ddmNvmeController(controller).index : ddmController(controller).index;
}

/** Disks found on `controller`; 0 until its DdmReady. */
export function ddmDiskCount(controller: u32): u32 {
  return ddmControllerKind(controller) == DdmKind.Nvme ? ddmNvmeController(controller).diskCount : ddmController(controller).diskCount;
}

export function ddmDisk(controller: u32, disk: u32): DiskInfo {
  assert(disk < ddmDiskCount(controller), "ddm: disk index out of range");
  if (ddmControllerKind(controller) == DdmKind.Nvme) return unchecked(ddmNvmeController(controller).disks[disk])!;
  return unchecked(ddmController(controller).disks[disk])!;
}

export function ddmStats(controller: u32): VscsiStats { return ddmController(controller).stats; }
