// wasm-iop run --cluster FILE: every board of a cluster file in this process, on one virtual clock, their cluster
// ports on one fabric (docs/cluster.md, "Running a cluster"). Each board serves iSCSI on its own portals (the cluster
// file's) and keeps its disks under var/<cluster>/<board> (or --data-dir DIR/<board>).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { compileImage } from "../../host/abi/image_module.ts";
import { BoardFileError } from "../../host/board/load.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import { Cluster } from "../../host/cluster/cluster.ts";
import { type ClusterFileBoard, loadClusterFile } from "../../host/cluster/cluster_file.ts";
import { checkPageOwners } from "../../host/cluster/page_owners.ts";
import { type PortalAddress, TcpBackend } from "../../host/devices/tcp_backend.ts";
import { buildFirmware, FIRMWARE_PATH } from "../build/firmware.ts";
import { iscsiUrls } from "./run.ts";
import { StopSignal } from "./stop_signal.ts";
import { ClusterControl, parseClusterControlRequest } from "../../host/cluster/cluster_control.ts";
import { ControlSocket, ControlSocketError } from "./control_socket.ts";
import { mkdirSync } from "node:fs";

export interface RunClusterOptions {
  file: string;
  forSeconds: number | undefined;
  firmware: string | undefined;
  dataDir: string | undefined;
  verbose: boolean;
}

export async function runCluster(options: RunClusterOptions): Promise<number> {
  const out = (text: string) => process.stdout.write(text + "\n");
  let file;
  let recordPageOwners: () => void;
  try {
    file = loadClusterFile(options.file);
    const dataDirOf = (b: ClusterFileBoard) => options.dataDir === undefined ? b.dataDir : resolve(options.dataDir, b.name);
    recordPageOwners = checkPageOwners(file.boards.map((b) => ({ spec: b.spec, dataDir: dataDirOf(b), file: file!.file, fieldPrefix: "" })));
  } catch (error) {
    if (!(error instanceof BoardFileError)) throw error;
    process.stderr.write(`wasm-iop run: ${error.message}\n`);
    return 1;
  }
  const stop = new StopSignal();
  if (options.firmware === undefined) await buildFirmware(["release"]);
  const firmware = compileImage(new Uint8Array(readFileSync(resolve(options.firmware ?? FIRMWARE_PATH))));
  // Real time: one TCP backend per board, bound before the boards are built so their ROMs name the real ports.
  const backends = new Map<string, { tcp: TcpBackend; bound: readonly PortalAddress[] }>();
  if (options.forSeconds === undefined) {
    for (const board of file.boards) {
      const tcp = new TcpBackend({ portals: board.spec.portals, log: (m) => process.stderr.write(`[${board.name} nic] ${m}\n`) });
      tcp.attach({ opened: () => undefined, received: () => {}, closed: () => {} });
      backends.set(board.name, { tcp, bound: await tcp.start() });
    }
  }
  let failed: PanicReport | undefined;
  const cluster = new Cluster({
    cluster: file,
    firmware,
    log: options.verbose ? (m) => out(m) : undefined,
    boardOptions: (name) => {
      const backend = backends.get(name);
      const spec = file.boards.find((b) => b.name === name)!;
      return {
        dataDir: options.dataDir === undefined ? undefined : resolve(options.dataDir, name),
        network: backend?.tcp,
        portals: backend === undefined ? undefined : backend.bound,
        verbose: options.verbose,
        onConsole: (processor, fd, line) => {
          (fd === 1 ? process.stdout : process.stderr).write(`[${name}${processor === "board" ? "" : `/${processor}`}] ${line}\n`);
          // Every NIC port's URLs, first port first: each is another path to the same disks (docs/cluster.md, "Several NIC ports").
          if (line.startsWith("tts: serving") && backend !== undefined) for (const portal of backend.bound) for (const url of iscsiUrls(spec.spec, portal)) out(`${name}: ${url}`);
        },
        onStop: (processor, report) => {
          if (report === undefined) return;
          process.stderr.write(`PANIC on board ${name} processor ${processor}: ${report.kind}, task ${report.task}, code ${report.code}: ${report.message}\n`);
          failed ??= report;
        },
      };
    },
  });
  // The cluster's control socket (wasm-iop fault --data-dir DIR link b:0 down, board b reset, status), in its data
  // directory: --data-dir, else var/<cluster>.
  const controlDir = resolve(options.dataDir ?? `var/${file.name}`);
  mkdirSync(controlDir, { recursive: true });
  const control = new ClusterControl(cluster, new Map(file.boards.map((b) => [b.name, b.id])));
  let socket: ControlSocket;
  try {
    socket = await ControlSocket.open(controlDir, (request, reply) => {
      const checked = parseClusterControlRequest(request);
      if (typeof checked === "string") reply({ ok: false, error: "bad-request", message: checked });
      else control.submit(checked, reply);
    });
  } catch (error) {
    if (!(error instanceof ControlSocketError)) throw error;
    process.stderr.write(`wasm-iop run: ${error.message}\n`);
    return 1;
  }
  recordPageOwners(); // after the cluster's socket: a second cluster process refused above never writes
  out(`cluster ${file.name} (${file.file}): ${file.boards.map((b) => `${b.name} (id ${b.id})`).join(", ")}, one clock, one fabric; control socket ${socket.path}`);
  const booted = cluster.powerOn();
  const finish = async (code: number): Promise<number> => {
    await socket.close();
    for (const { tcp } of backends.values()) await tcp.stop();
    cluster.powerOff();
    const f = cluster.fabric.stats;
    out(`cluster ${file.name} stopped after ${(cluster.clock.nowNs / 1e9).toFixed(3)} s of board time; fabric: ${f.sent} packets sent, ${f.delivered} delivered, ${f.lost} lost`);
    return code;
  };
  if (!booted) return finish(1);
  if (options.forSeconds !== undefined) {
    const endNs = Math.round(options.forSeconds * 1e9);
    while (cluster.clock.nowNs < endNs && failed === undefined && stop.received === undefined) {
      await new Promise((next) => setImmediate(next));
      cluster.runUntil(Math.min(endNs, cluster.clock.nowNs + 10_000_000));
    }
    return finish(failed === undefined ? 0 : 1);
  }
  for (const [name, { bound }] of backends) out(`${name}: listening on ${bound.map((a) => `${a.host}:${a.port}`).join(", ")}`);
  return finish(await stop.serve(cluster.clock, "cluster", () => failed !== undefined, out));
}

