// A partitioned volume (docs/cluster.md, "Proxy I/O"): a volume of this board whose pages the routing table spreads
// over the boards of the cluster. Every board presents it whole; a page this board owns is served by its own member
// disk, a page board b owns by board b's RTA (processor REMOTE_PROCESSOR_BASE + b), at the same LBA of the disk with
// the same number there: the boards of a cluster present a partitioned volume from the same board file's disk volume.
import { CLUSTER_NONE, routingTable, routingTableCaughtUp } from "../cluster/routing_table";
import { REMOTE_PROCESSOR_BASE } from "../fabric/limits";
import { Extent } from "./extent";

/**
 * Narrows extent `e` (volume `volume`'s blocks from `lba`, as diskMap made it) to the page holding `lba`, and points it
 * at the page's owner. Nothing changes for a volume that is not partitioned, or on a board not in a cluster. False when
 * the page's owner is not known yet: this board started and has not caught up with the cluster's table
 * (cluster/table_sync.ts).
 */
export function partitionMap(volume: u32, lba: u64, e: Extent): bool {
  const table = routingTable();
  if (!table.present) return true;
  const slot = table.volumeSlot(volume);
  if (slot == CLUSTER_NONE) return true;
  if (!routingTableCaughtUp()) return false;
  const pageBlocks = <u64>table.pageBlocks(slot);
  const pageEnd = (lba / pageBlocks + 1) * pageBlocks;
  if (lba + e.blocks > pageEnd) e.blocks = pageEnd - lba;
  const owner = table.ownerOfLba(slot, lba);
  assert(owner < table.boardCount, "partitionMap: a complete table owns every page");
  if (owner != table.thisBoard) e.processor = REMOTE_PROCESSOR_BASE + owner;
  return true;
}

/** The other boards holding pages of `volume` (bit b: board b), 0 when it is not partitioned. For a flush. */
export function partitionRemoteBoards(volume: u32): u32 {
  const table = routingTable();
  if (!table.present) return 0;
  const slot = table.volumeSlot(volume);
  if (slot == CLUSTER_NONE) return 0;
  let boards: u32 = 0;
  for (let b: u32 = 0; b < table.boardCount; b++) if (b != table.thisBoard && table.pagesHeld(slot, b) > 0) boards |= 1 << b;
  return boards;
}
