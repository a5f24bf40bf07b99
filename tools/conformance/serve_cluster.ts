// Every board of a cluster file serving iSCSI in this process, in real time, for tools that drive it with real
// initiators (conformance --cluster): one virtual clock and one fabric (host/cluster/cluster.ts), each board on its
// own portals as the cluster file names them (the routing table names them too, so they cannot be picked free), its
// disks in a fresh temporary directory, the release image.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileImage } from "../../host/abi/image_module.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import { Cluster } from "../../host/cluster/cluster.ts";
import { loadClusterFile } from "../../host/cluster/cluster_file.ts";
import { type PortalAddress, TcpBackend } from "../../host/devices/tcp_backend.ts";
import { RealTimePacer } from "../../host/sim/realtime.ts";
import { buildFirmware, FIRMWARE_PATH } from "../build/firmware.ts";
import { iscsiUrls } from "../cli/run.ts";

export interface ServingCluster {
  boards: { name: string; urls: string[] }[]; // in the cluster file's order; iscsi://host:port/iqn/lun per LUN
  log: string[]; // every board's console, "[board/processor] line"
  panics: { board: string; report: PanicReport }[];
  stop(): Promise<void>;
}

/** Boots every board, binds each one's portals, and resolves once every board's transport says it is serving. */
export async function serveCluster(options: { clusterPath: string; timeoutMs?: number }): Promise<ServingCluster> {
  await buildFirmware(["release"]);
  const file = loadClusterFile(options.clusterPath);
  const dataDir = mkdtempSync(join(tmpdir(), `wasm-iop-${file.name}-`));
  const log: string[] = [];
  const panics: ServingCluster["panics"] = [];
  const backends = new Map<string, { tcp: TcpBackend; bound: readonly PortalAddress[] }>();
  for (const board of file.boards) {
    const tcp = new TcpBackend({ portals: board.spec.portals, log: (m) => log.push(`[${board.name} nic] ${m}`) });
    tcp.attach({ opened: () => undefined, received: () => {}, closed: () => {} });
    backends.set(board.name, { tcp, bound: await tcp.start() });
  }
  const serving = new Set<string>();
  let allServing: () => void = () => {};
  const up = new Promise<void>((resolve) => (allServing = resolve));
  const cluster = new Cluster({
    cluster: file,
    firmware: compileImage(readFileSync(FIRMWARE_PATH)),
    boardOptions: (name) => ({
      dataDir: join(dataDir, name),
      network: backends.get(name)!.tcp,
      portals: backends.get(name)!.bound,
      onConsole: (processor, _fd, line) => {
        log.push(`[${name}/${processor}] ${line}`);
        if (line.startsWith("tts: serving")) serving.add(name);
        if (serving.size === file.boards.length) allServing();
      },
      onStop: (_processor, report) => { if (report !== undefined) panics.push({ board: name, report }); },
    }),
  });
  const stop = async () => {
    pacer?.stop();
    for (const { tcp } of backends.values()) await tcp.stop();
    cluster.powerOff();
    rmSync(dataDir, { recursive: true, force: true });
  };
  let pacer: RealTimePacer | undefined;
  if (!cluster.powerOn()) {
    await stop();
    throw new Error(`the cluster did not boot:\n${log.join("\n")}`);
  }
  pacer = new RealTimePacer(cluster.clock);
  pacer.start();
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([up, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the cluster's boards did not all serve in ${timeoutMs} ms:\n${log.join("\n")}`)), timeoutMs);
    })]);
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const boards = file.boards.map((b) => ({ name: b.name, urls: iscsiUrls(b.spec, backends.get(b.name)!.bound[0]!) }));
  return { boards, log, panics, stop };
}
