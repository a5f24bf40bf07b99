// A cluster file run as one board per process (`run --cluster FILE --board NAME`) for interop tests: a copy of the
// repository's cluster file whose portals and fabric ports are free loopback ports, and a starter that keeps every
// process it started so the test's afterAll can kill them.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../host/root.ts";
import { startCli, type StartedCli } from "./cli.ts";
import { freePorts } from "./free_ports.ts";

interface ClusterBoard { name: string; file: string; portals: { port: number }[]; fabric: { port: number } }

export interface ClusterProcesses {
  /** Each board's first portal port, in the cluster file's board order. */
  portals: number[];
  /** The data directory every board's process shares (each board's disks under DIR/NAME/). */
  dataDir: string;
  /** Starts board `name` in its own process on the shared data directory. */
  start(name: string): StartedCli;
}

/** `source` is relative to the repository; `boardFile` maps a board to its board file (absolute). */
export async function clusterProcesses(
  source: string, tmp: string, started: StartedCli[], boardFile: (board: ClusterBoard) => string,
): Promise<ClusterProcesses> {
  const cluster = JSON.parse(readFileSync(join(ROOT, source), "utf8")) as { boards: ClusterBoard[] };
  const n = cluster.boards.length;
  const ports = await freePorts(2 * n);
  cluster.boards.forEach((b, i) => {
    b.file = boardFile(b);
    b.portals[0]!.port = ports[i]!;
    b.fabric.port = ports[n + i]!;
  });
  const file = join(tmp, "cluster.json");
  writeFileSync(file, JSON.stringify(cluster));
  const dataDir = join(tmp, "data");
  return {
    portals: ports.slice(0, n),
    dataDir,
    start(name) {
      const s = startCli(["run", "--cluster", file, "--board", name, "--data-dir", dataDir]);
      started.push(s);
      return s;
    },
  };
}
