// One iSCSI connection: its NIC slot, its framer (with a sink into SCSI tasks' SGLs), its scratch buffer for login,
// text and ping data, and its transmit slots for PDU headers. Connections live in a fixed table built at boot.
import { BUFFER_CLASS_LARGE } from "../../config";
import { bufferPool, sgls } from "../../kernel/buffers";
import { carve } from "../../kernel/carve";
import { POOL_NONE } from "../../kernel/pool";
import { SGL_NONE, sglSegmentAddress, sglSegmentLengthBytes } from "../../kernel/sgl";
import { Framer, HEADER_AREA_BYTES, SinkKind } from "./framer";

export const CONNECTIONS_MAX: u32 = 64; // the NIC's slots
export const TX_SLOTS: u32 = 32; // PDU headers in flight per connection
export const TX_SLOT_BYTES: u32 = 64; // |0 BHS 48|48 header digest 4|52 data digest 4|56 padding 4|60 -|
export const SCRATCH_BYTES: u32 = 65536; // one large buffer: login, text and ping data up to our MaxRecvDataSegmentLength
// A Text Request's keys, joined across C-bit continuations, land in the scratch buffer from here (below it: ping data,
// at most a page), up to TEXT_JOIN_BYTES_MAX in all (the login's limit too): more is answered with a Reject.
export const TEXT_JOIN_AT: u32 = 32768;
export const TEXT_JOIN_BYTES_MAX: u32 = 16384;

// Where a connection's Text exchange stands (RFC 7143, Text Request/Response, Target Transfer Tag).
export enum TextPhase {
  Idle = 0, // no exchange under way: a Text Request must carry TTT 0xffffffff
  Receiving = 1, // the initiator's keys continue (C=1): we answered an empty response with textTtt
  Sending = 2, // our answer continues (C=1): the initiator asks for the next piece with textTtt
}

export enum ConnState {
  Free = 0, // no client in this slot
  Login = 1, // login phase (security or operational negotiation)
  FullFeature = 2, // commands flow
  LoggedOut = 3, // logout answered: closing once the response has left
  Closing = 4, // waiting for the NIC's Closed event
}

/** A framer whose SGL sink copies into a SCSI task's buffers at the Data-Out's offset. */
export class ConnFramer extends Framer {
  sgl: u32 = SGL_NONE;
  sglOffset: u32 = 0; // where in the SGL the current PDU's data starts

  sinkCopy(from: usize, lengthBytes: u32): void {
    if (this.sinkKind != SinkKind.Sgl || this.sgl == SGL_NONE) return;
    let offset = this.sglOffset + this.dataDone;
    let done: u32 = 0;
    const count = sgls().segmentCount(this.sgl);
    // Walk to the segment holding `offset`, then copy across segments. Bounded by the segment count.
    for (let i: u32 = 0; i < count && done < lengthBytes; i++) {
      const segment = sgls().segment(this.sgl, i);
      const segmentBytes = sglSegmentLengthBytes(segment);
      if (offset >= segmentBytes) {
        offset -= segmentBytes;
        continue;
      }
      const take = min(segmentBytes - offset, lengthBytes - done);
      memory.copy(<usize>sglSegmentAddress(segment) + offset, from + done, take);
      done += take;
      offset = 0;
    }
  }
}

export class IscsiConn {
  state: ConnState = ConnState.Free;
  readonly slot: u32;
  readonly framer: ConnFramer;
  readonly txSlots: usize;
  private readonly txSlotBusy: StaticArray<bool> = new StaticArray<bool>(TX_SLOTS);
  txSlotsUsed: u32 = 0;
  scratchIndex: u32 = POOL_NONE;
  session: u32 = 0xffff_ffff;
  cid: u32 = 0;
  statSn: u32 = 0;
  expStatSn: u32 = 0;
  portal: u32 = 0;
  // Negotiated for this connection (login sets them).
  peerMaxRecvDataSegmentLength: u32 = 8192;
  pendingTx: u32 = 0; // NIC transmit entries not yet Sent
  r2tWaitingRoom: bool = false; // an R2T found no transmit room: the next Sent event retries (target.ts onSent)
  pendingStage: u8 = 0xff; // a staging slot holding the current SCSI Command's immediate data (target.ts), or 0xff
  // Reading stopped after a SCSI Command's header for want of a staging slot: its receive buffers are held
  // (../held_receive.ts) and the header is taken up again, sink first, when a slot comes back (target.ts resumeHeld).
  headerHeld: bool = false;
  // The final Login Response of a new session, built and held (its header slot and data page) until the SCSI target
  // answers with the session's nexus id; TX_SLOTS when none is held.
  loginHeldSlot: u32 = TX_SLOTS;
  loginHeldPage: u32 = POOL_NONE;
  loginHeldSession: u32 = 0xffff_ffff;
  // For the log line when the connection ends: how its writes' data came.
  pduCount: u32 = 0; // PDUs received
  immediateBytes: u64 = 0; // immediate data in SCSI Command PDUs
  unsolicitedBytes: u64 = 0; // unsolicited Data-Out (TTT 0xffffffff)
  r2tCount: u32 = 0; // R2Ts sent
  waitingReleased: u32 = 0; // commands that waited for an earlier CmdSN when the connection ended
  // The Text exchange under way (one per connection: RFC 7143 allows one outstanding Text Request).
  textPhase: TextPhase = TextPhase.Idle;
  textItt: u32 = 0;
  textLun: u64 = 0; // the LUN field of the exchange's last request: its response echoes it with the ITT
  textTtt: u32 = 0; // the TTT we gave for it (never 0xffffffff)
  textJoinBytes: u32 = 0; // keys joined so far at TEXT_JOIN_AT
  textResume: u32 = 0; // SendTargets: where the next piece starts (keys.ts, sendTargetsWrite)
  textTttNext: u32 = 0; // source of fresh TTTs

  constructor(slot: u32) {
    this.slot = slot;
    const header = carve(HEADER_AREA_BYTES, 16);
    const digest = carve(8, 8);
    this.framer = new ConnFramer(header, digest);
    this.txSlots = carve(TX_SLOTS * TX_SLOT_BYTES, 16);
  }

  /** A client connected: take the scratch buffer. False (refuse) when none is free. */
  open(portal: u32): bool {
    const scratch = bufferPool(BUFFER_CLASS_LARGE).acquire();
    if (scratch == POOL_NONE) return false;
    this.scratchIndex = scratch;
    this.state = ConnState.Login;
    this.portal = portal;
    this.framer.reset();
    this.framer.headerDigest = false;
    this.framer.dataDigest = false;
    this.session = 0xffff_ffff;
    this.statSn = 0;
    this.expStatSn = 0;
    this.peerMaxRecvDataSegmentLength = 8192;
    this.pendingTx = 0;
    this.r2tWaitingRoom = false;
    this.pendingStage = 0xff;
    this.headerHeld = false;
    this.loginHeldSlot = TX_SLOTS;
    this.loginHeldPage = POOL_NONE;
    this.loginHeldSession = 0xffff_ffff;
    this.pduCount = 0;
    this.immediateBytes = 0;
    this.unsolicitedBytes = 0;
    this.r2tCount = 0;
    this.waitingReleased = 0;
    this.textPhase = TextPhase.Idle;
    this.textJoinBytes = 0;
    return true;
  }

  /** The slot is free again: give back what the connection held. */
  release(): void {
    if (this.scratchIndex != POOL_NONE) bufferPool(BUFFER_CLASS_LARGE).release(this.scratchIndex);
    this.scratchIndex = POOL_NONE;
    for (let i: u32 = 0; i < TX_SLOTS; i++) unchecked(this.txSlotBusy[i] = false);
    this.txSlotsUsed = 0;
    this.state = ConnState.Free;
  }

  scratch(): usize {
    assert(this.scratchIndex != POOL_NONE, "connection without a scratch buffer");
    return bufferPool(BUFFER_CLASS_LARGE).address(this.scratchIndex);
  }

  /** A free transmit slot's index, or TX_SLOTS when all are in flight (backpressure). */
  txSlotTake(): u32 {
    for (let i: u32 = 0; i < TX_SLOTS; i++) {
      if (unchecked(this.txSlotBusy[i])) continue;
      unchecked(this.txSlotBusy[i] = true);
      this.txSlotsUsed += 1;
      return i;
    }
    return TX_SLOTS;
  }

  txSlotAddress(index: u32): usize {
    assert(index < TX_SLOTS);
    return this.txSlots + <usize>index * TX_SLOT_BYTES;
  }

  txSlotGive(index: u32): void {
    if (index >= TX_SLOTS || !unchecked(this.txSlotBusy[index])) return; // a late Sent for a reset connection
    unchecked(this.txSlotBusy[index] = false);
    this.txSlotsUsed -= 1;
  }
}
