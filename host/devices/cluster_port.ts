// The cluster port (docs/hardware.md, "cluster-port"): a board's RDMA-capable bridge onto the cluster fabric
// (host/fabric/fabric.ts), on the host processor's bus. After an InfiniBand/RoCE host channel adapter, reduced to
// what the firmware needs: keyed memory regions, RDMA WRITE and READ between boards' RAM, SEND into the peer's posted
// receive buffers, tunneled interrupts, and two links bonded under one fabric address.
//
// The firmware drives three rings in its RAM: the send queue (work requests it posts, SQ_TAIL is the doorbell), the
// receive queue (buffers SENDs land in) and the completion queue (the port writes an entry per finished work request
// and per received SEND, then signals MSI-X vector 0). Remote interrupts are raised on vectors 1..8 with this port's
// own MSI-X table, after every earlier request from the same sender was applied.
//
// Interpretations (each chosen so that a peer's bad request never touches memory it was not given):
// - A region is registered through the REGION_* window: select a slot, write base and length, then ACCESS (bit 0
//   remote read, bit 1 remote write). The port answers with a fresh key, (generation << 8) | slot, the generation
//   from a counter that never repeats while the port exists (resets included), so a revoked key never comes back.
//   ACCESS 0 revokes. A remote access names the key and an offset into the region: a key no valid region has, an
//   offset + length beyond the region, or an access the region does not allow is refused before any byte moves, is
//   counted (FAULT_COUNT and the stats) and answered with a status; the initiator's completion says which.
// - Requests between two ports carry a sequence number: a duplicate is dropped; a gap (a request lost on a dropped
//   link) fences the next INTERRUPT, which is then not raised and completes Fenced: an interrupt is never raised
//   before the data it follows.
// - A work request the initiator cannot read, with an unknown opcode, length 0 or over FABRIC_TRANSFER_BYTES_MAX,
//   or a tunneled vector over 7 completes BadRequest or LocalFault without anything sent.
// - Every request the fabric does not answer within FABRIC_TIMEOUT_NS (the fabric's timeoutNs; over TCP, within that
//   time of the last packet heard from its board: lastHeardNs) completes LinkDown (it may still have been applied:
//   WRITE and SEND are not undone). Both links down, or the fabric refusing the packet
//   (no connection), or losing its way to the destination (peerLost): LinkDown at once.
// - Queue bases and sizes may change only while CTRL.enable is clear (else a guest error). RESET revokes every
//   region, clears the rings' indexes and forgets requests in flight (their answers are dropped when they come).
// - The completion ring full: the entry is dropped, CQ_OVERFLOW is set in STATUS and counted.
import { type AccessSize, type BusRegion, WindowFault } from "../bus/bus.ts";
import { PciFunctionBase, readLe, writeLe } from "../bus/pci_function.ts";
import { type FabricEndpoint, type FabricLink, type FabricPacket, type FabricSwitch } from "../fabric/fabric.ts";
import type { EventHandle, VirtualClock } from "../sim/clock.ts";
import { hex } from "../sim/trace.ts";

export const CLUSTER_PORT_VENDOR_ID = 0x1234;
export const CLUSTER_PORT_DEVICE_ID = 0x11d0;
export const CLUSTER_PORT_CLASS_CODE = 0x020700; // network controller, InfiniBand
// The revision says how peers' memory is reached: 1 also through the window (its fabric runs a window access at once),
// 2 only by RDMA READ/WRITE work requests (a fabric carried over a network, host/fabric/tcp_fabric.ts: the window
// reaches nothing, every access through it faults).
export const CLUSTER_PORT_REVISION_WINDOW = 1;
export const CLUSTER_PORT_REVISION_RDMA = 2;
export const CLUSTER_PORT_BAR_REGISTERS = 0;
export const CLUSTER_PORT_BAR_MSIX = 2;
// 64-bit, prefetchable: CP_WINDOW_SLOTS slots of CP_WINDOW_SLOT_BYTES. The last BAR, and 256 MiB: in the board's
// 512 MiB PCI memory window a firmware that places BARs in slot order fits it when the port is the last function.
export const CLUSTER_PORT_BAR_WINDOW = 4;
export const CLUSTER_PORT_VECTOR_COMPLETION = 0; // a completion entry was written
export const CLUSTER_PORT_VECTOR_TUNNEL_BASE = 1; // remote interrupt v arrives on vector 1 + v
export const CLUSTER_PORT_TUNNEL_VECTORS = 8;
export const CLUSTER_PORT_VECTOR_COUNT = 9;
const BAR_SIZE_BYTES = 4096;
const MSIX_TABLE_OFFSET = 0x000;
const MSIX_PBA_OFFSET = 0x800;

// BAR 0 registers, all 32 bits.
export const CP_CTRL = 0x00;
export const CP_STATUS = 0x04;
export const CP_FABRIC_ADDRESS = 0x08;
export const CP_FAULT_COUNT = 0x0c;
export const CP_FAILOVER_COUNT = 0x10;
export const CP_SQ_BASE_LO = 0x20;
export const CP_SQ_BASE_HI = 0x24;
export const CP_SQ_SIZE = 0x28;
export const CP_SQ_TAIL = 0x2c;
export const CP_SQ_HEAD = 0x30;
export const CP_RQ_BASE_LO = 0x40;
export const CP_RQ_BASE_HI = 0x44;
export const CP_RQ_SIZE = 0x48;
export const CP_RQ_TAIL = 0x4c;
export const CP_RQ_HEAD = 0x50;
export const CP_CQ_BASE_LO = 0x60;
export const CP_CQ_BASE_HI = 0x64;
export const CP_CQ_SIZE = 0x68;
export const CP_CQ_TAIL = 0x6c;
export const CP_CQ_HEAD = 0x70;
export const CP_REGION_SELECT = 0x80;
export const CP_REGION_BASE_LO = 0x84;
export const CP_REGION_BASE_HI = 0x88;
export const CP_REGION_LENGTH = 0x8c;
export const CP_REGION_ACCESS = 0x90;
export const CP_REGION_KEY = 0x94;
export const CP_WINDOW_SELECT = 0xa0;
export const CP_WINDOW_DESTINATION = 0xa4;
export const CP_WINDOW_KEY = 0xa8; // non-zero opens the slot onto the destination's region of that key; 0 closes it

export const CP_CTRL_ENABLE = 1 << 0;
export const CP_CTRL_RESET = 1 << 1;
export const CP_STATUS_LINK0_UP = 1 << 0;
export const CP_STATUS_LINK1_UP = 1 << 1;
export const CP_STATUS_ACTIVE_LINK1 = 1 << 2; // the bond sends on link 1 (else link 0)
export const CP_STATUS_CQ_OVERFLOW = 1 << 3;
export const CP_STATUS_ENABLED = 1 << 4;
export const CP_ACCESS_REMOTE_READ = 1 << 0;
export const CP_ACCESS_REMOTE_WRITE = 1 << 1;
export const CP_REGIONS_MAX = 16;
export const CP_QUEUE_ENTRIES_MIN = 2;
export const CP_QUEUE_ENTRIES_MAX = 1024; // a power of two in between
export const FABRIC_TRANSFER_BYTES_MAX = 1 << 20;
export const FABRIC_TIMEOUT_NS = 100_000;
export const CP_REGION_LENGTH_MAX = 0x8000_0000;
export const CP_WINDOW_SLOTS = 4;
export const CP_WINDOW_SLOT_BYTES = 0x400_0000; // 64 MiB: slot offset x is offset x of the peer's region

// Send-queue entry (work request), 32 bytes:
// |0 opcode u8|1 reserved u8|2 destination fabric address u16|4 key u32|8 local address u64|16 remote offset u64|
// |24 length u32|28 tag u32|. INTERRUPT: the remote vector is the remote offset (0..7), key and length unused.
export const CP_WR_BYTES = 32;
export const CP_WR_OPCODE = 0;
export const CP_WR_DESTINATION = 2;
export const CP_WR_KEY = 4;
export const CP_WR_LOCAL_ADDRESS = 8;
export const CP_WR_REMOTE_OFFSET = 16;
export const CP_WR_LENGTH = 24;
export const CP_WR_TAG = 28;
// Receive-queue entry, 16 bytes: |0 buffer address u64|8 buffer length u32|12 tag u32|.
export const CP_RQE_BYTES = 16;
export const CP_RQE_ADDRESS = 0;
export const CP_RQE_LENGTH = 8;
export const CP_RQE_TAG = 12;
// Completion-queue entry, 16 bytes: |0 tag u32|4 status u8|5 opcode u8|6 peer fabric address u16|8 length u32|
// |12 count u32 (completions written since enable, from 1: a driver can tell a fresh entry from a stale one)|.
export const CP_CQE_BYTES = 16;
export const CP_CQE_TAG = 0;
export const CP_CQE_STATUS = 4;
export const CP_CQE_OPCODE = 5;
export const CP_CQE_PEER = 6;
export const CP_CQE_LENGTH = 8;
export const CP_CQE_COUNT = 12;

export enum FabricOpcode {
  Write = 1, // RDMA WRITE: local bytes into the remote region at the offset
  Read = 2, // RDMA READ: the remote region's bytes at the offset into local memory
  Send = 3, // the local bytes into the peer's next receive buffer
  Interrupt = 4, // raise the peer's tunneled vector (remote offset), after everything sent before
  Receive = 5, // completion only: a SEND arrived in the receive buffer the tag names
}

export enum FabricStatus {
  Ok = 0,
  KeyFault = 1, // no valid region has the key (never registered, or revoked)
  RangeFault = 2, // offset + length past the region's end
  AccessFault = 3, // the region does not allow this access
  LinkDown = 4, // no link up, or no answer within FABRIC_TIMEOUT_NS
  NoPort = 5, // reserved: the fabric drops a packet to an address no port holds (LinkDown at the initiator)
  ReceiverNotReady = 6, // the peer had no receive buffer posted
  ReceiveLength = 7, // the SEND is longer than the peer's receive buffer
  LocalFault = 8, // the work request's local range is not memory this port can reach
  RemoteFault = 9, // the peer could not move the bytes (its bus master off, its region not memory)
  Fenced = 10, // an INTERRUPT after a lost request: not raised
  BadRequest = 11, // unknown opcode, length 0 or too long, vector out of range
  NotEnabled = 12, // the peer's port is not enabled
}

export interface ClusterPortStats {
  writes: number; // remote accesses applied here, by kind
  reads: number;
  sends: number;
  interrupts: number;
  bytesIn: number; // written into this board's memory by peers
  bytesOut: number; // read from this board's memory by peers
  keyFaults: number; // refused here: unknown or revoked key
  revokedKeyFaults: number; // of those, a key that was valid once
  rangeFaults: number;
  accessFaults: number;
  fenced: number;
  badRequests: number; // from peers
  duplicates: number;
  timeouts: number; // our requests that got no answer in the fabric's timeoutNs
  lostWithPeer: number; // our requests in flight when the fabric lost its way to their board (peerLost)
  failovers: number;
  cqOverflows: number;
}

interface Region {
  base: bigint;
  lengthBytes: number;
  access: number;
  key: number; // 0: the slot holds no region
}

interface Ring {
  base: bigint;
  size: number; // entries, 0 until set
  head: number;
  tail: number;
}

/** A request between ports (body of a FabricPacket): what a hostile peer forges (tools/fuzz/targets/fabric.ts). */
export type FabricMessage = Message;
type Message =
  | { kind: "request"; opcode: FabricOpcode; incarnation: number; sequence: number; id: number; key: number; offset: bigint; length: number; bytes?: Uint8Array }
  | { kind: "answer"; id: number; status: FabricStatus; bytes?: Uint8Array };

interface Outstanding {
  opcode: FabricOpcode;
  tag: number;
  destination: number;
  localAddress: bigint;
  length: number;
  timer: EventHandle;
}

export interface ClusterPortOptions {
  name: string;
  clock: VirtualClock;
  fabric: FabricSwitch;
  fabricAddress: number;
  /** Who holds the address (the board's name): a power cycle's new port takes the old one's place. Default: name. */
  owner?: string;
  log: (message: string) => void;
}

const SEQUENCE_START = 1;
const INCARNATION_RESETS_MAX = 1 << 30; // a peer's incarnation: attach count × this + resets since
const KEY_GENERATION_LIMIT = 1 << 24;
const DOORBELL_NS = 200; // the port reads the ring this long after the doorbell

export class ClusterPort extends PciFunctionBase implements FabricEndpoint {
  readonly stats: ClusterPortStats = {
    writes: 0, reads: 0, sends: 0, interrupts: 0, bytesIn: 0, bytesOut: 0, keyFaults: 0, revokedKeyFaults: 0, rangeFaults: 0,
    accessFaults: 0, fenced: 0, badRequests: 0, duplicates: 0, timeouts: 0, lostWithPeer: 0, failovers: 0, cqOverflows: 0,
  };
  readonly fabricAddress: number;
  readonly links: readonly FabricLink[];
  private readonly clock: VirtualClock;
  private readonly fabric: FabricSwitch;
  private readonly regions: Region[] = Array.from({ length: CP_REGIONS_MAX }, () => ({ base: 0n, lengthBytes: 0, access: 0, key: 0 }));
  private keyGenerationNext = 1; // never reset: a key once revoked never comes back
  private readonly everIssued = new Set<number>(); // keys handed out, for the revoked/unknown split in the stats
  // Registers; resetPort() restores each.
  private enabled = false;
  private cqOverflow = false;
  private activeLink = 0;
  private regionSelect = 0;
  private stagedBase = 0n;
  private stagedLength = 0;
  private windowSelect = 0;
  private readonly windows: { destination: number; key: number }[] = Array.from({ length: CP_WINDOW_SLOTS }, () => ({ destination: 0, key: 0 }));
  private readonly windowRegion: BusRegion;
  private readonly sq: Ring = { base: 0n, size: 0, head: 0, tail: 0 };
  private readonly rq: Ring = { base: 0n, size: 0, head: 0, tail: 0 };
  private readonly cq: Ring = { base: 0n, size: 0, head: 0, tail: 0 };
  private completionCount = 0;
  private doorbell: EventHandle | undefined;
  // Requests in flight: ours by id, and per peer the sequence we send next and the one we last accepted.
  private readonly outstanding = new Map<number, Outstanding>();
  private idNext = 1;
  private powerEpoch = 0; // raised by reset: answers to requests from before it are dropped
  private readonly incarnationBase: number; // from the fabric: a new port at this address (a power cycle) is a new peer
  private readonly sendSequence = new Map<number, number>();
  private readonly receivedSequence = new Map<number, { incarnation: number; last: number; gap: boolean }>();

  constructor(options: ClusterPortOptions) {
    super(
      {
        name: options.name,
        vendorId: CLUSTER_PORT_VENDOR_ID,
        deviceId: CLUSTER_PORT_DEVICE_ID,
        classCode: CLUSTER_PORT_CLASS_CODE,
        revision: options.fabric.windowReaches ? CLUSTER_PORT_REVISION_WINDOW : CLUSTER_PORT_REVISION_RDMA, // = revision
        bars: [
          { index: CLUSTER_PORT_BAR_REGISTERS, sizeBytes: BAR_SIZE_BYTES },
          { index: CLUSTER_PORT_BAR_MSIX, sizeBytes: BAR_SIZE_BYTES },
          { index: CLUSTER_PORT_BAR_WINDOW, sizeBytes: CP_WINDOW_SLOTS * CP_WINDOW_SLOT_BYTES, is64: true, prefetchable: true },
        ],
        msix: { vectorCount: CLUSTER_PORT_VECTOR_COUNT, bar: CLUSTER_PORT_BAR_MSIX, tableOffset: MSIX_TABLE_OFFSET, pbaOffset: MSIX_PBA_OFFSET },
      },
      options.log,
    );
    this.clock = options.clock;
    this.fabric = options.fabric;
    this.fabricAddress = options.fabricAddress;
    this.links = this.fabric.linksFor(options.fabricAddress, options.owner ?? options.name);
    this.incarnationBase = this.fabric.attach(this) * INCARNATION_RESETS_MAX;
    this.windowRegion = {
      name: `${options.name}.window`,
      read: (offset, sizeBytes) => {
        const bytes = new Uint8Array(sizeBytes);
        try { this.windowRead(offset, bytes); } catch { return sizeBytes === 8 ? 0xffff_ffff_ffff_ffffn : 2 ** (sizeBytes * 8) - 1; }
        return readLe(bytes, 0, sizeBytes);
      },
      write: (offset, sizeBytes, value) => {
        const bytes = new Uint8Array(sizeBytes);
        writeLe(bytes, 0, sizeBytes, value);
        try { this.windowWrite(offset, bytes); } catch { /* a refused write through the window is dropped, counted at the target */ }
      },
      readBytes: (offset, lengthBytes) => {
        const bytes = new Uint8Array(lengthBytes);
        this.windowRead(offset, bytes);
        return bytes;
      },
      readInto: (offset, into) => this.windowRead(offset, into),
      writeBytes: (offset, bytes) => this.windowWrite(offset, bytes),
    };
  }

  /** The PCI revision: CLUSTER_PORT_REVISION_WINDOW, or CLUSTER_PORT_REVISION_RDMA when the fabric has no window. */
  get revision(): number {
    return this.fabric.windowReaches ? CLUSTER_PORT_REVISION_WINDOW : CLUSTER_PORT_REVISION_RDMA;
  }

  /** Power-on reset from the board: the PCI header and the port. The links stay as the fabric has them. */
  reset(): void {
    this.resetFunction();
    this.resetPort();
  }

  /** The board powered off: the port leaves the fabric (packets to it are lost) and forgets what was in flight. */
  powerOff(): void {
    this.resetPort();
    this.fabric.detach(this);
  }

  /** The region in `slot`, for tests and the fuzzer's invariant (undefined when the slot holds none). */
  region(slot: number): { base: bigint; lengthBytes: number; access: number; key: number } | undefined {
    const r = this.regions[slot];
    return r === undefined || r.key === 0 ? undefined : { ...r };
  }

  private resetPort(): void {
    this.enabled = false;
    this.cqOverflow = false;
    this.regionSelect = 0;
    this.windowSelect = 0;
    for (const w of this.windows) Object.assign(w, { destination: 0, key: 0 });
    this.stagedBase = 0n;
    this.stagedLength = 0;
    for (const r of this.regions) Object.assign(r, { base: 0n, lengthBytes: 0, access: 0, key: 0 });
    for (const ring of [this.sq, this.rq, this.cq]) Object.assign(ring, { base: 0n, size: 0, head: 0, tail: 0 });
    this.completionCount = 0;
    if (this.doorbell !== undefined) this.clock.cancel(this.doorbell);
    this.doorbell = undefined;
    for (const o of this.outstanding.values()) this.clock.cancel(o.timer);
    this.outstanding.clear();
    this.powerEpoch += 1;
    this.sendSequence.clear();
    this.receivedSequence.clear();
  }

  // --- Registers ---

  protected mmioRead(bar: number, offset: number, sizeBytes: AccessSize): number {
    if (bar !== CLUSTER_PORT_BAR_REGISTERS || sizeBytes !== 4) return this.guestError(`read of ${sizeBytes} at BAR${bar} ${hex(offset)}`, sizeBytes);
    const region = this.regions[this.regionSelect]!;
    switch (offset) {
      case CP_CTRL: return this.enabled ? CP_CTRL_ENABLE : 0;
      case CP_STATUS: return this.status();
      case CP_FABRIC_ADDRESS: return this.fabricAddress;
      case CP_FAULT_COUNT: return (this.stats.keyFaults + this.stats.rangeFaults + this.stats.accessFaults) >>> 0;
      case CP_FAILOVER_COUNT: return this.stats.failovers >>> 0;
      case CP_SQ_BASE_LO: return Number(this.sq.base & 0xffff_ffffn);
      case CP_SQ_BASE_HI: return Number(this.sq.base >> 32n);
      case CP_SQ_SIZE: return this.sq.size;
      case CP_SQ_TAIL: return this.sq.tail;
      case CP_SQ_HEAD: return this.sq.head;
      case CP_RQ_BASE_LO: return Number(this.rq.base & 0xffff_ffffn);
      case CP_RQ_BASE_HI: return Number(this.rq.base >> 32n);
      case CP_RQ_SIZE: return this.rq.size;
      case CP_RQ_TAIL: return this.rq.tail;
      case CP_RQ_HEAD: return this.rq.head;
      case CP_CQ_BASE_LO: return Number(this.cq.base & 0xffff_ffffn);
      case CP_CQ_BASE_HI: return Number(this.cq.base >> 32n);
      case CP_CQ_SIZE: return this.cq.size;
      case CP_CQ_TAIL: return this.cq.tail;
      case CP_CQ_HEAD: return this.cq.head;
      case CP_REGION_SELECT: return this.regionSelect;
      case CP_REGION_BASE_LO: return Number((region.key !== 0 ? region.base : this.stagedBase) & 0xffff_ffffn);
      case CP_REGION_BASE_HI: return Number((region.key !== 0 ? region.base : this.stagedBase) >> 32n);
      case CP_REGION_LENGTH: return region.key !== 0 ? region.lengthBytes : this.stagedLength;
      case CP_REGION_ACCESS: return region.access;
      case CP_REGION_KEY: return region.key;
      case CP_WINDOW_SELECT: return this.windowSelect;
      case CP_WINDOW_DESTINATION: return this.windows[this.windowSelect]!.destination;
      case CP_WINDOW_KEY: return this.windows[this.windowSelect]!.key;
      default: return this.guestError(`read of unknown register ${hex(offset)}`, 4);
    }
  }

  protected mmioWrite(bar: number, offset: number, sizeBytes: AccessSize, raw: number | bigint): void {
    if (bar !== CLUSTER_PORT_BAR_REGISTERS || sizeBytes !== 4) {
      this.guestError(`write of ${sizeBytes} at BAR${bar} ${hex(offset)}`, sizeBytes);
      return;
    }
    const value = Number(BigInt.asUintN(32, BigInt(raw)));
    switch (offset) {
      case CP_CTRL: return this.writeCtrl(value);
      case CP_SQ_BASE_LO: case CP_SQ_BASE_HI: case CP_SQ_SIZE: return this.writeRingSetup(this.sq, offset - CP_SQ_BASE_LO, value, "SQ");
      case CP_RQ_BASE_LO: case CP_RQ_BASE_HI: case CP_RQ_SIZE: return this.writeRingSetup(this.rq, offset - CP_RQ_BASE_LO, value, "RQ");
      case CP_CQ_BASE_LO: case CP_CQ_BASE_HI: case CP_CQ_SIZE: return this.writeRingSetup(this.cq, offset - CP_CQ_BASE_LO, value, "CQ");
      case CP_SQ_TAIL: return this.writeSqTail(value);
      case CP_RQ_TAIL: return this.writeIndex(this.rq, "tail", value, "RQ_TAIL");
      case CP_CQ_HEAD: return this.writeIndex(this.cq, "head", value, "CQ_HEAD");
      case CP_REGION_SELECT:
        if (value >= CP_REGIONS_MAX) { this.guestError(`REGION_SELECT ${value} (slots 0..${CP_REGIONS_MAX - 1})`, 4); return; }
        this.regionSelect = value;
        return;
      case CP_REGION_BASE_LO: this.stagedBase = (this.stagedBase & ~0xffff_ffffn) | BigInt(value); return;
      case CP_REGION_BASE_HI: this.stagedBase = (this.stagedBase & 0xffff_ffffn) | (BigInt(value) << 32n); return;
      case CP_REGION_LENGTH: this.stagedLength = value; return;
      case CP_REGION_ACCESS: return this.writeRegionAccess(value);
      case CP_WINDOW_SELECT:
        if (value >= CP_WINDOW_SLOTS) { this.guestError(`WINDOW_SELECT ${value} (slots 0..${CP_WINDOW_SLOTS - 1})`, 4); return; }
        this.windowSelect = value;
        return;
      case CP_WINDOW_DESTINATION: this.windows[this.windowSelect]!.destination = value & 0xffff; return;
      case CP_WINDOW_KEY: this.windows[this.windowSelect]!.key = value; return;
      default: this.guestError(`write of ${hex(value)} to unknown or read-only register ${hex(offset)}`, 4);
    }
  }

  private status(): number {
    return (this.links[0]!.up ? CP_STATUS_LINK0_UP : 0) | (this.links[1]!.up ? CP_STATUS_LINK1_UP : 0) |
      (this.activeLink === 1 ? CP_STATUS_ACTIVE_LINK1 : 0) | (this.cqOverflow ? CP_STATUS_CQ_OVERFLOW : 0) | (this.enabled ? CP_STATUS_ENABLED : 0);
  }

  private writeCtrl(value: number): void {
    if ((value & CP_CTRL_RESET) !== 0) {
      this.resetPort();
      return;
    }
    const enable = (value & CP_CTRL_ENABLE) !== 0;
    if (enable && !this.enabled) {
      if (this.sq.size === 0 || this.rq.size === 0 || this.cq.size === 0) {
        this.guestError("enable before every ring has a size", 4);
        return;
      }
      this.completionCount = 0;
    }
    this.enabled = enable;
  }

  private writeRingSetup(ring: Ring, field: number, value: number, name: string): void {
    if (this.enabled) {
      this.guestError(`${name} setup written while enabled`, 4);
      return;
    }
    if (field === 0) ring.base = (ring.base & ~0xffff_ffffn) | BigInt(value);
    else if (field === 4) ring.base = (ring.base & 0xffff_ffffn) | (BigInt(value) << 32n);
    else {
      if (value < CP_QUEUE_ENTRIES_MIN || value > CP_QUEUE_ENTRIES_MAX || (value & (value - 1)) !== 0) {
        this.guestError(`${name}_SIZE ${value}: a power of two, ${CP_QUEUE_ENTRIES_MIN}..${CP_QUEUE_ENTRIES_MAX}`, 4);
        return;
      }
      ring.size = value;
      ring.head = 0;
      ring.tail = 0;
    }
  }

  private writeIndex(ring: Ring, which: "head" | "tail", value: number, name: string): void {
    if (ring.size === 0 || value >= ring.size) {
      this.guestError(`${name} ${value} outside the ring of ${ring.size}`, 4);
      return;
    }
    ring[which] = value;
  }

  private writeSqTail(value: number): void {
    if (!this.enabled) {
      this.guestError("SQ_TAIL written while not enabled", 4);
      return;
    }
    this.writeIndex(this.sq, "tail", value, "SQ_TAIL");
    if (this.doorbell === undefined && this.sq.head !== this.sq.tail) {
      this.doorbell = this.clock.after(DOORBELL_NS, () => {
        this.doorbell = undefined;
        this.drainSendQueue();
      });
    }
  }

  private writeRegionAccess(value: number): void {
    const region = this.regions[this.regionSelect]!;
    if (value === 0) {
      Object.assign(region, { base: 0n, lengthBytes: 0, access: 0, key: 0 }); // revoked: its key faults from now on
      return;
    }
    const known = CP_ACCESS_REMOTE_READ | CP_ACCESS_REMOTE_WRITE;
    if ((value & ~known) !== 0 || this.stagedLength === 0 || this.stagedLength > CP_REGION_LENGTH_MAX) {
      this.guestError(`REGION_ACCESS ${hex(value)} with length ${this.stagedLength}: refused`, 4);
      return;
    }
    const generation = this.keyGenerationNext;
    this.keyGenerationNext = this.keyGenerationNext + 1 >= KEY_GENERATION_LIMIT ? 1 : this.keyGenerationNext + 1;
    const key = ((generation << 8) | this.regionSelect) >>> 0;
    Object.assign(region, { base: this.stagedBase, lengthBytes: this.stagedLength, access: value, key });
    this.everIssued.add(key);
  }

  protected override barRegion(bar: number): BusRegion | undefined {
    return bar === CLUSTER_PORT_BAR_WINDOW ? this.windowRegion : undefined;
  }

  // --- The window: a slot's bytes are the peer's region, reached at once (an RDMA the controller's DMA drives) ---

  // The slot `offset` falls in and the offset within it; throws WindowFault when closed, or across a slot's end.
  private windowSlot(offset: number, lengthBytes: number): { destination: number; key: number; within: number } {
    const slot = Math.floor(offset / CP_WINDOW_SLOT_BYTES);
    const within = offset - slot * CP_WINDOW_SLOT_BYTES;
    const w = this.windows[slot];
    if (!this.fabric.windowReaches) throw new WindowFault("the fabric is carried by a network: the window reaches nothing (revision 2)");
    if (w === undefined || w.key === 0 || !this.enabled) throw new WindowFault(`window slot ${slot} is closed`);
    if (within + lengthBytes > CP_WINDOW_SLOT_BYTES) throw new WindowFault(`window access crosses slot ${slot}'s end`);
    if (!this.links.some((l) => l.up)) throw new WindowFault("no link up");
    return { destination: w.destination, key: w.key, within };
  }

  private windowRead(offset: number, into: Uint8Array): void {
    const { destination, key, within } = this.windowSlot(offset, into.length);
    const status = this.fabric.windowAccess(destination, (target) => (target as ClusterPort).remoteRead(key, BigInt(within), into));
    if (status !== FabricStatus.Ok) throw new WindowFault(`read through the window: ${FabricStatus[status] ?? status}`);
  }

  private windowWrite(offset: number, bytes: Uint8Array): void {
    const { destination, key, within } = this.windowSlot(offset, bytes.length);
    const status = this.fabric.windowAccess(destination, (target) => (target as ClusterPort).remoteWrite(key, BigInt(within), bytes));
    if (status !== FabricStatus.Ok) throw new WindowFault(`write through the window: ${FabricStatus[status] ?? status}`);
  }

  /** A peer's read of [offset, offset + into.length) of the region `key` names, checked whole first. */
  remoteRead(key: number, offset: bigint, into: Uint8Array): FabricStatus {
    if (!this.enabled) return FabricStatus.NotEnabled;
    const region = this.checkAccess(key, offset, into.length, CP_ACCESS_REMOTE_READ);
    if (typeof region === "number") return region;
    if (!this.dmaReadInto(region.base + offset, into).ok) return FabricStatus.RemoteFault;
    this.stats.reads += 1;
    this.stats.bytesOut += into.length;
    return FabricStatus.Ok;
  }

  /** A peer's write into the region `key` names at `offset`, checked whole first. */
  remoteWrite(key: number, offset: bigint, bytes: Uint8Array): FabricStatus {
    if (!this.enabled) return FabricStatus.NotEnabled;
    const region = this.checkAccess(key, offset, bytes.length, CP_ACCESS_REMOTE_WRITE);
    if (typeof region === "number") return region;
    if (!this.dmaWrite(region.base + offset, bytes).ok) return FabricStatus.RemoteFault;
    this.stats.writes += 1;
    this.stats.bytesIn += bytes.length;
    return FabricStatus.Ok;
  }

  // --- The initiator's side ---

  private drainSendQueue(): void {
    const entry = new Uint8Array(CP_WR_BYTES);
    for (let budget = this.sq.size; budget > 0 && this.enabled && this.sq.head !== this.sq.tail; budget--) {
      const at = this.sq.base + BigInt(this.sq.head * CP_WR_BYTES);
      this.sq.head = (this.sq.head + 1) % this.sq.size;
      const read = this.dmaReadInto(at, entry);
      if (!read.ok) {
        this.complete(FabricOpcode.Write, 0, FabricStatus.LocalFault, 0, 0);
        continue;
      }
      this.post(new DataView(entry.buffer));
    }
  }

  private post(wr: DataView): void {
    const opcode = wr.getUint8(CP_WR_OPCODE) as FabricOpcode;
    const destination = wr.getUint16(CP_WR_DESTINATION, true);
    const key = wr.getUint32(CP_WR_KEY, true);
    const localAddress = wr.getBigUint64(CP_WR_LOCAL_ADDRESS, true);
    const offset = wr.getBigUint64(CP_WR_REMOTE_OFFSET, true);
    const length = wr.getUint32(CP_WR_LENGTH, true);
    const tag = wr.getUint32(CP_WR_TAG, true);
    const fail = (status: FabricStatus): void => this.complete(opcode, tag, status, destination, 0);
    const moves = opcode === FabricOpcode.Write || opcode === FabricOpcode.Read || opcode === FabricOpcode.Send;
    if (!moves && opcode !== FabricOpcode.Interrupt) return fail(FabricStatus.BadRequest);
    if (moves && (length === 0 || length > FABRIC_TRANSFER_BYTES_MAX)) return fail(FabricStatus.BadRequest);
    if (opcode === FabricOpcode.Interrupt && offset >= BigInt(CLUSTER_PORT_TUNNEL_VECTORS)) return fail(FabricStatus.BadRequest);
    let bytes: Uint8Array | undefined;
    if (opcode === FabricOpcode.Write || opcode === FabricOpcode.Send) {
      const read = this.dmaRead(localAddress, length);
      if (!read.ok) return fail(FabricStatus.LocalFault);
      bytes = read.bytes.slice();
    }
    const link = this.chooseLink();
    if (link === undefined) return fail(FabricStatus.LinkDown);
    const id = this.idNext++;
    const sequence = this.sendSequence.get(destination) ?? SEQUENCE_START;
    this.sendSequence.set(destination, sequence + 1);
    const message: Message = { kind: "request", opcode, incarnation: this.incarnationBase + this.powerEpoch, sequence, id, key, offset, length: moves ? length : 0, bytes };
    const epoch = this.powerEpoch;
    const expire = (): void => {
      const o = this.outstanding.get(id);
      if (epoch !== this.powerEpoch || o === undefined) return;
      // A fabric that still hears the destination talking (answers to earlier requests, its own requests): this
      // answer is queued behind those on an ordered connection, not lost; waited for until the board falls silent.
      const heardNs = this.fabric.lastHeardNs?.(destination);
      if (heardNs !== undefined && heardNs + this.fabric.timeoutNs > this.clock.nowNs) {
        o.timer = this.clock.at(heardNs + this.fabric.timeoutNs, expire);
        return;
      }
      this.outstanding.delete(id);
      this.stats.timeouts += 1;
      this.complete(opcode, tag, FabricStatus.LinkDown, destination, 0);
    };
    const timer = this.clock.after(this.fabric.timeoutNs, expire);
    this.outstanding.set(id, { opcode, tag, destination, localAddress, length, timer });
    if (this.fabric.send(this, link, { source: this.fabricAddress, destination, body: message })) return;
    // Refused at once (a network fabric with no connection to the destination): LinkDown now, not after the timeout.
    // It never left, so its sequence number is the next one's: the peer sees no gap and fences no interrupt for it.
    this.sendSequence.set(destination, sequence);
    this.outstanding.delete(id);
    this.clock.cancel(timer);
    this.complete(opcode, tag, FabricStatus.LinkDown, destination, 0);
  }

  /** The fabric lost its way to `address` (tcp_fabric.ts: the connection closed): what is in flight there ends LinkDown. */
  peerLost(address: number): void {
    for (const [id, o] of this.outstanding) {
      if (o.destination !== address) continue;
      this.outstanding.delete(id);
      this.clock.cancel(o.timer);
      this.stats.lostWithPeer += 1;
      this.complete(o.opcode, o.tag, FabricStatus.LinkDown, address, 0);
    }
  }

  // The bond: the active link while it is up, else the other one (a failover); undefined when both are down.
  private chooseLink(): number | undefined {
    if (this.links[this.activeLink]!.up) return this.activeLink;
    const other = 1 - this.activeLink;
    if (!this.links[other]!.up) return undefined;
    this.activeLink = other;
    this.stats.failovers += 1;
    return other;
  }

  private onAnswer(source: number, message: Extract<Message, { kind: "answer" }>): void {
    const o = this.outstanding.get(message.id);
    if (o === undefined || o.destination !== source) return; // timed out, from before a reset, or forged: dropped
    this.outstanding.delete(message.id);
    this.clock.cancel(o.timer);
    let status = message.status;
    if (status === FabricStatus.Ok && o.opcode === FabricOpcode.Read) {
      const bytes = message.bytes;
      if (bytes === undefined || bytes.length !== o.length) status = FabricStatus.RemoteFault;
      else if (!this.dmaWrite(o.localAddress, bytes).ok) status = FabricStatus.LocalFault;
    }
    this.complete(o.opcode, o.tag, status, source, status === FabricStatus.Ok ? o.length : 0);
  }

  // --- The target's side ---

  /** The fabric delivers a packet addressed to this port. */
  receive(packet: FabricPacket): void {
    const message = packet.body as Message;
    if (message.kind === "answer") return this.onAnswer(packet.source, message);
    let peer = this.receivedSequence.get(packet.source);
    if (peer === undefined || peer.incarnation !== message.incarnation) {
      // A peer seen for the first time, or reset since: its sequence starts again.
      peer = { incarnation: message.incarnation, last: SEQUENCE_START - 1, gap: false };
      this.receivedSequence.set(packet.source, peer);
    }
    if (message.sequence <= peer.last) {
      this.stats.duplicates += 1; // a duplicate: it was applied once already
      return;
    }
    if (message.sequence !== peer.last + 1) peer.gap = true;
    peer.last = message.sequence;
    const answer = (status: FabricStatus, bytes?: Uint8Array): void => {
      const link = this.chooseLink();
      if (link === undefined) return; // the initiator times out
      this.fabric.send(this, link, { source: this.fabricAddress, destination: packet.source, body: { kind: "answer", id: message.id, status, bytes } satisfies Message });
    };
    if (!this.enabled) return answer(FabricStatus.NotEnabled);
    switch (message.opcode) {
      case FabricOpcode.Write: return answer(this.applyWrite(message));
      case FabricOpcode.Read: return this.applyRead(message, answer);
      case FabricOpcode.Send: return answer(this.applySend(packet.source, message));
      case FabricOpcode.Interrupt: return answer(this.applyInterrupt(peer, message));
      default:
        this.stats.badRequests += 1;
        return answer(FabricStatus.BadRequest);
    }
  }

  // The region `key` names, when [offset, offset + length) lies in it and it allows `access`; else the fault, counted.
  private checkAccess(key: number, offset: bigint, length: number, access: number): Region | FabricStatus {
    const region = this.regions[key & 0xff];
    if (region === undefined || region.key === 0 || region.key !== key) {
      this.stats.keyFaults += 1;
      if (this.everIssued.has(key)) this.stats.revokedKeyFaults += 1;
      return FabricStatus.KeyFault;
    }
    if (length === 0 || length > FABRIC_TRANSFER_BYTES_MAX || offset + BigInt(length) > BigInt(region.lengthBytes)) {
      this.stats.rangeFaults += 1;
      return FabricStatus.RangeFault;
    }
    if ((region.access & access) === 0) {
      this.stats.accessFaults += 1;
      return FabricStatus.AccessFault;
    }
    return region;
  }

  private applyWrite(message: Extract<Message, { kind: "request" }>): FabricStatus {
    const bytes = message.bytes;
    if (bytes === undefined || bytes.length !== message.length) {
      this.stats.badRequests += 1;
      return FabricStatus.BadRequest;
    }
    const region = this.checkAccess(message.key, message.offset, message.length, CP_ACCESS_REMOTE_WRITE);
    if (typeof region === "number") return region;
    if (!this.dmaWrite(region.base + message.offset, bytes).ok) return FabricStatus.RemoteFault;
    this.stats.writes += 1;
    this.stats.bytesIn += bytes.length;
    return FabricStatus.Ok;
  }

  private applyRead(message: Extract<Message, { kind: "request" }>, answer: (status: FabricStatus, bytes?: Uint8Array) => void): void {
    const region = this.checkAccess(message.key, message.offset, message.length, CP_ACCESS_REMOTE_READ);
    if (typeof region === "number") return answer(region);
    const read = this.dmaRead(region.base + message.offset, message.length);
    if (!read.ok) return answer(FabricStatus.RemoteFault);
    this.stats.reads += 1;
    this.stats.bytesOut += message.length;
    answer(FabricStatus.Ok, read.bytes.slice());
  }

  private applySend(source: number, message: Extract<Message, { kind: "request" }>): FabricStatus {
    const bytes = message.bytes;
    if (bytes === undefined || bytes.length !== message.length || bytes.length === 0) {
      this.stats.badRequests += 1;
      return FabricStatus.BadRequest;
    }
    if (this.rq.head === this.rq.tail) return FabricStatus.ReceiverNotReady;
    const entry = new Uint8Array(CP_RQE_BYTES);
    if (!this.dmaReadInto(this.rq.base + BigInt(this.rq.head * CP_RQE_BYTES), entry).ok) return FabricStatus.RemoteFault;
    const view = new DataView(entry.buffer);
    const address = view.getBigUint64(CP_RQE_ADDRESS, true);
    const capacity = view.getUint32(CP_RQE_LENGTH, true);
    const tag = view.getUint32(CP_RQE_TAG, true);
    if (bytes.length > capacity) return FabricStatus.ReceiveLength; // the buffer stays posted for the next SEND
    this.rq.head = (this.rq.head + 1) % this.rq.size;
    if (!this.dmaWrite(address, bytes).ok) {
      this.complete(FabricOpcode.Receive, tag, FabricStatus.LocalFault, source, 0);
      return FabricStatus.RemoteFault;
    }
    this.stats.sends += 1;
    this.stats.bytesIn += bytes.length;
    this.complete(FabricOpcode.Receive, tag, FabricStatus.Ok, source, bytes.length);
    return FabricStatus.Ok;
  }

  private applyInterrupt(peer: { gap: boolean }, message: Extract<Message, { kind: "request" }>): FabricStatus {
    if (message.offset >= BigInt(CLUSTER_PORT_TUNNEL_VECTORS)) {
      this.stats.badRequests += 1;
      return FabricStatus.BadRequest;
    }
    if (peer.gap) {
      peer.gap = false; // the next interrupt covers only what follows this one
      this.stats.fenced += 1;
      return FabricStatus.Fenced;
    }
    this.stats.interrupts += 1;
    this.signal(CLUSTER_PORT_VECTOR_TUNNEL_BASE + Number(message.offset));
    return FabricStatus.Ok;
  }

  // --- Completions ---

  // Writes a completion entry and signals vector 0; a full ring drops it and sets CQ_OVERFLOW.
  private complete(opcode: FabricOpcode, tag: number, status: FabricStatus, peer: number, length: number): void {
    if (!this.enabled || this.cq.size === 0) return;
    if ((this.cq.tail + 1) % this.cq.size === this.cq.head) {
      this.cqOverflow = true;
      this.stats.cqOverflows += 1;
      return;
    }
    this.completionCount = (this.completionCount + 1) >>> 0;
    const entry = new Uint8Array(CP_CQE_BYTES);
    const view = new DataView(entry.buffer);
    view.setUint32(CP_CQE_TAG, tag, true);
    view.setUint8(CP_CQE_STATUS, status);
    view.setUint8(CP_CQE_OPCODE, opcode);
    view.setUint16(CP_CQE_PEER, peer, true);
    view.setUint32(CP_CQE_LENGTH, length, true);
    view.setUint32(CP_CQE_COUNT, this.completionCount, true);
    if (!this.dmaWrite(this.cq.base + BigInt(this.cq.tail * CP_CQE_BYTES), entry).ok) {
      this.guestError(`completion ring at ${hex(this.cq.base)} is not memory`, 4);
      return;
    }
    this.cq.tail = (this.cq.tail + 1) % this.cq.size;
    this.signal(CLUSTER_PORT_VECTOR_COMPLETION);
  }
}
