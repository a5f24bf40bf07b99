// Proves TcpBackend's send space (host/devices/tcp_backend.ts) against a node:net client on 127.0.0.1: what is
// gathered into sendSpace() and committed leaves in order and intact, one write per turn; while the socket still
// holds an earlier write (the client does not read, so the kernel's buffers fill), room already gathered moves with
// its bytes and later sends never overwrite the bytes the socket holds; a commit of 0 sends nothing; room for a
// connection no longer held goes nowhere; close() sends the turn's bytes before the FIN; a buffer the socket held
// and gave back serves a later write instead of a new one; views (sendView) go out in order, from the view itself only
// while the kernel takes them at once, with the views said to come next (`ahead`) in the same writev, once each; a
// turn's commits reach the socket before the event loop's next turn (what a QD1 reply's latency rests on).
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { NicPort } from "../../../host/devices/nic.ts";
import { keepSpare, TcpBackend } from "../../../host/devices/tcp_backend.ts";

// A NIC that accepts every connection in slot 0, 1, ... and drops what it receives.
class FakeNic implements NicPort {
  readonly closedSlots: number[] = [];
  private next = 0;
  opened(): number {
    return this.next++;
  }
  received(): void {}
  closed(connection: number): void {
    this.closedSlots.push(connection);
  }
}

function pattern(lengthBytes: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(lengthBytes);
  for (let i = 0; i < lengthBytes; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return bytes;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("TcpBackend send space", () => {
  let backend: TcpBackend | undefined;
  let client: Socket | undefined;
  afterEach(async () => {
    client?.destroy();
    await backend?.stop();
  });

  async function open(): Promise<{ received: Buffer[]; ended: () => boolean; nic: FakeNic }> {
    const nic = new FakeNic();
    backend = new TcpBackend({ portals: [{ host: "127.0.0.1", port: 0 }], log: () => {} });
    backend.attach(nic);
    const [address] = await backend.start();
    const received: Buffer[] = [];
    let ended = false;
    client = connect(address!.port, "127.0.0.1");
    client.on("data", (chunk: Buffer) => received.push(chunk));
    client.on("end", () => (ended = true));
    const deadline = Date.now() + 4000;
    while ((backend as unknown as { connections: Map<number, unknown> }).connections.size === 0) {
      if (Date.now() > deadline) throw new Error("no connection");
      await tick();
    }
    return { received, ended: () => ended, nic };
  }

  function send(connection: number, bytes: Uint8Array): void {
    const space = backend!.sendSpace(connection, bytes.length);
    expect(space.length).toBe(bytes.length);
    space.set(bytes);
    backend!.sendCommit(connection, bytes.length);
  }

  async function receive(received: Buffer[], lengthBytes: number): Promise<Buffer> {
    const deadline = Date.now() + 8000;
    while (received.reduce((sum, chunk) => sum + chunk.length, 0) < lengthBytes) {
      if (Date.now() > deadline) throw new Error(`received ${received.reduce((sum, chunk) => sum + chunk.length, 0)} of ${lengthBytes} bytes`);
      await tick();
    }
    return Buffer.concat(received);
  }

  it("sends the commits of a turn in order, intact; a commit of 0 sends nothing", async () => {
    const { received } = await open();
    const parts = [pattern(48, 1), pattern(4096, 2), pattern(48, 3), pattern(100_000, 4)];
    for (const part of parts) send(0, part);
    backend!.sendSpace(0, 512).fill(0xee);
    backend!.sendCommit(0, 0);
    const all = await receive(received, 104_192);
    expect(all.length).toBe(104_192);
    expect(all.equals(Buffer.concat(parts))).toBe(true);
  });

  it("hands a turn's commits to the socket before the event loop's next turn", async () => {
    const { received } = await open();
    const server = (backend as unknown as { connections: Map<number, { socket: Socket }> }).connections.get(0)!.socket;
    const reply = pattern(48 + 4096, 5); // a 4 KiB Data-In with its status: one QD1 read's answer
    let writtenThen = -1;
    setImmediate(() => (writtenThen = server.bytesWritten)); // set before the commit: the next turn's first look
    send(0, reply);
    await tick();
    expect(writtenThen).toBe(reply.length);
    const all = await receive(received, reply.length);
    expect(all.equals(Buffer.from(reply))).toBe(true);
  });

  it("never overwrites bytes the socket still holds, and moves gathered room with its bytes", async () => {
    const { received } = await open();
    client!.pause(); // the kernel's buffers fill: the socket keeps later writes in its queue, holding their buffers
    const sent: Uint8Array[] = [];
    for (let turn = 0; turn < 24; turn++) {
      const first = pattern(1 << 20, turn);
      send(0, first);
      sent.push(first);
      // Room gathered before the turn ends and committed after it: the write in between may move it.
      const late = pattern(3000 + turn, 100 + turn);
      backend!.sendSpace(0, late.length).set(late);
      await tick();
      backend!.sendCommit(0, late.length);
      sent.push(late);
    }
    const expected = Buffer.concat(sent);
    client!.resume();
    const all = await receive(received, expected.length);
    expect(all.length).toBe(expected.length);
    expect(all.equals(expected)).toBe(true);
  }, 20_000);

  // One burst: the client stops reading, two sends of 1 MiB in each of four turns (the socket holds most of
  // them), then the client reads all that was sent so far, intact.
  async function burst(received: Buffer[], sent: Uint8Array[], round: number): Promise<void> {
    client!.pause();
    for (let turn = 0; turn < 4; turn++) {
      for (let part = 0; part < 2; part++) {
        const bytes = pattern(1 << 20, round * 64 + turn * 8 + part);
        send(0, bytes);
        sent.push(bytes);
      }
      await tick();
    }
    client!.resume();
    const lengthBytes = sent.reduce((sum, bytes) => sum + bytes.length, 0);
    const all = await receive(received, lengthBytes);
    expect(all.equals(Buffer.concat(sent))).toBe(true);
    await tick(); // the write callbacks of the last writes
  }

  it("reuses the buffers the socket gave back: a second burst like the first allocates none, and arrives intact", async () => {
    const { received } = await open();
    const sent: Uint8Array[] = [];
    await burst(received, sent, 0);
    const first = backend!.stats.outputBuffersAllocated;
    expect(first).toBeGreaterThan(1); // the socket held a write: `out` moved to another buffer
    await burst(received, sent, 1);
    await burst(received, sent, 2);
    expect(backend!.stats.outputBuffersAllocated).toBe(first);
  }, 20_000);

  // 1 MiB NBD reads at QD8 (issue 18): the spares kept while `out` grew (2 and 4 MiB) kept every later 8 MiB buffer
  // out, so each write the socket held allocated a new one (28 per 1 000 reads, a mark-compact every ~45 reads). The
  // policy on its own: through a socket, how many buffers the kernel makes it hold depends on its buffer sizes and the
  // scheduler, which made a count of allocations there fail at times under load (13 for 10 in CI).
  it("keeps the larger buffers as spares once they outgrow the ones kept, and only larger ones", () => {
    const of = (...kib: number[]) => kib.map((n) => Buffer.alloc(n << 10));
    const spares: Buffer[] = [];
    const [small, medium, large, larger, tiny] = of(2, 4, 8, 16, 1);
    keepSpare(spares, small!);
    keepSpare(spares, medium!);
    expect(spares).toEqual([small, medium]); // room: kept as they come
    keepSpare(spares, large!);
    expect(spares.map((b) => b.length)).toEqual([8 << 10, 4 << 10]); // full: the larger one takes the smallest's place
    keepSpare(spares, larger!);
    expect(spares.map((b) => b.length)).toEqual([8 << 10, 16 << 10]);
    keepSpare(spares, tiny!);
    expect(spares.map((b) => b.length)).toEqual([8 << 10, 16 << 10]); // smaller than every spare: not kept
    expect(spares[0]).toBe(large);
    expect(spares[1]).toBe(larger);
  });

  it("sends views in order after the committed bytes, from the view while the client reads, a copy while it does not", async () => {
    // Proves sendView: each view (a 1 MiB payload in a stand-in for guest RAM) follows the bytes committed before it;
    // the RAM is overwritten right after each call, as a driver may once the NIC posted Sent, and what arrives is
    // still what the view held during the call. While the client reads, the kernel takes views straight
    // (viewBytesWritten grows); while it does not, the kernel's buffers fill and the rest is copied, not referenced.
    const { received } = await open();
    const ram = new Uint8Array(1 << 20);
    const sent: Uint8Array[] = [];
    for (let round = 0; round < 30; round++) {
      if (round === 10) client!.pause();
      if (round === 20) {
        expect(backend!.stats.viewBytesWritten).toBeGreaterThan(0);
        client!.resume();
      }
      const header = pattern(48, round);
      send(0, header);
      sent.push(header);
      const payload = new Uint8Array(randomBytes(ram.length - round));
      ram.set(payload);
      backend!.sendView(0, ram.subarray(0, payload.length));
      ram.fill(0xa5);
      sent.push(payload);
      if (round % 3 === 2) await tick();
    }
    const expected = Buffer.concat(sent);
    const all = await receive(received, expected.length);
    expect(all.length).toBe(expected.length);
    expect(all.equals(expected)).toBe(true);
    expect(backend!.stats.viewBytesWritten).toBeLessThan(expected.length); // some went by copy while the client waited
  }, 20_000);

  it("writes the views said to come next with the first, and skips what went early when their own calls come", async () => {
    // Proves sendView's `ahead` (the NIC's entries posted next on the connection: a 1 MiB reply's 64 KiB segments):
    // the first call's writev takes the later segments too (earlyBytesWritten grows), and each later call sends only
    // what did not go early, so the stream is every header and segment once, in order. Each segment's RAM is
    // overwritten right after its own call (the firmware may reuse it once its Sent is posted); while the client does
    // not read, what the kernel does not take is left to the later calls (copied then) and still arrives intact.
    const { received } = await open();
    const segmentBytes = 64 * 1024;
    const ram = new Uint8Array(16 * segmentBytes);
    const segment = (j: number): Uint8Array => ram.subarray(j * segmentBytes, (j + 1) * segmentBytes);
    const sent: Uint8Array[] = [];
    let earlyWhileReading = 0;
    for (let round = 0; round < 24; round++) {
      if (round === 8) {
        earlyWhileReading = backend!.stats.earlyBytesWritten;
        client!.pause();
      }
      if (round === 16) client!.resume();
      const header = pattern(28, round);
      send(0, header);
      sent.push(header);
      const payload = new Uint8Array(randomBytes(ram.length));
      ram.set(payload);
      sent.push(payload);
      for (let j = 0; j < 16; j++) {
        backend!.sendView(0, segment(j), () => Array.from({ length: 15 - j }, (_, k) => segment(j + 1 + k)));
        segment(j).fill(0xa5);
      }
      await tick();
    }
    const expected = Buffer.concat(sent);
    const all = await receive(received, expected.length);
    expect(earlyWhileReading).toBeGreaterThan(0);
    expect(all.length).toBe(expected.length);
    expect(all.equals(expected)).toBe(true);
    expect(backend!.stats.earlyViewsDropped).toBe(0);
  }, 20_000);

  it("gives room that goes nowhere for a connection it does not hold, and ignores its commit", async () => {
    const { received } = await open();
    backend!.sendSpace(7, 4096).fill(1);
    backend!.sendCommit(7, 4096);
    send(0, pattern(10, 9));
    const all = await receive(received, 10);
    expect(all.equals(Buffer.from(pattern(10, 9)))).toBe(true);
  });

  it("sends the turn's committed bytes before the FIN on close", async () => {
    const { received, ended } = await open();
    send(0, pattern(5000, 5));
    backend!.close(0);
    const all = await receive(received, 5000);
    const deadline = Date.now() + 4000;
    while (!ended()) {
      if (Date.now() > deadline) throw new Error("no FIN");
      await tick();
    }
    expect(all.equals(Buffer.from(pattern(5000, 5)))).toBe(true);
  });

  it("refuses a commit larger than the room given", async () => {
    await open();
    backend!.sendSpace(0, 16);
    expect(() => backend!.sendCommit(0, 17)).toThrow(RangeError);
  });
});

// A NIC that keeps every chunk it is handed, as the real one does until the bytes are in guest RAM. (Random bytes: a
// pattern that repeats every 64 KiB would hide a buffer overwritten by the next read.)
class HoldingNic implements NicPort {
  readonly chunks: Uint8Array[] = [];
  onChunk: (chunk: Uint8Array) => void = () => {}; // at once, inside the socket's read callback
  opened(): number {
    return 0;
  }
  received(_connection: number, bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.onChunk(bytes);
  }
  closed(): void {}
}

describe("TcpBackend receive buffers", () => {
  let backend: TcpBackend | undefined;
  let client: Socket | undefined;
  afterEach(async () => {
    client?.destroy();
    await backend?.stop();
  });

  async function receiveAll(nic: HoldingNic, lengthBytes: number, onChunk: (chunk: Uint8Array) => void = () => {}): Promise<void> {
    nic.onChunk = onChunk;
    const deadline = Date.now() + 8000;
    while (nic.chunks.reduce((sum, chunk) => sum + chunk.length, 0) < lengthBytes) {
      if (Date.now() > deadline) throw new Error(`received ${nic.chunks.reduce((sum, chunk) => sum + chunk.length, 0)} of ${lengthBytes} bytes`);
      await tick();
    }
    nic.onChunk = () => {};
  }

  it("never reuses a buffer the NIC still holds, and reuses one once every byte of it is done", async () => {
    const nic = new HoldingNic();
    backend = new TcpBackend({ portals: [{ host: "127.0.0.1", port: 0 }], log: () => {} });
    backend.attach(nic);
    const [address] = await backend.start();
    client = connect(address!.port, "127.0.0.1");
    const first = randomBytes(1 << 20);
    client.write(first);
    await receiveAll(nic, first.length);
    expect(Buffer.concat(nic.chunks).equals(first)).toBe(true);
    // Each chunk done in two parts, as a chunk split over two receive buffers is.
    for (const chunk of nic.chunks.splice(0)) {
      const half = chunk.length >> 1;
      backend.receivedDone(chunk.subarray(0, half));
      backend.receivedDone(chunk.subarray(half));
    }
    const allocated = backend.stats.receiveBuffersAllocated;
    // Second: the first half of each chunk is done at once, the rest held to the end; a buffer lent again before its
    // last byte is done would be overwritten by later reads.
    const second = randomBytes(1 << 20);
    client.write(second);
    await receiveAll(nic, second.length, (chunk) => backend!.receivedDone(chunk.subarray(0, chunk.length >> 1)));
    expect(Buffer.concat(nic.chunks).equals(second)).toBe(true);
    for (const chunk of nic.chunks.splice(0)) backend.receivedDone(chunk.subarray(chunk.length >> 1));
    // Third: each chunk done as it comes, so the same few buffers serve all of it.
    const third = randomBytes(1 << 20);
    const copies: Buffer[] = [];
    const before = backend.stats.receiveBuffersAllocated;
    nic.chunks.length = 0;
    client.write(third);
    await receiveAll(nic, third.length, (chunk) => {
      copies.push(Buffer.from(chunk));
      backend!.receivedDone(chunk);
    });
    expect(Buffer.concat(copies).equals(third)).toBe(true);
    expect(allocated).toBeGreaterThan(0);
    expect(backend.stats.receiveBuffersAllocated - before).toBeLessThanOrEqual(1);
  }, 20_000);

  // qemu's NBD client keeps 16 requests in flight: 16 writes of 4 KiB with their 28-byte headers are 65 984 bytes. Sent
  // together, they reach the NIC in one piece, so the board answers them in one turn (with 64 KiB reads: a full read,
  // then a 448-byte one with a turn and a socket write of its own).
  it("hands the NIC a burst of 16 NBD writes of 4 KiB, more than 64 KiB, in one piece", async () => {
    const nic = new HoldingNic();
    backend = new TcpBackend({ portals: [{ host: "127.0.0.1", port: 0 }], log: () => {} });
    backend.attach(nic);
    const [address] = await backend.start();
    client = connect(address!.port, "127.0.0.1");
    await new Promise<void>((resolve) => client!.once("connect", () => resolve()));
    const burst = randomBytes(16 * (28 + 4096));
    client.write(burst); // one system call, on loopback all in the receiving socket before its read
    await receiveAll(nic, burst.length);
    expect(Buffer.concat(nic.chunks).equals(burst)).toBe(true);
    expect(nic.chunks.map((chunk) => chunk.length)).toEqual([burst.length]);
  });
});

// A NIC port's link (TcpBackend.portalLink, `wasm-iop fault port BOARD:N down|up`): down resets the connections on
// that portal only (the NIC hears each close), a client connecting to it meanwhile is reset before the NIC hears of
// it, and once up the portal accepts again; a portal the backend does not serve is a RangeError.
describe("TcpBackend NIC port links", () => {
  it("down resets that portal's connections only and refuses new ones until up", async () => {
    const opened: number[] = [];
    const nic = new FakeNic();
    const counting: NicPort = { opened: (portal) => { opened.push(portal); return nic.opened(); }, received: () => {}, closed: (c) => nic.closed(c) };
    const backend = new TcpBackend({ portals: [{ host: "127.0.0.1", port: 0 }, { host: "127.0.0.1", port: 0 }], log: () => {} });
    backend.attach(counting);
    const [p0, p1] = await backend.start();
    const clients: Socket[] = [];
    const closedClients = new Set<Socket>();
    const dial = (port: number): Socket => {
      const socket = connect(port, "127.0.0.1");
      socket.on("error", () => {});
      socket.on("close", () => closedClients.add(socket));
      clients.push(socket);
      return socket;
    };
    const until = async (what: () => boolean): Promise<void> => {
      const deadline = Date.now() + 4000;
      while (!what()) {
        if (Date.now() > deadline) throw new Error("timed out");
        await tick();
      }
    };
    try {
      const on0 = dial(p0!.port);
      const on1 = dial(p1!.port);
      await until(() => opened.length === 2);
      expect([...opened].sort()).toEqual([0, 1]);
      const slotOf1 = opened.indexOf(1); // FakeNic hands slots in the order opened
      expect(backend.portalLink(1, false)).toBe(1);
      await until(() => closedClients.has(on1) && nic.closedSlots.length === 1);
      expect(nic.closedSlots).toEqual([slotOf1]);
      expect(closedClients.has(on0)).toBe(false);
      const refused = dial(p1!.port);
      await until(() => closedClients.has(refused));
      expect(opened.length).toBe(2); // the NIC never heard of it
      expect(backend.portalLink(1, true)).toBe(0);
      dial(p1!.port);
      await until(() => opened.length === 3);
      expect(opened[2]).toBe(1);
      expect(() => backend.portalLink(2, false)).toThrow(RangeError);
    } finally {
      for (const c of clients) c.destroy();
      await backend.stop();
    }
  });
});
