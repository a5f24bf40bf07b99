// How to start one of the programs this repository forks (ENTRY_POINTS in js.mjs): the compiled file in dist/ when
// the caller itself runs compiled (the CLI), or the TypeScript source through tsx when it runs from source (vitest).
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT } from "../../host/root.ts";

const COMPILED = fileURLToPath(import.meta.url).startsWith(join(ROOT, "dist") + sep);

export interface ChildEntry {
  path: string;
  execArgv: string[];
}

/** `name` is the entry point's name in dist/ (dist/<name>.js), `source` its TypeScript file from the root. */
export function childEntry(name: string, source: string): ChildEntry {
  return COMPILED ? { path: join(ROOT, "dist", `${name}.js`), execArgv: [] } : { path: join(ROOT, source), execArgv: ["--import", "tsx"] };
}
