// The fuzzer in CI: a short fixed-seed campaign of every target (an exec budget, so the run is the same on any
// machine), the replay of every reproducer, and the replay's determinism.
//   test/fuzz/regressions/*.bin  fixed findings: each must replay with no finding.
//   test/fuzz/open/*.bin         findings not fixed yet: each must still reproduce its recorded finding (when one
//                                stops reproducing, it was fixed: move it to regressions/). A campaign may meet
//                                only these: any other finding fails the campaign test.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildFirmware, FIRMWARE_FUZZ_PATH, ROOT } from "../../tools/build/firmware.ts";
import { campaign, decodeReproducer, replay, Runner, signature, targetNamed } from "../../tools/fuzz/engine.ts";
import { loadFuzzFirmware } from "../../tools/fuzz/harness.ts";
import { dataSegmentExtent, DIRTY_MAP_BASE, DIRTY_PAGE_SHIFT } from "../../tools/fuzz/instrument.ts";
import { writeWatch } from "../../host/bus/ram.ts";
import binaryen from "binaryen";
import { mutate } from "../../tools/fuzz/mutate.ts";
import { Prng } from "../../host/sim/prng.ts";
import { scaled } from "../support/time.ts";

const DIR = join(ROOT, "test/fuzz");
// A directory may be absent: git keeps no empty one (open/ is empty while no finding is open).
const files = (sub: string) => (existsSync(join(DIR, sub)) ? readdirSync(join(DIR, sub)) : []).filter((f) => f.endsWith(".bin")).sort().map((f) => join(DIR, sub, f));
const load = (file: string) => decodeReproducer(readFileSync(file), file);
const openFindings = files("open");
const knownOpen = new Set(openFindings.map((f) => signature(load(f).finding!)));

let firmware: WebAssembly.Module;
beforeAll(async () => {
  await buildFirmware(["fuzz"]); // a check: the global setup built it
  firmware = loadFuzzFirmware(FIRMWARE_FUZZ_PATH);
}, scaled(120_000));

describe("fixed-seed campaigns", () => {
  // Exec budgets sized for about 60 s in all on one core (2026-11-22, with the champion scheduler, on a quiet core:
  // bus 24 s, mu 7 s, iscsi 18 s, scsi 19 s; xor, 2026-11-23, about 12 s; nvme, 2026-12-07, about 30 s at a load
  // of 12); the time cap is far above, so the
  // budget, not the machine, decides what runs.
  // nvram, 2026-12-07: about 290 execs/s on a loaded core, so 5 000 in about 17 s; nbd, 2026-12-07: about 300 execs/s
  // under load 3, so 3 000 in about 10 s; fabric, 2026-12-07: about 700 execs/s under load 9, so 3 000 in about 5 s; replica, 2026-12-07:
  // about 28 execs/s under load 13 (an input may run 30 s of board time: a copy that answers errors is given up after 20 s), so 600 in about 25 s.
  it.each([["bus", 30000], ["mu", 80000], ["iscsi", 100000], ["scsi", 60000], ["xor", 10000], ["nvram", 5000], ["nvme", 10000], ["nbd", 3000], ["fabric", 3000], ["fabric-rdma", 3000], ["replica", 600]] as const)("%s: %i execs grow the corpus and meet no new finding", async (name, execsMax) => {
    const target = targetNamed(name)!;
    const summary = await campaign({ target, firmware, seed: 1, seconds: 240, execsMax });
    expect(summary.execs).toBeGreaterThanOrEqual(Math.min(execsMax, 50));
    expect(summary.edges).toBeGreaterThan(100);
    expect(summary.corpusSize).toBeGreaterThan(target.seeds.length); // coverage feedback kept something
    const fresh = summary.findings.filter((f) => !knownOpen.has(f.signature)).map((f) => `${f.kind}: ${f.message}`);
    expect(fresh).toEqual([]);
  }, scaled(300_000));
});

describe("the snapshot", () => {
  // The restore copies back only the pages the dirty map names (the image's own stores, the host's writes through
  // writeWatch), and puts back only the keys each host object had: a write it missed, or a key a model added later,
  // would leak one input's state into the next and break replay.
  it.each(["bus", "mu", "iscsi", "scsi", "xor", "nvram", "nvme", "nbd", "fabric", "fabric-rdma", "replica"])("%s: after each of 150 mutated inputs the restored RAM and host objects equal the snapshot's", (name) => {
    const target = targetNamed(name)!;
    const runner = new Runner(target, firmware, 1);
    const rng = new Prng(`snapshot-test/${name}`);
    const corpus = [...target.seeds];
    let grown = 0;
    for (let i = 0; i < 150; i++) {
      const input = mutate(corpus[rng.intBelow(corpus.length)]!, corpus[rng.intBelow(corpus.length)]!, target.dictionary, rng, 1024);
      runner.exec(input);
      if (runner.fuzz.collectCoverage()) {
        corpus.push(input);
        grown += 1;
      }
      runner.fuzz.restore();
      expect(runner.fuzz.ramDifference(), `after input ${Buffer.from(input).toString("hex")}`).toBeUndefined();
      expect(runner.fuzz.shapeDifference(), `after input ${Buffer.from(input).toString("hex")}`).toBeUndefined();
    }
    expect(grown).toBeGreaterThan(0); // the inputs did reach new code, so they wrote RAM the restore had to undo
  }, scaled(60_000));

  // A power cycle zeroes the RAM and instantiates the image again. The restore copies back only the pages that were
  // not all zeros at the snapshot, those the new boot stored to, and those its data segments span (which no store
  // writes: the fuzzing image's boot() marks them).
  it("bus: after an input that power-cycles the board, the restored RAM equals the snapshot's", () => {
    const runner = new Runner(targetNamed("bus")!, firmware, 1);
    // A READ, a register override armed (the 6th register read answers with bit 4 flipped), the power cycle (op 7,
    // then 0x5a) whose boot meets the override, a READ the dead session drops.
    const input = Uint8Array.from([0, 0, 10, 1, 3, 5, 0, 0, 0, 0, 0x10, 7, 0x5a, 0, 0, 3, 1]);
    runner.exec(input);
    expect(runner.fuzz.board.resetCount).toBe(1);
    runner.fuzz.restore();
    expect(runner.fuzz.ramDifference()).toBeUndefined();
    expect(runner.fuzz.board.resetCount).toBe(0);
  }, scaled(60_000));

  it("the fuzzing image's boot() marks every page its data segments span", () => {
    const { low, high } = dataSegmentExtent(binaryen.readBinary(readFileSync(FIRMWARE_FUZZ_PATH)));
    expect(high).toBeGreaterThan(low);
    const runner = new Runner(targetNamed("bus")!, firmware, 1);
    const host = runner.fuzz.processors[0]!;
    const dirty = new Uint8Array(host.memory.buffer, DIRTY_MAP_BASE, host.ramBytes >> DIRTY_PAGE_SHIFT);
    // Forget every mark made up to the zeroing: what is marked after it comes from the new instance and the host.
    writeWatch(host.memory).onZero = () => dirty.fill(0);
    runner.fuzz.board.reset();
    const unmarked = [];
    for (let page = low >> DIRTY_PAGE_SHIFT; page <= (high - 1) >> DIRTY_PAGE_SHIFT; page++) if (dirty[page] === 0) unmarked.push(page);
    expect(unmarked).toEqual([]);
  }, scaled(60_000));
});

describe("reproducers", () => {
  it.each(files("regressions").map((f) => [f.slice(DIR.length + 1), f]))("%s replays with no finding", (_name, file) => {
    expect(replay(load(file), firmware).finding).toBeUndefined();
  });

  it.each(openFindings.map((f) => [f.slice(DIR.length + 1), f]))("%s still reproduces its finding", (_name, file) => {
    const reproducer = load(file);
    const result = replay(reproducer, firmware);
    expect(result.finding && signature(result.finding)).toBe(signature(reproducer.finding!));
  });

  it("replays deterministically: the same reproducer gives the same bus trace twice", () => {
    const reproducer = load([...files("regressions"), ...openFindings].find((f) => f.includes("/bus-"))!);
    const first = replay(reproducer, firmware);
    const second = replay(reproducer, firmware);
    expect(first.trace.length).toBeGreaterThan(50); // the input ran: accesses, DMA, interrupts
    expect(second.trace).toEqual(first.trace);
  });
});
