// Debian's tgt as the reference target: tgtd in the foreground on its own loopback port, with its own management
// port (so its control socket, /var/run/tgtd.ipc_abstract_namespace.<port>, cannot collide with a system tgtd),
// one target with one disk LUN over a sparse file of the board's disk size. Shut down through tgtadm the way
// tgt-admin does it (system offline, the target deleted, then "--op delete --mode system", which tgtd refuses while a
// target exists), and terminated only if that fails.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const TGT_TARGET_NAME = "iqn.2026-11.org.wasm-iop:bench-tgt";
export const TGT_LUN = 1; // tgt's LUN 0 is its controller; the disk is LUN 1

export interface TgtOptions {
  dir: string; // where the backing file goes
  sizeBytes: number;
  port: number; // the iSCSI portal's port on 127.0.0.1
  controlPort: number; // tgtd -C: its management channel
  log: (line: string) => void;
}

export class Tgt {
  private exited = false;

  private constructor(private readonly child: ChildProcess, private readonly options: TgtOptions, readonly url: string) {
    child.on("exit", () => (this.exited = true));
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(options: TgtOptions): Promise<Tgt> {
    const image = join(options.dir, "tgt-disk0.img");
    writeFileSync(image, new Uint8Array(0));
    truncateSync(image, options.sizeBytes); // sparse, as the board's file disks start
    const child = spawn("tgtd", ["-f", "-C", String(options.controlPort), "--iscsi", `portal=127.0.0.1:${options.port}`], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own process group: a Ctrl-C reaches the bench, which shuts tgtd down through tgtadm
    });
    const failed = new Promise<never>((_, reject) => {
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`tgtd exited with code ${code} while starting`)));
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n")) if (line.trim() !== "") options.log(line);
      });
    }
    const tgt = new Tgt(child, options, `iscsi://127.0.0.1:${options.port}/${TGT_TARGET_NAME}/${TGT_LUN}`);
    try {
      await Promise.race([failed, tgt.configure(image)]);
    } catch (error) {
      await tgt.stop();
      throw error;
    }
    failed.catch(() => undefined); // an exit after start is seen by stop()
    return tgt;
  }

  // tgtadm may be refused while tgtd is still opening its control socket: retried for up to 5 s.
  private async configure(image: string): Promise<void> {
    const steps = [
      ["--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", "1", "-T", TGT_TARGET_NAME],
      ["--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", String(TGT_LUN), "-b", image],
      ["--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"],
    ];
    for (let attempt = 0; ; attempt += 1) { // bounded: gives up after 50 attempts
      try {
        await this.admin(steps[0]!);
        break;
      } catch (error) {
        if (attempt >= 50 || this.exited) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    for (const step of steps.slice(1)) await this.admin(step);
  }

  private async admin(args: string[]): Promise<void> {
    await run("tgtadm", ["-C", String(this.options.controlPort), ...args]);
  }

  /** Asks tgtd to exit through tgtadm; SIGTERM after 5 s, SIGKILL after 10 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    const term = setTimeout(() => this.child.kill("SIGTERM"), 5_000);
    const kill = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    try {
      await this.admin(["--op", "update", "--mode", "sys", "--name", "State", "-v", "offline"]);
      await this.admin(["--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", "1", "--force"]);
      await this.admin(["--op", "delete", "--mode", "system"]);
    } catch (error) {
      this.options.log(`tgtadm --op delete --mode system: ${(error as Error).message.trim()}; terminating tgtd`);
      this.child.kill("SIGTERM");
    }
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }
}
