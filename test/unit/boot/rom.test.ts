// Proves the boot ROM on a small in-memory flash: a new image boots once as a trial and stays once confirmed,
// an unconfirmed trial is reverted at the next reset, every kind of bad image is refused with its reason while
// the board keeps booting its good slot, the security counter rises only on confirm, and a power cut at every
// erase and program step of flashing, confirming and booting never leaves the board without a bootable slot.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Flash, PowerCut, PowerLoss, type SlotName } from "../../../host/devices/flash.ts";
import { readBootState, writeBootState } from "../../../host/boot/boot_state.ts";
import { bootSelect, confirm, flashImage, FlashImageError, readSlotImage, type BootResult } from "../../../host/boot/rom.ts";
import { IMAGE_MAGIC } from "../../../host/image/format.ts";
import { boardPolicy, fakeWasm, otherKey, testImage } from "../image/fixtures.ts";

// 4 KiB blocks: 2 for the boot state, 8 (32 KiB) per slot.
const geometry = { eraseBlockSizeBytes: 4096, sizeBytes: 4096 * 18 };
const chunkSizeBytes = 512;

function image(tag: string, securityCounter = 0): Uint8Array {
  return testImage({ payload: fakeWasm(tag, 1500), securityCounter });
}

const imageV1 = image("v1");
const imageV2 = image("v2");

function booted(result: BootResult): Extract<BootResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected a boot, got: ${result.error}`);
  return result;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

/** A board whose slot A holds `first`, booted once as a trial and confirmed. */
function provisionedBoard(first = imageV1): Flash {
  const flash = Flash.inMemory({ geometry });
  flashImage(flash, "auto", first, { chunkSizeBytes });
  const trial = booted(bootSelect(flash, boardPolicy));
  expect([trial.slot, trial.trial]).toEqual(["A", true]);
  expect(confirm(flash).confirmed).toBe(true);
  return flash;
}

/** Writes raw bytes into a slot and marks it pending, bypassing flashImage's own checks, to test the ROM's. */
function plant(flash: Flash, slot: SlotName, bytes: Uint8Array): void {
  const region = flash.layout.slots[slot];
  flash.eraseRegion(region);
  flash.program(region.offsetBytes, bytes);
  writeBootState(flash, { ...readBootState(flash), pendingSlot: slot });
}

describe("trial, confirm, revert", () => {
  it("has nothing to boot on a blank part and says why for each slot", () => {
    const result = bootSelect(Flash.inMemory({ geometry }), boardPolicy);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/no bootable slot \(slot A: empty: .*; slot B: empty: .*\)/);
  });

  it("boots a confirmed new image on every later reset", () => {
    // Flash v2 beside v1, boot it as a trial, confirm, then reset three times: v2 each time, never as a trial.
    const flash = provisionedBoard();
    expect(flashImage(flash, "auto", imageV2, { chunkSizeBytes }).slot).toBe("B");
    const trial = booted(bootSelect(flash, boardPolicy));
    expect([trial.slot, trial.trial, same(trial.image, imageV2)]).toEqual(["B", true, true]);
    expect(confirm(flash)).toEqual({ confirmed: true, slot: "B", securityCounter: 0 });
    for (let reset = 0; reset < 3; reset += 1) {
      const result = booted(bootSelect(flash, boardPolicy));
      expect([result.slot, result.trial, same(result.image, imageV2)]).toEqual(["B", false, true]);
    }
    expect(confirm(flash).confirmed).toBe(false); // nothing on trial any more
    expect(flash.guestErrorCount).toBe(0);
  });

  it("reverts a trial that was not confirmed before the next reset, and does not try it again", () => {
    const flash = provisionedBoard();
    flashImage(flash, "auto", imageV2, { chunkSizeBytes });
    expect(booted(bootSelect(flash, boardPolicy)).trial).toBe(true);
    const reverted = booted(bootSelect(flash, boardPolicy)); // reset without confirm
    expect([reverted.slot, reverted.trial, same(reverted.image, imageV1)]).toEqual(["A", false, true]);
    expect(reverted.log.join("\n")).toMatch(/slot B: the trial boot was not confirmed before this reset; reverting/);
    const again = booted(bootSelect(flash, boardPolicy));
    expect([again.slot, again.trial, again.log]).toEqual(["A", false, []]);
    expect(confirm(flash).confirmed).toBe(false); // a late confirm from the reverted image changes nothing
    expect(booted(bootSelect(flash, boardPolicy)).slot).toBe("A");
  });

  it("flashing over an image on trial cancels that trial, so a late confirm cannot vouch for the new bytes", () => {
    // v2 is on trial in B; v3 is written over it; the confirm that v2's firmware then sends must change nothing.
    const flash = provisionedBoard();
    flashImage(flash, "auto", imageV2, { chunkSizeBytes });
    expect(booted(bootSelect(flash, boardPolicy))).toMatchObject({ slot: "B", trial: true });
    const imageV3 = image("v3");
    expect(flashImage(flash, "auto", imageV3, { chunkSizeBytes }).slot).toBe("B");
    expect(confirm(flash).confirmed).toBe(false);
    const next = booted(bootSelect(flash, boardPolicy));
    expect([next.slot, next.trial, same(next.image, imageV3)]).toEqual(["B", true, true]);
    expect(next.log).toEqual(["slot B: booting the new image as a trial"]);
  });

  it("boots the other slot as a trial when the confirmed slot is damaged", () => {
    // Corrupt slot A's payload after B is confirmed-free: the ROM logs A's refusal and tries B, which must confirm.
    const flash = provisionedBoard();
    flashImage(flash, "auto", imageV2, { chunkSizeBytes });
    booted(bootSelect(flash, boardPolicy));
    booted(bootSelect(flash, boardPolicy)); // reverted to A
    flash.program(flash.layout.slots.A.offsetBytes + 100, new Uint8Array([0]));
    const fallback = booted(bootSelect(flash, boardPolicy));
    expect([fallback.slot, fallback.trial]).toEqual(["B", true]);
    expect(fallback.log.join("\n")).toMatch(/slot A: refused: bad-hash:/);
  });
});

describe("refusals keep the good slot booting", () => {
  const viaFlashImage: Array<{ reason: string; bytes: () => Uint8Array }> = [
    { reason: "bad-hash", bytes: () => flip(imageV2, 70) },
    { reason: "bad-signature", bytes: () => flip(imageV2, imageV2.length - 1) },
    { reason: "unknown-key", bytes: () => testImage({ payload: fakeWasm("v2"), key: otherKey.privateKey }) },
    { reason: "unsigned", bytes: () => testImage({ payload: fakeWasm("v2"), key: null }) },
    { reason: "abi-mismatch", bytes: () => testImage({ payload: fakeWasm("v2"), abiVersion: 2 }) },
    { reason: "board-mismatch", bytes: () => testImage({ payload: fakeWasm("v2"), boardCompat: "another-board" }) },
  ];
  for (const testCase of viaFlashImage) {
    it(`refuses a ${testCase.reason} image at boot and boots slot A`, () => {
      // The image is written to B and marked pending; the ROM must refuse it with the reason and boot A, twice.
      const flash = provisionedBoard();
      flashImage(flash, "auto", testCase.bytes(), { chunkSizeBytes });
      const result = booted(bootSelect(flash, boardPolicy));
      expect([result.slot, result.trial]).toEqual(["A", false]);
      expect(result.log.join("\n")).toMatch(new RegExp(`slot B: refused the new image: ${testCase.reason}: `));
      expect(booted(bootSelect(flash, boardPolicy)).slot).toBe("A");
    });
  }

  it("refuses a rolled-back image once a higher counter was confirmed", () => {
    // Confirm an image with counter 2, then offer one with counter 1.
    const flash = provisionedBoard(image("v1", 2));
    expect(readBootState(flash).securityCounter).toBe(2);
    flashImage(flash, "auto", image("old", 1), { chunkSizeBytes });
    const result = booted(bootSelect(flash, boardPolicy));
    expect(result.slot).toBe("A");
    expect(result.log.join("\n")).toMatch(/slot B: refused the new image: rollback: the image's security counter 1 is below the board's 2/);
  });

  it("refuses truncated, oversized and wrong-magic images before erasing anything", () => {
    // flashImage checks the structure first: the slot is not touched, and the board still boots A.
    const flash = provisionedBoard();
    const erasesBefore = flash.eraseCount;
    const oversized = testImage({ payload: fakeWasm("huge", 40 * 1024) }); // larger than the 32 KiB slot
    expect(() => flashImage(flash, "auto", imageV2.slice(0, 500), { chunkSizeBytes })).toThrow(/refused the image for slot B: truncated: /);
    expect(() => flashImage(flash, "auto", oversized, { chunkSizeBytes })).toThrow(/oversized: .*32768-byte slot/);
    expect(() => flashImage(flash, "auto", flip(imageV2, 1), { chunkSizeBytes })).toThrow(/bad-magic: /);
    expect(flash.eraseCount).toBe(erasesBefore);
    expect(booted(bootSelect(flash, boardPolicy)).slot).toBe("A");
  });

  it("refuses at boot a slot whose header was damaged after flashing", () => {
    // Planted straight into slot B: the ROM itself must name the reason.
    const flash = provisionedBoard();
    plant(flash, "B", flip(imageV2, 0));
    const result = booted(bootSelect(flash, boardPolicy));
    expect(result.slot).toBe("A");
    expect(result.log.join("\n")).toMatch(/slot B: refused the new image: bad-magic: header magic is 0x[0-9a-f]+; expected 0x474d4957/);
    expect(IMAGE_MAGIC).toBe(0x474d4957);
  });

  it("with a policy, refuses a bad image before erasing; without one it never overwrites the confirmed slot", () => {
    const flash = provisionedBoard();
    const erasesBefore = flash.eraseCount;
    const badBoard = testImage({ payload: fakeWasm("v2"), boardCompat: "another-board" });
    expect(() => flashImage(flash, "auto", badBoard, { chunkSizeBytes, policy: boardPolicy })).toThrow(FlashImageError);
    expect(() => flashImage(flash, "A", imageV2, { chunkSizeBytes })).toThrow(/slot A holds the confirmed image/);
    expect(flash.eraseCount).toBe(erasesBefore);
  });
});

describe("security counter", () => {
  it("rises only when the image is confirmed", () => {
    // A trial of counter 5 leaves the stored counter at 0, so after its revert the old image (counter 0) boots.
    const flash = provisionedBoard();
    const image5 = image("v5", 5);
    flashImage(flash, "auto", image5, { chunkSizeBytes });
    booted(bootSelect(flash, boardPolicy));
    expect(readBootState(flash).securityCounter).toBe(0);
    expect(booted(bootSelect(flash, boardPolicy)).slot).toBe("A"); // reverted; A still allowed
    flashImage(flash, "auto", image5, { chunkSizeBytes });
    booted(bootSelect(flash, boardPolicy));
    expect(confirm(flash)).toEqual({ confirmed: true, slot: "B", securityCounter: 5 });
    plant(flash, "A", imageV1); // the old image offered again
    const result = booted(bootSelect(flash, boardPolicy));
    expect(result.slot).toBe("B");
    expect(result.log.join("\n")).toMatch(/slot A: refused the new image: rollback: /);
  });
});

/** Runs `operation` with a power cut at step 0, 1, 2, … until it completes; `check` runs after each cut. */
function cutAtEveryStep(setUp: () => Flash, operation: (flash: Flash) => void, check: (flash: Flash, stepIndex: number) => void, tornFraction: number): number {
  for (let stepIndex = 0; stepIndex < 10_000; stepIndex += 1) {
    const flash = setUp();
    flash.powerCut = new PowerCut(stepIndex, tornFraction);
    try {
      operation(flash);
      return stepIndex; // completed without reaching the cut: every step has been cut once
    } catch (error) {
      if (!(error instanceof PowerLoss)) throw error;
    }
    flash.restorePower();
    check(flash, stepIndex);
  }
  throw new Error("the operation never completed");
}

describe("power loss", () => {
  for (const tornFraction of [0, 0.5, 1]) {
    it(`flashImage cut at every step (tear ${tornFraction}) leaves v1 or a trial of v2, and a retry succeeds`, () => {
      // After each cut the board boots: v1 as confirmed, or v2 as a trial only if the pending record landed.
      // Then the same flash is retried to completion and v2 confirmed, so no cut leaves the slot unusable.
      const stepCount = cutAtEveryStep(
        () => provisionedBoard(),
        (flash) => flashImage(flash, "auto", imageV2, { chunkSizeBytes }),
        (flash) => {
          const result = booted(bootSelect(flash, boardPolicy));
          if (result.trial) expect([result.slot, same(result.image, imageV2)]).toEqual(["B", true]);
          else expect([result.slot, same(result.image, imageV1)]).toEqual(["A", true]);
          if (result.trial) booted(bootSelect(flash, boardPolicy)); // revert it, as a reset without confirm would
          flashImage(flash, "auto", imageV2, { chunkSizeBytes });
          expect(booted(bootSelect(flash, boardPolicy)).slot).toBe("B");
          expect(confirm(flash).confirmed).toBe(true);
          expect(booted(bootSelect(flash, boardPolicy))).toMatchObject({ slot: "B", trial: false });
          expect(flash.guestErrorCount).toBe(0);
        },
        tornFraction,
      );
      expect(stepCount).toBeGreaterThanOrEqual(8 + Math.ceil(imageV2.length / chunkSizeBytes) + 1); // erases, programs, record
    });
  }

  for (const logNearlyFull of [false, true]) {
    it(`confirm cut at every step (${logNearlyFull ? "log block full: erase and program" : "one program"}) leaves v1 or v2 confirmed`, () => {
      // With a full log block the confirm needs an erase of the other block and a program; either step may be cut.
      const setUp = () => {
        const flash = provisionedBoard();
        flashImage(flash, "auto", imageV2, { chunkSizeBytes });
        booted(bootSelect(flash, boardPolicy));
        if (logNearlyFull) {
          // Repeat the trial state until the newest record fills the last slot of its block.
          const recordsPerBlock = geometry.eraseBlockSizeBytes / 32;
          const state = readBootState(flash);
          while (readBootState(flash).sequence % recordsPerBlock !== 0) writeBootState(flash, { ...state });
        }
        return flash;
      };
      const stepCount = cutAtEveryStep(
        setUp,
        (flash) => void confirm(flash),
        (flash) => {
          const result = booted(bootSelect(flash, boardPolicy));
          expect(result.trial).toBe(false);
          expect(same(result.image, result.slot === "A" ? imageV1 : imageV2)).toBe(true);
        },
        0.5,
      );
      expect(stepCount).toBe(logNearlyFull ? 2 : 1);
    });
  }

  it("bootSelect cut while recording the trial boots again, still as the one trial", () => {
    const stepCount = cutAtEveryStep(
      () => {
        const flash = provisionedBoard();
        flashImage(flash, "auto", imageV2, { chunkSizeBytes });
        return flash;
      },
      (flash) => void bootSelect(flash, boardPolicy),
      (flash) => {
        const result = booted(bootSelect(flash, boardPolicy));
        expect([result.slot, result.trial]).toEqual(["B", true]);
      },
      0.5,
    );
    expect(stepCount).toBe(1);
  });
});

describe("random histories", () => {
  type Op =
    | { kind: "flash"; variant: "good" | "bad-signature" | "board-mismatch"; securityCounter: number; cut: Cut | null }
    | { kind: "boot"; cut: Cut | null }
    | { kind: "confirm"; cut: Cut | null };
  type Cut = { stepIndex: number; tornFraction: number };

  const cutArb = fc.option(fc.record({ stepIndex: fc.integer({ min: 0, max: 20 }), tornFraction: fc.constantFrom(0, 0.5, 1) }), { freq: 3 });
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant("flash" as const), variant: fc.constantFrom("good" as const, "good" as const, "bad-signature" as const, "board-mismatch" as const), securityCounter: fc.integer({ min: 0, max: 3 }), cut: cutArb }),
    fc.record({ kind: fc.constant("boot" as const), cut: cutArb }),
    fc.record({ kind: fc.constant("confirm" as const), cut: cutArb }),
  );

  it("always boots a valid image, never a refused one, and never lowers the counter", () => {
    // Every op may be cut at a random step with a random tear. After each op a copy of the flash is booted: it
    // must boot; a non-trial boot must be an image that was (possibly) confirmed; the counter never falls; and a
    // bad image is never booted.
    const images = new Map<string, Uint8Array>();
    const imageFor = (variant: string, securityCounter: number, serial: number): Uint8Array => {
      const key = `${variant}/${securityCounter}/${serial % 3}`;
      let bytes = images.get(key);
      if (bytes === undefined) {
        const payload = fakeWasm(key, 700);
        if (variant === "good") bytes = testImage({ payload, securityCounter });
        else if (variant === "board-mismatch") bytes = testImage({ payload, securityCounter, boardCompat: "other" });
        else bytes = flip(testImage({ payload, securityCounter }), testImage({ payload, securityCounter }).length - 1);
        images.set(key, bytes);
      }
      return bytes;
    };
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => {
        const flash = provisionedBoard();
        const confirmable = new Set<string>([hex(imageV1)]); // images confirm() may have made active
        const bad = new Set<string>();
        let counterBefore = readBootState(flash).securityCounter;
        ops.forEach((op, serial) => {
          flash.powerCut = op.cut === null ? null : new PowerCut(op.cut.stepIndex, op.cut.tornFraction);
          try {
            if (op.kind === "flash") {
              const bytes = imageFor(op.variant, op.securityCounter, serial);
              if (op.variant !== "good") bad.add(hex(bytes));
              flashImage(flash, "auto", bytes, { chunkSizeBytes: 256 });
            } else if (op.kind === "boot") {
              bootSelect(flash, boardPolicy);
            } else {
              const trialSlot = readBootState(flash).trialSlot;
              if (trialSlot !== null) confirmable.add(hex(readSlotImage(flash, trialSlot)));
              confirm(flash);
            }
          } catch (error) {
            if (!(error instanceof PowerLoss)) throw error;
          }
          flash.restorePower();
          const state = readBootState(flash);
          expect(state.securityCounter).toBeGreaterThanOrEqual(counterBefore);
          counterBefore = state.securityCounter;
          const probe = booted(bootSelect(Flash.inMemory({ geometry, contents: flash.snapshot() }), boardPolicy));
          expect(bad.has(hex(probe.image))).toBe(false);
          expect(probe.decoded.securityCounter).toBeGreaterThanOrEqual(state.securityCounter);
          if (!probe.trial) expect(confirmable.has(hex(probe.image))).toBe(true);
          expect(flash.guestErrorCount).toBe(0);
        });
      }),
      { numRuns: 300, seed: 4 },
    );
  });
});

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const copy = bytes.slice();
  copy[index] = (copy[index] as number) ^ 0x01;
  return copy;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}
