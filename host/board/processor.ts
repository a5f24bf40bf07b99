// One I/O processor: the firmware instance, its RAM (a shared WebAssembly memory), its local bus, its interrupt
// latch, and the run loop's side of the board ABI. Time: while the firmware runs, its clock reads advance by the
// cost the board charges for each bus access and clock read; when run() returns, the processor is busy until then.
import { BOOT_INFO_OFFSET_FROM_TOP, BOOT_INFO_SIZE_BYTES, readCurrentTask, readPanicRecord, TASK_INDEX_NONE, writeBootInfo } from "../abi/boot_info.ts";
import { ABI_VERSION, boardImports } from "../abi/board_imports.ts";
import { imageDigest } from "../abi/image_module.ts";
import { ProcExit, wasiImports } from "../abi/wasi.ts";
import type { AccessSize } from "../bus/bus.ts";
import { Bus } from "../bus/bus.ts";
import { writeWatch, zeroMemory } from "../bus/ram.ts";
import type { VirtualClock, EventHandle } from "../sim/clock.ts";
import { Layer } from "../sim/layer_meter.ts";
import type { Prng } from "../sim/prng.ts";
import type { Trace } from "../sim/trace.ts";

/** The boot errors of the board ABI (docs/board-abi.md, `boot`); the firmware prints the details first. */
const BOOT_ERRORS: Record<number, string> = { 1: "RAM too small", 2: "bad boot-info block", 3: "boot objects over their reserve" };

/** Where things are on the processor's local bus, as the boot-info block tells the firmware (docs/hardware.md). */
export interface BusMap {
  ecamBase: bigint;
  ecamBusCount: number;
  pciMemBase: bigint;
  pciMemSize: bigint;
  msiAddress: bigint;
  muLocalBase: bigint; // 0n: none
  dmaBase: bigint;
  outboundWindowBase: bigint; // 0n: none
  outboundWindowSize: bigint;
  sysctlBase: bigint; // 0n: none
  configRomBase: bigint; // 0n: none
  configRomBytes: number;
}
const WASM_PAGE_BYTES = 65536;
const VECTORS_MAX = 64;

/** What each thing costs in board time. The defaults model a slow embedded core behind a PCI bus. */
export interface ProcessorCosts {
  busAccessNs: number;
  clockReadNs: number;
  runCallNs: number; // entering and leaving run() and irq()
  runBudgetNs: number; // the budget passed to run()
  hardWatchdogNs: number; // one run() call longer than this is stopped by the board
}

export const DEFAULT_COSTS: ProcessorCosts = {
  busAccessNs: 200,
  clockReadNs: 20,
  runCallNs: 100,
  runBudgetNs: 1_000_000,
  hardWatchdogNs: 1_000_000_000,
};

export type PanicKind = "panic" | "trap" | "watchdog" | "boot" | "fault";

export interface PanicReport {
  processor: string;
  kind: PanicKind;
  code: number;
  task: string; // "-" outside any task
  message: string;
  timeNs: number;
}

export interface ProcessorConfig {
  name: string;
  index: number;
  role: "host" | "storage";
  ramBytes: number;
  /** The memory's size when larger than the RAM: tools keep data above RAM (the fuzzer's coverage map), where the
   * firmware, told only ramBytes, and the bus, which maps only the RAM, never look. */
  memoryBytes?: number;
  /** The memory of this processor before a reset, reused with its RAM zeroed: a power cycle then neither makes a new
   * memory nor faults its pages in again (a 64 MiB fuzzing memory's did most of a reboot's 12 ms). */
  memory?: WebAssembly.Memory;
  boardName: string;
  module: WebAssembly.Module;
  clock: VirtualClock;
  trace: Trace;
  prng: Prng;
  costs?: Partial<ProcessorCosts>;
  busMap: BusMap;
  verbose?: boolean;
  /**
   * A host wall clock in ms (performance.now), for benchmarks only: when given, the processor adds up the host time
   * spent inside irq() and run() calls (hostCallMs). Never read otherwise: board time stays virtual.
   */
  hostClockMs?: () => number;
  onConsole(processor: string, fd: 1 | 2, line: string): void;
  onStop(report: PanicReport | undefined): void;
}

/** The firmware's exports, as the ABI names them. A test build adds its own on top. */
export interface FirmwareExports {
  abiVersion(): number;
  boot(bootInfo: number): number;
  irq(vector: number): void;
  run(budgetNs: bigint): bigint;
  heapTop(): number;
  [name: string]: unknown;
}

class BoardWatchdog extends Error {
  constructor(readonly elapsedNs: number) {
    super(`watchdog: no return from run() after ${elapsedNs} ns of board time`);
  }
}

export type ProcessorState = "off" | "running" | "stopped";

export class Processor {
  readonly name: string;
  readonly bus: Bus;
  readonly memory: WebAssembly.Memory;
  readonly ramBytes: number; // the RAM the firmware is told of: the memory's first bytes
  readonly bootInfoAddress: number;
  state: ProcessorState = "off";
  exports: FirmwareExports | undefined;
  heapTopAtBoot = 0;
  runCount = 0;
  /** Host wall time spent inside irq() and run() (the firmware and the bus accesses it made), when measured. */
  hostCallMs = 0;
  /** Bus reads and writes the firmware made (the board module's imports), for benchmarks. */
  busAccessCount = 0;
  private readonly costs: ProcessorCosts;
  private readonly runBudget: bigint; // costs.runBudgetNs, made once: a BigInt per turn is garbage
  private readonly pending = new Uint8Array(VECTORS_MAX);
  private pendingCount = 0;
  private inCall = false;
  private consumedNs = 0; // board time the current call has used
  private lastCallNs = 0; // what the last call used, in board time
  private busyUntilNs = 0;
  private wakeHandle: EventHandle | undefined;
  private wakeAtNs = Infinity;
  private readonly stepFn = (): void => this.step(); // one closure for the processor's life, not one per wake
  private readonly consoleBuffers: Record<1 | 2, string> = { 1: "", 2: "" };

  constructor(private readonly config: ProcessorConfig) {
    this.name = config.name;
    this.costs = { ...DEFAULT_COSTS, ...config.costs };
    this.runBudget = BigInt(this.costs.runBudgetNs);
    if (config.ramBytes % WASM_PAGE_BYTES !== 0) throw new RangeError(`${config.name}: RAM must be a multiple of 64 KiB`);
    const pages = Math.ceil(Math.max(config.ramBytes, config.memoryBytes ?? 0) / WASM_PAGE_BYTES);
    if (config.memory !== undefined && config.memory.buffer.byteLength === pages * WASM_PAGE_BYTES) {
      this.memory = config.memory;
      zeroMemory(this.memory, 0, config.ramBytes); // as a new memory would be: the RAM powers up zeroed
    } else {
      this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    }
    this.ramBytes = config.ramBytes;
    this.bootInfoAddress = config.ramBytes - BOOT_INFO_OFFSET_FROM_TOP;
    this.bus = new Bus(config.name, config.trace, () => this.nowNs(), (message) => this.log(message));
    this.bus.meter = config.clock.meter; // bench: bus accesses charged to their device's layer
    // The replay lines (docs/trace-format.md): this RAM is new or zeroed now, and every board write into it is seen.
    config.trace.watchMemory(config.name, this.memory);
    config.trace.replayRecord(config.name, "ram", { pages, ramBytes: config.ramBytes });
  }

  /** Board time as this processor sees it: inside a call, the call's start plus what it has used. */
  nowNs(): number {
    return this.config.clock.nowNs + (this.inCall ? this.consumedNs : 0);
  }

  /** Instantiates the firmware, writes the boot-info block and calls boot(). False if the processor stopped. */
  powerOn(): boolean {
    const { config } = this;
    const imports: WebAssembly.Imports = {
      env: { memory: this.memory },
      wasi_snapshot_preview1: wasiImports({
        memory: this.memory,
        clockReadNs: () => this.clockRead(),
        randomFill: (bytes) => this.randomFill(bytes),
        consoleWrite: (fd, bytes) => this.consoleWrite(fd, bytes),
      }),
      board: boardImports({
        busRead: (low, high, sizeBytes) => this.busRead(low, high, sizeBytes),
        busWrite: (low, high, sizeBytes, value) => this.busWrite(low, high, sizeBytes, value),
        busWrite64: (low, high, valueLow, valueHigh) => this.busWrite64(low, high, valueLow, valueHigh),
      }),
    };
    this.state = "running";
    if (config.trace.replay) config.trace.replayRecord(this.name, "power", { image: imageDigest(config.module) });
    const instance = this.call(() => new WebAssembly.Instance(config.module, imports));
    if (instance === undefined) return false;
    this.exports = instance.exports as unknown as FirmwareExports;
    // An image for another board ABI would take this board's numbers for its i64s (ABI 1) and fail somewhere deep
    // in boot; it is refused here, before boot, in one line. abiVersion() makes no import call and is not traced.
    const imageAbi = this.exports.abiVersion();
    if (imageAbi !== ABI_VERSION) {
      this.stop({ kind: "boot", code: 2, task: "-", message: `the image implements board ABI ${imageAbi}; this board provides ABI ${ABI_VERSION} (docs/board-abi.md)` });
      return false;
    }
    writeBootInfo(new DataView(this.memory.buffer), this.bootInfoAddress, {
      abiVersion: ABI_VERSION,
      role: config.role,
      processorIndex: config.index,
      ramBytes: config.ramBytes,
      ...config.busMap,
      flags: config.verbose === true ? 1 : 0,
      name: config.name,
      boardName: config.boardName,
    });
    writeWatch(this.memory).onWrite?.(this.bootInfoAddress, BOOT_INFO_SIZE_BYTES);
    config.trace.record(this.nowNs(), this.name, "boot", { info: this.bootInfoAddress });
    const status = this.call(() => this.firmwareCall("boot", this.bootInfoAddress) as number);
    if (status === undefined) return false;
    if (status !== 0) {
      this.stop({ kind: "boot", code: 2, task: "-", message: `boot() returned ${status}${BOOT_ERRORS[status] === undefined ? "" : ` (${BOOT_ERRORS[status]})`}` });
      return false;
    }
    this.heapTopAtBoot = this.firmwareCall("heapTop") as number;
    this.wake(this.nowNs());
    return true;
  }

  /** An interrupt from a device: latched, delivered through irq() before the next run(). */
  raiseIrq(vector: number): void {
    if (this.state !== "running") return;
    if (this.config.trace.enabled) this.config.trace.record(this.nowNs(), this.name, "irq", { vector });
    if (vector < 0 || vector >= VECTORS_MAX) {
      this.log(`interrupt on vector ${vector} ignored: the processor takes 0..${VECTORS_MAX - 1}`);
      return;
    }
    if (this.pending[vector] === 0) {
      this.pending[vector] = 1;
      this.pendingCount += 1;
    }
    this.wake(this.nowNs());
  }

  /** Stops the processor (power off or reset): no further calls into the firmware. */
  halt(): void {
    this.state = "stopped";
    if (this.wakeHandle !== undefined) this.config.clock.cancel(this.wakeHandle);
    this.wakeHandle = undefined;
    this.wakeAtNs = Infinity;
  }

  /**
   * A fatal hardware fault on this processor (an uncorrectable memory error, say), injected by the simulator: the
   * processor stops where it is, as after a panic, and the board reports it the same way (kind "fault").
   */
  fail(message: string): void {
    if (this.state !== "running") return;
    const current = readCurrentTask(new DataView(this.memory.buffer), this.bootInfoAddress);
    this.stop({ kind: "fault", code: 6, task: current === TASK_INDEX_NONE ? "-" : `#${current}`, message });
  }

  /** The heap top now; the simulator compares it with heapTopAtBoot. */
  heapTop(): number {
    return this.firmwareCall("heapTop") as number;
  }

  /**
   * Calls a firmware export the way the board calls run(): charged, with proc_exit, traps and the watchdog turned
   * into a stop, and a turn scheduled afterwards in case it left work. For test builds' extra exports and tools;
   * undefined when the processor stopped.
   */
  invoke(name: string, ...args: unknown[]): unknown {
    if (this.state !== "running") throw new Error(`${this.name} is ${this.state}: cannot call ${name}`);
    const fn = this.exports![name];
    if (typeof fn !== "function") throw new Error(`${this.name}: the firmware has no export ${name}`);
    const result = this.call(() => this.firmwareCall(name, ...(args as (number | bigint)[])));
    this.wake(this.nowNs());
    return result;
  }

  private wake(atNs: number): void {
    const when = Math.max(atNs, this.busyUntilNs, this.config.clock.nowNs);
    if (this.state !== "running" || when >= this.wakeAtNs) return;
    if (this.wakeHandle !== undefined) this.config.clock.cancel(this.wakeHandle);
    this.wakeAtNs = when;
    this.wakeHandle = this.config.clock.at(when, this.stepFn);
  }

  // One turn: deliver latched interrupts, then run() for one budget; schedule the next turn from its answer.
  private step(): void {
    this.wakeHandle = undefined;
    this.wakeAtNs = Infinity;
    if (this.state !== "running") return;
    const startNs = this.config.clock.nowNs;
    const hostClockMs = this.config.hostClockMs;
    const hostStartMs = hostClockMs === undefined ? 0 : hostClockMs();
    const meter = this.config.clock.meter;
    const outerLayer = meter === undefined ? Layer.Outside : meter.enter(Layer.Firmware);
    const result = this.call(() => {
      for (let vector = 0; this.pendingCount > 0 && vector < VECTORS_MAX; vector++) {
        if (this.pending[vector] === 0) continue;
        this.pending[vector] = 0;
        this.pendingCount -= 1;
        this.firmwareCall("irq", vector);
      }
      return this.firmwareCall("run", this.runBudget) as bigint;
    });
    this.runCount += 1;
    if (meter !== undefined) meter.leave(outerLayer);
    if (hostClockMs !== undefined) this.hostCallMs += hostClockMs() - hostStartMs;
    if (result === undefined) return;
    const endNs = startNs + this.lastCallNs;
    this.busyUntilNs = endNs;
    if (this.config.trace.enabled) this.config.trace.record(startNs, this.name, "run", { used: this.lastCallNs, result });
    if (result === 0n || this.pendingCount > 0) this.wake(endNs);
    else if (result !== -1n) this.wake(Math.max(Number(result), endNs));
  }

  // Calls into the firmware, charging time and turning proc_exit, traps and the board watchdog into a stop.
  private call<T>(body: () => T): T | undefined {
    this.inCall = true;
    this.consumedNs = this.costs.runCallNs;
    try {
      return body();
    } catch (error) {
      this.recordEnd(error);
      this.stopOnError(error);
      return undefined;
    } finally {
      this.lastCallNs = this.consumedNs;
      this.inCall = false;
    }
  }

  /** Calls export `name` with the replay lines around it (docs/trace-format.md, "call" and "ret"). */
  private firmwareCall(name: string, ...args: (number | bigint)[]): unknown {
    const trace = this.config.trace;
    if (trace.replay) trace.replayRecord(this.name, "call", { fn: name, args });
    const result = (this.exports![name] as (...a: unknown[]) => unknown)(...args);
    if (trace.replay) trace.replayRecord(this.name, "ret", typeof result === "number" || typeof result === "bigint" ? { val: result } : {});
    return result;
  }

  // A call that did not return: the replay line saying how (an exit, a trap, the board stopping it).
  private recordEnd(error: unknown): void {
    const trace = this.config.trace;
    if (!trace.replay) return;
    trace.release();
    if (error instanceof ProcExit) trace.replayRecord(this.name, "end", { how: "exit", code: error.code });
    else if (error instanceof BoardWatchdog) trace.replayRecord(this.name, "end", { how: "stop", message: error.message });
    else if (error instanceof WebAssembly.RuntimeError) trace.replayRecord(this.name, "end", { how: "trap", message: error.message });
  }

  private stopOnError(error: unknown): void {
    const view = new DataView(this.memory.buffer);
    const current = readCurrentTask(view, this.bootInfoAddress);
    const task = current === TASK_INDEX_NONE ? "-" : `#${current}`;
    if (error instanceof ProcExit) {
      const record = readPanicRecord(view, this.bootInfoAddress);
      if (error.code === 0) return this.stop(undefined);
      return this.stop({ kind: "panic", code: error.code, task: record.taskName || "-", message: record.message || `proc_exit(${error.code})` });
    }
    if (error instanceof BoardWatchdog) return this.stop({ kind: "watchdog", code: 3, task, message: error.message });
    if (error instanceof WebAssembly.RuntimeError) return this.stop({ kind: "trap", code: 5, task, message: error.message });
    throw error; // A host bug, not a firmware fault: let it surface.
  }

  private stop(report: Omit<PanicReport, "processor" | "timeNs"> | undefined): void {
    this.halt();
    const full = report === undefined ? undefined : { processor: this.name, timeNs: this.nowNs(), ...report };
    if (full !== undefined) {
      this.config.trace.record(full.timeNs, this.name, "panic", { kind: full.kind, code: full.code, task: full.task, message: full.message });
    }
    this.config.onStop(full);
  }

  private charge(costNs: number): void {
    this.consumedNs += costNs;
    if (this.consumedNs > this.costs.hardWatchdogNs) throw new BoardWatchdog(this.consumedNs);
  }

  private clockRead(): number {
    this.charge(this.costs.clockReadNs);
    const now = this.nowNs();
    if (this.config.trace.enabled) this.config.trace.record(now, this.name, "clock");
    return now;
  }

  private randomFill(bytes: Uint8Array): void {
    this.config.prng.fill(bytes);
    this.config.trace.record(this.nowNs(), this.name, "random", { bytes: Buffer.from(bytes).toString("hex") });
  }

  // The board imports' bus accesses: addresses (and a 64-bit write's value) in the firmware's 32-bit halves.
  private busRead(low: number, high: number, sizeBytes: AccessSize): number | bigint {
    this.busAccessCount += 1;
    this.charge(this.costs.busAccessNs);
    this.bus.firmwareCycle = true;
    const trace = this.config.trace;
    if (!trace.replay) return this.bus.readHalves(low, high, sizeBytes);
    // What the device writes into memory while answering comes after the read in the replay lines.
    trace.hold();
    try {
      return this.bus.readHalves(low, high, sizeBytes);
    } finally {
      trace.release();
    }
  }

  private busWrite(low: number, high: number, sizeBytes: AccessSize, value: number): void {
    this.busAccessCount += 1;
    this.charge(this.costs.busAccessNs);
    this.bus.firmwareCycle = true;
    this.bus.writeHalves(low, high, sizeBytes, value);
  }

  private busWrite64(low: number, high: number, valueLow: number, valueHigh: number): void {
    this.busAccessCount += 1;
    this.charge(this.costs.busAccessNs);
    this.bus.firmwareCycle = true;
    this.bus.write64Halves(low, high, valueLow, valueHigh);
  }

  private consoleWrite(fd: 1 | 2, bytes: Uint8Array): void {
    let text = this.consoleBuffers[fd] + Buffer.from(bytes).toString("utf8");
    let newline = text.indexOf("\n");
    while (newline >= 0) {
      const line = text.slice(0, newline);
      this.config.trace.record(this.nowNs(), this.name, "console", { fd, text: line });
      this.config.onConsole(this.name, fd, line);
      text = text.slice(newline + 1);
      newline = text.indexOf("\n");
    }
    this.consoleBuffers[fd] = text;
  }

  private log(message: string): void {
    this.config.onConsole(this.name, 2, `[board] ${message}`);
  }
}
