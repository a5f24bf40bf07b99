// The fabric over TCP (host/fabric/tcp_fabric.ts), against a raw socket playing the other board's process: what one
// board sends another in one turn crosses as one burst, a burst reaches the port whole in one clock event however the
// stream is cut and however late its end comes, nothing goes while either connection is down, and requests in flight
// end when a connection closes. The first two are what kept a reply apart from its tunneled interrupt (stop 28's
// quarantined cluster_tcp test: docs/cluster.md, "Across processes").
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type FabricMessage, FabricOpcode } from "../../../host/devices/cluster_port.ts";
import type { FabricEndpoint, FabricLink, FabricPacket } from "../../../host/fabric/fabric.ts";
import { encodeHello, encodePacket, FabricWireReceiver } from "../../../host/fabric/fabric_wire.ts";
import { TcpFabric } from "../../../host/fabric/tcp_fabric.ts";
import { VirtualClock } from "../../../host/sim/clock.ts";
import { freePorts } from "../../support/free_ports.ts";

const A = 1; // the fabric under test
const B = 2; // the raw socket
const HOST = "127.0.0.1";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !what(); await sleep(5)) if (Date.now() > end) throw new Error("timed out");
}

const request = (id: number, opcode: FabricOpcode, bytes?: Uint8Array): FabricPacket<FabricMessage> => ({
  source: B, destination: A,
  body: { kind: "request", opcode, incarnation: 7, sequence: id, id, key: 0, offset: 0n, length: bytes?.length ?? 0, bytes },
});

// A port that logs what reaches it, and a clock run as the pacer runs it: at once after whatever scheduled an event.
class LoggingPort implements FabricEndpoint {
  readonly fabricAddress = A;
  links: readonly FabricLink[] = [];
  readonly log: string[] = [];
  constructor(private readonly clock: VirtualClock) {}
  receive(packet: FabricPacket): void {
    const id = (packet.body as { id: number }).id;
    this.log.push(`packet ${id}`);
    this.clock.after(0, () => this.log.push(`event after ${id}`)); // what the firmware would run next
  }
  peerLost(address: number): void { this.log.push(`lost ${address}`); }
}

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function setUp() {
  const [portA, portB] = await freePorts(2);
  const clock = new VirtualClock();
  clock.onOutsideSchedule = () => queueMicrotask(() => { while (clock.runNext()); });
  const fabric = new TcpFabric({ clock, address: A, listen: { host: HOST, port: portA! }, peers: new Map([[B, { host: HOST, port: portB! }]]) });
  const port = new LoggingPort(clock);
  fabric.attach(port);
  port.links = fabric.linksFor(A, "a");
  // b's process: a listener A dials (what A sends b arrives here), and b's own connection to A.
  const received: FabricPacket<FabricMessage>[][] = [];
  const wire = new FabricWireReceiver(B, (x) => x === A || x === B, (burst) => received.push(burst));
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => { sockets.push(s); s.on("data", (c: Buffer) => wire.push(new Uint8Array(c))); });
  await new Promise<void>((r) => server.listen(portB!, HOST, r));
  await fabric.start();
  cleanup.push(() => fabric.stop(), () => { for (const s of sockets) s.destroy(); return new Promise<void>((r) => server.close(() => r())); });
  const toA = connect({ host: HOST, port: portA! });
  await new Promise<void>((r) => toA.once("connect", () => r()));
  toA.setNoDelay(true);
  cleanup.push(() => void toA.destroy());
  toA.write(encodeHello(B, A));
  return { clock, fabric, port, received, toA, sockets };
}

describe("the fabric over TCP", () => {
  it("hands a burst to the port only whole, however TCP cuts it and however late its end comes", async () => {
    const { port, toA } = await setUp();
    const data = new Uint8Array(64 << 10).fill(5);
    // A reply's SEND (64 KiB, so TCP cuts it anyway) and the INTERRUPT after it, as one burst whose end comes 50 ms late.
    const send = encodePacket(request(1, FabricOpcode.Send, data), true);
    const interrupt = encodePacket(request(2, FabricOpcode.Interrupt));
    toA.write(send);
    await sleep(50);
    expect(port.log, "nothing of a burst before its end").toEqual([]);
    toA.write(interrupt);
    await until(() => port.log.length === 4);
    // Both packets before anything the first one scheduled: the firmware never runs between a reply and its interrupt.
    expect(port.log).toEqual(["packet 1", "packet 2", "event after 1", "event after 2"]);
    toA.write(encodePacket(request(3, FabricOpcode.Interrupt)));
    await until(() => port.log.length === 6);
    expect(port.log.slice(4)).toEqual(["packet 3", "event after 3"]);
  });

  it("sends what one board gets in one turn as one burst; nothing until both connections are up", async () => {
    const { fabric, port, received } = await setUp();
    const mine = (id: number): FabricPacket<FabricMessage> => ({ ...request(id, FabricOpcode.Send, new Uint8Array(100)), source: A, destination: B });
    // A dialed b and b dialed A: wait for both.
    let sent = false;
    await until(() => (sent = fabric.send(port, 0, mine(0))));
    await until(() => received.length === 1);
    expect(sent).toBe(true);
    expect(fabric.send(port, 0, mine(1))).toBe(true);
    expect(fabric.send(port, 0, { ...mine(2), body: { ...mine(2).body, opcode: FabricOpcode.Interrupt, length: 0, bytes: undefined } as FabricMessage })).toBe(true);
    await until(() => received.length === 2);
    expect(received[1]!.map((p) => (p.body as { id: number }).id)).toEqual([1, 2]);
  });

  it("refuses packets while b's connection here is down, and ends what is in flight when a connection closes", async () => {
    const { fabric, port, toA } = await setUp();
    const mine: FabricPacket<FabricMessage> = { ...request(1, FabricOpcode.Send, new Uint8Array(8)), source: A, destination: B };
    await until(() => fabric.send(port, 0, mine));
    toA.destroy(); // b's connection to A: its answers cannot come back
    await until(() => port.log.includes(`lost ${B}`));
    expect(fabric.send(port, 0, mine)).toBe(false);
    expect(fabric.stats.refused).toBeGreaterThan(0);
  });
});
