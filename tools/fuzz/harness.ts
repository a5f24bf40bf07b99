// The fuzzing board: a board built from a small spec, running the instrumented image (build/firmware.fuzz.wasm),
// brought to a target's starting state once, snapshotted, and restored before every input. It owns the coverage
// maps and the oracles every target shares (docs/fuzzing.md, "Oracles"):
//   panic / trap / watchdog  a processor stopped (Board.panics)
//   hang                     the firmware's scheduler reported a task over its budget ("watchdog: task …")
//   bus-fault                an access or DMA that decodes to no window (Bus.guestErrorCount moved)
//   leak                     once quiesced, a buffer, SGL block or frame is not back in its pool
//   host-exception           the emulator threw
// Targets add their own: lost commands, data that differs from the shadow model of the disks.
import { readFileSync } from "node:fs";
import { Board, withClusterPort, withXorEngine } from "../../host/board/board.ts";
import { Fabric } from "../../host/fabric/fabric.ts";
import { VirtualClock } from "../../host/sim/clock.ts";
import { type BoardSpec, parseBoard, type RemoteDiskSpec } from "../../host/board/load.ts";
import type { PanicKind, Processor } from "../../host/board/processor.ts";
import type { Bus } from "../../host/bus/bus.ts";
import { Trace } from "../../host/sim/trace.ts";
import { COVERAGE_MAP_BASE, COVERAGE_MAP_BYTES, COVERAGE_MEMORY_BYTES } from "./instrument.ts";
import { BoardSnapshot } from "./snapshot.ts";

// A processor's stop (PanicKind: the firmware's panic, a trap, the watchdog, a failed boot, or a fault the host
// injected, which the fuzzer never does), or one of the fuzzer's own oracles.
export type FindingKind = PanicKind | "hang" | "bus-fault" | "leak" | "lost-command" | "data-mismatch" | "host-exception";

export interface Finding {
  kind: FindingKind;
  message: string;
}

/** Raised by a target's run() to stop an input at the first oracle that fires. */
export class FindingError extends Error {
  constructor(readonly finding: Finding) {
    super(`${finding.kind}: ${finding.message}`);
  }
}

export interface FuzzBoardOptions {
  firmware: WebAssembly.Module;
  /** Processors: RAM in MiB and the in-memory disks (MiB) on one storage controller (virtio-scsi unless `controller`
   * says nvme); the first is the host. */
  processors: { ramMiB: number; disksMiB: number[]; nic?: boolean; xor?: boolean; nvram?: boolean; controller?: "virtio-scsi" | "nvme" }[];
  /** The NBD server, with one export "d0" on the host's first disk (its portal is the NIC's second). */
  nbd?: boolean;
  seed: number;
  /** Keep the bus trace's lines (replay); off while fuzzing, for speed. */
  trace?: boolean;
  /** DMA to addresses a peer named is the peer's fault (the mu target): only CPU accesses count as bus faults. */
  allowDmaFaults?: boolean;
  /** The board file's `cluster` section (docs/cluster.md): the board is one of a cluster (the scsi target). */
  cluster?: object;
  /** With `cluster`: a cluster port in slot 12 of the host's bus, on a fabric the target plays the other boards on. */
  fabric?: boolean | "rdma"; // "rdma": the port without a window (revision 2), as over TCP
  /** The board file's `volumes` (absent: one disk volume per disk), and the disks of other boards a replica's copy
   * names ("BOARD:DISK", docs/volumes.md "Copies on two boards"; the replica target). */
  volumes?: object[];
  remoteDisks?: RemoteDiskSpec[];
}

const QUIESCE_STEP_NS = 10_000_000;

// AFL's hit-count classes: a counter's byte maps to one bit, so "ran 3 times" and "ran 40 times" are different news.
const BUCKET = new Uint8Array(256);
for (let n = 1; n < 256; n++) BUCKET[n] = n === 1 ? 1 : n === 2 ? 2 : n === 3 ? 4 : n < 8 ? 8 : n < 16 ? 16 : n < 32 ? 32 : n < 128 ? 64 : 128;
// The same for two counters at once (a 16-bit half of a map word), so a word is classified in two lookups.
const BUCKET16 = new Uint16Array(65536);
for (let n = 0; n < 65536; n++) BUCKET16[n] = BUCKET[n & 0xff]! | (BUCKET[n >>> 8]! << 8);

export class FuzzBoard {
  readonly board: Board;
  /** The fabric the board's cluster port is on (FuzzBoardOptions.fabric), for a target's hostile peers. */
  readonly fabric: Fabric | undefined;
  readonly console: string[] = [];
  readonly trace: Trace;
  private snapshot: BoardSnapshot | undefined;
  private readonly maps: Uint8Array[] = [];
  private readonly mapWords: Uint32Array[] = [];
  private mapsClear = false; // collectCoverage cleared the maps after the last input
  private readonly virgin = new Uint8Array(COVERAGE_MAP_BYTES);
  private readonly virginWords = new Uint32Array(this.virgin.buffer);
  edges = 0;
  // The map words the last collected input hit, and their counters' classes, for hits().
  private readonly hitWords = new Uint32Array(COVERAGE_MAP_BYTES);
  private readonly hitClasses = new Uint32Array(COVERAGE_MAP_BYTES);
  private hitWordCount = 0;
  private guestErrorsAtSnapshot = new Map<object, number>();
  private baseline: { buffers: number; frames: number }[] = [];
  private readonly allowDmaFaults: boolean;

  constructor(options: FuzzBoardOptions) {
    this.trace = new Trace({ enabled: options.trace === true, keepLines: options.trace === true });
    const clock = new VirtualClock();
    this.fabric = options.fabric === undefined || options.fabric === false ? undefined : new Fabric(clock, { window: options.fabric !== "rdma" });
    this.board = new Board({
      spec: this.fabric !== undefined ? withClusterPort(fuzzSpec(options), 12) : fuzzSpec(options),
      clock,
      fabric: this.fabric,
      firmware: options.firmware,
      trace: this.trace,
      seed: options.seed,
      processorMemoryBytes: COVERAGE_MEMORY_BYTES,
      onConsole: (processor, fd, line) => this.console.push(`${processor} ${fd}: ${line}`),
    });
    const booted = this.board.powerOn();
    if (!booted) throw new Error(`fuzzing board did not boot: ${this.board.panics.map((p) => p.message).join("; ")}\n${this.console.join("\n")}`);
    for (const p of this.board.processors) {
      this.maps.push(new Uint8Array(p.memory.buffer, COVERAGE_MAP_BASE, COVERAGE_MAP_BYTES));
      this.mapWords.push(new Uint32Array(p.memory.buffer, COVERAGE_MAP_BASE, COVERAGE_MAP_BYTES / 4));
    }
    this.allowDmaFaults = options.allowDmaFaults === true;
    if (this.allowDmaFaults) for (const p of this.board.processors) countDmaFaults(p.bus);
  }

  get processors(): Processor[] {
    return this.board.processors;
  }

  /** What the leak oracle compares with: buffers and frames in use now, on a quiet board with no session. Targets
   * that open a session before the snapshot call this first; otherwise the snapshot's own counts are used. */
  recordBaseline(): void {
    this.baseline = this.processors.map((p) => (p.state === "running"
      ? { buffers: Number(p.invoke("fuzzBuffersInUse")), frames: Number(p.invoke("fuzzFramesInUse")) }
      : { buffers: -1, frames: -1 }));
  }

  /** Takes the snapshot every input starts from; the board must be idle in the state the target wants. */
  takeSnapshot(roots: object[], constants: readonly object[] = []): void {
    this.guestErrorsAtSnapshot = new Map(this.processors.map((p) => [p.bus, cpuGuestErrors(p.bus)]));
    if (this.baseline.length === 0) this.recordBaseline();
    this.snapshot = new BoardSnapshot([this.board, ...roots], constants);
  }

  /** Back to the snapshot, coverage maps cleared (collectCoverage already cleared them, word by word, if it ran since
   * the last input: a fill of the whole 64 KiB map cost more than the rest of the restore). */
  restore(): void {
    this.snapshot!.restore();
    if (!this.mapsClear) for (const map of this.maps) map.fill(0);
    this.mapsClear = false;
    this.console.length = 0;
  }

  /** For tests of the dirty-page restore: the first RAM byte that differs from the snapshot, or undefined. */
  ramDifference(): { processor: number; offset: number } | undefined {
    return this.snapshot!.firstDifference();
  }

  /** For tests of the host-object restore: an object that gained or lost keys since the snapshot, or undefined. */
  shapeDifference(): string | undefined {
    return this.snapshot!.shapeDifference();
  }

  /** Folds this input's maps into the campaign's, clearing them; true when it reached an edge or hit-count class not
   * seen before. */
  collectCoverage(): boolean {
    let fresh = false;
    const virgin = this.virginWords;
    const { hitWords, hitClasses } = this;
    let hitWordCount = 0;
    for (const words of this.mapWords) {
      for (let w = 0; w < words.length; w++) {
        const word = words[w]!;
        if (word === 0) continue;
        words[w] = 0;
        // The word's four counters as class bits, in place; only bits the campaign has not seen are news.
        const classes = (BUCKET16[word & 0xffff]! | (BUCKET16[word >>> 16]! << 16)) >>> 0;
        hitWords[hitWordCount] = w;
        hitClasses[hitWordCount++] = classes;
        const seen = virgin[w]!;
        if ((classes & ~seen) === 0) continue;
        for (let shift = 0; shift < 32; shift += 8) {
          if (((classes >>> shift) & 0xff) !== 0 && ((seen >>> shift) & 0xff) === 0) this.edges += 1;
        }
        virgin[w] = seen | classes;
        fresh = true;
      }
    }
    this.hitWordCount = hitWordCount;
    this.mapsClear = true;
    return fresh;
  }

  /** The counters the last collected input hit, as map byte offsets (every processor's map folded into one), sorted. */
  hits(): Uint32Array {
    const seen = new Set<number>();
    for (let i = 0; i < this.hitWordCount; i++) {
      const classes = this.hitClasses[i]!;
      for (let k = 0; k < 4; k++) if (((classes >>> (8 * k)) & 0xff) !== 0) seen.add(this.hitWords[i]! * 4 + k);
    }
    return Uint32Array.from(seen).sort();
  }

  /** The oracles every target shares, checked while an input runs: throws FindingError at the first that fires. */
  check(): void {
    const panic = this.board.panics[0];
    if (panic !== undefined) throw new FindingError({ kind: panic.kind, message: `${panic.processor}: task ${panic.task}: ${panic.message}` });
    for (const line of this.console) {
      if (line.includes("watchdog: task")) throw new FindingError({ kind: "hang", message: line });
    }
    this.processors.forEach((p) => {
      if (cpuGuestErrors(p.bus) === (this.guestErrorsAtSnapshot.get(p.bus) ?? 0)) return;
      const logged = this.console.find((line) => line.startsWith(`${p.name} 2: [board] guest error`) || line.startsWith(`${p.name} 2: [board] DMA fault`));
      throw new FindingError({ kind: "bus-fault", message: logged ?? `${p.name}: an access outside every window` });
    });
  }

  /** True when buffers and frames in use are back at the baseline on every running processor. */
  atBaseline(): boolean {
    return this.processors.every((p, i) => {
      const base = this.baseline[i];
      if (p.state !== "running" || base === undefined || base.buffers < 0) return true;
      return Number(p.invoke("fuzzBuffersInUse")) === base.buffers && Number(p.invoke("fuzzFramesInUse")) === base.frames;
    });
  }

  /**
   * Runs the board until it is back at the baseline, in 10 ms steps, for at most `limitNs` of board time (beyond
   * the 2 s request timeout, so stuck requests are failed first); `tick` runs after each step (the mu target takes
   * replies there). Then the leak oracle. Inputs that leave nothing behind cost one step.
   */
  quiesce(limitNs: number, tick: () => void = () => {}): void {
    for (let spentNs = 0; spentNs < limitNs; spentNs += QUIESCE_STEP_NS) {
      this.board.runFor(QUIESCE_STEP_NS);
      tick();
      this.check();
      if (this.atBaseline()) break;
    }
    this.checkQuiesced();
  }

  /** The leak oracle, once the board has quiesced (sessions closed): buffers, SGL blocks and frames in use as at
   * the baseline. */
  checkQuiesced(): void {
    this.check();
    this.processors.forEach((p, i) => {
      const base = this.baseline[i];
      if (p.state !== "running" || base === undefined || base.buffers < 0) return;
      const buffers = Number(p.invoke("fuzzBuffersInUse"));
      if (buffers !== base.buffers) throw new FindingError({ kind: "leak", message: `${p.name}: ${buffers} buffers and SGL blocks in use once quiesced, ${base.buffers} on the quiet board` });
      const frames = Number(p.invoke("fuzzFramesInUse"));
      if (frames !== base.frames) throw new FindingError({ kind: "leak", message: `${p.name}: ${frames} message frames in use once quiesced, ${base.frames} on the quiet board` });
    });
    this.check();
  }
}

// Bus.guestErrorCount counts both CPU accesses and DMA faults; a fuzzing board that allows DMA faults counts them
// apart by wrapping the bus's two DMA entry points. The count is a field of the bus, so the snapshot restores it.
type CountingBus = Bus & { fuzzDmaFaultCount?: number };
function countDmaFaults(bus: CountingBus): void {
  bus.fuzzDmaFaultCount = 0;
  const dmaWrite = bus.dmaWrite.bind(bus);
  // dmaRead goes through dmaReadInto (host/bus/bus.ts): counting there counts both once.
  const dmaReadInto = bus.dmaReadInto.bind(bus);
  bus.dmaReadInto = (master, address, into) => {
    const result = dmaReadInto(master, address, into);
    if (!result.ok) bus.fuzzDmaFaultCount! += 1;
    return result;
  };
  bus.dmaWrite = (master, address, data) => {
    const result = dmaWrite(master, address, data);
    if (!result.ok) bus.fuzzDmaFaultCount! += 1;
    return result;
  };
}
function cpuGuestErrors(bus: CountingBus): number {
  return bus.guestErrorCount - (bus.fuzzDmaFaultCount ?? 0);
}

/** The instrumented image, compiled once per process. */
let fuzzModule: WebAssembly.Module | undefined;
export function loadFuzzFirmware(path: string): WebAssembly.Module {
  fuzzModule ??= new WebAssembly.Module(readFileSync(path));
  return fuzzModule;
}

// A board file for the fuzzer: small RAM (the schema's floor, 4 MiB: restoring RAM is most of an input's cost) and
// small in-memory disks keep the snapshot cheap.
function fuzzSpec(options: FuzzBoardOptions): BoardSpec {
  const disks: object[] = [];
  const processors = options.processors.map((p, i) => {
    const name = i === 0 ? "host" : `sp${i}`;
    const pci: object[] = i === 0 ? options.processors.slice(1).map((_, j) => ({ slot: j + 1, model: "iop-bridge", processor: `sp${j + 1}` })) : [];
    if (p.disksMiB.length > 0) {
      const names = p.disksMiB.map((sizeMiB, d) => {
        disks.push({ name: `${name}-disk${d}`, sizeMiB, blockSize: 512, backend: "memory" });
        return `${name}-disk${d}`;
      });
      pci.push(p.controller === "nvme" ? { slot: 8, model: "nvme", queueEntriesMax: 256, disks: names } : { slot: 8, model: "virtio-scsi", queueSize: 64, disks: names });
    }
    if (p.nic === true) pci.push({ slot: 9, model: "nic" });
    if (p.nvram === true) pci.push({ slot: 11, model: "nvram", backend: "memory" });
    return { name, role: i === 0 ? "host" : "storage", ramMiB: p.ramMiB, pci };
  });
  const nbd = options.nbd === true ? { nbd: { exports: [{ name: "d0", volume: 0 }] } } : {};
  const cluster = options.cluster === undefined ? {} : { cluster: options.cluster };
  const volumes = options.volumes === undefined ? {} : { volumes: options.volumes };
  const remote = (board: string, disk: string) => options.remoteDisks?.find((d) => d.name === `${board}:${disk}`) ?? `a disk the target declares (remoteDisks)`;
  const spec = parseBoard({ name: "fuzz-board", seed: options.seed, processors, disks, portals: [{ host: "127.0.0.1", port: 3260 }], ...nbd, ...cluster, ...volumes }, "fuzz-board.json", remote);
  return options.processors[0]?.xor === true ? withXorEngine(spec, "host", 10) : spec;
}
