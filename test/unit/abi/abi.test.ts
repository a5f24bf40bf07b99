// The board ABI, checked on the built images: every import and export is one docs/board-abi.md lists, the module
// validates with only the allowed WebAssembly features (wabt's validator with everything else switched off), and
// its code uses none of the instructions the ABI rules out. Also: the doc's tables and the host's lists agree.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ABI_EXPORTS, ABI_IMPORTS } from "../../../host/abi/board_imports.ts";
import { FIRMWARE_DEBUG_PATH, FIRMWARE_PATH, FIRMWARE_TEST_PATH, ROOT } from "../../../tools/build/firmware.ts";
import { testBoard } from "../../support/board.ts";

const wabtBin = join(dirname(createRequire(import.meta.url).resolve("wabt/package.json")), "bin");

// Lime1 as the compiler emits it, plus threads for the shared memory; everything else off.
const FEATURE_FLAGS = [
  "--enable-threads", "--disable-simd", "--disable-reference-types", "--disable-multi-value",
  // On by default in wabt and part of Lime1: mutable globals, sign-extension, saturating float-to-int, bulk memory.
];
const FORBIDDEN_INSTRUCTIONS = ["memory.init", "data.drop", "table.", "ref.", "v128", "i8x16", "return_call", "try", "throw", "memory.atomic.wait", "memory.atomic.notify"];

// wabt's tools run as child processes, asynchronously: under load they take long enough to matter to the worker's
// event loop (test/support/stall_guard.ts).
const run = promisify(execFile);

async function validate(path: string, flags: string[]): Promise<string> {
  try {
    await run(process.execPath, [join(wabtBin, "wasm-validate"), ...flags, path]);
    return "valid";
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error);
  }
}

describe.each([
  ["release", FIRMWARE_PATH],
  ["debug", FIRMWARE_DEBUG_PATH],
])("the %s image", (_name, path) => {
  const module = new WebAssembly.Module(readFileSync(path));

  it("imports only what the board ABI provides", () => {
    for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
      expect(ABI_IMPORTS[from], `import module ${from}`).toBeDefined();
      expect(ABI_IMPORTS[from], `import ${from}.${name}`).toContain(name);
      expect(kind).toBe(from === "env" ? "memory" : "function");
    }
  });

  it("exports exactly the ABI's functions", () => {
    expect(WebAssembly.Module.exports(module).map((e) => e.name).sort()).toEqual([...ABI_EXPORTS].sort());
  });

  it("validates with only the allowed features", async () => {
    expect(await validate(path, FEATURE_FLAGS)).toBe("valid");
    // And the check can fail: without threads the shared memory is refused.
    expect(await validate(path, ["--disable-simd", "--disable-reference-types", "--disable-multi-value"])).toMatch(/shared/);
  });

  it("uses no instruction the ABI rules out", async () => {
    const { stdout: text } = await run(process.execPath, [join(wabtBin, "wasm2wat"), "--enable-threads", path], { encoding: "utf8", maxBuffer: 64 << 20 });
    const code = text.split("\n").filter((line) => !line.trimStart().startsWith("(data") && !line.trimStart().startsWith(";;"));
    for (const instruction of FORBIDDEN_INSTRUCTIONS) {
      expect(code.filter((line) => new RegExp(`^\\s*\\(?${instruction.replace(".", "\\.")}`).test(line)), instruction).toEqual([]);
    }
    expect(text).toMatch(/\(import "env" "memory" \(memory \(;0;\) 2 65536 shared\)\)/);
  });
});

describe("the ABI documentation", () => {
  const doc = readFileSync(join(ROOT, "docs/board-abi.md"), "utf8");

  it("names every import and export the host provides and the firmware may use", () => {
    for (const [from, names] of Object.entries(ABI_IMPORTS)) {
      for (const name of names) expect(doc).toMatch(new RegExp(`\`(${from}\\.)?${name}\``));
    }
    for (const name of ABI_EXPORTS) expect(doc).toContain(`\`${name}\``);
  });

  it("agrees with the firmware on the ABI version", () => {
    const t = testBoard({ image: "release" });
    expect(t.call("abiVersion")).toBe(1);
    expect(doc).toMatch(/# The board ABI, version 1/);
  });
});

describe("the test build", () => {
  it("keeps the ABI's imports, so it runs on the same board", () => {
    const module = new WebAssembly.Module(readFileSync(FIRMWARE_TEST_PATH));
    for (const { module: from, name } of WebAssembly.Module.imports(module)) expect(ABI_IMPORTS[from]).toContain(name);
    const exports = WebAssembly.Module.exports(module).map((e) => e.name);
    for (const name of ABI_EXPORTS) expect(exports).toContain(name);
  });
});

describe("the firmware version", () => {
  it("matches package.json", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const config = readFileSync(join(ROOT, "assembly/config.ts"), "utf8");
    expect(config).toContain(`FIRMWARE_VERSION: string = "${pkg.version}"`);
  });
});
