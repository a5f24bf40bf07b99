// Login redirect on a board of a cluster (docs/cluster.md, "Login redirect"; RFC 7143, Login Response, Status-Class
// 1 "Redirection": Target Moved Temporarily, 0101h, with the TargetAddress to log in to instead). When the routing
// table allows redirects, a new normal session's login is sent to the board that holds the most pages of the
// target's partitioned volumes, if that board holds strictly more of them than this one: most of the session's I/O
// then needs no proxy. Ties stay here (no board is sent around in a circle: every board holds the same table, so the
// board named is one that keeps the login). A target without partitioned volumes, a discovery session and a
// connection joining a session (TSIH ≠ 0, its session lives here) are never redirected.
import { CLUSTER_BOARDS_MAX, CLUSTER_NONE, routingTable } from "../../cluster/routing_table";
import { SCSI_LUN_WRITE_PROTECTED } from "../../scsi/interface";
import { TargetConfig } from "./config";

const held = new StaticArray<u32>(CLUSTER_BOARDS_MAX); // pages per board index, for the login being decided

/** The board index a new session's login to `t` is redirected to, or CLUSTER_NONE (it stays on this board). */
export function redirectBoard(t: TargetConfig): u32 {
  const table = routingTable();
  if (!table.present || !table.redirect) return CLUSTER_NONE;
  for (let b: u32 = 0; b < CLUSTER_BOARDS_MAX; b++) unchecked(held[b] = 0);
  let partitioned = false;
  for (let i: u32 = 0; i < t.lunCount; i++) {
    const slot = table.volumeSlot(unchecked(t.volumes[i]) & ~SCSI_LUN_WRITE_PROTECTED);
    if (slot == CLUSTER_NONE) continue;
    partitioned = true;
    const count = table.pageCount(slot);
    for (let p: u32 = 0; p < count; p++) {
      const b = table.owner(slot, p);
      assert(b < table.boardCount, "redirectBoard: a complete table's owner");
      unchecked(held[b] += 1);
    }
  }
  if (!partitioned) return CLUSTER_NONE;
  let best = table.thisBoard;
  for (let b: u32 = 0; b < table.boardCount; b++) {
    if (table.portalCount(b) > 0 && unchecked(held[b]) > unchecked(held[best])) best = b;
  }
  return best == table.thisBoard ? CLUSTER_NONE : best;
}
