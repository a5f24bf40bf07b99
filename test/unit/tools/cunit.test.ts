// The conformance runner's reading of iscsi-test-cu output, on a real run (Debian's tgt, kept in test/vectors):
// every test gets exactly one result, skips are told apart from passes, failures keep their message, and the
// baseline comparison reports new failures and lost passes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseCunitOutput, regressions, tally, testSelection } from "../../../tools/conformance/cunit.ts";

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

describe("testSelection", () => {
  const listed = ["ALL.Read10.Simple", "ALL.Read10.BeyondEol", "ALL.iSCSITMF.AbortTaskSimpleAsync", "ALL.iSCSITMF.LUNResetSimpleAsync", "ALL.MultipathIO.Simple"];

  it("passes the pattern through when it selects no test to leave out or move", () => {
    expect(testSelection("ALL.Read10", listed, ["iSCSITMF.LUNResetSimpleAsync"])).toEqual({ selection: "ALL.Read10", skipped: [], count: 2 });
    expect(testSelection("ALL", listed.slice(0, 2), [])).toEqual({ selection: "ALL", skipped: [], count: 2 });
  });

  it("lists the selected tests but those not to run, last first (iscsi-test-cu runs a list from its end)", () => {
    const { selection, skipped } = testSelection("ALL", listed, ["iSCSITMF.LUNResetSimpleAsync"]);
    expect(skipped).toEqual(["iSCSITMF.LUNResetSimpleAsync"]);
    // The async TMF tests end the first path's session: they run after everything else.
    expect(selection.split(",")).toEqual(["ALL.iSCSITMF.AbortTaskSimpleAsync", "ALL.MultipathIO.Simple", "ALL.Read10.BeyondEol", "ALL.Read10.Simple"]);
  });

  it("moves the session-ending TMF tests last even with nothing left out", () => {
    expect(testSelection("ALL", listed, []).selection.split(",")[0]).toBe("ALL.iSCSITMF.LUNResetSimpleAsync");
    expect(testSelection("ALL.iSCSITMF", listed, []).selection).toBe("ALL.iSCSITMF");
  });

  it("matches whole name components, not prefixes of them", () => {
    expect(testSelection("ALL.iSCSITMF.LUNReset", listed, ["iSCSITMF.LUNResetSimpleAsync"]).skipped).toEqual([]);
  });
});
