// The cluster's routing table (docs/cluster.md, "The routing table"): which boards make up the cluster, where each
// one's iSCSI portals are, and, for every partitioned volume, which board owns each of its pages. Every board holds
// the same table. What reads it: the iSCSI transport (SendTargets lists every board's portals, a login may be
// redirected to the board that holds the most), the SCSI target (ALUA target port groups, REPORT REFERRALS and the
// Referrals VPD page) and the fabric (which board a request's pages go to).
//
// The table is configuration: the configuration ROM's cluster records fill it at boot (cluster/config_rom.ts), and a
// newer version may later be staged and activated (routingTableStage, routingTableActivate). Readers only ever see
// the active table, and an activation happens between two dispatches, so no reader sees a table half changed.
//
// Versions. `version` is the table's generation, 1 and up, raised by one with every change. A board uses a version
// only once it is active; activation (by the fabric's agreement protocol) follows only after every board has staged
// it, so a change is visible everywhere before any board uses it. A staged table older than or equal to the active one
// is refused. `format` is the layout of the records: this firmware reads CLUSTER_FORMAT; a configuration ROM whose
// cluster records say a newer format is ignored as a whole (one console line), and the board runs as a single board.
//
// Boards are named by their index in the table (0..boardCount-1) inside the firmware, and by their id (1..4095) on the
// wire: a board's ALUA target port group is its id, and so is the portal group tag of its portals.
import { carve } from "../kernel/carve";

export const CLUSTER_FORMAT: u32 = 1; // the cluster records' layout this firmware reads
export const CLUSTER_BOARDS_MAX: u32 = 16;
export const CLUSTER_BOARD_ID_MAX: u32 = 4095; // ids 1..4095: (id << 4) | port fits a 16-bit relative port identifier
export const CLUSTER_BOARD_NAME_BYTES_MAX: u32 = 31;
export const CLUSTER_PORTALS_PER_BOARD_MAX: u32 = 4;
export const CLUSTER_PORTAL_BYTES_MAX: u32 = 63; // "address:port", IPv6 in brackets
export const CLUSTER_VOLUMES_MAX: u32 = 8;
export const CLUSTER_PAGES_MAX: u32 = 4096; // pages of one partitioned volume
export const CLUSTER_NONE: u32 = 0xffff_ffff; // no such board or volume slot
export const CLUSTER_OWNER_NONE: u8 = 0xff; // a page no board owns (a table still being filled)

/** How a ClusterVolume record gives the owners of its pages. */
export enum ClusterOwners {
  Explicit = 0, // ClusterOwners records list each page's board id
  RoundRobin = 1, // page p is owned by board (start + p) mod boardCount, in the table's board order
}

const NAME_SLOT_BYTES: u32 = 32;
const PORTAL_SLOT_BYTES: u32 = 64;

/** One routing table: fixed-capacity arrays carved at boot. */
export class RoutingTable {
  present: bool = false; // a complete, consistent table: the board is in a cluster
  format: u32 = 0;
  version: u32 = 0; // the generation; 0 only while not present
  redirect: bool = false; // logins may be answered with Target Moved Temporarily (docs/cluster.md, "Login redirect")
  thisBoard: u32 = CLUSTER_NONE; // this board's index
  boardCount: u32 = 0;
  readonly boardIds: StaticArray<u32> = new StaticArray<u32>(CLUSTER_BOARDS_MAX);
  readonly boardNameBytes: StaticArray<u32> = new StaticArray<u32>(CLUSTER_BOARDS_MAX);
  readonly portalCounts: StaticArray<u32> = new StaticArray<u32>(CLUSTER_BOARDS_MAX);
  readonly portalBytes: StaticArray<u32> = new StaticArray<u32>(CLUSTER_BOARDS_MAX * CLUSTER_PORTALS_PER_BOARD_MAX);
  volumeCount: u32 = 0;
  readonly volumeNumbers: StaticArray<u32> = new StaticArray<u32>(CLUSTER_VOLUMES_MAX); // the board's volume that presents it
  readonly pageBlocksOf: StaticArray<u32> = new StaticArray<u32>(CLUSTER_VOLUMES_MAX);
  readonly pageCounts: StaticArray<u32> = new StaticArray<u32>(CLUSTER_VOLUMES_MAX);
  // Carved by reserve(), at boot and only on a board of a cluster: a single board spends no RAM on the table.
  private names: usize = 0;
  private portals: usize = 0;
  private owners: usize = 0; // u8 board index per page

  /** Boot only (carves): the table's arrays. A table not reserved stays empty (not present). */
  reserve(): void {
    if (this.owners != 0) return;
    this.names = carve(CLUSTER_BOARDS_MAX * NAME_SLOT_BYTES, 4);
    this.portals = carve(CLUSTER_BOARDS_MAX * CLUSTER_PORTALS_PER_BOARD_MAX * PORTAL_SLOT_BYTES, 4);
    this.owners = carve(CLUSTER_VOLUMES_MAX * CLUSTER_PAGES_MAX, 4);
    this.clear();
  }

  /** Forgets everything: not present, no boards, no volumes. */
  clear(): void {
    this.present = false;
    this.format = 0;
    this.version = 0;
    this.redirect = false;
    this.thisBoard = CLUSTER_NONE;
    this.boardCount = 0;
    this.volumeCount = 0;
    if (this.owners != 0) memory.fill(this.owners, CLUSTER_OWNER_NONE, CLUSTER_VOLUMES_MAX * CLUSTER_PAGES_MAX);
  }

  // ---- Boards ----

  /** Adds a board (id 1..CLUSTER_BOARD_ID_MAX, unique; name 1..31 bytes). Its index, or CLUSTER_NONE when refused. */
  boardAdd(id: u32, name: usize, nameBytes: u32): u32 {
    assert(this.owners != 0, "boardAdd: the table is reserved");
    if (this.boardCount >= CLUSTER_BOARDS_MAX || id == 0 || id > CLUSTER_BOARD_ID_MAX) return CLUSTER_NONE;
    if (nameBytes == 0 || nameBytes > CLUSTER_BOARD_NAME_BYTES_MAX || this.boardIndexOfId(id) != CLUSTER_NONE) return CLUSTER_NONE;
    const b = this.boardCount;
    unchecked(this.boardIds[b] = id);
    memory.copy(this.names + <usize>b * NAME_SLOT_BYTES, name, nameBytes);
    unchecked(this.boardNameBytes[b] = nameBytes);
    unchecked(this.portalCounts[b] = 0);
    this.boardCount += 1;
    return b;
  }

  /** Adds a portal ("address:port") to board `b`; false when the board has CLUSTER_PORTALS_PER_BOARD_MAX or it is too long. */
  portalAdd(b: u32, text: usize, textBytes: u32): bool {
    assert(b < this.boardCount, "portalAdd: board index");
    const count = unchecked(this.portalCounts[b]);
    if (count >= CLUSTER_PORTALS_PER_BOARD_MAX || textBytes == 0 || textBytes > CLUSTER_PORTAL_BYTES_MAX) return false;
    const slot = b * CLUSTER_PORTALS_PER_BOARD_MAX + count;
    memory.copy(this.portals + <usize>slot * PORTAL_SLOT_BYTES, text, textBytes);
    unchecked(this.portalBytes[slot] = textBytes);
    unchecked(this.portalCounts[b] = count + 1);
    return true;
  }

  boardId(b: u32): u32 { assert(b < this.boardCount, "boardId: board index"); return unchecked(this.boardIds[b]); }
  boardName(b: u32): usize { assert(b < this.boardCount, "boardName: board index"); return this.names + <usize>b * NAME_SLOT_BYTES; }
  boardNameLength(b: u32): u32 { assert(b < this.boardCount, "boardNameLength: board index"); return unchecked(this.boardNameBytes[b]); }
  portalCount(b: u32): u32 { assert(b < this.boardCount, "portalCount: board index"); return unchecked(this.portalCounts[b]); }

  /** Portal `p` of board `b`: "address:port" at portal(b, p), portalLength(b, p) bytes. */
  portal(b: u32, p: u32): usize {
    assert(b < this.boardCount && p < unchecked(this.portalCounts[b]), "portal: index");
    return this.portals + <usize>(b * CLUSTER_PORTALS_PER_BOARD_MAX + p) * PORTAL_SLOT_BYTES;
  }
  portalLength(b: u32, p: u32): u32 {
    assert(b < this.boardCount && p < unchecked(this.portalCounts[b]), "portalLength: index");
    return unchecked(this.portalBytes[b * CLUSTER_PORTALS_PER_BOARD_MAX + p]);
  }

  /** The index of the board with `id`, or CLUSTER_NONE. */
  boardIndexOfId(id: u32): u32 {
    for (let b: u32 = 0; b < this.boardCount; b++) if (unchecked(this.boardIds[b]) == id) return b;
    return CLUSTER_NONE;
  }

  // ---- Partitioned volumes ----

  /**
   * Adds a partitioned volume presented by this board's volume `volumeNumber`: `pageCount` pages (1..CLUSTER_PAGES_MAX)
   * of `pageBlocks` blocks (≥ 1). Its owners start unset (CLUSTER_OWNER_NONE). Its slot, or CLUSTER_NONE when refused.
   */
  volumeAdd(volumeNumber: u32, pageBlocks: u32, pageCount: u32): u32 {
    assert(this.owners != 0, "volumeAdd: the table is reserved");
    if (this.volumeCount >= CLUSTER_VOLUMES_MAX || pageBlocks == 0 || pageCount == 0 || pageCount > CLUSTER_PAGES_MAX) return CLUSTER_NONE;
    if (this.volumeSlot(volumeNumber) != CLUSTER_NONE) return CLUSTER_NONE;
    const v = this.volumeCount;
    unchecked(this.volumeNumbers[v] = volumeNumber);
    unchecked(this.pageBlocksOf[v] = pageBlocks);
    unchecked(this.pageCounts[v] = pageCount);
    memory.fill(this.owners + <usize>v * CLUSTER_PAGES_MAX, CLUSTER_OWNER_NONE, CLUSTER_PAGES_MAX);
    this.volumeCount += 1;
    return v;
  }

  /** Sets the owner of page `page` of slot `v` to board index `b`. */
  ownerSet(v: u32, page: u32, b: u32): void {
    assert(v < this.volumeCount && page < unchecked(this.pageCounts[v]), "ownerSet: volume slot and page");
    assert(b < this.boardCount, "ownerSet: board index");
    store<u8>(this.owners + <usize>v * CLUSTER_PAGES_MAX + page, <u8>b);
  }

  /** Round robin: page p of slot `v` is owned by board (start + p) mod boardCount. */
  ownersRoundRobin(v: u32, start: u32): void {
    assert(v < this.volumeCount && start < this.boardCount, "ownersRoundRobin: slot and start");
    const count = unchecked(this.pageCounts[v]);
    for (let p: u32 = 0; p < count; p++) this.ownerSet(v, p, (start + p) % this.boardCount);
  }

  /** The slot of the partitioned volume this board presents as `volumeNumber`, or CLUSTER_NONE (an ordinary volume). */
  volumeSlot(volumeNumber: u32): u32 {
    for (let v: u32 = 0; v < this.volumeCount; v++) if (unchecked(this.volumeNumbers[v]) == volumeNumber) return v;
    return CLUSTER_NONE;
  }

  volumeNumber(v: u32): u32 { assert(v < this.volumeCount, "volumeNumber: slot"); return unchecked(this.volumeNumbers[v]); }
  pageBlocks(v: u32): u32 { assert(v < this.volumeCount, "pageBlocks: slot"); return unchecked(this.pageBlocksOf[v]); }
  pageCount(v: u32): u32 { assert(v < this.volumeCount, "pageCount: slot"); return unchecked(this.pageCounts[v]); }

  /** The board index owning page `page` of slot `v` (CLUSTER_OWNER_NONE as u32 while unset). */
  owner(v: u32, page: u32): u32 {
    assert(v < this.volumeCount && page < unchecked(this.pageCounts[v]), "owner: volume slot and page");
    return <u32>load<u8>(this.owners + <usize>v * CLUSTER_PAGES_MAX + page);
  }

  /** The board index owning block `lba` of slot `v`; blocks past the last page belong to the last page's owner. */
  ownerOfLba(v: u32, lba: u64): u32 {
    assert(v < this.volumeCount, "ownerOfLba: slot");
    const page = lba / <u64>unchecked(this.pageBlocksOf[v]);
    const last = unchecked(this.pageCounts[v]) - 1;
    return this.owner(v, page > <u64>last ? last : <u32>page);
  }

  /** How many pages of slot `v` board `b` owns. */
  pagesHeld(v: u32, b: u32): u32 {
    assert(v < this.volumeCount && b < this.boardCount, "pagesHeld: slot and board");
    const count = unchecked(this.pageCounts[v]);
    const base = this.owners + <usize>v * CLUSTER_PAGES_MAX;
    let held: u32 = 0;
    for (let p: u32 = 0; p < count; p++) if (<u32>load<u8>(base + p) == b) held += 1;
    return held;
  }

  /** Does every page of every volume have an owner, and is this board in the table? (The last check of a load.) */
  complete(): bool {
    if (this.thisBoard >= this.boardCount) return false;
    for (let v: u32 = 0; v < this.volumeCount; v++) {
      const count = unchecked(this.pageCounts[v]);
      for (let p: u32 = 0; p < count; p++) if (this.owner(v, p) >= this.boardCount) return false;
    }
    return true;
  }

  /** Copies `other` into this table, whole (both reserved). */
  copyFrom(other: RoutingTable): void {
    assert(this.owners != 0 && other.owners != 0, "copyFrom: both tables reserved");
    this.present = other.present;
    this.format = other.format;
    this.version = other.version;
    this.redirect = other.redirect;
    this.thisBoard = other.thisBoard;
    this.boardCount = other.boardCount;
    this.volumeCount = other.volumeCount;
    for (let i: i32 = 0; i < <i32>CLUSTER_BOARDS_MAX; i++) {
      unchecked(this.boardIds[i] = other.boardIds[i]);
      unchecked(this.boardNameBytes[i] = other.boardNameBytes[i]);
      unchecked(this.portalCounts[i] = other.portalCounts[i]);
    }
    for (let i: i32 = 0; i < <i32>(CLUSTER_BOARDS_MAX * CLUSTER_PORTALS_PER_BOARD_MAX); i++) unchecked(this.portalBytes[i] = other.portalBytes[i]);
    for (let i: i32 = 0; i < <i32>CLUSTER_VOLUMES_MAX; i++) {
      unchecked(this.volumeNumbers[i] = other.volumeNumbers[i]);
      unchecked(this.pageBlocksOf[i] = other.pageBlocksOf[i]);
      unchecked(this.pageCounts[i] = other.pageCounts[i]);
    }
    memory.copy(this.names, other.names, CLUSTER_BOARDS_MAX * NAME_SLOT_BYTES);
    memory.copy(this.portals, other.portals, CLUSTER_BOARDS_MAX * CLUSTER_PORTALS_PER_BOARD_MAX * PORTAL_SLOT_BYTES);
    memory.copy(this.owners, other.owners, CLUSTER_VOLUMES_MAX * CLUSTER_PAGES_MAX);
  }
}

// Two tables: the one in use, and one being filled with a newer version until it is activated. Their arrays are
// carved by routingTablesReserve, at boot, when the configuration ROM has cluster records.
const active = new RoutingTable();
const staged = new RoutingTable();

/** Boot only: carves both tables' arrays (about 70 KiB). */
export function routingTablesReserve(): void {
  active.reserve();
  staged.reserve();
}

/** The table in use. `present` false: this board is not in a cluster. */
export function routingTable(): RoutingTable { return active; }

/** The staging table, cleared, for a newer version to be filled in (by the fabric's agents, or at boot by the ROM). */
export function routingTableStage(): RoutingTable {
  assert(staged.owners != 0, "routingTableStage: no tables reserved (a single board)");
  staged.clear();
  return staged;
}

// False while a board that may have started again has not learnt the cluster's current table (table_sync.ts): no page of
// a partitioned volume is served meanwhile (volumes/partitioned.ts).
let caughtUp = true;
export function routingTableCaughtUp(): bool { return caughtUp; }
export function routingTableCaughtUpSet(value: bool): void { caughtUp = value; }

/** The staging table as it stands (a test, or the fabric checking what it staged). */
export function routingTableStaged(): RoutingTable { return staged; }

/**
 * Makes the staged table the active one, when it is complete and newer than the active one: the version it carries
 * must be `version` (the one every board has staged). False, nothing changed, otherwise.
 */
export function routingTableActivate(version: u32): bool {
  if (!staged.present || staged.version != version || !staged.complete()) return false;
  if (active.present && version <= active.version) return false;
  active.copyFrom(staged);
  staged.clear();
  return true;
}

/** Forgets the cluster: this board is a single board again (tests). */
export function routingTableClear(): void {
  active.clear();
  staged.clear();
}
