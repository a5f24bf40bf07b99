// Reads iscsi-test-cu's (CUnit's) verbose output into one result per test. CUnit's verdict ("passed" or "FAILED")
// decides; CUnit counts a skipped test as passed, and libiscsi prints "[SKIPPED]" inside it, so a passed test with
// that marker before its verdict is a skip. "[FAILED]" messages only explain (some appear in tests CUnit passed).

export type TestResult = "pass" | "skip" | "fail";

export interface TestOutcome {
  name: string; // Suite.Test
  result: TestResult;
  detail: string; // the first failure or skip message, "" for a pass
}

export function parseCunitOutput(text: string): TestOutcome[] {
  const outcomes: TestOutcome[] = [];
  let suite = "";
  let current: TestOutcome | undefined;
  let sawVerdict = false;
  const finish = () => {
    if (current !== undefined) outcomes.push(current);
    current = undefined;
  };
  for (const line of text.split("\n")) {
    const suiteMatch = /^Suite: (.+)$/.exec(line);
    if (suiteMatch !== null) {
      finish();
      suite = suiteMatch[1]!.trim();
      continue;
    }
    const testMatch = /^ {2}Test: (\S+) \.\.\.(.*)$/.exec(line);
    if (testMatch !== null) {
      finish();
      current = { name: `${suite}.${testMatch[1]}`, result: "pass", detail: "" };
      sawVerdict = false;
      classify(current, testMatch[2]!);
      if (/passed\s*$/.test(testMatch[2]!) || /FAILED\s*$/.test(testMatch[2]!)) sawVerdict = true;
      continue;
    }
    if (current === undefined || sawVerdict) continue;
    classify(current, line);
    if (/^\s*passed\s*$/.test(line) || /^\s*FAILED\s*$/.test(line)) sawVerdict = true;
  }
  finish();
  return outcomes;
}

function classify(outcome: TestOutcome, text: string): void {
  const skip = /\[SKIPPED\]\s*(.*)$/.exec(text);
  if (skip !== null && outcome.result === "pass") {
    outcome.result = "skip";
    outcome.detail = skip[1]!.trim();
  }
  const failed = /\[FAILED\]\s*(.*)$/.exec(text);
  if (failed !== null && (outcome.detail === "" || outcome.result === "skip")) outcome.detail = failed[1]!.trim();
  // The verdict: CUnit prints FAILED alone (or after the dots); a skip that then failed is a failure.
  if (/(^|\.\.\.|\s)FAILED\s*$/.test(text) && !/\[FAILED\]/.test(text)) outcome.result = "fail";
}

export interface Tally {
  pass: number;
  skip: number;
  fail: number;
}

export function tally(outcomes: TestOutcome[]): Tally {
  return {
    pass: outcomes.filter((o) => o.result === "pass").length,
    skip: outcomes.filter((o) => o.result === "skip").length,
    fail: outcomes.filter((o) => o.result === "fail").length,
  };
}

/**
 * What got worse against the baseline: a new failure, or a test that passed and now does not. Tests named in
 * `flaky` (they pass or fail from run to run for reasons outside the target) are not judged.
 */
export function regressions(outcomes: TestOutcome[], baseline: Record<string, TestResult>, flaky: readonly string[] = []): string[] {
  const problems: string[] = [];
  for (const outcome of outcomes) {
    if (flaky.includes(outcome.name)) continue;
    const before = baseline[outcome.name];
    if (outcome.result === "fail" && before !== "fail") problems.push(`${outcome.name}: new failure (${outcome.detail})`);
    else if (before === "pass" && outcome.result !== "pass") problems.push(`${outcome.name}: passed in the baseline, now ${outcome.result}`);
  }
  for (const [name, result] of Object.entries(baseline)) {
    if (result === "pass" && !flaky.includes(name) && !outcomes.some((o) => o.name === name)) problems.push(`${name}: passed in the baseline, did not run`);
  }
  return problems;
}

/**
 * Suites whose tests log out and destroy the first path's session when they end (libiscsi 1.19.0's async TMF tests):
 * any test after them crashes iscsi-test-cu on the missing session, so they run last.
 */
const RUN_LAST_SUITES = ["iSCSITMF"];

/**
 * The -t argument: `pattern` itself, unless it selects a test the baseline says not to run or a test that must run
 * last; then the comma-separated list of the tests it selects, without the first and with the second at the end
 * (iscsi-test-cu takes such a list and runs it from the last name to the first, so the list is given reversed).
 */
export function testSelection(pattern: string, listed: readonly string[], notRun: readonly string[]): { selection: string; skipped: string[]; count: number } {
  const selected = listed.filter((name) => name === pattern || name.startsWith(`${pattern}.`));
  const suiteTest = (name: string) => name.split(".").slice(1).join(".");
  const runLast = (name: string) => RUN_LAST_SUITES.includes(name.split(".")[1]!);
  const skipped = selected.filter((name) => notRun.includes(suiteTest(name))).map(suiteTest);
  const kept = selected.filter((name) => !notRun.includes(suiteTest(name)));
  const ordered = [...kept.filter((name) => !runLast(name)), ...kept.filter(runLast)];
  const count = ordered.length;
  if (count === selected.length && ordered.every((name, i) => name === selected[i])) return { selection: pattern, skipped, count };
  return { selection: ordered.reverse().join(","), skipped, count };
}
