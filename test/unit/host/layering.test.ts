// The emulator does not depend on its tools: no module under host/ imports from tools/ (the tools build on the
// host, never the reverse). Reads every host/ source and checks each import and export specifier.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../../host/root.ts";

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

const SPECIFIER = /(?:^|\n)\s*(?:import|export)\b[^"'`;]*?from\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

describe("host/ layering", () => {
  it("imports nothing from tools/", () => {
    const tools = join(ROOT, "tools") + sep;
    const offenders: string[] = [];
    const files = sources(join(ROOT, "host"));
    expect(files.length).toBeGreaterThan(30);
    for (const file of files) {
      for (const match of readFileSync(file, "utf8").matchAll(SPECIFIER)) {
        const specifier = match[1] ?? match[2]!;
        if (specifier.startsWith(".") && resolve(file, "..", specifier).startsWith(tools)) offenders.push(`${relative(ROOT, file)}: ${specifier}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
