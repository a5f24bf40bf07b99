// The target's side of a Text exchange in full feature phase (RFC 7143, Text Request and Text Response, "Text Mode
// Negotiation" §6.2): the answers to the initiator's keys (keys.ts), SendTargets in pieces no longer than the
// initiator's MaxRecvDataSegmentLength, and the empty acknowledgements of keys that continue (C=1). The exchange's
// state is the connection's (`text*` of IscsiConn); the iSCSI task checks each request and turns a refusal
// returned here into a Reject.
import { BUFFER_CLASS_PAGE } from "../../config";
import { bufferPool } from "../../kernel/buffers";
import { POOL_NONE } from "../../kernel/pool";
import { IscsiConn, TEXT_JOIN_AT, TextPhase, TX_SLOTS } from "./conn";
import { Negotiation, TextCursor, TextOutcome, TextWriter, keysTextRequest, sendTargetsWrite, SEND_TARGETS_DONE } from "./keys";
import { buildTextResponse, REJECT_LONG_OP_REJECT, REJECT_PROTOCOL_ERROR, TAG_RESERVED } from "./pdu";
import { Session } from "./session";
import { IscsiTransmit } from "./transmit";

export const TEXT_ANSWERED: u32 = 0; // no Reject is due (a Reject reason otherwise)

export class TextResponder {
  private readonly cursor: TextCursor = new TextCursor();
  private readonly writer: TextWriter = new TextWriter();
  private portalText: usize = 0;
  private portalTextBytes: u32 = 0;

  constructor(private readonly tx: IscsiTransmit) {}

  /** Boot: the portals SendTargets names (TargetAddress values), `bytes` at `text`. */
  portalsSet(text: usize, bytes: u32): void {
    this.portalText = text;
    this.portalTextBytes = bytes;
  }

  // A Text Response with the keys' answers (first) or the next piece of a SendTargets answer; C=1, F=0 and a TTT
  // while more is left. Returns TEXT_ANSWERED, or the reason of the Reject that answers instead.
  answer(conn: IscsiConn, s: Session, negotiation: Negotiation, first: bool): u32 {
    const page = bufferPool(BUFFER_CLASS_PAGE).acquire();
    if (page == POOL_NONE) return REJECT_LONG_OP_REJECT; // out of resources
    const data = bufferPool(BUFFER_CLASS_PAGE).address(page);
    this.writer.reset(data, min(conn.peerMaxRecvDataSegmentLength, bufferPool(BUFFER_CLASS_PAGE).slotBytes) & ~(<u32>3));
    let resume = SEND_TARGETS_DONE;
    if (first) {
      const outcome = keysTextRequest(negotiation, conn.scratch() + TEXT_JOIN_AT, conn.textJoinBytes, this.cursor, this.writer);
      conn.textJoinBytes = 0;
      if (outcome == TextOutcome.ProtocolError || outcome == TextOutcome.OutOfResources) {
        bufferPool(BUFFER_CLASS_PAGE).release(page);
        return outcome == TextOutcome.ProtocolError ? REJECT_PROTOCOL_ERROR : REJECT_LONG_OP_REJECT;
      }
      if (outcome == TextOutcome.SendTargets) resume = this.sendTargets(negotiation, s, 0);
    } else {
      resume = this.sendTargets(negotiation, s, conn.textResume);
    }
    const more = resume != SEND_TARGETS_DONE;
    if (more) {
      if (first) conn.textTtt = this.freshTtt(conn);
      conn.textPhase = TextPhase.Sending;
      conn.textResume = resume;
    } else conn.textPhase = TextPhase.Idle;
    const refused = this.respond(conn, s, page, this.writer.lengthBytes, !more, more, more ? conn.textTtt : TAG_RESERVED);
    if (refused != TEXT_ANSWERED) return refused;
    // A redeclared MaxRecvDataSegmentLength holds from the next PDU on.
    conn.peerMaxRecvDataSegmentLength = negotiation.params.maxSendDataSegmentLength;
    return TEXT_ANSWERED;
  }

  // The keys continue (C=1): an empty Text Response (F=0, C=0) with our TTT asks for the rest; the exchange's first
  // such request gets a fresh TTT. Returns TEXT_ANSWERED or a Reject reason.
  acknowledge(conn: IscsiConn, s: Session): u32 {
    if (conn.textPhase == TextPhase.Idle) conn.textTtt = this.freshTtt(conn);
    conn.textPhase = TextPhase.Receiving;
    return this.respond(conn, s, POOL_NONE, 0, false, false, conn.textTtt);
  }

  private sendTargets(negotiation: Negotiation, s: Session, resume: u32): u32 {
    return sendTargetsWrite(negotiation, s.discovery ? 0xffff_ffff : s.target, s.initiator, s.initiatorBytes,
      this.portalText, this.portalTextBytes, resume, this.writer);
  }

  // A fresh Target Transfer Tag for a Text exchange: never 0xffffffff.
  private freshTtt(conn: IscsiConn): u32 {
    conn.textTttNext += 1;
    return (conn.textTttNext & 0x7fff_ffff) | 0x4000_0000;
  }

  // The Text Response, with `page` as its data if any. Without room to answer, the page goes back and the exchange
  // ends: the initiator is told with a Reject (its reason returned).
  private respond(conn: IscsiConn, s: Session, page: u32, dataBytes: u32, final: bool, cont: bool, tag: u32): u32 {
    const slot = this.tx.begin(conn);
    if (slot == TX_SLOTS) {
      if (page != POOL_NONE) bufferPool(BUFFER_CLASS_PAGE).release(page);
      conn.textPhase = TextPhase.Idle;
      return REJECT_LONG_OP_REJECT;
    }
    buildTextResponse(conn.txSlotAddress(slot), final, cont, conn.textLun, conn.textItt, tag,
      conn.statSn++, s.expCmdSn, s.maxCmdSn(), dataBytes);
    if (page != POOL_NONE) this.tx.withPage(conn, slot, page, dataBytes, 0);
    else this.tx.header(conn, slot, 0);
    return TEXT_ANSWERED;
  }
}
