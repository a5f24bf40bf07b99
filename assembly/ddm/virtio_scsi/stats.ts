// What one virtio-scsi controller has done, for the stats task and the tests. Counters only ever go up.

export class VscsiStats {
  requests: u64 = 0; // BlockIo messages received
  completed: u64 = 0; // BlockIoDone messages sent, whatever their status
  errors: u64 = 0; // of those, the ones not Ok
  submitted: u64 = 0; // chains made available to the device (discovery commands and retries included)
  resets: u32 = 0; // controller resets after a fault (the first bring-up's reset not counted)
  timeouts: u32 = 0; // requests failed with Timeout
  deviceErrors: u32 = 0; // protocol violations: each one reset the controller
  spuriousInterrupts: u32 = 0; // interrupts with nothing new in the used ring, or while the queue was down
  unknownCompletions: u32 = 0; // used elements naming a chain not in flight: ignored
  busyRejects: u32 = 0; // requests answered Busy because every request slot was taken
  retries: u32 = 0; // commands issued again after a UNIT ATTENTION
  inFlightMax: u32 = 0; // high-water mark of chains on the ring
}

// Indexes for the tests' single accessor (test/firmware/ddm_probe.ts), in the order of the fields above.
export enum VscsiStat {
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
  Retries = 10,
  InFlightMax = 11,
}

export function vscsiStatGet(stats: VscsiStats, which: u32): u64 {
  switch (<i32>which) {
    case VscsiStat.Requests: return stats.requests;
    case VscsiStat.Completed: return stats.completed;
    case VscsiStat.Errors: return stats.errors;
    case VscsiStat.Submitted: return stats.submitted;
    case VscsiStat.Resets: return <u64>stats.resets;
    case VscsiStat.Timeouts: return <u64>stats.timeouts;
    case VscsiStat.DeviceErrors: return <u64>stats.deviceErrors;
    case VscsiStat.SpuriousInterrupts: return <u64>stats.spuriousInterrupts;
    case VscsiStat.UnknownCompletions: return <u64>stats.unknownCompletions;
    case VscsiStat.BusyRejects: return <u64>stats.busyRejects;
    case VscsiStat.Retries: return <u64>stats.retries;
    case VscsiStat.InFlightMax: return <u64>stats.inFlightMax;
    default: assert(false, "vscsi: unknown stat"); return 0;
  }
}
