// The cluster's control commands (host/cluster/cluster_control.ts; `wasm-iop fault` against `run --cluster`): the
// request shapes and their one-line refusals, and, on the example cluster booted in one process, that a link command
// moves the fabric's link and the bond fails over, that a board reset makes the board boot again and rejoin the
// fabric with a new port, and that an unknown board is refused naming the boards there are.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Cluster } from "../../../host/cluster/cluster.ts";
import { ClusterControl, parseClusterControlRequest } from "../../../host/cluster/cluster_control.ts";
import { loadClusterFile } from "../../../host/cluster/cluster_file.ts";
import { ROOT } from "../../../host/root.ts";
import { FIRMWARE_PATH } from "../../../tools/build/firmware.ts";
import { firmwareModule } from "../../support/board.ts";

const dir = mkdtempSync(join(tmpdir(), "wasm-iop-cluster-control-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("cluster control", () => {
  it("parses link BOARD:N down|up, port BOARD:N down|up, board NAME reset|off|on and status, and refuses anything else in one line", () => {
    expect(parseClusterControlRequest({ object: "link", name: "b:1", action: "down" })).toEqual({ object: "link", name: "b:1", action: "down" });
    expect(parseClusterControlRequest({ object: "board", name: "c", action: "reset" })).toEqual({ object: "board", name: "c", action: "reset" });
    expect(parseClusterControlRequest({ object: "status" })).toEqual({ object: "status" });
    expect(parseClusterControlRequest({ object: "link", name: "b:2", action: "down" })).toMatch(/expected a name BOARD:LINK such as b:0/);
    expect(parseClusterControlRequest({ object: "board", name: "b", action: "explode" })).toMatch(/unknown board action "explode"; board actions: reset, off, on/);
    expect(parseClusterControlRequest({ object: "disk" })).toMatch(/objects of a cluster: link, port, board, status/);
    expect(parseClusterControlRequest({ object: "port", name: "a:1", action: "down" })).toEqual({ object: "port", name: "a:1", action: "down" });
    expect(parseClusterControlRequest({ object: "port", name: "a:4", action: "down" })).toMatch(/expected a name BOARD:N such as a:1/);
  });

  it("moves a link, resets a board (a new port at its address), and names the boards when one is unknown", () => {
    const cluster = new Cluster({ cluster: loadClusterFile(join(ROOT, "clusters/trio.json")), firmware: firmwareModule(FIRMWARE_PATH), boardOptions: (name) => ({ dataDir: join(dir, name) }) });
    expect(cluster.powerOn()).toBe(true);
    cluster.runUntil(30_000_000);
    const control = new ClusterControl(cluster, new Map([["a", 1], ["b", 2], ["c", 3]]));
    expect(control.apply({ object: "link", name: "b:0", action: "down" })).toEqual({ ok: true, message: "board b link 0 down" });
    expect(cluster.board("b").clusterPorts[0]!.links[0]!.up).toBe(false);
    const before = cluster.board("b").clusterPorts[0];
    expect(control.apply({ object: "board", name: "b", action: "reset" }).ok).toBe(true);
    cluster.runUntil(cluster.clock.nowNs + 30_000_000);
    expect(cluster.board("b").resetCount).toBe(1);
    expect(cluster.board("b").clusterPorts[0]).not.toBe(before);
    expect(cluster.board("b").clusterPorts[0]!.links[0]!.up).toBe(false); // the cable stays as it was
    // A NIC port's link needs real ports: on the loopback (simulation) it is refused, naming why.
    expect(control.apply({ object: "port", name: "a:0", action: "down" })).toEqual({ ok: false, error: "bad-request", message: "a:0: this board has no network ports to take down (run in real time)" });
    expect(control.apply({ object: "board", name: "z", action: "reset" })).toEqual({ ok: false, error: "bad-request", message: 'no board "z"; boards: a, b, c' });
    expect(control.apply({ object: "status" }).message).toMatch(/a \(running, 0 resets\), b \(running, 1 resets\), c \(running, 0 resets\)/);
    cluster.powerOff();
  });
});
