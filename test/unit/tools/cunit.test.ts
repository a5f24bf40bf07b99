// The conformance runner's reading of iscsi-test-cu output, on a real run (Debian's tgt, kept in test/vectors):
// every test gets exactly one result, skips are told apart from passes, failures keep their message, and the
// baseline comparison reports new failures and lost passes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseCunitOutput, regressions, tally } from "../../../tools/conformance/cunit.ts";

const tgtRun = readFileSync(new URL("../../vectors/iscsi-test-cu-tgt.txt", import.meta.url), "utf8");

describe("iscsi-test-cu output", () => {
  const outcomes = parseCunitOutput(tgtRun);

  it("finds every test CUnit ran, once", () => {
    expect(outcomes).toHaveLength(230);
    expect(new Set(outcomes.map((o) => o.name)).size).toBe(230);
  });

  it("tells passes, skips and failures apart, matching CUnit's own totals", () => {
    const counts = tally(outcomes);
    expect(counts.fail).toBe(8); // CUnit: 230 ran, 222 "passed" (skips included), 8 failed
    expect(counts.pass + counts.skip).toBe(222);
    expect(counts.skip).toBeGreaterThan(50);
    expect(outcomes.find((o) => o.name === "Inquiry.Standard")).toEqual({ name: "Inquiry.Standard", result: "pass", detail: "" });
    expect(outcomes.find((o) => o.name === "GetLBAStatus.UnmapSingle")).toMatchObject({ result: "skip", detail: "Logical unit is fully provisioned. Skipping test" });
    expect(outcomes.find((o) => o.name === "GetLBAStatus.BeyondEol")).toMatchObject({ result: "fail" });
    expect(outcomes.find((o) => o.name === "GetLBAStatus.BeyondEol")!.detail).toMatch(/^GET_LBA_STATUS successful but should have failed/);
  });

  it("reports new failures and lost passes against a baseline, and nothing when results match", () => {
    const baseline = Object.fromEntries(outcomes.map((o) => [o.name, o.result]));
    expect(regressions(outcomes, baseline)).toEqual([]);
    const worse = outcomes.map((o) => (o.name === "Inquiry.Standard" ? { ...o, result: "fail" as const, detail: "x" } : o));
    expect(regressions(worse, baseline)).toEqual(["Inquiry.Standard: new failure (x)"]);
    const lost = outcomes.filter((o) => o.name !== "Inquiry.Standard");
    expect(regressions(lost, baseline)).toEqual(["Inquiry.Standard: passed in the baseline, did not run"]);
  });

  it("does not judge tests the baseline calls flaky", () => {
    const baseline = Object.fromEntries(outcomes.map((o) => [o.name, o.result]));
    const worse = outcomes.map((o) => (o.name === "Inquiry.Standard" ? { ...o, result: "fail" as const, detail: "x" } : o));
    expect(regressions(worse, baseline, ["Inquiry.Standard"])).toEqual([]);
    expect(regressions(worse.filter((o) => o.name !== "Inquiry.Standard"), baseline, ["Inquiry.Standard"])).toEqual([]);
  });
});
