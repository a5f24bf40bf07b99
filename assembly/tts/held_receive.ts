// Receive buffers a connection holds instead of giving them back to the NIC: the iSCSI transport stops reading a
// connection at a SCSI command whose unsolicited data has no staging slot yet (backpressure instead of BUSY), and
// keeps the buffer it stopped in, and every buffer that arrives for that connection after it, until a slot comes
// back. Held buffers are not posted again, so the NIC runs out of buffers for a connection that keeps sending and
// stops reading its socket: the initiator feels TCP's backpressure.
//
// One table for every connection, each connection's buffers a list through it, oldest first: the NIC has at most
// RXQ_ENTRIES buffers posted, so no more can be held at once, whichever connections hold them.
import { NIC_CONNECTIONS_MAX, RXQ_ENTRIES } from "./nic";

const ENTRY_NONE: u16 = 0xffff;
if (RXQ_ENTRIES >= <u32>ENTRY_NONE) ERROR("held_receive: entries are u16 with 0xffff for none");

export class HeldReceive {
  private readonly ids: StaticArray<u32> = new StaticArray<u32>(RXQ_ENTRIES);
  private readonly lengths: StaticArray<u32> = new StaticArray<u32>(RXQ_ENTRIES);
  private readonly offsets: StaticArray<u32> = new StaticArray<u32>(RXQ_ENTRIES); // where reading goes on
  private readonly next: StaticArray<u16> = new StaticArray<u16>(RXQ_ENTRIES);
  private readonly first: StaticArray<u16> = new StaticArray<u16>(NIC_CONNECTIONS_MAX);
  private readonly last: StaticArray<u16> = new StaticArray<u16>(NIC_CONNECTIONS_MAX);
  private readonly counts: StaticArray<u32> = new StaticArray<u32>(NIC_CONNECTIONS_MAX);
  private free: u16 = 0; // the first free entry, threaded through next; ENTRY_NONE: none
  /** Connections holding at least one buffer (resume() has nothing to do while 0). */
  holdingCount: u32 = 0;
  /** Buffers held so far, for the connection-ends log line and the tests. */
  heldTotal: u64 = 0;

  constructor() {
    for (let i: u32 = 0; i < RXQ_ENTRIES; i++) unchecked(this.next[i] = i + 1 < RXQ_ENTRIES ? <u16>(i + 1) : ENTRY_NONE);
    for (let c: u32 = 0; c < NIC_CONNECTIONS_MAX; c++) {
      unchecked(this.first[c] = ENTRY_NONE);
      unchecked(this.last[c] = ENTRY_NONE);
    }
  }

  /** Buffers connection `slot` holds. */
  count(slot: u32): u32 {
    assert(slot < NIC_CONNECTIONS_MAX, "held_receive: slot out of range");
    return unchecked(this.counts[slot]);
  }

  /**
   * `slot` keeps receive buffer `id` (`lengthBytes` received, read up to `offset`) after the others it holds; false
   * when every entry is taken, which only a NIC handing out more buffers than were posted can cause.
   */
  hold(slot: u32, id: u32, lengthBytes: u32, offset: u32): bool {
    assert(slot < NIC_CONNECTIONS_MAX, "held_receive: slot out of range");
    assert(offset <= lengthBytes, "held_receive: offset within the buffer");
    const e = this.free;
    if (e == ENTRY_NONE) return false;
    this.free = unchecked(this.next[<u32>e]);
    unchecked(this.ids[<u32>e] = id);
    unchecked(this.lengths[<u32>e] = lengthBytes);
    unchecked(this.offsets[<u32>e] = offset);
    unchecked(this.next[<u32>e] = ENTRY_NONE);
    const tail = unchecked(this.last[slot]);
    if (tail != ENTRY_NONE) unchecked(this.next[<u32>tail] = e);
    else unchecked(this.first[slot] = e);
    unchecked(this.last[slot] = e);
    if (unchecked(this.counts[slot]) == 0) this.holdingCount += 1;
    unchecked(this.counts[slot] += 1);
    this.heldTotal += 1;
    return true;
  }

  oldestId(slot: u32): u32 { return unchecked(this.ids[this.oldest(slot)]); }
  oldestLength(slot: u32): u32 { return unchecked(this.lengths[this.oldest(slot)]); }
  oldestOffset(slot: u32): u32 { return unchecked(this.offsets[this.oldest(slot)]); }

  /** Reading of the oldest buffer stopped again, at `offset`. */
  setOldestOffset(slot: u32, offset: u32): void {
    const e = this.oldest(slot);
    assert(offset >= unchecked(this.offsets[e]) && offset <= unchecked(this.lengths[e]), "held_receive: reading only moves on");
    unchecked(this.offsets[e] = offset);
  }

  /** The oldest buffer `slot` holds is done with (read to its end, or the connection is gone): it leaves the list. */
  dropOldest(slot: u32): void {
    const e = <u16>this.oldest(slot);
    const after = unchecked(this.next[<u32>e]);
    unchecked(this.first[slot] = after);
    if (after == ENTRY_NONE) unchecked(this.last[slot] = ENTRY_NONE);
    unchecked(this.counts[slot] -= 1);
    if (unchecked(this.counts[slot]) == 0) this.holdingCount -= 1;
    unchecked(this.next[<u32>e] = this.free);
    this.free = e;
  }

  private oldest(slot: u32): u32 {
    assert(slot < NIC_CONNECTIONS_MAX && unchecked(this.counts[slot]) > 0, "held_receive: the connection holds a buffer");
    return <u32>unchecked(this.first[slot]);
  }
}
