// What one DDM controller has done with BlockIo, whatever its kind, for the stats task, inventory and the tests.
// Counters only ever go up. A DDM's own stats extend these (virtio_scsi/stats.ts, nvme/stats.ts).

export class BlockStats {
  requests: u64 = 0; // BlockIo messages received
  completed: u64 = 0; // BlockIoDone messages sent, whatever their status
  errors: u64 = 0; // of those, the ones not Ok
  submitted: u64 = 0; // commands given to the controller (a DDM's own commands and retries included)
  resets: u32 = 0; // controller resets after a fault (the first bring-up's not counted)
  timeouts: u32 = 0; // requests failed with Timeout
  deviceErrors: u32 = 0; // protocol violations: each one reset the controller
  spuriousInterrupts: u32 = 0; // interrupts with no new completion, or while the queues were down
  unknownCompletions: u32 = 0; // completions naming a request not in flight: ignored
  busyRejects: u32 = 0; // requests answered Busy because every request slot was taken
  inFlightMax: u32 = 0; // high-water mark of commands in flight
}

// Indexes for the tests' single accessors (test/firmware/ddm_probe.ts), in the order of the fields above; a DDM's own
// counters follow from BLOCK_STATS_COUNT.
export enum BlockStat {
  Requests = 0,
  Completed = 1,
  Errors = 2,
  Submitted = 3,
  Resets = 4,
  Timeouts = 5,
  DeviceErrors = 6,
  SpuriousInterrupts = 7,
  UnknownCompletions = 8,
  BusyRejects = 9,
  InFlightMax = 10,
}
export const BLOCK_STATS_COUNT: u32 = 11;

/** Counter `which` (a BlockStat, below BLOCK_STATS_COUNT). */
export function blockStatGet(stats: BlockStats, which: u32): u64 {
  switch (<i32>which) {
    case BlockStat.Requests: return stats.requests;
    case BlockStat.Completed: return stats.completed;
    case BlockStat.Errors: return stats.errors;
    case BlockStat.Submitted: return stats.submitted;
    case BlockStat.Resets: return <u64>stats.resets;
    case BlockStat.Timeouts: return <u64>stats.timeouts;
    case BlockStat.DeviceErrors: return <u64>stats.deviceErrors;
    case BlockStat.SpuriousInterrupts: return <u64>stats.spuriousInterrupts;
    case BlockStat.UnknownCompletions: return <u64>stats.unknownCompletions;
    case BlockStat.BusyRejects: return <u64>stats.busyRejects;
    case BlockStat.InFlightMax: return <u64>stats.inFlightMax;
    default: assert(false, "ddm: unknown stat"); return 0;
  }
}
