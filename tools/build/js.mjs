// Compiles the host, the tools and the CLI from TypeScript to JavaScript in dist/, with esbuild: one bundle per entry
// point, split into shared chunks so that a command loads only the code it imports (tools/cli/main.ts imports each
// command's body lazily), and source maps beside them. `npm install` runs it (the `prepare` script), `npm run build`
// runs it before the firmware build, and bin/wasm-iop.js runs it when a source is newer than the compiled code.
//
// Plain JavaScript on purpose: it runs before anything is compiled.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const DIST = join(ROOT, "dist");
const INPUTS_PATH = join(DIST, "inputs.json"); // the sources the last build read, for the staleness check

/** dist/<name>.js ← source: the programs this repository starts (the CLI, and the children it forks). */
export const ENTRY_POINTS = {
  cli: "tools/cli/main.ts",
  build: "tools/build/main.ts",
  emulator_child: "tools/bench/emulator_child.ts",
};

/** True when dist/ is missing an entry point or a source it was built from is newer than it (or gone). */
export function isStale() {
  let builtMs;
  let inputs;
  try {
    builtMs = statSync(INPUTS_PATH).mtimeMs;
    inputs = JSON.parse(readFileSync(INPUTS_PATH, "utf8"));
    for (const name of Object.keys(ENTRY_POINTS)) statSync(join(DIST, `${name}.js`));
  } catch {
    return true;
  }
  for (const input of inputs) {
    try {
      if (statSync(join(ROOT, input)).mtimeMs > builtMs) return true;
    } catch {
      return true; // a source was deleted or moved
    }
  }
  return false;
}

/**
 * Builds dist/. Every file is written to a temporary name and renamed into place, so a CLI started while another
 * process rebuilds reads either the old file or the new one, never half of one. Returns the number of files written.
 */
export async function compile() {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ENTRY_POINTS,
    outdir: DIST,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external", // node_modules stay imports: resolved from dist/ up to ./node_modules
    sourcemap: "linked",
    chunkNames: "chunks/[name]-[hash]",
    metafile: true,
    write: false,
    logLevel: "silent",
  });
  const written = new Set();
  for (const file of result.outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    const temporary = `${file.path}.${process.pid}.tmp`;
    writeFileSync(temporary, file.contents);
    renameSync(temporary, file.path);
    written.add(file.path);
  }
  removeOthers(DIST, written);
  const inputs = Object.keys(result.metafile.inputs).filter((input) => !input.startsWith("node_modules/"));
  const temporary = `${INPUTS_PATH}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(inputs.sort(), null, 1) + "\n"); // written last: it dates the build
  renameSync(temporary, INPUTS_PATH);
  return written.size;
}

// Chunks of earlier builds (their names carry a content hash) would pile up: remove what this build did not write.
function removeOthers(dir, keep) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) removeOthers(path, keep);
    else if (!keep.has(path) && path !== INPUTS_PATH && !entry.name.endsWith(".tmp")) rmSync(path, { force: true });
  }
}

/** Compiles dist/ if it is stale, saying so on stderr (a CLI user sees why this start is slower). */
export async function ensureCompiled() {
  if (!isStale()) return;
  process.stderr.write("wasm-iop: compiling host/ and tools/ into dist/ (the sources changed since the last build) ...\n");
  await compile();
}

// `node tools/build/js.mjs`: build now, whatever the state.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  const count = await compile();
  process.stdout.write(`compiled ${count} files into ${relative(process.cwd(), DIST) || "."}/ in ${Math.round(performance.now() - t0)} ms\n`);
}
