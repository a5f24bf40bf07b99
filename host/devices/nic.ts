// The TCP-offload NIC (docs/hardware.md, "TCP-offload NIC"): the host (emulator) terminates TCP on the board's
// portals through a NetworkBackend; the firmware sees connections and byte streams only, moved by DMA through an event
// queue, a receive-buffer ring and a transmit ring in the host processor's RAM. BAR 0 holds the registers, BAR 4 the
// MSI-X table (one vector: the event queue is not empty).
//
// Model: one engine does the ring work serially (a close, a transmit entry or a receive buffer at a time), each step
// taking a modelled latency on the board clock, and one event writer puts events into the queue, 2 µs apiece, in the
// order they were produced. A serial engine keeps every per-connection order without bookkeeping: Opened before any
// Received, Received in stream order, Sent in ring order, Closed last.
//
// Interpretations where docs/hardware.md is silent (each chosen so a driver written to the table works):
// - Registers are 32 bits wide and accessed as such; other sizes, unknown offsets and writes to read-only registers
//   are guest errors (logged, ignored, read as all ones). An invalid ring size or misaligned EVQ_BASE is ignored too.
// - RXQ_SIZE and TXQ_SIZE take powers of two 1..65536 (the table asks only "a power of two"); EVQ_SIZE 2..4096.
// - A head or tail write that would move past the other end of its ring (more posted than the ring holds, a tail
//   beyond the head) is a guest error and ignored: a lying driver must not make the NIC read stale entries.
// - CTRL bit 0 gates only new connections; clearing it leaves open connections and the rings working.
//   CTRL bit 1 restores every NIC register to its power-on value (enable off, rings forgotten) and drops every
//   connection at once; the PCI header and MSI-X are untouched (they are the function's, not the NIC's).
// - The event queue never overwrites an unconsumed entry: events wait in an internal FIFO. Its size is the sum of what
//   can be waiting (an Opened and a Closed per slot, plus ENGINE_EVENTS_MAX Received/Sent, because the engine takes no
//   new entry while that many of its events wait), so it cannot overflow by design. STATUS bit 1 (events lost) is
//   set when an event cannot be written because its DMA faulted, and by the FIFO guard should the sum ever be wrong.
// - A slot becomes free again only once the firmware has consumed its Closed event AND every transmit entry posted
//   before that has finished: an entry still queued for the old connection can then never reach a new client that
//   reuses the slot. Until then opened() does not hand the slot out.
// - A peer close is a FIN: bytes already received are still delivered (into buffers as they are posted), then Closed.
//   CONN_CLOSE and the TX close flag discard received bytes not yet delivered. CONN_CLOSE waits for the transmit
//   entries posted before it (the NIC sends FIN after queued data); entries for a gone connection finish as Sent with
//   lengthBytes 0 (nothing handed to TCP), which is what Sent's lengthBytes means here: bytes handed to TCP.
// - DMA faults never throw and never post a wrong event. A transmit descriptor that cannot be read is skipped (the
//   tail moves on, no Sent: its id is unknown); a transmit payload that cannot be read finishes as Sent with 0 bytes.
//   A receive descriptor that cannot be read, or names 0 bytes, is skipped (taken, no Received); a receive buffer that
//   cannot be written is skipped and its bytes go back to the front of the stream for the next buffer, so none is lost.
// - Receive buffers are filled with what is waiting when the engine takes them (not held back to fill them up);
//   connections with bytes waiting take buffers in turn. The backend is paused while a connection has bytes waiting
//   and no buffer is posted (or more than RX_HOLD_BYTES_MAX wait), and resumed once its bytes are all delivered.
import type { AccessSize } from "../bus/bus.ts";
import { PciFunctionBase, readLe } from "../bus/pci_function.ts";
import { Layer } from "../sim/layer_meter.ts";
import type { VirtualClock } from "../sim/clock.ts";
import { hex } from "../sim/trace.ts";

export const NIC_VENDOR_ID = 0x1234;
export const NIC_DEVICE_ID = 0x11e0;
export const NIC_CLASS_CODE = 0x020000; // network controller, Ethernet
export const NIC_BAR_REGISTERS = 0;
export const NIC_BAR_MSIX = 4;
export const NIC_VECTOR_EVENTS = 0;
export const NIC_CONN_MAX = 64;
const BAR_SIZE_BYTES = 4096;
const MSIX_TABLE_OFFSET = 0x000;
const MSIX_PBA_OFFSET = 0x800;

// BAR 0 registers, all 32 bits.
export const NIC_CTRL = 0x00;
export const NIC_STATUS = 0x04;
export const NIC_CONN_MAX_REG = 0x08;
export const NIC_EVQ_BASE_LO = 0x10;
export const NIC_EVQ_BASE_HI = 0x14;
export const NIC_EVQ_SIZE = 0x18;
export const NIC_EVQ_HEAD = 0x1c;
export const NIC_EVQ_TAIL = 0x20;
export const NIC_RXQ_BASE_LO = 0x30;
export const NIC_RXQ_BASE_HI = 0x34;
export const NIC_RXQ_SIZE = 0x38;
export const NIC_RXQ_HEAD = 0x3c;
export const NIC_RXQ_TAIL = 0x40;
export const NIC_TXQ_BASE_LO = 0x50;
export const NIC_TXQ_BASE_HI = 0x54;
export const NIC_TXQ_SIZE = 0x58;
export const NIC_TXQ_HEAD = 0x5c;
export const NIC_TXQ_TAIL = 0x60;
export const NIC_CONN_CLOSE = 0x70;

export const NIC_CTRL_ENABLE = 1 << 0;
export const NIC_CTRL_RESET = 1 << 1;
export const NIC_STATUS_ENABLED = 1 << 0;
export const NIC_STATUS_EVENTS_LOST = 1 << 1;
export const NIC_TX_FLAG_CLOSE = 1 << 0;

// Ring layouts: event |0 type u8|1 -|2 connection u16|4 lengthBytes u32|8 id u32|12 portal u16|14 -|;
// receive buffer |0 address u64|8 lengthBytes u32|12 id u32|; transmit |0 address u64|8 lengthBytes u32|12 id u32|
// 16 connection u16|18 flags u16|20 -|.
export const NIC_EVENT_BYTES = 16;
export const NIC_RX_ENTRY_BYTES = 16;
export const NIC_TX_ENTRY_BYTES = 24;
const EVQ_ALIGN_BYTES = 16;
const EVQ_ENTRIES_MIN = 2;
const EVQ_ENTRIES_MAX = 4096;
const RING_ENTRIES_MAX = 65536;

export enum NicEventType {
  Opened = 1, // a client connected to `portal` in slot `connection`
  Closed = 2, // the connection is gone; the slot is free again once the firmware has seen this
  Received = 3, // `lengthBytes` of the stream are in receive buffer `id`
  Sent = 4, // transmit entry `id` is finished; `lengthBytes` of it were handed to TCP
}

// A transmit entry larger than this is refused (Sent with 0 bytes) instead of gathered, so a length the driver made up
// cannot make the host allocate gigabytes. iSCSI's MaxBurstLength tops out just below it (RFC 7143, MaxBurstLength).
export const NIC_TX_ENTRY_BYTES_MAX = 16 << 20;
// A transmit payload this large goes to a backend with sendView as a view of guest RAM at the end of its copy time
// (a 1 MiB read's Data-In: one copy less per byte); a smaller one is gathered into the turn's socket output, which
// leaves in one write per turn (a 4 KiB read's header, data and status together).
export const NIC_TX_VIEW_BYTES_MIN = 32 * 1024;
// The most payload viewsAhead offers at once: a few replies of 1 MiB; more would only wait in the kernel's buffers.
const AHEAD_BYTES_MAX = 4 << 20;
// Received/Sent events that may wait in the FIFO before the engine stops taking ring entries.
const ENGINE_EVENTS_MAX = 32;
// Every event that can wait at once: an Opened and a Closed per slot (a slot is reused only after its Closed was
// consumed), and the engine's. Reaching it means that sum is wrong: the guard drops and flags instead of growing.
const EVENTS_PENDING_MAX = 2 * NIC_CONN_MAX + ENGINE_EVENTS_MAX;
// More than this waiting for one connection pauses it even while buffers are posted (the engine is behind).
const RX_HOLD_BYTES_MAX = 256 * 1024;
const LATENCY_DEFAULT_NS: NicLatencyNs = { event: 2_000, entry: 500 };
// Interrupt moderation: after an MSI the NIC holds the next one back for this long (board time), then sends one for
// every event written meanwhile. A burst of Sent events (one per transmit entry, ~4.5 µs apart for 4 KiB) then wakes
// the firmware once, not once per entry. An event after a quiet spell is signalled at once.
const IRQ_HOLDOFF_NS = 20_000;
// The engine's copy rate between guest RAM and the network when the board file names none (its `copyGBps`): 1 GB/s,
// so a 1 MiB transmit keeps the engine busy 1.05 ms of board time.
export const NIC_COPY_BYTES_PER_NS_DEFAULT = 1;

/** What the NIC asks of the network. Calls come from board-clock events. */
export interface NetworkBackend {
  /**
   * Room for the next `lengthBytes` of `connection`'s stream, for the NIC to gather a transmit entry's payload
   * straight into (no buffer of its own, no copy to hand over). Valid until the next sendSpace() or sendCommit(), of
   * any connection. For a connection the backend no longer holds, room whose bytes will go nowhere.
   */
  sendSpace(connection: number, lengthBytes: number): Uint8Array;
  /**
   * The first `lengthBytes` of the last sendSpace() go out, in order after every byte committed before them (0: none
   * do); ignored for a connection the backend no longer holds.
   */
  sendCommit(connection: number, lengthBytes: number): void;
  /**
   * Optional: `bytes` (a view of guest RAM, valid during this call only) go out, in order after every byte committed
   * before them: the backend writes what it can now and copies the rest. The NIC uses it for payloads of at least
   * NIC_TX_VIEW_BYTES_MIN, instead of sendSpace/sendCommit. Ignored for a connection the backend no longer holds.
   * `ahead`, when given, answers the payloads of the transmit entries posted after this one for the same connection
   * that the NIC will hand over next, in order, each by its own sendView call at its own time (the leading run that
   * qualifies: views of RAM, before any smaller entry, close or CONN_CLOSE target of the connection). Their memory
   * is the NIC's until their Sent events and stays as it is: the backend may write them with this one and skip
   * what it wrote when their calls come (TcpBackend: a reply's 64 KiB segments in one writev). The bytes then
   * leave before the board's model hands them over; only a reset of the NIC, a close by the peer or a driver that
   * breaks the ring's contract in between makes that visible (the early bytes are out, the model drops the rest).
   */
  sendView?(connection: number, bytes: Uint8Array, ahead?: () => readonly Uint8Array[]): void;
  close(connection: number): void; // FIN after the bytes already sent; the backend forgets the connection
  pause(connection: number, paused: boolean): void; // stop/resume delivering received bytes (backpressure)
  /**
   * Optional: the NIC is done with `part`, a piece of bytes it was handed (NicPort.received): they are in guest RAM.
   * Each byte handed over is reported at most once (never, when the NIC drops them: a close, a reset), so a backend
   * may reuse a chunk's memory once every byte of it was reported.
   */
  receivedDone?(part: Uint8Array): void;
}

/** What the network tells the NIC; the NIC implements it. Effects are scheduled at clock.nowNs, never applied inline. */
export interface NicPort {
  opened(portal: number): number | undefined; // the slot, or undefined when refused (disabled, or all 64 taken)
  received(connection: number, bytes: Uint8Array): void; // handed over: the caller must not reuse or change them
  closed(connection: number): void; // the peer closed or reset
}

export interface NicLatencyNs {
  event: number; // writing one event into the queue
  entry: number; // taking one ring entry (or closing a connection), before its bytes are copied at 1 GB/s
}

export interface NicOptions {
  name: string;
  clock: VirtualClock;
  backend: NetworkBackend;
  log: (message: string) => void;
  latencyNs?: NicLatencyNs;
  copyBytesPerNs?: number; // NIC_COPY_BYTES_PER_NS_DEFAULT when absent
}

export interface NicStats {
  eventsWritten: number;
  eventsLost: number;
  bytesReceived: number; // written into receive buffers
  bytesSent: number; // handed to the backend
  connectionsRefused: number;
}

enum SlotState {
  Free, // no connection; opened() may hand it out
  Open, // connected: bytes flow (inward only once the peer has closed)
  Closed, // gone; its Closed event waits in the FIFO or in the queue, not yet consumed by the firmware
  Draining, // the firmware consumed Closed; transmit entries it posted before that are still being finished
}

enum CloseCause {
  None, // nobody asked
  Peer, // the peer closed: deliver what was received, then Closed
  Firmware, // CONN_CLOSE or the TX close flag: drop what was received, FIN after queued data, then Closed
}

interface Slot {
  state: SlotState;
  generation: number; // counts allocations, so a port call made for an earlier occupant is recognised and dropped
  portal: number;
  backendOpen: boolean; // the backend still holds the connection (we have not closed it, the peer has not)
  close: CloseCause;
  closeTxTarget: number; // Firmware close: TXQ_TAIL must reach this first (the head when CONN_CLOSE came)
  rxChunks: Uint8Array[]; // bytes received and not yet in a buffer, in stream order
  rxPendingBytes: number;
  rxReady: boolean; // listed in rxReadyQueue
  paused: boolean; // the backend was told to pause
  closedEventIndex: number; // EVQ_HEAD value the Closed event was written at; -1 while it waits in the FIFO
  drainTxTarget: number; // Draining: TXQ_TAIL must reach this
}

interface NicEvent {
  type: NicEventType;
  connection: number;
  lengthBytes: number;
  id: number;
  portal: number;
}

interface Ring {
  base: bigint;
  size: number; // entries; 0 until the driver sets a valid size
  head: number; // free-running u32
  tail: number; // free-running u32
}

function emptyRing(): Ring {
  return { base: 0n, size: 0, head: 0, tail: 0 };
}

function freeSlot(generation: number): Slot {
  return {
    state: SlotState.Free, generation, portal: 0, backendOpen: false, close: CloseCause.None, closeTxTarget: 0,
    rxChunks: [], rxPendingBytes: 0, rxReady: false, paused: false, closedEventIndex: -1, drainTxTarget: 0,
  };
}

// Free-running u32 counters: true when `a` is at or past `b` (they never drift 2^31 apart).
function reached(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

function distance(from: number, to: number): number {
  return (to - from) >>> 0;
}

function isPowerOfTwoIn(value: number, min: number, max: number): boolean {
  return value >= min && value <= max && (value & (value - 1)) === 0;
}

export class NicDevice extends PciFunctionBase implements NicPort {
  readonly stats: NicStats = { eventsWritten: 0, eventsLost: 0, bytesReceived: 0, bytesSent: 0, connectionsRefused: 0 };
  private readonly clock: VirtualClock;
  private readonly backend: NetworkBackend;
  private readonly latencyNs: NicLatencyNs;
  private readonly copyBytesPerNs: number;
  private readonly slots: Slot[] = [];
  // Power-on state, restored by resetNic().
  private enabled = false;
  private eventsLost = false;
  private evq: Ring = emptyRing();
  private rxq: Ring = emptyRing();
  // Ring entries are read into these (their fields are taken at once): no buffer made per entry.
  private readonly txEntryScratch = new Uint8Array(NIC_TX_ENTRY_BYTES);
  private readonly rxEntryScratch = new Uint8Array(NIC_RX_ENTRY_BYTES);
  private txq: Ring = emptyRing();
  private events: NicEvent[] = []; // produced, not yet in the queue, oldest first
  private engineEventsPending = 0; // Received/Sent among `events`
  private rxReadyQueue: number[] = []; // slots with bytes waiting, in the order they take buffers
  private preferRx = false; // the engine alternates between the rings when both have work
  private engineBusy = false; // a step is in progress or scheduled
  private writerBusy = false; // an event write is scheduled
  private irqHoldUntilNs = 0; // interrupt moderation: no MSI before this board time
  private irqDeferred = false; // an MSI is scheduled for the end of the holdoff
  private enginePumping = false; // the engine's pending clock event is a pump (pumpRun), not a busyFor step
  // Clock events of pumpRun, writerRun and irqRun scheduled before a reset, still to come: each does nothing.
  private pumpStale = 0;
  private writerStale = 0;
  private irqStale = 0;
  private readonly eventEntry = new Uint8Array(NIC_EVENT_BYTES); // writeEvent's scratch, no allocation per event
  private readonly eventEntryView = new DataView(this.eventEntry.buffer);
  // Clock events scheduled before a reset carry the old epoch and do nothing when they run.
  private epoch = 0;

  constructor(options: NicOptions) {
    super(
      {
        name: options.name,
        vendorId: NIC_VENDOR_ID,
        deviceId: NIC_DEVICE_ID,
        classCode: NIC_CLASS_CODE,
        revision: 1,
        bars: [
          { index: NIC_BAR_REGISTERS, sizeBytes: BAR_SIZE_BYTES },
          { index: NIC_BAR_MSIX, sizeBytes: BAR_SIZE_BYTES },
        ],
        msix: { vectorCount: 1, bar: NIC_BAR_MSIX, tableOffset: MSIX_TABLE_OFFSET, pbaOffset: MSIX_PBA_OFFSET },
      },
      options.log,
    );
    this.meterLayer = Layer.Nic;
    this.clock = options.clock;
    this.backend = options.backend;
    this.latencyNs = options.latencyNs ?? LATENCY_DEFAULT_NS;
    this.copyBytesPerNs = options.copyBytesPerNs ?? NIC_COPY_BYTES_PER_NS_DEFAULT;
    for (let i = 0; i < NIC_CONN_MAX; i++) this.slots.push(freeSlot(0));
  }

  /** Power-on reset from the board: the PCI header and the NIC; every connection is dropped. */
  reset(): void {
    this.resetFunction();
    this.resetNic();
  }

  /** Slots not free (open, or closed and not yet released). */
  get connectionCount(): number {
    return this.slots.filter((s) => s.state !== SlotState.Free).length;
  }

  // --- NicPort: the network's side. Each effect runs as a clock event at the current time. ---

  opened(portal: number): number | undefined {
    // The slot is taken now, because the backend needs its number; the Opened event follows on the clock.
    const index = this.enabled ? this.slots.findIndex((s) => s.state === SlotState.Free) : -1;
    if (index < 0) {
      this.stats.connectionsRefused += 1;
      return undefined;
    }
    const slot = this.slots[index]!;
    const generation = slot.generation + 1;
    this.slots[index] = { ...freeSlot(generation), state: SlotState.Open, portal: portal & 0xffff, backendOpen: true };
    this.onPort(index, generation, () => this.enqueueEvent({ type: NicEventType.Opened, connection: index, lengthBytes: 0, id: 0, portal: portal & 0xffff }));
    return index;
  }

  received(connection: number, bytes: Uint8Array): void {
    const slot = this.slots[connection];
    if (slot === undefined || bytes.length === 0) return;
    // Kept as given, not copied: the backend hands the bytes over (NicPort.received) and never touches them again.
    this.onPort(connection, slot.generation, () => this.onReceived(connection, bytes));
  }

  closed(connection: number): void {
    const slot = this.slots[connection];
    if (slot === undefined) return;
    this.onPort(connection, slot.generation, () => this.onPeerClosed(connection));
  }

  // Runs `effect` at the current board time if the slot still holds the same open connection then.
  private onPort(index: number, generation: number, effect: () => void): void {
    this.clock.at(this.clock.nowNs, () => {
      const slot = this.slots[index]!;
      if (slot.generation === generation && slot.state === SlotState.Open) effect();
    });
  }

  private onReceived(index: number, bytes: Uint8Array): void {
    const slot = this.slots[index]!;
    if (!slot.backendOpen || slot.close === CloseCause.Firmware) return; // the firmware asked to close: nobody reads it
    slot.rxChunks.push(bytes);
    slot.rxPendingBytes += bytes.length;
    if (!slot.rxReady) {
      slot.rxReady = true;
      this.rxReadyQueue.push(index);
    }
    this.updatePause(index);
    this.pump();
  }

  private onPeerClosed(index: number): void {
    const slot = this.slots[index]!;
    slot.backendOpen = false; // the backend has forgotten it: no pause, send or close for it any more
    if (slot.close === CloseCause.None) slot.close = CloseCause.Peer;
    this.pump();
  }

  // --- Registers ---

  protected mmioRead(bar: number, offset: number, sizeBytes: AccessSize): number | bigint {
    if (bar !== NIC_BAR_REGISTERS || sizeBytes !== 4) return this.badAccess(`read of ${sizeBytes} bytes at BAR${bar} + ${hex(offset)}`, sizeBytes);
    switch (offset) {
      case NIC_CTRL: return this.enabled ? NIC_CTRL_ENABLE : 0; // reset self-clears: it is never seen set
      case NIC_STATUS: return (this.enabled ? NIC_STATUS_ENABLED : 0) | (this.eventsLost ? NIC_STATUS_EVENTS_LOST : 0);
      case NIC_CONN_MAX_REG: return NIC_CONN_MAX;
      case NIC_EVQ_BASE_LO: return Number(this.evq.base & 0xffff_ffffn);
      case NIC_EVQ_BASE_HI: return Number(this.evq.base >> 32n);
      case NIC_EVQ_SIZE: return this.evq.size;
      case NIC_EVQ_HEAD: return this.evq.head;
      case NIC_EVQ_TAIL: return this.evq.tail;
      case NIC_RXQ_BASE_LO: return Number(this.rxq.base & 0xffff_ffffn);
      case NIC_RXQ_BASE_HI: return Number(this.rxq.base >> 32n);
      case NIC_RXQ_SIZE: return this.rxq.size;
      case NIC_RXQ_HEAD: return this.rxq.head;
      case NIC_RXQ_TAIL: return this.rxq.tail;
      case NIC_TXQ_BASE_LO: return Number(this.txq.base & 0xffff_ffffn);
      case NIC_TXQ_BASE_HI: return Number(this.txq.base >> 32n);
      case NIC_TXQ_SIZE: return this.txq.size;
      case NIC_TXQ_HEAD: return this.txq.head;
      case NIC_TXQ_TAIL: return this.txq.tail;
      default: return this.badAccess(`read of ${hex(offset)} (no such register, or write-only)`, sizeBytes);
    }
  }

  protected mmioWrite(bar: number, offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (bar !== NIC_BAR_REGISTERS || sizeBytes !== 4) {
      this.badAccess(`write of ${sizeBytes} bytes at BAR${bar} + ${hex(offset)}`, sizeBytes);
      return;
    }
    const v = Number(BigInt.asUintN(32, BigInt(value)));
    switch (offset) {
      case NIC_CTRL: this.onCtrlWrite(v); return;
      case NIC_STATUS: if ((v & NIC_STATUS_EVENTS_LOST) !== 0) this.eventsLost = false; return; // RW1C
      case NIC_EVQ_BASE_LO:
        if (v % EVQ_ALIGN_BYTES !== 0) this.badAccess(`EVQ_BASE ${hex(v)} is not ${EVQ_ALIGN_BYTES}-aligned`, 4);
        else this.evq.base = (this.evq.base & ~0xffff_ffffn) | BigInt(v);
        return;
      case NIC_EVQ_BASE_HI: this.evq.base = (BigInt(v) << 32n) | (this.evq.base & 0xffff_ffffn); return;
      case NIC_EVQ_SIZE: this.onSizeWrite(this.evq, "EVQ_SIZE", v, EVQ_ENTRIES_MIN, EVQ_ENTRIES_MAX); return;
      case NIC_EVQ_TAIL: this.onEvqTailWrite(v); return;
      case NIC_RXQ_BASE_LO: this.rxq.base = (this.rxq.base & ~0xffff_ffffn) | BigInt(v); return;
      case NIC_RXQ_BASE_HI: this.rxq.base = (BigInt(v) << 32n) | (this.rxq.base & 0xffff_ffffn); return;
      case NIC_RXQ_SIZE: this.onSizeWrite(this.rxq, "RXQ_SIZE", v, 1, RING_ENTRIES_MAX); return;
      case NIC_RXQ_HEAD: this.onHeadWrite(this.rxq, "RXQ_HEAD", v); return;
      case NIC_TXQ_BASE_LO: this.txq.base = (this.txq.base & ~0xffff_ffffn) | BigInt(v); return;
      case NIC_TXQ_BASE_HI: this.txq.base = (BigInt(v) << 32n) | (this.txq.base & 0xffff_ffffn); return;
      case NIC_TXQ_SIZE: this.onSizeWrite(this.txq, "TXQ_SIZE", v, 1, RING_ENTRIES_MAX); return;
      case NIC_TXQ_HEAD: this.onHeadWrite(this.txq, "TXQ_HEAD", v); return;
      case NIC_CONN_CLOSE: this.onConnCloseWrite(v); return;
      default: this.badAccess(`write of ${hex(v)} to ${hex(offset)} (no such register, or read-only)`, 4);
    }
  }

  private onCtrlWrite(value: number): void {
    if ((value & NIC_CTRL_RESET) !== 0) this.resetNic();
    this.enabled = (value & NIC_CTRL_ENABLE) !== 0;
  }

  private onSizeWrite(ring: Ring, name: string, value: number, min: number, max: number): void {
    if (!isPowerOfTwoIn(value, min, max)) this.badAccess(`${name} ${value} is not a power of two in ${min}..${max}`, 4);
    else ring.size = value;
  }

  // RXQ_HEAD and TXQ_HEAD: the driver posts entries; never more than the ring holds, never taking posted ones back.
  private onHeadWrite(ring: Ring, name: string, value: number): void {
    const posted = distance(ring.tail, value);
    if (posted > ring.size || distance(ring.head, value) > posted) {
      this.badAccess(`${name} ${value} with tail ${ring.tail}, head ${ring.head} and ${ring.size} entries`, 4);
      return;
    }
    ring.head = value;
    this.pump(); // a paused connection resumes once the new buffers have taken all its bytes
  }

  // EVQ_TAIL: the driver consumed events; the tail moves forward, never past the head.
  private onEvqTailWrite(value: number): void {
    if (distance(this.evq.tail, value) > distance(this.evq.tail, this.evq.head)) {
      this.badAccess(`EVQ_TAIL ${value} with tail ${this.evq.tail} and head ${this.evq.head}`, 4);
      return;
    }
    this.evq.tail = value;
    for (const slot of this.slots) {
      if (slot.state === SlotState.Closed && slot.closedEventIndex >= 0 && !reached(slot.closedEventIndex, value)) this.startDraining(slot);
    }
    this.kickWriter();
  }

  private onConnCloseWrite(connection: number): void {
    const slot = this.slots[connection];
    if (slot === undefined || slot.state === SlotState.Free) {
      this.badAccess(`CONN_CLOSE of ${connection}, which is not open`, 4);
      return;
    }
    // Closed or Draining: the connection went away before the driver saw it; Firmware already: asked twice. Both fine.
    if (slot.state !== SlotState.Open || slot.close === CloseCause.Firmware) return;
    slot.close = CloseCause.Firmware;
    slot.closeTxTarget = this.txq.head;
    this.dropReceived(connection);
    this.pump();
  }

  private badAccess(message: string, sizeBytes: AccessSize): number | bigint {
    const value = this.guestError(message, sizeBytes);
    return sizeBytes === 8 ? 0xffff_ffff_ffff_ffffn : value;
  }

  // --- The engine: one ring entry or close at a time ---

  // Starts the engine on the clock if it is idle; never does work inside the caller (an MMIO write, a port effect).
  private pump(): void {
    if (this.engineBusy) return;
    this.engineBusy = true;
    this.enginePumping = true;
    this.clock.after(0, this.pumpRun);
  }

  // The pump's clock event: one function for the device's life, not a closure per step. A reset drops the one
  // scheduled before it (pumpStale); it runs before any scheduled after the reset (same delay, earlier sequence).
  private readonly pumpRun = (): void => {
    if (this.pumpStale > 0) {
      this.pumpStale -= 1;
      return;
    }
    this.engineBusy = false;
    this.enginePumping = false;
    this.engineStep();
  };

  // Picks the next piece of work: a close that is due, else a transmit entry or a receive buffer, alternating.
  private engineStep(): void {
    const closing = this.slots.findIndex((s, i) => this.closeDue(s, i));
    if (closing >= 0) return this.busyFor(this.latencyNs.entry, () => this.finishClose(closing));
    if (this.engineEventsPending >= ENGINE_EVENTS_MAX) return; // the event writer pumps when it makes room
    const txWork = this.txq.size > 0 && this.txq.tail !== this.txq.head;
    const rxWork = this.rxq.size > 0 && this.rxq.tail !== this.rxq.head && this.rxReadyNext() >= 0;
    if (txWork && (!rxWork || !this.preferRx)) {
      this.preferRx = true;
      this.startTransmit();
    } else if (rxWork) {
      this.preferRx = false;
      this.startReceive();
    }
  }

  // Marks the engine busy for `delayNs`, then runs `done` and looks for the next piece of work.
  private busyFor(delayNs: number, done: () => void): void {
    this.engineBusy = true;
    const epoch = this.epoch; // delays differ: a step scheduled before a reset may be due after one scheduled since
    this.clock.after(delayNs, () => {
      if (epoch !== this.epoch) return;
      this.engineBusy = false;
      done();
      this.engineStep();
    });
  }

  private closeDue(slot: Slot, index: number): boolean {
    if (slot.state !== SlotState.Open) return false;
    switch (slot.close) {
      case CloseCause.None: return false;
      case CloseCause.Peer: return slot.rxPendingBytes === 0; // FIN after the data: every byte delivered first
      case CloseCause.Firmware: return reached(this.txq.tail, slot.closeTxTarget);
      default: throw new Error(`${this.name}: slot ${index} has close cause ${String(slot.close)}`);
    }
  }

  // The connection is gone for the firmware: received bytes dropped, the backend closed (FIN after what it was sent).
  private finishClose(index: number): void {
    const slot = this.slots[index]!;
    if (slot.state !== SlotState.Open) return;
    this.dropReceived(index);
    if (slot.backendOpen) this.backend.close(index);
    slot.backendOpen = false;
    slot.state = SlotState.Closed;
    slot.closedEventIndex = -1;
    this.enqueueEvent({ type: NicEventType.Closed, connection: index, lengthBytes: 0, id: 0, portal: slot.portal });
  }

  // One transmit entry: descriptor and payload are gathered now; the bytes go to TCP once the copy time has passed.
  private startTransmit(): void {
    const at = this.txq.base + BigInt((this.txq.tail & (this.txq.size - 1)) * NIC_TX_ENTRY_BYTES);
    const descriptor = this.dmaReadInto(at, this.txEntryScratch);
    if (!descriptor.ok) {
      this.guestError(`transmit entry ${this.txq.tail} at ${hex(at)} unreadable (${descriptor.fault}): skipped`, 4);
      return this.busyFor(this.latencyNs.entry, () => this.finishTransmitEntry());
    }
    const entry = this.txEntryScratch;
    const address = readLe(entry, 0, 8) as bigint;
    const lengthBytes = readLe(entry, 8, 4) as number;
    const id = readLe(entry, 12, 4) as number;
    const connection = readLe(entry, 16, 2) as number;
    const flags = readLe(entry, 18, 2) as number;
    // The payload is gathered now, straight into the room the network gives for the connection's next bytes (the
    // socket's output of this turn), and goes out when the copy time has passed, if the connection is still there.
    let payloadBytes: number | undefined = 0; // undefined: dropped
    let spaceTaken = false; // sendSpace() was asked: a sendCommit() follows
    let view: Uint8Array | undefined; // a large payload's bytes, as a view of guest RAM, for sendView at the end
    if (lengthBytes > NIC_TX_ENTRY_BYTES_MAX) {
      this.guestError(`transmit entry ${id}: ${lengthBytes} bytes is more than ${NIC_TX_ENTRY_BYTES_MAX}: dropped`, 4);
      payloadBytes = undefined;
    } else if (lengthBytes > 0) {
      const open = this.slots[connection]?.state === SlotState.Open && this.slots[connection]!.backendOpen;
      // A large payload in RAM is read now (the same access and trace record) but its bytes are taken from guest RAM
      // when the copy time has passed: the network then writes them out from there, without a copy of its own
      // first. The driver may not touch a payload before its Sent event, which comes after that moment.
      const viewed = open && lengthBytes >= NIC_TX_VIEW_BYTES_MIN && this.backend.sendView !== undefined ? this.dmaView(address, lengthBytes) : undefined;
      if (viewed?.ok === true) view = viewed.bytes;
      spaceTaken = open && viewed === undefined;
      // A gone connection's payload is still read (the bus sees the same DMA), into a buffer that is then dropped.
      const gathered = viewed ?? this.dmaReadInto(address, open ? this.backend.sendSpace(connection, lengthBytes) : new Uint8Array(lengthBytes));
      if (gathered.ok) payloadBytes = lengthBytes;
      else {
        this.guestError(`transmit entry ${id}: payload at ${hex(address)} unreadable (${gathered.fault}): dropped`, 4);
        payloadBytes = undefined;
      }
    }
    const copyNs = Math.ceil((payloadBytes ?? 0) / this.copyBytesPerNs);
    this.busyFor(this.latencyNs.entry + copyNs, () => {
      const slot = this.slots[connection];
      let sentBytes = 0;
      if (payloadBytes !== undefined && slot !== undefined && slot.state === SlotState.Open && slot.backendOpen) {
        if (spaceTaken) this.backend.sendCommit(connection, payloadBytes);
        else if (view !== undefined) this.backend.sendView!(connection, view, () => this.viewsAhead(connection, flags));
        sentBytes = payloadBytes;
        this.stats.bytesSent += sentBytes;
      } else if (spaceTaken) {
        this.backend.sendCommit(connection, 0);
      }
      this.finishTransmitEntry();
      this.enqueueEngineEvent({ type: NicEventType.Sent, connection, lengthBytes: sentBytes, id, portal: slot?.portal ?? 0 });
      if ((flags & NIC_TX_FLAG_CLOSE) !== 0 && slot !== undefined && slot.state === SlotState.Open) this.finishClose(connection);
    });
  }

  // For sendView's `ahead`, during the call for the entry at TXQ_TAIL (its `flags`): the payloads of the entries
  // posted after it for `connection` that startTransmit will hand to sendView, as quiet views (no access made or
  // recorded: the trace and the bus see each entry's DMA at its own time, as before; undefined under a trace or a
  // watch, which ends the run). Other connections' entries are passed over; the run ends at this connection's first
  // entry that would not go by sendView, after one with the close flag (none after this one's), at its CONN_CLOSE
  // target, or at AHEAD_BYTES_MAX.
  private viewsAhead(connection: number, flags: number): Uint8Array[] {
    const views: Uint8Array[] = [];
    const slot = this.slots[connection];
    if ((flags & NIC_TX_FLAG_CLOSE) !== 0 || slot === undefined || slot.state !== SlotState.Open || !slot.backendOpen || this.txq.size === 0) return views;
    let totalBytes = 0;
    for (let index = (this.txq.tail + 1) >>> 0; index !== this.txq.head; index = (index + 1) >>> 0) {
      if (slot.close === CloseCause.Firmware && reached(index, slot.closeTxTarget)) break;
      const entry = this.quietView(this.txq.base + BigInt((index & (this.txq.size - 1)) * NIC_TX_ENTRY_BYTES), NIC_TX_ENTRY_BYTES);
      if (entry === undefined) break;
      if ((readLe(entry, 16, 2) as number) !== connection) continue;
      const lengthBytes = readLe(entry, 8, 4) as number;
      if (lengthBytes < NIC_TX_VIEW_BYTES_MIN || lengthBytes > NIC_TX_ENTRY_BYTES_MAX) break;
      const payload = this.quietView(readLe(entry, 0, 8) as bigint, lengthBytes);
      if (payload === undefined) break;
      views.push(payload);
      totalBytes += lengthBytes;
      if (((readLe(entry, 18, 2) as number) & NIC_TX_FLAG_CLOSE) !== 0 || totalBytes >= AHEAD_BYTES_MAX) break;
    }
    return views;
  }

  private finishTransmitEntry(): void {
    this.txq.tail = (this.txq.tail + 1) >>> 0;
    for (const slot of this.slots) this.releaseIfDrained(slot);
  }

  // One receive buffer, filled with what the next ready connection has waiting; the bytes land after the copy time.
  private startReceive(): void {
    const index = this.rxReadyNext();
    const slot = this.slots[index]!;
    const at = this.rxq.base + BigInt((this.rxq.tail & (this.rxq.size - 1)) * NIC_RX_ENTRY_BYTES);
    this.rxq.tail = (this.rxq.tail + 1) >>> 0; // taken, whatever it turns out to hold
    const descriptor = this.dmaReadInto(at, this.rxEntryScratch);
    if (!descriptor.ok) {
      this.guestError(`receive buffer entry at ${hex(at)} unreadable (${descriptor.fault}): skipped`, 4);
      return this.busyFor(this.latencyNs.entry, () => this.updatePause(index));
    }
    const entry = this.rxEntryScratch;
    const address = readLe(entry, 0, 8) as bigint;
    const capacityBytes = readLe(entry, 8, 4) as number;
    const id = readLe(entry, 12, 4) as number;
    if (capacityBytes === 0) {
      this.guestError(`receive buffer ${id} has 0 bytes: skipped`, 4);
      return this.busyFor(this.latencyNs.entry, () => this.updatePause(index));
    }
    const parts = this.takeReceived(index, capacityBytes);
    let lengthBytes = 0;
    for (const part of parts) lengthBytes += part.length;
    const generation = slot.generation;
    this.busyFor(this.latencyNs.entry + Math.ceil(lengthBytes / this.copyBytesPerNs), () => {
      // Straight from the socket's chunks into the buffer, one DMA per chunk the buffer takes a part of.
      let offsetBytes = 0;
      for (const part of parts) {
        const written = this.dmaWrite(address + BigInt(offsetBytes), part);
        if (!written.ok) {
          this.guestError(`receive buffer ${id} at ${hex(address)} unwritable (${written.fault}): skipped, its ${lengthBytes} bytes kept`, 4);
          if (slot.generation === generation && slot.state === SlotState.Open) this.unTakeReceived(index, parts, lengthBytes);
          return;
        }
        offsetBytes += part.length;
      }
      if (this.backend.receivedDone !== undefined) for (const part of parts) this.backend.receivedDone(part);
      this.stats.bytesReceived += lengthBytes;
      this.enqueueEngineEvent({ type: NicEventType.Received, connection: index, lengthBytes, id, portal: slot.portal });
      this.updatePause(index);
    });
  }

  // The slot whose turn it is to take a buffer, or -1; entries whose bytes went away (closed) are dropped here.
  private rxReadyNext(): number {
    while (this.rxReadyQueue.length > 0) {
      const index = this.rxReadyQueue[0]!;
      const slot = this.slots[index]!;
      if (slot.state === SlotState.Open && slot.rxPendingBytes > 0) return index;
      slot.rxReady = false;
      this.rxReadyQueue.shift();
    }
    return -1;
  }

  // Removes up to `maxBytes` from the front of the slot's stream; the slot goes to the back of the line if any remain.
  // The parts are views of the received chunks, not copies: the chunks are the NIC's (NicPort.received).
  private takeReceived(index: number, maxBytes: number): Uint8Array[] {
    const slot = this.slots[index]!;
    const lengthBytes = Math.min(maxBytes, slot.rxPendingBytes);
    const parts: Uint8Array[] = [];
    let filled = 0;
    while (filled < lengthBytes) { // each pass consumes one chunk or fills the buffer
      const chunk = slot.rxChunks[0]!;
      const part = Math.min(chunk.length, lengthBytes - filled);
      parts.push(chunk.subarray(0, part));
      filled += part;
      if (part === chunk.length) slot.rxChunks.shift();
      else slot.rxChunks[0] = chunk.subarray(part);
    }
    slot.rxPendingBytes -= lengthBytes;
    this.rxReadyQueue.shift();
    slot.rxReady = slot.rxPendingBytes > 0;
    if (slot.rxReady) this.rxReadyQueue.push(index);
    return parts;
  }

  // Puts bytes a buffer could not take back at the front of the stream, so the next buffer gets them in order.
  private unTakeReceived(index: number, parts: Uint8Array[], lengthBytes: number): void {
    const slot = this.slots[index]!;
    slot.rxChunks.unshift(...parts);
    slot.rxPendingBytes += lengthBytes;
    if (!slot.rxReady) {
      slot.rxReady = true;
      this.rxReadyQueue.unshift(index);
    }
  }

  private dropReceived(index: number): void {
    const slot = this.slots[index]!;
    slot.rxChunks = [];
    slot.rxPendingBytes = 0; // rxReadyNext() drops the slot from the line when it reaches it
  }

  // Backpressure: pause while bytes wait that no posted buffer can take (or too many wait); resume once all are in.
  private updatePause(index: number): void {
    const slot = this.slots[index]!;
    if (slot.state !== SlotState.Open || !slot.backendOpen) return;
    const noBuffer = this.rxq.size === 0 || this.rxq.tail === this.rxq.head;
    if (!slot.paused && slot.rxPendingBytes > 0 && (noBuffer || slot.rxPendingBytes > RX_HOLD_BYTES_MAX)) {
      slot.paused = true;
      this.backend.pause(index, true);
    } else if (slot.paused && slot.rxPendingBytes === 0) {
      slot.paused = false;
      this.backend.pause(index, false);
    }
  }

  // --- Slot release ---

  private startDraining(slot: Slot): void {
    slot.state = SlotState.Draining;
    slot.drainTxTarget = this.txq.head;
    this.releaseIfDrained(slot);
  }

  private releaseIfDrained(slot: Slot): void {
    if (slot.state === SlotState.Draining && reached(this.txq.tail, slot.drainTxTarget)) slot.state = SlotState.Free;
  }

  // --- Events ---

  private enqueueEngineEvent(event: NicEvent): void {
    if (this.enqueueEvent(event)) this.engineEventsPending += 1;
  }

  // Queues `event` behind the others; false (and STATUS bit 1) only if the FIFO's bound was wrong.
  private enqueueEvent(event: NicEvent): boolean {
    if (this.events.length >= EVENTS_PENDING_MAX) {
      this.loseEvent(event, `event FIFO full (${EVENTS_PENDING_MAX})`);
      return false;
    }
    this.events.push(event);
    this.kickWriter();
    return true;
  }

  private eventSlotFree(): boolean {
    return this.evq.size > 0 && distance(this.evq.tail, this.evq.head) < this.evq.size;
  }

  // Schedules the next event write if one can go into the queue; EVQ_TAIL writes and new events call it again.
  private kickWriter(): void {
    if (this.writerBusy || this.events.length === 0 || !this.eventSlotFree()) return;
    this.writerBusy = true;
    this.clock.after(this.latencyNs.event, this.writerRun);
  }

  // The event writer's clock event, as pumpRun (one delay for all: a stale one runs before any newer).
  private readonly writerRun = (): void => {
    if (this.writerStale > 0) {
      this.writerStale -= 1;
      return;
    }
    this.writerBusy = false;
    this.writeEvent();
    this.kickWriter();
  };

  // Writes the oldest waiting event at EVQ_HEAD, then signals: the entry is in memory before the interrupt.
  private writeEvent(): void {
    if (this.events.length === 0 || !this.eventSlotFree()) return;
    const event = this.events.shift()!;
    const engineEvent = event.type === NicEventType.Received || event.type === NicEventType.Sent;
    const entry = this.eventEntry; // reused: the DMA copies it into the queue
    const view = this.eventEntryView;
    entry.fill(0);
    view.setUint8(0, event.type);
    view.setUint16(2, event.connection, true);
    view.setUint32(4, event.lengthBytes, true);
    view.setUint32(8, event.id, true);
    view.setUint16(12, event.portal, true);
    const at = this.evq.base + BigInt((this.evq.head & (this.evq.size - 1)) * NIC_EVENT_BYTES);
    const written = this.dmaWrite(at, entry);
    if (written.ok) {
      if (event.type === NicEventType.Closed) this.slots[event.connection]!.closedEventIndex = this.evq.head;
      this.evq.head = (this.evq.head + 1) >>> 0;
      this.stats.eventsWritten += 1;
      this.signalModerated();
    } else {
      this.loseEvent(event, `event queue entry at ${hex(at)} unwritable (${written.fault})`);
    }
    if (engineEvent) {
      this.engineEventsPending -= 1;
      this.pump();
    }
  }

  // The event vector, at most once per IRQ_HOLDOFF_NS: one held back is sent when the holdoff ends.
  private signalModerated(): void {
    const now = this.clock.nowNs;
    if (now >= this.irqHoldUntilNs) {
      this.irqHoldUntilNs = now + IRQ_HOLDOFF_NS;
      this.signal(NIC_VECTOR_EVENTS);
      return;
    }
    if (this.irqDeferred) return;
    this.irqDeferred = true;
    this.clock.after(this.irqHoldUntilNs - now, this.irqRun);
  }

  // The held-back MSI, as pumpRun: one scheduled before a reset is due by then + IRQ_HOLDOFF_NS, one scheduled after
  // it no earlier, so the stale one runs first.
  private readonly irqRun = (): void => {
    if (this.irqStale > 0) {
      this.irqStale -= 1;
      return;
    }
    this.irqDeferred = false;
    this.irqHoldUntilNs = this.clock.nowNs + IRQ_HOLDOFF_NS;
    this.signal(NIC_VECTOR_EVENTS);
  };

  // An event that will never reach the queue: flagged in STATUS; a lost Closed still lets its slot go.
  private loseEvent(event: NicEvent, why: string): void {
    this.eventsLost = true;
    this.stats.eventsLost += 1;
    this.guestError(`${why}: event type ${event.type} for connection ${event.connection} lost`, 4);
    const slot = this.slots[event.connection];
    if (event.type === NicEventType.Closed && slot?.state === SlotState.Closed) this.startDraining(slot);
  }

  // --- Reset and time ---

  // Power-on values of every NIC register; every connection dropped. The backend hears of it at once: the slots are
  // free again now, and a connection the backend still held must not receive a new occupant's bytes.
  private resetNic(): void {
    this.epoch += 1;
    for (let i = 0; i < NIC_CONN_MAX; i++) {
      const slot = this.slots[i]!;
      if (slot.backendOpen) this.backend.close(i);
      this.slots[i] = freeSlot(slot.generation);
    }
    this.enabled = false;
    this.eventsLost = false;
    this.evq = emptyRing();
    this.rxq = emptyRing();
    this.txq = emptyRing();
    this.events = [];
    this.engineEventsPending = 0;
    this.rxReadyQueue = [];
    this.preferRx = false;
    // A pump, writer or MSI scheduled before the reset does nothing when it comes (busyFor checks the epoch).
    if (this.engineBusy && this.enginePumping) this.pumpStale += 1;
    if (this.writerBusy) this.writerStale += 1;
    if (this.irqDeferred) this.irqStale += 1;
    this.enginePumping = false;
    this.engineBusy = false;
    this.writerBusy = false;
    this.irqHoldUntilNs = 0;
    this.irqDeferred = false;
  }

}
