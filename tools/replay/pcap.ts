// `--pcap FILE`: the NIC's traffic as a packet capture (pcap, nanosecond timestamps, Ethernet link type) for Wireshark
// and tshark (docs/replay.md, "Packet capture"). The NIC terminates TCP in the emulator, so there are no packets to
// sniff: this observer of the board's door (host/board/ingress.ts) synthesizes them from the byte streams, with
// Ethernet, IPv4 and TCP headers whose sequence and acknowledgement numbers are those a TCP carrying exactly these
// streams would use: a handshake when a client connects, the bytes in segments of at most SEGMENT_BYTES_MAX each
// acknowledged at once, and FINs when either side closes. Timestamps are board time. Addresses are made up: the
// target is TARGET_IP on port 3260 (so Wireshark dissects iSCSI without being told), each connection a new client port.
import { closeSync, openSync, writeSync } from "node:fs";
import type { IngressObserver, IngressPosition } from "../../host/board/ingress.ts";

const PCAP_MAGIC_NS = 0xa1b23c4d; // pcap with nanosecond timestamps
const LINKTYPE_ETHERNET = 1;
const SNAPLEN = 262_144;
const ETHERNET_BYTES = 14;
const IPV4_BYTES = 20;
const TCP_BYTES = 20;
const HEADERS_BYTES = ETHERNET_BYTES + IPV4_BYTES + TCP_BYTES;
/** The most payload one synthesized segment carries (well within IPv4's 65 535-byte packet). */
export const SEGMENT_BYTES_MAX = 32_768;
export const PCAP_TARGET_PORT = 3260;
const TARGET_IP = [10, 0, 0, 1];
const CLIENT_IP = [10, 0, 0, 2];
const TARGET_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const CLIENT_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const CLIENT_PORT_FIRST = 49_152;
const WINDOW = 65_535;
const FLUSH_BYTES = 1 << 20;

const FIN = 0x01;
const SYN = 0x02;
const PSH = 0x08;
const ACK = 0x10;

// One TCP connection as the capture shows it: a slot of the NIC from opened to closed.
interface Stream {
  clientPort: number;
  clientSeq: number; // next sequence number from the client
  targetSeq: number; // next sequence number from the target
  open: boolean;
}

export class PcapWriter implements IngressObserver {
  private readonly fd: number;
  private buffer = new Uint8Array(FLUSH_BYTES * 2);
  private length = 0;
  private readonly streams = new Map<number, Stream>();
  private streamCount = 0;
  private ipId = 0;
  packetCount = 0;

  /**
   * `adoptOpen`: connections already open when the capture began (a fuzzing target's session, logged in before its
   * snapshot) get their handshake at their first byte; otherwise bytes on a connection never seen opened are left out.
   */
  constructor(readonly path: string, private readonly options: { adoptOpen?: boolean } = {}) {
    this.fd = openSync(path, "w");
    const header = new DataView(new ArrayBuffer(24));
    header.setUint32(0, PCAP_MAGIC_NS, true);
    header.setUint16(4, 2, true);
    header.setUint16(6, 4, true);
    header.setUint32(16, SNAPLEN, true);
    header.setUint32(20, LINKTYPE_ETHERNET, true);
    this.put(new Uint8Array(header.buffer));
  }

  opened(at: IngressPosition, _portal: number, connection: number | undefined): void {
    if (connection === undefined) return; // refused: the NIC never took it (a real stack would answer RST)
    this.open(at, connection);
  }

  private open(at: IngressPosition, connection: number): Stream {
    const serial = this.streamCount++;
    // Initial sequence numbers spread over the space, so a capture exercises wrap-around like a real one.
    const stream: Stream = { clientPort: CLIENT_PORT_FIRST + (serial % 16_384), clientSeq: Math.imul(serial + 1, 0x9e3779b1) >>> 0, targetSeq: Math.imul(serial + 1, 0x85ebca6b) >>> 0, open: true };
    this.streams.set(connection, stream);
    this.segment(at, stream, true, SYN, undefined);
    stream.clientSeq = (stream.clientSeq + 1) >>> 0;
    this.segment(at, stream, false, SYN | ACK, undefined);
    stream.targetSeq = (stream.targetSeq + 1) >>> 0;
    this.segment(at, stream, true, ACK, undefined);
    return stream;
  }

  private stream(at: IngressPosition, connection: number): Stream | undefined {
    const known = this.streams.get(connection);
    if (known === undefined && this.options.adoptOpen === true) return this.open(at, connection);
    return known;
  }

  received(at: IngressPosition, connection: number, bytes: Uint8Array): void {
    const stream = this.stream(at, connection);
    if (stream?.open === true) this.data(at, stream, true, bytes);
  }

  sent(at: IngressPosition, connection: number, bytes: Uint8Array): void {
    const stream = this.stream(at, connection);
    if (stream?.open === true) this.data(at, stream, false, bytes); // after a close nothing reaches the wire
  }

  peerClosed(at: IngressPosition, connection: number): void {
    this.close(at, connection, true);
  }

  boardClosed(at: IngressPosition, connection: number): void {
    this.close(at, connection, false);
  }

  /** Writes what is buffered and closes the file. */
  finish(): void {
    this.flush();
    closeSync(this.fd);
  }

  // The side that closes sends FIN, the other acknowledges and closes too (the NIC reports only one side's close).
  private close(at: IngressPosition, connection: number, fromClient: boolean): void {
    const stream = this.streams.get(connection);
    if (stream?.open !== true) return;
    stream.open = false;
    for (const client of [fromClient, !fromClient]) {
      this.segment(at, stream, client, FIN | ACK, undefined);
      if (client) stream.clientSeq = (stream.clientSeq + 1) >>> 0;
      else stream.targetSeq = (stream.targetSeq + 1) >>> 0;
      this.segment(at, stream, !client, ACK, undefined);
    }
    this.streams.delete(connection);
  }

  private data(at: IngressPosition, stream: Stream, fromClient: boolean, bytes: Uint8Array): void {
    for (let offset = 0; offset < bytes.length; offset += SEGMENT_BYTES_MAX) {
      const payload = bytes.subarray(offset, Math.min(bytes.length, offset + SEGMENT_BYTES_MAX));
      this.segment(at, stream, fromClient, PSH | ACK, payload);
      if (fromClient) stream.clientSeq = (stream.clientSeq + payload.length) >>> 0;
      else stream.targetSeq = (stream.targetSeq + payload.length) >>> 0;
      this.segment(at, stream, !fromClient, ACK, undefined);
    }
  }

  // One Ethernet frame: the pcap record header, Ethernet, IPv4 and TCP with their checksums, the payload.
  private segment(at: IngressPosition, stream: Stream, fromClient: boolean, flags: number, payload: Uint8Array | undefined): void {
    const payloadBytes = payload?.length ?? 0;
    const frameBytes = HEADERS_BYTES + payloadBytes;
    this.reserve(16 + frameBytes);
    const view = new DataView(this.buffer.buffer, this.length, 16 + frameBytes);
    const bytes = new Uint8Array(this.buffer.buffer, this.length, 16 + frameBytes);
    view.setUint32(0, Math.floor(at.timeNs / 1e9), true);
    view.setUint32(4, at.timeNs % 1e9, true);
    view.setUint32(8, frameBytes, true);
    view.setUint32(12, frameBytes, true);
    const e = 16;
    bytes.set(fromClient ? TARGET_MAC : CLIENT_MAC, e);
    bytes.set(fromClient ? CLIENT_MAC : TARGET_MAC, e + 6);
    view.setUint16(e + 12, 0x0800);
    const ip = e + ETHERNET_BYTES;
    view.setUint8(ip, 0x45);
    view.setUint8(ip + 1, 0);
    view.setUint16(ip + 2, IPV4_BYTES + TCP_BYTES + payloadBytes);
    view.setUint16(ip + 4, this.ipId);
    this.ipId = (this.ipId + 1) & 0xffff;
    view.setUint16(ip + 6, 0x4000); // don't fragment
    view.setUint8(ip + 8, 64);
    view.setUint8(ip + 9, 6); // TCP
    view.setUint16(ip + 10, 0);
    bytes.set(fromClient ? CLIENT_IP : TARGET_IP, ip + 12);
    bytes.set(fromClient ? TARGET_IP : CLIENT_IP, ip + 16);
    view.setUint16(ip + 10, ~sum16(bytes, ip, IPV4_BYTES, 0) & 0xffff);
    const tcp = ip + IPV4_BYTES;
    view.setUint16(tcp, fromClient ? stream.clientPort : PCAP_TARGET_PORT);
    view.setUint16(tcp + 2, fromClient ? PCAP_TARGET_PORT : stream.clientPort);
    view.setUint32(tcp + 4, fromClient ? stream.clientSeq : stream.targetSeq);
    view.setUint32(tcp + 8, (flags & ACK) !== 0 ? (fromClient ? stream.targetSeq : stream.clientSeq) : 0);
    view.setUint8(tcp + 12, (TCP_BYTES / 4) << 4);
    view.setUint8(tcp + 13, flags);
    view.setUint16(tcp + 14, WINDOW);
    view.setUint16(tcp + 16, 0);
    view.setUint16(tcp + 18, 0);
    if (payload !== undefined) bytes.set(payload, tcp + TCP_BYTES);
    // RFC 793, Checksum: over a pseudo-header (addresses, protocol, TCP length), the header and the payload.
    let pseudo = 6 + TCP_BYTES + payloadBytes;
    for (let i = 0; i < 8; i += 2) pseudo += (bytes[ip + 12 + i]! << 8) | bytes[ip + 13 + i]!;
    view.setUint16(tcp + 16, ~sum16(bytes, tcp, TCP_BYTES + payloadBytes, pseudo) & 0xffff);
    this.length += 16 + frameBytes;
    this.packetCount += 1;
    if (this.length >= FLUSH_BYTES) this.flush();
  }

  private reserve(more: number): void {
    if (this.length + more <= this.buffer.length) return;
    this.flush();
    if (more > this.buffer.length) this.buffer = new Uint8Array(more * 2);
  }

  private put(data: Uint8Array): void {
    this.reserve(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  flush(): void {
    let at = 0;
    while (at < this.length) at += writeSync(this.fd, this.buffer, at, this.length - at);
    this.length = 0;
  }
}

// The Internet checksum's one's-complement sum of 16-bit big-endian words (RFC 1071), folded, starting from `initial`.
function sum16(bytes: Uint8Array, start: number, length: number, initial: number): number {
  let sum = initial;
  const end = start + (length & ~1);
  for (let i = start; i < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if ((length & 1) !== 0) sum += bytes[start + length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
