// The fabric task: the driver of the cluster port (docs/hardware.md, "cluster-port") on the host processor of a board
// in a cluster (docs/cluster.md, "Proxy I/O"). It owns the port's three rings, carved at boot: frames the agents'
// FabricLinks hand it (FabricFrameOut) leave as SENDs to the board the link names; SENDs that arrive are checked and
// posted as Frame messages to this board's RTA (requests) or CTA (replies), the sender named as processor
// REMOTE_PROCESSOR_BASE + its board index, so the agents see a peer as they see a processor behind a messaging unit.
//
// At start it registers this board's data buffers (every buffer pool) as one region and sends each other board of the
// routing table a hello with that region's key, base and length; a hello from board b opens window slot b onto b's
// region, and b's link becomes ready (its requests' data is reached through the slot). A hello is sent again until
// the peer's port took it; one that asks for an answer (a board that just started) gets this board's.
//
// Nothing a peer sends is trusted: a receive of another length than a frame or a hello, from an address not in the
// table or from this board, a frame that fails frameValidate, a request not for an RTA or from a CTA, a reply not for
// a CTA or from an RTA, a hello without a key or region, or for a board past the window's slots, is counted
// (badReceiveCount) and dropped; the receive buffer is posted again. A completion whose tag this task did not give is
// counted and ignored. A frame that finds the send ring full is dropped (counted): the CTA retransmits.
//
// Remote completions come by tunneled interrupt (docs/cluster.md, "Tunneled completions"): after SENDing a reply frame
// to board b, this task raises b's tunneled vector (this board's index mod 8) with an INTERRUPT, which b's port raises
// through b's own MSI-X only after everything this board sent before it was applied (the reply and its data), and not at
// all when something before it was lost (Fenced). On b, a reply frame that arrives is held, not handed to the CTA, until
// that vector fires: the CTA sees a remote completion only once its data is visible. An INTERRUPT that completes other
// than Ok is sent once more; a reply held FABRIC_TUNNEL_WAIT_NS without one is dropped (counted), and the CTA's
// retransmission gets the RTA's kept answer again. A duplicated interrupt is dropped by the port (sequence numbers),
// and would release nothing more anyway.
import { bootInfoMsiAddress } from "../board/boot_info";
import { busRead32, busWrite32 } from "../board/bus";
import {
  AgentKind, FRAME_BYTES, agentAddress, agentKind, frameFunction, FrameFunction, frameIsReply, frameSource, frameTarget,
  frameValidate, FrameStatus,
} from "../board/frame";
import { msixEnable, PciFunctionInfo, pciFunctionAt, pciFunctionCount } from "../board/pci";
import { CLUSTER_NONE, routingTable } from "../cluster/routing_table";
import { SYNC_MAGIC, SYNC_MESSAGE_BYTES, SyncSender, syncMagic, TableSync } from "../cluster/table_sync";
import { buffersEnd, buffersFloor } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { line } from "../kernel/console";
import { Msg, MsgKind } from "../kernel/msg";
import { POOL_NONE } from "../kernel/pool";
import { irqRoute, post, taskAdd, timerStartParked, timerWakeBy } from "../kernel/scheduler";
import { clockNowNs } from "../board/wasi";
import { RunResult, Task } from "../kernel/task";
import { vectorAllocate, VECTOR_NONE } from "../kernel/vectors";
import { FabricLink } from "../rta/fabric_link";
import { frames } from "../rta/links";
import {
  CP_CQE_BYTES, CP_RQE_BYTES, CP_WR_BYTES, cpCqeLength, cpCqeOpcode, cpCqePeer, cpCqeStatus, cpCqeTag, cpRqeSetAddress,
  cpRqeSetLength, cpRqeSetTag, cpWrSetDestination, cpWrSetKey, cpWrSetLength, cpWrSetLocalAddress, cpWrSetOpcode,
  cpWrSetRemoteOffset, cpWrSetTag,
} from "./entries";
import {
  FABRIC_BATCH_MAX, FABRIC_CQ_ENTRIES, FABRIC_HELD_MAX, FABRIC_TUNNEL_WAIT_NS, FABRIC_HELLO_RETRY_NS,
  FABRIC_INBOX_DEPTH, FABRIC_PRIORITY, FABRIC_RECEIVE_BYTES, FABRIC_RQ_ENTRIES, FABRIC_SQ_ENTRIES,
  REMOTE_PROCESSOR_BASE,
} from "./limits";
import {
  FABRIC_HELLO_ANSWER, FABRIC_HELLO_BYTES, FABRIC_HELLO_MAGIC, helloFlags, helloKey, helloMagic, helloRegionBase, helloRegionLength, helloSet,
  helloSetTableVersion, helloTableVersion,
} from "./hello";
import {
  CLUSTER_PORT_BAR_REGISTERS, CLUSTER_PORT_BAR_WINDOW, CLUSTER_PORT_DEVICE_ID, CLUSTER_PORT_REVISION_RDMA, CLUSTER_PORT_TUNNEL_VECTORS,
  CLUSTER_PORT_VECTOR_COUNT, CLUSTER_PORT_VECTOR_TUNNEL_BASE,
  CLUSTER_PORT_VENDOR_ID, CP_ACCESS_REMOTE_READ, CP_ACCESS_REMOTE_WRITE, CP_CQ_BASE_HI, CP_CQ_BASE_LO, CP_CQ_HEAD,
  CP_CQ_SIZE, CP_CQ_TAIL, CP_CTRL, CP_CTRL_ENABLE, CP_CTRL_RESET, CP_REGION_ACCESS, CP_REGION_BASE_HI, CP_REGION_BASE_LO,
  CP_REGION_KEY, CP_REGION_LENGTH, CP_REGION_SELECT, CP_RQ_BASE_HI, CP_RQ_BASE_LO, CP_RQ_SIZE, CP_RQ_TAIL, CP_SQ_BASE_HI,
  CP_SQ_BASE_LO, CP_SQ_SIZE, CP_SQ_TAIL, CP_WINDOW_DESTINATION, CP_WINDOW_KEY, CP_WINDOW_SELECT, CP_WINDOW_SLOT_BYTES,
  CP_WINDOW_SLOTS, FabricOpcode, FabricStatus as PortStatus,
} from "./registers";

// A work request's tag: what it carries, and which frame slot or board.
const TAG_FRAME: u32 = 1 << 16; // | frame pool slot: released at its completion
const TAG_HELLO: u32 = 2 << 16; // | board index
const TAG_RDMA: u32 = 3 << 16; // | RDMA slot: an RDMA for the RTA (port revision 2)
const TAG_INTERRUPT: u32 = 4 << 16; // | board index; TAG_RETRIED once sent again
const TAG_RETRIED: u32 = 1 << 15;
const TAG_KIND_MASK: u32 = 0xffff_0000;
const TAG_INDEX_MASK: u32 = 0xffff;
const ALL_ONES: u32 = 0xffff_ffff;
const EMPTY_U8 = new StaticArray<u8>(0);
const EMPTY_U32 = new StaticArray<u32>(0);
const EMPTY_U64 = new StaticArray<u64>(0);
const RDMA_REDELIVER_NS: u64 = 100_000; // a finished RDMA the RTA's inbox could not take is handed over again after this

export class FabricTask extends Task {
  badReceiveCount: u64 = 0; // receives dropped: not a frame or hello this board can take (see the file's head)
  badCompletionCount: u64 = 0; // completions with a tag this task never gave
  sendFailedCount: u64 = 0; // frames the port could not deliver (the CTA retransmits)
  droppedCount: u64 = 0; // frames dropped because the send ring was full
  framesIn: u64 = 0;
  framesOut: u64 = 0;
  windowSlotsFull: u64 = 0; // hellos from more peers than the window has slots: those boards cannot be served
  interruptsSent: u64 = 0; // tunneled interrupts after replies
  interruptsFailed: u64 = 0; // completed other than Ok (Fenced, LinkDown), after the one retry
  repliesReleased: u64 = 0; // replies handed to the CTA by a tunneled interrupt
  repliesExpired: u64 = 0; // replies held FABRIC_TUNNEL_WAIT_NS with no tunneled interrupt: dropped
  repliesHeldFull: u64 = 0; // replies dropped because FABRIC_HELD_MAX were held already
  rdmaPosted: u64 = 0; // RDMAs for the RTA (a port without a window)
  rdmaFailed: u64 = 0; // of those, completed with another status than Ok, or refused before posting
  /** The port reaches peers' memory only by RDMA work requests (revision 2): no window slots, the RTA bounces. */
  rdmaOnly: bool = false;
  readonly links: StaticArray<FabricLink | null>;
  private registers: u64 = 0;
  private window: u64 = 0;
  private readonly sq: usize;
  private readonly rq: usize;
  private readonly cq: usize;
  private readonly receiveBuffers: usize;
  private readonly hello: usize;
  private readonly helloAnswer: usize;
  private sqTail: u32 = 0;
  private sqInFlight: u32 = 0;
  private rqTail: u32 = 0;
  private cqHead: u32 = 0;
  private regionKey: u32 = 0;
  private readonly helloTaken: StaticArray<bool>;
  private readonly helloInFlight: StaticArray<u32>;
  private readonly framesHeld: StaticArray<bool>; // frame pool slots this task holds for a SEND in flight
  private readonly windowSlotOf: StaticArray<u32>; // per board: its window slot, CP_WINDOW_SLOTS while none
  private windowSlotsUsed: u32 = 0;
  private vectorBase: u32 = 0; // the port's vector 0 (completions); 1 + v: tunneled vector v
  // Replies received and not yet released by a tunneled interrupt: frame pool slot, sender board, arrival time.
  private readonly heldSlot: StaticArray<u32> = new StaticArray<u32>(FABRIC_HELD_MAX);
  private readonly heldBoard: StaticArray<u32> = new StaticArray<u32>(FABRIC_HELD_MAX);
  private readonly heldNs: StaticArray<u64> = new StaticArray<u64>(FABRIC_HELD_MAX);
  private heldCount: u32 = 0;
  // Revision 2: each peer's registered buffers (from its hello), for the RDMAs the RTA asks for.
  // Made by useRdma at boot, only then: a board with a window allocates nothing for them.
  private peerKey: StaticArray<u32> = EMPTY_U32;
  private peerFloor: StaticArray<u64> = EMPTY_U64;
  private peerLength: StaticArray<u64> = EMPTY_U64;
  // RDMAs in flight by slot (the tag's index): the RTA's cookie, and completions not yet handed to the RTA.
  private rdmaCookie: StaticArray<u64> = EMPTY_U64;
  private rdmaState: StaticArray<u8> = EMPTY_U8; // 0 free, 1 posted, 2 done
  private rdmaStatus: StaticArray<u8> = EMPTY_U8;
  private rdmaUndelivered: u32 = 0;
  private readonly out: Msg = new Msg();
  private timer: u32 = 0;
  started: bool = false;
  /** Routing-table changes at run time (cluster/table_sync.ts): its messages go out and come in through this task. */
  readonly sync: TableSync = new TableSync(new FabricSyncSender(this));

  constructor(private readonly ctaTask: u32, private readonly rtaTask: u32) {
    super("fabric", FABRIC_PRIORITY, FABRIC_INBOX_DEPTH, 1_000_000);
    this.sq = carve(FABRIC_SQ_ENTRIES * CP_WR_BYTES, 64);
    this.rq = carve(FABRIC_RQ_ENTRIES * CP_RQE_BYTES, 64);
    this.cq = carve(FABRIC_CQ_ENTRIES * CP_CQE_BYTES, 64);
    this.receiveBuffers = carve(FABRIC_RQ_ENTRIES * FABRIC_RECEIVE_BYTES, 64);
    this.hello = carve(FABRIC_HELLO_BYTES, 64);
    this.helloAnswer = carve(FABRIC_HELLO_BYTES, 64);
    this.links = new StaticArray<FabricLink | null>(routingTable().boardCount);
    this.helloTaken = new StaticArray<bool>(routingTable().boardCount);
    this.helloInFlight = new StaticArray<u32>(routingTable().boardCount);
    this.framesHeld = new StaticArray<bool>(frames().capacity);
    this.windowSlotOf = new StaticArray<u32>(routingTable().boardCount);
    for (let b: i32 = 0; b < this.windowSlotOf.length; b++) unchecked(this.windowSlotOf[b] = CP_WINDOW_SLOTS);
  }

  /** Boot, for a port of revision 2 (no window): peers' memory is reached by RDMA for the RTA (rta/bounce.ts). */
  useRdma(): void {
    this.rdmaOnly = true;
    this.peerKey = new StaticArray<u32>(routingTable().boardCount);
    this.peerFloor = new StaticArray<u64>(routingTable().boardCount);
    this.peerLength = new StaticArray<u64>(routingTable().boardCount);
    this.rdmaCookie = new StaticArray<u64>(FABRIC_SQ_ENTRIES);
    this.rdmaState = new StaticArray<u8>(FABRIC_SQ_ENTRIES);
    this.rdmaStatus = new StaticArray<u8>(FABRIC_SQ_ENTRIES);
  }

  /** Boot: the port's BARs and its first vector. */
  attach(registers: u64, window: u64, vectorBase: u32): void {
    this.registers = registers;
    this.window = window;
    this.vectorBase = vectorBase;
  }

  /** After the seal: rings, region, receive buffers, enable, hellos; the retry timer. */
  start(): void {
    const r = this.registers;
    busWrite32(r + CP_CTRL, CP_CTRL_RESET);
    this.ringSetup(CP_SQ_BASE_LO, CP_SQ_BASE_HI, CP_SQ_SIZE, this.sq, FABRIC_SQ_ENTRIES);
    this.ringSetup(CP_RQ_BASE_LO, CP_RQ_BASE_HI, CP_RQ_SIZE, this.rq, FABRIC_RQ_ENTRIES);
    this.ringSetup(CP_CQ_BASE_LO, CP_CQ_BASE_HI, CP_CQ_SIZE, this.cq, FABRIC_CQ_ENTRIES);
    this.registerBuffers();
    busWrite32(r + CP_CTRL, CP_CTRL_ENABLE);
    for (let i: u32 = 0; i < FABRIC_RQ_ENTRIES - 1; i++) this.postReceive(i); // one short of full: head == tail is empty
    this.started = true;
    this.sync.start(); // partitioned volumes wait for the other boards' hellos (their table versions)
    this.timer = timerStartParked(this.index, 0);
    this.sendHellos();
    this.syncWake();
  }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < FABRIC_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      this.dispatch(this.scratch);
    }
    if (this.rdmaUndelivered > 0) this.deliverRdma();
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  private dispatch(msg: Msg): void {
    switch (<i32>msg.kind) {
      case MsgKind.FabricFrameOut: this.onFrameOut(msg.a, msg.b); break;
      case MsgKind.FabricRdma: this.onRdma(msg); break;
      case MsgKind.Irq: {
        this.drainCompletions();
        if (msg.a > this.vectorBase) this.releaseHeld(msg.a - this.vectorBase - CLUSTER_PORT_VECTOR_TUNNEL_BASE);
        break;
      }
      case MsgKind.Timer: {
        this.drainCompletions();
        this.expireHeld();
        this.sendHellos();
        if (this.sync.wakeNs <= clockNowNs()) this.sync.tick();
        this.syncWake();
        break;
      }
      default: assert(false, "fabric: unexpected message kind");
    }
  }

  // ---- Setup ----

  private ringSetup(lo: u64, hi: u64, size: u64, base: usize, entries: u32): void {
    busWrite32(this.registers + lo, <u32>base);
    busWrite32(this.registers + hi, 0);
    busWrite32(this.registers + size, entries);
  }

  // The data buffers (every class's slots, which lie together, apart from the pools' bookkeeping: kernel/buffers.ts),
  // as one region peers may read and write: where the requests' data lies.
  private registerBuffers(): void {
    const floor = <u64>buffersFloor();
    const end = <u64>buffersEnd();
    assert(end > floor, "fabric: no buffers to register");
    const r = this.registers;
    busWrite32(r + CP_REGION_SELECT, 0);
    busWrite32(r + CP_REGION_BASE_LO, <u32>floor);
    busWrite32(r + CP_REGION_BASE_HI, <u32>(floor >> 32));
    busWrite32(r + CP_REGION_LENGTH, <u32>(end - floor));
    busWrite32(r + CP_REGION_ACCESS, CP_ACCESS_REMOTE_READ | CP_ACCESS_REMOTE_WRITE);
    this.regionKey = busRead32(r + CP_REGION_KEY);
    helloSet(this.hello, FABRIC_HELLO_ANSWER, this.regionKey, floor, end - floor);
    helloSet(this.helloAnswer, 0, this.regionKey, floor, end - floor);
    line().s("fabric: port at address ").u32(routingTable().boardIds[routingTable().thisBoard]).s(", buffers registered (")
      .u64((end - floor) >> 10).s(" KiB, key ").hex(this.regionKey).s(")").out();
  }

  private postReceive(index: u32): void {
    const entry = this.rq + <usize>this.rqTail * CP_RQE_BYTES;
    cpRqeSetAddress(entry, <u64>(this.receiveBuffers + <usize>index * FABRIC_RECEIVE_BYTES));
    cpRqeSetLength(entry, FABRIC_RECEIVE_BYTES);
    cpRqeSetTag(entry, index);
    this.rqTail = (this.rqTail + 1) % FABRIC_RQ_ENTRIES;
    busWrite32(this.registers + CP_RQ_TAIL, this.rqTail);
  }

  // ---- Sending ----

  // A hello to every board that has not taken one; the timer wakes again while some have not (parked once all have:
  // an idle cluster never wakes the processor).
  private sendHellos(): void {
    const table = routingTable();
    let waiting = false;
    for (let b: u32 = 0; b < table.boardCount; b++) {
      if (b == table.thisBoard || unchecked(this.helloTaken[b])) continue;
      waiting = true;
      if (unchecked(this.helloInFlight[b]) > 0) continue;
      helloSetTableVersion(this.hello, table.version); // the version as it stands when the hello goes
      if (this.postSend(b, <u64>this.hello, FABRIC_HELLO_BYTES, TAG_HELLO | b)) unchecked(this.helloInFlight[b] += 1);
    }
    if (waiting) timerWakeBy(this.timer, clockNowNs() + FABRIC_HELLO_RETRY_NS);
  }

  private onFrameOut(slot: u32, board: u32): void {
    const table = routingTable();
    if (board >= table.boardCount || board == table.thisBoard || !this.started) {
      frames().release(slot); // a link is made only for another board of the table: a bug if not
      assert(this.started || board < table.boardCount, "fabric: frame for a board not in the table");
      this.droppedCount += 1;
      return;
    }
    const reply = frameIsReply(frames().address(slot));
    if (!this.postSend(board, <u64>frames().address(slot), FRAME_BYTES, TAG_FRAME | slot)) {
      frames().release(slot);
      this.droppedCount += 1;
      return;
    }
    unchecked(this.framesHeld[slot] = true);
    this.framesOut += 1;
    // The requester takes the reply when this interrupt fires there: after the reply and its data.
    if (reply && this.postInterrupt(board, TAG_INTERRUPT | board)) this.interruptsSent += 1;
  }

  // An INTERRUPT of board `board`'s tunneled vector for this board; false when the send ring is full (the requester
  // then drops the reply after its wait, and the CTA's retransmission brings it again).
  private postInterrupt(board: u32, tag: u32): bool {
    return this.postRequest(<u8>FabricOpcode.Interrupt, board, 0, 0, <u64>(routingTable().thisBoard % CLUSTER_PORT_TUNNEL_VECTORS), 0, tag);
  }

  // ---- Held replies ----

  // A reply frame from `board`, copied into frame pool slot `slot`: held until `board`'s tunneled interrupt.
  private hold(slot: u32, board: u32): void {
    if (this.heldCount >= FABRIC_HELD_MAX) {
      frames().release(slot);
      this.repliesHeldFull += 1;
      return;
    }
    const i = this.heldCount;
    unchecked(this.heldSlot[i] = slot);
    unchecked(this.heldBoard[i] = board);
    unchecked(this.heldNs[i] = clockNowNs());
    this.heldCount += 1;
    timerWakeBy(this.timer, clockNowNs() + FABRIC_TUNNEL_WAIT_NS);
  }

  // Tunneled vector `vector` fired: every reply held from a board that raises it was applied before it (the port
  // raises it after everything that board sent before): to the CTA, in arrival order.
  private releaseHeld(vector: u32): void {
    if (vector >= CLUSTER_PORT_TUNNEL_VECTORS) return;
    let kept: u32 = 0;
    for (let i: u32 = 0; i < this.heldCount; i++) {
      const slot = unchecked(this.heldSlot[i]);
      const board = unchecked(this.heldBoard[i]);
      if (board % CLUSTER_PORT_TUNNEL_VECTORS == vector) {
        if (post(this.ctaTask, this.out.set(MsgKind.Frame, this.index, slot, 0))) {
          this.repliesReleased += 1;
          this.framesIn += 1;
        } else {
          frames().release(slot);
          this.droppedCount += 1;
        }
        continue;
      }
      this.keep(i, kept);
      kept += 1;
    }
    this.heldCount = kept;
  }

  // Replies held FABRIC_TUNNEL_WAIT_NS without their interrupt (it was lost, or fenced: something before it was
  // lost): dropped; the CTA retransmits. The timer wakes again while replies are held.
  private expireHeld(): void {
    const now = clockNowNs();
    let kept: u32 = 0;
    let next: u64 = u64.MAX_VALUE;
    for (let i: u32 = 0; i < this.heldCount; i++) {
      const due = unchecked(this.heldNs[i]) + FABRIC_TUNNEL_WAIT_NS;
      if (due <= now) {
        frames().release(unchecked(this.heldSlot[i]));
        this.repliesExpired += 1;
        continue;
      }
      if (due < next) next = due;
      this.keep(i, kept);
      kept += 1;
    }
    this.heldCount = kept;
    if (kept > 0) timerWakeBy(this.timer, next);
  }

  private keep(from: u32, to: u32): void {
    if (from == to) return;
    unchecked(this.heldSlot[to] = this.heldSlot[from]);
    unchecked(this.heldBoard[to] = this.heldBoard[from]);
    unchecked(this.heldNs[to] = this.heldNs[from]);
  }

  // A SEND of [address, address + lengthBytes) to board `board`; false when the send ring is full.
  private postSend(board: u32, address: u64, lengthBytes: u32, tag: u32): bool {
    return this.postRequest(<u8>FabricOpcode.Send, board, 0, address, 0, lengthBytes, tag);
  }

  // A work request to board `board`; false when the send ring is full.
  private postRequest(opcode: u8, board: u32, key: u32, address: u64, remoteOffset: u64, lengthBytes: u32, tag: u32): bool {
    if (this.sqInFlight >= FABRIC_SQ_ENTRIES - 1) return false;
    const wr = this.sq + <usize>this.sqTail * CP_WR_BYTES;
    memory.fill(wr, 0, CP_WR_BYTES);
    cpWrSetOpcode(wr, opcode);
    cpWrSetDestination(wr, <u16>routingTable().boardIds[board]);
    cpWrSetKey(wr, key);
    cpWrSetLocalAddress(wr, address);
    cpWrSetRemoteOffset(wr, remoteOffset);
    cpWrSetLength(wr, lengthBytes);
    cpWrSetTag(wr, tag);
    this.sqTail = (this.sqTail + 1) % FABRIC_SQ_ENTRIES;
    this.sqInFlight += 1;
    busWrite32(this.registers + CP_SQ_TAIL, this.sqTail);
    return true;
  }

  // ---- Completions ----

  private drainCompletions(): void {
    const tail = busRead32(this.registers + CP_CQ_TAIL);
    if (tail == ALL_ONES || tail >= FABRIC_CQ_ENTRIES) return; // the port is gone or lies: nothing to read
    for (let n: u32 = 0; n < FABRIC_CQ_ENTRIES && this.cqHead != tail; n++) {
      const cqe = this.cq + <usize>this.cqHead * CP_CQE_BYTES;
      if (<u32>cpCqeOpcode(cqe) == FabricOpcode.Receive) this.onReceive(cqe);
      else this.onSendDone(cqe);
      this.cqHead = (this.cqHead + 1) % FABRIC_CQ_ENTRIES;
    }
    busWrite32(this.registers + CP_CQ_HEAD, this.cqHead);
  }

  private onSendDone(cqe: usize): void {
    const tag = cpCqeTag(cqe);
    const kind = tag & TAG_KIND_MASK;
    const index = tag & TAG_INDEX_MASK;
    const ok = <u32>cpCqeStatus(cqe) == PortStatus.Ok;
    // Only what this task sent, once: a tag it did not give (or gave and saw completed) is a lie, ignored.
    if (kind == TAG_FRAME && index < <u32>this.framesHeld.length && unchecked(this.framesHeld[index])) {
      assert(this.sqInFlight > 0, "fabric: a frame held without a request in flight");
      unchecked(this.framesHeld[index] = false);
      frames().release(index);
      this.sqInFlight -= 1;
      if (!ok) this.sendFailedCount += 1;
    } else if (kind == TAG_HELLO && index < <u32>this.helloInFlight.length && unchecked(this.helloInFlight[index]) > 0) {
      assert(this.sqInFlight > 0, "fabric: a hello without a request in flight");
      unchecked(this.helloInFlight[index] -= 1);
      this.sqInFlight -= 1;
      if (ok) unchecked(this.helloTaken[index] = true);
    } else if (kind == TAG_RDMA && index < FABRIC_SQ_ENTRIES && unchecked(this.rdmaState[index]) == 1) {
      assert(this.sqInFlight > 0, "fabric: an RDMA without a request in flight");
      this.sqInFlight -= 1;
      if (!ok) this.rdmaFailed += 1;
      this.rdmaDone(index, <u8>cpCqeStatus(cqe));
    } else if (kind == TAG_INTERRUPT && <u32>cpCqeOpcode(cqe) == FabricOpcode.Interrupt && (index & ~TAG_RETRIED) < <u32>this.helloInFlight.length) {
      assert(this.sqInFlight > 0, "fabric: an interrupt without a request in flight");
      this.sqInFlight -= 1;
      if (ok) return;
      // Fenced (something sent before it was lost) or lost itself: once more, for what this board sends next; the
      // requester drops a reply whose interrupt never comes, and the CTA retransmits.
      const board = index & ~TAG_RETRIED;
      if ((index & TAG_RETRIED) == 0 && this.postInterrupt(board, TAG_INTERRUPT | TAG_RETRIED | board)) return;
      this.interruptsFailed += 1;
    } else this.badCompletionCount += 1;
  }

  // ---- Routing-table changes (cluster/table_sync.ts) ----

  /** A sync message to board `board`, as a frame-sized SEND; false when no frame slot or send room is free now. */
  sendSync(board: u32, message: usize): bool {
    if (!this.started) return false;
    const slot = frames().acquire();
    if (slot == POOL_NONE) return false;
    const f = frames().address(slot);
    memory.fill(f, 0, FRAME_BYTES);
    memory.copy(f, message, FRAME_BYTES); // a Chunk carries owners past the header
    const sent = this.droppedCount;
    this.onFrameOut(slot, board); // releases the slot when it cannot go
    return this.droppedCount == sent;
  }

  /** This board proposes a routing-table change (cluster/table_sync.ts, TableSync.propose). */
  proposeTable(slot: u32, first: u32, count: u32, fromOwner: u32, toOwner: u32): bool {
    const ok = this.started && this.sync.propose(slot, first, count, fromOwner, toOwner);
    this.syncWake();
    return ok;
  }

  private syncWake(): void {
    if (this.sync.wakeNs != u64.MAX_VALUE) timerWakeBy(this.timer, this.sync.wakeNs);
  }

  // ---- RDMA for the RTA (revision 2) ----

  // An RDMA between this board's buffer and board b's registered buffers: only inside the region b's hello named.
  private onRdma(msg: Msg): void {
    const board = msg.a & 0xffff;
    const opcode = msg.a >>> 16;
    const lengthBytes = msg.b;
    const remote = msg.d;
    let slot: u32 = 0;
    while (slot < FABRIC_SQ_ENTRIES && unchecked(this.rdmaState[slot]) != 0) slot++;
    assert(slot < FABRIC_SQ_ENTRIES, "fabric: more RDMAs than the send ring holds");
    unchecked(this.rdmaCookie[slot] = msg.e);
    unchecked(this.rdmaState[slot] = 1);
    const table = routingTable();
    const known = this.rdmaOnly && board < table.boardCount && board != table.thisBoard && unchecked(this.peerKey[board]) != 0;
    const floor = known ? unchecked(this.peerFloor[board]) : 0;
    const inside = known && lengthBytes != 0 && remote >= floor && remote - floor <= unchecked(this.peerLength[board])
      && <u64>lengthBytes <= unchecked(this.peerLength[board]) - (remote - floor);
    const kindOk = opcode == FabricOpcode.Read || opcode == FabricOpcode.Write;
    if (!inside || !kindOk || !this.postRequest(<u8>opcode, board, unchecked(this.peerKey[board]), <u64>msg.c, remote - floor, lengthBytes, TAG_RDMA | slot)) {
      this.rdmaFailed += 1;
      this.rdmaDone(slot, <u8>(inside && kindOk ? PortStatus.LinkDown : PortStatus.BadRequest));
      return;
    }
    this.rdmaPosted += 1;
  }

  private rdmaDone(slot: u32, status: u8): void {
    unchecked(this.rdmaState[slot] = 2);
    unchecked(this.rdmaStatus[slot] = status);
    this.rdmaUndelivered += 1;
  }

  // Hands finished RDMAs to the RTA; one its inbox cannot take waits for the next run (a timer brings it soon).
  private deliverRdma(): void {
    for (let slot: u32 = 0; slot < FABRIC_SQ_ENTRIES && this.rdmaUndelivered > 0; slot++) {
      if (unchecked(this.rdmaState[slot]) != 2) continue;
      this.out.set(MsgKind.FabricRdmaDone, this.index, <u32>unchecked(this.rdmaStatus[slot]), 0);
      this.out.e = unchecked(this.rdmaCookie[slot]);
      if (!post(this.rtaTask, this.out)) {
        timerWakeBy(this.timer, clockNowNs() + RDMA_REDELIVER_NS);
        return;
      }
      unchecked(this.rdmaState[slot] = 0);
      this.rdmaUndelivered -= 1;
    }
  }

  private onReceive(cqe: usize): void {
    const index = cpCqeTag(cqe);
    if (index >= FABRIC_RQ_ENTRIES - 1) {
      this.badCompletionCount += 1;
      return;
    }
    const buffer = this.receiveBuffers + <usize>index * FABRIC_RECEIVE_BYTES;
    if (<u32>cpCqeStatus(cqe) == PortStatus.Ok) this.onMessage(buffer, cpCqeLength(cqe), <u32>cpCqePeer(cqe));
    memory.fill(buffer, 0, FABRIC_RECEIVE_BYTES);
    this.postReceive(index);
  }

  private onMessage(buffer: usize, lengthBytes: u32, peer: u32): void {
    const table = routingTable();
    const board = table.boardIndexOfId(peer);
    if (board == CLUSTER_NONE || board == table.thisBoard) { this.badReceiveCount += 1; return; }
    if (lengthBytes == FABRIC_HELLO_BYTES && helloMagic(buffer) == FABRIC_HELLO_MAGIC) { this.onHello(buffer, board); return; }
    if (lengthBytes == FRAME_BYTES && syncMagic(buffer) == SYNC_MAGIC) {
      this.sync.onMessage(buffer, board);
      this.syncWake();
      return;
    }
    if (lengthBytes != FRAME_BYTES || frameValidate(buffer) != FrameStatus.Ok) { this.badReceiveCount += 1; return; }
    const reply = frameIsReply(buffer);
    const wantTarget = reply ? AgentKind.Cta : AgentKind.Rta;
    const wantSource = reply ? AgentKind.Rta : AgentKind.Cta;
    if (agentKind(frameTarget(buffer)) != <u32>wantTarget || agentKind(frameSource(buffer)) != <u32>wantSource) { this.badReceiveCount += 1; return; }
    // Block I/O only, both ways: starting agents (and their profiles) is this board's UMA's business.
    const fn = frameFunction(buffer);
    if (fn != FrameFunction.Read && fn != FrameFunction.Write && fn != FrameFunction.WriteFua && fn != FrameFunction.Flush && fn != FrameFunction.Unmap) {
      this.badReceiveCount += 1;
      return;
    }
    // The sender as this board names it; the target is this board's own agent.
    store<u16>(buffer, <u16>agentAddress(REMOTE_PROCESSOR_BASE + board, wantSource), 4);
    store<u16>(buffer, <u16>agentAddress(0, wantTarget), 6);
    const slot = frames().acquire();
    if (slot == POOL_NONE) { this.droppedCount += 1; return; } // the sender retransmits
    memory.copy(frames().address(slot), buffer, FRAME_BYTES);
    if (reply) {
      this.hold(slot, board); // to the CTA when the board's tunneled interrupt says its data is here
      return;
    }
    if (!post(reply ? this.ctaTask : this.rtaTask, this.out.set(MsgKind.Frame, this.index, slot, 0))) {
      frames().release(slot);
      this.droppedCount += 1;
      return;
    }
    this.framesIn += 1;
  }

  // A peer's buffers: open its window slot and make its link ready; answer a hello that asks.
  private onHello(buffer: usize, board: u32): void {
    const key = helloKey(buffer);
    const floor = helloRegionBase(buffer);
    const lengthBytes = helloRegionLength(buffer);
    const link = board < <u32>this.links.length ? unchecked(this.links[board]) : null;
    if (key == 0 || lengthBytes == 0 || floor + lengthBytes < floor || link == null) {
      this.badReceiveCount += 1;
      return;
    }
    // A hello that asks for an answer comes from a board that just started: if it ran before, its transactions in this
    // board's RTA are from its last life, and their numbers start again now (a retransmission must not match them).
    const known = this.rdmaOnly ? unchecked(this.peerKey[board]) != 0 : unchecked(this.windowSlotOf[board]) != CP_WINDOW_SLOTS;
    const restarted = (helloFlags(buffer) & FABRIC_HELLO_ANSWER) != 0 && known;
    // Its routing-table version: newer than ours (this board started again while the table changed), fetch it.
    this.sync.onPeerVersion(board, helloTableVersion(buffer));
    this.syncWake();
    if (restarted && !post(this.rtaTask, this.out.set(MsgKind.FabricPeerRestarted, this.index, board, 0))) this.droppedCount += 1;
    if (this.rdmaOnly) {
      // No window: the RTA reaches b's buffers by RDMA with b's key, inside the region b named (rta/bounce.ts).
      unchecked(this.peerKey[board] = key);
      unchecked(this.peerFloor[board] = floor);
      unchecked(this.peerLength[board] = lengthBytes);
      link!.openRemote(floor, floor + lengthBytes);
      this.answerHello(buffer, board);
      return;
    }
    // The board's slot: the one it had (a hello again after its reset), else the next free; none left: counted.
    let slot = unchecked(this.windowSlotOf[board]);
    if (slot == CP_WINDOW_SLOTS) {
      if (this.windowSlotsUsed >= CP_WINDOW_SLOTS) {
        this.windowSlotsFull += 1;
        return;
      }
      slot = this.windowSlotsUsed;
      this.windowSlotsUsed += 1;
      unchecked(this.windowSlotOf[board] = slot);
    }
    const r = this.registers;
    busWrite32(r + CP_WINDOW_SELECT, slot);
    busWrite32(r + CP_WINDOW_DESTINATION, routingTable().boardIds[board]);
    busWrite32(r + CP_WINDOW_KEY, key);
    const slotBase = this.window + <u64>slot * CP_WINDOW_SLOT_BYTES;
    link!.openWindow(slotBase - floor, floor, floor + min(lengthBytes, CP_WINDOW_SLOT_BYTES));
    this.answerHello(buffer, board);
  }

  private answerHello(buffer: usize, board: u32): void {
    helloSetTableVersion(this.helloAnswer, routingTable().version);
    if ((helloFlags(buffer) & FABRIC_HELLO_ANSWER) != 0 && this.postSend(board, <u64>this.helloAnswer, FABRIC_HELLO_BYTES, TAG_HELLO | board)) {
      unchecked(this.helloInFlight[board] += 1);
    }
  }
}

class FabricSyncSender extends SyncSender {
  constructor(private readonly task: FabricTask) { super(); }
  send(board: u32, message: usize): bool { return this.task.sendSync(board, message); }
}

/**
 * Boot, on the host processor of a board whose routing table is present: the fabric task and a FabricLink per other
 * board, given to `install(board, link)` (the CTA's and the RTA's tables); null when there is no table or no usable
 * cluster port (a console line says which).
 */
export function fabricBoot(bootInfo: usize, ctaTask: u32, rtaTask: u32): FabricTask | null {
  const table = routingTable();
  if (!table.present) return null;
  const count = pciFunctionCount();
  let port: PciFunctionInfo | null = null;
  for (let i: u32 = 0; i < count && port == null; i++) {
    const f = pciFunctionAt(i);
    if (!f.claimed && f.vendorId == CLUSTER_PORT_VENDOR_ID && f.deviceId == CLUSTER_PORT_DEVICE_ID) port = f;
  }
  if (port == null) {
    line().s("fabric: no cluster port: this board serves only the pages it owns").err();
    return null;
  }
  const registers = unchecked(port!.barAddress[CLUSTER_PORT_BAR_REGISTERS]);
  const window = unchecked(port!.barAddress[CLUSTER_PORT_BAR_WINDOW]);
  const vector = vectorAllocate(CLUSTER_PORT_VECTOR_COUNT);
  if (registers == 0 || window == 0 || vector == VECTOR_NONE || !msixEnable(port!, bootInfoMsiAddress(bootInfo), vector, CLUSTER_PORT_VECTOR_COUNT)) {
    line().s("fabric: cluster port in slot ").u32(port!.device).s(": BARs, vectors or MSI-X not set up").err();
    return null;
  }
  port!.claimed = true;
  const task = new FabricTask(ctaTask, rtaTask);
  if (port!.revision == CLUSTER_PORT_REVISION_RDMA) task.useRdma();
  taskAdd(task);
  irqRoute(vector, task.index); // completions
  for (let v: u32 = 0; v < CLUSTER_PORT_TUNNEL_VECTORS; v++) irqRoute(vector + CLUSTER_PORT_VECTOR_TUNNEL_BASE + v, task.index); // remote completions
  task.attach(registers, window, vector);
  for (let b: u32 = 0; b < table.boardCount; b++) {
    if (b == table.thisBoard) continue;
    unchecked(task.links[b] = new FabricLink(REMOTE_PROCESSOR_BASE + b, b, task.index, 0));
  }
  return task;
}
