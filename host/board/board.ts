// A board: its processors, their buses, the board clock, the seeded generator and the trace, built from a BoardSpec.
// The board runs as one discrete-event loop on the virtual clock; boards/*.json describe what it holds.
import { EcamRegion } from "../bus/ecam.ts";
import { VirtualClock } from "../sim/clock.ts";
import { Prng } from "../sim/prng.ts";
import { Trace } from "../sim/trace.ts";
import type { BoardSpec } from "./load.ts";
import { Processor, type PanicReport, type ProcessorCosts } from "./processor.ts";

// The local bus map every processor sees (docs/board-abi.md, "Local bus map").
export const ECAM_BASE = 0xe000_0000n;
export const ECAM_BUS_COUNT = 1;
export const PCI_MEM_BASE = 0xc000_0000n;
export const PCI_MEM_SIZE = 0x2000_0000n;
export const MSI_ADDRESS = 0xfee0_0000n;

export interface BoardOptions {
  spec: BoardSpec;
  firmware: WebAssembly.Module;
  /** Overrides the board file's seed. */
  seed?: number;
  trace?: Trace;
  costs?: Partial<ProcessorCosts>;
  verbose?: boolean;
  onConsole?: (processor: string, fd: 1 | 2, line: string) => void;
  /** A processor stopped: a panic report, or undefined for a clean proc_exit(0). */
  onStop?: (processor: string, report: PanicReport | undefined) => void;
}

export class Board {
  readonly name: string;
  readonly seed: number;
  readonly clock = new VirtualClock();
  readonly trace: Trace;
  readonly panics: PanicReport[] = [];
  processors: Processor[] = [];
  resetCount = 0;
  private prng: Prng;

  constructor(private readonly options: BoardOptions) {
    this.name = options.spec.name;
    this.seed = options.seed ?? options.spec.seed;
    this.trace = options.trace ?? new Trace();
    this.prng = new Prng(this.seed);
  }

  /** Device models the board file declares that this emulator does not model yet. */
  get unmodelled(): string[] {
    return this.options.spec.processors.flatMap((p) => p.pci.map((f) => `${p.name} slot ${f.slot}: ${f.model}`));
  }

  /** Builds every processor and boots them in board order, at the current board time. True if all booted. */
  powerOn(): boolean {
    const { spec } = this.options;
    this.processors = spec.processors.map((p, index) => {
      const processor = new Processor({
        name: p.name,
        index,
        role: p.role,
        ramBytes: p.ramMiB * 1024 * 1024,
        boardName: spec.name,
        module: this.options.firmware,
        clock: this.clock,
        trace: this.trace,
        // Forked by name and reset count: a processor's random stream never depends on another's.
        prng: this.prng.fork(`${p.name}/${this.resetCount}`),
        costs: this.options.costs,
        ecamBase: ECAM_BASE,
        ecamBusCount: ECAM_BUS_COUNT,
        pciMemBase: PCI_MEM_BASE,
        pciMemSize: PCI_MEM_SIZE,
        msiAddress: MSI_ADDRESS,
        verbose: this.options.verbose,
        onConsole: (name, fd, line) => this.options.onConsole?.(name, fd, line),
        onStop: (report) => this.processorStopped(p.name, report),
      });
      processor.bus.map(ECAM_BASE, BigInt(ECAM_BUS_COUNT) << 20n, new EcamRegion(ECAM_BUS_COUNT));
      return processor;
    });
    let allBooted = true;
    for (const processor of this.processors) allBooted = processor.powerOn() && allBooted;
    return allBooted;
  }

  /** Power-cycles every processor: fresh RAM, boot again. Board time goes on. */
  reset(): boolean {
    for (const processor of this.processors) processor.halt();
    this.resetCount += 1;
    this.trace.record(this.clock.nowNs, "board", "reset", { count: this.resetCount });
    return this.powerOn();
  }

  powerOff(): void {
    for (const processor of this.processors) processor.halt();
  }

  /** Simulation mode: runs every event due up to `timeNs`, jumping over idle time, then sets the clock there. */
  runUntil(timeNs: number): void {
    this.clock.advanceTo(timeNs);
  }

  runFor(durationNs: number): void {
    this.clock.advanceTo(this.clock.nowNs + durationNs);
  }

  processor(name: string): Processor {
    const found = this.processors.find((p) => p.name === name);
    if (found === undefined) throw new Error(`board ${this.name} has no processor ${name}`);
    return found;
  }

  private processorStopped(name: string, report: PanicReport | undefined): void {
    if (report !== undefined) this.panics.push(report);
    this.options.onStop?.(name, report);
  }
}
