// Which tasks want to run whether or not a message is queued: set by pool releases and by tasks that answered Busy.
// A module of its own so that pools can wake tasks without importing the scheduler (imports point down).

let readyMask: u32 = 0;

/** Marks every task in `mask` (bit i = task index i) ready to run. */
export function wakeMask(mask: u32): void { readyMask |= mask; }

export function wakeTask(taskIndex: u32): void {
  assert(taskIndex < 32);
  readyMask |= (<u32>1) << taskIndex;
}

/** True if task `taskIndex` was woken; clears the mark. */
export function readyTake(taskIndex: u32): bool {
  const bit = (<u32>1) << taskIndex;
  const was = (readyMask & bit) != 0;
  readyMask &= ~bit;
  return was;
}

export function readyAny(): bool { return readyMask != 0; }

export function readyHas(taskIndex: u32): bool { return (readyMask & ((<u32>1) << taskIndex)) != 0; }
