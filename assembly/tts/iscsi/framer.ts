// Cuts a connection's byte stream into PDUs (RFC 7143, "iSCSI PDU"): a 48-byte BHS, TotalAHSLength × 4 bytes of
// AHS, an optional 4-byte header digest, DataSegmentLength bytes of data padded to 4, an optional 4-byte data digest.
// Bytes arrive in receive buffers of any size; the framer copies the header into the connection's header area and
// hands data to a sink the engine chooses once it has seen the header (its scratch buffer, a SCSI task's SGL, or
// nowhere), so a PDU can span any number of receive buffers and a buffer can hold any number of PDUs.
import { crc32cUpdate, CRC32C_INIT, crc32cFinal } from "./crc32c";
import { bhsDataSegmentLength, bhsTotalAhsWords } from "./pdu";

export const BHS_BYTES: u32 = 48;
export const AHS_BYTES_MAX: u32 = 256; // larger AHS is refused as a protocol error
export const HEADER_AREA_BYTES: u32 = BHS_BYTES + AHS_BYTES_MAX + 4;

export enum FrameStage {
  Bhs = 0, // collecting the 48-byte basic header segment
  Ahs = 1, // collecting additional header segments
  HeaderDigest = 2, // collecting the 4-byte header digest
  Data = 3, // the data segment and its padding, into the sink
  DataDigest = 4, // collecting the 4-byte data digest
}

export enum FrameEvent {
  None = 0, // need more bytes
  Header = 1, // a whole header (and its digest, checked) is in the header area: choose a sink
  Pdu = 2, // the whole PDU is in: dispatch it
  HeaderDigestError = 3, // the header digest did not match: the connection must be dropped (RFC 7143 §7.8)
  DataDigestError = 4, // the data digest did not match: Reject the PDU (RFC 7143 §7.8.1)
  BadHeader = 5, // AHS too long: a protocol error
}

// Where the data segment goes; the engine sets it after a Header event.
export enum SinkKind {
  Discard = 0,
  Memory = 1, // contiguous memory: the scratch buffer
  Sgl = 2, // a SCSI task's SGL, at an offset (kernel/sgl.ts segments)
}

export class Framer {
  readonly header: usize; // HEADER_AREA_BYTES, carved by the owner
  stage: FrameStage = FrameStage.Bhs;
  private have: u32 = 0; // bytes of the current stage collected
  private need: u32 = BHS_BYTES;
  headerDigest: bool = false;
  dataDigest: bool = false;
  ahsBytes: u32 = 0;
  dataBytes: u32 = 0; // DataSegmentLength, without padding
  private digestCrc: u32 = CRC32C_INIT;
  private digestBuffer: usize; // 4 bytes
  sinkKind: SinkKind = SinkKind.Discard;
  sinkAddress: usize = 0; // Memory: where the data goes
  dataDone: u32 = 0; // data bytes delivered to the sink so far

  constructor(header: usize, digestBuffer: usize) {
    this.header = header;
    this.digestBuffer = digestBuffer;
  }

  reset(): void {
    this.stage = FrameStage.Bhs;
    this.have = 0;
    this.need = BHS_BYTES;
    this.sinkKind = SinkKind.Discard;
    this.dataDone = 0;
  }

  /** Big-endian DataSegmentLength from the BHS (bytes 5-7) and TotalAHSLength (byte 4), RFC 7143 §11.2.1. */
  @inline private parseLengths(): void {
    this.ahsBytes = bhsTotalAhsWords(this.header) * 4;
    this.dataBytes = bhsDataSegmentLength(this.header);
  }

  /**
   * Consumes up to `length` bytes at `from` and says what happened; `used` (out) is how many were consumed. Stops at
   * each event so the engine can act (choose a sink, dispatch) before the next bytes are taken.
   */
  feed(from: usize, length: u32, used: StaticArray<u32>): FrameEvent {
    let at: u32 = 0;
    while (at < length) {
      const take = min(length - at, this.need - this.have);
      switch (this.stage) {
        case FrameStage.Bhs:
        case FrameStage.Ahs: {
          const offset = this.stage == FrameStage.Bhs ? this.have : BHS_BYTES + this.have;
          memory.copy(this.header + offset, from + at, take);
          break;
        }
        case FrameStage.HeaderDigest:
        case FrameStage.DataDigest: memory.copy(this.digestBuffer + this.have, from + at, take); break;
        case FrameStage.Data: this.deliver(from + at, take); break;
        default: assert(false, "framer: unknown stage");
      }
      at += take;
      this.have += take;
      if (this.have < this.need) continue;
      const event = this.advance();
      if (event != FrameEvent.None) {
        unchecked(used[0] = at);
        return event;
      }
    }
    unchecked(used[0] = at);
    return FrameEvent.None;
  }

  // Data and padding go to the sink (padding never does) and into the data digest.
  private deliver(from: usize, take: u32): void {
    if (this.dataDigest) this.digestCrc = crc32cUpdate(this.digestCrc, from, take);
    const dataLeft = this.dataBytes > this.have ? this.dataBytes - this.have : 0;
    const toSink = min(take, dataLeft);
    if (toSink == 0) return;
    if (this.sinkKind == SinkKind.Memory) memory.copy(this.sinkAddress + this.dataDone, from, toSink);
    this.sinkCopy(from, toSink);
    this.dataDone += toSink;
  }

  /** For Sgl sinks: the engine's subclass (conn.ts) copies into the task's SGL. */
  sinkCopy(from: usize, lengthBytes: u32): void {}

  // The current stage is complete: move to the next and report what the engine must know.
  private advance(): FrameEvent {
    this.have = 0;
    switch (this.stage) {
      case FrameStage.Bhs: {
        this.parseLengths();
        if (this.ahsBytes > AHS_BYTES_MAX) return FrameEvent.BadHeader;
        if (this.ahsBytes > 0) { this.stage = FrameStage.Ahs; this.need = this.ahsBytes; return FrameEvent.None; }
        return this.afterAhs();
      }
      case FrameStage.Ahs: return this.afterAhs();
      case FrameStage.HeaderDigest: {
        const expected = crc32cFinal(crc32cUpdate(CRC32C_INIT, this.header, BHS_BYTES + this.ahsBytes));
        if (load<u32>(this.digestBuffer) != expected) return FrameEvent.HeaderDigestError;
        return this.headerComplete();
      }
      case FrameStage.Data: {
        if (!this.dataDigest) return this.pduComplete();
        this.stage = FrameStage.DataDigest;
        this.need = 4;
        return FrameEvent.None;
      }
      case FrameStage.DataDigest: {
        const ok = load<u32>(this.digestBuffer) == crc32cFinal(this.digestCrc);
        const event = this.pduComplete();
        return ok ? event : FrameEvent.DataDigestError;
      }
      default: assert(false, "framer: unknown stage"); return FrameEvent.BadHeader;
    }
  }

  private afterAhs(): FrameEvent {
    if (this.headerDigest) {
      this.stage = FrameStage.HeaderDigest;
      this.need = 4;
      return FrameEvent.None;
    }
    return this.headerComplete();
  }

  private headerComplete(): FrameEvent {
    this.sinkKind = SinkKind.Discard;
    this.dataDone = 0;
    this.digestCrc = CRC32C_INIT;
    const padded = (this.dataBytes + 3) & ~3;
    if (padded == 0) {
      this.stage = FrameStage.Data; // nothing to collect: the PDU is complete once the engine has seen the header
      this.need = 0;
      return FrameEvent.Header;
    }
    this.stage = FrameStage.Data;
    this.need = padded;
    return FrameEvent.Header;
  }

  /** After the engine handled a Header event of a PDU without data: completes it. */
  finishEmpty(): bool {
    if (this.stage != FrameStage.Data || this.need != 0) return false;
    this.pduComplete();
    return true;
  }

  private pduComplete(): FrameEvent {
    this.stage = FrameStage.Bhs;
    this.need = BHS_BYTES;
    this.have = 0;
    return FrameEvent.Pdu;
  }
}
