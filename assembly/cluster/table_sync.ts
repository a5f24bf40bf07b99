// Routing-table changes at run time (docs/cluster.md, "Changing the table"): a change is visible on every board before
// any board uses it. Two phases over the fabric, driven by the board that changes the table (the coordinator):
//
//   1. Propose version N+1 = the active version N with one change (the pages of a volume in a range, those owned by
//      one board or all, given to another board: a page's owner moving, a board leaving). Every board whose active
//      version is N and that holds no other proposal stages N+1 and acknowledges; anything else refuses.
//   2. Once every board acknowledged (within SYNC_ACK_WINDOW_NS of the first proposal), the coordinator activates N+1
//      and sends Commit (which carries the change again) until every board confirmed; a board activates N+1 on it.
//
// So a board activates N+1 only after every board staged it: no board serves with a version the others have not
// acknowledged. A board holds a proposal it acknowledged for SYNC_HOLD_NS, refusing any other meanwhile; it holds it
// longer than the coordinator may take to collect the acknowledgements, so two coordinators can never both collect
// every board's for the same version. A board that lets a proposal go (never committed) stays on N; a Commit that
// comes later still applies (it carries the change, and is sent only once every board had acknowledged). A
// coordinator that is refused or not answered in time gives up (counted, one console line): nothing changes anywhere.
//
// A board that starts again boots on its ROM's table (version 1) while the others may be further: every hello carries
// the sender's active version (fabric/hello.ts), and a board that sees a newer one fetches that table from the board
// that has it (Fetch of a volume slot's pages from a first page, answered by a Chunk of their owners, a byte each), stages
// it, and activates it once every page came. Until then, and until a hello of every other board came (or
// SYNC_SETTLE_NS passed: boards that are down), it serves no page of a partitioned volume (routingTableCaughtUp: the
// CTA answers NOT READY, target port unavailable) rather than send a page to an owner of a table that is no longer.
// A board that stops answering a fetch (SYNC_FETCH_ATTEMPTS_PER_BOARD Fetches unanswered) is replaced by another whose
// hello (or Propose, or Commit) said it has that version; the Chunks fetched so far stay. When none answers, the fetch
// is never given up: this board knows its table is old, and serving with it could write a page to a board that no
// longer owns it (a lost write) or read it from there (a stale read). It keeps asking them in turn, every
// 640 ms, and its partitioned volumes stay NOT READY (other boards' ports serve them meanwhile) until one answers.
//
// The messages travel as 128-byte SENDs beside the agents' frames (the fabric task tells them by their magic):
// |0 magic u32 "RTBL"|4 phase u32|8 version u32 (N+1)|12 base u32 (N)|16 coordinator's board id u32|20 volume slot u32|
// |24 first page u32|28 page count u32|32 from owner: board index, or 0xff any u32|36 to owner: board index u32|
// |40 a Chunk's owners, a u8 board index per page, SYNC_CHUNK_PAGES at most|. A Fetch or Chunk names the table's version
// (base is version - 1) and a Fetch's page count is 0.
import { FRAME_BYTES } from "../board/frame";
import { clockNowNs } from "../board/wasi";
import { line } from "../kernel/console";
import {
  CLUSTER_BOARDS_MAX, CLUSTER_NONE, CLUSTER_OWNER_NONE, routingTable, routingTableActivate, routingTableCaughtUpSet, routingTableStage,
  routingTableStaged,
} from "./routing_table";

export const SYNC_MAGIC: u32 = 0x4c425452; // "RTBL" little-endian
export const SYNC_MESSAGE_BYTES: u32 = 40;
export const SYNC_ACK_WINDOW_NS: u64 = 50_000_000; // the coordinator's time to collect every acknowledgement
export const SYNC_HOLD_NS: u64 = 200_000_000; // how long a board holds a proposal it acknowledged (> the window)
export const SYNC_COMMIT_GIVE_UP_NS: u64 = 5_000_000_000; // Commit is sent again until confirmed, for this long
export const SYNC_RETRY_NS: u64 = 1_000_000;
export const SYNC_FETCH_RETRY_NS: u64 = 20_000_000; // a Fetch not answered is sent again after this, doubled each time
const SYNC_FETCH_RETRY_SHIFT_MAX: u32 = 5; // up to 640 ms between Fetches
// Fetches a board may leave unanswered (at 0, 20, 60, 140, 300 and 620 ms) before another board that has the version is
// asked, 1.26 s after the first; with none left, the same boards in turn, every 640 ms, for as long as it takes.
export const SYNC_FETCH_ATTEMPTS_PER_BOARD: u32 = 6;
export const SYNC_SETTLE_NS: u64 = 2_000_000_000; // at boot, the longest wait for every other board's hello
// Page data does not move with a page's owner: nothing copies a page from its old owner's disk to the new one's yet, so
// a table in which a page has another owner than in this board's would serve that page from a disk that does not hold
// it (writes read back wrong, or lost). Such a table is refused, proposed or fetched (docs/cluster.md, "Pages do not
// move"), unless pages may move: only the test image's protocol tests set it (test/firmware/cluster_probe.ts).
let pagesMayMove = false;
export function tableSyncPagesMayMoveSet(allow: bool): void { pagesMayMove = allow; }

/** Owners one Chunk carries: the frame past the header. */
export const SYNC_CHUNK_PAGES: u32 = FRAME_BYTES - 40;

// The message's fields, named as drawn above; read and written only through the accessors below.
const AT_MAGIC: usize = 0;
const AT_PHASE: usize = 4;
const AT_VERSION: usize = 8;
const AT_BASE: usize = 12;
const AT_COORDINATOR: usize = 16;
const AT_SLOT: usize = 20;
const AT_FIRST_PAGE: usize = 24;
const AT_PAGE_COUNT: usize = 28;
const AT_FROM_OWNER: usize = 32;
const AT_TO_OWNER: usize = 36;
const AT_OWNERS: usize = 40; // a Chunk's
if (AT_TO_OWNER + 4 != SYNC_MESSAGE_BYTES) ERROR("table sync: the last field ends the message");

/** The magic that tells a sync message from an agents' frame (the fabric task reads it). */
@inline export function syncMagic(m: usize): u32 { return load<u32>(m, AT_MAGIC); }
@inline function syncPhase(m: usize): u32 { return load<u32>(m, AT_PHASE); }
@inline function syncVersion(m: usize): u32 { return load<u32>(m, AT_VERSION); }
@inline function syncBase(m: usize): u32 { return load<u32>(m, AT_BASE); }
@inline function syncCoordinator(m: usize): u32 { return load<u32>(m, AT_COORDINATOR); }
@inline function syncSlot(m: usize): u32 { return load<u32>(m, AT_SLOT); }
@inline function syncFirstPage(m: usize): u32 { return load<u32>(m, AT_FIRST_PAGE); }
@inline function syncPageCount(m: usize): u32 { return load<u32>(m, AT_PAGE_COUNT); }
@inline function syncFromOwner(m: usize): u32 { return load<u32>(m, AT_FROM_OWNER); }
@inline function syncToOwner(m: usize): u32 { return load<u32>(m, AT_TO_OWNER); }
// The header every message carries: magic, phase, version N+1, base N, coordinator.
@inline function syncSetHeader(m: usize, phase: u32, version: u32, base: u32, coordinator: u32): void {
  store<u32>(m, SYNC_MAGIC, AT_MAGIC);
  store<u32>(m, phase, AT_PHASE);
  store<u32>(m, version, AT_VERSION);
  store<u32>(m, base, AT_BASE);
  store<u32>(m, coordinator, AT_COORDINATOR);
}
// The change a Propose or Commit carries.
@inline function syncSetChange(m: usize, slot: u32, first: u32, count: u32, fromOwner: u32, toOwner: u32): void {
  store<u32>(m, slot, AT_SLOT);
  store<u32>(m, first, AT_FIRST_PAGE);
  store<u32>(m, count, AT_PAGE_COUNT);
  store<u32>(m, fromOwner, AT_FROM_OWNER);
  store<u32>(m, toOwner, AT_TO_OWNER);
}

export enum SyncPhase {
  Propose = 1,
  Ack = 2,
  Commit = 3,
  CommitAck = 4,
  Refuse = 5,
  Fetch = 6, // send me version's owners of slot from page first
  Chunk = 7, // version's owners of slot from page first, page count of them (version: the sender's, maybe newer)
}

/** What sends the sync messages (the fabric task): SYNC_MESSAGE_BYTES at `message` to board index `board`. */
export class SyncSender {
  /** False when it could not go now (the retry sends it again). */
  send(board: u32, message: usize): bool { return false; }
}

export class TableSync {
  // Counters (the fuzz target's and the tests' view).
  proposed: u32 = 0;
  committed: u32 = 0; // versions this board activated through the protocol
  abandoned: u32 = 0; // proposals this board coordinated that did not commit
  refusedCount: u32 = 0; // proposals this board refused
  badMessages: u32 = 0;
  // The proposal this board holds (acknowledged, not yet committed): version, coordinator id, until when.
  private holdVersion: u32 = 0;
  private holdCoordinator: u32 = 0;
  private holdUntilNs: u64 = 0;
  // The proposal this board coordinates: its change, and who has answered.
  private coordinating: bool = false;
  private committing: bool = false;
  private version: u32 = 0;
  private slot: u32 = 0;
  private first: u32 = 0;
  private count: u32 = 0;
  private fromOwner: u32 = 0;
  private toOwner: u32 = 0;
  private answered: u32 = 0; // bit per board index
  private startedNs: u64 = 0;
  private nextSendNs: u64 = 0;
  private readonly message: usize = memory.data(FRAME_BYTES);
  // Catching up at boot: the boards whose hello came (bit per index), since when we wait, the fetch under way.
  fetched: u32 = 0; // tables this board fetched from a peer (the tests' view)
  private heard: u32 = 0;
  private settleFromNs: u64 = u64.MAX_VALUE;
  private caughtUp: bool = true;
  private fetching: bool = false;
  private fetchVersion: u32 = 0;
  private fetchBoard: u32 = 0;
  private fetchSlot: u32 = 0;
  private fetchFirst: u32 = 0;
  private fetchSentNs: u64 = 0;
  private fetchAttempts: u32 = 0; // Fetches sent to fetchBoard since the last Chunk
  private fetchTried: u32 = 0; // boards asked in vain since the last Chunk (bit per index)
  private fetchStalled: bool = false; // every board that has the version was asked in vain: the slow round
  // Per board index: the table version it last said it has (its hellos, Proposes, Commits and Chunks): where to fetch.
  private readonly peerVersions: StaticArray<u32> = new StaticArray<u32>(CLUSTER_BOARDS_MAX);
  fetchSwitches: u32 = 0; // a board stopped answering a fetch: another that has the version was asked
  fetchStalls: u32 = 0; // no board that has the version answered: partitioned volumes stay NOT READY, asking slowly
  movesRefused: u32 = 0; // changes (proposed, or fetched tables) refused because a page would change owner
  private refusedVersion: u32 = 0; // a fetched table refused (pages would move): this board stays not ready
  /** When the fabric task should call tick() next (u64.MAX_VALUE: nothing to do). */
  wakeNs: u64 = u64.MAX_VALUE;

  constructor(private readonly sender: SyncSender) {}

  /**
   * This board proposes version active + 1: in partitioned volume `slot`, pages [first, first + count) owned by
   * `fromOwner` (a board index, or CLUSTER_OWNER_NONE for any) go to board `toOwner`. False when the change is not
   * valid or a proposal is already under way here.
   */
  propose(slot: u32, first: u32, count: u32, fromOwner: u32, toOwner: u32): bool {
    const t = routingTable();
    const nowNs = clockNowNs();
    if (!t.present || this.coordinating || this.holding(nowNs) || !this.caughtUp) return false;
    if (slot >= t.volumeCount || count == 0 || first >= t.pageCount(slot) || count > t.pageCount(slot) - first) return false;
    if (toOwner >= t.boardCount || (fromOwner != <u32>CLUSTER_OWNER_NONE && fromOwner >= t.boardCount)) return false;
    if (this.movesPage(slot, first, count, fromOwner, toOwner)) return false;
    this.coordinating = true;
    this.committing = false;
    this.version = t.version + 1;
    this.slot = slot;
    this.first = first;
    this.count = count;
    this.fromOwner = fromOwner;
    this.toOwner = toOwner;
    this.stage(t.version, slot, first, count, fromOwner, toOwner, this.version);
    this.hold(this.version, t.boardId(t.thisBoard), nowNs);
    this.answered = 1 << t.thisBoard;
    this.startedNs = nowNs;
    this.nextSendNs = 0;
    this.proposed += 1;
    line().s("cluster: proposing routing table version ").u32(this.version).out();
    this.tick();
    return true;
  }

  /** The fabric task started: partitioned volumes wait for every other board's hello (or SYNC_SETTLE_NS). */
  start(): void {
    const t = routingTable();
    if (!t.present || t.boardCount < 2) return;
    this.heard = 1 << t.thisBoard;
    this.settleFromNs = clockNowNs();
    this.caughtUp = false;
    routingTableCaughtUpSet(false);
    this.wakeNs = this.settleFromNs + SYNC_SETTLE_NS;
  }

  /** Board `board`'s hello said its active table is `version`: a newer one is fetched from it. */
  onPeerVersion(board: u32, version: u32): void {
    const t = routingTable();
    if (!t.present || board >= t.boardCount || board == t.thisBoard) return;
    this.heard |= 1 << board;
    unchecked(this.peerVersions[board] = version); // its active version now (lower again if it started again)
    if (version > t.version && version > this.refusedVersion && (!this.fetching || version > this.fetchVersion)) this.fetchStart(board, version);
    else if (this.fetching && this.fetchStalled && version >= this.fetchVersion) {
      // A board that has it spoke again (it started again, or its link is back): ask it now, not at the next round.
      this.fetchBoard = board;
      this.fetchAttempts = 0;
      this.fetchSend();
    }
    this.settle();
  }

  private fetchStart(board: u32, version: u32): void {
    const t = routingTable();
    line().s("cluster: routing table version ").u32(version).s(" at board ").u32(t.boardId(board)).s(", this board has ")
      .u32(t.version).s(": fetching it").out();
    this.fetching = true;
    this.fetchVersion = version;
    this.fetchBoard = board;
    this.fetchSlot = 0;
    this.fetchFirst = 0;
    this.fetchAttempts = 0;
    this.fetchTried = 0;
    this.fetchStalled = false;
    const staged = routingTableStage();
    staged.copyFrom(t);
    staged.version = version;
    this.caughtUp = false;
    routingTableCaughtUpSet(false);
    if (t.volumeCount == 0) return this.fetchDone(board, version);
    this.fetchSend();
  }

  private fetchSend(): void {
    const m = this.message;
    memory.fill(m, 0, FRAME_BYTES);
    syncSetHeader(m, SyncPhase.Fetch, this.fetchVersion, this.fetchVersion - 1, 0);
    syncSetChange(m, this.fetchSlot, this.fetchFirst, 0, 0, 0);
    this.sender.send(this.fetchBoard, m);
    this.fetchSentNs = clockNowNs();
    this.fetchAttempts += 1;
    this.wakeAt(this.fetchRetryAtNs());
  }

  @inline private fetchRetryAtNs(): u64 {
    return this.fetchSentNs + (SYNC_FETCH_RETRY_NS << min(this.fetchAttempts - 1, SYNC_FETCH_RETRY_SHIFT_MAX));
  }

  // fetchBoard left SYNC_FETCH_ATTEMPTS_PER_BOARD Fetches unanswered: the next board (in table order after it) that said
  // it has the version and was not asked in vain since the last Chunk, from the first Fetch's back-off again. With none
  // left, the fetch stalls (said once): the boards that have it are asked in turn at the slowest rate, never given up.
  private fetchNextBoard(): void {
    const t = routingTable();
    const silent = this.fetchBoard;
    if (this.fetchStalled) {
      // The slow round: the next board that has it, fetchAttempts past the back-off's end.
      const other = this.fetchCandidate(1 << silent);
      if (other != CLUSTER_NONE) this.fetchBoard = other;
      return;
    }
    this.fetchTried |= 1 << silent;
    const next = this.fetchCandidate(this.fetchTried);
    if (next != CLUSTER_NONE) {
      line().s("cluster: routing table version ").u32(this.fetchVersion).s(": board ").u32(t.boardId(silent))
        .s(" does not answer, fetching from board ").u32(t.boardId(next)).out();
      this.fetchSwitches += 1;
      this.fetchBoard = next;
      this.fetchAttempts = 0;
      return;
    }
    line().s("cluster: routing table version ").u32(this.fetchVersion).s(": no board that has it answers; partitioned volumes stay not ready, asking again every ")
      .u64((SYNC_FETCH_RETRY_NS << SYNC_FETCH_RETRY_SHIFT_MAX) / 1_000_000).s(" ms").err();
    this.fetchStalled = true;
    this.fetchStalls += 1;
    const other = this.fetchCandidate(1 << silent);
    if (other != CLUSTER_NONE) this.fetchBoard = other;
  }

  // The first board after fetchBoard, in table order, whose version is at least the one fetched and not in `skip`.
  private fetchCandidate(skip: u32): u32 {
    const t = routingTable();
    for (let i: u32 = 1; i < t.boardCount; i++) {
      const b = (this.fetchBoard + i) % t.boardCount;
      if (b == t.thisBoard || (skip & (1 << b)) != 0) continue;
      if (unchecked(this.peerVersions[b]) >= this.fetchVersion) return b;
    }
    return CLUSTER_NONE;
  }

  // A peer asks for our table's owners: the Chunk names our version (the asker starts again if it is newer).
  private onFetch(buffer: usize, board: u32): void {
    const t = routingTable();
    const slot = syncSlot(buffer);
    const first = syncFirstPage(buffer);
    if (slot >= t.volumeCount || first >= t.pageCount(slot)) { this.badMessages += 1; return; }
    const count = min(SYNC_CHUNK_PAGES, t.pageCount(slot) - first);
    const m = this.message;
    memory.fill(m, 0, FRAME_BYTES);
    syncSetHeader(m, SyncPhase.Chunk, t.version, t.version - 1, 0);
    syncSetChange(m, slot, first, count, 0, 0);
    for (let i: u32 = 0; i < count; i++) store<u8>(m + AT_OWNERS + i, <u8>t.owner(slot, first + i));
    this.sender.send(board, m);
  }

  private onChunk(buffer: usize, board: u32, version: u32): void {
    if (!this.fetching) return; // late, or not asked: dropped
    unchecked(this.peerVersions[board] = version); // its active version now (lower again if it started again)
    if (version > this.fetchVersion) return this.fetchStart(board, version); // it moved on meanwhile: that one
    const t = routingTable();
    const slot = syncSlot(buffer);
    const first = syncFirstPage(buffer);
    const count = syncPageCount(buffer);
    // The piece asked for, of the version fetched: from any board (one asked before and slow to answer is as good).
    if (version != this.fetchVersion || slot != this.fetchSlot || first != this.fetchFirst) return;
    if (count == 0 || count > SYNC_CHUNK_PAGES || count > t.pageCount(slot) - first) { this.badMessages += 1; return; }
    const staged = routingTableStaged();
    if (!staged.present || staged.version != version) return this.fetchStart(board, version); // staged over meanwhile
    for (let i: u32 = 0; i < count; i++) {
      const owner = <u32>load<u8>(buffer + AT_OWNERS + i);
      if (owner >= t.boardCount) { this.badMessages += 1; return; }
      staged.ownerSet(slot, first + i, owner);
    }
    this.fetchFirst = first + count;
    this.fetchAttempts = 0;
    this.fetchTried = 0;
    this.fetchStalled = false;
    this.fetchBoard = board;
    if (this.fetchFirst >= t.pageCount(slot)) {
      this.fetchSlot += 1;
      this.fetchFirst = 0;
    }
    if (this.fetchSlot < t.volumeCount) return this.fetchSend();
    this.fetchDone(board, version);
  }

  // Every page came (or there are none: a cluster without partitioned volumes only learns the number): activated,
  // unless it moves pages.
  private fetchDone(board: u32, version: u32): void {
    this.fetching = false;
    if (!pagesMayMove && this.stagedMovesPage(board)) return;
    if (!routingTableActivate(version)) {
      line().s("cluster: routing table version ").u32(version).s(" fetched but did not activate").err();
      return;
    }
    this.fetched += 1;
    this.refusedVersion = 0; // a newer table that moves nothing: this board is current again
    line().s("cluster: routing table version ").u32(version).s(" active (fetched from board ").u32(routingTable().boardId(board)).s(")").out();
    this.settle();
  }

  // The fetched table (staged) gives a page another owner than this board's: not used, said once. This board's table
  // is old and the other is one it must not use: its partitioned volumes stay not ready until it starts again (from a
  // cluster file that agrees with the others').
  private stagedMovesPage(board: u32): bool {
    const t = routingTable();
    const staged = routingTableStaged();
    for (let v: u32 = 0; v < t.volumeCount; v++) {
      for (let p: u32 = 0; p < t.pageCount(v); p++) {
        if (staged.owner(v, p) == t.owner(v, p)) continue;
        line().s("cluster: routing table version ").u32(this.fetchVersion).s(" from board ").u32(t.boardId(board)).s(" gives page ").u32(p)
          .s(" of volume ").u32(t.volumeNumber(v)).s(" to board ").u32(t.boardId(staged.owner(v, p))).s(", this board's version ").u32(t.version)
          .s(" to board ").u32(t.boardId(t.owner(v, p))).s(": page data does not move between boards; not used, partitioned volumes stay not ready")
          .s(" (start every board from the same cluster file)").err();
        this.refusedVersion = this.fetchVersion;
        this.movesRefused += 1;
        routingTableStage(); // cleared: nothing half-used
        return true;
      }
    }
    return false;
  }

  // Caught up: every other board's hello came (or the wait ran out), and no fetch is under way nor a table refused.
  private settle(): void {
    if (this.caughtUp || this.fetching || this.refusedVersion != 0) return;
    const t = routingTable();
    const all = t.boardCount >= 32 ? u32.MAX_VALUE : (<u32>1 << t.boardCount) - 1;
    if (this.heard != all && clockNowNs() - this.settleFromNs < SYNC_SETTLE_NS) return;
    this.caughtUp = true;
    routingTableCaughtUpSet(true);
    line().s("cluster: routing table version ").u32(t.version).s(" in use").s(this.heard == all ? "" : " (some boards did not say hello)").out();
  }

  @inline private wakeAt(atNs: u64): void { if (atNs < this.wakeNs) this.wakeNs = atNs; }

  /** The timer: send what is due, give up what is late. */
  tick(): void {
    const nowNs = clockNowNs();
    this.wakeNs = u64.MAX_VALUE;
    if (this.fetching) {
      if (nowNs >= this.fetchRetryAtNs()) {
        if (this.fetchAttempts >= SYNC_FETCH_ATTEMPTS_PER_BOARD) this.fetchNextBoard();
        this.fetchSend();
      } else this.wakeAt(this.fetchRetryAtNs());
    }
    if (!this.caughtUp) {
      this.settle();
      if (!this.caughtUp && !this.fetching && this.refusedVersion == 0) this.wakeAt(this.settleFromNs + SYNC_SETTLE_NS);
    }
    if (!this.coordinating) return;
    const t = routingTable();
    if (!this.committing && nowNs - this.startedNs > SYNC_ACK_WINDOW_NS) return this.abandon("not every board acknowledged in time");
    if (this.committing && nowNs - this.startedNs > SYNC_COMMIT_GIVE_UP_NS) {
      line().s("cluster: routing table version ").u32(this.version).s(" committed; some boards never confirmed it").err();
      this.coordinating = false;
      return;
    }
    if (nowNs >= this.nextSendNs) {
      for (let b: u32 = 0; b < t.boardCount; b++) {
        if ((this.answered & (1 << b)) != 0) continue;
        this.fill(this.committing ? SyncPhase.Commit : SyncPhase.Propose, this.committing ? this.version - 1 : t.version);
        this.sender.send(b, this.message);
      }
      this.nextSendNs = nowNs + SYNC_RETRY_NS;
    }
    this.wakeAt(this.nextSendNs);
  }

  /** A sync message from board index `board` (already known to be of the table and not this board). */
  onMessage(buffer: usize, board: u32): void {
    const t = routingTable();
    const phase = syncPhase(buffer);
    const version = syncVersion(buffer);
    const base = syncBase(buffer);
    const coordinator = syncCoordinator(buffer);
    if (!t.present || coordinator != t.boardId(board) && (phase == SyncPhase.Propose || phase == SyncPhase.Commit) || version != base + 1) {
      this.badMessages += 1;
      return;
    }
    // A coordinator further than this board (its active version: a Propose's base, a Commit's version; a Commit this
    // board missed while its links were down): its table is fetched, as from a newer hello.
    if (phase == SyncPhase.Propose && base > t.version) this.onPeerVersion(board, base);
    if (phase == SyncPhase.Commit && base > t.version) this.onPeerVersion(board, version);
    switch (phase) {
      case SyncPhase.Propose: return this.onPropose(buffer, board, version, base, coordinator);
      case SyncPhase.Commit: return this.onCommit(buffer, board, version, base, coordinator);
      case SyncPhase.Ack: case SyncPhase.CommitAck: case SyncPhase.Refuse: return this.onAnswer(phase, board, version, coordinator);
      case SyncPhase.Fetch: return this.onFetch(buffer, board);
      case SyncPhase.Chunk: return this.onChunk(buffer, board, version);
      default: this.badMessages += 1;
    }
  }

  private onPropose(buffer: usize, board: u32, version: u32, base: u32, coordinator: u32): void {
    const t = routingTable();
    const nowNs = clockNowNs();
    const same = this.holding(nowNs) && this.holdVersion == version && this.holdCoordinator == coordinator;
    if (!same && (t.version != base || this.holding(nowNs) || this.coordinating || this.fetching || !this.changeValid(buffer))) {
      // Already committed (our CommitAck was lost, the coordinator still proposes): acknowledge; else refuse.
      this.answer(board, t.version == version && this.holdCoordinator == coordinator ? SyncPhase.Ack : SyncPhase.Refuse, version, coordinator);
      if (t.version != version) this.refusedCount += 1;
      return;
    }
    if (!same) {
      line().s("cluster: routing table version ").u32(version).s(" staged (proposed by board ").u32(coordinator).s(")").out();
      this.stage(base, syncSlot(buffer), syncFirstPage(buffer), syncPageCount(buffer), syncFromOwner(buffer), syncToOwner(buffer), version);
      this.hold(version, coordinator, nowNs);
    }
    this.answer(board, SyncPhase.Ack, version, coordinator);
  }

  private onCommit(buffer: usize, board: u32, version: u32, base: u32, coordinator: u32): void {
    const t = routingTable();
    if (t.version == version && this.holdCoordinator == coordinator) {
      this.answer(board, SyncPhase.CommitAck, version, coordinator); // a retransmission: already active
      return;
    }
    // Behind or ahead: not ours to apply. Fetching: the staged table is the fetch's, which brings this version or a newer.
    if (t.version != base || this.fetching || !this.changeValid(buffer)) return;
    const held = this.holdVersion == version && this.holdCoordinator == coordinator && routingTableStaged().version == version;
    if (!held) {
      // Our hold lapsed (or another proposal came since): the change comes with the Commit, sent only once every
      // board had acknowledged it.
      this.stage(base, syncSlot(buffer), syncFirstPage(buffer), syncPageCount(buffer), syncFromOwner(buffer), syncToOwner(buffer), version);
    }
    if (!routingTableActivate(version)) return;
    this.holdVersion = version;
    this.holdCoordinator = coordinator;
    this.holdUntilNs = 0;
    this.committed += 1;
    line().s("cluster: routing table version ").u32(version).s(" active (committed by board ").u32(coordinator).s(")").out();
    this.answer(board, SyncPhase.CommitAck, version, coordinator);
  }

  private onAnswer(phase: u32, board: u32, version: u32, coordinator: u32): void {
    const t = routingTable();
    if (!this.coordinating || version != this.version || coordinator != t.boardId(t.thisBoard)) { this.badMessages += 1; return; }
    if (phase == SyncPhase.Refuse) {
      if (!this.committing) this.abandon("a board refused");
      return;
    }
    if ((phase == SyncPhase.Ack) == this.committing) return; // a late answer to the other phase
    this.answered |= 1 << board;
    if (this.answered != (<u32>1 << t.boardCount) - 1) return;
    if (this.committing) {
      this.coordinating = false;
      this.wakeNs = u64.MAX_VALUE;
      return;
    }
    // Every board staged version N+1: it may be used now, here first.
    if (!routingTableActivate(this.version)) return this.abandon("the staged table did not activate");
    this.holdUntilNs = 0;
    this.committed += 1;
    line().s("cluster: routing table version ").u32(this.version).s(" active (every board acknowledged)").out();
    this.committing = true;
    this.answered = 1 << t.thisBoard;
    this.startedNs = clockNowNs();
    this.nextSendNs = 0;
    this.tick();
  }

  private abandon(why: string): void {
    line().s("cluster: routing table version ").u32(this.version).s(" abandoned: ").s(why).err();
    this.coordinating = false;
    this.holdUntilNs = 0;
    this.holdVersion = 0;
    this.abandoned += 1;
    this.wakeNs = u64.MAX_VALUE;
  }

  @inline private holding(nowNs: u64): bool { return this.holdUntilNs > nowNs; }

  private hold(version: u32, coordinator: u32, nowNs: u64): void {
    this.holdVersion = version;
    this.holdCoordinator = coordinator;
    this.holdUntilNs = nowNs + SYNC_HOLD_NS;
  }

  // The staged table: the active one with the change applied, carrying `version`.
  private stage(base: u32, slot: u32, first: u32, count: u32, fromOwner: u32, toOwner: u32, version: u32): void {
    const active = routingTable();
    assert(active.version == base, "table sync: staging over another version");
    const staged = routingTableStage();
    staged.copyFrom(active);
    staged.version = version;
    for (let p = first; p < first + count; p++) {
      if (fromOwner == <u32>CLUSTER_OWNER_NONE || staged.owner(slot, p) == fromOwner) staged.ownerSet(slot, p, toOwner);
    }
  }

  // A change this board can apply: a volume slot, pages and boards of its table, and no page changing owner (unless
  // pages may move).
  private changeValid(buffer: usize): bool {
    const t = routingTable();
    const slot = syncSlot(buffer);
    const first = syncFirstPage(buffer);
    const count = syncPageCount(buffer);
    const fromOwner = syncFromOwner(buffer);
    const toOwner = syncToOwner(buffer);
    if (slot >= t.volumeCount || count == 0 || first >= t.pageCount(slot) || count > t.pageCount(slot) - first) return false;
    if (toOwner >= t.boardCount || (fromOwner != <u32>CLUSTER_OWNER_NONE && fromOwner >= t.boardCount)) return false;
    return !this.movesPage(slot, first, count, fromOwner, toOwner);
  }

  // Would the change give a page of the active table another owner, while pages may not move? Said, and counted.
  private movesPage(slot: u32, first: u32, count: u32, fromOwner: u32, toOwner: u32): bool {
    if (pagesMayMove) return false;
    const t = routingTable();
    for (let p = first; p < first + count; p++) {
      const owner = t.owner(slot, p);
      if ((fromOwner != <u32>CLUSTER_OWNER_NONE && owner != fromOwner) || owner == toOwner) continue;
      line().s("cluster: routing table change refused: it gives page ").u32(p).s(" of volume ").u32(t.volumeNumber(slot)).s(" from board ")
        .u32(t.boardId(owner)).s(" to board ").u32(t.boardId(toOwner)).s(", and page data does not move between boards").err();
      this.movesRefused += 1;
      return true;
    }
    return false;
  }

  private fill(phase: SyncPhase, base: u32): void {
    const t = routingTable();
    const m = this.message;
    memory.fill(m, 0, FRAME_BYTES);
    syncSetHeader(m, phase, this.version, base, t.boardId(t.thisBoard));
    syncSetChange(m, this.slot, this.first, this.count, this.fromOwner, this.toOwner);
  }

  private answer(board: u32, phase: SyncPhase, version: u32, coordinator: u32): void {
    const m = this.message;
    memory.fill(m, 0, FRAME_BYTES);
    syncSetHeader(m, phase, version, version - 1, coordinator);
    this.sender.send(board, m);
  }
}
