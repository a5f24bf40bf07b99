// Builds the firmware images once before any test file runs, if they are missing or older than their sources.
import { buildFirmware } from "../tools/build/firmware.ts";

export default async function setup(): Promise<void> {
  const built = await buildFirmware();
  if (built.length > 0) process.stdout.write(`built ${built.join(", ")}\n`);
}
