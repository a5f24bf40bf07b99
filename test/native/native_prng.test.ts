// The native board's random_get draws from the same stream as the JS board's (host/sim/prng.ts): xoshiro128** seeded
// by splitmix64, string seeds hashed, forks derived from the seed and the label. boards/native/test/prng_vectors.c
// prints the C generator's draws; they must equal the TypeScript ones, or the two boards give one firmware
// different bytes for one seed. Skipped, with the reason, without cmake (a failure under CI).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildNative } from "../../tools/build/native.mjs";
import { Prng } from "../../host/sim/prng.ts";

const missing = ["cmake", "gcc", "g++"].filter((tool) => spawnSync(tool, ["--version"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `native generator test skipped: ${missing.join(", ")} not installed`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

describe.skipIf(missing.length > 0)("the native board's seeded generator", () => {
  let executable = "";
  beforeAll(async () => {
    executable = join(dirname(await buildNative({ quiet: true })), "iop-native-prng");
  }, 600_000);

  const cases: { seed: string; label?: string }[] = [
    { seed: "0" }, { seed: "42" }, { seed: "18446744073709551615" }, { seed: "18446744073709551616" }, { seed: "007" },
    { seed: "hello" }, { seed: "a seed with spaces and ünïcode" }, { seed: "1", label: "host/0" }, { seed: "1", label: "host/1" },
    { seed: "7", label: "sp1/3" },
  ];
  for (const c of cases) {
    it(`draws what host/sim/prng.ts draws for seed ${JSON.stringify(c.seed)}${c.label === undefined ? "" : `, fork ${c.label}`}`, () => {
      const count = 40;
      const out = spawnSync(executable, [c.seed, ...(c.label === undefined ? [] : [c.label]), String(count)], { encoding: "utf8" });
      expect(out.status).toBe(0);
      const root = new Prng(c.seed);
      const prng = c.label === undefined ? root : root.fork(c.label);
      const expected: string[] = [];
      for (let i = 0; i < count; i++) expected.push(String(prng.nextU32()));
      const bytes = new Uint8Array(7);
      prng.fill(bytes);
      expected.push(Buffer.from(bytes).toString("hex"));
      expect(out.stdout.trim().split("\n")).toEqual(expected);
    });
  }
});
