// The repository's root: the folder holding wasm-iop's package.json, found by walking up from this module. The same
// code runs from its TypeScript source (vitest) and from the bundle in dist/ (the CLI), at different depths, so a
// fixed "../../" from import.meta.url would point at the wrong folder in one of the two.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PACKAGE_NAME = "wasm-iop";
const DEPTH_MAX = 8; // dist/chunks/x.js and host/root.ts are at most three folders down

function findRoot(start: string): string {
  let dir = start;
  for (let depth = 0; depth < DEPTH_MAX; depth++) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name === PACKAGE_NAME) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`no ${PACKAGE_NAME} package.json above ${start}`);
}

/** The repository's root folder, without a trailing separator. */
export const ROOT: string = findRoot(dirname(fileURLToPath(import.meta.url)));
