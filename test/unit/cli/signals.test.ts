// SIGINT and SIGTERM stop the long-running commands cleanly, as a user or a service manager sends them: `simulate`
// (in its own process, in the middle of a seed, and with --jobs workers) and `fuzz` (alone and with --jobs). Each
// campaign asked for is far longer than the test's time limit (a million commands a seed, 600 s of fuzzing), so a
// command that ignored the signal, or waited for its work to end, would fail the test by timing out. After the signal
// the command prints the summary of what it finished, exits 128 + the signal's number (130, 143), and leaves no
// worker process behind. (`run` is covered in run.test.ts: a server that stops on request exits 0.)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startCli, type StartedCli } from "../../support/cli.ts";
import { scaled } from "../../support/time.ts";

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-signals-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The processes whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]); // after "(comm) state"
      if (ppid === pid) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (polling /proc) until `cli` has `count` child processes; returns their pids. */
async function workers(cli: StartedCli, count: number): Promise<number[]> {
  const limit = performance.now() + scaled(60_000);
  for (;;) {
    const pids = childrenOf(cli.child.pid!);
    if (pids.length >= count) return pids;
    if (performance.now() > limit) throw new Error(`${pids.length} of ${count} workers started; output:\n${cli.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("wasm-iop simulate on a signal", () => {
  it("stops a seed in progress on SIGTERM: exit 143 and a summary with no seed done", async () => {
    const cli = startCli(["simulate", "--seed", "1", "--ops", "1000000", "--verbose"]);
    await cli.waitFor(/tts: serving/); // the board is up: the seed is running
    cli.child.kill("SIGTERM");
    const { code, stderr } = await cli.result;
    expect(code).toBe(143);
    expect(stderr).toMatch(/SIGTERM: stopping/);
    expect(stderr).toMatch(/simulate: stopped by SIGTERM: 0 of 1 seeds in/);
  });

  it("with --jobs, stops its workers on SIGINT, drops their seeds and sums up the seeds done: exit 130", async () => {
    const cli = startCli(["simulate", "--seed", "1", "--seeds", "500", "--ops", "60", "--faults", "none", "--jobs", "2", "--json"]);
    const pids = await workers(cli, 2);
    await cli.waitFor(/\[2\/500\] seed \d+: ok/);
    cli.child.kill("SIGINT");
    const { code, stdout, stderr } = await cli.result;
    expect(code).toBe(130);
    const line = /simulate: stopped by SIGINT: (\d+) of 500 seeds in/.exec(stderr);
    expect(line, stderr).not.toBeNull();
    const done = Number(line![1]);
    expect(done).toBeGreaterThanOrEqual(2);
    expect(done).toBeLessThan(500);
    const summary = JSON.parse(stdout) as { stoppedBy: string; seedsAsked: number; seeds: number[]; results: unknown[] };
    expect(summary.stoppedBy).toBe("SIGINT");
    expect(summary.seedsAsked).toBe(500);
    expect(summary.seeds).toHaveLength(done);
    expect(summary.results).toHaveLength(done);
    for (const pid of pids) expect(alive(pid), `worker ${pid}`).toBe(false);
  });
});

describe("wasm-iop fuzz on a signal", () => {
  it("ends the campaign on SIGINT and prints its summary: exit 130", async () => {
    const cli = startCli(["fuzz", "--target", "mu", "--seconds", "600", "--findings", join(tmp, "one")]);
    await cli.waitFor(/\[mu\] \d+ s +execs [1-9]/); // the first status line: inputs are running
    cli.child.kill("SIGINT");
    const { code, stdout, stderr } = await cli.result;
    expect(code).toBe(130);
    expect(stderr).toMatch(/SIGINT: stopping after the input running/);
    expect(stdout).toMatch(/\[mu\] \d+ s {2}execs [1-9]\d* /);
  });

  it("with --jobs, passes SIGTERM on to every campaign and merges their summaries: exit 143", async () => {
    const cli = startCli(["fuzz", "--target", "mu", "--seconds", "600", "--jobs", "2", "--json", "--findings", join(tmp, "two")]);
    const pids = await workers(cli, 2);
    await cli.waitFor(/fuzzing mu for 600 s, seed 1[\s\S]*\[mu\] \d+ s +execs [1-9]/);
    await cli.waitFor(/fuzzing mu for 600 s, seed 2[\s\S]*\[mu\] \d+ s +execs [1-9][\s\S]*\[mu\] \d+ s +execs [1-9]/);
    cli.child.kill("SIGTERM");
    const { code, stdout } = await cli.result;
    expect(code).toBe(143);
    const summary = JSON.parse(stdout.trim().split("\n").pop()!) as { execs: number; seconds: number };
    expect(summary.execs).toBeGreaterThan(0);
    expect(summary.seconds).toBeLessThan(600);
    for (const pid of pids) expect(alive(pid), `campaign ${pid}`).toBe(false);
  });
});
