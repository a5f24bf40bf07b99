// The cluster fabric (docs/hardware.md, "cluster-port"; docs/cluster.md, "The fabric"): the switch the boards'
// cluster ports hang off. Each port has its fabric address (its board's id in the routing table) and two physical
// links to the switch; a packet leaves on the sender's active link and reaches the port at its destination address
// FABRIC_LATENCY_NS later, on the clock every board of the cluster shares.
//
// A packet is lost, never delivered late or twice, when at its arrival the link it left on has dropped since it was
// sent, or the destination has no link up, or no port holds its address. Packets between two ports arrive in the
// order they were sent: the latency is one constant, and events due at one time run in the order scheduled.
// Faults the fault command or the simulator arms (dropNext, duplicateNext) act on the next packet sent.
import { FABRIC_TIMEOUT_NS } from "../devices/cluster_port.ts";
import type { VirtualClock } from "../sim/clock.ts";

/** Board time a packet takes from one port to another. */
export const FABRIC_LATENCY_NS = 2_000;
/** Physical links per port, bonded under the port's one fabric address. */
export const FABRIC_LINKS_PER_PORT = 2;
/** Fabric addresses are routing-table board ids: 1 to 4095. */
export const FABRIC_ADDRESS_MAX = 4095;

/** One physical link of a port: up or down, and how often it went down (a packet sent before a drop is lost). */
export interface FabricLink {
  up: boolean;
  epoch: number; // raised at every drop
}

/** What crosses the fabric. The cluster port gives `body` its meaning; the fabric reads only the addresses. */
export interface FabricPacket<Body = unknown> {
  readonly source: number;
  readonly destination: number;
  readonly body: Body;
}

/** A port as the fabric sees it. */
export interface FabricEndpoint {
  readonly fabricAddress: number;
  /** The fabric's links at the port's address (attach() hands them out: they outlive a power cycle of the board). */
  readonly links: readonly FabricLink[];
  /** The packet arrived: the endpoint acts on it now. */
  receive(packet: FabricPacket): void;
  /** The way to board `address` is gone (a fabric over TCP lost its connection): its requests in flight will get no answer. */
  peerLost?(address: number): void;
}

/** What windowAccess answers when it cannot reach the destination (FabricStatus.LinkDown of the cluster port). */
export const WINDOW_LINK_DOWN = 4;

export interface FabricStats {
  windowAccesses: number; // through a port's window, done at once
  sent: number;
  delivered: number;
  lost: number; // a link dropped under it, no link up at the destination, or no port at the address
  dropped: number; // by an armed fault
  duplicated: number; // by an armed fault
}

/**
 * What a cluster port plugs into: this switch (every board in one process, one clock), or a fabric carried over TCP
 * to other processes (tcp_fabric.ts). The port sees only this.
 */
export interface FabricSwitch {
  readonly clock: VirtualClock;
  /** A window access reaches the peer's memory (its DMA done at once); false: the port is revision 2, RDMA only. */
  readonly windowReaches: boolean;
  /** How long a port waits for a request's answer before it completes LinkDown. */
  readonly timeoutNs: number;
  /**
   * When a packet from board `address` last arrived (board time), for a fabric on ordered connections: a port then
   * waits timeoutNs from that, not from its request (an answer behind others is late, not lost). Absent: from the request.
   */
  lastHeardNs?(address: number): number | undefined;
  linksFor(address: number, owner: string): FabricLink[];
  attach(endpoint: FabricEndpoint): number;
  detach(endpoint: FabricEndpoint): void;
  send(sender: FabricEndpoint, linkIndex: number, packet: FabricPacket): boolean;
  windowAccess(destination: number, access: (target: FabricEndpoint) => number): number;
}

export interface FabricOptions {
  log?: (message: string) => void;
  /** false: the ports' windows reach nothing and they are revision 2 (RDMA only), as over a network (default true). */
  window?: boolean;
}

export type FabricFault = { kind: "drop-next"; count: number } | { kind: "duplicate-next"; count: number };

export class Fabric implements FabricSwitch {
  readonly stats: FabricStats = { windowAccesses: 0, sent: 0, delivered: 0, lost: 0, dropped: 0, duplicated: 0 };
  private readonly endpoints = new Map<number, FabricEndpoint>();
  private readonly owners = new Map<number, string>();
  private readonly linksAt = new Map<number, FabricLink[]>();
  private readonly attachCount = new Map<number, number>();
  private dropCount = 0;
  private duplicateCount = 0;

  readonly windowReaches: boolean;
  readonly timeoutNs = FABRIC_TIMEOUT_NS;
  private readonly log: (message: string) => void;

  constructor(readonly clock: VirtualClock, options: FabricOptions | ((message: string) => void) = {}) {
    const o = typeof options === "function" ? { log: options } : options;
    this.log = o.log ?? (() => {});
    this.windowReaches = o.window ?? true;
  }

  /**
   * The links at `address`, for the port `owner` (a board) plugs in there: made up at first, the same ones after.
   * Another owner at an address already taken is a cluster-construction bug.
   */
  linksFor(address: number, owner: string): FabricLink[] {
    if (!Number.isInteger(address) || address < 1 || address > FABRIC_ADDRESS_MAX) throw new RangeError(`fabric: address ${address} is not 1..${FABRIC_ADDRESS_MAX}`);
    const held = this.owners.get(address);
    if (held !== undefined && held !== owner) throw new Error(`fabric: address ${address} is ${held}'s, not ${owner}'s`);
    this.owners.set(address, owner);
    let links = this.linksAt.get(address);
    if (links === undefined) {
      links = Array.from({ length: FABRIC_LINKS_PER_PORT }, () => ({ up: true, epoch: 0 }));
      this.linksAt.set(address, links);
    }
    return links;
  }

  /**
   * Plugs `endpoint` in at its address, in place of the port there before (its board's power cycle made a new one).
   * Returns how many ports were attached there before it: a port's incarnation, which its peers see change.
   */
  attach(endpoint: FabricEndpoint): number {
    const address = endpoint.fabricAddress;
    if (endpoint.links !== this.linksAt.get(address)) throw new Error(`fabric: port ${address} does not hold the links linksFor() gave`);
    this.endpoints.set(address, endpoint);
    const count = this.attachCount.get(address) ?? 0;
    this.attachCount.set(address, count + 1);
    return count;
  }

  /** Unplugs the port at `address` (its board powered off): packets to it are lost until one is attached again. */
  detach(endpoint: FabricEndpoint): void {
    if (this.endpoints.get(endpoint.fabricAddress) === endpoint) this.endpoints.delete(endpoint.fabricAddress);
  }

  /** The addresses of every port plugged in, ascending. */
  addresses(): number[] {
    return [...this.endpoints.keys()].sort((a, b) => a - b);
  }

  /** Brings link `index` of the port at `address` up or down (a cable pulled, a switch port reset). */
  setLink(address: number, index: number, up: boolean): void {
    const links = this.linksAt.get(address);
    if (links === undefined) throw new RangeError(`fabric: no port at address ${address}`);
    const link = links[index];
    if (link === undefined) throw new RangeError(`fabric: port ${address} has no link ${index}`);
    if (link.up && !up) link.epoch += 1;
    link.up = up;
    this.log(`fabric: port ${address} link ${index} ${up ? "up" : "down"}`);
  }

  /** Arms a fault on the next packets sent. */
  inject(fault: FabricFault): void {
    if (fault.kind === "drop-next") this.dropCount += fault.count;
    else this.duplicateCount += fault.count;
  }

  /**
   * Sends `packet` from `sender` on its link `linkIndex` (the bond's choice). Returns false when that link is down
   * (nothing sent); true means the packet is on its way, which does not mean it will arrive.
   */
  send(sender: FabricEndpoint, linkIndex: number, packet: FabricPacket): boolean {
    const link = sender.links[linkIndex];
    if (link === undefined || !link.up) return false;
    this.stats.sent += 1;
    if (this.dropCount > 0) {
      this.dropCount -= 1;
      this.stats.dropped += 1;
      return true;
    }
    const copies = this.duplicateCount > 0 ? 2 : 1;
    if (copies === 2) {
      this.duplicateCount -= 1;
      this.stats.duplicated += 1;
    }
    const epoch = link.epoch;
    for (let copy = 0; copy < copies; copy++) {
      this.clock.after(FABRIC_LATENCY_NS, () => this.arrive(link, epoch, packet));
    }
    return true;
  }

  /**
   * A window access (docs/hardware.md, "cluster-port", the window): `access` runs against the port at `destination`
   * at once, as the DMA that drives it; the answer is its status (a number), or LinkDown when no port is there or it
   * has no link up. The data moves in the same event: a window is for a controller's DMA, which cannot wait.
   */
  windowAccess(destination: number, access: (target: FabricEndpoint) => number): number {
    const target = this.endpoints.get(destination);
    if (target === undefined || !target.links.some((l) => l.up)) return WINDOW_LINK_DOWN;
    this.stats.windowAccesses += 1;
    return access(target);
  }

  private arrive(link: FabricLink, epoch: number, packet: FabricPacket): void {
    const target = this.endpoints.get(packet.destination);
    if (link.epoch !== epoch || !link.up || target === undefined || !target.links.some((l) => l.up)) {
      this.stats.lost += 1;
      return;
    }
    this.stats.delivered += 1;
    target.receive(packet);
  }
}
