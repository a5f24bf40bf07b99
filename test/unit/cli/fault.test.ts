// wasm-iop fault against a running board, as a test engineer scripts it: `wasm-iop run` claims its data directory
// with a control socket (replacing a stale one, refusing where another board answers), `fault` pulls and replaces a
// disk and asks for the status through it, a name the board lacks is one line and exit status 2, a board that is not
// running is exit status 1, and the socket is gone once `run` stops on SIGINT. A second `run` refused on a live
// board's data directory leaves the page owners that board recorded (a board file with a cluster section) as they were.
// How: a small board file (host bridged to sp1, one file disk on sp1) in a temp directory, the CLI as child processes.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FIRMWARE_PATH } from "../../../tools/build/firmware.ts";
import { runCli, startCli } from "../../support/cli.ts";
import { fileTempDir } from "../../support/temp_dir.ts";

const tmp = fileTempDir("wasm-iop-fault-");
const boardFile = join(tmp, "board.json");
writeFileSync(boardFile, JSON.stringify({
  name: "fault-cli", seed: 3,
  processors: [
    { name: "host", role: "host", ramMiB: 32, pci: [{ slot: 1, model: "iop-bridge", processor: "sp1" }] },
    { name: "sp1", role: "storage", ramMiB: 16, pci: [{ slot: 1, model: "virtio-scsi", disks: ["sp1-disk0"] }] },
  ],
  disks: [{ name: "sp1-disk0", sizeMiB: 2, blockSize: 512, backend: "file", image: "sp1-disk0.img" }],
}));

/** A socket file nobody listens on, as a board killed with SIGKILL leaves it. */
async function staleSocket(path: string): Promise<void> {
  const holder = spawn(process.execPath, ["-e", `require("node:net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
  const exited = new Promise((resolve) => holder.once("exit", resolve));
  holder.kill("SIGKILL");
  await exited;
  expect(statSync(path).isSocket()).toBe(true);
}

describe("wasm-iop fault", () => {
  it("explains every object and action and the exit status in --help, and is in the command list", async () => {
    const help = await runCli(["fault", "--help"]);
    expect(help.code).toBe(0);
    for (const text of ["disk PROCESSOR:N fail", "disk PROCESSOR:N replace", "controller PROCESSOR:N hang", "controller PROCESSOR:N resume", "status", "--data-dir DIR", "Exit status:", "docs/fault.md"]) {
      expect(help.stdout).toContain(text);
    }
    expect((await runCli(["--help"])).stdout).toMatch(/\n {2}fault +inject a fault into a running board/);
  });

  it("refuses an unknown object or action with one line and exit status 2, without a board", async () => {
    const object = await runCli(["fault", "--data-dir", join(tmp, "none"), "fan", "sp1:0", "stop"]);
    expect(object.code).toBe(2);
    expect(object.stderr).toBe('wasm-iop fault: unknown object "fan"; objects: disk, copy, controller, status\n');
    const action = await runCli(["fault", "--data-dir", join(tmp, "none"), "disk", "sp1:0", "explode"]);
    expect(action.code).toBe(2);
    expect(action.stderr).toBe('wasm-iop fault: unknown disk action "explode"; disk actions: fail, replace, restore\n');
  });

  it("pulls and replaces a disk and reports status on a running board, which removes its socket on SIGINT", async () => {
    const dataDir = join(tmp, "data");
    const socketPath = join(dataDir, "control.sock");
    const fault = (...args: string[]) => runCli(["fault", "--data-dir", dataDir, ...args]);
    mkdirSync(dataDir, { recursive: true });
    await staleSocket(socketPath);
    const stale = await fault("status");
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain(`no board is running on ${dataDir}: nobody answers on ${socketPath}`);

    const run = startCli(["run", "--board", boardFile, "--data-dir", dataDir, "--portal", "127.0.0.1:0", "--firmware", FIRMWARE_PATH]);
    try {
      await run.waitFor(/running; Ctrl-C stops the board/);
      await run.waitFor(/\[sp1\] rta: 1 controllers, 1 disks/);
      const second = await runCli(["run", "--board", boardFile, "--data-dir", dataDir, "--portal", "127.0.0.1:0", "--firmware", FIRMWARE_PATH]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`wasm-iop run: another board is running on this data directory (its control socket ${socketPath} answers)`);

      const pulled = await fault("disk", "sp1:0", "fail");
      expect(pulled.stderr).toBe("");
      expect(pulled.code).toBe(0);
      expect(pulled.stdout).toMatch(/^disk sp1:0 \(sp1-disk0\) pulled at \d+\.\d{6} s\n$/);
      const badIndex = await fault("disk", "sp1:1", "fail");
      expect(badIndex.code).toBe(2);
      expect(badIndex.stderr).toBe("wasm-iop fault: no disk sp1:1: processor sp1 has 1 disk: sp1:0 (sp1-disk0)\n");
      const badProcessor = await fault("controller", "sp7:0", "hang");
      expect(badProcessor.code).toBe(2);
      expect(badProcessor.stderr).toBe('wasm-iop fault: no processor "sp7" on board fault-cli; processors: host, sp1\n');

      const replaced = await fault("disk", "sp1:0", "replace");
      expect(replaced.code).toBe(0);
      expect(replaced.stdout).toContain(`replaced by a blank disk at `);
      expect(statSync(join(dataDir, "sp1-disk0.img.replaced-1")).size).toBe(2 * 1024 * 1024);
      expect(statSync(join(dataDir, "sp1-disk0.img")).size).toBe(2 * 1024 * 1024);

      const status = await fault("status");
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/^board fault-cli at \d+\.\d{6} s\nno volume reported yet\n$/);
      const json = await fault("--json", "status");
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, status: { board: "fault-cli", volumes: [] } });
    } finally {
      run.child.kill("SIGINT");
    }
    const { code, stdout } = await run.result;
    expect(code).toBe(0);
    expect(stdout).toMatch(/SIGINT: stopping\nboard fault-cli stopped after/);
    expect(existsSync(socketPath)).toBe(false); // removed before the process exited
    const gone = await fault("status");
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`wasm-iop fault: no board is running on ${dataDir}: no control socket ${socketPath} (start one with wasm-iop run --data-dir ...)\n`);
  });

  it("refuses a second run on a live board's data directory before it records its page owners there", async () => {
    // The same board with a cluster section (its disk in 4 pages, round robin from a); the second board file differs
    // only in the table's version, which the check does not compare, so only the control socket refuses it.
    const clustered = (version: number) => {
      const file = join(tmp, `clustered-${version}.json`);
      writeFileSync(file, JSON.stringify({
        ...JSON.parse(readFileSync(boardFile, "utf8")),
        cluster: { version, board: "a", boards: [{ id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 21600 }] }, { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: 21601 }] }],
          volumes: [{ volume: "sp1-disk0", pageBlocks: 1024, pageCount: 4, owners: { roundRobinFrom: "a" } }] },
      }));
      return file;
    };
    const dataDir = join(tmp, "clustered");
    const record = join(dataDir, "page-owners.json");
    const run = startCli(["run", "--board", clustered(1), "--data-dir", dataDir, "--portal", "127.0.0.1:0", "--firmware", FIRMWARE_PATH]);
    try {
      await run.waitFor(/running; Ctrl-C stops the board/);
      expect(JSON.parse(readFileSync(record, "utf8")).version).toBe(1);
      const second = await runCli(["run", "--board", clustered(2), "--data-dir", dataDir, "--portal", "127.0.0.1:0", "--firmware", FIRMWARE_PATH]);
      expect(second.code, second.stderr).toBe(1);
      expect(second.stderr).toContain("another board is running on this data directory");
      expect(JSON.parse(readFileSync(record, "utf8")).version).toBe(1);
    } finally {
      run.child.kill("SIGINT");
    }
    expect((await run.result).code).toBe(0);
  });
});
