// The fuzzer's scheduler (tools/fuzz/engine.ts, Corpus): which kept inputs become champions, how often each is
// picked, and the burst of a newly kept input. No board: inputs, their counters and costs are made up.
import { describe, expect, it } from "vitest";
import { Corpus } from "../../../tools/fuzz/engine.ts";
import { Prng } from "../../../host/sim/prng.ts";

const input = (length: number, tag: number) => new Uint8Array(length).fill(tag);
const counters = (...at: number[]) => Uint32Array.from(at);

// How often each kept input (by its fill byte) comes back from `draw` in `n` draws.
function tally(n: number, draw: () => Uint8Array): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const tag = draw()[0]!;
    counts.set(tag, (counts.get(tag) ?? 0) + 1);
  }
  return counts;
}

describe("the corpus's champions", () => {
  it("a cheaper input that hits the same counters takes them over; the costly one is then picked only by the one-in-32 draw from the whole corpus", () => {
    const corpus = new Corpus();
    corpus.add(input(100, 1), counters(5, 6, 7), 500, false); // score 50 000
    expect(corpus.favoredCount).toBe(1);
    corpus.add(input(10, 2), counters(5, 6, 7), 50, false); // score 500: champion of all three
    expect(corpus.favoredCount).toBe(1);
    const rng = new Prng("corpus-test");
    const spread = tally(32_000, () => corpus.pick(rng));
    expect(spread.get(2)! / 32_000).toBeGreaterThan(0.95);
    expect(spread.get(1)! / 32_000).toBeGreaterThan(0.005); // ~1/64: half of the 1-in-32 draws
    expect(spread.get(1)! / 32_000).toBeLessThan(0.03);
  });

  it("an input that alone hits a counter stays a champion however costly, and quick champions get more picks (AFL's energy)", () => {
    const corpus = new Corpus();
    corpus.add(input(8, 1), counters(1, 2), 10, false);
    corpus.add(input(8, 2), counters(1, 2), 12, false); // hits nothing the first does not, at a higher cost: not a champion
    corpus.add(input(200, 3), counters(1, 9), 2_000, false); // the only one to hit counter 9
    expect(corpus.favoredCount).toBe(2);
    const rng = new Prng("corpus-energy");
    const spread = tally(40_000, () => corpus.pick(rng));
    // Mean cost 674: input 1 (cost 10, under a quarter of it) has energy 300, input 3 (cost 2 000, over twice it but
    // under ten times) 50.
    expect(spread.get(1)! / spread.get(3)!).toBeGreaterThan(5);
    expect(spread.get(1)! / spread.get(3)!).toBeLessThan(7);
    expect(spread.get(2) ?? 0).toBeLessThan(40_000 / 32);
  });

  it("a newly kept input is the parent of the next 64 inputs; the seeds a campaign starts from are not", () => {
    const corpus = new Corpus();
    corpus.add(input(4, 1), counters(1), 5, false);
    corpus.add(input(400, 2), counters(2), 4_000, true);
    const rng = new Prng("burst");
    const parents = Array.from({ length: 64 }, () => corpus.parent(rng)[0]);
    expect(parents.every((tag) => tag === 2)).toBe(true);
    const after = tally(1_000, () => corpus.parent(rng));
    expect(after.get(1)!).toBeGreaterThan(after.get(2) ?? 0); // back to energy: the quick one is picked more
  });

  it("the same generator seed gives the same picks", () => {
    const make = () => {
      const corpus = new Corpus();
      for (let i = 0; i < 20; i++) corpus.add(input(1 + i, i), counters(i, i + 1, 100 + (i % 3)), 10 + 7 * i, i % 4 === 0);
      const g = new Prng("same");
      return Array.from({ length: 500 }, () => corpus.parent(g)[0]);
    };
    expect(make()).toEqual(make());
  });
});
