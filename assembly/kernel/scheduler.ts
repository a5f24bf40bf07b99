// The run-to-completion scheduler: fixed-priority tasks, interrupt latching, timers, and the watchdog.
// run(budget) delivers latched interrupts and due timers as messages, then dispatches the highest-priority ready task
// until none is ready or the budget of board time is spent. No task calls another: results travel as messages.
import { TASK_INDEX_NONE } from "../board/boot_info";
import { clockNowNs } from "../board/wasi";
import { TASKS_MAX, VECTORS_MAX, WATCHDOG_FATAL_NS } from "../config";
import { line } from "./console";
import { Msg, MsgKind } from "./msg";
import { panic, PanicCode, panicSetTask } from "./panic";
import { readyHas, readyTake, wakeTask } from "./ready";
import { RunResult, Task } from "./task";
import { DEADLINE_NONE, PERIOD_PARKED, TIMER_NONE, TimerTable } from "./timer";

/** What run() answers the board: 0 busy, DEADLINE_NONE (-1 as i64) idle, else the next deadline in ns. */
export const RUN_BUSY: u64 = 0;
export const RUN_IDLE: u64 = DEADLINE_NONE;

const VECTOR_UNROUTED: u8 = 0xff;

const tasks = new StaticArray<Task | null>(TASKS_MAX);
let taskCount: u32 = 0;
const timers = new TimerTable();
const vectorTask = new StaticArray<u8>(VECTORS_MAX); // task index per vector, VECTOR_UNROUTED if none
let irqLatchedLow: u64 = 0; // vectors 0..63 latched by irq(), delivered by run()
let irqSpuriousCount: u32 = 0;
let watchdogReportCount: u32 = 0;
const scratch = new Msg();

export function schedulerInit(): void {
  for (let v: u32 = 0; v < VECTORS_MAX; v++) unchecked(vectorTask[v] = VECTOR_UNROUTED);
}

/** Adds a task at boot; returns its index. Priorities: 0 highest. */
export function taskAdd(task: Task): u32 {
  assert(taskCount < TASKS_MAX, "too many tasks: raise TASKS_MAX");
  const index = taskCount;
  task.index = index;
  unchecked(tasks[index] = task);
  taskCount += 1;
  return index;
}

export function taskAt(index: u32): Task {
  assert(index < taskCount, "task index out of range");
  return unchecked(tasks[index])!;
}

export function taskCountGet(): u32 { return taskCount; }

/** Copies `msg` into task `target`'s inbox; false when the inbox is full (the sender keeps it: backpressure). */
export function post(target: u32, msg: Msg): bool {
  return taskAt(target).inbox.push(msg);
}

/** Routes interrupt `vector` to `task` as Irq messages. Boot only. */
export function irqRoute(vector: u32, task: u32): void {
  assert(vector < VECTORS_MAX, "vector out of range");
  assert(task < taskCount, "irq routed to an unknown task");
  unchecked(vectorTask[vector] = <u8>task);
}

/** The board's irq(vector): latched here, delivered as a message at the start of the next run. */
export function irqLatch(vector: u32): void {
  if (vector >= VECTORS_MAX) {
    irqSpuriousCount += 1;
    return;
  }
  irqLatchedLow |= (<u64>1) << vector;
}

export function irqSpurious(): u32 { return irqSpuriousCount; }

/** Arms a timer that posts Timer{a: id, b: tag} to `task`; TIMER_NONE when the table is full. */
export function timerStart(task: u32, delayNs: u64, periodNs: u64, tag: u32): u32 {
  assert(task < taskCount, "timer for an unknown task");
  return timers.start(task, clockNowNs(), delayNs, periodNs, tag);
}

/**
 * Arms a parked timer for `task`: it fires (Timer{a: id, b: tag}) only once timerWakeBy gives it a deadline, and
 * parks again after. For tasks that sweep their tables: they ask for the sweep when something falls due instead of
 * waking every period, so an idle board sleeps until its next real deadline. TIMER_NONE when the table is full.
 */
export function timerStartParked(task: u32, tag: u32): u32 {
  assert(task < taskCount, "timer for an unknown task");
  return timers.start(task, 0, DEADLINE_NONE, PERIOD_PARKED, tag);
}

/** Fires armed timer `id` at `atNs` at the latest: lowers its deadline when `atNs` is earlier. */
export function timerWakeBy(id: u32, atNs: u64): void { timers.wakeBy(id, atNs); }

export function timerCancel(id: u32): bool { return timers.cancel(id); }

export function timersArmed(): u32 { return timers.armedCount; }

/** Dispatches ready tasks for up to `budgetNs` of board time; answers RUN_BUSY, RUN_IDLE or the next deadline. */
export function schedulerRun(budgetNs: u64): u64 {
  const startNs = clockNowNs();
  let nowNs = startNs;
  // Bound: every dispatch costs board time (the clock reads), so the budget ends the loop. The loop ends with no
  // task ready, or with the budget spent and perhaps one ready (then the host must call again at once).
  while (true) {
    deliverInterrupts();
    deliverTimers(nowNs);
    const task = readyTaskHighest();
    if (task == null) break;
    nowNs = dispatch(task, nowNs);
    if (nowNs - startNs >= budgetNs) {
      if (readyTaskHighest() != null) return RUN_BUSY;
      break;
    }
  }
  const deadline = timers.nextDeadlineNs();
  return deadline <= nowNs ? RUN_BUSY : deadline;
}

// `beforeNs`: the last clock reading, at the start of the turn or the end of the previous dispatch. Nothing between
// then and now takes board time (delivering interrupts and timers only posts messages), so a fresh reading would
// give the same time and cost a clock read per dispatch (they were most of the firmware's reads).
function dispatch(task: Task, beforeNs: u64): u64 {
  readyTake(task.index);
  task.waiting = false;
  panicSetTask(task.index, task.name);
  const result = task.run();
  const afterNs = clockNowNs();
  panicSetTask(TASK_INDEX_NONE, "");
  task.dispatchCount += 1;
  const elapsedNs = afterNs - beforeNs;
  if (elapsedNs > task.budgetNs) watchdogOverrun(task, elapsedNs);
  switch (result) {
    case RunResult.Busy: wakeTask(task.index); break;
    case RunResult.Idle: break;
    case RunResult.Waiting: task.waiting = true; break;
    default: assert(false, "task returned an unknown RunResult");
  }
  return afterNs;
}

function watchdogOverrun(task: Task, elapsedNs: u64): void {
  task.overrunCount += 1;
  watchdogReportCount += 1;
  if (elapsedNs > WATCHDOG_FATAL_NS) {
    panicSetTask(task.index, task.name);
    panic(PanicCode.Watchdog, "watchdog: task did not yield");
  }
  // Report the first overrun of a task and then every 2^k-th, so a chronic offender cannot flood the console.
  const count = task.overrunCount;
  if ((count & (count - 1)) == 0) {
    line().s("watchdog: task ").s(task.name).s(" ran ").u64(elapsedNs).s(" ns, budget ")
      .u64(task.budgetNs).s(" ns (overrun ").u32(count).s(")").err();
  }
}

export function watchdogReports(): u32 { return watchdogReportCount; }

function readyTaskHighest(): Task | null {
  let best: Task | null = null;
  for (let i: u32 = 0; i < taskCount; i++) {
    const task = unchecked(tasks[i])!;
    // A waiting task runs only when woken; its queued messages wait with it.
    if (!readyHas(i) && (task.waiting || task.inbox.count == 0)) continue;
    if (best == null || task.priority < best.priority) best = task;
  }
  return best;
}

function deliverInterrupts(): void {
  let pending = irqLatchedLow;
  while (pending != 0) {
    const vector = <u32>ctz(pending);
    pending &= pending - 1;
    const target = <u32>unchecked(vectorTask[vector]);
    if (target == VECTOR_UNROUTED) {
      irqSpuriousCount += 1;
      irqLatchedLow &= ~((<u64>1) << vector);
      continue;
    }
    // A full inbox keeps the vector latched: the interrupt is delivered once the task drains it.
    if (post(target, scratch.set(MsgKind.Irq, TASK_INDEX_NONE & 0xffff, vector, 0))) {
      irqLatchedLow &= ~((<u64>1) << vector);
    }
  }
}

function deliverTimers(nowNs: u64): void {
  let id = timers.due(nowNs, 0);
  while (id != TIMER_NONE) {
    if (post(timers.taskOf(id), scratch.set(MsgKind.Timer, TASK_INDEX_NONE & 0xffff, id, timers.tagOf(id)))) {
      timers.fired(id, nowNs);
    }
    id = timers.due(nowNs, id + 1);
  }
}
