// The requests of one DDM waiting for their controller, in arrival order: a list threaded through the requests'
// queueNext, so it holds every slot of its pool without memory of its own. A request re-issued after a retryable
// error goes back to the front, ahead of newer ones.
import { BlockRequest, REQUEST_NONE, RequestState } from "./block_request";
import { RequestPool } from "./request_pool";

export class RequestQueue<T extends BlockRequest> {
  head: u32 = REQUEST_NONE; // the oldest: the next to go out
  private tail: u32 = REQUEST_NONE;
  count: u32 = 0;

  constructor(private readonly pool: RequestPool<T>) {}

  pushBack(r: u32): void {
    const req = this.pool.at(r);
    assert(req.state != RequestState.Queued, "request queue: request queued twice");
    req.state = RequestState.Queued;
    req.queueNext = REQUEST_NONE;
    if (this.tail == REQUEST_NONE) this.head = r;
    else this.pool.at(this.tail).queueNext = r;
    this.tail = r;
    this.count += 1;
  }

  pushFront(r: u32): void {
    const req = this.pool.at(r);
    req.state = RequestState.Queued;
    req.queueNext = this.head;
    this.head = r;
    if (this.tail == REQUEST_NONE) this.tail = r;
    this.count += 1;
  }

  /** Removes and returns the oldest; the queue must not be empty. */
  popFront(): u32 {
    const r = this.head;
    assert(r != REQUEST_NONE, "request queue: empty");
    assert(this.count > 0, "request queue: count disagrees with its list");
    this.head = this.pool.at(r).queueNext;
    if (this.head == REQUEST_NONE) this.tail = REQUEST_NONE;
    this.count -= 1;
    return r;
  }
}
