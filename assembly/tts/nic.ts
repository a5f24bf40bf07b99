// The driver of the TCP-offload NIC (docs/hardware.md, "TCP-offload NIC"): an event queue, a ring of receive
// buffers and a transmit ring, all in this processor's RAM. The TTS sees connections and byte streams only.
import { bootInfoMsiAddress } from "../board/boot_info";
import { busRead32, busWrite32 } from "../board/bus";
import { msixEnable, pciFunctionAt, pciFunctionCount, PciFunctionInfo } from "../board/pci";
import { bufferPool } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { line } from "../kernel/console";
import { irqRoute } from "../kernel/scheduler";
import { vectorAllocate, VECTOR_NONE } from "../kernel/vectors";
import { BUFFER_CLASS_LARGE, BUFFER_CLASS_PAGE } from "../config";
import { POOL_NONE } from "../kernel/pool";

export const NIC_VENDOR: u32 = 0x1234;
export const NIC_DEVICE: u32 = 0x11e0;
const REG_CTRL: u64 = 0x00;
const REG_EVQ_BASE: u64 = 0x10;
const REG_EVQ_SIZE: u64 = 0x18;
const REG_EVQ_HEAD: u64 = 0x1c;
const REG_EVQ_TAIL: u64 = 0x20;
const REG_RXQ_BASE: u64 = 0x30;
const REG_RXQ_SIZE: u64 = 0x38;
const REG_RXQ_HEAD: u64 = 0x3c;
const REG_TXQ_BASE: u64 = 0x50;
const REG_TXQ_SIZE: u64 = 0x58;
const REG_TXQ_HEAD: u64 = 0x5c;
const REG_TXQ_TAIL: u64 = 0x60;
const REG_CONN_CLOSE: u64 = 0x70;
const CTRL_ENABLE: u32 = 1;

export const NIC_CONNECTIONS_MAX: u32 = 64;
export const EVQ_ENTRIES: u32 = 1024;
export const RXQ_ENTRIES: u32 = 256;
// Receive buffers come from the page pool, which the TTS also needs for every answer it sends: the NIC takes at most
// this share of it, so a processor with little RAM posts fewer receive buffers instead of starving its own target.
const RX_POOL_SHARE_DIVISOR: u32 = 2;
// Where RAM allows, receive buffers are large ones (64 KiB): a socket read's bytes, a 1 MiB write's Data-Out, land in
// a sixteenth of the buffers and events (the TTS holds a buffer rather than answer BUSY when a burst of commands with
// immediate data outruns its staging slots: held_receive.ts). They take at most this share of the large pool, which
// also holds staging slots, each connection's scratch buffer, burst data and reply batches (not counted: they fall
// back to zero copy); fewer than RX_LARGE_COUNT_MIN that way and the pages are used as before.
const RX_LARGE_SHARE_DIVISOR: u32 = 8;
const RX_LARGE_COUNT_MIN: u32 = 16;
export const TXQ_ENTRIES: u32 = 2048;
const EVENT_BYTES: u32 = 16;
const RX_ENTRY_BYTES: u32 = 16;
const TX_ENTRY_BYTES: u32 = 24;
export const TX_FLAG_CLOSE: u32 = 1;

export enum NicEventType {
  Opened = 1, // a client connected: connection, portal
  Closed = 2, // the connection is gone; its slot is free
  Received = 3, // lengthBytes of the connection's stream are in receive buffer id
  Sent = 4, // transmit entry id is done
}

/** One event, copied out of the queue. */
export class NicEvent {
  type: u32 = 0;
  connection: u32 = 0;
  lengthBytes: u32 = 0;
  id: u32 = 0;
  portal: u32 = 0;
}

export class Nic {
  private regs: u64 = 0;
  private readonly events: usize = carve(EVQ_ENTRIES * EVENT_BYTES, 16);
  private readonly rxq: usize = carve(RXQ_ENTRIES * RX_ENTRY_BYTES, 16);
  private readonly txq: usize = carve(TXQ_ENTRIES * TX_ENTRY_BYTES, 16);
  private evqTail: u32 = 0;
  private evqTailFlushed: u32 = 0; // EVQ_TAIL as last written
  private rxqHead: u32 = 0;
  private rxqHeadFlushed: u32 = 0; // RXQ_HEAD as last written
  private rxClass: u32 = BUFFER_CLASS_PAGE; // the pool receive buffers come from (start() chooses)
  private txqHead: u32 = 0;
  private txqTailSeen: u32 = 0;
  private txPending: bool = false;
  private txReserved: u32 = 0; // entries promised to open reply batches (reply_batch.ts): txRoom leaves them free
  present: bool = false;
  rxBufferMissing: u32 = 0; // receive buffers we could not post (page pool empty)
  evqHeadMismatch: u32 = 0; // EVQ_HEAD reads the written entries contradicted

  /** Finds the NIC, programs its rings and MSI-X vector (routed to `task`). Boot only. False when there is none. */
  boot(msiAddressInfo: usize, task: u32): bool {
    const count = pciFunctionCount();
    let f: PciFunctionInfo | null = null;
    for (let i: u32 = 0; i < count; i++) {
      const candidate = pciFunctionAt(i);
      if (candidate.vendorId == NIC_VENDOR && candidate.deviceId == NIC_DEVICE && !candidate.claimed) { f = candidate; break; }
    }
    if (f == null || unchecked(f.barAddress[0]) == 0) return false;
    const vector = vectorAllocate(1);
    if (vector == VECTOR_NONE || !msixEnable(f, bootInfoMsiAddress(msiAddressInfo), vector, 1)) return false;
    f.claimed = true;
    irqRoute(vector, task);
    this.regs = unchecked(f.barAddress[0]);
    memory.fill(this.events, 0, EVQ_ENTRIES * EVENT_BYTES); // every type 0: nothing written yet (next() relies on it)
    busWrite32(this.regs + REG_EVQ_BASE, <u32>this.events);
    busWrite32(this.regs + REG_EVQ_BASE + 4, 0);
    busWrite32(this.regs + REG_EVQ_SIZE, EVQ_ENTRIES);
    busWrite32(this.regs + REG_RXQ_BASE, <u32>this.rxq);
    busWrite32(this.regs + REG_RXQ_BASE + 4, 0);
    busWrite32(this.regs + REG_RXQ_SIZE, RXQ_ENTRIES);
    busWrite32(this.regs + REG_TXQ_BASE, <u32>this.txq);
    busWrite32(this.regs + REG_TXQ_BASE + 4, 0);
    busWrite32(this.regs + REG_TXQ_SIZE, TXQ_ENTRIES);
    this.present = true;
    return true;
  }

  /** Posts receive buffers and starts accepting connections. After the seal (it takes pool buffers). */
  start(): void {
    if (!this.present) return;
    const large = min(RXQ_ENTRIES, bufferPool(BUFFER_CLASS_LARGE).capacity / RX_LARGE_SHARE_DIVISOR);
    this.rxClass = large >= RX_LARGE_COUNT_MIN ? BUFFER_CLASS_LARGE : BUFFER_CLASS_PAGE;
    const posted = this.rxClass == BUFFER_CLASS_LARGE ? large : min(RXQ_ENTRIES, bufferPool(BUFFER_CLASS_PAGE).capacity / RX_POOL_SHARE_DIVISOR);
    if (this.rxClass == BUFFER_CLASS_LARGE) line().s("nic: ").u32(posted).s(" receive buffers of ").u32(bufferPool(this.rxClass).slotBytes).s(" bytes").out();
    else if (posted < RXQ_ENTRIES) line().s("nic: ").u32(posted).s(" of ").u32(RXQ_ENTRIES).s(" receive buffers (RAM)").out();
    for (let i: u32 = 0; i < posted; i++) this.rxPost(POOL_NONE);
    busWrite32(this.regs + REG_RXQ_HEAD, this.rxqHead);
    this.rxqHeadFlushed = this.rxqHead;
    busWrite32(this.regs + REG_CTRL, CTRL_ENABLE);
  }

  /**
   * Copies the next event into `into`; false when none is waiting. The entries decide, not EVQ_HEAD: each consumed
   * entry's type is cleared, so a non-zero type at the tail is an event the NIC wrote in this lap (it never overwrites
   * an unconsumed entry, and writes the type with the rest of the entry), and a zero one is not written yet. A lying
   * or glitching head register then neither skips events nor reads stale ones. EVQ_HEAD is read once per batch, when
   * the tail entry is empty, only to count such disagreements; EVQ_TAIL is written by evFlush, once per batch.
   */
  next(into: NicEvent): bool {
    const e = this.events + <usize>(this.evqTail % EVQ_ENTRIES) * EVENT_BYTES;
    const type = load<u8>(e, 0);
    if (type == 0) {
      if (busRead32(this.regs + REG_EVQ_HEAD) != this.evqTail) this.evqHeadMismatch += 1;
      return false;
    }
    into.type = type;
    into.connection = load<u16>(e, 2);
    into.lengthBytes = load<u32>(e, 4);
    into.id = load<u32>(e, 8);
    into.portal = load<u16>(e, 12);
    store<u8>(e, 0, 0);
    this.evqTail += 1;
    return true;
  }

  /** Gives the events consumed since the last call back to the NIC (one EVQ_TAIL write). */
  evFlush(): void {
    if (this.evqTailFlushed == this.evqTail) return;
    busWrite32(this.regs + REG_EVQ_TAIL, this.evqTail);
    this.evqTailFlushed = this.evqTail;
  }

  /** The address of receive buffer `id`, or 0 if `id` is not one of ours. */
  rxAddress(id: u32, lengthBytes: u32): usize {
    const pool = bufferPool(this.rxClass);
    if (id >= pool.capacity || !pool.isHeld(id) || lengthBytes > pool.slotBytes) return 0;
    return pool.address(id);
  }

  /** Gives receive buffer `id` back to the NIC (or, with POOL_NONE, posts a fresh one). */
  rxPost(id: u32): void {
    const pool = bufferPool(this.rxClass);
    let buffer = id;
    if (buffer == POOL_NONE) buffer = pool.acquire();
    if (buffer == POOL_NONE) {
      this.rxBufferMissing += 1;
      return;
    }
    const entry = this.rxq + <usize>(this.rxqHead % RXQ_ENTRIES) * RX_ENTRY_BYTES;
    store<u64>(entry, <u64>pool.address(buffer), 0);
    store<u32>(entry, pool.slotBytes, 8);
    store<u32>(entry, buffer, 12);
    this.rxqHead += 1;
  }

  /** Tells the NIC about buffers given back since the last call. */
  rxFlush(): void {
    if (this.rxqHeadFlushed == this.rxqHead) return; // nothing given back this turn: no doorbell
    busWrite32(this.regs + REG_RXQ_HEAD, this.rxqHead);
    this.rxqHeadFlushed = this.rxqHead;
  }

  /** Room for `count` more transmit entries, besides those reserved? */
  txRoom(count: u32): bool {
    const wanted = count + this.txReserved;
    if (this.txqHead - this.txqTailSeen + wanted <= TXQ_ENTRIES) return true;
    this.txqTailSeen = busRead32(this.regs + REG_TXQ_TAIL);
    return this.txqHead - this.txqTailSeen + wanted <= TXQ_ENTRIES;
  }

  /** Reserves one transmit entry (its txPost is then sure of room: call txReservedUse first); false without room. */
  txReserve(): bool {
    if (!this.txRoom(1)) return false;
    this.txReserved += 1;
    return true;
  }

  /** Gives a reservation back: its entry is about to be posted, or will not be. */
  txReservedUse(): void {
    assert(this.txReserved > 0, "nic: a reserved transmit entry");
    this.txReserved -= 1;
  }

  /** Queues `lengthBytes` at `address` on `connection`; the caller checked txRoom. Sent{id} follows. */
  txPost(connection: u32, address: u64, lengthBytes: u32, id: u32, flags: u32): void {
    if (this.txqHead - this.txqTailSeen >= TXQ_ENTRIES) this.txqTailSeen = busRead32(this.regs + REG_TXQ_TAIL);
    assert(this.txqHead - this.txqTailSeen < TXQ_ENTRIES, "nic: transmit ring overrun");
    const entry = this.txq + <usize>(this.txqHead % TXQ_ENTRIES) * TX_ENTRY_BYTES;
    store<u64>(entry, address, 0);
    store<u32>(entry, lengthBytes, 8);
    store<u32>(entry, id, 12);
    store<u16>(entry, <u16>connection, 16);
    store<u16>(entry, <u16>flags, 18);
    this.txqHead += 1;
    this.txPending = true;
  }

  /** Rings the transmit doorbell once for everything queued since the last call. */
  txFlush(): void {
    if (!this.txPending) return;
    busWrite32(this.regs + REG_TXQ_HEAD, this.txqHead);
    this.txPending = false;
  }

  close(connection: u32): void {
    busWrite32(this.regs + REG_CONN_CLOSE, connection);
  }
}
