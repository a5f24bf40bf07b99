// A board served in real time answers a lone command in the event-loop turn the command arrived in: the socket's
// bytes schedule the pacer's tick as a microtask (RealTimePacer.wake), the tick runs every board event of the command
// (the NIC, both processors' turns, the messaging unit both ways, the disk), and the NIC hands the reply to the network
// before the loop moves on. This is what QD1 latency rests on (docs/performance.md, "The QD1 read, hop by hop"): a
// setImmediate or a timer anywhere on the path would add a turn per command. Checked with a plain TCP client
// (login, then READ(10)s on LUN 1, one at a time) against the development board; the board's door (ingress observers)
// tells when the command arrived and when the reply left. A setImmediate set when the command arrives must find the
// reply gone.
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveBoard, type ServingBoard } from "../../tools/conformance/serve.ts";
import { BHS_BYTES, dataSegmentLength, lunField, Op, opcodeOf, pad4, pdu, textKeys, u32At } from "../../tools/iscsi/pdu.ts";
import { scaled } from "../support/time.ts";

const READS = 40;
const BLOCKS = 8; // 4 KiB

// The PDUs a socket delivers, whole, in order.
class SocketPdus {
  private buffered = Buffer.alloc(0);
  private waiting: ((pdu: { bhs: Uint8Array; data: Uint8Array }) => void) | undefined;
  private readonly whole: { bhs: Uint8Array; data: Uint8Array }[] = [];

  constructor(socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      for (;;) {
        if (this.buffered.length < BHS_BYTES) return;
        const bhs = this.buffered.subarray(0, BHS_BYTES);
        const total = BHS_BYTES + bhs[4]! * 4 + pad4(dataSegmentLength(bhs));
        if (this.buffered.length < total) return;
        const got = { bhs: new Uint8Array(bhs), data: new Uint8Array(this.buffered.subarray(BHS_BYTES + bhs[4]! * 4, BHS_BYTES + bhs[4]! * 4 + dataSegmentLength(bhs))) };
        this.buffered = this.buffered.subarray(total);
        const waiter = this.waiting;
        this.waiting = undefined;
        if (waiter !== undefined) waiter(got);
        else this.whole.push(got);
      }
    });
  }

  next(): Promise<{ bhs: Uint8Array; data: Uint8Array }> {
    const first = this.whole.shift();
    if (first !== undefined) return Promise.resolve(first);
    return new Promise((resolve) => (this.waiting = resolve));
  }
}

describe("a board in real time", () => {
  let serving: ServingBoard;
  let socket: Socket | undefined;
  beforeAll(async () => {
    serving = await serveBoard();
  }, scaled(60_000));
  afterAll(async () => {
    socket?.destroy();
    await serving?.stop();
  });

  it("answers a lone command in the event-loop turn it arrived in", async () => {
    const url = new URL(serving.urls[1]!); // LUN 1: a storage processor's disk, through the messaging unit
    const target = url.pathname.split("/")[1]!;
    // Every command that reaches the board arms a check for the loop's next turn; the reply leaving disarms it.
    let pending = false;
    let arrived = 0;
    let answeredLater = 0;
    const unobserve = serving.board.ingress.observe({
      received: (_at, _connection, bytes) => {
        if (bytes.length < BHS_BYTES || opcodeOf(bytes) !== Op.ScsiCommand) return;
        arrived += 1;
        pending = true;
        setImmediate(() => {
          if (pending) answeredLater += 1;
        });
      },
      sent: () => (pending = false),
    });
    try {
      socket = connect(Number(url.port), url.hostname);
      socket.setNoDelay(true);
      await new Promise<void>((resolve, reject) => socket!.once("connect", resolve).once("error", reject));
      const pdus = new SocketPdus(socket);
      let cmdSn = 1;
      let expStatSn = 0;
      const login = (flags: number, keys: readonly (readonly [string, string])[]) => pdu((bhs, v) => {
        bhs[0] = 0x40 | Op.LoginRequest;
        bhs[1] = flags;
        bhs[8] = 0x80; // ISID type: random
        v.setUint32(10, 0x2100);
        v.setUint32(16, 1); // ITT
        v.setUint32(24, cmdSn);
        v.setUint32(28, expStatSn);
      }, textKeys(keys));
      socket.write(login(0x80 | (0 << 2) | 1, [["InitiatorName", "iqn.2026-12.org.example:qd21"], ["SessionType", "Normal"], ["TargetName", target], ["AuthMethod", "None"]]));
      let answer = await pdus.next();
      expect(answer.bhs[36]).toBe(0); // login status: success
      expStatSn = u32At(answer.bhs, 24) + 1;
      socket.write(login(0x80 | (1 << 2) | 3, [["HeaderDigest", "None"], ["DataDigest", "None"], ["MaxRecvDataSegmentLength", "65536"]]));
      answer = await pdus.next();
      expect(answer.bhs[36]).toBe(0);
      expect(answer.bhs[1]! & 0x83).toBe(0x83); // full feature phase
      expStatSn = u32At(answer.bhs, 24) + 1;
      // The first command after a power-on reports the unit attention (CHECK CONDITION, no data): read once more then.
      for (let i = 0, attention = true; i < READS; i++) {
        const itt = 100 + i;
        socket.write(pdu((bhs, v) => {
          bhs[0] = Op.ScsiCommand;
          bhs[1] = 0x80 | 0x40 | 1; // F, R, simple
          bhs.set(lunField(1), 8);
          v.setUint32(16, itt);
          v.setUint32(20, BLOCKS * 512);
          v.setUint32(24, cmdSn++);
          v.setUint32(28, expStatSn);
          bhs[32] = 0x28; // READ(10)
          v.setUint32(34, i * BLOCKS);
          v.setUint16(39, BLOCKS);
        }));
        let read = 0;
        for (;;) { // Data-In with the status in it, or Data-In then a SCSI Response
          const got = await pdus.next();
          expect(u32At(got.bhs, 16)).toBe(itt);
          read += got.data.length;
          const status = opcodeOf(got.bhs) === Op.ScsiResponse || (opcodeOf(got.bhs) === Op.DataIn && (got.bhs[1]! & 0x01) !== 0);
          if (!status) continue;
          expStatSn = u32At(got.bhs, 24) + 1;
          if (got.bhs[3] === 0x02 && attention && i === 0) {
            attention = false;
            i = -1;
            read = -1;
            break;
          }
          expect(got.bhs[3]).toBe(0); // GOOD
          break;
        }
        if (read >= 0) expect(read).toBe(BLOCKS * 512);
      }
    } finally {
      unobserve();
    }
    expect(arrived).toBeGreaterThanOrEqual(READS);
    expect(answeredLater).toBe(0);
  }, scaled(60_000));
});
