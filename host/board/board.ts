// A board: its processors, their buses, the board clock, the seeded generator and the trace, built from a BoardSpec.
// The board runs as one discrete-event loop on the virtual clock; boards/*.json describe what it holds.
import { join, resolve } from "node:path";
import type { FlashBoot } from "../boot/flash_boot.ts";
import { EcamRegion } from "../bus/ecam.ts";
import { MsiRegion, RamRegion } from "../bus/ram.ts";
import { SystemController } from "../bus/sysctl.ts";
import { CONFIG_ROM_SIZE_BYTES, ConfigRom, encodeConfigRom } from "../bus/config_rom.ts";
import type { PciFunctionBase } from "../bus/pci_function.ts";
import { type DiskBackend, memoryDisk, openFileDisk, setAsideDiskFile } from "../devices/disk_backend.ts";
import { DmaEngine } from "../devices/dma_engine.ts";
import { createIopBridge, type IopBridgeFunction } from "../devices/iop_bridge.ts";
import { ScsiDisk } from "../devices/scsi_disk.ts";
import { VirtioScsiDevice } from "../devices/virtio_scsi.ts";
import { NvmeDevice } from "../devices/nvme.ts";
import { type NetworkBackend, NicDevice, type NicPort } from "../devices/nic.ts";
import { LoopbackBackend } from "../devices/tcp_backend.ts";
import { XorEngine } from "../devices/xor_engine.ts";
import { ClusterPort } from "../devices/cluster_port.ts";
import type { FabricSwitch } from "../fabric/fabric.ts";
import { fileNvram, memoryNvram, type NvramBacking, NvramDevice } from "../devices/nvram.ts";
import { createHash } from "node:crypto";
import { mkdirSync, renameSync } from "node:fs";
import { VirtualClock } from "../sim/clock.ts";
import { Layer, LayerMeter } from "../sim/layer_meter.ts";
import { Prng } from "../sim/prng.ts";
import { Trace } from "../sim/trace.ts";
import { type BoardFault, BoardIngress } from "./ingress.ts";
import type { BoardSpec, ClusterPortSpec, DiskSpec, NvramSpec, XorEngineSpec } from "./load.ts";
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
export const CONFIG_ROM_BASE = 0xf003_0000n;

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
    configRomBase: storage ? 0n : CONFIG_ROM_BASE,
    configRomBytes: storage ? 0 : CONFIG_ROM_SIZE_BYTES,
  };
}

/** A storage controller of a processor (virtio-scsi or NVMe), as the firmware numbers it (docs/fault.md, "Names"). */
export interface ControllerSlot {
  readonly slot: number;
  readonly function: number;
  readonly device: VirtioScsiDevice | NvmeDevice;
  readonly disks: readonly string[]; // the board file's disk names, LUN n the n-th
}

/** `spec` with an XOR engine (docs/hardware.md, "xor-engine") in `slot` (function 0) of processor `processor`'s bus; throws if the slot is taken. */
export function withXorEngine(spec: BoardSpec, processor: string, slot: number): BoardSpec {
  const found = spec.processors.find((p) => p.name === processor);
  if (found === undefined) throw new Error(`${spec.file}: no processor ${processor} for the xor-engine`);
  if (found.pci.some((f) => f.slot === slot && f.function === 0)) throw new Error(`${spec.file}: ${processor} slot ${slot} is taken`);
  const engine: XorEngineSpec = { model: "xor-engine", slot, function: 0 };
  return {
    ...spec,
    processors: spec.processors.map((p) => (p === found ? { ...p, pci: [...p.pci, engine] } : p)),
  };
}

/**
 * `spec` with a cluster port (docs/hardware.md, "cluster-port") in `slot` (function 0) of its host processor's bus;
 * throws if the slot is taken or the board has no cluster section (the port's address is the board's id there).
 */
export function withClusterPort(spec: BoardSpec, slot: number): BoardSpec {
  const host = spec.processors.find((p) => p.role === "host");
  if (host === undefined) throw new Error(`${spec.file}: no host processor for the cluster port`);
  if (spec.cluster === undefined) throw new Error(`${spec.file}: a cluster port needs the board's cluster section`);
  if (host.pci.some((f) => f.slot === slot && f.function === 0)) throw new Error(`${spec.file}: ${host.name} slot ${slot} is taken, wanted for the cluster port`);
  const port: ClusterPortSpec = { model: "cluster-port", slot, function: 0 };
  return { ...spec, processors: spec.processors.map((p) => (p === host ? { ...p, pci: [...p.pci, port] } : p)) };
}

/** `spec` without any XOR engine: the firmware's XOR task then XORs in its firmware loop (docs/hardware.md, "The XOR task"). */
export function withoutXorEngine(spec: BoardSpec): BoardSpec {
  return { ...spec, processors: spec.processors.map((p) => ({ ...p, pci: p.pci.filter((f) => f.model !== "xor-engine") })) };
}

export interface BoardOptions {
  spec: BoardSpec;
  /** The image every processor runs, or the board's flash and boot ROM choosing it at each power-on. */
  firmware: WebAssembly.Module | FlashBoot;
  /** Where file-backed disks live (default: ./var/<board name>). */
  dataDir?: string;
  /** The portals the NIC serves, as bound (port 0 resolved); the board file's when absent. */
  portals?: readonly { host: string; port: number }[];
  /** The NBD portal as bound (the NIC's portal after the iSCSI ones); the board file's when absent. */
  nbdPortal?: { host: string; port: number };
  /** The network behind the NIC (default: a loopback with no clients, for simulation). */
  network?: NetworkBackend & { attach(port: NicPort): void };
  /** Overrides the board file's seed. */
  seed?: number;
  /** The clock, when the board shares one with others (a cluster run in one process); its own otherwise. */
  clock?: VirtualClock;
  /** The cluster fabric its cluster port (if the spec has one) plugs into; required with a cluster port. */
  fabric?: FabricSwitch;
  trace?: Trace;
  costs?: Partial<ProcessorCosts>;
  /** Each processor's memory size when larger than its RAM (tools/fuzz keeps its coverage map above the RAM). */
  processorMemoryBytes?: number;
  verbose?: boolean;
  /** A host wall clock in ms, for benchmarks: each processor then adds up its time inside the firmware's calls. */
  hostClockMs?: () => number;
  onConsole?: (processor: string, fd: 1 | 2, line: string) => void;
  /** A processor stopped: a panic report, or undefined for a clean proc_exit(0). */
  onStop?: (processor: string, report: PanicReport | undefined) => void;
  /** Opens a disk's backend in place of the board file's (a replay's disks, from a recording); called once per disk. */
  openDisk?: (disk: DiskSpec) => DiskBackend;
  /** Opens the NVRAM card's array in place of the board file's (a replay's, from a recording); called once. */
  openNvram?: (nvram: NvramSpec) => NvramBacking;
}

export class Board {
  readonly name: string;
  readonly seed: number;
  readonly clock: VirtualClock;
  /** The one door for what enters the board from outside, and the window on what its NIC sends (ingress.ts). */
  readonly ingress: BoardIngress;
  readonly trace: Trace;
  readonly panics: PanicReport[] = [];
  processors: Processor[] = [];
  resetCount = 0;
  readonly dataDir: string;
  /** What the boot ROM chose at the last power-on (undefined slot: not booted from flash). */
  bootSlot: "A" | "B" | undefined;
  bootTrial = false;
  /** The device models of the last power-on, for fault injection and stats. */
  bridges: IopBridgeFunction[] = [];
  controllers: VirtioScsiDevice[] = [];
  nvmeControllers: NvmeDevice[] = [];
  nics: NicDevice[] = [];
  /** Per processor, its storage controllers of the last power-on in slot order (the firmware's controller order). */
  private controllerSlots = new Map<string, ControllerSlot[]>();
  /** Disks pulled by a control command: absent from their controller, across resets, until replaced. */
  private readonly pulledDisks = new Set<string>();
  xorEngines: XorEngine[] = [];
  nvrams: NvramDevice[] = [];
  clusterPorts: ClusterPort[] = [];
  /** The NVRAM's array, opened once and kept across resets (it is non-volatile), closed at powerOff. */
  private nvramBacking: NvramBacking | undefined;
  /** Where the NIC's connections come from: real sockets when serving, a loopback for tests. */
  readonly network: NetworkBackend & { attach(port: NicPort): void };
  private readonly backends = new Map<string, DiskBackend>();
  private prng: Prng;
  /** With hostClockMs: the layer meter, switched on and off by meterLayers() (it costs two clock reads per switch). */
  private layerMeter: LayerMeter | undefined;

  constructor(private readonly options: BoardOptions) {
    this.name = options.spec.name;
    this.clock = options.clock ?? new VirtualClock();
    this.seed = options.seed ?? options.spec.seed;
    this.trace = options.trace ?? new Trace();
    this.ingress = new BoardIngress(this.clock, this.trace);
    this.prng = new Prng(this.seed);
    this.dataDir = resolve(options.dataDir ?? join("var", options.spec.name));
    this.network = options.network ?? new LoopbackBackend(this.clock);
    // Benchmarks: the host time of every layer (layer_meter.ts); never read by the board itself.
    if (options.hostClockMs !== undefined) this.clock.meter = this.layerMeter = new LayerMeter(options.hostClockMs);
  }

  /** The board file this board was built from. */
  get spec(): BoardSpec {
    return this.options.spec;
  }

  /**
   * Builds every processor and its bus, then boots them in board order, at the current board time. With a flash,
   * the boot ROM chooses the image first (and throws FlashBootError when no slot boots). True if all booted.
   */
  powerOn(): boolean {
    const { spec } = this.options;
    const firmware = this.chooseFirmware();
    const ecams = new Map<string, EcamRegion>();
    this.processors = spec.processors.map((p, index) => {
      const processor = new Processor({
        name: p.name,
        index,
        role: p.role,
        ramBytes: p.ramMiB * 1024 * 1024,
        memoryBytes: this.options.processorMemoryBytes,
        memory: this.processors.find((old) => old.name === p.name)?.memory,
        boardName: spec.name,
        module: firmware,
        clock: this.clock,
        trace: this.trace,
        // Forked by name and reset count: a processor's random stream never depends on another's.
        prng: this.prng.fork(`${p.name}/${this.resetCount}`),
        costs: this.options.costs,
        busMap: busMapFor(p.role),
        verbose: this.options.verbose,
        hostClockMs: this.options.hostClockMs,
        onConsole: (name, fd, line) => this.options.onConsole?.(name, fd, line),
        onStop: (report) => this.processorStopped(p.name, report),
      });
      const bus = processor.bus;
      bus.map(0n, BigInt(p.ramMiB) << 20n, new RamRegion(p.name, processor.memory));
      const ecam = new EcamRegion(ECAM_BUS_COUNT);
      ecams.set(p.name, ecam);
      bus.map(ECAM_BASE, BigInt(ECAM_BUS_COUNT) << 20n, ecam);
      bus.map(MSI_ADDRESS, 4096n, new MsiRegion((vector) => processor.raiseIrq(vector)));
      bus.map(DMA_BASE, 4096n, new DmaEngine({ name: `${p.name}.dma`, bus, clock: this.clock, raiseIrq: (v) => processor.raiseIrq(v), log: this.logFor(p.name) }));
      if (p.role === "host") {
        const flash = this.options.firmware instanceof WebAssembly.Module ? undefined : this.options.firmware;
        const onConfirm = () => {
          if (flash === undefined) return;
          const logged = flash.log.length;
          flash.confirm();
          for (const line of flash.log.slice(logged)) this.options.onConsole?.("board", 1, line);
        };
        bus.map(CONFIG_ROM_BASE, BigInt(CONFIG_ROM_SIZE_BYTES), new ConfigRom(encodeConfigRom(spec, this.options.portals ?? spec.portals, this.options.nbdPortal ?? spec.nbd?.portal)));
        bus.map(SYSCTL_BASE, 4096n, new SystemController({ slot: this.bootSlot, trial: this.bootTrial }, onConfirm, (m) => this.options.onConsole?.(p.name, 2, `[board] ${m}`)));
      }
      return processor;
    });
    this.attachPciFunctions(ecams);
    let allBooted = true;
    for (const processor of this.processors) allBooted = processor.powerOn() && allBooted;
    return allBooted;
  }

  // Plugs each processor's PCI functions into its bus: bridges to the storage processors (with their messaging
  // units and outbound windows on the storage side), virtio-scsi controllers over the board's disks, NICs and XOR engines.
  private attachPciFunctions(ecams: Map<string, EcamRegion>): void {
    this.bridges = [];
    this.controllers = [];
    this.nvmeControllers = [];
    this.controllerSlots = new Map();
    this.nics = [];
    this.xorEngines = [];
    this.nvrams = [];
    for (const port of this.clusterPorts) port.powerOff(); // the last power-on's, out of the fabric
    this.clusterPorts = [];
    for (const p of this.options.spec.processors) {
      const processor = this.processor(p.name);
      for (const f of p.pci) {
        const name = `${p.name}.slot${f.slot}`;
        let fn: PciFunctionBase | undefined;
        if (f.model === "iop-bridge") {
          const storage = this.processor(f.processor);
          const ramBytes = this.options.spec.processors.find((q) => q.name === f.processor)!.ramMiB * 1024 * 1024; // not the memory: it may hold more
          const bridge = createIopBridge({ name, storageMemory: storage.memory, storageRamBytes: ramBytes, raiseLocalIrq: (v) => storage.raiseIrq(v), log: this.logFor(p.name), hostBus: processor.bus });
          storage.bus.map(MU_LOCAL_BASE, 4096n, bridge.localRegion);
          storage.bus.map(OUTBOUND_WINDOW_BASE, OUTBOUND_WINDOW_SIZE, bridge.outboundWindow);
          this.bridges.push(bridge.hostFunction);
          fn = bridge.hostFunction;
        } else if (f.model === "virtio-scsi") {
          const disks = f.disks.map((diskName) => this.scsiDisk(diskName));
          const controller = new VirtioScsiDevice({ name, clock: this.clock, disks, queueSize: f.queueSize, log: this.logFor(p.name) });
          f.disks.forEach((diskName, lun) => { if (this.pulledDisks.has(diskName)) controller.pull(lun); });
          this.controllers.push(controller);
          this.addControllerSlot(p.name, { slot: f.slot, function: f.function, device: controller, disks: f.disks });
          fn = controller;
        } else if (f.model === "nvme") {
          const disks = f.disks.map((diskName) => this.diskBackend(diskName));
          const physicalBlockBytes = f.disks.map((diskName) => this.diskSpec(diskName).physicalBlockSize);
          const controller = new NvmeDevice({ name, clock: this.clock, disks, physicalBlockBytes, serial: naaFor(this.name, name).toString(16), queueEntriesMax: f.queueEntriesMax, ioQueuesMax: f.ioQueues, log: this.logFor(p.name) });
          f.disks.forEach((diskName, index) => { if (this.pulledDisks.has(diskName)) controller.pull(index); });
          this.nvmeControllers.push(controller);
          this.addControllerSlot(p.name, { slot: f.slot, function: f.function, device: controller, disks: f.disks });
          fn = controller;
        }
        if (f.model === "nic") {
          const nic = new NicDevice({ name, clock: this.clock, backend: this.ingress.egress(this.network), copyBytesPerNs: f.copyGBps, log: this.logFor(p.name) });
          this.network.attach(this.ingress.port(nic));
          this.nics.push(nic);
          fn = nic;
        }
        if (f.model === "xor-engine") {
          const engine = new XorEngine({ name, clock: this.clock, log: this.logFor(p.name) });
          this.xorEngines.push(engine);
          fn = engine;
        }
        if (f.model === "cluster-port") {
          const cluster = this.options.spec.cluster;
          const fabric = this.options.fabric;
          if (cluster === undefined || fabric === undefined) throw new Error(`${this.options.spec.file}: a cluster port needs a cluster section and a fabric`);
          const address = cluster.boards.find((b) => b.name === cluster.board)!.id;
          const port = new ClusterPort({ name, clock: this.clock, fabric, fabricAddress: address, owner: this.name, log: this.logFor(p.name) });
          this.clusterPorts.push(port);
          fn = port;
        }
        if (f.model === "nvram") {
          const nvram = new NvramDevice({ name, backing: this.nvramArray(f), log: this.logFor(p.name) });
          this.nvrams.push(nvram);
          fn = nvram;
        }
        if (fn === undefined) continue;
        ecams.get(p.name)!.plug(0, f.slot, f.function, fn);
        fn.attach(processor.bus);
      }
    }
  }

  private addControllerSlot(processor: string, slot: ControllerSlot): void {
    const slots = this.controllerSlots.get(processor) ?? [];
    slots.push(slot);
    slots.sort((a, b) => a.slot - b.slot || a.function - b.function); // the firmware enumerates by slot
    this.controllerSlots.set(processor, slots);
  }

  private diskSpec(name: string): DiskSpec { return this.options.spec.disks.find((d) => d.name === name)!; }

  private scsiDisk(name: string): ScsiDisk {
    return new ScsiDisk(this.diskBackend(name), { vendor: "WASM-IOP", product: "VIRTUAL DISK", serial: name, naa: naaFor(this.name, name) },
      { physicalBlockSize: this.diskSpec(name).physicalBlockSize });
  }

  /** The storage controllers of `processor` at the last power-on, in the firmware's order ([] before it). */
  controllersOf(processor: string): readonly ControllerSlot[] {
    return this.controllerSlots.get(processor) ?? [];
  }

  /** Pulls disk `name` out of its controller: it answers as a target that is gone until replaceDisk(). */
  pullDisk(name: string): void {
    this.pulledDisks.add(name);
    const { device, lun } = this.diskSlot(name);
    device.pull(lun);
  }

  /** Puts pulled disk `name` back, with what it held: present again, with the unit attention of a power-on. */
  restoreDisk(name: string): void {
    const { device, lun } = this.diskSlot(name);
    device.restore(lun);
    this.pulledDisks.delete(name);
  }

  isDiskPulled(name: string): boolean {
    return this.pulledDisks.has(name);
  }

  /**
   * Puts a blank disk of the same geometry where disk `name` was: a file disk's image is first renamed aside (never
   * deleted) and a new sparse one created, a memory disk starts empty. The new disk is present at once and raises a
   * unit attention. Returns where the old image went (undefined for a memory disk). Throws DiskFileError.
   */
  replaceDisk(name: string): string | undefined {
    const { device, lun } = this.diskSlot(name);
    const spec = this.diskSpec(name);
    // A board whose disks come from openDisk (a replay) owns no files: nothing to set aside.
    const path = spec.backend === "file" && this.options.openDisk === undefined ? join(this.dataDir, spec.image) : undefined;
    // In an order that leaves the board as it was if a step fails: the old disk stays open (and in use) until the
    // new one is, and a renamed image goes back when the new one cannot be made.
    const old = this.backends.get(name);
    old?.flush();
    const aside = path === undefined ? undefined : setAsideDiskFile(path);
    this.backends.delete(name);
    let disk: ScsiDisk | DiskBackend;
    try {
      disk = device instanceof NvmeDevice ? this.diskBackend(name) : this.scsiDisk(name);
    } catch (error) {
      if (old !== undefined) this.backends.set(name, old);
      if (aside !== undefined) renameSync(aside, path!);
      throw error;
    }
    old?.close();
    if (device instanceof NvmeDevice) device.insert(lun, disk as DiskBackend);
    else device.insert(lun, disk as ScsiDisk);
    this.pulledDisks.delete(name);
    return aside;
  }

  private diskSlot(name: string): { device: VirtioScsiDevice | NvmeDevice; lun: number } {
    for (const slots of this.controllerSlots.values()) {
      for (const slot of slots) {
        const lun = slot.disks.indexOf(name);
        if (lun >= 0) return { device: slot.device, lun };
      }
    }
    throw new Error(`board ${this.name}: disk ${name} is on no storage controller (is the board powered on?)`);
  }

  /** A disk's backend, opened once and kept across resets: a reset loses RAM, never data. */
  private diskBackend(name: string): DiskBackend {
    let backend = this.backends.get(name);
    if (backend !== undefined) return backend;
    const disk = this.diskSpec(name);
    const sizeBytes = disk.sizeMiB * 1024 * 1024;
    if (this.options.openDisk !== undefined) {
      backend = this.options.openDisk(disk);
    } else if (disk.backend === "file") {
      mkdirSync(this.dataDir, { recursive: true });
      backend = openFileDisk(join(this.dataDir, disk.image), sizeBytes, disk.blockSize);
    } else {
      backend = memoryDisk(name, sizeBytes, disk.blockSize);
    }
    if (this.layerMeter !== undefined) backend = meteredDisk(backend, this.clock);
    this.backends.set(name, backend);
    return backend;
  }

  // The board has one NVRAM at most (the loader checks): its array, from its image under the data directory.
  private nvramArray(spec: NvramSpec): NvramBacking {
    if (this.nvramBacking !== undefined) return this.nvramBacking;
    const sizeBytes = spec.sizeKiB * 1024;
    if (this.options.openNvram !== undefined) {
      this.nvramBacking = this.options.openNvram(spec);
    } else if (spec.backend === "file") {
      mkdirSync(this.dataDir, { recursive: true });
      this.nvramBacking = fileNvram(join(this.dataDir, spec.image), sizeBytes);
    } else {
      this.nvramBacking = memoryNvram(sizeBytes);
    }
    return this.nvramBacking;
  }

  private logFor(processor: string): (message: string) => void {
    return (message) => this.options.onConsole?.(processor, 2, `[board] ${message}`);
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

  /** Power-cycles every processor: fresh RAM, boot again. Board time goes on. It comes from outside: through the door. */
  reset(): boolean {
    return this.ingress.reset(() => this.powerCycle());
  }

  private powerCycle(): boolean {
    this.losePower();
    this.trace.record(this.clock.nowNs, "board", "reset", { count: this.resetCount });
    return this.powerOn();
  }

  /**
   * The board loses power from outside (a simulator's power cut) and stays off until powerOn(): the processors stop,
   * the devices lose what they had scheduled, the NIC's connections drop and the cluster port leaves the fabric.
   * The disks keep what they hold (unlike powerOff, nothing is closed). It comes through the door, as a reset does.
   */
  powerCut(): void {
    this.ingress.reset(() => {
      this.losePower();
      for (const port of this.clusterPorts) port.powerOff();
      this.trace.record(this.clock.nowNs, "board", "power-cut", { count: this.resetCount });
      return true;
    });
  }

  private losePower(): void {
    for (const processor of this.processors) processor.halt();
    // The old device models lose power too: what they had scheduled (a completion, a NIC event) must not run
    // against the new board, and the NIC's connections drop (their clients see them close).
    for (const device of [...this.nics, ...this.controllers, ...this.nvmeControllers, ...this.bridges, ...this.xorEngines, ...this.nvrams, ...this.clusterPorts]) device.reset();
    this.resetCount += 1;
  }

  /** Injects a fault from outside (a simulator), through the door: a device model's fault, or a processor's stop. */
  injectFault(fault: BoardFault): void {
    this.ingress.fault(fault, () => {
      if ("processor" in fault) {
        this.processor(fault.processor).fail(fault.fail);
        return;
      }
      const controller = this.controllers.find((c) => c.name === fault.device);
      const nvme = this.nvmeControllers.find((c) => c.name === fault.device);
      const bridge = this.bridges.find((b) => b.name === fault.device);
      if (controller !== undefined) controller.inject(fault.fault as Parameters<VirtioScsiDevice["inject"]>[0]);
      else if (nvme !== undefined) nvme.inject(fault.fault as Parameters<NvmeDevice["inject"]>[0]);
      else if (bridge !== undefined) bridge.inject(fault.fault as Parameters<IopBridgeFunction["inject"]>[0]);
      else throw new Error(`board ${this.name}: no device ${fault.device} to inject ${fault.fault.kind} into`);
    });
  }

  /** Stops every processor and closes the disks (flushing file-backed ones). */
  powerOff(): void {
    for (const processor of this.processors) processor.halt();
    for (const port of this.clusterPorts) port.powerOff();
    for (const backend of this.backends.values()) {
      backend.flush();
      backend.close();
    }
    this.backends.clear();
    this.nvramBacking?.sync();
    this.nvramBacking?.close();
    this.nvramBacking = undefined;
  }

  /** Simulation mode: runs every event due up to `timeNs`, jumping over idle time, then sets the clock there. */
  runUntil(timeNs: number): void {
    this.clock.advanceTo(timeNs);
  }

  runFor(durationNs: number): void {
    this.clock.advanceTo(this.clock.nowNs + durationNs);
  }

  /**
   * runUntil for a caller whose thread serves other work too (a test worker, a server): the same events in the same
   * order (the trace is identical), but the event loop gets a turn whenever `turnMs` of wall time passed since the
   * last one, so timers and I/O are not held up for the whole run.
   */
  async runUntilTurning(timeNs: number, turnMs = 50): Promise<void> {
    let since = performance.now();
    while (!this.clock.advanceToAtMost(timeNs, TURN_CHECK_EVENTS)) {
      if (performance.now() - since < turnMs) continue;
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
    }
  }

  /** The backend of disk `name` as opened at power-on (undefined before): the simulator checks data through it. */
  disk(name: string): DiskBackend | undefined {
    return this.backends.get(name);
  }

  /**
   * Benchmarks (needs hostClockMs): the layer meter on or off. Off, nothing reads a clock per layer switch and the
   * layers' figures stand still; the bench measures CPU per I/O with it off and the split in a run with it on.
   */
  meterLayers(on: boolean): void {
    const meter = on ? this.layerMeter : undefined;
    this.clock.meter = meter;
    for (const processor of this.processors) processor.bus.meter = meter;
  }

  /** Host ms inside firmware calls (irq, run; needs hostClockMs), turns and bus accesses, summed over processors. */
  firmwareCallStats(): { hostCallMs: number; hostBusMs: number; runCount: number; busAccessCount: number; layerMs: Record<string, number> } {
    let hostCallMs = 0;
    let runCount = 0;
    let busAccessCount = 0;
    for (const processor of this.processors) {
      hostCallMs += processor.hostCallMs;
      runCount += processor.runCount;
      busAccessCount += processor.busAccessCount;
    }
    const meter = this.layerMeter;
    // Inside the calls, what is not WebAssembly is the bus accesses' work (the device models they run).
    const hostBusMs = meter === undefined ? 0 : hostCallMs - meter.ms[Layer.Firmware]!;
    return { hostCallMs, hostBusMs, runCount, busAccessCount, layerMs: meter?.snapshot() ?? {} };
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

// How many events runUntilTurning runs between looks at the wall clock.
const TURN_CHECK_EVENTS = 64;

// The OUI in the disks' NAA designators: the project owns none, so it uses the all-zero one and a vendor-specific
// part derived from the board and disk names (stable across runs, distinct across disks).
const NAA_OUI = 0x00_0000n;

/** A stable NAA IEEE Registered (5h) identifier for a disk: the same board and disk name give the same LU identity. */
function naaFor(board: string, disk: string): bigint {
  const digest = createHash("sha256").update(`${board}/${disk}`).digest();
  return (0x5n << 60n) | (NAA_OUI << 36n) | (digest.readBigUInt64BE(0) & 0xf_ffff_ffffn);
}

// meteredDisk's held writes: storing them (at a release, mostly) is disk I/O too.
function heldWrites(writeHeld: (offsetBytes: number, data: Uint8Array) => number, releaseHeld: () => readonly number[], clock: VirtualClock):
  Pick<DiskBackend, "writeHeld" | "releaseHeld"> {
  return {
    writeHeld(offsetBytes, data) {
      const meter = clock.meter;
      if (meter === undefined) return writeHeld(offsetBytes, data);
      const outer = meter.enter(Layer.DiskIo);
      try { return writeHeld(offsetBytes, data); } finally { meter.leave(outer); }
    },
    releaseHeld() {
      const meter = clock.meter;
      if (meter === undefined) return releaseHeld();
      const outer = meter.enter(Layer.DiskIo);
      try { return releaseHeld(); } finally { meter.leave(outer); }
    },
  };
}

// A disk backend whose reads, writes and flushes are charged to the disk I/O layer while the clock's meter runs
// (bench only).
function meteredDisk(backend: DiskBackend, clock: VirtualClock): DiskBackend {
  return {
    get sizeBytes() { return backend.sizeBytes; },
    get blockSize() { return backend.blockSize; },
    get name() { return backend.name; },
    read(offsetBytes, into) {
      const meter = clock.meter;
      if (meter === undefined) return backend.read(offsetBytes, into);
      const outer = meter.enter(Layer.DiskIo);
      try { backend.read(offsetBytes, into); } finally { meter.leave(outer); }
    },
    write(offsetBytes, data) {
      const meter = clock.meter;
      if (meter === undefined) return backend.write(offsetBytes, data);
      const outer = meter.enter(Layer.DiskIo);
      try { backend.write(offsetBytes, data); } finally { meter.leave(outer); }
    },
    ...(backend.writeHeld !== undefined && backend.releaseHeld !== undefined ? heldWrites(backend.writeHeld.bind(backend), backend.releaseHeld.bind(backend), clock) : {}),
    flush() {
      const meter = clock.meter;
      if (meter === undefined) return backend.flush();
      const outer = meter.enter(Layer.DiskIo);
      try { backend.flush(); } finally { meter.leave(outer); }
    },
    unmap: (offsetBytes, lengthBytes) => backend.unmap(offsetBytes, lengthBytes),
    isMapped: (offsetBytes, lengthBytes) => backend.isMapped(offsetBytes, lengthBytes),
    close: () => backend.close(),
  };
}
