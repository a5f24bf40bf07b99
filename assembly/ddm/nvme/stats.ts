// What one NVMe controller has done, for the stats task, inventory and the tests. Counters only ever go up.

export class NvmeStats {
  requests: u64 = 0; // BlockIo messages received
  completed: u64 = 0; // BlockIoDone messages sent, whatever their status
  errors: u64 = 0; // of those, the ones not Ok
  submitted: u64 = 0; // I/O commands put on the submission queue
  resets: u32 = 0; // controller resets after a fault (the first bring-up's not counted)
  timeouts: u32 = 0; // requests failed with Timeout
  deviceErrors: u32 = 0; // protocol violations (unknown CID, impossible phase, lying SQ head, CSTS.CFS): each reset the controller
  spuriousInterrupts: u32 = 0; // interrupts with no new completion, or while the queues were down
  unknownCompletions: u32 = 0; // completions naming a command not in flight
  busyRejects: u32 = 0; // requests answered Busy because every request slot was taken
  aborts: u32 = 0; // ABORT commands sent for timed-out commands
  inFlightMax: u32 = 0; // high-water mark of I/O commands in flight
  adminCommands: u64 = 0; // admin commands submitted
  prpLists: u64 = 0; // I/O commands whose PRP2 pointed at a PRP list
  sglCommands: u64 = 0; // I/O commands whose data went as an SGL (their segments did not fit PRP rules)
}

// Indexes for the tests' single accessor (test/firmware/ddm_probe.ts), in the order of the fields above.
export enum NvmeStat {
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
  Aborts = 10,
  InFlightMax = 11,
  AdminCommands = 12,
  PrpLists = 13,
  SglCommands = 14,
}

export function nvmeStatGet(stats: NvmeStats, which: u32): u64 {
  switch (<i32>which) {
    case NvmeStat.Requests: return stats.requests;
    case NvmeStat.Completed: return stats.completed;
    case NvmeStat.Errors: return stats.errors;
    case NvmeStat.Submitted: return stats.submitted;
    case NvmeStat.Resets: return <u64>stats.resets;
    case NvmeStat.Timeouts: return <u64>stats.timeouts;
    case NvmeStat.DeviceErrors: return <u64>stats.deviceErrors;
    case NvmeStat.SpuriousInterrupts: return <u64>stats.spuriousInterrupts;
    case NvmeStat.UnknownCompletions: return <u64>stats.unknownCompletions;
    case NvmeStat.BusyRejects: return <u64>stats.busyRejects;
    case NvmeStat.Aborts: return <u64>stats.aborts;
    case NvmeStat.InFlightMax: return <u64>stats.inFlightMax;
    case NvmeStat.AdminCommands: return stats.adminCommands;
    case NvmeStat.PrpLists: return stats.prpLists;
    case NvmeStat.SglCommands: return stats.sglCommands;
    default: assert(false, "nvme: unknown stat"); return 0;
  }
}
