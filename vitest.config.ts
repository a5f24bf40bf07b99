import { defineConfig } from "vitest/config";
import { loadFactor, timeScaleFor } from "./test/support/time.ts";

// Every time limit scales with how busy the machine is when the suite starts (test/support/time.ts).
const scale = process.env.WASM_IOP_TEST_TIME_SCALE !== undefined ? Number(process.env.WASM_IOP_TEST_TIME_SCALE) : timeScaleFor(loadFactor());
process.env.WASM_IOP_TEST_TIME_SCALE = String(scale);

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global_setup.ts"],
    // Names a test that blocks its worker's event loop long enough to break vitest's worker RPC (fixed 60 s timeout).
    setupFiles: ["test/support/stall_guard.ts"],
    testTimeout: 60_000 * scale,
    hookTimeout: 60_000 * scale,
    env: { WASM_IOP_TEST_TIME_SCALE: String(scale) },
    pool: "forks",
  },
});
