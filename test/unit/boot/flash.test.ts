// Proves the NOR flash model: a new part reads 0xFF, programming only clears bits (a 0-to-1 request is a guest
// error that leaves the bit 0), erase restores a whole block, an armed PowerCut tears exactly the chosen step and
// refuses every later one, and a file-backed part keeps its contents across reopenings and refuses a wrong size.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Flash, FlashFileError, flashLayout, FLASH_GEOMETRY_DEFAULT, PowerCut, PowerLoss } from "../../../host/devices/flash.ts";

const geometry = { eraseBlockSizeBytes: 256, sizeBytes: 256 * 8 };

describe("flash", () => {
  it("starts erased, programs by clearing bits, and erases whole blocks", () => {
    const flash = Flash.inMemory({ geometry });
    expect(flash.read(0, geometry.sizeBytes).every((byte) => byte === 0xff)).toBe(true);
    flash.program(300, new Uint8Array([0xf0, 0x0f]));
    flash.program(300, new Uint8Array([0x30, 0x0f])); // clears more bits of the first byte: allowed
    expect([...flash.read(300, 2)]).toEqual([0x30, 0x0f]);
    expect(flash.guestErrorCount).toBe(0);
    flash.erase(1); // bytes 256..511
    expect(flash.read(256, 256).every((byte) => byte === 0xff)).toBe(true);
    expect([flash.eraseCount, flash.programCount]).toEqual([1, 2]);
  });

  it("reports a 0-to-1 program and an out-of-range access as guest errors", () => {
    // The cell keeps old & new, as a real part does; the guest error is counted and reported.
    const messages: string[] = [];
    const flash = Flash.inMemory({ geometry, onGuestError: (message) => messages.push(message) });
    flash.program(0, new Uint8Array([0x00]));
    flash.program(0, new Uint8Array([0xff]));
    expect([...flash.read(0, 1)]).toEqual([0x00]);
    flash.erase(99);
    expect([...flash.read(geometry.sizeBytes - 1, 2)]).toEqual([0xff, 0xff]);
    expect(flash.guestErrorCount).toBe(3);
    expect(messages[0]).toMatch(/asks a 0 bit to become 1 without an erase/);
  });

  it("tears the cut step and refuses every step after it until power is restored", () => {
    // Cut at step 1 (the second): the program lands half, the next erase is refused whole.
    const flash = Flash.inMemory({ geometry });
    flash.powerCut = new PowerCut(1, 0.5);
    flash.program(0, new Uint8Array(8).fill(0));
    expect(() => flash.program(8, new Uint8Array(8).fill(0))).toThrow(PowerLoss);
    expect([...flash.read(8, 8)]).toEqual([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    expect(() => flash.erase(0)).toThrow(PowerLoss);
    expect([...flash.read(0, 1)]).toEqual([0]); // the refused erase did nothing
    flash.restorePower();
    flash.erase(0);
    expect([...flash.read(0, 16)].every((byte) => byte === 0xff)).toBe(true);
  });

  it("tears an erase by leaving the end of the block unerased", () => {
    const flash = Flash.inMemory({ geometry });
    flash.program(0, new Uint8Array(256).fill(0));
    flash.powerCut = new PowerCut(0, 0.25);
    expect(() => flash.erase(0)).toThrow(/power lost during flash step 0 \(erase\)/);
    expect(flash.read(0, 64).every((byte) => byte === 0xff)).toBe(true);
    expect(flash.read(64, 192).every((byte) => byte === 0)).toBe(true);
  });

  it("keeps a file-backed part's contents, including a torn step, across reopening", () => {
    // Write, tear a program, close, reopen: the file holds exactly what the model held.
    const dir = mkdtempSync(join(tmpdir(), "wasm-iop-flash-"));
    try {
      const path = join(dir, "flash.bin");
      const flash = Flash.openFile(path, { geometry });
      expect(statSync(path).size).toBe(geometry.sizeBytes);
      flash.program(10, new Uint8Array([1, 2, 3, 4]));
      flash.powerCut = new PowerCut(0, 0.5);
      expect(() => flash.program(20, new Uint8Array([5, 6, 7, 8]))).toThrow(PowerLoss);
      flash.close();
      const reopened = Flash.openFile(path, { geometry });
      expect([...reopened.read(10, 4)]).toEqual([1, 2, 3, 4]);
      expect([...reopened.read(20, 4)]).toEqual([5, 6, 0xff, 0xff]);
      reopened.close();
      writeFileSync(join(dir, "short.bin"), new Uint8Array(10));
      expect(() => Flash.openFile(join(dir, "short.bin"), { geometry })).toThrow(FlashFileError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("lays out two boot-state blocks and two equal slots of whole blocks", () => {
    const layout = flashLayout(FLASH_GEOMETRY_DEFAULT);
    expect(layout.bootState).toEqual({ offsetBytes: 0, sizeBytes: 128 * 1024 });
    expect(layout.slots.A).toEqual({ offsetBytes: 128 * 1024, sizeBytes: 4 * 1024 * 1024 });
    expect(layout.slots.B.offsetBytes).toBe(layout.slots.A.offsetBytes + layout.slots.A.sizeBytes);
    expect(layout.slots.B.offsetBytes + layout.slots.B.sizeBytes).toBe(FLASH_GEOMETRY_DEFAULT.sizeBytes);
    expect(() => flashLayout({ eraseBlockSizeBytes: 256, sizeBytes: 256 * 3 })).toThrow(/no room for two slots/);
  });
});
