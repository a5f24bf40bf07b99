// The test build's handle on the routing table (assembly/cluster/routing_table.ts): a newer version staged from the
// active one with some owners changed, then activated, as the fabric's agreement protocol will do between boards.
import { routingTable, routingTableActivate, routingTableStage, routingTableStaged } from "../../assembly/cluster/routing_table";

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
