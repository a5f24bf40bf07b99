// A PCI function with a type-0 configuration header, BARs with the sizing protocol, a capability list, MSI-X and a
// DMA port (PCI Local Bus 3.0, "Configuration Space"; PCI Express Base, "MSI-X Capability and Table Structure").
// Device models extend it: they name their BARs and capabilities and implement mmioRead/mmioWrite.
// BARs decode on the owning processor's bus only while Memory Space is enabled; DMA works only with Bus Master on.
import type { AccessSize, Bus, BusRegion, DmaResult } from "./bus.ts";
import type { PciFunction } from "./ecam.ts";
import { Layer } from "../sim/layer_meter.ts";
import { hex } from "../sim/trace.ts";

// Configuration header offsets (type 0).
export const CFG_VENDOR_ID = 0x00;
export const CFG_DEVICE_ID = 0x02;
export const CFG_COMMAND = 0x04;
export const CFG_STATUS = 0x06;
export const CFG_REVISION = 0x08;
export const CFG_CLASS_CODE = 0x09; // 3 bytes: prog-if, subclass, base class
export const CFG_HEADER_TYPE = 0x0e;
export const CFG_BAR0 = 0x10;
export const CFG_SUBSYSTEM_VENDOR_ID = 0x2c;
export const CFG_SUBSYSTEM_ID = 0x2e;
export const CFG_CAPABILITIES = 0x34;
export const CFG_INTERRUPT_PIN = 0x3d;
export const COMMAND_MEMORY = 1 << 1;
export const COMMAND_BUS_MASTER = 1 << 2;
export const STATUS_CAPABILITIES = 1 << 4;
export const CAP_MSIX = 0x11;
export const CAP_VENDOR = 0x09;
const CAPABILITIES_START = 0x40;
const CAPABILITY_HEADER_BYTES = 2; // Capability ID and Next Pointer, written by addCapability
// MSI-X capability (PCI Local Bus 3.0, "MSI-X Capability and Table Structure"), offsets from the capability:
// |0 Capability ID|1 Next Pointer|2-3 Message Control|4-7 Table Offset/Table BIR|8-11 PBA Offset/PBA BIR|
const MSIX_MESSAGE_CONTROL = 0x02;
const MSIX_TABLE_OFFSET_BIR = 0x04;
const MSIX_PBA_OFFSET_BIR = 0x08;
const MSIX_CAPABILITY_BYTES = 12;
const MSIX_CONTROL_TABLE_SIZE = 0x7ff; // Table Size: the table's entries - 1
const MSIX_CONTROL_FUNCTION_MASK = 0x4000;
const MSIX_CONTROL_ENABLE = 0x8000;
const MSIX_TABLE_BIR = 0x7; // the BAR Indicator Register, the low 3 bits of Table Offset/Table BIR (and of PBA's)
// MSI-X table entry, 16 bytes, in the BAR: |0 Message Address|4 Message Upper Address|8 Message Data|12 Vector Control|
const MSIX_ENTRY_BYTES = 16;
const MSIX_ENTRY_MESSAGE_ADDRESS = 0;
const MSIX_ENTRY_MESSAGE_UPPER_ADDRESS = 4;
const MSIX_ENTRY_MESSAGE_DATA = 8;
const MSIX_ENTRY_VECTOR_CONTROL = 12;
const MSIX_VECTOR_CONTROL_MASK_BIT = 1;

export interface BarSpec {
  index: number; // 0..5; a 64-bit BAR also takes index + 1
  sizeBytes: number; // a power of two, at least 16
  is64?: boolean;
  prefetchable?: boolean;
}

export interface MsixSpec {
  vectorCount: number;
  bar: number; // the table and the PBA share this BAR
  tableOffset: number;
  pbaOffset: number;
}

export interface PciFunctionSpec {
  name: string;
  vendorId: number;
  deviceId: number;
  classCode: number; // 24 bits: base class << 16 | subclass << 8 | prog-if
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  bars: BarSpec[];
  msix?: MsixSpec;
}

export abstract class PciFunctionBase implements PciFunction {
  readonly name: string;
  protected readonly config = new Uint8Array(4096);
  private readonly writable = new Uint8Array(4096); // per byte: which bits the driver may write
  private readonly bars: (BarSpec | undefined)[] = [];
  private readonly barRegions = new Map<number, BusRegion>();
  private lastCapability = 0;
  private nextCapabilityOffset = CAPABILITIES_START;
  private msixCapability = 0;
  private msixTable: Uint8Array | undefined;
  private msixTableView: DataView | undefined;
  private msixPending: Uint8Array | undefined;
  private bus: Bus | undefined;
  guestErrorCount = 0;
  /** What a meter charges this function's register accesses to (layer_meter.ts); models set their own. */
  protected meterLayer: Layer = Layer.Other;

  constructor(readonly spec: PciFunctionSpec, private readonly log: (message: string) => void) {
    this.name = spec.name;
    const view = new DataView(this.config.buffer);
    view.setUint16(CFG_VENDOR_ID, spec.vendorId, true);
    view.setUint16(CFG_DEVICE_ID, spec.deviceId, true);
    this.config[CFG_REVISION] = spec.revision ?? 1;
    this.config[CFG_CLASS_CODE] = spec.classCode & 0xff;
    this.config[CFG_CLASS_CODE + 1] = (spec.classCode >> 8) & 0xff;
    this.config[CFG_CLASS_CODE + 2] = (spec.classCode >> 16) & 0xff;
    view.setUint16(CFG_SUBSYSTEM_VENDOR_ID, spec.subsystemVendorId ?? spec.vendorId, true);
    view.setUint16(CFG_SUBSYSTEM_ID, spec.subsystemId ?? spec.deviceId, true);
    view.setUint16(CFG_COMMAND, 0, true);
    this.writable[CFG_COMMAND] = COMMAND_MEMORY | COMMAND_BUS_MASTER;
    for (const bar of spec.bars) this.declareBar(bar);
    if (spec.msix !== undefined) this.declareMsix(spec.msix);
  }

  /** Called by the board once the function is plugged into `bus`'s ECAM window. */
  attach(bus: Bus): void {
    this.bus = bus;
  }

  /** Restores every power-on value of the header (BARs, command, MSI-X); subclasses reset their own state too. */
  resetFunction(): void {
    this.setCommand(0);
    for (const bar of this.bars) if (bar !== undefined) this.writeBarRaw(bar.index, 0n);
    if (this.msixCapability !== 0) {
      new DataView(this.config.buffer).setUint16(this.msixCapability + MSIX_MESSAGE_CONTROL, this.spec.msix!.vectorCount - 1, true);
      this.msixTable!.fill(0);
      for (let v = 0; v < this.spec.msix!.vectorCount; v++) this.msixTable![v * MSIX_ENTRY_BYTES + MSIX_ENTRY_VECTOR_CONTROL] = MSIX_VECTOR_CONTROL_MASK_BIT;
      this.msixPending!.fill(0);
    }
  }

  // --- Configuration space, as ECAM delivers it ---

  configRead(register: number, sizeBytes: AccessSize): number {
    if (register % sizeBytes !== 0) return this.guestError(`config read of ${sizeBytes} at ${hex(register)} unaligned`, sizeBytes);
    let value = 0;
    for (let i = sizeBytes - 1; i >= 0; i--) value = value * 256 + this.config[register + i]!;
    return value;
  }

  configWrite(register: number, sizeBytes: AccessSize, value: number): void {
    if (register % sizeBytes !== 0) {
      this.guestError(`config write of ${sizeBytes} at ${hex(register)} unaligned`, sizeBytes);
      return;
    }
    const before = { command: this.command(), bars: this.bars.map((b) => (b === undefined ? undefined : this.barAddress(b.index))) };
    const msixBefore = this.msixControl(); // read before the write, so enabling or unmasking delivers what is pending
    for (let i = 0; i < sizeBytes; i++) {
      const at = register + i;
      const byte = (value >>> (8 * i)) & 0xff;
      this.config[at] = (this.config[at]! & ~this.writable[at]!) | (byte & this.writable[at]!);
    }
    if (this.command() !== before.command || this.bars.some((b, i) => b !== undefined && this.barAddress(b.index) !== before.bars[i])) this.remap();
    if (this.msixControl() !== msixBefore || this.command() !== before.command) this.msixDeliverPending(); // bus master back on: send what waited
  }

  command(): number {
    return this.config[CFG_COMMAND]! | (this.config[CFG_COMMAND + 1]! << 8);
  }

  /** The bus address BAR `index` is programmed to (64-bit BARs combine two registers). */
  barAddress(index: number): bigint {
    const bar = this.bars[index];
    if (bar === undefined) return 0n;
    const view = new DataView(this.config.buffer);
    const low = BigInt(view.getUint32(CFG_BAR0 + index * 4, true) & ~0xf);
    const high = bar.is64 === true ? BigInt(view.getUint32(CFG_BAR0 + (index + 1) * 4, true)) : 0n;
    return (high << 32n) | BigInt.asUintN(32, low);
  }

  /** Adds a capability to the list; `body` starts after the ID and next-pointer bytes. Returns its offset. */
  protected addCapability(id: number, body: Uint8Array, writableMask?: Uint8Array): number {
    const offset = this.nextCapabilityOffset;
    if (offset + CAPABILITY_HEADER_BYTES + body.length > 0x100) throw new Error(`${this.name}: capabilities overflow the 256-byte header`);
    this.config[offset] = id;
    this.config[offset + 1] = 0;
    this.config.set(body, offset + CAPABILITY_HEADER_BYTES);
    if (writableMask !== undefined) this.writable.set(writableMask, offset + CAPABILITY_HEADER_BYTES);
    this.nextCapabilityOffset = alignUp(offset + CAPABILITY_HEADER_BYTES + body.length, 4);
    if (this.lastCapability === 0) this.config[CFG_CAPABILITIES] = offset;
    else this.config[this.lastCapability + 1] = offset;
    this.lastCapability = offset;
    this.config[CFG_STATUS] = this.config[CFG_STATUS]! | STATUS_CAPABILITIES;
    return offset;
  }

  // --- BARs ---

  /** A register read in BAR `bar` at `offset`; out-of-range or unknown registers are guest errors (all ones). */
  protected abstract mmioRead(bar: number, offset: number, sizeBytes: AccessSize): number | bigint;
  protected abstract mmioWrite(bar: number, offset: number, sizeBytes: AccessSize, value: number | bigint): void;

  /**
   * A subclass's own region for BAR `bar`, mapped instead of the register region built here: a memory-like BAR (a
   * window onto RAM) needs readBytes/writeBytes so DMA can reach it. Undefined: registers through mmioRead/mmioWrite.
   * Return the same object on every call; it is unmapped by identity when the BAR moves.
   */
  protected barRegion(_bar: number): BusRegion | undefined {
    return undefined;
  }

  private declareBar(bar: BarSpec): void {
    if (bar.sizeBytes < 16 || (bar.sizeBytes & (bar.sizeBytes - 1)) !== 0) throw new Error(`${this.name}: BAR${bar.index} size must be a power of two >= 16`);
    this.bars[bar.index] = bar;
    const flags = (bar.is64 === true ? 0b100 : 0) | (bar.prefetchable === true ? 0b1000 : 0);
    this.config[CFG_BAR0 + bar.index * 4] = flags;
    // The sizing protocol: address bits below the size are read-only zero, so writing all ones reads back ~(size-1).
    const mask = BigInt.asUintN(64, ~BigInt(bar.sizeBytes - 1)) & (bar.is64 === true ? 0xffff_ffff_ffff_fff0n : 0xffff_fff0n);
    for (let i = 0; i < (bar.is64 === true ? 8 : 4); i++) this.writable[CFG_BAR0 + bar.index * 4 + i] = Number((mask >> BigInt(8 * i)) & 0xffn);
  }

  private writeBarRaw(index: number, address: bigint): void {
    const view = new DataView(this.config.buffer);
    const bar = this.bars[index]!;
    const flags = view.getUint32(CFG_BAR0 + index * 4, true) & 0xf;
    view.setUint32(CFG_BAR0 + index * 4, Number(address & 0xffff_fff0n) | flags, true);
    if (bar.is64 === true) view.setUint32(CFG_BAR0 + (index + 1) * 4, Number(address >> 32n), true);
  }

  private setCommand(value: number): void {
    new DataView(this.config.buffer).setUint16(CFG_COMMAND, value, true);
    this.remap();
  }

  // Maps each BAR at its programmed address while Memory Space is on; unmaps otherwise.
  private remap(): void {
    if (this.bus === undefined) return;
    for (const region of this.barRegions.values()) this.bus.unmap(region);
    this.barRegions.clear();
    if ((this.command() & COMMAND_MEMORY) === 0) return;
    for (const bar of this.bars) {
      if (bar === undefined) continue;
      const base = this.barAddress(bar.index);
      if (base === 0n) continue; // unprogrammed
      const region: BusRegion = this.barRegion(bar.index) ?? {
        name: `${this.name}.bar${bar.index}`,
        layer: this.meterLayer,
        read: (offset, sizeBytes) => this.barRead(bar.index, offset, sizeBytes),
        write: (offset, sizeBytes, value) => this.barWrite(bar.index, offset, sizeBytes, value),
      };
      try {
        this.bus.map(base, BigInt(bar.sizeBytes), region);
        this.barRegions.set(bar.index, region);
      } catch (error) {
        this.guestError(`BAR${bar.index} at ${hex(base)}: ${(error as Error).message}`, 4);
      }
    }
  }

  private barRead(bar: number, offset: number, sizeBytes: AccessSize): number | bigint {
    const msix = this.spec.msix;
    if (msix !== undefined && bar === msix.bar) {
      if (offset >= msix.tableOffset && offset < msix.tableOffset + msix.vectorCount * MSIX_ENTRY_BYTES) return readLe(this.msixTable!, offset - msix.tableOffset, sizeBytes);
      if (offset >= msix.pbaOffset && offset < msix.pbaOffset + this.msixPending!.length) return readLe(this.msixPending!, offset - msix.pbaOffset, sizeBytes);
    }
    return this.mmioRead(bar, offset, sizeBytes);
  }

  private barWrite(bar: number, offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    const msix = this.spec.msix;
    if (msix !== undefined && bar === msix.bar) {
      if (offset >= msix.tableOffset && offset < msix.tableOffset + msix.vectorCount * MSIX_ENTRY_BYTES) {
        writeLe(this.msixTable!, offset - msix.tableOffset, sizeBytes, value);
        this.msixDeliverPending();
        return;
      }
      if (offset >= msix.pbaOffset && offset < msix.pbaOffset + this.msixPending!.length) return; // read-only
    }
    this.mmioWrite(bar, offset, sizeBytes, value);
  }

  // --- MSI-X ---

  private declareMsix(msix: MsixSpec): void {
    if (msix.vectorCount < 1 || msix.vectorCount - 1 > MSIX_CONTROL_TABLE_SIZE) throw new RangeError(`${this.name}: MSI-X vector count ${msix.vectorCount}`);
    if ((msix.tableOffset & MSIX_TABLE_BIR) !== 0 || (msix.pbaOffset & MSIX_TABLE_BIR) !== 0) throw new RangeError(`${this.name}: MSI-X table or PBA offset not 8-byte aligned`);
    const at = (field: number): number => field - CAPABILITY_HEADER_BYTES; // the body starts after the header
    const body = new Uint8Array(MSIX_CAPABILITY_BYTES - CAPABILITY_HEADER_BYTES);
    const view = new DataView(body.buffer);
    view.setUint16(at(MSIX_MESSAGE_CONTROL), msix.vectorCount - 1, true); // Table Size
    view.setUint32(at(MSIX_TABLE_OFFSET_BIR), msix.tableOffset | msix.bar, true);
    view.setUint32(at(MSIX_PBA_OFFSET_BIR), msix.pbaOffset | msix.bar, true);
    const writable = new Uint8Array(body.length);
    new DataView(writable.buffer).setUint16(at(MSIX_MESSAGE_CONTROL), MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK, true);
    this.msixCapability = this.addCapability(CAP_MSIX, body, writable);
    this.msixTable = new Uint8Array(msix.vectorCount * MSIX_ENTRY_BYTES);
    for (let v = 0; v < msix.vectorCount; v++) this.msixTable[v * MSIX_ENTRY_BYTES + MSIX_ENTRY_VECTOR_CONTROL] = MSIX_VECTOR_CONTROL_MASK_BIT; // masked at reset
    this.msixPending = new Uint8Array(Math.ceil(msix.vectorCount / 64) * 8);
  }

  private msixControl(): number {
    const at = this.msixCapability + MSIX_MESSAGE_CONTROL;
    return this.msixCapability === 0 ? 0 : this.config[at]! | (this.config[at + 1]! << 8);
  }

  /**
   * Signals MSI-X vector `vector`: a memory write of the entry's data to its address, made by this function as bus
   * master. Masked (or MSI-X off, or Bus Master off: PCIe Base, "Command Register", an MSI-X message is a memory
   * write and Bus Master Enable gates it): the pending bit is set and the message goes out when that ends. Anything this
   * device wrote before calling signal() is already in memory, so the driver sees the data before the interrupt.
   */
  signal(vector: number): void {
    const msix = this.spec.msix;
    if (msix === undefined || vector < 0 || vector >= msix.vectorCount) throw new RangeError(`${this.name}: no MSI-X vector ${vector}`);
    const control = this.msixControl();
    const table = this.msixTableView ??= new DataView(this.msixTable!.buffer); // one view: signal() is on every completion's path
    const entry = vector * MSIX_ENTRY_BYTES;
    const masked = (control & MSIX_CONTROL_ENABLE) === 0 || (control & MSIX_CONTROL_FUNCTION_MASK) !== 0 || (table.getUint32(entry + MSIX_ENTRY_VECTOR_CONTROL, true) & MSIX_VECTOR_CONTROL_MASK_BIT) !== 0 || (this.command() & COMMAND_BUS_MASTER) === 0;
    if (masked) {
      this.msixPending![vector >> 3] = this.msixPending![vector >> 3]! | (1 << (vector & 7));
      return;
    }
    const upper = table.getUint32(entry + MSIX_ENTRY_MESSAGE_UPPER_ADDRESS, true);
    const lower = table.getUint32(entry + MSIX_ENTRY_MESSAGE_ADDRESS, true);
    const address = upper === 0 ? BigInt(lower) : (BigInt(upper) << 32n) | BigInt(lower);
    this.bus?.write(address, 4, table.getUint32(entry + MSIX_ENTRY_MESSAGE_DATA, true));
  }

  private msixDeliverPending(): void {
    const msix = this.spec.msix;
    if (msix === undefined) return;
    for (let vector = 0; vector < msix.vectorCount; vector++) {
      if ((this.msixPending![vector >> 3]! & (1 << (vector & 7))) === 0) continue;
      const control = this.msixControl();
      const masked = (control & MSIX_CONTROL_ENABLE) === 0 || (control & MSIX_CONTROL_FUNCTION_MASK) !== 0 || (this.msixTable![vector * MSIX_ENTRY_BYTES + MSIX_ENTRY_VECTOR_CONTROL]! & MSIX_VECTOR_CONTROL_MASK_BIT) !== 0 || (this.command() & COMMAND_BUS_MASTER) === 0;
      if (masked) continue;
      this.msixPending![vector >> 3] = this.msixPending![vector >> 3]! & ~(1 << (vector & 7));
      this.signal(vector);
    }
  }

  // --- DMA, as bus master ---

  protected dmaRead(address: bigint, lengthBytes: number): DmaResult {
    if ((this.command() & COMMAND_BUS_MASTER) === 0) return { ok: false, fault: "bus master disabled" };
    if (this.bus === undefined) return { ok: false, fault: "not attached" };
    return this.bus.dmaRead(this.name, address, lengthBytes);
  }

  /** dmaRead straight into `into` (its whole length), without a buffer per transfer. */
  protected dmaReadInto(address: bigint, into: Uint8Array): DmaResult {
    if ((this.command() & COMMAND_BUS_MASTER) === 0) return { ok: false, fault: "bus master disabled" };
    if (this.bus === undefined) return { ok: false, fault: "not attached" };
    return this.bus.dmaReadInto(this.name, address, into);
  }

  /** Bus.dmaView: a view instead of a copy; undefined when the region has none (then dmaReadInto). */
  protected dmaView(address: bigint, lengthBytes: number): DmaResult | undefined {
    if ((this.command() & COMMAND_BUS_MASTER) === 0) return { ok: false, fault: "bus master disabled" };
    if (this.bus === undefined) return { ok: false, fault: "not attached" };
    return this.bus.dmaView(this.name, address, lengthBytes);
  }

  /** Bus.quietView (no access made): undefined also while Bus Master is off. */
  protected quietView(address: bigint, lengthBytes: number): Uint8Array | undefined {
    if ((this.command() & COMMAND_BUS_MASTER) === 0 || this.bus === undefined) return undefined;
    return this.bus.quietView(address, lengthBytes);
  }

  protected dmaWrite(address: bigint, bytes: Uint8Array): DmaResult {
    if ((this.command() & COMMAND_BUS_MASTER) === 0) return { ok: false, fault: "bus master disabled" };
    if (this.bus === undefined) return { ok: false, fault: "not attached" };
    return this.bus.dmaWrite(this.name, address, bytes);
  }

  /** A bad access: logged (the first few), counted, answered with all ones. */
  protected guestError(message: string, sizeBytes: AccessSize): number {
    this.guestErrorCount += 1;
    if (this.guestErrorCount <= 8) this.log(`${this.name}: guest error: ${message}`);
    return sizeBytes === 8 ? 0xffff_ffff : 2 ** (sizeBytes * 8) - 1;
  }
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

// Register-sized accesses are assembled from bytes: a DataView per access would be garbage on every bus access,
// and a 32-bit value through BigInt two more. Only 64-bit values, which are bigints, take a DataView.
// The DataView of the last array a 64-bit access touched: accesses come in runs to one memory, and a DataView made
// per access is garbage on the bus's hot path (a messaging-unit frame is written in 64-bit words).
let lastViewBytes: Uint8Array | undefined;
let lastView: DataView | undefined;
function viewOf(bytes: Uint8Array): DataView {
  if (bytes !== lastViewBytes) {
    lastViewBytes = bytes;
    lastView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  return lastView!;
}

export function readLe(bytes: Uint8Array, offset: number, sizeBytes: AccessSize): number | bigint {
  if (offset + sizeBytes > bytes.length) return sizeBytes === 8 ? 0xffff_ffff_ffff_ffffn : 2 ** (sizeBytes * 8) - 1;
  switch (sizeBytes) {
    case 1: return bytes[offset]!;
    case 2: return bytes[offset]! | (bytes[offset + 1]! << 8);
    case 4: return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
    case 8: return viewOf(bytes).getBigUint64(offset, true);
  }
}

/** writeLe(bytes, offset, 8, high * 2^32 + low) from the 32-bit halves (signed or not): no BigInt made. */
export function writeLe64(bytes: Uint8Array, offset: number, low: number, high: number): void {
  if (offset + 8 > bytes.length) return;
  for (let i = 0; i < 4; i++) {
    bytes[offset + i] = (low >>> (8 * i)) & 0xff;
    bytes[offset + 4 + i] = (high >>> (8 * i)) & 0xff;
  }
}

export function writeLe(bytes: Uint8Array, offset: number, sizeBytes: AccessSize, value: number | bigint): void {
  if (offset + sizeBytes > bytes.length) return;
  if (sizeBytes === 8) {
    viewOf(bytes).setBigUint64(offset, typeof value === "bigint" && value >= 0n ? value : BigInt.asUintN(64, BigInt(value)), true);
    return;
  }
  // The low sizeBytes bytes of the value, as BigInt.asUintN would keep them (ToUint32 is the same modulo for a number).
  const low = typeof value === "number" ? value >>> 0 : Number(BigInt.asUintN(32, value));
  bytes[offset] = low & 0xff;
  if (sizeBytes >= 2) bytes[offset + 1] = (low >>> 8) & 0xff;
  if (sizeBytes === 4) {
    bytes[offset + 2] = (low >>> 16) & 0xff;
    bytes[offset + 3] = low >>> 24;
  }
}
