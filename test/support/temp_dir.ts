// Temporary directories that tests leave nothing of: each is made under the system's temporary directory and removed,
// with everything in it, when the test that made it ends (`testTempDir`, called inside a test or a helper it calls)
// or when the file's tests end (`fileTempDir`, called at a file's top level or in a describe block). A test that
// starts processes writing into its directory stops them first (its own afterAll or onTestFinished, which vitest
// runs before these, as it runs after-hooks in the reverse order of their registration).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, onTestFinished } from "vitest";

function made(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function removed(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A fresh directory `PREFIX…` under the temporary directory, removed when the current test ends. */
export function testTempDir(prefix: string): string {
  const dir = made(prefix);
  onTestFinished(() => removed(dir));
  return dir;
}

/** A fresh directory `PREFIX…` under the temporary directory, removed when every test of the file (or block) has run. */
export function fileTempDir(prefix: string): string {
  const dir = made(prefix);
  afterAll(() => removed(dir));
  return dir;
}
