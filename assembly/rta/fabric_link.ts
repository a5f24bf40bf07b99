// A link to an agent on another board of the cluster, across the fabric (docs/cluster.md, "Proxy I/O"). The CTA sends
// requests to board b's RTA through it, and this board's RTA its replies to board b's CTA: the frame is copied into a
// pool slot and handed to the fabric task, which SENDs it through the cluster port; frames from board b arrive as
// Frame messages the fabric task posts (it names the sender as processor REMOTE_PROCESSOR_BASE + b). A sender cannot
// tell it from a messaging unit's link.
//
// The data of a request from board b lies in board b's buffers: this board's controllers reach them through the
// cluster port's window slot the fabric task opened for b when b's hello arrived (dataWindowBase), and only inside the
// region b registered (dataFloor .. dataLimit). Until then the link is not ready and the RTA answers NotStarted.
// A port without a window (revision 2, a fabric carried over TCP) opens the link with openRemote instead: the RTA then
// moves the data by RDMA through this board's own buffers (rta/bounce.ts).
import { Msg, MsgKind } from "../kernel/msg";
import { Link } from "./links";

export class FabricLink extends Link {
  private readonly out: Msg = new Msg();
  private window: u64 = 0;
  private floor: u64 = 0;
  private limit: u64 = 0; // 0: no window yet
  private rdma: bool = false; // the peer's buffers are reached by RDMA through this board's own (rta/bounce.ts)

  /** `board`: the peer's index in the routing table; `fabricTask`: who owns the cluster port. */
  constructor(peer: u32, readonly board: u32, private readonly fabricTask: u32, private readonly selfTask: u32) { super(peer); }

  send(frame: usize): bool {
    return this.postCopy(frame, this.fabricTask, this.out, MsgKind.FabricFrameOut, this.selfTask, this.board);
  }

  /** The fabric task: board `board`'s buffers [floor, limit) are at `window + address` on this board's bus. */
  openWindow(window: u64, floor: u64, limit: u64): void {
    assert(limit > floor, "fabric link: an empty window");
    this.window = window;
    this.floor = floor;
    this.limit = limit;
  }

  /** The fabric task, on a port without a window: board `board`'s buffers [floor, limit) are reached by RDMA only. */
  openRemote(floor: u64, limit: u64): void {
    assert(limit > floor, "fabric link: an empty region");
    this.window = 0;
    this.floor = floor;
    this.limit = limit;
    this.rdma = true;
  }

  isRemote(): bool { return true; }
  bounces(): bool { return this.rdma; }
  ready(): bool { return this.limit != 0; }
  dataWindowBase(): u64 { return this.window; }
  dataFloor(): u64 { return this.floor; }
  dataLimit(): u64 { return this.limit; }
}
