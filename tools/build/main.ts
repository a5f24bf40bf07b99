// `npm run build`, after tools/build/js.mjs has compiled this file into dist/build.js: every firmware image,
// rebuilt only if stale unless --force.
import { buildFirmware } from "./firmware.ts";

const force = process.argv.includes("--force");
const built = await buildFirmware(undefined, force);
process.stdout.write(built.length > 0 ? `built ${built.join(", ")}\n` : "firmware is up to date\n");
