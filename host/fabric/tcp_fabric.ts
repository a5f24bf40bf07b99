// The fabric carried over TCP (docs/cluster.md, "Across processes"): what one board's cluster port plugs into when each
// board of a cluster runs in its own process (`wasm-iop run --cluster FILE --board NAME`). The process listens at its
// board's fabric address and dials every other board's; packets to board b leave on the connection this process
// dialed to b (so packets between two ports arrive in the order sent, as on the switch), framed as fabric_wire.ts says,
// and packets from b arrive on the connection b dialed here. What this process sends b in one turn of its event loop
// leaves as one burst, and a burst from b reaches the port whole, at one board time (fabric_wire.ts): a reply's SEND and
// the tunneled INTERRUPT after it are applied together, so b's hold of replies (FABRIC_TUNNEL_WAIT_NS, 500 µs of board
// time) never sees one without the other however the host schedules the processes.
//
// What changes against the in-process switch (fabric.ts): there is no window (the port is revision 2: the firmware
// moves a remote request's data by RDMA work requests, each completed when the answer came back over TCP); a packet to
// a board this process has no connection to is refused at once (the port completes it LinkDown) rather than lost; and
// an answer is not waited for against a round-trip time: TCP loses nothing while the connection lives, and the boards'
// clocks follow wall time, so a peer process the host did not schedule for a while (or this one) makes board time pass
// without anything being lost. A request is given up when the connection to its board closes (the port completes every
// one in flight there LinkDown at once: peerLost), and only as a last resort when nothing came from that board for
// TCP_FABRIC_TIMEOUT_NS (lastHeardNs: a peer process stopped without closing its connections). A dropped connection is dialled again every TCP_FABRIC_REDIAL_MS; a board
// that restarts comes back with a new incarnation (its port's sequence numbers start again) and says hello again.
// A connection that sends a malformed frame is closed and counted (stats.wireErrors); nothing of it is delivered.
import { createServer, type Server, type Socket, connect } from "node:net";
import type { FabricMessage } from "../devices/cluster_port.ts";
import type { VirtualClock } from "../sim/clock.ts";
import { type FabricEndpoint, type FabricLink, FABRIC_LINKS_PER_PORT, type FabricPacket, type FabricSwitch, WINDOW_LINK_DOWN } from "./fabric.ts";
import { encodeHello, encodePacket, FabricWireReceiver, markMore, WIRE_BURST_BYTES_MAX, WIRE_BURST_PACKETS_MAX, type WireError } from "./fabric_wire.ts";

/**
 * Board time a port waits for an answer across processes before it completes LinkDown, when the connection stays open
 * (a peer process stopped, not gone): a last resort, below the CTA's 5 s give-up so that the serving board's RTA drops a
 * transaction stuck on it and the requester's retransmission can start it again; far above the 160 ms stalls measured
 * at load 9 (a burst of 43 RDMA WRITEs of 64 KiB took 100 ms of wall time to leave one process).
 */
export const TCP_FABRIC_TIMEOUT_NS = 2_000_000_000;
/** Wall time between attempts to dial a board this process has no connection to. */
export const TCP_FABRIC_REDIAL_MS = 200;

export interface TcpFabricAddress { readonly host: string; readonly port: number }

export interface TcpFabricOptions {
  clock: VirtualClock;
  /** This board's fabric address (its id) and where it listens. */
  address: number;
  listen: TcpFabricAddress;
  /** Every other board: fabric address → where it listens. */
  peers: ReadonlyMap<number, TcpFabricAddress>;
  log?: (message: string) => void;
  /** How this process's port tells its restarts apart from its last life's (default: from the wall clock). */
  incarnationBase?: number;
}

export interface TcpFabricStats {
  sent: number;
  refused: number; // no connection to the destination: completed LinkDown at once
  delivered: number;
  wireErrors: number; // connections closed for a malformed frame
  errorsByKind: Partial<Record<WireError, number>>;
  connectionsIn: number;
  connectionsOut: number;
}

export class TcpFabric implements FabricSwitch {
  readonly windowReaches = false;
  readonly timeoutNs = TCP_FABRIC_TIMEOUT_NS;
  readonly stats: TcpFabricStats = { sent: 0, refused: 0, delivered: 0, wireErrors: 0, errorsByKind: {}, connectionsIn: 0, connectionsOut: 0 };
  private readonly links: FabricLink[] = Array.from({ length: FABRIC_LINKS_PER_PORT }, () => ({ up: true, epoch: 0 }));
  private endpoint: FabricEndpoint | undefined;
  private attachCount = 0;
  private readonly incarnationBase: number;
  private readonly out = new Map<number, Socket>(); // connected and said hello
  private readonly bursts = new Map<number, FabricPacket<FabricMessage>[]>(); // to each board, this turn's packets
  private flushQueued = false;
  private readonly heard = new Map<number, number>(); // board → board time its last burst arrived
  private readonly dialing = new Set<number>();
  private readonly incoming = new Set<Socket>();
  private readonly from = new Map<number, Socket>(); // incoming connections that said hello, by the board that dialed
  private server: Server | undefined;
  private redial: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  private readonly log: (message: string) => void;

  constructor(private readonly options: TcpFabricOptions) {
    this.log = options.log ?? (() => {});
    // Seconds since the epoch, so that a process started again is a new incarnation to its peers' ports.
    this.incarnationBase = options.incarnationBase ?? Math.floor(Date.now() / 1000) % (1 << 16);
  }

  get clock(): VirtualClock { return this.options.clock; }

  /** Listens at this board's fabric address and starts dialing the others; resolves once listening. */
  async start(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolveListen, reject) => {
      server.once("error", reject);
      server.listen(this.options.listen.port, this.options.listen.host, () => {
        server.off("error", reject);
        resolveListen();
      });
    });
    this.redial = setInterval(() => this.dialAll(), TCP_FABRIC_REDIAL_MS);
    this.redial.unref();
    this.dialAll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.redial !== undefined) clearInterval(this.redial);
    for (const socket of [...this.out.values(), ...this.incoming]) socket.destroy();
    this.out.clear();
    this.incoming.clear();
    this.from.clear();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((done) => server.close(() => done()));
  }

  /** The boards this process has a connection to, ascending. */
  connected(): number[] {
    return [...this.out.keys()].sort((a, b) => a - b);
  }

  lastHeardNs(address: number): number | undefined {
    return this.heard.get(address);
  }

  linksFor(address: number, _owner: string): FabricLink[] {
    if (address !== this.options.address) throw new RangeError(`tcp fabric: this process is board ${this.options.address}, not ${address}`);
    return this.links;
  }

  attach(endpoint: FabricEndpoint): number {
    this.endpoint = endpoint;
    this.attachCount += 1;
    if (this.server !== undefined) queueMicrotask(() => this.dialAll());
    return this.incarnationBase * 64 + this.attachCount; // × INCARNATION_RESETS_MAX in the port: unique per life
  }

  detach(endpoint: FabricEndpoint): void {
    if (this.endpoint === endpoint) this.endpoint = undefined;
  }

  /** Brings link `index` of this board's port up or down (wasm-iop fault link). */
  setLink(index: number, up: boolean): void {
    const link = this.links[index];
    if (link === undefined) throw new RangeError(`tcp fabric: no link ${index}`);
    if (link.up && !up) link.epoch += 1;
    link.up = up;
  }

  send(sender: FabricEndpoint, linkIndex: number, packet: FabricPacket): boolean {
    const link = sender.links[linkIndex];
    if (link === undefined || !link.up) return false;
    // Both ways up, or nothing goes: a request whose answer could not come back (b restarted and dialed us before we
    // dialed it again) would wait for TCP_FABRIC_TIMEOUT_NS instead of failing at once and being sent again.
    const socket = this.out.get(packet.destination);
    if (socket === undefined || socket.destroyed || !this.from.has(packet.destination)) {
      this.stats.refused += 1;
      return false;
    }
    this.stats.sent += 1;
    let burst = this.bursts.get(packet.destination);
    if (burst === undefined) this.bursts.set(packet.destination, burst = []);
    burst.push(packet as FabricPacket<FabricMessage>);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush()); // once the board's tick that sent them returns
    }
    return true;
  }

  /** Every board's burst of this turn, each one write; a burst past the wire's bounds is cut into several. */
  private flush(): void {
    this.flushQueued = false;
    for (const [destination, packets] of this.bursts) {
      const socket = this.out.get(destination);
      if (socket === undefined || socket.destroyed) continue; // gone since: the port hears of it (peerLost)
      socket.cork();
      const frames = packets.map((packet) => encodePacket(packet));
      let count = 0;
      let bytes = 0;
      frames.forEach((frame, i) => {
        count += 1;
        bytes += frame.length;
        const next = frames[i + 1];
        if (next !== undefined && count < WIRE_BURST_PACKETS_MAX && bytes + next.length <= WIRE_BURST_BYTES_MAX) markMore(frame);
        else count = bytes = 0;
        socket.write(frame);
      });
      socket.uncork();
    }
    this.bursts.clear();
  }

  windowAccess(): number {
    return WINDOW_LINK_DOWN; // never called: the port faults window accesses itself when windowReaches is false
  }

  // --- Connections ---

  // Only once a port is attached: a peer sends nothing before both connections are up, so nothing it sends arrives to
  // no port (lost, a gap in its sequence that would fence its first interrupt).
  private dialAll(): void {
    if (this.stopped || this.endpoint === undefined) return;
    for (const [address, where] of this.options.peers) {
      if (this.out.has(address) || this.dialing.has(address)) continue;
      this.dial(address, where);
    }
  }

  private dial(address: number, where: TcpFabricAddress): void {
    this.dialing.add(address);
    const socket = connect({ host: where.host, port: where.port });
    socket.setNoDelay(true);
    socket.once("connect", () => {
      this.dialing.delete(address);
      if (this.stopped) return void socket.destroy();
      socket.write(encodeHello(this.options.address, address));
      this.out.set(address, socket);
      this.stats.connectionsOut += 1;
      this.log(`fabric: connected to board ${address} at ${where.host}:${where.port}`);
    });
    socket.on("data", () => socket.destroy()); // the dialed side never speaks on this connection
    socket.on("error", () => undefined); // "close" follows
    socket.once("close", () => {
      this.dialing.delete(address);
      if (this.out.get(address) === socket) {
        this.out.delete(address);
        this.log(`fabric: connection to board ${address} lost`);
        // Nothing in flight to it will be answered on this connection: the port completes those requests now.
        this.clock.after(0, () => this.endpoint?.peerLost?.(address));
      }
    });
  }

  private accept(socket: Socket): void {
    if (this.stopped) return void socket.destroy();
    socket.setNoDelay(true);
    this.incoming.add(socket);
    this.stats.connectionsIn += 1;
    const receiver = new FabricWireReceiver(this.options.address, (a) => this.options.peers.has(a), (burst) => {
      // A burst arrives on the board's clock now, whole, in the order sent; the pacer wakes for it.
      this.clock.after(0, () => {
        this.heard.set(burst[0]!.source, this.clock.nowNs);
        for (const packet of burst) {
          const target = this.endpoint;
          if (target === undefined || !target.links.some((l) => l.up)) return; // no port, or no link up: lost
          this.stats.delivered += 1;
          target.receive(packet);
        }
      });
    });
    let source: number | undefined;
    socket.on("data", (chunk: Buffer) => {
      const error = receiver.push(new Uint8Array(chunk)); // a copy: the receiver may keep it
      if (source === undefined && receiver.source !== undefined) {
        source = receiver.source;
        this.from.get(source)?.destroy(); // its last life's, if that has not closed yet
        this.from.set(source, socket);
        this.dialAll(); // answers go back at once, not after TCP_FABRIC_REDIAL_MS
      }
      if (error === undefined) return;
      this.stats.wireErrors += 1;
      this.stats.errorsByKind[error] = (this.stats.errorsByKind[error] ?? 0) + 1;
      this.log(`fabric: closed a connection from ${receiver.source === undefined ? socket.remoteAddress : `board ${receiver.source}`}: ${error}`);
      socket.destroy();
    });
    socket.on("error", () => undefined);
    socket.once("close", () => {
      this.incoming.delete(socket);
      if (source === undefined || this.from.get(source) !== socket) return;
      this.from.delete(source);
      const lost = source;
      this.clock.after(0, () => this.endpoint?.peerLost?.(lost)); // no answer comes back from it on this connection
    });
  }
}
