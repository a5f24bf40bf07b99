// Debian's nbdkit with its file plugin, the reference `wasm-iop bench --nbd` measures the board's NBD server against:
// started on a sparse backing file the size of the board's LUN, on 127.0.0.1, in the foreground, and stopped with
// SIGTERM (its clean shutdown).
import { type ChildProcess, spawn } from "node:child_process";
import { truncateSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";

export interface NbdkitOptions {
  dir: string; // where the backing file goes
  sizeBytes: number;
  port: number;
  log: (line: string) => void;
}

const READY_TIMEOUT_MS = 10_000;

export class Nbdkit {
  private exited = false;

  private constructor(private readonly child: ChildProcess, readonly url: string) {
    child.on("exit", () => (this.exited = true));
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(options: NbdkitOptions): Promise<Nbdkit> {
    const image = join(options.dir, "nbdkit-disk0.img");
    writeFileSync(image, new Uint8Array(0));
    truncateSync(image, options.sizeBytes); // sparse, as the board's file disks start
    // -f: foreground; -i/-p: the address; --exit-with-parent: never outlives the bench. The file plugin's default
    // cache mode goes through the page cache, as the board's file disks do.
    const child = spawn("nbdkit", ["-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", String(options.port), "file", image], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n")) if (line.trim() !== "") options.log(line);
      });
    }
    const kit = new Nbdkit(child, `nbd://127.0.0.1:${options.port}/`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nbdkit did not listen on 127.0.0.1:${options.port} within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      child.once("error", (error) => { clearTimeout(timer); reject(error); });
      child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`nbdkit exited with code ${code} while starting`)); });
      const probe = () => {
        const socket = connect(options.port, "127.0.0.1");
        socket.once("connect", () => { socket.destroy(); clearTimeout(timer); resolve(); });
        socket.once("error", () => { socket.destroy(); if (!kit.exited) setTimeout(probe, 50); });
      };
      probe();
    });
    return kit;
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
