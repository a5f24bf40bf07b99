// Proves the producers section writer against the tool-conventions format: the bytes of a fresh section are
// checked by hand, an existing section's other fields and values survive, an entry of the same name is replaced,
// the rest of the module is unchanged, and malformed modules are refused with WasmFormatError.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  addFirmwareProducer,
  addProducer,
  readProducers,
  WasmFormatError,
} from "../../../host/image/producers.ts";
import { fakeWasm } from "./fixtures.ts";

describe("producers section", () => {
  it("appends a section whose bytes follow ProducersSection.md", () => {
    // vec(1 field) "processed-by" vec(1 value) ("wasm-iop", "1.0.0"), inside custom section 0 named "producers".
    const module = fakeWasm("a");
    const out = addProducer(module, "processed-by", { name: "wasm-iop", version: "1.0.0" });
    const name = (text: string) => [text.length, ...Buffer.from(text)];
    const content = [...name("producers"), 1, ...name("processed-by"), 1, ...name("wasm-iop"), ...name("1.0.0")];
    expect([...out.subarray(module.length)]).toEqual([0, content.length, ...content]);
    expect(Buffer.from(out.subarray(0, module.length)).equals(Buffer.from(module))).toBe(true);
  });

  it("keeps other fields and values and replaces an entry of the same name", () => {
    // Add language, then two processed-by entries, then replace one: exactly one section, every other value kept.
    let module = addProducer(fakeWasm("b"), "language", { name: "AssemblyScript", version: "0.28" });
    module = addProducer(module, "processed-by", { name: "asc", version: "0.28.20" });
    module = addFirmwareProducer(module, { name: "wasm-iop", version: "0.1.0", gitCommit: "ab".repeat(20) });
    module = addFirmwareProducer(module, { name: "wasm-iop", version: "0.2.0", gitCommit: null });
    const producers = readProducers(module);
    expect([...producers.keys()]).toEqual(["language", "processed-by"]);
    expect(producers.get("processed-by")).toEqual([
      { name: "asc", version: "0.28.20" },
      { name: "wasm-iop", version: "0.2.0" },
    ]);
    const count = Buffer.from(module).toString("latin1").split("\u0009producers").length - 1;
    expect(count).toBe(1);
  });

  it("records the git commit as semver build metadata", () => {
    const module = addFirmwareProducer(fakeWasm("c"), { name: "wasm-iop", version: "0.1.0", gitCommit: "0123abc" });
    expect(readProducers(module).get("processed-by")).toEqual([{ name: "wasm-iop", version: "0.1.0+git.0123abc" }]);
  });

  it("refuses modules that are not WebAssembly or whose sections run past the end", () => {
    // A wrong preamble, and a custom section whose size claims more bytes than exist.
    expect(() => readProducers(new Uint8Array([1, 2, 3]))).toThrow(WasmFormatError);
    const module = fakeWasm("d");
    const lying = module.slice();
    lying[9] = 100; // the custom section's size byte
    expect(() => addProducer(lying, "sdk", { name: "x", version: "1" })).toThrow(/runs past the module's end/);
  });
});

describe("the real firmware", () => {
  const firmwarePath = new URL("../../../build/firmware.wasm", import.meta.url);
  it.skipIf(!existsSync(firmwarePath))("stays a valid module after its producers are added", () => {
    // WebAssembly.validate checks the whole module, so a section written with a wrong size would fail it.
    const wasm = new Uint8Array(readFileSync(firmwarePath));
    const out = addFirmwareProducer(wasm, { name: "wasm-iop", version: "0.1.0", gitCommit: "f".repeat(40) });
    expect(WebAssembly.validate(new Uint8Array(out))).toBe(true);
    expect(readProducers(out).get("processed-by")).toContainEqual({ name: "wasm-iop", version: `0.1.0+git.${"f".repeat(40)}` });
  });
});
