// wasm-iop inventory on the default board: the table comes from what the firmware's UMA discovered (PCI
// enumeration through ECAM, profiles from each processor's RTA), and lists all three processors, every PCI function
// on the host's bus with its IDs, class and BARs, and every disk with its size.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseInventoryLine } from "../../../tools/cli/inventory.ts";
import { runCli } from "../../support/cli.ts";

const dataDir = mkdtempSync(join(tmpdir(), "wasm-iop-inventory-"));

describe("wasm-iop inventory", () => {
  it("lists every processor, PCI function and disk of iop-dev as the firmware found them", async () => {
    const { code, stdout, stderr } = await runCli(["inventory", "--json", "--data-dir", dataDir]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const inventory = JSON.parse(stdout) as { processors: Record<string, unknown>[]; pci: Record<string, unknown>[]; disks: Record<string, unknown>[]; summary: Record<string, unknown> };
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
    ]);
    // The bridge's BAR 2 is the storage processor's RAM: sized by the BAR protocol, not read from the board file.
    expect(inventory.pci[0]!.bar2).toMatch(/\/33554432$/);
    expect(inventory.disks.map((d) => [d.processor, d.blocks, d.blockSize])).toEqual([[0, 131072, 512], [1, 131072, 512], [2, 131072, 512]]);
    expect(inventory.summary).toEqual({ processors: 3, disks: 3, volumes: 3 });
  });

  it("prints a readable table by default", async () => {
    const { code, stdout } = await runCli(["inventory", "--data-dir", dataDir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^processors\nindex +name +role +ram +slot +state\n0 +host +host +64 MiB +ready/m);
    expect(stdout).toMatch(/^3 +0x1af4 +0x1048 +0x010000 +1 +bar0=/m);
    expect(stdout.match(/131072 +512 +64 MiB/g)).toHaveLength(3);
  });

  it("parses the firmware's inventory lines into records", () => {
    expect(parseInventoryLine("inventory disk processor=1 index=0 blocks=8 blockSize=512")).toEqual({ kind: "disk", record: { processor: 1, index: 0, blocks: 8, blockSize: 512 } });
    expect(parseInventoryLine("rta: 1 controllers")).toBeUndefined();
  });
});
