// wasm-iop run --cluster FILE --board NAME: one board of a cluster file in this process, its cluster port's fabric
// carried over TCP to the other boards' processes (host/fabric/tcp_fabric.ts; docs/cluster.md, "Across processes").
// Each board is started the same way, in any order; a board whose peers are not up yet serves its own pages and says
// hello to the others until they answer. Real time only: the processes' clocks are paced to wall time.
import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { compileImage } from "../../host/abi/image_module.ts";
import { Board } from "../../host/board/board.ts";
import { BoardControl, controlNotReady, submitControlRequest } from "../../host/board/control.ts";
import { BoardFileError } from "../../host/board/load.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import { type ClusterControlRequest, nicPortLink, parseClusterControlRequest } from "../../host/cluster/cluster_control.ts";
import { loadClusterFile, requireFabricAddresses } from "../../host/cluster/cluster_file.ts";
import { checkPageOwners } from "../../host/cluster/page_owners.ts";
import { TcpBackend } from "../../host/devices/tcp_backend.ts";
import { TcpFabric } from "../../host/fabric/tcp_fabric.ts";
import { VirtualClock } from "../../host/sim/clock.ts";
import { buildFirmware, FIRMWARE_PATH } from "../build/firmware.ts";
import { ControlSocket, ControlSocketError } from "./control_socket.ts";
import { iscsiUrls } from "./run.ts";
import { StopSignal } from "./stop_signal.ts";

export interface RunClusterBoardOptions {
  file: string;
  board: string;
  firmware: string | undefined;
  dataDir: string | undefined;
  verbose: boolean;
}

export async function runClusterBoard(options: RunClusterBoardOptions): Promise<number> {
  const out = (text: string) => process.stdout.write(text + "\n");
  const fail = (message: string) => {
    process.stderr.write(`wasm-iop run: ${message}\n`);
    return 1;
  };
  let file;
  let addresses;
  try {
    file = loadClusterFile(options.file);
    addresses = requireFabricAddresses(file);
  } catch (error) {
    if (!(error instanceof BoardFileError)) throw error;
    return fail(error.message);
  }
  const index = file.boards.findIndex((b) => b.name === options.board);
  if (index < 0) return fail(`--board: expected the name of a board of ${file.file} (${file.boards.map((b) => b.name).join(", ")}), got "${options.board}"`);
  const entry = file.boards[index]!;
  const dataDir = options.dataDir === undefined ? entry.dataDir : resolve(options.dataDir, entry.name);
  let recordPageOwners: () => void;
  try {
    recordPageOwners = checkPageOwners([{ spec: entry.spec, dataDir, file: file.file, fieldPrefix: "" }]);
  } catch (error) {
    if (!(error instanceof BoardFileError)) throw error;
    return fail(error.message);
  }
  const stop = new StopSignal();
  if (options.firmware === undefined) await buildFirmware(["release"]);
  const firmware = compileImage(new Uint8Array(readFileSync(resolve(options.firmware ?? FIRMWARE_PATH))));
  const clock = new VirtualClock();
  const log = (m: string) => process.stderr.write(`[${entry.name} fabric] ${m}\n`);
  const fabric = new TcpFabric({
    clock,
    address: entry.id,
    listen: addresses[index]!,
    peers: new Map(file.boards.flatMap((b, i) => (i === index ? [] : [[b.id, addresses[i]!] as const]))),
    log: options.verbose ? log : (m) => { if (m.includes("closed") || m.includes("lost")) log(m); },
  });
  try {
    await fabric.start();
  } catch (error) {
    return fail(`${file.file}: boards[${index}].fabric: cannot listen on ${addresses[index]!.host}:${addresses[index]!.port}: ${(error as Error).message}`);
  }
  const tcp = new TcpBackend({ portals: entry.spec.portals, log: (m) => process.stderr.write(`[${entry.name} nic] ${m}\n`) });
  tcp.attach({ opened: () => undefined, received: () => {}, closed: () => {} });
  let bound;
  try {
    bound = await tcp.start();
  } catch (error) {
    await fabric.stop();
    return fail(`${file.file}: boards[${index}].portals: ${(error as Error).message}`);
  }
  let failed: PanicReport | undefined;
  mkdirSync(dataDir, { recursive: true });
  // This board's control commands (`wasm-iop fault --data-dir DIR`: disks, copies, controllers, status), as `run`
  // takes them (tools/cli/run.ts); the socket claims the data directory before a disk image is opened.
  let control: BoardControl | undefined;
  let socket: ControlSocket;
  try {
    socket = await ControlSocket.open(dataDir, (request, reply) => {
      // A cluster's link and board faults, for this process's own board (the others are other processes').
      const object = (request as { object?: unknown } | null)?.object;
      if (object === "link" || object === "port" || object === "board") {
        const cluster = parseClusterControlRequest(request);
        if (typeof cluster === "string") return reply({ ok: false, error: "bad-request", message: cluster });
        if (control === undefined) return reply(controlNotReady(entry.name));
        clock.afterOutside(0, () => reply(ownFault(cluster as Exclude<ClusterControlRequest, { object: "status" }>)));
        return;
      }
      submitControlRequest(control, entry.name, request, reply);
    });
  } catch (error) {
    await tcp.stop();
    await fabric.stop();
    if (!(error instanceof ControlSocketError)) throw error;
    return fail(error.message);
  }
  recordPageOwners(); // the directory is ours now: a second board refused above never writes here
  const board = new Board({
    spec: entry.spec,
    firmware,
    dataDir,
    seed: entry.seed,
    clock,
    fabric,
    network: tcp,
    portals: bound,
    verbose: options.verbose,
    onConsole: (processor, fd, line) => {
      (fd === 1 ? process.stdout : process.stderr).write(`[${entry.name}${processor === "board" ? "" : `/${processor}`}] ${line}\n`);
      control?.observeConsole(processor, line);
      if (line.startsWith("tts: serving")) for (const portal of bound) for (const url of iscsiUrls(entry.spec, portal)) out(`${entry.name}: ${url}`);
    },
    onStop: (processor, report) => {
      if (report === undefined) return;
      process.stderr.write(`PANIC on board ${entry.name} processor ${processor}: ${report.kind}, task ${report.task}, code ${report.code}: ${report.message}\n`);
      failed ??= report;
    },
  });
  control = new BoardControl(board);
  // `wasm-iop fault link NAME:N down|up` and `board NAME reset|off|on` for this board: its port's link of the TCP
  // fabric (down: nothing leaves, what arrives is lost; its peers hear nothing and give their requests up after
  // TCP_FABRIC_TIMEOUT_NS), or the board itself. Another board's name is refused with where to send it.
  const ownFault = (request: Exclude<ClusterControlRequest, { object: "status" }>): { ok: boolean; error?: string; message: string } => {
    const name = request.object === "board" ? request.name : request.name.slice(0, request.name.indexOf(":"));
    if (name !== entry.name) {
      return { ok: false, error: "bad-request", message: `board ${JSON.stringify(name)} is not this process's (board ${entry.name}): send it to the data directory of the process run with --board ${name}` };
    }
    if (request.object === "link") {
      const link = Number(request.name.slice(request.name.indexOf(":") + 1));
      fabric.setLink(link, request.action === "up");
      return { ok: true, message: `board ${name} link ${link} ${request.action}` };
    }
    if (request.object === "port") return nicPortLink(tcp, request);
    switch (request.action) {
      case "reset": return board.reset() ? { ok: true, message: `board ${name} reset` } : { ok: false, error: "failed", message: `board ${name} did not boot after its reset` };
      case "off":
        board.powerOff();
        return { ok: true, message: `board ${name} powered off` };
      default:
        return board.powerOn() ? { ok: true, message: `board ${name} powered on` } : { ok: false, error: "failed", message: `board ${name} did not boot` };
    }
  };
  out(`cluster ${file.name} (${file.file}): board ${entry.name} (id ${entry.id}) alone, fabric over TCP at ${addresses[index]!.host}:${addresses[index]!.port} to ${file.boards.filter((_, i) => i !== index).map((b, i) => `${b.name}`).join(", ")}`);
  const finish = async (code: number): Promise<number> => {
    await socket.close(); // no command may arrive while the board powers off
    await tcp.stop();
    await fabric.stop();
    const port = board.clusterPorts[0]?.stats; // before power-off lets go of the port
    board.powerOff();
    const s = fabric.stats;
    out(`board ${entry.name} stopped after ${(clock.nowNs / 1e9).toFixed(3)} s of board time; fabric: ${s.sent} packets sent, ${s.delivered} delivered, ${s.refused} refused (no connection), ${s.wireErrors} connections closed for bad frames`);
    if (port !== undefined) out(`board ${entry.name} cluster port: ${port.timeouts} requests unanswered in time, ${port.lostWithPeer} lost with their board's connection, ${port.fenced} interrupts fenced, ${port.duplicates} duplicates`);
    return code;
  };
  if (!board.powerOn()) return finish(1);
  out(`${entry.name}: listening on ${bound.map((a) => `${a.host}:${a.port}`).join(", ")}`);
  return finish(await stop.serve(clock, "board", () => failed !== undefined, out));
}
