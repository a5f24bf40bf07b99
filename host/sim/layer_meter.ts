// Where the emulator's host time goes, by layer of the board, for benchmarks (`wasm-iop bench`, docs/performance.md).
//
// One "current layer" and the host time since it last changed: every switch adds the time elapsed to the layer that
// was current, so nested work (a firmware bus access that runs a device model, which reads a disk) lands in the
// innermost layer, and each moment is counted once. The switches sit where the host already crosses from one layer to
// another: a processor's turn (firmware), a bus access decoded to a region that names a layer, a clock event (the
// layer that scheduled it), an input passing the board's door (NIC), a disk backend's call (disk I/O). Outside all of
// those (Outside: the pacer, the sockets' callbacks before they reach the door, garbage collection between events,
// idle time) nothing is added. Only wall time from the clock given (performance.now), never board time: the meter
// never changes what the board computes, and without a meter no switch is made.
export enum Layer {
  Outside = 0, // not inside the board's work: not counted
  Nic = 1, // the NIC model: its registers, rings, event writer, socket writes; inputs from the network
  Firmware = 2, // WebAssembly: irq() and run(), less the bus accesses they make
  MessagingUnit = 3, // the iop-bridge: messaging-unit registers, frames written through its windows
  DiskController = 4, // virtio-scsi and NVMe models: rings, DMA, completions, the SCSI disk model
  DiskIo = 5, // the disk backends' reads, writes and flushes (the file system, or memory)
  Other = 6, // other device models and board events (the DMA and XOR engines, NVRAM, timers)
}

export const LAYER_COUNT = 7;
export const LAYER_NAMES: readonly string[] = ["outside", "nic", "firmware", "mu", "controller", "disk", "other"];

export class LayerMeter {
  /** Host ms spent in each layer, indexed by Layer. */
  readonly ms = new Float64Array(LAYER_COUNT);
  /** Times each layer was entered. */
  readonly entries = new Float64Array(LAYER_COUNT);
  private currentLayer: Layer = Layer.Outside;
  private sinceMs: number;

  constructor(private readonly nowMs: () => number) {
    this.sinceMs = nowMs();
  }

  get current(): Layer {
    return this.currentLayer;
  }

  /** Makes `layer` current and returns the one it replaces (to give back to leave()); no clock read when equal. */
  enter(layer: Layer): Layer {
    const previous = this.currentLayer;
    if (layer === previous) return previous;
    const now = this.nowMs();
    this.ms[previous] += now - this.sinceMs;
    this.sinceMs = now;
    this.currentLayer = layer;
    this.entries[layer] += 1;
    return previous;
  }

  /** Goes back to `previous`, what enter() returned. */
  leave(previous: Layer): void {
    if (previous === this.currentLayer) return;
    const now = this.nowMs();
    this.ms[this.currentLayer] += now - this.sinceMs;
    this.sinceMs = now;
    this.currentLayer = previous;
  }

  /** The counted ms per layer name (Outside left out). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let layer = 1; layer < LAYER_COUNT; layer++) out[LAYER_NAMES[layer]!] = this.ms[layer]!;
    return out;
  }
}
