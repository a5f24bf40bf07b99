// The fabric carried over TCP (docs/cluster.md, "Across processes"): what one board's cluster port plugs into when each
// board of a cluster runs in its own process (`wasm-iop run --cluster FILE --board NAME`). The process listens at its
// board's fabric address and dials every other board's; packets to board b leave on the connection this process
// dialed to b (so packets between two ports arrive in the order sent, as on the switch), framed as fabric_wire.ts says,
// and packets from b arrive on the connection b dialed here.
//
// What changes against the in-process switch (fabric.ts): there is no window (the port is revision 2: the firmware
// moves a remote request's data by RDMA work requests, each completed when the answer came back over TCP); a packet to
// a board this process has no connection to is refused at once (the port completes it LinkDown) rather than lost; and
// a port waits TCP_FABRIC_TIMEOUT_NS for an answer, since the boards' clocks are paced to wall time and a round trip
// through two processes takes wall time. A dropped connection is dialled again every TCP_FABRIC_REDIAL_MS; a board
// that restarts comes back with a new incarnation (its port's sequence numbers start again) and says hello again.
// A connection that sends a malformed frame is closed and counted (stats.wireErrors); nothing of it is delivered.
import { createServer, type Server, type Socket, connect } from "node:net";
import type { FabricMessage } from "../devices/cluster_port.ts";
import type { VirtualClock } from "../sim/clock.ts";
import { type FabricEndpoint, type FabricLink, FABRIC_LINKS_PER_PORT, type FabricPacket, type FabricSwitch, WINDOW_LINK_DOWN } from "./fabric.ts";
import { encodeHello, encodePacket, FabricWireReceiver, type WireError } from "./fabric_wire.ts";

/** Board time a port waits for an answer across processes before it completes LinkDown. */
export const TCP_FABRIC_TIMEOUT_NS = 250_000_000;
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
  private readonly dialing = new Set<number>();
  private readonly incoming = new Set<Socket>();
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
    const server = this.server;
    if (server !== undefined) await new Promise<void>((done) => server.close(() => done()));
  }

  /** The boards this process has a connection to, ascending. */
  connected(): number[] {
    return [...this.out.keys()].sort((a, b) => a - b);
  }

  linksFor(address: number, _owner: string): FabricLink[] {
    if (address !== this.options.address) throw new RangeError(`tcp fabric: this process is board ${this.options.address}, not ${address}`);
    return this.links;
  }

  attach(endpoint: FabricEndpoint): number {
    this.endpoint = endpoint;
    this.attachCount += 1;
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
    const socket = this.out.get(packet.destination);
    if (socket === undefined || socket.destroyed) {
      this.stats.refused += 1;
      return false;
    }
    this.stats.sent += 1;
    socket.write(encodePacket(packet as FabricPacket<FabricMessage>));
    return true;
  }

  windowAccess(): number {
    return WINDOW_LINK_DOWN; // never called: the port faults window accesses itself when windowReaches is false
  }

  // --- Connections ---

  private dialAll(): void {
    if (this.stopped) return;
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
      }
    });
  }

  private accept(socket: Socket): void {
    if (this.stopped) return void socket.destroy();
    socket.setNoDelay(true);
    this.incoming.add(socket);
    this.stats.connectionsIn += 1;
    const receiver = new FabricWireReceiver(this.options.address, (a) => this.options.peers.has(a), (packet) => {
      // Arrives on the board's clock now, in the order received; the pacer wakes for it.
      this.clock.after(0, () => {
        const target = this.endpoint;
        if (target === undefined || !target.links.some((l) => l.up)) return; // no port, or no link up: lost
        this.stats.delivered += 1;
        target.receive(packet);
      });
    });
    socket.on("data", (chunk: Buffer) => {
      const error = receiver.push(new Uint8Array(chunk)); // a copy: the receiver may keep it
      if (error === undefined) return;
      this.stats.wireErrors += 1;
      this.stats.errorsByKind[error] = (this.stats.errorsByKind[error] ?? 0) + 1;
      this.log(`fabric: closed a connection from ${receiver.source === undefined ? socket.remoteAddress : `board ${receiver.source}`}: ${error}`);
      socket.destroy();
    });
    socket.on("error", () => undefined);
    socket.once("close", () => this.incoming.delete(socket));
  }
}
