// A task: a name, a fixed priority, a run budget, and an inbox. run() handles at most a batch and never waits.
import { INBOX_DEPTH_DEFAULT, PRIORITY_LOWEST, TASK_BUDGET_NS_DEFAULT } from "../config";
import { Msg } from "./msg";
import { MsgQueue } from "./queue";

export enum RunResult {
  Idle = 0, // nothing left to do until a message arrives or the task is woken
  Busy = 1, // did work; run again
  Waiting = 2, // blocked on a resource (an empty pool): skip it, even with messages queued, until it is woken
}

export abstract class Task {
  index: u32 = 0; // set by the scheduler when the task is added
  readonly inbox: MsgQueue;
  readonly scratch: Msg = new Msg(); // the record run() pops into: no per-message allocation
  waiting: bool = false; // returned Waiting and has not been woken since
  overrunCount: u32 = 0; // dispatches that exceeded budgetNs
  dispatchCount: u64 = 0;

  constructor(
    readonly name: string,
    readonly priority: u32,
    inboxDepth: u32 = INBOX_DEPTH_DEFAULT,
    readonly budgetNs: u64 = TASK_BUDGET_NS_DEFAULT,
  ) {
    assert(priority <= PRIORITY_LOWEST, "task priority out of range");
    assert(name.length <= 15, "task names fit the panic record");
    this.inbox = new MsgQueue(inboxDepth);
  }

  abstract run(): RunResult;
}
