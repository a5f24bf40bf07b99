// `wasm-iop conformance --lun`: a LUN the board's first target does not have is a usage error (exit status 2) that
// names the LUNs there are, before anything is started (so it holds without libiscsi installed too); `--cluster`
// with an option it cannot take is one too.
import { describe, expect, it } from "vitest";
import { runCli } from "../../support/cli.ts";

describe("wasm-iop conformance --lun", () => {
  it("refuses a LUN past the first target's last, naming the range", async () => {
    const result = await runCli(["conformance", "--lun", "5"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--lun: expected a LUN of the first target, 0 to 4, got "5"');
  });

  it("refuses what is not a LUN number", async () => {
    const result = await runCli(["conformance", "--lun", "three"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('got "three"');
  });
});

describe("wasm-iop conformance --cluster", () => {
  it.each([["--board", "boards/iop-dev.json"], ["--native"], ["--update-baseline"]])("refuses %s beside it (exit 2, nothing started)", async (...extra) => {
    const result = await runCli(["conformance", "--cluster", "clusters/trio.json", ...extra]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--cluster goes without --board, --native and --update-baseline");
  });
});
