// The iop-bridge against docs/hardware.md ("iop-bridge", "Messaging unit"): two bare buses, the host's with the bridge
// function plugged, enabled and its MSI-X pointed at the MSI region, the storage processor's with the MU local
// registers and the outbound window mapped. The tests play both firmwares through bus accesses only, and check what
// lands in each RAM, in each register and as each interrupt.
import { beforeEach, describe, expect, it } from "vitest";
import { createIopBridge, type IopBridge } from "../../../host/devices/iop_bridge.ts";
import { BusHarness } from "../../support/bus_harness.ts";

// docs/hardware.md, "Local bus map" (storage processor side).
const MU_LOCAL_BASE = 0xf000_0000n;
const OUTBOUND_BASE = 0x1_0000_0000n;
const STORAGE_RAM_MIB = 3; // not a power of two: BAR 2 rounds up to 4 MiB
const SLOT = 1;
const MSI_DATA_BASE = 0x10; // vector 0 arrives as 0x10, vector 1 as 0x11 (the MSI region keeps data & 63)
const LVEC = 0x30;
const QBAR = 0x1_0000;
const ENTRIES = 256;
const QUEUE_BYTES = ENTRIES * 4;
const EMPTY = 0xffff_ffff;

// Host side (BAR 0) and local side register offsets, spelled out from the tables rather than imported, so a wrong
// constant in the model cannot agree with itself.
const H = { IMR0: 0x10, IMR1: 0x14, OMR0: 0x18, OMR1: 0x1c, IDR: 0x20, ODR: 0x2c, OISR: 0x30, OIMR: 0x34, IN: 0x40, OUT: 0x44 };
const L = {
  IMR0: 0x10, IMR1: 0x14, OMR0: 0x18, OMR1: 0x1c, IDR: 0x20, IISR: 0x24, IIMR: 0x28, ODR: 0x2c, LVEC: 0x3c, MUCR: 0x50, QBAR: 0x54,
  IFHPR: 0x60, IFTPR: 0x64, IPHPR: 0x68, IPTPR: 0x6c, OPHPR: 0x70, OPTPR: 0x74, OFHPR: 0x78, OFTPR: 0x7c,
};
const Q = { inboundFree: 0, inboundPost: 1, outboundPost: 2, outboundFree: 3 };

let host: BusHarness;
let storage: BusHarness;
let bridge: IopBridge;
let bars: Map<number, bigint>;

function hostRead(offset: number): number {
  return Number(host.bus.read(bars.get(0)! + BigInt(offset), 4));
}
function hostWrite(offset: number, value: number): void {
  host.bus.write(bars.get(0)! + BigInt(offset), 4, value);
}
function localRead(offset: number): number {
  return Number(storage.bus.read(MU_LOCAL_BASE + BigInt(offset), 4));
}
function localWrite(offset: number, value: number): void {
  storage.bus.write(MU_LOCAL_BASE + BigInt(offset), 4, value);
}
function ramU32(ram: Uint8Array, address: number): number {
  return new DataView(ram.buffer, ram.byteOffset).getUint32(address, true);
}
function setRamU32(ram: Uint8Array, address: number, value: number): void {
  new DataView(ram.buffer, ram.byteOffset).setUint32(address, value, true);
}
function entryAddress(queue: number, index: number): number {
  return QBAR + queue * QUEUE_BYTES + index * 4;
}
function enableQueues(): void {
  localWrite(L.QBAR, QBAR);
  localWrite(L.MUCR, 1); // enabled, 256 entries
  localWrite(L.LVEC, LVEC);
}
// The local firmware posting `addresses` to the inbound free queue: entries first, then the head.
function localPostFree(addresses: number[]): void {
  let head = localRead(L.IFHPR);
  for (const a of addresses) {
    setRamU32(storage.ram, entryAddress(Q.inboundFree, head), a);
    head = (head + 1) % ENTRIES;
  }
  localWrite(L.IFHPR, head);
}
function localPostOutbound(address: number): void {
  const head = localRead(L.OPHPR);
  setRamU32(storage.ram, entryAddress(Q.outboundPost, head), address);
  localWrite(L.OPHPR, (head + 1) % ENTRIES);
}

beforeEach(() => {
  host = new BusHarness(4, "host");
  storage = new BusHarness(STORAGE_RAM_MIB, "storage");
  bridge = createIopBridge({
    name: "iop0",
    storageMemory: storage.memory,
    storageRamBytes: STORAGE_RAM_MIB << 20,
    raiseLocalIrq: (vector) => storage.irqs.push(vector),
    log: (m) => storage.log.push(m),
  });
  host.plug(SLOT, bridge.hostFunction);
  bars = host.enable(SLOT);
  host.enableMsix(SLOT, bars.get(4)!, 2, MSI_DATA_BASE);
  storage.bus.map(MU_LOCAL_BASE, 4096n, bridge.localRegion);
  storage.bus.map(OUTBOUND_BASE, 1n << 32n, bridge.outboundWindow);
});

describe("iop-bridge PCI function", () => {
  it("identifies as 8086:0303 class 0E0001 with BAR 2 a 64-bit prefetchable window rounded up to a power of two", () => {
    // Proves the header and BAR sizing by reading config space the way enumeration does: IDs, class, BAR 2 flags,
    // and the size the sizing protocol reports (3 MiB of RAM must give a 4 MiB BAR).
    expect(host.cfgRead(SLOT, 0x00)).toBe(0x0303_8086);
    expect(host.cfgRead(SLOT, 0x08) >>> 8).toBe(0x0e0001);
    const bar2 = host.cfgRead(SLOT, 0x18);
    expect(bar2 & 0xf).toBe(0b1100); // 64-bit, prefetchable
    host.cfgWrite(SLOT, 0x04, 0, 2); // memory off while sizing
    host.cfgWrite(SLOT, 0x18, 0xffff_ffff);
    expect((~(host.cfgRead(SLOT, 0x18) & ~0xf) + 1) >>> 0).toBe(4 << 20);
    expect(bars.get(2)! % (4n << 20n)).toBe(0n);
  });

  it("BAR 2 reads and writes land in the storage processor's RAM, by CPU access and by DMA", () => {
    // Proves the inbound ATU window: host writes at BAR2 + a appear in storage RAM at a and the reverse, for a
    // register-size access and for a DMA from a host-side master; and that the rounded-up part past RAM refuses.
    const bar2 = bars.get(2)!;
    host.bus.write(bar2 + 0x1234n, 4, 0xdead_beef);
    expect(ramU32(storage.ram, 0x1234)).toBe(0xdead_beef);
    setRamU32(storage.ram, 0x2000, 0x1122_3344);
    expect(host.bus.read(bar2 + 0x2000n, 4)).toBe(0x1122_3344);
    host.bus.write(bar2 + 0x3000n, 8, 0x0102_0304_0506_0708n);
    expect(ramU32(storage.ram, 0x3004)).toBe(0x0102_0304);

    const bytes = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    expect(host.bus.dmaWrite("virtio", bar2 + 0x4000n, bytes).ok).toBe(true);
    expect([...storage.ram.subarray(0x4000, 0x4064)]).toEqual([...bytes]);
    const back = host.bus.dmaRead("virtio", bar2 + 0x4000n, 100);
    expect(back.ok && [...back.bytes]).toEqual([...bytes]);

    const pastRam = bar2 + BigInt(STORAGE_RAM_MIB << 20);
    expect(host.bus.dmaRead("virtio", pastRam - 8n, 16).ok).toBe(false); // straddles the end of RAM
    expect(host.bus.dmaWrite("virtio", pastRam, bytes).ok).toBe(false);
    expect(host.bus.read(pastRam, 4)).toBe(0xffff_ffff);
  });
});

describe("I2O queues", () => {
  it("carries a frame each way: inbound free → post → local interrupt → consume; outbound free → post → MSI-X 0 → pop", () => {
    // Proves the whole frame cycle of docs/hardware.md: every pointer register after every step, the entries the unit
    // writes in storage RAM, the frame data through BAR 2 and through the outbound window, and both interrupts.
    enableQueues();
    localWrite(L.IIMR, ~(1 << 4)); // unmask inbound post
    localPostFree([0x2_0000, 0x2_0100, 0x2_0200, 0x2_0300]);
    hostWrite(H.OIMR, ~(1 << 3)); // unmask outbound post
    for (let i = 0; i < 4; i++) hostWrite(H.OUT, 0x8000 + i * 0x100); // the host returns its outbound frames
    expect(localRead(L.OFHPR)).toBe(4);
    expect(ramU32(storage.ram, entryAddress(Q.outboundFree, 3))).toBe(0x8300);

    // Host → storage.
    const frame = hostRead(H.IN);
    expect(frame).toBe(0x2_0000);
    expect(localRead(L.IFTPR)).toBe(1);
    host.bus.write(bars.get(2)! + BigInt(frame), 8, 0xcafe_f00d_0000_0001n);
    expect(storage.irqs).toEqual([]);
    hostWrite(H.IN, frame);
    expect(storage.irqs).toEqual([LVEC]);
    expect(localRead(L.IISR) & (1 << 4)).not.toBe(0);
    expect(localRead(L.IPHPR)).toBe(1);
    const tail = localRead(L.IPTPR);
    const posted = ramU32(storage.ram, entryAddress(Q.inboundPost, tail));
    expect(posted).toBe(0x2_0000);
    expect(ramU32(storage.ram, posted + 4)).toBe(0xcafe_f00d);
    localWrite(L.IISR, 1 << 4);
    localWrite(L.IPTPR, tail + 1);
    expect(localRead(L.IISR)).toBe(0);
    localPostFree([posted]); // the frame goes back to the free queue
    expect(localRead(L.IFHPR)).toBe(5);

    // Storage → host.
    const freeTail = localRead(L.OFTPR);
    const reply = ramU32(storage.ram, entryAddress(Q.outboundFree, freeTail));
    expect(reply).toBe(0x8000);
    localWrite(L.OFTPR, freeTail + 1);
    storage.bus.write(OUTBOUND_BASE + BigInt(reply), 8, 0x5151_5151_a5a5_a5a5n);
    expect(host.irqs).toEqual([]);
    localPostOutbound(reply);
    expect(host.irqs).toEqual([MSI_DATA_BASE + 0]);
    expect(hostRead(H.OISR) & (1 << 3)).not.toBe(0);
    const popped = hostRead(H.OUT);
    expect(popped).toBe(0x8000);
    expect(ramU32(host.ram, popped)).toBe(0xa5a5_a5a5);
    expect(ramU32(host.ram, popped + 4)).toBe(0x5151_5151);
    expect(localRead(L.OPTPR)).toBe(1);
    expect(hostRead(H.OISR) & (1 << 3)).toBe(0);
    expect(hostRead(H.OUT)).toBe(EMPTY);
    hostWrite(H.OUT, popped);
    expect(localRead(L.OFHPR)).toBe(5);
    expect(host.irqs).toEqual([MSI_DATA_BASE]);
    expect(storage.log).toEqual([]);
  });

  it("empty ports read 0xFFFFFFFF, before the queues are enabled and after", () => {
    // Proves the empty answer on both ports in both states, and that an empty pop moves no pointer.
    expect(hostRead(H.IN)).toBe(EMPTY);
    expect(hostRead(H.OUT)).toBe(EMPTY);
    enableQueues();
    expect(hostRead(H.IN)).toBe(EMPTY);
    expect(hostRead(H.OUT)).toBe(EMPTY);
    expect(localRead(L.IFTPR)).toBe(0);
    expect(localRead(L.OPTPR)).toBe(0);
  });

  it("raises the local interrupt on the 0→1 edge of IISR & ~IIMR only", () => {
    // Proves the level-ish rule: a second post while bit 4 is still set raises nothing; clearing it lets the next
    // post raise again; and unmasking an already-set bit raises at once.
    enableQueues();
    hostWrite(H.IN, 0x100);
    expect(storage.irqs).toEqual([]); // IIMR masks everything at reset
    localWrite(L.IIMR, ~(1 << 4));
    expect(storage.irqs).toEqual([LVEC]);
    hostWrite(H.IN, 0x200);
    expect(storage.irqs).toEqual([LVEC]);
    localWrite(L.IISR, 1 << 4);
    hostWrite(H.IN, 0x300);
    expect(storage.irqs).toEqual([LVEC, LVEC]);
  });

  it("a post to a full inbound post queue is dropped and sets IISR bit 5", () => {
    // Proves "full when head + 1 == tail": 255 posts fit in 256 entries, the 256th writes no entry, moves no
    // pointer and sets bit 5, which interrupts once unmasked.
    enableQueues();
    setRamU32(storage.ram, entryAddress(Q.inboundPost, 255), 0x5a5a_5a5a); // must survive
    for (let i = 0; i < 255; i++) hostWrite(H.IN, 0x1000 + i * 16);
    expect(localRead(L.IPHPR)).toBe(255);
    expect(localRead(L.IISR) & (1 << 5)).toBe(0);
    hostWrite(H.IN, 0xbad0);
    expect(localRead(L.IPHPR)).toBe(255);
    expect(ramU32(storage.ram, entryAddress(Q.inboundPost, 255))).toBe(0x5a5a_5a5a);
    expect(localRead(L.IISR) & (1 << 5)).not.toBe(0);
    expect(storage.irqs).toEqual([]);
    localWrite(L.IIMR, ~(1 << 5));
    expect(storage.irqs).toEqual([LVEC]);
    localWrite(L.IISR, 1 << 5);
    expect(localRead(L.IISR) & (1 << 5)).toBe(0);
  });

  it("wraps pointers around the end of the ring", () => {
    // Proves modulo arithmetic: with head and tail near the end, posts continue at entry 0.
    enableQueues();
    for (let i = 0; i < 254; i++) hostWrite(H.IN, i);
    localWrite(L.IPTPR, 254); // the local side consumed them all
    hostWrite(H.IN, 0xaaa0);
    hostWrite(H.IN, 0xbbb0);
    hostWrite(H.IN, 0xccc0);
    expect(localRead(L.IPHPR)).toBe(1);
    expect(ramU32(storage.ram, entryAddress(Q.inboundPost, 255))).toBe(0xbbb0);
    expect(ramU32(storage.ram, entryAddress(Q.inboundPost, 0))).toBe(0xccc0);
  });

  it("the outbound post interrupt is pending while OIMR masks it and goes out on unmask, once per empty→non-empty", () => {
    // Proves vector 0 follows OISR bit 3 through the mask: nothing while masked, one MSI on unmask, none for a second
    // post while the queue is still non-empty, and a new one after the host drained it.
    enableQueues();
    localPostOutbound(0x8000);
    expect(hostRead(H.OISR)).toBe(1 << 3);
    expect(host.irqs).toEqual([]);
    hostWrite(H.OIMR, ~(1 << 3));
    expect(host.irqs).toEqual([MSI_DATA_BASE]);
    localPostOutbound(0x8100);
    expect(host.irqs).toEqual([MSI_DATA_BASE]);
    expect(hostRead(H.OUT)).toBe(0x8000);
    expect(hostRead(H.OUT)).toBe(0x8100);
    localPostOutbound(0x8200);
    expect(host.irqs).toEqual([MSI_DATA_BASE, MSI_DATA_BASE]);
  });

  it("QBAR unaligned or outside RAM, or a size code above 8, disables the queues with a logged guest error", () => {
    // Proves the validity checks: each bad setting leaves the ports empty and posts dropped, and logs why; a good
    // QBAR afterwards brings the queues up.
    localWrite(L.QBAR, QBAR + 0x10);
    localWrite(L.MUCR, 1);
    expect(storage.log.join("\n")).toMatch(/not 4 KiB aligned/);
    hostWrite(H.IN, 0x100);
    expect(localRead(L.IPHPR)).toBe(0);
    localWrite(L.QBAR, STORAGE_RAM_MIB << 20);
    expect(storage.log.join("\n")).toMatch(/leave RAM/);
    const logged = storage.log.length;
    localWrite(L.QBAR, (STORAGE_RAM_MIB << 20) - 4 * QUEUE_BYTES); // the four queues end exactly at the end of RAM
    expect(storage.log.length).toBe(logged);
    localWrite(L.QBAR, QBAR);
    localWrite(L.MUCR, 1 | (9 << 1));
    expect(storage.log.join("\n")).toMatch(/size code 9/);
    localWrite(L.MUCR, 1);
    hostWrite(H.IN, 0x100);
    expect(localRead(L.IPHPR)).toBe(1);
  });

  it("pointer registers the unit owns are read-only to the local side, and a pointer past the ring is refused", () => {
    // Proves the RO column of the table (IFTPR, IPHPR, OPTPR, OFHPR) and the range check on writable pointers.
    enableQueues();
    for (const offset of [L.IFTPR, L.IPHPR, L.OPTPR, L.OFHPR]) {
      localWrite(offset, 7);
      expect(localRead(offset)).toBe(0);
    }
    localWrite(L.IFHPR, ENTRIES);
    expect(localRead(L.IFHPR)).toBe(0);
    localWrite(L.IFHPR, ENTRIES - 1);
    expect(localRead(L.IFHPR)).toBe(ENTRIES - 1);
  });
});

describe("doorbells and message registers", () => {
  it("host → storage: IDR is RW1S on the host and RW1C locally; IMRn set IISR bits; IIMR masks", () => {
    // Proves the inbound direction: each cause shows in IISR, interrupts only when unmasked, and clears the way the
    // table says (doorbell bits by writing 1 to IDR, message bits by writing 1 to IISR).
    hostWrite(H.IDR, 0x5);
    hostWrite(H.IDR, 0x2);
    expect(localRead(L.IDR)).toBe(0x7);
    expect(localRead(L.IISR)).toBe(1 << 2);
    expect(storage.irqs).toEqual([]);
    localWrite(L.LVEC, LVEC);
    localWrite(L.IIMR, ~(1 << 2) >>> 0);
    expect(storage.irqs).toEqual([LVEC]);
    localWrite(L.IDR, 0x3);
    expect(localRead(L.IDR)).toBe(0x4);
    localWrite(L.IDR, 0x4);
    expect(localRead(L.IISR)).toBe(0);

    hostWrite(H.IMR0, 0xabc);
    hostWrite(H.IMR1, 0xdef);
    expect(localRead(L.IMR0)).toBe(0xabc);
    expect(localRead(L.IMR1)).toBe(0xdef);
    expect(hostRead(H.IMR0)).toBe(0xabc);
    expect(localRead(L.IISR)).toBe(0b11);
    expect(storage.irqs).toEqual([LVEC]); // IMR bits still masked
    localWrite(L.IIMR, ~0b01 >>> 0);
    expect(storage.irqs).toEqual([LVEC, LVEC]);
    localWrite(L.IISR, 0b11);
    expect(localRead(L.IISR)).toBe(0);
    localWrite(L.IMR0, 1); // read-only locally
    expect(localRead(L.IMR0)).toBe(0xabc);
    expect(storage.log.length).toBe(1);
  });

  it("storage → host: OMRn and ODR raise MSI-X vector 1 per write when unmasked, pending while OIMR masks them", () => {
    // Proves the outbound direction: a write while masked only sets OISR and goes out on unmask; unmasked, every
    // write signals; reading OMRn clears its OISR bit; ODR is RW1S locally and RW1C on the host.
    const vector1 = MSI_DATA_BASE + 1;
    localWrite(L.OMR0, 0x5245_4459);
    expect(hostRead(H.OISR)).toBe(1 << 0);
    expect(host.irqs).toEqual([]);
    hostWrite(H.OIMR, ~0b111 >>> 0);
    expect(host.irqs).toEqual([vector1]);
    expect(hostRead(H.OMR0)).toBe(0x5245_4459);
    expect(hostRead(H.OISR)).toBe(0);
    localWrite(L.OMR1, 1);
    localWrite(L.OMR1, 2);
    expect(host.irqs).toEqual([vector1, vector1, vector1]);
    expect(hostRead(H.OMR1)).toBe(2);

    localWrite(L.ODR, 0x1);
    localWrite(L.ODR, 0x2);
    expect(host.irqs.length).toBe(5);
    expect(hostRead(H.ODR)).toBe(0x3);
    expect(hostRead(H.OISR)).toBe(1 << 2);
    hostWrite(H.ODR, 0x1);
    expect(hostRead(H.ODR)).toBe(0x2);
    hostWrite(H.ODR, 0x2);
    expect(hostRead(H.OISR)).toBe(0);
    hostWrite(H.OMR0, 7); // read-only on the host
    expect(localRead(L.OMR0)).toBe(0x5245_4459);
  });
});

describe("fault injection", () => {
  it("drop-next-inbound-post loses one post silently; duplicate-next-inbound-post queues one twice", () => {
    // Proves each inbound fault applies to exactly the next post: the entries that reach the queue, and no status.
    enableQueues();
    bridge.hostFunction.inject({ kind: "drop-next-inbound-post" });
    hostWrite(H.IN, 0xa00);
    hostWrite(H.IN, 0xb00);
    expect(localRead(L.IPHPR)).toBe(1);
    expect(ramU32(storage.ram, entryAddress(Q.inboundPost, 0))).toBe(0xb00);
    expect(localRead(L.IISR) & (1 << 5)).toBe(0);
    bridge.hostFunction.inject({ kind: "duplicate-next-inbound-post" });
    hostWrite(H.IN, 0xc00);
    hostWrite(H.IN, 0xd00);
    expect(localRead(L.IPHPR)).toBe(4);
    expect([1, 2, 3].map((i) => ramU32(storage.ram, entryAddress(Q.inboundPost, i)))).toEqual([0xc00, 0xc00, 0xd00]);
  });

  it("drop-next-outbound-post loses one entry at the host's pop; duplicate-next-outbound-post hands it out twice", () => {
    // Proves the outbound faults as the host sees them: a lost frame never comes out of the port, a duplicated one
    // comes out twice, and the pop after that is normal again.
    enableQueues();
    localPostOutbound(0x8000);
    localPostOutbound(0x8100);
    bridge.hostFunction.inject({ kind: "drop-next-outbound-post" });
    expect(hostRead(H.OUT)).toBe(0x8100);
    expect(hostRead(H.OUT)).toBe(EMPTY);
    localPostOutbound(0x8200);
    localPostOutbound(0x8300);
    bridge.hostFunction.inject({ kind: "duplicate-next-outbound-post" });
    expect(hostRead(H.OUT)).toBe(0x8200);
    expect(hostRead(H.OUT)).toBe(0x8200);
    expect(hostRead(H.OUT)).toBe(0x8300);
    expect(hostRead(H.OUT)).toBe(EMPTY);
  });
});

describe("outbound window", () => {
  it("reaches host RAM and host BARs, faults DMA to nothing, and needs the bridge's Bus Master bit", () => {
    // Proves local base + a is host-bus a: a CPU read of host RAM, a read of the bridge's own BAR 0 through the host
    // bus, a DMA whose host target is unmapped coming back as a fault, and nothing at all with Bus Master off.
    setRamU32(host.ram, 0x9000, 0x1357_9bdf);
    expect(storage.bus.read(OUTBOUND_BASE + 0x9000n, 4)).toBe(0x1357_9bdf);
    hostWrite(H.IMR1, 0x4242);
    expect(storage.bus.read(OUTBOUND_BASE + bars.get(0)! + BigInt(H.IMR1), 4)).toBe(0x4242);
    const dma = storage.bus.dmaWrite("dma", OUTBOUND_BASE + 0x9000n, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    expect(dma.ok).toBe(true);
    expect(ramU32(host.ram, 0x9004)).toBe(0x0807_0605);
    const unmapped = storage.bus.dmaRead("dma", OUTBOUND_BASE + 0x8000_0000n, 64);
    expect(unmapped.ok).toBe(false);
    expect(!unmapped.ok && unmapped.fault).toMatch(/beyond its window/);

    host.cfgWrite(SLOT, 0x04, 0b010, 2); // memory space on, bus master off
    expect(storage.bus.dmaRead("dma", OUTBOUND_BASE + 0x9000n, 4).ok).toBe(false);
    expect(storage.bus.read(OUTBOUND_BASE + 0x9000n, 4)).toBe(0xffff_ffff);
    storage.bus.write(OUTBOUND_BASE + 0x9000n, 4, 0);
    expect(ramU32(host.ram, 0x9000)).toBe(0x0403_0201); // what the DMA above left there
  });
});

describe("reset", () => {
  it("restores every power-on value", () => {
    // Proves reset(): registers back to their reset values (LVEC 0x20, masks all set), queues off, armed faults
    // gone, and the PCI header with memory space off so BAR 0 no longer decodes.
    enableQueues();
    localPostFree([0x100]);
    localWrite(L.IIMR, 0);
    localWrite(L.OMR0, 9);
    hostWrite(H.IDR, 1);
    bridge.hostFunction.inject({ kind: "drop-next-inbound-post" });
    bridge.hostFunction.reset();
    expect(host.bus.read(bars.get(0)! + BigInt(H.IN), 4)).toBe(0xffff_ffff); // unmapped now: a master abort
    expect(host.cfgRead(SLOT, 0x04) & 0xffff).toBe(0);
    for (const [offset, value] of [[L.LVEC, 0x20], [L.IIMR, 0x37], [L.MUCR, 0], [L.QBAR, 0], [L.IFHPR, 0], [L.OMR0, 0], [L.IDR, 0], [L.IISR, 0]] as const) {
      expect(localRead(offset)).toBe(value);
    }
    bars = host.enable(SLOT);
    expect(hostRead(H.OIMR)).toBe(0xf);
    enableQueues();
    hostWrite(H.IN, 0xe00); // the armed drop is gone
    expect(localRead(L.IPHPR)).toBe(1);
  });
});
