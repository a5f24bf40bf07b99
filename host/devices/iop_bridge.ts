// The iop-bridge: a storage processor's ATU and messaging unit (docs/hardware.md, "iop-bridge"; REFERENCE.md §5,
// after the I2O units of the IOP3xx family). One device with three faces, built together by createIopBridge():
//   IopBridgeFunction     the PCI function on the HOST processor's bus: BAR 0 the MU host-side registers, BAR 2 the
//                         inbound ATU window onto the storage processor's RAM, BAR 4 MSI-X (2 vectors);
//   MuLocalRegion         the MU local-side registers, mapped at 0xF000_0000 on the STORAGE processor's bus;
//   OutboundWindowRegion  the ATU outbound window, mapped at 0x1_0000_0000 on the storage processor's bus: local
//                         `base + a` is host-bus address `a`, mastered by the bridge function (so Bus Master must be on).
// All MU state lives in IopBridgeFunction; the two local regions are views onto it, so reset() there resets all three.
//
// Interpretations where docs/hardware.md is silent (each chosen so a driver written to the table works):
// - IISR bit 2 and OISR bit 2 mirror "IDR != 0" and "ODR != 0": the doorbell bits are the status, clearing them
//   clears it. OISR bit 3 mirrors "outbound post queue not empty" (OISR is read-only, the host clears it by popping).
// - OISR bits 0/1 (OMR0/OMR1 written) clear when the host reads that OMR: OISR is read-only, so reading the message
//   is the only acknowledgement the host has.
// - IIMR and OIMR reset to every defined bit masked: nothing interrupts a processor that has not asked to be.
// - Changing MUCR's size code zeroes the eight queue pointers: old indexes mean nothing in a ring of another size.
import type { AccessSize, Bus, BusRegion } from "../bus/bus.ts";
import { WindowFault } from "../bus/bus.ts";
import { COMMAND_BUS_MASTER, PciFunctionBase, readLe, writeLe, writeLe64 } from "../bus/pci_function.ts";
import { Layer } from "../sim/layer_meter.ts";
import { memoryBytes, writeWatch } from "../bus/ram.ts";
import { copyBytes, copyOf } from "../bus/shared_copy.ts";
import { hex } from "../sim/trace.ts";

export const IOP_BRIDGE_VENDOR_ID = 0x8086;
export const IOP_BRIDGE_DEVICE_ID = 0x0303;
export const IOP_BRIDGE_CLASS_CODE = 0x0e0001; // intelligent I/O (I2O), message FIFO at BAR 0 + 0x40
export const IOP_BRIDGE_BAR_MU = 0;
export const IOP_BRIDGE_BAR_WINDOW = 2;
export const IOP_BRIDGE_BAR_MSIX = 4;
export const MU_REGISTERS_SIZE_BYTES = 4096;
export const OUTBOUND_WINDOW_SIZE_BYTES = 0x1_0000_0000n;
export const IOP_BRIDGE_VECTOR_OUTBOUND_POST = 0; // MSI-X: the outbound post queue went non-empty
export const IOP_BRIDGE_VECTOR_MESSAGE = 1; // MSI-X: an outbound doorbell or message register was written
const MSIX_VECTOR_COUNT = 2;
const MSIX_TABLE_OFFSET = 0x000;
const MSIX_PBA_OFFSET = 0x800;

// Host side, BAR 0.
export const MU_HOST_IMR0 = 0x10;
export const MU_HOST_IMR1 = 0x14;
export const MU_HOST_OMR0 = 0x18;
export const MU_HOST_OMR1 = 0x1c;
export const MU_HOST_IDR = 0x20;
export const MU_HOST_ODR = 0x2c;
export const MU_HOST_OISR = 0x30;
export const MU_HOST_OIMR = 0x34;
export const MU_HOST_INBOUND_PORT = 0x40;
export const MU_HOST_OUTBOUND_PORT = 0x44;

// Local side, at the storage processor's MU base.
export const MU_LOCAL_IMR0 = 0x10;
export const MU_LOCAL_IMR1 = 0x14;
export const MU_LOCAL_OMR0 = 0x18;
export const MU_LOCAL_OMR1 = 0x1c;
export const MU_LOCAL_IDR = 0x20;
export const MU_LOCAL_IISR = 0x24;
export const MU_LOCAL_IIMR = 0x28;
export const MU_LOCAL_ODR = 0x2c;
export const MU_LOCAL_LVEC = 0x3c;
export const MU_LOCAL_MUCR = 0x50;
export const MU_LOCAL_QBAR = 0x54;
export const MU_LOCAL_IFHPR = 0x60;
export const MU_LOCAL_IFTPR = 0x64;
export const MU_LOCAL_IPHPR = 0x68;
export const MU_LOCAL_IPTPR = 0x6c;
export const MU_LOCAL_OPHPR = 0x70;
export const MU_LOCAL_OPTPR = 0x74;
export const MU_LOCAL_OFHPR = 0x78;
export const MU_LOCAL_OFTPR = 0x7c;

// IISR (local) and OISR (host) bits.
export const MU_IISR_IMR0 = 1 << 0;
export const MU_IISR_IMR1 = 1 << 1;
export const MU_IISR_DOORBELL = 1 << 2;
export const MU_IISR_INBOUND_POST = 1 << 4;
export const MU_IISR_INBOUND_POST_FULL = 1 << 5;
const MU_IISR_DEFINED = MU_IISR_IMR0 | MU_IISR_IMR1 | MU_IISR_DOORBELL | MU_IISR_INBOUND_POST | MU_IISR_INBOUND_POST_FULL;
export const MU_OISR_OMR0 = 1 << 0;
export const MU_OISR_OMR1 = 1 << 1;
export const MU_OISR_DOORBELL = 1 << 2;
export const MU_OISR_OUTBOUND_POST = 1 << 3;
const MU_OISR_MESSAGE = MU_OISR_OMR0 | MU_OISR_OMR1 | MU_OISR_DOORBELL; // the causes of vector 1
const MU_OISR_DEFINED = MU_OISR_MESSAGE | MU_OISR_OUTBOUND_POST;

export const MU_MUCR_ENABLE = 1;
const MU_MUCR_SIZE_SHIFT = 1;
const MU_MUCR_SIZE_MASK = 0xf; // bits 1-4
const MU_QUEUE_SIZE_CODE_MAX = 8;
export const MU_QUEUE_ENTRIES_MIN = 256;
const MU_QBAR_ALIGN_BYTES = 4096;
export const MU_LVEC_RESET = 0x20;
export const MU_QUEUE_EMPTY = 0xffff_ffff;

// The four queues in QBAR order; the pointer registers pair up the same way (head, tail) from 0x60.
export const MU_QUEUE_INBOUND_FREE = 0;
export const MU_QUEUE_INBOUND_POST = 1;
export const MU_QUEUE_OUTBOUND_POST = 2;
export const MU_QUEUE_OUTBOUND_FREE = 3;
const QUEUE_COUNT = 4;
const POINTER_COUNT = 2 * QUEUE_COUNT;
// Pointer index = (register - 0x60) / 4: even a head, odd a tail. These the local side may write; the unit moves
// the others when the host uses a port.
const POINTER_LOCAL_WRITABLE = [true, false, false, true, true, false, false, true] as const;

export type IopBridgeFault =
  | { kind: "drop-next-inbound-post" } // the next host post is lost: no entry, no status
  | { kind: "duplicate-next-inbound-post" } // the next host post is queued twice
  | { kind: "drop-next-outbound-post" } // the next host pop loses the entry it would have returned
  | { kind: "duplicate-next-outbound-post" }; // the next host pop returns its entry without consuming it

export interface IopBridgeOptions {
  name: string;
  /** The storage processor's RAM, as its firmware sees it (local address 0 is byte 0). */
  storageMemory: WebAssembly.Memory;
  storageRamBytes: number;
  /** Raises an interrupt on the storage processor with the MU's LVEC. */
  raiseLocalIrq: (vector: number) => void;
  log: (message: string) => void;
  /** The host bus the outbound window reaches; defaults to the bus the function is attached to. */
  hostBus?: Bus;
}

export interface IopBridge {
  hostFunction: IopBridgeFunction; // plug into the host processor's ECAM
  localRegion: MuLocalRegion; // map at the storage processor's MU base (4 KiB)
  outboundWindow: OutboundWindowRegion; // map at the storage processor's outbound window base (4 GiB)
}

/** Builds the three faces of one bridge; they share the function's state. */
export function createIopBridge(options: IopBridgeOptions): IopBridge {
  const hostFunction = new IopBridgeFunction(options);
  return { hostFunction, localRegion: new MuLocalRegion(hostFunction), outboundWindow: new OutboundWindowRegion(hostFunction, options.log) };
}

export class IopBridgeFunction extends PciFunctionBase {
  private readonly memory: WebAssembly.Memory;
  private readonly ramBytes: number;
  private readonly raiseLocalIrq: (vector: number) => void;
  private readonly hostBusOption: Bus | undefined;
  private attachedBus: Bus | undefined;
  private readonly inboundWindow: BusRegion;

  // MU registers; reset() restores each.
  private readonly imr = [0, 0]; // inbound message registers, written by the host
  private readonly omr = [0, 0]; // outbound message registers, written by the storage processor
  private idr = 0; // inbound doorbell
  private odr = 0; // outbound doorbell
  private iisrLatched = 0; // IISR bits 0, 1, 4, 5 (bit 2 mirrors IDR)
  private iimr = MU_IISR_DEFINED;
  private oisrMessage = 0; // OISR bits 0, 1 (bit 2 mirrors ODR, bit 3 the outbound post queue)
  private oimr = MU_OISR_DEFINED;
  private lvec = MU_LVEC_RESET;
  private mucr = 0;
  private qbar = 0;
  private readonly pointers = new Uint32Array(POINTER_COUNT);
  private queuesValid = false; // MUCR enables them and QBAR places them inside RAM

  // Edge detection: the interrupt goes out when a bit of (status & ~mask) turns on, including by unmasking.
  private localActive = 0;
  private outboundPostActive = false;

  private readonly faultsArmed = new Map<IopBridgeFault["kind"], number>();
  private wordView: Uint32Array | undefined; // words(): made on first use

  constructor(options: IopBridgeOptions) {
    super(
      {
        name: options.name,
        vendorId: IOP_BRIDGE_VENDOR_ID,
        deviceId: IOP_BRIDGE_DEVICE_ID,
        classCode: IOP_BRIDGE_CLASS_CODE,
        bars: [
          { index: IOP_BRIDGE_BAR_MU, sizeBytes: MU_REGISTERS_SIZE_BYTES },
          { index: IOP_BRIDGE_BAR_WINDOW, sizeBytes: powerOfTwoAtLeast(options.storageRamBytes), is64: true, prefetchable: true },
          { index: IOP_BRIDGE_BAR_MSIX, sizeBytes: 4096 },
        ],
        msix: { vectorCount: MSIX_VECTOR_COUNT, bar: IOP_BRIDGE_BAR_MSIX, tableOffset: MSIX_TABLE_OFFSET, pbaOffset: MSIX_PBA_OFFSET },
      },
      options.log,
    );
    this.meterLayer = Layer.MessagingUnit;
    if (options.storageRamBytes <= 0 || options.storageRamBytes > options.storageMemory.buffer.byteLength) {
      throw new RangeError(`${options.name}: storage RAM of ${options.storageRamBytes} bytes does not fit its memory`);
    }
    this.memory = options.storageMemory;
    this.ramBytes = options.storageRamBytes;
    this.raiseLocalIrq = options.raiseLocalIrq;
    this.hostBusOption = options.hostBus;
    this.inboundWindow = new InboundWindowRegion(`${options.name}.bar${IOP_BRIDGE_BAR_WINDOW}`, this.memory, this.ramBytes, (m) => this.guestError(m, 4));
  }

  override attach(bus: Bus): void {
    this.attachedBus = bus;
    super.attach(bus);
  }

  /** Power-on: the PCI header, every MU register, the queues off, no fault armed. */
  reset(): void {
    this.resetFunction();
    this.imr.fill(0);
    this.omr.fill(0);
    this.idr = 0;
    this.odr = 0;
    this.iisrLatched = 0;
    this.iimr = MU_IISR_DEFINED;
    this.oisrMessage = 0;
    this.oimr = MU_OISR_DEFINED;
    this.lvec = MU_LVEC_RESET;
    this.mucr = 0;
    this.qbar = 0;
    this.pointers.fill(0);
    this.queuesValid = false;
    this.localActive = 0;
    this.outboundPostActive = false;
    this.faultsArmed.clear();
  }

  /** Arms one fault; each armed fault applies once, at the next operation of its kind. */
  inject(fault: IopBridgeFault): void {
    this.faultsArmed.set(fault.kind, (this.faultsArmed.get(fault.kind) ?? 0) + 1);
  }

  /** The bus the outbound window masters on, or undefined while Bus Master is off (the ATU may not master then). */
  outboundBus(): Bus | undefined {
    if ((this.command() & COMMAND_BUS_MASTER) === 0) return undefined;
    return this.hostBusOption ?? this.attachedBus;
  }

  protected override barRegion(bar: number): BusRegion | undefined {
    return bar === IOP_BRIDGE_BAR_WINDOW ? this.inboundWindow : undefined;
  }

  // --- Host side (BAR 0) ---

  protected mmioRead(bar: number, offset: number, sizeBytes: AccessSize): number | bigint {
    if (bar !== IOP_BRIDGE_BAR_MU || sizeBytes !== 4) return this.badAccess(`host read of ${sizeBytes} at BAR${bar}+${hex(offset)}`, sizeBytes);
    switch (offset) {
      case MU_HOST_IMR0: return this.imr[0]!;
      case MU_HOST_IMR1: return this.imr[1]!;
      case MU_HOST_OMR0: return this.readOmr(0);
      case MU_HOST_OMR1: return this.readOmr(1);
      case MU_HOST_IDR: return this.idr;
      case MU_HOST_ODR: return this.odr;
      case MU_HOST_OISR: return this.oisr();
      case MU_HOST_OIMR: return this.oimr;
      case MU_HOST_INBOUND_PORT: return this.popInboundFree();
      case MU_HOST_OUTBOUND_PORT: return this.popOutboundPost();
      default: return this.badAccess(`host read of unknown register ${hex(offset)}`, sizeBytes);
    }
  }

  protected mmioWrite(bar: number, offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (bar !== IOP_BRIDGE_BAR_MU || sizeBytes !== 4) {
      this.badAccess(`host write of ${sizeBytes} at BAR${bar}+${hex(offset)}`, sizeBytes);
      return;
    }
    const v = Number(value) >>> 0;
    switch (offset) {
      case MU_HOST_IMR0: this.writeImr(0, v); break;
      case MU_HOST_IMR1: this.writeImr(1, v); break;
      case MU_HOST_IDR: this.idr = (this.idr | v) >>> 0; this.updateLocalIrq(); break; // RW1S
      case MU_HOST_ODR: this.odr = (this.odr & ~v) >>> 0; break; // RW1C
      case MU_HOST_OIMR: this.writeOimr(v); break;
      case MU_HOST_INBOUND_PORT: this.postInbound(v); break;
      case MU_HOST_OUTBOUND_PORT: this.returnOutboundFree(v); break;
      default: this.badAccess(`host write of read-only or unknown register ${hex(offset)}`, sizeBytes);
    }
  }

  private readOmr(index: number): number {
    this.oisrMessage &= ~(MU_OISR_OMR0 << index); // reading the message acknowledges it
    return this.omr[index]!;
  }

  private writeImr(index: number, value: number): void {
    this.imr[index] = value;
    this.iisrLatched |= MU_IISR_IMR0 << index;
    this.updateLocalIrq();
  }

  private writeOimr(value: number): void {
    const unmasked = this.oimr & ~value;
    this.oimr = value & MU_OISR_DEFINED;
    // A message cause that happened while masked is still in OISR: it goes out now (pending until unmasked).
    if ((unmasked & this.oisr() & MU_OISR_MESSAGE) !== 0) this.signal(IOP_BRIDGE_VECTOR_MESSAGE);
    this.updateOutboundPostVector();
  }

  private oisr(): number {
    let status = this.oisrMessage;
    if (this.odr !== 0) status |= MU_OISR_DOORBELL;
    if (this.queuesValid && !this.queueEmpty(MU_QUEUE_OUTBOUND_POST)) status |= MU_OISR_OUTBOUND_POST;
    return status;
  }

  /** Inbound port read: the next free inbound frame address the storage processor posted, or all ones. */
  private popInboundFree(): number {
    if (!this.queuesValid || this.queueEmpty(MU_QUEUE_INBOUND_FREE)) return MU_QUEUE_EMPTY;
    return this.popEntry(MU_QUEUE_INBOUND_FREE);
  }

  /** Inbound port write: queue a filled frame for the storage processor; a full queue drops it and says so. */
  private postInbound(address: number): void {
    if (!this.queuesValid) {
      this.guestError(`inbound post of ${hex(address)} while the queues are disabled: dropped`, 4);
      return;
    }
    if (this.takeFault("drop-next-inbound-post")) return;
    const copies = this.takeFault("duplicate-next-inbound-post") ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      if (this.queueFull(MU_QUEUE_INBOUND_POST)) this.iisrLatched |= MU_IISR_INBOUND_POST_FULL;
      else {
        this.pushEntry(MU_QUEUE_INBOUND_POST, address);
        this.iisrLatched |= MU_IISR_INBOUND_POST;
      }
    }
    this.updateLocalIrq();
  }

  /** Outbound port read: the next frame address the storage processor posted, or all ones. */
  private popOutboundPost(): number {
    if (!this.queuesValid || this.queueEmpty(MU_QUEUE_OUTBOUND_POST)) return MU_QUEUE_EMPTY;
    if (this.takeFault("drop-next-outbound-post")) {
      this.popEntry(MU_QUEUE_OUTBOUND_POST); // lost on the way
      this.updateOutboundPostVector();
      if (this.queueEmpty(MU_QUEUE_OUTBOUND_POST)) return MU_QUEUE_EMPTY;
    }
    const address = this.takeFault("duplicate-next-outbound-post") ? this.peekEntry(MU_QUEUE_OUTBOUND_POST) : this.popEntry(MU_QUEUE_OUTBOUND_POST);
    this.updateOutboundPostVector();
    return address;
  }

  /** Outbound port write: the host hands a free outbound frame (in its own RAM) back to the storage processor. */
  private returnOutboundFree(address: number): void {
    if (!this.queuesValid) {
      this.guestError(`outbound free return of ${hex(address)} while the queues are disabled: dropped`, 4);
      return;
    }
    if (this.queueFull(MU_QUEUE_OUTBOUND_FREE)) {
      this.guestError(`outbound free return of ${hex(address)} found the queue full: dropped`, 4);
      return;
    }
    this.pushEntry(MU_QUEUE_OUTBOUND_FREE, address);
  }

  private updateOutboundPostVector(): void {
    const active = (this.oisr() & ~this.oimr & MU_OISR_OUTBOUND_POST) !== 0;
    const rising = active && !this.outboundPostActive;
    this.outboundPostActive = active; // before signalling: the host's handler may pop and re-enter
    if (rising) this.signal(IOP_BRIDGE_VECTOR_OUTBOUND_POST);
  }

  // --- Local side (MuLocalRegion delegates here) ---

  localRead(offset: number, sizeBytes: AccessSize): number | bigint {
    if (sizeBytes !== 4) return this.badAccess(`local read of ${sizeBytes} at ${hex(offset)}`, sizeBytes);
    if (offset >= MU_LOCAL_IFHPR && offset <= MU_LOCAL_OFTPR && offset % 4 === 0) return this.pointers[(offset - MU_LOCAL_IFHPR) / 4]!;
    switch (offset) {
      case MU_LOCAL_IMR0: return this.imr[0]!;
      case MU_LOCAL_IMR1: return this.imr[1]!;
      case MU_LOCAL_OMR0: return this.omr[0]!;
      case MU_LOCAL_OMR1: return this.omr[1]!;
      case MU_LOCAL_IDR: return this.idr;
      case MU_LOCAL_IISR: return this.iisr();
      case MU_LOCAL_IIMR: return this.iimr;
      case MU_LOCAL_ODR: return this.odr;
      case MU_LOCAL_LVEC: return this.lvec;
      case MU_LOCAL_MUCR: return this.mucr;
      case MU_LOCAL_QBAR: return this.qbar;
      default: return this.badAccess(`local read of unknown register ${hex(offset)}`, sizeBytes);
    }
  }

  localWrite(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (sizeBytes !== 4) {
      this.badAccess(`local write of ${sizeBytes} at ${hex(offset)}`, sizeBytes);
      return;
    }
    const v = Number(value) >>> 0;
    if (offset >= MU_LOCAL_IFHPR && offset <= MU_LOCAL_OFTPR && offset % 4 === 0) {
      this.writePointer((offset - MU_LOCAL_IFHPR) / 4, v);
      return;
    }
    switch (offset) {
      case MU_LOCAL_OMR0: this.writeOmr(0, v); break;
      case MU_LOCAL_OMR1: this.writeOmr(1, v); break;
      case MU_LOCAL_IDR: this.idr = (this.idr & ~v) >>> 0; this.updateLocalIrq(); break; // RW1C
      case MU_LOCAL_IISR: this.iisrLatched &= ~v; this.updateLocalIrq(); break; // RW1C
      case MU_LOCAL_IIMR: this.iimr = v & MU_IISR_DEFINED; this.updateLocalIrq(); break;
      case MU_LOCAL_ODR: this.ringOutboundDoorbell(v); break;
      case MU_LOCAL_LVEC: this.lvec = v & 0xff; break;
      case MU_LOCAL_MUCR: this.writeMucr(v); break;
      case MU_LOCAL_QBAR: this.qbar = v; this.validateQueues(); break;
      default: this.badAccess(`local write of read-only or unknown register ${hex(offset)}`, sizeBytes);
    }
  }

  private iisr(): number {
    return this.idr !== 0 ? this.iisrLatched | MU_IISR_DOORBELL : this.iisrLatched;
  }

  private updateLocalIrq(): void {
    const active = this.iisr() & ~this.iimr;
    const rising = active & ~this.localActive;
    this.localActive = active; // before raising: the handler may read and clear IISR re-entrantly
    if (rising !== 0) this.raiseLocalIrq(this.lvec);
  }

  private writeOmr(index: number, value: number): void {
    this.omr[index] = value;
    this.oisrMessage |= MU_OISR_OMR0 << index;
    if ((this.oimr & (MU_OISR_OMR0 << index)) === 0) this.signal(IOP_BRIDGE_VECTOR_MESSAGE);
  }

  private ringOutboundDoorbell(bits: number): void {
    if (bits === 0) return;
    this.odr = (this.odr | bits) >>> 0; // RW1S
    if ((this.oimr & MU_OISR_DOORBELL) === 0) this.signal(IOP_BRIDGE_VECTOR_MESSAGE);
  }

  private writeMucr(value: number): void {
    const sizeCodeBefore = (this.mucr >> MU_MUCR_SIZE_SHIFT) & MU_MUCR_SIZE_MASK;
    this.mucr = value & (MU_MUCR_ENABLE | (MU_MUCR_SIZE_MASK << MU_MUCR_SIZE_SHIFT));
    if (((this.mucr >> MU_MUCR_SIZE_SHIFT) & MU_MUCR_SIZE_MASK) !== sizeCodeBefore) this.pointers.fill(0);
    this.validateQueues();
  }

  // Queues run only while MUCR enables them with a legal size and QBAR puts all four, aligned, inside RAM.
  private validateQueues(): void {
    this.queuesValid = false;
    if ((this.mucr & MU_MUCR_ENABLE) !== 0) {
      const sizeCode = (this.mucr >> MU_MUCR_SIZE_SHIFT) & MU_MUCR_SIZE_MASK;
      const queuesBytes = QUEUE_COUNT * (MU_QUEUE_ENTRIES_MIN << Math.min(sizeCode, MU_QUEUE_SIZE_CODE_MAX)) * 4;
      if (sizeCode > MU_QUEUE_SIZE_CODE_MAX) this.guestError(`MUCR size code ${sizeCode} > ${MU_QUEUE_SIZE_CODE_MAX}: queues disabled`, 4);
      else if (this.qbar % MU_QBAR_ALIGN_BYTES !== 0) this.guestError(`QBAR ${hex(this.qbar)} is not 4 KiB aligned: queues disabled`, 4);
      else if (this.qbar + queuesBytes > this.ramBytes) this.guestError(`queues at QBAR ${hex(this.qbar)} (${queuesBytes} bytes) leave RAM: queues disabled`, 4);
      else this.queuesValid = true;
    }
    this.updateOutboundPostVector();
  }

  private writePointer(index: number, value: number): void {
    if (!POINTER_LOCAL_WRITABLE[index]) {
      this.badAccess(`local write of read-only queue pointer ${hex(MU_LOCAL_IFHPR + index * 4)}`, 4);
      return;
    }
    if (value >= this.entries()) {
      this.badAccess(`queue pointer ${hex(MU_LOCAL_IFHPR + index * 4)} set to ${value}, beyond ${this.entries()} entries`, 4);
      return;
    }
    this.pointers[index] = value;
    if (index === 2 * MU_QUEUE_OUTBOUND_POST) this.updateOutboundPostVector(); // OPHPR: the local side posted
  }

  // --- The queues in the storage processor's RAM ---

  private entries(): number {
    return MU_QUEUE_ENTRIES_MIN << Math.min((this.mucr >> MU_MUCR_SIZE_SHIFT) & MU_MUCR_SIZE_MASK, MU_QUEUE_SIZE_CODE_MAX);
  }

  private queueEmpty(queue: number): boolean {
    return this.pointers[2 * queue] === this.pointers[2 * queue + 1];
  }

  private queueFull(queue: number): boolean {
    return (this.pointers[2 * queue]! + 1) % this.entries() === this.pointers[2 * queue + 1];
  }

  // Entries go through Atomics: the storage firmware may run on another thread and reads them with atomic loads.
  private entryIndex(queue: number, index: number): number {
    return (this.qbar + (queue * this.entries() + index) * 4) / 4;
  }

  // The storage processor's RAM as 32-bit words, made once (memoryBytes says why).
  private words(): Uint32Array {
    const bytes = memoryBytes(this.memory);
    return (this.wordView ??= new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2));
  }

  private peekEntry(queue: number): number {
    return Atomics.load(this.words(), this.entryIndex(queue, this.pointers[2 * queue + 1]!));
  }

  private popEntry(queue: number): number {
    const value = this.peekEntry(queue);
    this.pointers[2 * queue + 1] = (this.pointers[2 * queue + 1]! + 1) % this.entries();
    return value;
  }

  private pushEntry(queue: number, value: number): void {
    const index = this.entryIndex(queue, this.pointers[2 * queue]!);
    Atomics.store(this.words(), index, value);
    writeWatch(this.memory).onWrite?.(index * 4, 4);
    this.pointers[2 * queue] = (this.pointers[2 * queue]! + 1) % this.entries();
  }

  private takeFault(kind: IopBridgeFault["kind"]): boolean {
    const count = this.faultsArmed.get(kind) ?? 0;
    if (count === 0) return false;
    if (count === 1) this.faultsArmed.delete(kind);
    else this.faultsArmed.set(kind, count - 1);
    return true;
  }

  private badAccess(message: string, sizeBytes: AccessSize): number | bigint {
    const ones = this.guestError(message, sizeBytes);
    return sizeBytes === 8 ? 0xffff_ffff_ffff_ffffn : ones;
  }
}

/** The MU local-side registers on the storage processor's bus; the state is the bridge function's. */
export class MuLocalRegion implements BusRegion {
  readonly name: string;
  readonly layer = Layer.MessagingUnit;

  constructor(private readonly bridge: IopBridgeFunction) {
    this.name = `${bridge.name}.mu-local`;
  }

  read(offset: number, sizeBytes: AccessSize): number | bigint {
    return this.bridge.localRead(offset, sizeBytes);
  }

  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    this.bridge.localWrite(offset, sizeBytes, value);
  }
}

/**
 * The ATU outbound window on the storage processor's bus: offset `a` is host-bus address `a`, so it reaches host RAM
 * and BARs on the host bus. The bridge function masters these cycles, so they need its Bus Master bit. A failed bulk
 * transfer throws WindowFault, which the storage bus's dmaRead/dmaWrite turn into a DMA fault for the master.
 */
export class OutboundWindowRegion implements BusRegion {
  readonly name: string;
  readonly layer = Layer.MessagingUnit;
  guestErrorCount = 0;

  constructor(private readonly bridge: IopBridgeFunction, private readonly log: (message: string) => void) {
    this.name = `${bridge.name}.outbound`;
  }

  read(offset: number, sizeBytes: AccessSize): number | bigint {
    const bus = this.bridge.outboundBus();
    if (bus === undefined) {
      this.guestError(`read of ${sizeBytes} at host ${hex(offset)} while the bridge may not master`);
      return sizeBytes === 8 ? 0xffff_ffff_ffff_ffffn : 2 ** (sizeBytes * 8) - 1;
    }
    return bus.read(offset, sizeBytes);
  }

  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    const bus = this.bridge.outboundBus();
    if (bus === undefined) {
      this.guestError(`write of ${sizeBytes} at host ${hex(offset)} while the bridge may not master: dropped`);
      return;
    }
    bus.write(offset, sizeBytes, value);
  }

  write64(offset: number, low: number, high: number): void {
    const bus = this.bridge.outboundBus();
    if (bus === undefined) {
      this.guestError(`write of 8 at host ${hex(offset)} while the bridge may not master: dropped`);
      return;
    }
    bus.write64Halves(offset | 0, Math.floor(offset / 2 ** 32), low, high);
  }

  readBytes(offset: number, lengthBytes: number): Uint8Array {
    const bus = this.bridge.outboundBus();
    if (bus === undefined) throw new WindowFault(`${this.bridge.name} may not master (Bus Master off)`);
    const result = bus.dmaRead(this.bridge.name, BigInt(offset), lengthBytes);
    if (!result.ok) throw new WindowFault(result.fault);
    return result.bytes;
  }

  readInto(offset: number, into: Uint8Array): void {
    const bus = this.bridge.outboundBus();
    if (bus === undefined) throw new WindowFault(`${this.bridge.name} may not master (Bus Master off)`);
    const result = bus.dmaReadInto(this.bridge.name, BigInt(offset), into);
    if (!result.ok) throw new WindowFault(result.fault);
  }

  // The host bus's quietView at host address `offset` (host RAM): a storage request's data read into place there.
  quietView(offset: number, lengthBytes: number): Uint8Array | undefined {
    return this.bridge.outboundBus()?.quietView(BigInt(offset), lengthBytes);
  }

  writeBytes(offset: number, bytes: Uint8Array): void {
    const bus = this.bridge.outboundBus();
    if (bus === undefined) throw new WindowFault(`${this.bridge.name} may not master (Bus Master off)`);
    const result = bus.dmaWrite(this.bridge.name, BigInt(offset), bytes);
    if (!result.ok) throw new WindowFault(result.fault);
  }

  private guestError(message: string): void {
    this.guestErrorCount += 1;
    if (this.guestErrorCount <= 8) this.log(`${this.name}: guest error: ${message}`);
  }
}

/**
 * BAR 2, the inbound ATU window: host-bus `BAR2 + a` is the storage processor's RAM at `a`. The BAR is a power of
 * two; the part past the end of RAM reads all ones, drops writes, and faults DMA.
 */
class InboundWindowRegion implements BusRegion {
  readonly layer = Layer.MessagingUnit;

  constructor(
    readonly name: string,
    private readonly memory: WebAssembly.Memory,
    private readonly ramBytes: number,
    private readonly guestError: (message: string) => void,
  ) {}

  read(offset: number, sizeBytes: AccessSize): number | bigint {
    if (offset + sizeBytes > this.ramBytes) {
      this.guestError(`inbound window read of ${sizeBytes} at ${hex(offset)} is past RAM`);
      return sizeBytes === 8 ? 0xffff_ffff_ffff_ffffn : 2 ** (sizeBytes * 8) - 1;
    }
    return readLe(memoryBytes(this.memory), offset, sizeBytes);
  }

  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (offset + sizeBytes > this.ramBytes) {
      this.guestError(`inbound window write of ${sizeBytes} at ${hex(offset)} is past RAM: dropped`);
      return;
    }
    writeLe(memoryBytes(this.memory), offset, sizeBytes, value);
    writeWatch(this.memory).onWrite?.(offset, sizeBytes);
  }

  write64(offset: number, low: number, high: number): void {
    if (offset + 8 > this.ramBytes) {
      this.guestError(`inbound window write of 8 at ${hex(offset)} is past RAM: dropped`);
      return;
    }
    writeLe64(memoryBytes(this.memory), offset, low, high);
    writeWatch(this.memory).onWrite?.(offset, 8);
  }

  readBytes(offset: number, lengthBytes: number): Uint8Array {
    if (offset + lengthBytes > this.ramBytes) throw new WindowFault(`${lengthBytes} bytes at ${hex(offset)} pass the end of the storage processor's RAM`);
    writeWatch(this.memory).onRead?.(offset, lengthBytes);
    return copyOf(memoryBytes(this.memory).subarray(offset, offset + lengthBytes));
  }

  readInto(offset: number, into: Uint8Array): void {
    if (offset + into.length > this.ramBytes) throw new WindowFault(`${into.length} bytes at ${hex(offset)} pass the end of the storage processor's RAM`);
    writeWatch(this.memory).onRead?.(offset, into.length);
    copyBytes(into, 0, memoryBytes(this.memory).subarray(offset, offset + into.length));
  }

  view(offset: number, lengthBytes: number): Uint8Array {
    if (offset + lengthBytes > this.ramBytes) throw new WindowFault(`${lengthBytes} bytes at ${hex(offset)} pass the end of the storage processor's RAM`);
    writeWatch(this.memory).onRead?.(offset, lengthBytes);
    return memoryBytes(this.memory).subarray(offset, offset + lengthBytes);
  }

  writeBytes(offset: number, bytes: Uint8Array): void {
    if (offset + bytes.length > this.ramBytes) throw new WindowFault(`${bytes.length} bytes at ${hex(offset)} pass the end of the storage processor's RAM`);
    copyBytes(memoryBytes(this.memory), offset, bytes);
    writeWatch(this.memory).onWrite?.(offset, bytes.length);
  }
}

function powerOfTwoAtLeast(value: number): number {
  let size = 16; // the smallest BAR
  while (size < value) size *= 2; // at most 53 passes for any safe integer
  return size;
}
