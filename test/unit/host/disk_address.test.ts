// Proves the order in which host/board/disk_address.ts numbers a processor's disks, the order its RTA reports them
// in: the processor's virtio-scsi functions by slot (then function), whatever their order in the board file, then
// each function's disks in the file's order; numbering starts again at 0 on each processor.
import { describe, expect, it } from "vitest";
import { diskAddresses } from "../../../host/board/disk_address.ts";
import { parseBoard } from "../../../host/board/load.ts";

describe("diskAddresses", () => {
  it("numbers each processor's disks by slot, then function, then the function's disk list", () => {
    const names = ["h0", "a", "b", "c", "d", "e", "s0", "s1"];
    const spec = parseBoard({
      name: "order",
      processors: [
        { name: "host", role: "host", ramMiB: 64, pci: [
          { slot: 7, model: "virtio-scsi", disks: ["a", "b"] },
          { slot: 1, model: "iop-bridge", processor: "sp1" },
          { slot: 2, model: "virtio-scsi", function: 1, disks: ["e"] },
          { slot: 2, model: "virtio-scsi", disks: ["d", "c"] },
          { slot: 3, model: "virtio-scsi", disks: ["h0"] },
        ] },
        { name: "sp1", role: "storage", ramMiB: 32, pci: [{ slot: 1, model: "virtio-scsi", disks: ["s0", "s1"] }] },
      ],
      disks: names.map((name) => ({ name, sizeMiB: 1, blockSize: 512, backend: "memory" })),
    }, "order.json");
    const addresses = diskAddresses(spec.processors);
    expect(names.map((name) => `${name}=${addresses.get(name)!.processor}:${addresses.get(name)!.index}`)).toEqual([
      "h0=host:3", "a=host:4", "b=host:5", "c=host:1", "d=host:0", "e=host:2", "s0=sp1:0", "s1=sp1:1",
    ]);
  });
});
