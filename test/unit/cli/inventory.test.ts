// wasm-iop inventory on the default board: the table comes from what the firmware's UMA discovered (PCI
// enumeration through ECAM, profiles from each processor's RTA), and lists all three processors, every PCI function
// on the host's bus with its IDs, class and BARs, and every disk with its size. The firmware's volume lines are parsed
// into `volumes` and checked against the board file's capacity rules (host/board/volume_geometry.ts); a difference
// would be named on standard error, which the end-to-end case expects empty.
import { describe, expect, it } from "vitest";
import { parseBoard } from "../../../host/board/load.ts";
import { parseInventoryLine, volumeDisagreements, volumeTable } from "../../../tools/cli/inventory.ts";
import { runCli } from "../../support/cli.ts";
import { fileTempDir } from "../../support/temp_dir.ts";

const dataDir = fileTempDir("wasm-iop-inventory-");

describe("wasm-iop inventory", () => {
  it("lists every processor, PCI function and disk of iop-dev as the firmware found them", async () => {
    const { code, stdout, stderr } = await runCli(["inventory", "--json", "--data-dir", dataDir]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const inventory = JSON.parse(stdout) as { processors: Record<string, unknown>[]; pci: Record<string, unknown>[]; disks: Record<string, unknown>[]; controllers: Record<string, unknown>[]; namespaces: Record<string, unknown>[]; volumes: unknown[]; summary: Record<string, unknown> };
    expect(Array.isArray(inventory.volumes)).toBe(true); // what the firmware reports, [] when it reports none
    expect(inventory.processors).toEqual([
      { index: 0, name: "host", role: "host", ram: 64 << 20, state: "ready" },
      { index: 1, name: "sp1", role: "storage", ram: 32 << 20, state: "ready", slot: 1 },
      { index: 2, name: "sp2", role: "storage", ram: 32 << 20, state: "ready", slot: 2 },
    ]);
    expect(inventory.pci.map((f) => [f.slot, f.vendor, f.device, f.class])).toEqual([
      [1, "0x8086", "0x0303", "0x0e0001"],
      [2, "0x8086", "0x0303", "0x0e0001"],
      [3, "0x1af4", "0x1048", "0x010000"],
      [4, "0x1234", "0x11e0", "0x020000"], // the TCP-offload NIC
      [5, "0x1234", "0x11a5", "0x0b4000"], // the XOR engine
      [6, "0x1234", "0x11c0", "0x058000"], // the NVRAM card
    ]);
    // The bridge's BAR 2 is the storage processor's RAM: sized by the BAR protocol, not read from the board file.
    expect(inventory.pci[0]!.bar2).toMatch(/\/33554432$/);
    // Two disks on the host, four on each storage processor, in processor then disk order.
    expect(inventory.disks.map((d) => [d.processor, d.index, d.blocks, d.blockSize])).toEqual([
      [0, 0, 131072, 512], [0, 1, 131072, 512],
      [1, 0, 131072, 512], [1, 1, 131072, 512], [1, 2, 131072, 512], [1, 3, 131072, 512],
      [2, 0, 131072, 512], [2, 1, 131072, 512], [2, 2, 131072, 512], [2, 3, 131072, 512],
    ]);
    // The volumes as the firmware assembled them: three disks, two RAID 5s of 2 × 63 MiB, the thin volume.
    expect((inventory.volumes as Record<string, unknown>[]).map((v) => [v.name, v.type, v.blocks, v.state])).toEqual([
      ["host-disk0", "disk", 131072, "optimal"], ["sp1-disk0", "disk", 131072, "optimal"], ["sp2-disk0", "disk", 131072, "optimal"],
      ["r5", "raid5", 258048, "optimal"], ["pool5", "raid5", 258048, "optimal"], ["thin0", "thin", 524288, "optimal"],
    ]);
    expect(inventory.summary).toEqual({ processors: 3, disks: 10, volumes: 6 });
    // Each processor's storage controller as its DDM reports it: sp2's is NVMe, with its queues and namespaces.
    expect(inventory.controllers.map((c) => [c.processor, c.model, c.slot]).sort()).toEqual([["host", "virtio-scsi", 3], ["sp1", "virtio-scsi", 1], ["sp2", "nvme", 1]]);
    expect(inventory.controllers.find((c) => c.model === "nvme")).toMatchObject({ adminQueueEntries: 16, ioQueues: 1, ioQueueEntries: 65, namespaces: 4, vendor: "0x1b36" });
    expect(inventory.namespaces.map((n) => [n.processor, n.nsid, n.blocks])).toEqual([["sp2", 1, 131072], ["sp2", 2, 131072], ["sp2", 3, 131072], ["sp2", 4, 131072]]);
  });

  it("prints a readable table by default", async () => {
    const { code, stdout } = await runCli(["inventory", "--data-dir", dataDir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^processors\nindex +name +role +ram +slot +state\n0 +host +host +64 MiB +ready/m);
    expect(stdout).toMatch(/^3 +0x1af4 +0x1048 +0x010000 +1 +bar0=/m);
    expect(stdout.match(/^\d +\d +0 +\d +131072 +512 +64 MiB$/gm)).toHaveLength(10); // the disks
    expect(stdout).toMatch(/^sp2 +0 +nvme0 +nvme +1 +0x1b36 +0x0010 +admin 16, 1 I\/O of 65 +1048576 +4 namespaces$/m);
    expect(stdout.match(/^\d +\S+ +disk +131072 +512 +64 MiB +1 +optimal/gm)).toHaveLength(3); // a disk volume each
  });

  it("parses the firmware's inventory lines into records", () => {
    expect(parseInventoryLine("inventory disk processor=1 index=0 blocks=8 blockSize=512")).toEqual({ kind: "disk", record: { processor: 1, index: 0, blocks: 8, blockSize: 512 } });
    expect(parseInventoryLine("rta: 1 controllers")).toBeUndefined();
  });
});

describe("wasm-iop inventory: volumes", () => {
  it("parses the firmware's volume lines, a thin volume's usage included", () => {
    expect(parseInventoryLine("inventory volume index=3 name=r5 type=raid5 blocks=258048 blockSize=512 members=3 state=degraded")).toEqual({
      kind: "volume", record: { index: 3, name: "r5", type: "raid5", blocks: 258048, blockSize: 512, members: 3, state: "degraded" },
    });
    expect(parseInventoryLine("inventory volume index=4 name=thin0 type=thin blocks=524288 blockSize=512 members=1 state=optimal used=7 chunks=124")).toEqual({
      kind: "volume", record: { index: 4, name: "thin0", type: "thin", blocks: 524288, blockSize: 512, members: 1, state: "optimal", used: 7, chunks: 124 },
    });
  });

  it("prints a volume table with the capacity and a thin volume's chunks in use", () => {
    const text = volumeTable([
      { index: 3, name: "r5", type: "raid5", blocks: 258048, blockSize: 512, members: 3, state: "rebuilding" },
      { index: 4, name: "thin0", type: "thin", blocks: 524288, blockSize: 512, members: 1, state: "optimal", used: 7, chunks: 124 },
    ]);
    expect(text.split("\n")).toEqual([
      "index  name   type   blocks  blockSize  capacity  members  state       usage",
      "3      r5     raid5  258048  512        126 MiB   3        rebuilding",
      "4      thin0  thin   524288  512        256 MiB   1        optimal     7 of 124 chunks",
    ]);
  });

  it("names each volume whose size differs from the board file's capacity rules, and nothing when they agree", () => {
    const names = ["a", "b", "c"];
    const spec = parseBoard({
      name: "vols",
      processors: [{ name: "host", role: "host", ramMiB: 64, pci: [{ slot: 3, model: "virtio-scsi", disks: names }] }],
      disks: names.map((name) => ({ name, sizeMiB: 64, blockSize: 512, backend: "memory" })),
      volumes: [{ name: "r5", type: "raid5", members: names }, { name: "thin0", type: "thin", pool: "r5", sizeMiB: 256 }],
    }, "vols.json");
    const r5 = { index: 0, name: "r5", type: "raid5", blocks: 2 * 63 * 2048, blockSize: 512, members: 3, state: "optimal" };
    const thin0 = { index: 1, name: "thin0", type: "thin", blocks: 256 * 2048, blockSize: 512, members: 1, state: "optimal", used: 0, chunks: 124 };
    expect(volumeDisagreements(spec, [r5, thin0])).toEqual([]);
    expect(volumeDisagreements(spec, [{ ...r5, blocks: 3 * 63 * 2048 }, { ...thin0, name: "thin9" }])).toEqual([
      "volume 0 r5: the firmware has 387072 blocks of 512 bytes, the board file's rules give 258048 of 512",
      'volume 1 "thin9": the board file has no volume of this name',
    ]);
  });
});
