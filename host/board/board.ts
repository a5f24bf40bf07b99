// A board: its processors, their buses, the board clock, the seeded generator and the trace, built from a BoardSpec.
// The board runs as one discrete-event loop on the virtual clock; boards/*.json describe what it holds.
import { join, resolve } from "node:path";
import type { FlashBoot } from "../boot/flash_boot.ts";
import { EcamRegion } from "../bus/ecam.ts";
import { MsiRegion, RamRegion } from "../bus/ram.ts";
import { SystemController } from "../bus/sysctl.ts";
import { VirtualClock } from "../sim/clock.ts";
import { Prng } from "../sim/prng.ts";
import { Trace } from "../sim/trace.ts";
import type { BoardSpec } from "./load.ts";
import { Processor, type BusMap, type PanicReport, type ProcessorCosts } from "./processor.ts";

// The local bus map (docs/hardware.md, "Local bus map"); storage processors add the MU and the outbound window.
export const ECAM_BASE = 0xe000_0000n;
export const ECAM_BUS_COUNT = 1;
export const PCI_MEM_BASE = 0xc000_0000n;
export const PCI_MEM_SIZE = 0x2000_0000n;
export const MSI_ADDRESS = 0xfee0_0000n;
export const MU_LOCAL_BASE = 0xf000_0000n;
export const DMA_BASE = 0xf001_0000n;
export const OUTBOUND_WINDOW_BASE = 0x1_0000_0000n;
export const OUTBOUND_WINDOW_SIZE = 0x1_0000_0000n;
export const SYSCTL_BASE = 0xf002_0000n;

export function busMapFor(role: "host" | "storage"): BusMap {
  const storage = role === "storage";
  return {
    ecamBase: ECAM_BASE,
    ecamBusCount: ECAM_BUS_COUNT,
    pciMemBase: PCI_MEM_BASE,
    pciMemSize: PCI_MEM_SIZE,
    msiAddress: MSI_ADDRESS,
    muLocalBase: storage ? MU_LOCAL_BASE : 0n,
    dmaBase: DMA_BASE,
    outboundWindowBase: storage ? OUTBOUND_WINDOW_BASE : 0n,
    outboundWindowSize: storage ? OUTBOUND_WINDOW_SIZE : 0n,
    sysctlBase: storage ? 0n : SYSCTL_BASE,
  };
}

export interface BoardOptions {
  spec: BoardSpec;
  /** The image every processor runs, or the board's flash and boot ROM choosing it at each power-on. */
  firmware: WebAssembly.Module | FlashBoot;
  /** Where file-backed disks live (default: ./var/<board name>). */
  dataDir?: string;
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
  readonly dataDir: string;
  /** What the boot ROM chose at the last power-on (undefined slot: not booted from flash). */
  bootSlot: "A" | "B" | undefined;
  bootTrial = false;
  private prng: Prng;

  constructor(private readonly options: BoardOptions) {
    this.name = options.spec.name;
    this.seed = options.seed ?? options.spec.seed;
    this.trace = options.trace ?? new Trace();
    this.prng = new Prng(this.seed);
    this.dataDir = resolve(options.dataDir ?? join("var", options.spec.name));
  }

  /** Device models the board file declares that this emulator does not model yet. */
  get unmodelled(): string[] {
    return this.options.spec.processors.flatMap((p) => p.pci.map((f) => `${p.name} slot ${f.slot}: ${f.model}`));
  }

  /**
   * Builds every processor and its bus, then boots them in board order, at the current board time. With a flash,
   * the boot ROM chooses the image first (and throws FlashBootError when no slot boots). True if all booted.
   */
  powerOn(): boolean {
    const { spec } = this.options;
    const firmware = this.chooseFirmware();
    this.processors = spec.processors.map((p, index) => {
      const processor = new Processor({
        name: p.name,
        index,
        role: p.role,
        ramBytes: p.ramMiB * 1024 * 1024,
        boardName: spec.name,
        module: firmware,
        clock: this.clock,
        trace: this.trace,
        // Forked by name and reset count: a processor's random stream never depends on another's.
        prng: this.prng.fork(`${p.name}/${this.resetCount}`),
        costs: this.options.costs,
        busMap: busMapFor(p.role),
        verbose: this.options.verbose,
        onConsole: (name, fd, line) => this.options.onConsole?.(name, fd, line),
        onStop: (report) => this.processorStopped(p.name, report),
      });
      const bus = processor.bus;
      bus.map(0n, BigInt(p.ramMiB) << 20n, new RamRegion(p.name, processor.memory));
      bus.map(ECAM_BASE, BigInt(ECAM_BUS_COUNT) << 20n, new EcamRegion(ECAM_BUS_COUNT));
      bus.map(MSI_ADDRESS, 4096n, new MsiRegion((vector) => processor.raiseIrq(vector)));
      if (p.role === "host") {
        const flash = this.options.firmware instanceof WebAssembly.Module ? undefined : this.options.firmware;
        const onConfirm = () => {
          if (flash === undefined) return;
          const logged = flash.log.length;
          flash.confirm();
          for (const line of flash.log.slice(logged)) this.options.onConsole?.("board", 1, line);
        };
        bus.map(SYSCTL_BASE, 4096n, new SystemController({ slot: this.bootSlot, trial: this.bootTrial }, onConfirm, (m) => this.options.onConsole?.(p.name, 2, `[board] ${m}`)));
      }
      return processor;
    });
    let allBooted = true;
    for (const processor of this.processors) allBooted = processor.powerOn() && allBooted;
    return allBooted;
  }

  private chooseFirmware(): WebAssembly.Module {
    const source = this.options.firmware;
    if (source instanceof WebAssembly.Module) return source;
    const logged = source.log.length;
    try {
      const selection = source.select();
      this.bootSlot = selection.slot;
      this.bootTrial = selection.trial;
      return selection.module;
    } finally {
      for (const line of source.log.slice(logged)) this.options.onConsole?.("board", 1, line);
    }
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
