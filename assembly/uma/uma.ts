// The unit management agent, on the host processor. At boot it takes the PCI enumeration, finds the storage
// processors (iop-bridge functions) and sets up a messaging-unit link to each; once running, it starts the RTA on
// every processor (its own included) with a StartAgent frame, collects their device profiles into the hardware
// resource table, turns each disk into a volume for the CTA, and advertises the table on the console as
// `inventory …` lines (what `wasm-iop inventory` reads).
import {
  bootInfoMsiAddress, bootInfoNamePtr, bootInfoRamBytes, bootInfoSysctlBase, PROCESSOR_NAME_BYTES,
} from "../board/boot_info";
import { sysctlConfirm, sysctlOnTrial } from "../board/sysctl";
import { busRead32 } from "../board/bus";
import {
  agentAddress, AgentKind, FRAME_BYTES, FrameFunction, FrameStatus, frameInit, frameSetBytes, frameSource, frameStatus,
  agentProcessor,
} from "../board/frame";
import {
  profileDisk, profileDiskBlockCount, profileDiskBlockSizeBytes, profileDiskController, profileDiskCount, profileDiskLun,
  profileDiskPhysicalExponent, profileName,
} from "../board/profile";
import { IOP_BRIDGE_BAR_MU, IOP_BRIDGE_BAR_WINDOW, IOP_BRIDGE_CLASS, MU_HOST_OMR0, MU_HOST_VECTORS, MU_READY } from "../board/mu";
import { msixEnable, pciFunctionAt, pciFunctionCount, PciFunctionInfo, PCI_BARS } from "../board/pci";
import { clockNowNs } from "../board/wasi";
import { CtaTask, PROCESSORS_MAX } from "../cta/cta";
import { DiskFinder, volumesAssemble } from "../volumes/config";
import { volumeInventoryLine } from "../volumes/report";
import { Member, volumesCount } from "../volumes/volume";
import { vectorAllocate } from "../kernel/vectors";
import { carve } from "../kernel/carve";
import { line } from "../kernel/console";
import { Msg, MsgKind } from "../kernel/msg";
import { irqRoute, post, timerCancel, timerStartParked, timerWakeBy } from "../kernel/scheduler";
import { RunResult, Task } from "../kernel/task";
import { TIMER_NONE } from "../kernel/timer";
import { frames, LocalLink, MuHostLink } from "../rta/links";
import { RtaTask } from "../rta/rta";

const UMA_PRIORITY: u32 = 4;
const POLL_PERIOD_NS: u64 = 1_000_000; // while a processor's messaging unit is not ready yet
const START_RETRY_NS: u64 = 50_000_000;
const DISCOVERY_DEADLINE_NS: u64 = 2_000_000_000; // a processor silent this long is reported missing

export enum ProcessorState {
  Absent = 0, // no such processor
  Booting = 1, // its messaging unit is not ready yet
  Starting = 2, // StartAgent sent, waiting for its profile
  Ready = 3, // profiled
  Missing = 4, // never answered
}

class ProcessorEntry {
  state: ProcessorState = ProcessorState.Absent;
  bridge: PciFunctionInfo | null = null; // null for the host itself
  link: MuHostLink | null = null;
  ramBytes: u64 = 0;
  lastStartNs: u64 = 0;
  readonly profile: usize = carve(FRAME_BYTES, 16); // the StartAgent reply, kept
}

export class UmaTask extends Task {
  private readonly processors: StaticArray<ProcessorEntry> = new StaticArray<ProcessorEntry>(PROCESSORS_MAX);
  private processorCount: u32 = 0;
  private readonly request: usize = carve(FRAME_BYTES, 16); // the StartAgent frame
  private startNs: u64 = 0;
  private timer: u32 = TIMER_NONE;
  private discovered: bool = false; // every processor answered or was given up
  ready: bool = false; // and the volumes are loaded and advertised
  ttsTask: u32 = 0xffff_ffff; // the transport to advertise the volumes to (none on a board without a NIC)
  private readonly advertise: Msg = new Msg();
  private readonly disks: ProfileDisks = new ProfileDisks(this.processors);

  constructor(private readonly bootInfo: usize, private readonly cta: CtaTask) {
    super("uma", UMA_PRIORITY, 16);
    for (let i: u32 = 0; i < PROCESSORS_MAX; i++) unchecked(this.processors[i] = new ProcessorEntry());
    // Processor 0 is this one: its RTA is reached through local links both ways.
    const host = unchecked(this.processors[0]);
    host.state = ProcessorState.Starting;
    host.ramBytes = bootInfoRamBytes(bootInfo);
    this.processorCount = 1;
  }

  /** Boot: finds the iop-bridges and builds their links; wires the host's own RTA to the CTA. Call after taskAdd. */
  discover(rta: RtaTask): void {
    this.cta.umaTask = this.index;
    unchecked(this.cta.links[0] = new LocalLink(0, rta.index, this.cta.index));
    rta.link = new LocalLink(0, this.cta.index, rta.index);
    const count = pciFunctionCount();
    for (let i: u32 = 0; i < count && this.processorCount < PROCESSORS_MAX; i++) {
      const f = pciFunctionAt(i);
      if (f.classCode != IOP_BRIDGE_CLASS || f.claimed) continue;
      const muBase = unchecked(f.barAddress[IOP_BRIDGE_BAR_MU]);
      const windowBase = unchecked(f.barAddress[IOP_BRIDGE_BAR_WINDOW]);
      if (muBase == 0 || windowBase == 0) {
        line().s("uma: iop-bridge in slot ").u32(f.device).s(" has unplaced BARs; skipped").err();
        continue;
      }
      f.claimed = true;
      const vector = vectorAllocate(MU_HOST_VECTORS);
      if (!msixEnable(f, bootInfoMsiAddress(this.bootInfo), vector, MU_HOST_VECTORS)) {
        line().s("uma: iop-bridge in slot ").u32(f.device).s(": MSI-X setup failed; skipped").err();
        continue;
      }
      irqRoute(vector, this.cta.index); // outbound post: replies for the CTA
      irqRoute(vector + 1, this.cta.index); // doorbells and messages
      const entry = unchecked(this.processors[this.processorCount]);
      entry.state = ProcessorState.Booting;
      entry.bridge = f;
      entry.ramBytes = unchecked(f.barSize[IOP_BRIDGE_BAR_WINDOW]);
      const link = new MuHostLink(this.processorCount, muBase, windowBase, entry.ramBytes);
      entry.link = link;
      unchecked(this.cta.links[this.processorCount] = link);
      this.processorCount += 1;
    }
  }

  start(): void {
    this.startNs = clockNowNs();
    this.timer = timerStartParked(this.index, 0);
    assert(this.timer != TIMER_NONE, "no timer for the UMA");
    timerWakeBy(this.timer, this.startNs);
  }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < 8 && this.inbox.pop(this.scratch)) {
      handled += 1;
      switch (<i32>this.scratch.kind) {
        case MsgKind.Timer: this.poll(); break;
        case MsgKind.VolumesLoaded: this.volumesLoaded(); break;
        case MsgKind.Frame: {
          this.onProfile(frames().address(this.scratch.a));
          frames().release(this.scratch.a);
          this.poll(); // the last profile ends discovery now, not at the next wake-up
          break;
        }
        default: assert(false, "uma: unexpected message kind");
      }
    }
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  // Brings each processor one step further: ready unit → StartAgent (repeated until profiled) → done. Then sets the
  // timer for the next step that needs it: in POLL_PERIOD_NS while a messaging unit is not ready (only a register
  // says so), else the next StartAgent resend or the discovery deadline (a profile arrives as a message and polls).
  private poll(): void {
    if (this.discovered) return;
    const nowNs = clockNowNs();
    let pending: u32 = 0;
    let wakeNs = this.startNs + DISCOVERY_DEADLINE_NS + 1;
    for (let i: u32 = 0; i < this.processorCount; i++) {
      const entry = unchecked(this.processors[i]);
      if (entry.state == ProcessorState.Booting && busRead32(unchecked(entry.bridge!.barAddress[IOP_BRIDGE_BAR_MU]) + MU_HOST_OMR0) == MU_READY) {
        entry.link!.start();
        entry.state = ProcessorState.Starting;
      }
      if (entry.state == ProcessorState.Starting && (entry.lastStartNs == 0 || nowNs - entry.lastStartNs >= START_RETRY_NS)) {
        this.sendStart(i);
        entry.lastStartNs = nowNs;
      }
      if (entry.state == ProcessorState.Booting || entry.state == ProcessorState.Starting) {
        if (nowNs - this.startNs > DISCOVERY_DEADLINE_NS) {
          entry.state = ProcessorState.Missing;
          line().s("uma: processor ").u32(i).s(" did not answer; continuing without it").err();
        } else {
          pending += 1;
          if (entry.state == ProcessorState.Booting) wakeNs = min(wakeNs, nowNs + POLL_PERIOD_NS);
          else wakeNs = min(wakeNs, entry.lastStartNs + START_RETRY_NS);
        }
      }
    }
    if (pending == 0) this.finishDiscovery();
    else timerWakeBy(this.timer, wakeNs);
  }

  private sendStart(processor: u32): void {
    frameInit(this.request, FrameFunction.StartAgent, agentAddress(0, AgentKind.Uma), agentAddress(processor, AgentKind.Rta), 0, processor);
    frameSetBytes(this.request, unchecked(this.processors[0]).ramBytes); // the CTA's segments all lie in our RAM
    unchecked(this.cta.links[processor])!.send(this.request); // refused: sent again at the next retry
  }

  private onProfile(f: usize): void {
    const processor = agentProcessor(frameSource(f));
    if (processor >= this.processorCount || frameStatus(f) != FrameStatus.Ok) return;
    const entry = unchecked(this.processors[processor]);
    if (entry.state != ProcessorState.Starting) return; // a duplicate
    memory.copy(entry.profile, f, FRAME_BYTES);
    entry.state = ProcessorState.Ready;
  }

  // Every processor answered or was given up: volumes for the CTA, and the table on the console.
  private finishDiscovery(): void {
    this.discovered = true;
    timerCancel(this.timer); // nothing left to poll
    let missing: u32 = 0;
    for (let i: u32 = 0; i < this.processorCount; i++) if (unchecked(this.processors[i]).state != ProcessorState.Ready) missing += 1;
    // The self-test an image on trial must pass before it confirms itself: every processor came up and answered.
    const sysctl = bootInfoSysctlBase(this.bootInfo);
    if (sysctlOnTrial(sysctl)) {
      if (missing == 0) {
        sysctlConfirm(sysctl);
        line().s("uma: self-test passed; image confirmed").out();
      } else {
        line().s("uma: self-test failed (").u32(missing).s(" processors missing); image not confirmed").err();
      }
    }
    this.printProcessorsAndPci();
    // Each profiled disk gets an inventory line; then the configured volumes are assembled from them.
    for (let i: u32 = 0; i < this.processorCount; i++) {
      const entry = unchecked(this.processors[i]);
      if (entry.state != ProcessorState.Ready) continue;
      const count = profileDiskCount(entry.profile);
      for (let d: u32 = 0; d < count; d++) {
        const disk = profileDisk(entry.profile, d);
        line().s("inventory disk processor=").u32(i).s(" index=").u32(d).s(" controller=").u32(profileDiskController(disk))
          .s(" lun=").u32(profileDiskLun(disk)).s(" blocks=").u64(profileDiskBlockCount(disk))
          .s(" blockSize=").u32(profileDiskBlockSizeBytes(disk)).out();
      }
    }
    this.disks.count = this.processorCount;
    volumesAssemble(this.disks);
    // The CTA reads the volumes' metadata (RAID superblocks) before they are advertised: VolumesLoaded.
    assert(post(this.cta.index, this.advertise.set(MsgKind.VolumesLoad, this.index, 0, 0)), "uma: CTA inbox full");
  }

  // The volumes are loaded: their inventory lines, and the resources advertised through the TTS interface (the
  // transport starts serving them).
  private volumesLoaded(): void {
    let disks: u32 = 0;
    for (let i: u32 = 0; i < this.processorCount; i++) {
      const entry = unchecked(this.processors[i]);
      if (entry.state == ProcessorState.Ready) disks += profileDiskCount(entry.profile);
    }
    for (let n: u32 = 0; n < volumesCount(); n++) volumeInventoryLine(n);
    line().s("inventory done processors=").u32(this.processorCount).s(" disks=").u32(disks).s(" volumes=").u32(volumesCount()).out();
    if (this.ttsTask != 0xffff_ffff) assert(post(this.ttsTask, this.advertise.set(MsgKind.TtsAdvertise, this.index, volumesCount(), 0)));
    this.ready = true;
  }

  private printProcessorsAndPci(): void {
    for (let i: u32 = 0; i < this.processorCount; i++) {
      const entry = unchecked(this.processors[i]);
      const l = line().s("inventory processor index=").u32(i).s(" name=");
      if (entry.state == ProcessorState.Ready) l.bytes(profileName(entry.profile), PROCESSOR_NAME_BYTES);
      else if (i == 0) l.bytes(bootInfoNamePtr(this.bootInfo), PROCESSOR_NAME_BYTES);
      else l.s("-");
      l.s(" role=").s(i == 0 ? "host" : "storage").s(" ram=").u64(entry.ramBytes)
        .s(" state=").s(entry.state == ProcessorState.Ready ? "ready" : "missing");
      if (entry.bridge != null) l.s(" slot=").u32(entry.bridge!.device);
      l.out();
    }
    const count = pciFunctionCount();
    for (let i: u32 = 0; i < count; i++) {
      const f = pciFunctionAt(i);
      const l = line().s("inventory pci processor=0 slot=").u32(f.device).s(" vendor=").hex(f.vendorId, 4)
        .s(" device=").hex(f.deviceId, 4).s(" class=").hex(f.classCode, 6).s(" revision=").u32(f.revision);
      for (let b: u32 = 0; b < PCI_BARS; b++) {
        if (unchecked(f.barSize[b]) == 0) continue;
        l.s(" bar").u32(b).s("=").hex(unchecked(f.barAddress[b]), 9).s("/").u64(unchecked(f.barSize[b]));
      }
      l.out();
    }
  }
}

// The disks the RTAs' profiles list, found by processor name and index (the volumes' member references).
class ProfileDisks extends DiskFinder {
  count: u32 = 0; // processors discovered: set before volumesAssemble

  constructor(private readonly processors: StaticArray<ProcessorEntry>) { super(); }

  find(processorName: usize, nameBytes: u32, disk: u32, into: Member): bool {
    for (let i: u32 = 0; i < this.count; i++) {
      const entry = unchecked(this.processors[i]);
      if (entry.state != ProcessorState.Ready || !sameName(profileName(entry.profile), processorName, nameBytes)) continue;
      return this.take(i, disk, into);
    }
    return false;
  }

  nth(n: u32, into: Member): bool {
    let seen: u32 = 0;
    for (let i: u32 = 0; i < this.count; i++) {
      const entry = unchecked(this.processors[i]);
      if (entry.state != ProcessorState.Ready) continue;
      // Empty slots (a disk missing at power-on) are no volumes.
      const disks = profileDiskCount(entry.profile);
      for (let d: u32 = 0; d < disks; d++) {
        if (profileDiskBlockCount(profileDisk(entry.profile, d)) == 0) continue;
        if (seen == n) return this.take(i, d, into);
        seen += 1;
      }
    }
    return false;
  }

  private take(processor: u32, disk: u32, into: Member): bool {
    const profile = unchecked(this.processors[processor]).profile;
    if (disk >= profileDiskCount(profile)) return false;
    const at = profileDisk(profile, disk);
    into.processor = processor;
    into.disk = disk;
    // An empty slot: the disk was missing at power-on. Where it is stays known, so that a disk put in later is found.
    into.slot = profileDiskBlockCount(at) == 0;
    if (into.slot) return false;
    into.blockCount = profileDiskBlockCount(at);
    into.blockSizeBytes = profileDiskBlockSizeBytes(at);
    into.physicalExponent = profileDiskPhysicalExponent(at);
    into.present = true;
    into.failed = false;
    return true;
  }
}

// A NUL-padded name field against `nameBytes` bytes.
function sameName(field: usize, name: usize, nameBytes: u32): bool {
  if (nameBytes > PROCESSOR_NAME_BYTES) return false;
  for (let i: u32 = 0; i < nameBytes; i++) if (load<u8>(field + i) != load<u8>(name + i)) return false;
  return nameBytes == PROCESSOR_NAME_BYTES || load<u8>(field + nameBytes) == 0;
}
