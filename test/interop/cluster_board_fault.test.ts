// `wasm-iop fault` reaching one board of a cluster run as one process per board (`run --cluster F --board N`;
// docs/fault.md, docs/cluster.md "Across processes"): a link of its own port down and up, the board reset, powered off
// and on, through its data directory's control socket; another board's name is refused with where to send it.
// Board a alone (its peers never started): what it answers needs no peer. A second process started for the same board
// on the same data directory is refused by the control socket before it writes the page owners it would start with.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { runCli, type StartedCli } from "../support/cli.ts";
import { clusterProcesses } from "../support/cluster_processes.ts";
import { freePorts } from "../support/free_ports.ts";

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

  it("refuses a second process for the same board before it records its page owners in the live board's directory", async () => {
    // The second cluster file differs only in its table version (not compared between runs, so its check passes) and
    // in board a's ports (free ones, so that it gets as far as the control socket): the record must stay the first's.
    const dir = join(tmp, "second");
    mkdirSync(dir);
    const { start, dataDir } = await clusterProcesses("clusters/trio.json", dir, started, () => join(ROOT, "boards/cluster-node.json"));
    const a = start("a");
    await a.waitFor(/a: listening on/, 120_000);
    const record = join(dataDir, "a", "page-owners.json");
    expect(JSON.parse(readFileSync(record, "utf8")).version).toBe(1);
    const newer = JSON.parse(readFileSync(join(dir, "cluster.json"), "utf8"));
    newer.version = 2;
    const [portal, fabric] = await freePorts(2);
    newer.boards[0].portals[0].port = portal;
    newer.boards[0].fabric.port = fabric;
    writeFileSync(join(dir, "cluster-v2.json"), JSON.stringify(newer));
    const second = await runCli(["run", "--cluster", join(dir, "cluster-v2.json"), "--board", "a", "--data-dir", dataDir]);
    expect(second.code, second.stderr).toBe(1);
    expect(second.stderr).toContain("another board is running on this data directory");
    expect(JSON.parse(readFileSync(record, "utf8")).version).toBe(1);
    a.child.kill("SIGINT");
    expect((await a.result).code).toBe(0);
  }, 300_000);
});
