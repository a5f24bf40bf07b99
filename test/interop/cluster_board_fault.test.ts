// `wasm-iop fault` reaching one board of a cluster run as one process per board (`run --cluster F --board N`;
// docs/fault.md, docs/cluster.md "Across processes"): a link of its own port down and up, the board reset, powered off
// and on, through its data directory's control socket; another board's name is refused with where to send it.
// Board a alone (its peers never started): what it answers needs no peer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { runCli, type StartedCli } from "../support/cli.ts";
import { clusterProcesses } from "../support/cluster_processes.ts";

const tmp = mkdtempSync(join(tmpdir(), "wasm-iop-cluster-board-fault-"));
const started: StartedCli[] = [];
afterAll(() => {
  for (const s of started) if (s.child.exitCode === null) s.child.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
});

describe("wasm-iop fault to a board of a cluster run one process per board", () => {
  it("takes link, port and board faults for its own board, and refuses another board's", async () => {
    const { start, dataDir } = await clusterProcesses("clusters/trio.json", tmp, started, () => join(ROOT, "boards/cluster-node.json"));
    const a = start("a");
    await a.waitFor(/a: listening on/, 120_000);
    const fault = (...args: string[]) => runCli(["fault", "--data-dir", join(dataDir, "a"), ...args]);
    let answer = await fault("link", "a:0", "down");
    expect(answer.stdout + answer.stderr).toMatch(/board a link 0 down/);
    expect(answer.code).toBe(0);
    answer = await fault("link", "a:0", "up");
    expect(answer.stdout).toMatch(/board a link 0 up/);
    answer = await fault("link", "b:1", "down");
    expect(answer.code).toBe(2); // a name this board does not know as its own
    expect(answer.stdout + answer.stderr).toMatch(/board "b" is not this process's \(board a\): send it to the data directory of the process run with --board b/);
    answer = await fault("port", "a:0", "down"); // its NIC port 0 (its one portal): no connection to reset
    expect(answer.stdout).toBe("a:0 (NIC port 0) link down: 0 connections reset\n");
    expect((await fault("port", "a:0", "up")).code).toBe(0);
    answer = await fault("port", "a:1", "down"); // trio's boards have one portal
    expect(answer.code).toBe(2);
    expect(answer.stdout + answer.stderr).toMatch(/a:1: no NIC port 1 \(ports 0-0\)/);
    answer = await fault("board", "a", "reset");
    expect(answer.stdout + answer.stderr).toMatch(/board a reset/);
    expect(answer.code).toBe(0);
    answer = await fault("board", "a", "off");
    expect(answer.stdout).toMatch(/board a powered off/);
    answer = await fault("board", "a", "on");
    expect(answer.stdout + answer.stderr).toMatch(/board a powered on/);
    answer = await fault("status"); // the board's own commands still go where they went
    expect(answer.code, answer.stderr).toBe(0);
    a.child.kill("SIGINT");
    expect((await a.result).code).toBe(0);
  }, 300_000);
});
