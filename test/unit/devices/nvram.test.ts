// The NVRAM card (host/devices/nvram.ts; docs/hardware.md, "nvram"), on a bus of its own: its registers, the array
// at every access size, write-through to its file (what a killed emulator must not lose), SYNC, and a power cycle
// that keeps the array. Then the driver's constants (assembly/board/nvram.ts) against the model's, read from both.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Bus } from "../../../host/bus/bus.ts";
import { CFG_BAR0, CFG_COMMAND, COMMAND_MEMORY } from "../../../host/bus/pci_function.ts";
import * as model from "../../../host/devices/nvram.ts";
import { fileNvram, memoryNvram, NVRAM_BAR_ARRAY, NVRAM_ID, NVRAM_REG_ID, NVRAM_REG_SIZE, NVRAM_REG_SYNC, NvramDevice, NvramFileError } from "../../../host/devices/nvram.ts";
import { Trace } from "../../../host/sim/trace.ts";
import { disagreements, moduleConstants, named, sourceConstants } from "../../support/shared_constants.ts";

const REGS = 0xc000_0000n;
const ARRAY = 0xc010_0000n;
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function plugged(backing: model.NvramBacking): { bus: Bus; device: NvramDevice; log: string[] } {
  const log: string[] = [];
  const bus = new Bus("host", new Trace(), () => 0, (m) => log.push(m));
  const device = new NvramDevice({ name: "nvram", backing, log: (m) => log.push(m) });
  device.attach(bus);
  device.configWrite(CFG_BAR0, 4, Number(REGS));
  device.configWrite(CFG_BAR0 + NVRAM_BAR_ARRAY * 4, 4, Number(ARRAY));
  device.configWrite(CFG_COMMAND, 2, COMMAND_MEMORY);
  return { bus, device, log };
}

describe("NVRAM card", () => {
  it("answers ID and SIZE, sizes its BARs, and takes 1- to 8-byte stores that read back little-endian", () => {
    const { bus, device, log } = plugged(memoryNvram(64 * 1024));
    expect(bus.read(REGS + BigInt(NVRAM_REG_ID), 4)).toBe(NVRAM_ID);
    expect(bus.read(REGS + BigInt(NVRAM_REG_SIZE), 4)).toBe(64 * 1024);
    bus.write(ARRAY + 8n, 8, 0x0102_0304_0506_0708n);
    bus.write(ARRAY + 16n, 4, 0xaabb_ccdd);
    bus.write(ARRAY + 20n, 2, 0xeeff);
    bus.write(ARRAY + 22n, 1, 0x11);
    expect(bus.read(ARRAY + 8n, 1)).toBe(0x08);
    expect(bus.read(ARRAY + 8n, 8)).toBe(0x0102_0304_0506_0708n);
    expect(bus.read(ARRAY + 16n, 8)).toBe(0x0011_eeff_aabb_ccddn);
    expect(bus.read(ARRAY + 0xfff8n, 8)).toBe(0n); // a new card reads zeros
    expect(device.storeCount).toBe(4);
    // The array is memory to DMA masters too; registers are not.
    expect(bus.dmaWrite("dma", ARRAY + 64n, Uint8Array.from([1, 2, 3]))).toMatchObject({ ok: true });
    expect(bus.dmaRead("dma", ARRAY + 64n, 3)).toMatchObject({ ok: true, bytes: Uint8Array.from([1, 2, 3]) });
    // Bad accesses are guest errors: a register read of the wrong size, a write to a read-only register.
    bus.write(REGS + BigInt(NVRAM_REG_ID), 4, 0);
    expect(bus.read(REGS + BigInt(NVRAM_REG_SIZE), 2)).toBe(0xffff);
    expect(log.filter((m) => m.includes("guest error"))).toHaveLength(2);
    expect(device.guestErrorCount).toBe(2);
  });

  it("writes every store through to its file, syncs on SYNC, keeps the array across a reset and a reopen", () => {
    const dir = mkdtempSync(join(tmpdir(), "wasm-iop-nvram-"));
    dirs.push(dir);
    const path = join(dir, "nvram.bin");
    const backing = fileNvram(path, 64 * 1024);
    expect(readFileSync(path)).toEqual(Buffer.alloc(64 * 1024)); // made whole, zeros
    const { bus, device } = plugged(backing);
    bus.write(ARRAY + 4096n, 8, 0x1122_3344_5566_7788n);
    expect(readFileSync(path).readBigUInt64LE(4096)).toBe(0x1122_3344_5566_7788n); // before any SYNC: written through
    bus.write(REGS + BigInt(NVRAM_REG_SYNC), 4, 1);
    expect(device.syncCount).toBe(1);
    device.reset(); // power cycle: the header goes back to its power-on values, the array stays
    expect(device.bytes.subarray(4096, 4104)).toEqual(Uint8Array.from([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]));
    backing.close();
    expect(fileNvram(path, 64 * 1024).bytes.subarray(4096, 4104)).toEqual(Uint8Array.from([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]));
    writeFileSync(path, Buffer.alloc(100));
    expect(() => fileNvram(path, 64 * 1024)).toThrow(NvramFileError);
    expect(() => fileNvram(path, 64 * 1024)).toThrow(/nvram\.bin: an NVRAM image of 100 bytes, the board file's nvram is 65536 bytes/);
  });

  it("has the same PCI identity, BARs and registers as the driver", () => {
    const firmware = sourceConstants("assembly/board/nvram.ts");
    const names = [...firmware.keys()];
    expect(names.length).toBe(8);
    expect(disagreements(firmware, moduleConstants(model as unknown as Record<string, unknown>), named(...names))).toEqual([]);
  });
});
