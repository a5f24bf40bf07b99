// The README names the fuzz targets twice (the features row and the fuzz example's comment); both lists must be the
// targets `wasm-iop fuzz` has (tools/fuzz/engine.ts, TARGETS), in its order, so a target added or renamed without the
// README fails here. Today's review found both lists three and then one target behind.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../../host/root.ts";
import { TARGETS } from "../../../tools/fuzz/engine.ts";

const readme = readFileSync(join(ROOT, "README.md"), "utf8");
const names = TARGETS.map((t) => t.name);
const list = (text: string) => text.split(",").map((name) => name.trim());

describe("README's fuzz targets", () => {
  it("the features row lists every target of wasm-iop fuzz", () => {
    const row = /coverage-guided fuzzing: `wasm-iop fuzz` \(([^)]*)\)/.exec(readme);
    expect(row, "README: the coverage-guided fuzzing row").not.toBeNull();
    expect(list(row![1]!)).toEqual(names);
  });

  it("the fuzz example's comment lists every target of wasm-iop fuzz", () => {
    const example = /wasm-iop\.js fuzz --target \S+ .*# targets: (.*)$/m.exec(readme);
    expect(example, "README: the fuzz example").not.toBeNull();
    expect(list(example![1]!)).toEqual(names);
  });
});
