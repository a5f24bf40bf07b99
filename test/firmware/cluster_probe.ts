// The test build's handle on the routing table (assembly/cluster/routing_table.ts): a newer version staged from the
// active one with some owners changed, then activated, as the fabric's agreement protocol will do between boards.
// In the test build pages may change owner (the protocol's tests move them; their disks hold nothing the tests read):
// the release firmware refuses such a change, as nothing moves a page's data (cluster/table_sync.ts, pagesMayMove).
import { agentFabric } from "../../assembly/agents";
import { tableSyncPagesMayMoveSet } from "../../assembly/cluster/table_sync";
import { routingTable, routingTableActivate, routingTableCaughtUp, routingTableStage, routingTableStaged } from "../../assembly/cluster/routing_table";

tableSyncPagesMayMoveSet(true);

/** Stages a copy of the active table carrying `version`; false on a single board (no tables reserved). */
export function testClusterStage(version: u32): bool {
  if (!routingTable().present) return false;
  const staged = routingTableStage();
  staged.copyFrom(routingTable());
  staged.version = version;
  return true;
}

/** In the staged table: page `page` of partitioned volume slot `slot` is owned by board index `board`. */
export function testClusterStageOwner(slot: u32, page: u32, board: u32): void { routingTableStaged().ownerSet(slot, page, board); }

/** routingTableActivate(version): true when the staged table became the active one. */
export function testClusterActivate(version: u32): bool { return routingTableActivate(version); }

export function testClusterVersion(): u32 { return routingTable().version; }

/** This board proposes a routing-table change over the fabric (assembly/cluster/table_sync.ts); false when refused here. */
export function testClusterPropose(slot: u32, first: u32, count: u32, fromOwner: u32, toOwner: u32): bool {
  const fabric = agentFabric();
  return fabric != null && fabric.proposeTable(slot, first, count, fromOwner, toOwner);
}

/** The active table's owner (board index) of page `page` of partitioned volume slot `slot`. */
export function testClusterOwner(slot: u32, page: u32): u32 { return routingTable().owner(slot, page); }

/** routingTableCaughtUp(): false while this board holds back its partitioned volumes (NOT READY) to learn the table. */
export function testClusterCaughtUp(): bool { return routingTableCaughtUp(); }

/** Whether a routing-table change may give a page another owner on this board (the release firmware: never). */
export function testClusterPagesMayMove(allow: bool): void { tableSyncPagesMayMoveSet(allow); }
