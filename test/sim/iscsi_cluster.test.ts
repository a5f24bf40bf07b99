// A board with a cluster section (docs/cluster.md) as an initiator sees it, on the board clock over the NIC's loopback:
// the firmware loads the routing table from the configuration ROM at boot.
import { describe, expect, it } from "vitest";
import { bootIscsiBoard } from "../support/iscsi_board.ts";

// The test board is "a" (id 1); "b" (id 2) and "c" (id 3) are other boards. sp1-disk0 (16 MiB, 32768 blocks) is
// partitioned in 8 pages of 4096 blocks.
const boards = [
  { id: 1, name: "a", portals: [{ host: "127.0.0.1", port: 3260 }] },
  { id: 2, name: "b", portals: [{ host: "127.0.0.1", port: 3261 }] },
  { id: 3, name: "c", portals: [{ host: "127.0.0.1", port: 3262 }, { host: "10.0.0.3", port: 3260 }] },
];
function cluster(owners: unknown, extra: Record<string, unknown> = {}): unknown {
  return { version: 5, board: "a", boards, volumes: [{ volume: "sp1-disk0", pageBlocks: 4096, pageCount: 8, owners }], ...extra };
}

describe("iSCSI on a board of a cluster", () => {
  it("loads the routing table at boot and says so", () => {
    const env = bootIscsiBoard({ cluster: cluster({ roundRobinFrom: "b" }) });
    expect(env.console.filter((l) => l.includes("cluster:"))).toEqual(["host 1: cluster: routing table version 5, 3 boards, 1 partitioned volumes"]);
  });

  it("a single board has no routing table and says nothing of one", () => {
    const env = bootIscsiBoard();
    expect(env.console.filter((l) => l.includes("cluster:"))).toEqual([]);
  });
});
