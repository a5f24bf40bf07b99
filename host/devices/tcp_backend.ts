// The network behind the TCP-offload NIC (host/devices/nic.ts): TcpBackend terminates real TCP on the board's portals
// with node:net; LoopbackBackend plays clients in memory, every delivery an event on the board clock, so tests and the
// fuzzer replay exactly. Both speak to the NIC through NicPort and take its orders through NetworkBackend. The
// loopback clients' events are the world's, not the board's (VirtualClock.atOutside): what they hand the NIC passes
// the board's door (host/board/ingress.ts) as a socket's bytes do, so a simulated session records and replays too.
//
// TcpBackend is the one place in host/devices/ that Node's event loop reaches: socket callbacks call NicPort, which
// schedules its effects on the board clock at the current time. Nothing here reads a clock or sets a timer.
import { writevSync } from "node:fs";
import { createServer, type AddressInfo, type Server, Socket } from "node:net";
import type { VirtualClock } from "../sim/clock.ts";
import type { NetworkBackend, NicPort } from "./nic.ts";

export interface PortalAddress {
  host: string;
  port: number; // 0 in a portal spec: let the system pick
}

export interface TcpBackendOptions {
  portals: readonly PortalAddress[];
  log: (message: string) => void;
}

// One accepted socket while the NIC holds its slot. What the NIC sends is gathered (by the NIC, straight from the
// board's RAM: sendSpace) into `out`, and the bytes [outStart, outEnd) leave in one socket write when the board's turn
// is over, or at 'drain' when the socket asked us to wait. A write the socket finishes at once leaves `out` ours
// again; one it holds keeps that buffer, and what follows is gathered into a new one.
interface TcpConnection {
  socket: Socket;
  portal: number; // the index of the portal (NIC port) it came in on
  out: Buffer;
  outStart: number; // the first byte not yet handed to the socket
  outEnd: number; // the end of the bytes committed; sendSpace's room starts here
  roomBytes: number; // the room the last sendSpace gave, until it is committed
  writeScheduled: boolean; // a write at the end of this turn is scheduled
  waitingForDrain: boolean;
  ending: boolean; // the NIC closed it: end() once what is in `out` is written
  writing: Map<Buffer, number>; // output buffers the socket still holds, with how many of its writes hold each
  spares: Buffer[]; // output buffers the socket gave back, for the next time it holds `out`
  early: EarlyView[]; // views the NIC said come next (sendView's `ahead`) that went out early, in stream order
}

// A payload of guest RAM written before its own sendView call (the NIC's `ahead`), whole or its first bytes.
interface EarlyView {
  view: Uint8Array;
  writtenBytes: number;
}

const OUT_BYTES_MIN = 64 * 1024; // a connection's first output buffer: a turn's 4 KiB Data-Ins and responses at QD32
const OUT_BYTES_KEPT_MAX = 16 << 20; // larger, it is dropped once written (1 MiB QD8 reads pile up to 8-16 MiB while the socket makes us wait)
// Buffers the socket held and gave back, kept for the next write it holds: at 1 MiB QD8 the socket holds nearly every
// write, and a fresh multi-MiB buffer each time (fresh pages, external memory for the collector) cost more than the
// copy. At most this many per connection; dropped with it, or when `out` shrinks back.
const SPARES_MAX = 2;
// What a socket read lands in: a buffer from the backend's own free list (the socket's onread), handed to the NIC and
// taken back once the NIC reports every byte of it done (NetworkBackend.receivedDone). Node's default is a fresh
// 64 KiB backing store per read, collected later: at 1 MiB writes that external memory set off a mark-compact every
// few hundred ms (GC was 45% of the emulator's time). A buffer the NIC drops (a close, a reset) is simply collected.
// 256 KiB, not 64: what a client sent together arrives in one read, and the board answers it in one turn. qemu's NBD
// client keeps 16 requests in flight; 16 writes of 4 KiB are 65 984 bytes, which 64 KiB reads cut into a full read
// and a 448-byte one, each answered by a turn and a socket write of its own (two of each per 16 writes, strace).
export const RX_BYTES = 256 * 1024;
const RX_FREE_MAX = 16; // 4 MiB kept at most

/**
 * Keeps `buffer`, an output buffer the socket gave back, among a connection's `spares`: while there are fewer than
 * `max` it joins them; when full, it takes the smallest spare's place if it is larger. The spares kept while `out`
 * grew are smaller than the buffers it writes later, and would keep every one of them out: each write the socket held
 * allocated a new one (1 MiB NBD reads at QD8: an 8 MiB buffer every ~36 reads, a mark-compact every ~45).
 */
export function keepSpare(spares: Buffer[], buffer: Buffer, max = SPARES_MAX): void {
  if (spares.length < max) {
    spares.push(buffer);
    return;
  }
  let smallest = 0;
  for (let i = 1; i < spares.length; i++) if (spares[i]!.length < spares[smallest]!.length) smallest = i;
  if (spares[smallest]!.length < buffer.length) spares[smallest] = buffer;
}

export class TcpBackend implements NetworkBackend {
  private port: NicPort | undefined;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>(); // every socket not yet closed, held or not, so stop() can end them
  private readonly connections = new Map<number, TcpConnection>(); // by NIC slot
  private bound: PortalAddress[] = [];
  private nowhere = Buffer.alloc(0); // room given for a connection no longer held: its bytes go nowhere
  private readonly rxFree: ArrayBuffer[] = []; // receive buffers given back whole
  private readonly rxLeft = new WeakMap<ArrayBuffer, number>(); // receive buffers lent to the NIC: bytes not yet done
  private readonly portalsDown = new Set<number>(); // NIC ports whose link is down (portalLink)
  /** Output buffers allocated, every connection (a spare reused is not counted); payload bytes written from guest RAM's views. */
  readonly stats = { outputBuffersAllocated: 0, receiveBuffersAllocated: 0, viewBytesWritten: 0, earlyBytesWritten: 0, earlyViewsDropped: 0 };

  constructor(private readonly options: TcpBackendOptions) {}

  /** The NIC that hears about connections; before start(). */
  attach(port: NicPort): void {
    this.port = port;
  }

  /** The addresses actually listened on, in portal order (a port 0 replaced by the port chosen). After start(). */
  get addresses(): readonly PortalAddress[] {
    return this.bound;
  }

  /** Listens on every portal; rejects (and closes what did open) if any cannot be bound. */
  async start(): Promise<readonly PortalAddress[]> {
    if (this.port === undefined) throw new Error("TcpBackend.start: attach a NIC first");
    try {
      for (const [index, portal] of this.options.portals.entries()) {
        // Paused until onConnection moves the accepted handle to a socket that reads into our buffers.
        const server = createServer({ allowHalfOpen: false, pauseOnConnect: true }, (socket) => this.onConnection(index, socket));
        this.servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(portal.port, portal.host, () => {
            server.off("error", reject);
            resolve();
          });
        });
        server.on("error", (error) => this.options.log(`portal ${portal.host}:${portal.port}: ${error.message}`));
        const address = server.address() as AddressInfo;
        this.bound.push({ host: address.address, port: address.port });
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
    return this.bound;
  }

  /**
   * A fault (`wasm-iop fault port BOARD:N down|up`, docs/fault.md): the link of NIC port `portal` (the portal's index)
   * goes down or comes up. Down: every connection on it is reset (the NIC hears the peer close, through the board's
   * door like any close) and a client connecting to it is reset before the NIC hears of it, as nothing reaches a port
   * whose link is down; the other portals are untouched. Answers how many connections were reset; throws a
   * RangeError for a portal this backend does not serve.
   */
  portalLink(portal: number, up: boolean): number {
    if (!Number.isInteger(portal) || portal < 0 || portal >= this.options.portals.length) {
      throw new RangeError(`no NIC port ${portal} (ports 0-${this.options.portals.length - 1})`);
    }
    if (up) {
      this.portalsDown.delete(portal);
      return 0;
    }
    this.portalsDown.add(portal);
    let reset = 0;
    for (const held of [...this.connections.values()]) {
      if (held.portal !== portal) continue;
      held.socket.destroy(); // its 'close' tells the NIC (lost)
      reset += 1;
    }
    this.options.log(`NIC port ${portal} link down: ${reset} connections reset`);
    return reset;
  }

  /** Ends every socket and closes the servers. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.connections.clear();
    const servers = this.servers.splice(0);
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
    this.bound = [];
  }

  sendSpace(connection: number, lengthBytes: number): Uint8Array {
    const held = this.connections.get(connection);
    if (held === undefined) { // gone from the network side first; the NIC hears of it through closed()
      if (this.nowhere.length < lengthBytes) this.nowhere = Buffer.allocUnsafe(lengthBytes);
      return this.nowhere.subarray(0, lengthBytes);
    }
    if (held.out.length - held.outEnd < lengthBytes) this.makeRoom(held, lengthBytes);
    held.roomBytes = lengthBytes;
    return held.out.subarray(held.outEnd, held.outEnd + lengthBytes);
  }

  sendCommit(connection: number, lengthBytes: number): void {
    const held = this.connections.get(connection);
    if (held === undefined) return;
    if (lengthBytes > held.roomBytes) throw new RangeError(`TcpBackend: commit of ${lengthBytes} bytes, ${held.roomBytes} given`);
    held.roomBytes = 0;
    if (lengthBytes === 0) return;
    if (held.early.length > 0) this.dropEarly(held); // not the views promised: the stream left the NIC's plan
    held.outEnd += lengthBytes;
    // Every send of one turn of the board (a PDU's header, its data, the next PDU...) leaves in one write once the
    // turn is over, instead of one system call and one TCP segment each: on loopback a send costs the sender the
    // kernel's whole delivery path, so the count of calls, not of bytes, is what the host pays for.
    if (held.writeScheduled || held.waitingForDrain) return;
    held.writeScheduled = true;
    process.nextTick(() => {
      held.writeScheduled = false;
      if (!held.waitingForDrain) this.write(held);
    });
  }

  // A large payload straight from guest RAM: while the socket holds nothing of ours, the bytes this turn committed,
  // the payload and the payloads the NIC says come next for this connection (`ahead`: the rest of a 1 MiB reply's
  // 64 KiB segments) go to the kernel in one writev system call, from where they are (Node's write would take them
  // the same way, but may keep a reference past this call, so it gets only our own buffer). What the kernel does not
  // take of this payload is copied into `out` and leaves as every other send does; what it does not take of those
  // that come next is left for their own calls, which skip what went early. A 1 MiB Data-In is thus copied once
  // (guest RAM -> kernel) while the client keeps up, in one system call instead of sixteen.
  sendView(connection: number, bytes: Uint8Array, ahead?: () => readonly Uint8Array[]): void {
    const held = this.connections.get(connection);
    if (held === undefined) return;
    let rest = bytes;
    const early = held.early[0];
    if (early !== undefined) {
      if (early.view.buffer === bytes.buffer && early.view.byteOffset === bytes.byteOffset && early.view.length === bytes.length) {
        held.early.shift();
        rest = bytes.subarray(early.writtenBytes);
        if (rest.length === 0) return;
      } else this.dropEarly(held); // not the view promised: the stream left the NIC's plan
    }
    const fd = (held.socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd ?? -1;
    if (fd >= 0 && !held.waitingForDrain && !held.ending && held.roomBytes === 0 && held.socket.writableLength === 0) {
      const pendingBytes = held.outEnd - held.outStart;
      const next = held.early.length === 0 && ahead !== undefined ? ahead() : [];
      const pieces = pendingBytes > 0 ? [held.out.subarray(held.outStart, held.outEnd), rest, ...next] : next.length > 0 ? [rest, ...next] : [rest];
      let writtenBytes = 0;
      try {
        writtenBytes = writevSync(fd, pieces);
      } catch {
        writtenBytes = 0; // EAGAIN (the socket is full), or an error the socket's own write reports next
      }
      this.stats.viewBytesWritten += Math.max(0, writtenBytes - pendingBytes);
      if (writtenBytes >= pendingBytes) {
        held.outStart = held.outEnd;
        let leftBytes = writtenBytes - pendingBytes;
        const takenBytes = Math.min(leftBytes, rest.length);
        rest = rest.subarray(takenBytes);
        leftBytes -= takenBytes;
        for (const view of next) { // the payloads that come next, as far as the kernel took them
          if (leftBytes === 0) break;
          const viewBytes = Math.min(leftBytes, view.length);
          held.early.push({ view, writtenBytes: viewBytes });
          this.stats.earlyBytesWritten += viewBytes;
          leftBytes -= viewBytes;
        }
      } else held.outStart += writtenBytes;
    }
    if (rest.length === 0) return;
    this.sendSpace(connection, rest.length).set(rest);
    this.sendCommit(connection, rest.length);
  }

  close(connection: number): void {
    const held = this.connections.get(connection);
    if (held === undefined) return;
    this.connections.delete(connection); // the slot may be handed to a new socket from now on
    held.socket.resume(); // read (and drop) until the peer's FIN, so a paused socket can finish closing
    if (held.waitingForDrain) {
      held.ending = true;
      return;
    }
    this.write(held); // what this turn committed goes before the FIN
    held.socket.end();
  }

  pause(connection: number, paused: boolean): void {
    const held = this.connections.get(connection);
    if (held === undefined) return;
    if (paused) held.socket.pause();
    else held.socket.resume();
  }

  private onConnection(portalIndex: number, accepted: Socket): void {
    // The accepted connection's handle moves to a socket that reads into our receive buffers (onread); the accepted
    // socket, paused since its creation and left without a handle, is destroyed (the server counts it gone).
    const handle = (accepted as unknown as { _handle: unknown })._handle;
    (accepted as unknown as { _handle: unknown })._handle = null;
    accepted.destroy();
    let connection: number | undefined;
    let held: TcpConnection | undefined;
    const socket = new Socket({
      handle, allowHalfOpen: false, readable: true, writable: true,
      onread: {
        buffer: () => this.receiveBuffer(),
        callback: (lengthBytes: number, buffer: Uint8Array) => {
          if (connection === undefined || this.connections.get(connection) !== held) { // nobody reads it: reused
            if (this.rxFree.length < RX_FREE_MAX) this.rxFree.push(buffer.buffer as ArrayBuffer);
            return;
          }
          this.rxLeft.set(buffer.buffer as ArrayBuffer, lengthBytes);
          this.port!.received(connection, new Uint8Array(buffer.buffer, buffer.byteOffset, lengthBytes));
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", (error) => this.options.log(`connection on portal ${portalIndex}: ${error.message}`));
    if (this.portalsDown.has(portalIndex)) {
      socket.destroy(); // its link is down (portalLink): nothing reaches the NIC
      return;
    }
    connection = this.port!.opened(portalIndex);
    if (connection === undefined) {
      socket.destroy(); // refused: every slot is taken, or the NIC is not accepting
      return;
    }
    held = { socket, portal: portalIndex, out: this.allocateOut(OUT_BYTES_MIN), outStart: 0, outEnd: 0, roomBytes: 0, writeScheduled: false, waitingForDrain: false, ending: false, writing: new Map(), spares: [], early: [] };
    this.connections.set(connection, held);
    const heldNow = held;
    const slot = connection;
    socket.setNoDelay(true);
    socket.on("drain", () => this.flush(heldNow));
    socket.on("end", () => this.lost(slot, heldNow));
    socket.on("close", () => this.lost(slot, heldNow));
  }

  // The next socket read's buffer: one given back whole, else a new one. The socket fills it and calls back (above),
  // then asks for the next one: a buffer whose bytes went to the NIC is never handed out again before they are done.
  private receiveBuffer(): Uint8Array {
    const free = this.rxFree.pop();
    if (free !== undefined) return new Uint8Array(free);
    this.stats.receiveBuffersAllocated += 1;
    return new Uint8Array(new ArrayBuffer(RX_BYTES));
  }

  receivedDone(part: Uint8Array): void {
    const buffer = part.buffer as ArrayBuffer;
    const left = this.rxLeft.get(buffer);
    if (left === undefined) return; // not one of ours (or already whole again)
    if (left > part.length) {
      this.rxLeft.set(buffer, left - part.length);
      return;
    }
    this.rxLeft.delete(buffer);
    if (this.rxFree.length < RX_FREE_MAX) this.rxFree.push(buffer);
  }

  // The socket took everything it was given: what waited leaves in one write.
  private flush(held: TcpConnection): void {
    held.waitingForDrain = false;
    this.write(held);
    if (held.ending) held.socket.end();
  }

  // Hands the committed bytes to the socket in one write. If the socket wrote them at once (nothing left in its
  // queue), `out` is free again; otherwise the socket holds that buffer until it is written, and the room after the
  // committed bytes (a transmit entry the NIC gathered and has not committed yet) moves to a new buffer.
  private write(held: TcpConnection): void {
    if (held.outEnd === held.outStart) return;
    const buffer = held.out;
    held.writing.set(buffer, (held.writing.get(buffer) ?? 0) + 1);
    if (!held.socket.write(buffer.subarray(held.outStart, held.outEnd), () => this.written(held, buffer))) held.waitingForDrain = true;
    if (held.socket.writableLength === 0) {
      held.outStart = held.outEnd; // the room after it stays where the NIC gathered into
      // A buffer grown for a burst (1 MiB Data-Ins while the socket made us wait) is not kept for the connection's
      // life: with nothing pending and no room given, the next turn starts from a small one again.
      if (held.roomBytes === 0 && held.out.length > OUT_BYTES_KEPT_MAX) {
        held.out = this.allocateOut(OUT_BYTES_MIN);
        held.outStart = 0;
        held.outEnd = 0;
        held.spares.length = 0;
      }
      return;
    }
    const spare = held.spares.findIndex((b) => b.length >= buffer.length);
    const next = spare >= 0 ? held.spares.splice(spare, 1)[0]! : this.allocateOut(buffer.length);
    buffer.copy(next, 0, held.outEnd, held.outEnd + held.roomBytes); // what the NIC gathered and commits later
    held.out = next;
    held.outStart = 0;
    held.outEnd = 0;
  }

  // The socket finished a write from `buffer`: once no write holds it and it is no longer `out`, it is a spare.
  private written(held: TcpConnection, buffer: Buffer): void {
    const count = (held.writing.get(buffer) ?? 1) - 1;
    if (count > 0) {
      held.writing.set(buffer, count);
      return;
    }
    held.writing.delete(buffer);
    if (buffer === held.out || held.spares.includes(buffer)) return;
    if (buffer.length > OUT_BYTES_KEPT_MAX && held.out.length <= OUT_BYTES_KEPT_MAX) return; // `out` shrank back
    keepSpare(held.spares, buffer);
  }

  // Room for `lengthBytes` after the committed bytes: the bytes not yet written move to the front, into a larger
  // buffer if they and the room do not fit in `out`.
  private makeRoom(held: TcpConnection, lengthBytes: number): void {
    const pendingBytes = held.outEnd - held.outStart;
    if (held.out.length >= pendingBytes + lengthBytes) {
      held.out.copyWithin(0, held.outStart, held.outEnd);
    } else {
      const spare = held.spares.findIndex((b) => b.length >= pendingBytes + lengthBytes);
      const next = spare >= 0 ? held.spares.splice(spare, 1)[0]! : this.allocateOut(Math.max(pendingBytes + lengthBytes, 2 * held.out.length));
      held.out.copy(next, 0, held.outStart, held.outEnd);
      held.out = next;
    }
    held.outStart = 0;
    held.outEnd = pendingBytes;
  }

  // Bytes the NIC hands over that are not the views it said come next (it dropped them: a driver that broke the ring's
  // contract): the early ones are out and stay out; the views left are forgotten, and each send goes as it comes.
  private dropEarly(held: TcpConnection): void {
    this.stats.earlyViewsDropped += held.early.length;
    held.early.length = 0;
  }

  private allocateOut(lengthBytes: number): Buffer {
    this.stats.outputBuffersAllocated += 1;
    return Buffer.allocUnsafe(lengthBytes);
  }

  // The peer closed or reset: the NIC is told once, unless it already gave the slot up.
  private lost(connection: number, held: TcpConnection): void {
    if (this.connections.get(connection) !== held) return;
    this.connections.delete(connection);
    this.port!.closed(connection);
  }
}

// --- Loopback: clients in memory, on the board clock ---

export interface LoopbackOptions {
  latencyNs?: number; // each delivery, either way (default 1 µs)
  chunkBytes?: number; // the most a client hands the NIC per delivery, like one socket read (default 64 KiB)
}

/** A client of a LoopbackBackend: what a socket on the far side of the portal would see and do. */
export class ClientEnd {
  /** The NIC's slot for this connection; undefined when the NIC refused it. */
  readonly connection: number | undefined;
  /** The NIC closed the connection and its FIN has arrived (after every byte it sent). */
  closed = false;
  /** The NIC last asked the network to stop reading from this client. */
  paused = false;
  /** The client called end(). */
  ended = false;
  private readonly inbox: Uint8Array[] = [];
  /** Bytes written and not yet handed to the NIC, oldest first. */
  readonly outbox: Uint8Array[] = [];

  constructor(readonly portal: number, connection: number | undefined) {
    this.connection = connection;
  }

  get refused(): boolean {
    return this.connection === undefined;
  }

  /** Everything the NIC sent this client so far, in order. */
  received(): Uint8Array {
    const total = this.inbox.reduce((sum, chunk) => sum + chunk.length, 0);
    const all = new Uint8Array(total);
    let at = 0;
    for (const chunk of this.inbox) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return all;
  }

  /** @internal The backend delivers the NIC's bytes here. */
  deliver(bytes: Uint8Array): void {
    this.inbox.push(bytes);
  }

  /** @internal Set by write()/end() through the backend. */
  writeHook: (() => void) | undefined;

  /** Called once when `closed` becomes true (the NIC's FIN arrived, or the connection was aborted). */
  onClose: (() => void) | undefined;

  /** @internal The backend marks the connection closed. */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose?.();
  }

  write(bytes: Uint8Array): void {
    if (this.ended || this.closed || this.refused) return;
    this.outbox.push(bytes.slice());
    this.writeHook?.();
  }

  /** FIN: the NIC hears of it after every byte written before it. */
  end(): void {
    if (this.ended || this.refused) return;
    this.ended = true;
    this.writeHook?.();
  }
}

export class LoopbackBackend implements NetworkBackend {
  readonly pauseCalls: { connection: number; paused: boolean }[] = [];
  readonly closeCalls: number[] = [];
  private port: NicPort | undefined;
  private readonly clients = new Map<number, ClientEnd>(); // by NIC slot, while the connection lasts
  private readonly flushing = new Set<ClientEnd>(); // clients with a delivery scheduled
  private readonly onWire = new Map<ClientEnd, { dueNs: number; chunks: Uint8Array[] }>(); // the NIC's latest sends, by client
  private readonly latencyNs: number;
  private readonly chunkBytes: number;
  private space: Uint8Array | undefined; // the last sendSpace(), until committed

  constructor(private readonly clock: VirtualClock, options: LoopbackOptions = {}) {
    this.latencyNs = options.latencyNs ?? 1_000;
    this.chunkBytes = options.chunkBytes ?? 64 * 1024;
  }

  attach(port: NicPort): void {
    this.port = port;
  }

  /** A client connects to `portal`; check `refused` on the result. */
  connect(portal: number): ClientEnd {
    if (this.port === undefined) throw new Error("LoopbackBackend.connect: attach a NIC first");
    const connection = this.port.opened(portal);
    const client = new ClientEnd(portal, connection);
    if (connection === undefined) return client;
    this.clients.set(connection, client);
    client.writeHook = () => this.scheduleFlush(client);
    return client;
  }

  // Room of its own for every send: the bytes are the client's once committed.
  sendSpace(_connection: number, lengthBytes: number): Uint8Array {
    this.space = new Uint8Array(lengthBytes);
    return this.space;
  }

  sendCommit(connection: number, lengthBytes: number): void {
    const space = this.space;
    this.space = undefined;
    if (space === undefined || lengthBytes === 0) return;
    if (lengthBytes > space.length) throw new RangeError(`LoopbackBackend: commit of ${lengthBytes} bytes, ${space.length} given`);
    this.send(connection, space.subarray(0, lengthBytes));
  }

  // A copy of its own, taken now (the NIC's view is of guest RAM, valid during the call only).
  sendView(connection: number, bytes: Uint8Array): void {
    this.send(connection, bytes.slice());
  }

  private send(connection: number, bytes: Uint8Array): void {
    const client = this.clients.get(connection);
    if (client === undefined) return;
    // The sends of one moment (a PDU's header and its data, the next PDU...) arrive together, in one event.
    const dueNs = this.clock.nowNs + this.latencyNs;
    const last = this.onWire.get(client);
    if (last !== undefined && last.dueNs === dueNs) {
      last.chunks.push(bytes);
      return;
    }
    const delivery = { dueNs, chunks: [bytes] };
    this.onWire.set(client, delivery);
    this.clock.atOutside(dueNs, () => {
      if (this.onWire.get(client) === delivery) this.onWire.delete(client);
      if (client.closed) return; // an aborted connection loses what was on the wire
      for (const chunk of delivery.chunks) client.deliver(chunk);
    });
  }

  close(connection: number): void {
    this.closeCalls.push(connection);
    const client = this.clients.get(connection);
    if (client === undefined) return;
    this.clients.delete(connection);
    this.clock.afterOutside(this.latencyNs, () => client.markClosed()); // after the sends scheduled before it
  }

  /**
   * The connection breaks (a reset on the wire, a cable pulled): the client sees it closed at once, the NIC hears
   * that the peer closed, and bytes still on the wire either way are lost. A fault the simulator injects.
   */
  abort(client: ClientEnd): void {
    const connection = client.connection;
    if (connection === undefined || this.clients.get(connection) !== client) return;
    this.clients.delete(connection);
    client.outbox.length = 0;
    client.markClosed();
    this.port!.closed(connection);
  }

  pause(connection: number, paused: boolean): void {
    this.pauseCalls.push({ connection, paused });
    const client = this.clients.get(connection);
    if (client === undefined) return;
    client.paused = paused;
    if (!paused) this.scheduleFlush(client);
  }

  // One chunk per delivery, like one socket read, so a pause takes effect between chunks.
  private scheduleFlush(client: ClientEnd): void {
    if (this.flushing.has(client)) return;
    this.flushing.add(client);
    this.clock.afterOutside(this.latencyNs, () => {
      this.flushing.delete(client);
      this.flushOne(client);
    });
  }

  private flushOne(client: ClientEnd): void {
    const connection = client.connection!;
    if (this.clients.get(connection) !== client || client.paused) return; // gone, or resumed later by pause(false)
    const chunk = client.outbox[0];
    if (chunk === undefined) {
      if (client.ended) {
        this.clients.delete(connection);
        this.port!.closed(connection);
      }
      return;
    }
    const part = chunk.subarray(0, this.chunkBytes);
    if (part.length === chunk.length) client.outbox.shift();
    else client.outbox[0] = chunk.subarray(part.length);
    this.port!.received(connection, part);
    if (client.outbox.length > 0 || client.ended) this.scheduleFlush(client);
  }
}
