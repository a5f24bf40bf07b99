// The packet capture (tools/replay/pcap.ts) proves its TCP/IP is what a real stack would have put on the wire for
// these streams: a pcap with nanosecond board-time stamps; a handshake, data segments of at most SEGMENT_BYTES_MAX
// each acknowledged at once, FINs both ways; sequence numbers that advance by exactly the bytes (and SYN/FIN) sent,
// acknowledgement numbers equal to the peer's next sequence number, valid IPv4 and TCP checksums, and each stream's
// payload equal to the bytes given, in order. A connection refused by the NIC, or bytes sent after a close, leave no frame.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PCAP_TARGET_PORT, PcapWriter, SEGMENT_BYTES_MAX } from "../../../tools/replay/pcap.ts";
import { testTempDir } from "../../support/temp_dir.ts";

interface Frame { timeNs: number; srcPort: number; dstPort: number; seq: number; ack: number; flags: number; payload: Uint8Array }

function checksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function parse(file: Buffer): Frame[] {
  expect(file.readUInt32LE(0)).toBe(0xa1b23c4d);
  expect(file.readUInt32LE(20)).toBe(1); // Ethernet
  const frames: Frame[] = [];
  for (let at = 24; at < file.length;) {
    const timeNs = file.readUInt32LE(at) * 1e9 + file.readUInt32LE(at + 4);
    const length = file.readUInt32LE(at + 8);
    const frame = file.subarray(at + 16, at + 16 + length);
    at += 16 + length;
    expect(frame.readUInt16BE(12)).toBe(0x0800);
    const ip = frame.subarray(14);
    expect(checksum(ip.subarray(0, 20))).toBe(0xffff);
    const totalLength = ip.readUInt16BE(2);
    expect(totalLength).toBe(length - 14);
    const tcp = ip.subarray(20, totalLength);
    let pseudo = 6 + tcp.length;
    for (let i = 12; i < 20; i += 2) pseudo += ip.readUInt16BE(i);
    expect(checksum(tcp, pseudo)).toBe(0xffff);
    frames.push({ timeNs, srcPort: tcp.readUInt16BE(0), dstPort: tcp.readUInt16BE(2), seq: tcp.readUInt32BE(4), ack: tcp.readUInt32BE(8), flags: tcp[13]!, payload: tcp.subarray(20) });
  }
  return frames;
}

const at = (timeNs: number) => ({ timeNs, eventCount: 0 });

describe("pcap writer", () => {
  it("writes a TCP conversation a real stack would: handshake, acknowledged segments, FINs, valid checksums", () => {
    const path = join(testTempDir("wasm-iop-pcap-"), "t.pcap");
    const pcap = new PcapWriter(path);
    const fromClient = new Uint8Array(100_001).map((_, i) => i & 0xff);
    const fromTarget = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
    pcap.opened(at(1_000_000_123), 0, 3);
    pcap.opened(at(1_000_000_500), 0, undefined); // refused: nothing
    pcap.received(at(1_000_001_000), 3, fromClient);
    pcap.sent(at(1_000_002_000), 3, fromTarget.subarray(0, 48));
    pcap.sent(at(1_000_002_000), 3, fromTarget.subarray(48));
    pcap.peerClosed(at(1_000_003_000), 3);
    pcap.sent(at(1_000_004_000), 3, new Uint8Array(10)); // after the close: never on the wire
    pcap.finish();
    const frames = parse(readFileSync(path));
    expect(frames[0]!.timeNs).toBe(1_000_000_123);
    expect(frames.slice(0, 3).map((f) => f.flags)).toEqual([0x02, 0x12, 0x10]); // SYN, SYN-ACK, ACK
    const client = frames[0]!.srcPort;
    expect(frames[0]!.dstPort).toBe(PCAP_TARGET_PORT);
    // Follow both directions: each data or FIN segment starts at the sender's next sequence number and is
    // acknowledged at once with the receiver's; every ACK carries the peer's next sequence number.
    const next = new Map<number, number>([[client, (frames[0]!.seq + 1) >>> 0], [PCAP_TARGET_PORT, (frames[1]!.seq + 1) >>> 0]]);
    const streams = new Map<number, number[]>([[client, []], [PCAP_TARGET_PORT, []]]);
    for (const f of frames.slice(2)) {
      const peer = f.srcPort === client ? PCAP_TARGET_PORT : client;
      expect(f.seq).toBe(next.get(f.srcPort));
      expect(f.ack).toBe(next.get(peer));
      expect(f.payload.length).toBeLessThanOrEqual(SEGMENT_BYTES_MAX);
      streams.get(f.srcPort)!.push(...f.payload);
      next.set(f.srcPort, (f.seq + f.payload.length + (f.flags & 0x01)) >>> 0);
    }
    expect(Uint8Array.from(streams.get(client)!)).toEqual(fromClient);
    expect(Uint8Array.from(streams.get(PCAP_TARGET_PORT)!)).toEqual(fromTarget);
    expect(frames.filter((f) => (f.flags & 0x01) !== 0)).toHaveLength(2); // a FIN each way, then nothing
    expect(frames.at(-1)!.flags).toBe(0x10);
    expect(pcap.packetCount).toBe(frames.length);
  });
});
