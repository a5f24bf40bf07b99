// The board ABI, checked on the built images: every import and export is one docs/board-abi.md lists, the module
// validates with only the allowed WebAssembly features (wabt's validator with everything else switched off), and
// its code uses none of the instructions the ABI rules out. Also: the doc's tables and the host's lists agree.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ABI_EXPORTS, ABI_FUNCTION_SIGNATURES, ABI_IMPORTS, ABI_VERSION } from "../../../host/abi/board_imports.ts";
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

const LETTER: Record<string, string> = { i32: "i", i64: "I" };

/** Each function import of the module at `path` with its signature in the C tables' letters, read from wasm2wat's text. */
async function importSignatures(path: string): Promise<Map<string, string>> {
  const { stdout: text } = await run(process.execPath, [join(wabtBin, "wasm2wat"), "--enable-threads", path], { encoding: "utf8", maxBuffer: 64 << 20 });
  const types = new Map<string, string>();
  const letters = (list: string | undefined) => (list ?? "").trim().split(/\s+/).filter(Boolean).map((t) => LETTER[t] ?? t).join("");
  const signature = (body: string) => `(${letters(/\(param ([^)]*)\)/.exec(body)?.[1])})${letters(/\(result ([^)]*)\)/.exec(body)?.[1])}`;
  for (const [, index, body] of text.matchAll(/^\s*\(type \(;(\d+);\) \(func(.*)\)\)$/gm)) types.set(index!, signature(body!));
  const imports = new Map<string, string>();
  for (const [, from, name, index] of text.matchAll(/^\s*\(import "([^"]+)" "([^"]+)" \(func \(;\d+;\) \(type (\d+)\)\)\)$/gm)) {
    imports.set(`${from}.${name}`, types.get(index!)!);
  }
  return imports;
}

/** The ABI's signature of every function import, keyed as importSignatures() keys them. */
function abiSignatures(): Map<string, string> {
  const all = new Map<string, string>();
  for (const [from, functions] of Object.entries(ABI_FUNCTION_SIGNATURES)) {
    for (const [name, { params, results }] of Object.entries(functions)) all.set(`${from}.${name}`, `(${params})${results}`);
  }
  return all;
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

  it("imports each function with the ABI's signature: no i64 crosses the board module (ABI 2)", async () => {
    const abi = abiSignatures();
    const image = await importSignatures(path);
    expect(image.size).toBeGreaterThanOrEqual(10);
    for (const [name, signature] of image) expect(signature, name).toBe(abi.get(name));
    for (const [name, signature] of image) if (name.startsWith("board.")) expect(signature, name).not.toContain("I");
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

  it("agrees with the firmware, the native board and the image tools on the ABI version", () => {
    const t = testBoard({ image: "release" });
    expect(ABI_VERSION).toBe(2);
    expect(t.call("abiVersion")).toBe(ABI_VERSION);
    expect(doc).toMatch(new RegExp(`# The board ABI, version ${ABI_VERSION}\\b`));
    expect(doc).toMatch(new RegExp(`\\| \`abiVersion\` \\| \`\\(\\) → i32\` \\| returns ${ABI_VERSION}`));
    expect(readFileSync(join(ROOT, "boards/native/src/processor.h"), "utf8")).toMatch(new RegExp(`#define ABI_VERSION ${ABI_VERSION}\\b`));
  });

  it("gives every bus import the signature the host lists", () => {
    for (const [from, functions] of Object.entries({ board: ABI_FUNCTION_SIGNATURES.board! })) {
      for (const [name, { params, results }] of Object.entries(functions)) {
        const wat = (letters: string) => letters.split("").map((l) => (l === "I" ? "i64" : "i32"));
        const row = doc.split("\n").find((line) => line.startsWith("|") && line.includes(`\`${name}\``));
        expect(row, `${from}.${name} in the tables`).toBeDefined();
        expect(row, name).toContain(`→ ${results === "" ? "()" : wat(results).join(", ")}`);
        expect((row!.match(/\b(i32|i64)\b/g) ?? []).slice(0, params.length), name).toEqual(wat(params));
      }
    }
  });
});

describe("the other boards' import tables", () => {
  // The C boards list { module, name, params, results, fn } in the letters above; the wasmtime board Python lists.
  const cTable = (file: string) => {
    const source = readFileSync(join(ROOT, file), "utf8");
    return new Map([...source.matchAll(/\{"(board|wasi_snapshot_preview1)", "(\w+)", "(\w*)", "(\w*)", \w+\}/g)].map(([, from, name, params, results]) => [`${from}.${name}`, `(${params})${results}`]));
  };
  const letters = (list: string) => list.split(",").map((t) => t.trim()).filter(Boolean).map((t) => (t === "I64" ? "I" : "i")).join("");

  it.each(["boards/native/src/processor.c", "tools/trace_board/native/trace_board.c"])("%s links the ABI's signatures", (file) => {
    expect(cTable(file)).toEqual(abiSignatures());
  });

  it("tools/trace_board/replay.py (wasmtime) checks the ABI's signatures", () => {
    const source = readFileSync(join(ROOT, "tools/trace_board/replay.py"), "utf8");
    const table = new Map([...source.matchAll(/\("(board|wasi_snapshot_preview1)", "(\w+)"\): \(\[([^\]]*)\], \[([^\]]*)\]\)/g)].map(([, from, name, params, results]) => [`${from}.${name}`, `(${letters(params!)})${letters(results!)}`]));
    expect(table).toEqual(abiSignatures());
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
