// wasm-iop run: boots a board and keeps it running until SIGINT or SIGTERM (or for a stretch of board time).
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { compileImage } from "../../host/abi/image_module.ts";
import { Board } from "../../host/board/board.ts";
import { BoardControl, submitControlRequest } from "../../host/board/control.ts";
import { checkPageOwners } from "../../host/cluster/page_owners.ts";
import { type BoardSpec, DEFAULT_BOARD_PATH, loadBoardFile, NBD_PORTAL_DEFAULT, targetLuns } from "../../host/board/load.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import { Trace } from "../../host/sim/trace.ts";
import { TcpBackend, type PortalAddress } from "../../host/devices/tcp_backend.ts";
import { FlashBoot, FlashBootError } from "../../host/boot/flash_boot.ts";
import { buildFirmware, FIRMWARE_PATH, packageVersion } from "../build/firmware.ts";
import { PcapWriter } from "../replay/pcap.ts";
import { Recorder } from "../replay/recorder.ts";
import { sealRecording } from "../replay/seal.ts";
import { type Command, UsageError } from "./command.ts";
import { ControlSocket, ControlSocketError } from "./control_socket.ts";
import { runCluster } from "./run_cluster.ts";
import { runClusterBoard } from "./run_cluster_board.ts";
import { StopSignal } from "./stop_signal.ts";

const help = `usage: wasm-iop run [options]

Boots a board in the emulator: every I/O processor loads the firmware image, prints its boot banner, and runs
until SIGINT or SIGTERM (then the board powers off cleanly and the command exits 0).

options:
  --board FILE        board description (default: boards/iop-dev.json)
  --cluster FILE      run every board of a cluster file (clusters/*.json) in this process, on one virtual clock,
                      their cluster ports on one fabric; each board serves its own portals and prints its URLs
                      as NAME: iscsi://… (docs/cluster.md). Goes with --for, --firmware, --data-dir (DIR/<board>,
                      default var/<cluster>/<board>) and --verbose only. With --board NAME: only that board, in
                      this process, its cluster port's fabric carried over TCP to the other boards' processes (each
                      started the same way) at the cluster file's "fabric" addresses (docs/cluster.md, "Across
                      processes"); real time only (no --for); it takes \`wasm-iop fault\` for its board on
                      DIR/<board>/control.sock
  --portal HOST:PORT  where the iSCSI target listens (default: the board's first portal, else 127.0.0.1:3260;
                      port 0 picks a free port and prints it). Once serving, one iscsi://HOST:PORT/IQN/LUN line
                      is printed per LUN.
  --nbd-portal HOST:PORT
                      where the NBD server listens, on a board with an "nbd" section (default: its portal,
                      else 127.0.0.1:10809; port 0 picks a free port, as it does by default when --portal has
                      port 0). Once serving, one nbd://HOST:PORT/EXPORT
                      line is printed per export (docs/nbd.md).
  --data-dir DIR      where disk images and the NVRAM's image (nvram.bin: persistent reservations kept with
                      APTPL) live (default: ./var/<board name>). The running board takes control commands
                      (\`wasm-iop fault\`) on DIR/control.sock, removed when it stops; one board per data
                      directory: run refuses to start where another board answers on that socket.
  --firmware FILE     run this .wasm directly, bypassing the board's flash (default: boot from the flash when
                      the board has one, else build/firmware.wasm, rebuilt first if stale). A blank flash is
                      populated from the current build the first time, signed with the board's populateKey.
  --seed N            override the board's seed (everything random on the board derives from it)
  --trace FILE        write the bus-transaction trace as JSON lines, replayable (docs/trace-format.md; a name
                      ending in .gz is compressed); \`wasm-iop trace replay FILE\` replays it under wasmtime
  --for SECONDS       simulation mode: run this much board time as fast as possible, then exit
  --reset-on-panic    when a processor panics, reset the board instead of exiting non-zero
  --record FILE       record everything that enters the board (connections, received bytes with their board
                      time, control commands, resets) and what it sends, for \`wasm-iop replay\` (docs/replay.md).
                      At a clean shutdown the recording is replayed once to check it and to add its trace hash
  --record-disks      with --record: copy the disks' initial contents into the recording (only their hash
                      otherwise; a replay then needs blank disks or the images given with --disks)
  --no-seal           with --record: skip the checking replay at shutdown (no trace hash in the recording)
  --pcap FILE         write the NIC's traffic as a pcap file for Wireshark/tshark (synthesized TCP/IP headers,
                      board-time timestamps, the target on port 3260)
  --verbose           more from the firmware and the board
  -h, --help          this help

Exit status: 0 after a clean shutdown; 1 when a processor panicked (without --reset-on-panic), the board file
is bad, or another board is running on the data directory; 2 for a usage error.`;

function parsePortal(text: string, option = "--portal"): { host: string; port: number } {
  const match = /^(.+):(\d+)$/.exec(text);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || port > 65535) throw new UsageError(`${option}: expected HOST:PORT with a port from 0 to 65535, got "${text}"`);
  return { host: match[1]!, port };
}

/** One URL per LUN of every target: LUN n of a target is the n-th volume it lists (every top-level volume by default). */
export function iscsiUrls(spec: BoardSpec, portal: PortalAddress): string[] {
  const host = portal.host.includes(":") ? `[${portal.host}]` : portal.host;
  return spec.targets.flatMap((target) => targetLuns(spec, target).map((_, lun) => `iscsi://${host}:${portal.port}/${target.name}/${lun}`));
}

/** One URL per NBD export (the NBD URI format: nbd://HOST:PORT/EXPORT, the name percent-encoded). */
export function nbdUrls(spec: BoardSpec, portal: PortalAddress): string[] {
  const host = portal.host.includes(":") ? `[${portal.host}]` : portal.host;
  return (spec.nbd?.exports ?? []).map((entry) => `nbd://${host}:${portal.port}/${encodeURIComponent(entry.name)}`);
}

function describePanic(report: PanicReport): string {
  return `PANIC on processor ${report.processor} at ${(report.timeNs / 1e9).toFixed(6)} s: ${report.kind}, task ${report.task}, code ${report.code}: ${report.message}`;
}

export const runCommand: Command = {
  name: "run",
  help,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        board: { type: "string" },
        cluster: { type: "string" },
        portal: { type: "string" },
        "nbd-portal": { type: "string" },
        "data-dir": { type: "string" },
        firmware: { type: "string" },
        seed: { type: "string" },
        trace: { type: "string" },
        for: { type: "string" },
        "reset-on-panic": { type: "boolean", default: false },
        verbose: { type: "boolean", default: false },
        record: { type: "string" },
        "record-disks": { type: "boolean", default: false },
        "no-seal": { type: "boolean", default: false },
        pcap: { type: "string" },
      },
      strict: true,
    });
    if (values.cluster !== undefined && values.board !== undefined) {
      const alone = ["portal", "nbd-portal", "seed", "trace", "record", "pcap", "for"].filter((o) => values[o as keyof typeof values] !== undefined);
      if (alone.length > 0 || values["reset-on-panic"] || values["record-disks"] || values["no-seal"]) {
        throw new UsageError(`--cluster with --board goes with --firmware, --data-dir and --verbose only${alone.length > 0 ? ` (got --${alone.join(", --")})` : ""}`);
      }
      return runClusterBoard({ file: values.cluster, board: values.board, firmware: values.firmware, dataDir: values["data-dir"], verbose: values.verbose });
    }
    if (values.cluster !== undefined) {
      const alone = ["board", "portal", "nbd-portal", "seed", "trace", "record", "pcap"].filter((o) => values[o as keyof typeof values] !== undefined);
      if (alone.length > 0 || values["reset-on-panic"] || values["record-disks"] || values["no-seal"]) {
        throw new UsageError(`--cluster goes with --for, --firmware, --data-dir and --verbose only${alone.length > 0 ? ` (got --${alone.join(", --")})` : ""}`);
      }
      const forCluster = values.for === undefined ? undefined : Number(values.for);
      if (forCluster !== undefined && !(forCluster > 0)) throw new UsageError(`--for: expected a number of seconds > 0, got "${values.for}"`);
      return runCluster({ file: values.cluster, forSeconds: forCluster, firmware: values.firmware, dataDir: values["data-dir"], verbose: values.verbose });
    }
    const spec = loadBoardFile(values.board ?? DEFAULT_BOARD_PATH);
    const portal = values.portal !== undefined ? parsePortal(values.portal) : (spec.portals[0] ?? { host: "127.0.0.1", port: 3260 });
    // --portal with port 0 asks for free ports: the NBD portal then takes one too, unless --nbd-portal says otherwise
    // (so boards started by scripts and tests side by side never contend for the board file's NBD port).
    const nbdDefault = portal.port === 0 ? { host: portal.host, port: 0 } : (spec.nbd?.portal ?? NBD_PORTAL_DEFAULT);
    const nbdPortal = spec.nbd === undefined ? undefined
      : values["nbd-portal"] !== undefined ? parsePortal(values["nbd-portal"], "--nbd-portal") : nbdDefault;
    const seed = values.seed === undefined ? undefined : Number(values.seed);
    if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0)) throw new UsageError(`--seed: expected an integer >= 0, got "${values.seed}"`);
    const forSeconds = values.for === undefined ? undefined : Number(values.for);
    if (forSeconds !== undefined && !(forSeconds > 0)) throw new UsageError(`--for: expected a number of seconds > 0, got "${values.for}"`);
    if (values["record-disks"] && values.record === undefined) throw new UsageError("--record-disks goes with --record FILE");
    const dataDir = resolve(values["data-dir"] ?? join("var", spec.name));
    const recordPageOwners = checkPageOwners([{ spec, dataDir, file: spec.file, fieldPrefix: "cluster." }]); // a cluster section's pages: not moved
    mkdirSync(dataDir, { recursive: true });
    // The control socket first: it claims the data directory before a disk image or the flash is opened. Commands
    // are answered "still booting" until the board is built, then go to its control (host/board/control.ts).
    let control: BoardControl | undefined;
    let socket: ControlSocket;
    try {
      socket = await ControlSocket.open(dataDir, (request, reply) => submitControlRequest(control, spec.name, request, reply));
    } catch (error) {
      if (!(error instanceof ControlSocketError)) throw error;
      process.stderr.write(`wasm-iop run: ${error.message}\n`);
      return 1;
    }
    recordPageOwners(); // the directory is ours now: a second board refused above never writes here

    const out = (text: string) => process.stdout.write(text + "\n");
    // Signals are taken from the start: a Ctrl-C during boot still stops the board cleanly, once it is up.
    const stop = new StopSignal();
    let firmware: WebAssembly.Module | FlashBoot;
    let firmwareBytes: Uint8Array | undefined; // the image that runs, for a recording's hash and its checking replay
    if (values.firmware !== undefined) {
      firmwareBytes = readFileSync(resolve(values.firmware));
      firmware = compileImage(new Uint8Array(firmwareBytes));
      if (spec.flash !== undefined) out(`running ${values.firmware} directly; the board's flash is not used`);
    } else if (spec.flash !== undefined) {
      const flashBoot = new FlashBoot(spec.flash, dataDir);
      if (flashBoot.isBlank()) {
        await buildFirmware(["release"]);
        flashBoot.populate(FIRMWARE_PATH, packageVersion(), null);
      }
      const select = flashBoot.select.bind(flashBoot);
      flashBoot.select = () => {
        const selection = select();
        firmwareBytes ??= selection.payload;
        return selection;
      };
      firmware = flashBoot;
    } else {
      await buildFirmware(["release"]);
      firmwareBytes = readFileSync(FIRMWARE_PATH);
      firmware = compileImage(new Uint8Array(firmwareBytes));
    }

    const trace = new Trace({ enabled: values.trace !== undefined, path: values.trace });
    // Real time serves real initiators on the portal; simulation has no sockets (nothing outside may interfere).
    const tcp = forSeconds === undefined ? new TcpBackend({ portals: nbdPortal === undefined ? [portal] : [portal, nbdPortal], log: (m) => process.stderr.write(`[nic] ${m}\n`) }) : undefined;
    // Bind first, so the board's configuration ROM can name the real port (port 0 picks one); until the board's
    // NIC attaches, connections are refused.
    tcp?.attach({ opened: () => undefined, received: () => {}, closed: () => {} });
    const bound: readonly PortalAddress[] = tcp === undefined ? [] : await tcp.start();
    let failed: PanicReport | undefined;
    let urlsPrinted = false;
    const printUrls = () => {
      if (urlsPrinted || bound.length === 0) return;
      urlsPrinted = true;
      for (const url of iscsiUrls(spec, bound[0]!)) out(url);
      if (bound[1] !== undefined) for (const url of nbdUrls(spec, bound[1])) out(url);
    };
    const board = new Board({
      spec,
      firmware,
      dataDir,
      seed,
      trace,
      network: tcp,
      portals: bound.length > 0 ? bound.slice(0, 1) : undefined,
      nbdPortal: bound[1],
      verbose: values.verbose,
      onConsole: (processor, fd, line) => {
        (fd === 1 ? process.stdout : process.stderr).write(processor === "board" ? `${line}\n` : `[${processor}] ${line}\n`);
        control?.observeConsole(processor, line);
        if (line.startsWith("tts: serving")) printUrls(); // the firmware's transport is up and has its volumes
      },
      onStop: (_processor, report) => {
        if (report === undefined) return;
        process.stderr.write(describePanic(report) + "\n");
        failed ??= report;
      },
    });
    control = new BoardControl(board);
    // The recorder reads the disks now, before the board opens them; it starts writing once the board has booted.
    const recorder = values.record === undefined ? undefined : new Recorder({
      path: resolve(values.record), command: "run", tool: `wasm-iop ${packageVersion()}`, boardFile: spec.file, spec, seed: board.seed,
      portals: bound.length > 0 ? bound : spec.portals, verbose: values.verbose, dataDir, copyDisks: values["record-disks"],
      compress: false, // in real time: zero blocks are left out (cheap), nothing is deflated (25-35 µs a call; docs/replay.md)
    });
    const pcap = values.pcap === undefined ? undefined : new PcapWriter(resolve(values.pcap));
    if (pcap !== undefined) board.ingress.observe(pcap);
    let stopReason = "stopped";
    out(`board ${spec.name} (${spec.file}): ${spec.processors.length} processors, seed ${board.seed}, data dir ${dataDir}`);

    if (firmware instanceof FlashBoot) for (const line of firmware.log) out(line);
    const powerOnOrReset = (reset: boolean): boolean => {
      failed = undefined;
      try {
        return reset ? board.reset() : board.powerOn();
      } catch (error) {
        if (!(error instanceof FlashBootError)) throw error;
        process.stderr.write(`boot ROM: ${error.message}\n`);
        failed = { processor: "board", kind: "boot", code: 2, task: "-", message: error.message, timeNs: board.clock.nowNs };
        return false;
      }
    };
    const booted = powerOnOrReset(false);
    if (firmwareBytes !== undefined) recorder?.begin(board, firmwareBytes);
    if (!booted && (!values["reset-on-panic"] || board.processors.length === 0)) return finish(1);
    if (bound.length > 0) out(`listening on ${bound.map((a) => `${a.host}:${a.port}`).join(", ")}`);

    if (forSeconds !== undefined) {
      // Simulation mode: step in slices so a panic can reset the board between them.
      const endNs = Math.round(forSeconds * 1e9);
      const sliceNs = 10_000_000;
      while (board.clock.nowNs < endNs) {
        await new Promise((resolveSlice) => setImmediate(resolveSlice)); // lets a signal in between slices
        if (stop.received !== undefined) {
          out(`${stop.received}: stopping`);
          stopReason = stop.received;
          return finish(0);
        }
        board.runUntil(Math.min(endNs, board.clock.nowNs + sliceNs));
        if (failed !== undefined) {
          if (!values["reset-on-panic"]) return finish(1);
          out(`resetting the board (reset ${board.resetCount + 1})`);
          powerOnOrReset(true);
        }
      }
      stopReason = `--for ${forSeconds}`;
      return finish(0);
    }

    const code = await stop.serve(board.clock, "board", () => {
      if (failed === undefined) return false;
      if (!values["reset-on-panic"]) return true;
      out(`resetting the board (reset ${board.resetCount + 1})`);
      powerOnOrReset(true);
      return false;
    }, out);
    stopReason = code === 0 ? stop.received! : "panic";
    return finish(code);

    async function finish(code: number): Promise<number> {
      // The recording ends where the board stopped, before the sockets close (their closing is not the session's).
      recorder?.end(board.ingress.position, code === 1 && stopReason === "stopped" ? "panic" : stopReason, trace);
      await socket.close(); // no command may arrive while the board powers off
      await tcp?.stop();
      board.powerOff();
      if (firmware instanceof FlashBoot) firmware.close();
      await trace.close();
      pcap?.finish();
      if (pcap !== undefined) out(`packet capture: ${pcap.path}, ${pcap.packetCount} packets`);
      if (recorder !== undefined && firmwareBytes === undefined) {
        recorder.close();
        out(`recording: ${recorder.path} is empty: no image booted`);
      } else if (recorder !== undefined) {
        recorder.flush();
        if (!values["no-seal"]) {
          const sealed = sealRecording(recorder.path, firmwareBytes!, (line) => out(line));
          if (sealed !== undefined) recorder.seal(sealed);
        }
        recorder.close();
        const sent = recorder.sentSoFar;
        out(`recording: ${recorder.path}, ${sent.bytes} bytes sent in ${sent.sends} sends (digest ${sent.sendsSha256})`);
      }
      out(`board ${spec.name} stopped after ${(board.clock.nowNs / 1e9).toFixed(3)} s of board time` +
        (board.resetCount > 0 ? `, ${board.resetCount} resets` : "") + (trace.enabled ? `, trace ${trace.count} events, sha256 ${trace.digest()}` : ""));
      return code;
    }
  },
};
