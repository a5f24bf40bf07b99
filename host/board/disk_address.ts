// Where the firmware finds a disk of the board file: the processor whose storage controller (a virtio-scsi or NVMe
// function) holds it, and its
// index among that processor's disks. The configuration ROM names a volume's disks this way, because the firmware
// never sees disk names (docs/hardware.md, "Configuration ROM").
//
// The index is the order in which the processor's RTA reports its disks (assembly/rta/rta.ts collectDisks): its
// controllers in the order the DDM claimed them (assembly/ddm/registry.ts ddmBoot, which walks the PCI functions in
// the order pciEnumerate found them, by slot, assembly/board/pci.ts), then each controller's disks in LUN order
// (assembly/ddm/virtio_scsi/controller.ts lunAdd sorts the LUNs of REPORT LUNS), and the host's virtio-scsi model
// gives LUN n to the function's n-th disk (host/devices/virtio_scsi.ts); the NVMe DDM and model do the same with
// namespaces (assembly/ddm/nvme/controller.ts keeps the lowest active NSIDs in order; host/devices/nvme.ts gives NSID
// n + 1 to the n-th disk). So: the processor's storage controllers by slot, then each one's `disks` in the board
// file's order.
// Limits of today's firmware this order does not show: pciEnumerate probes function 0 of each slot only (a disk
// behind another function is not found; functions of one slot are put in function order here, as a multi-function
// enumeration would find them), a processor claims at most 4 controllers (VSCSI_CONTROLLERS_MAX) of 8 disks each
// (VSCSI_DISKS_MAX), and a disk whose capacity is unusable is skipped, moving the later ones down.
import { isStorageController, type ProcessorSpec } from "./load.ts";

export interface DiskAddress {
  readonly processor: string; // the processor's name
  readonly index: number; // 0-based, among that processor's disks, in the RTA's order
}

/** Every disk the processors' storage controllers (virtio-scsi and NVMe functions) hold, by disk name. */
export function diskAddresses(processors: readonly ProcessorSpec[]): ReadonlyMap<string, DiskAddress> {
  const addresses = new Map<string, DiskAddress>();
  for (const processor of processors) {
    const controllers = processor.pci.filter(isStorageController);
    controllers.sort((a, b) => a.slot - b.slot || a.function - b.function); // stable: board order breaks no tie the loader allows
    let index = 0;
    for (const controller of controllers) {
      for (const disk of controller.disks) {
        addresses.set(disk, { processor: processor.name, index });
        index += 1;
      }
    }
  }
  return addresses;
}
