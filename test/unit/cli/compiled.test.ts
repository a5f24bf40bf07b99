// The CLI runs compiled JavaScript: bin/wasm-iop.js loads dist/cli.js, with no TypeScript loader at run time, and
// dist/ counts as stale as soon as one of the sources it was built from is newer than it (then the next CLI start
// recompiles it). The command list loads no command's module: `--help` stays cheap however large the tools grow.
import { readFileSync, statSync, utimesSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../../host/root.ts";
import { ENTRY_POINTS, ensureCompiled, isStale } from "../../../tools/build/js.mjs";
import { runCli } from "../../support/cli.ts";

// The files Node loads when it imports `file`: the file and, transitively, its static imports (not import()).
function staticClosure(file: string): string[] {
  const seen = new Set<string>([file]);
  const queue = [file];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const match of readFileSync(next, "utf8").matchAll(/^(?:import|export)\b[^;]*?"(\.[^"]+)";/gms)) {
      const imported = join(dirname(next), match[1]!);
      if (!seen.has(imported)) {
        seen.add(imported);
        queue.push(imported);
      }
    }
  }
  return [...seen];
}

describe("the compiled CLI", () => {
  it("runs dist/cli.js without tsx", async () => {
    const bin = readFileSync(join(ROOT, "bin/wasm-iop.js"), "utf8");
    expect(bin).toContain('import("../dist/cli.js")');
    expect(bin).not.toMatch(/tsx/);
    await ensureCompiled();
    for (const name of Object.keys(ENTRY_POINTS)) expect(readFileSync(join(ROOT, "dist", `${name}.js`), "utf8")).not.toMatch(/from "tsx/);
  });

  it("is stale when a source it was built from is newer, and fresh again when it is not", async () => {
    await ensureCompiled();
    expect(isStale()).toBe(false);
    const inputs = JSON.parse(readFileSync(join(ROOT, "dist/inputs.json"), "utf8")) as string[];
    expect(inputs).toContain("tools/cli/main.ts");
    expect(inputs).toContain("host/board/board.ts");
    const source = join(ROOT, "host/root.ts");
    const { atime, mtime } = statSync(source);
    try {
      utimesSync(source, atime, new Date(Date.now() + 60_000));
      expect(isStale()).toBe(true);
    } finally {
      utimesSync(source, atime, mtime);
    }
    expect(isStale()).toBe(false);
  });

  it("answers --help from the command list alone, without loading a command's code", async () => {
    await ensureCompiled();
    const loaded = staticClosure(join(ROOT, "dist/cli.js"));
    expect(loaded.length).toBeGreaterThanOrEqual(1);
    const text = loaded.map((file) => readFileSync(file, "utf8")).join("\n");
    expect(text).toContain("boot a board and run it until stopped"); // the command list itself
    expect(text).not.toMatch(/loadBoardFile|class Board\b|buildImage|new Ajv/); // the commands' code: in chunks loaded on demand
    const { code, stdout } = await runCli(["--help"]);
    expect(code).toBe(0);
    for (const name of ["run", "fault", "inventory", "conformance", "simulate", "bench", "fuzz", "image", "flash"]) expect(stdout).toMatch(new RegExp(`\\n  ${name} +\\S`));
  });
});
