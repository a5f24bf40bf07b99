// Where the bench's emulator runs: in a session of its own by default (as tgtd), or in the bench's own session and
// process group (ownSession: false, bench --nbd, as nbdkit), where the terminal's Ctrl-C also reaches it: it must
// then keep serving until the bench stops it. Linux only (the session is read from /proc).
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Emulator } from "../../../tools/bench/emulator.ts";

// The session id: the sixth field of /proc/PID/stat, the fourth after the command's closing parenthesis.
function sessionOf(pid: number | "self"): number {
  return Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[3]);
}

describe.skipIf(!existsSync("/proc/self/stat"))("bench emulator's session", () => {
  it("with ownSession false, shares the bench's session and outlives a SIGINT until stopped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wasm-iop-bench-emulator-"));
    const emulator = await Emulator.start({ memoryDisks: true, dataDir: dir, ownSession: false, log: () => {} });
    try {
      expect(sessionOf(emulator.pid)).toBe(sessionOf("self"));
      process.kill(emulator.pid, "SIGINT"); // what a Ctrl-C at the terminal sends the whole process group
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await emulator.stats()).panics).toBe(0); // still there, and answering
    } finally {
      await emulator.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("by default, runs in a session of its own", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wasm-iop-bench-emulator-"));
    const emulator = await Emulator.start({ memoryDisks: true, dataDir: dir, log: () => {} });
    try {
      expect(sessionOf(emulator.pid)).toBe(emulator.pid); // setsid: the leader of a new session
      expect(sessionOf(emulator.pid)).not.toBe(sessionOf("self"));
    } finally {
      await emulator.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
