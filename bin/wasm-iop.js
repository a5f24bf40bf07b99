#!/usr/bin/env node
// The CLI runs compiled JavaScript from dist/ (made by `npm install` and `npm run build`; docs/cli.md). In a
// checkout whose host/ or tools/ sources changed since, it compiles them first, which takes about a second.
import { ensureCompiled } from "../tools/build/js.mjs";

await ensureCompiled();
const { main } = await import("../dist/cli.js");
process.exitCode = await main(process.argv.slice(2));
