// Proves the boot-state log: records round-trip, the newest valid record wins, a full block moves the log to the
// other block, and a power cut at any point of many updates leaves either the old or the new state, never a
// corrupt or older one.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Flash, PowerCut, PowerLoss } from "../../../host/devices/flash.ts";
import {
  BOOT_RECORD_SIZE_BYTES,
  BOOT_STATE_BLANK,
  crc32,
  decodeBootRecord,
  encodeBootRecord,
  readBootState,
  writeBootState,
  type BootStateFields,
} from "../../../host/boot/boot_state.ts";

// Small blocks, so the log fills a block after 4 records.
const geometry = { eraseBlockSizeBytes: 128, sizeBytes: 128 * 6 };

function fields(securityCounter: number): BootStateFields {
  return { activeSlot: securityCounter % 2 === 0 ? "A" : "B", pendingSlot: null, trialSlot: securityCounter % 3 === 0 ? "B" : null, securityCounter };
}

describe("boot state", () => {
  it("computes the IEEE CRC-32", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926); // the standard check value
  });

  it("round-trips a record and rejects a torn or altered one", () => {
    const state = { sequence: 7, activeSlot: "B" as const, pendingSlot: "A" as const, trialSlot: null, securityCounter: 3 };
    const record = encodeBootRecord(state);
    expect(record.length).toBe(BOOT_RECORD_SIZE_BYTES);
    expect(decodeBootRecord(record)).toEqual(state);
    const torn = record.slice();
    torn.fill(0xff, 16);
    expect(decodeBootRecord(torn)).toBeNull();
    const altered = record.slice();
    altered[12] = 4;
    expect(decodeBootRecord(altered)).toBeNull();
  });

  it("reads blank on a new part and the newest record after many updates across block switches", () => {
    // 20 updates over 4-record blocks: the log moves between the two blocks several times.
    const flash = Flash.inMemory({ geometry });
    expect(readBootState(flash)).toEqual(BOOT_STATE_BLANK);
    for (let index = 1; index <= 20; index += 1) {
      writeBootState(flash, fields(index));
      expect(readBootState(flash)).toEqual({ ...fields(index), sequence: index });
    }
    expect(flash.eraseCount).toBeGreaterThanOrEqual(4);
    expect(flash.guestErrorCount).toBe(0);
  });

  it("keeps the old or the new state when power is cut at any step of any update", () => {
    // For a random history and a random cut point and tear, the state read after the cut is the state before the
    // interrupted update or the one it was writing, and the next update succeeds on top of it.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 1 }), fc.constantFrom(0, 0.3, 0.5, 0.9, 1), (historyCount, cutStepIndex, tornFraction) => {
        const flash = Flash.inMemory({ geometry });
        for (let index = 1; index <= historyCount; index += 1) writeBootState(flash, fields(index));
        const before = readBootState(flash);
        flash.powerCut = new PowerCut(cutStepIndex, tornFraction);
        let cut = false;
        try {
          writeBootState(flash, fields(100));
        } catch (error) {
          if (!(error instanceof PowerLoss)) throw error;
          cut = true;
        }
        flash.restorePower();
        const after = readBootState(flash);
        const written = { ...fields(100), sequence: before.sequence + 1 };
        if (cut) expect([before, written]).toContainEqual(after);
        else expect(after).toEqual(written);
        writeBootState(flash, fields(200));
        expect(readBootState(flash)).toEqual({ ...fields(200), sequence: after.sequence + 1 });
        expect(flash.guestErrorCount).toBe(0);
      }),
      { numRuns: 300, seed: 3 },
    );
  });
});
