// The agents of each role, created at boot: every processor runs an RTA and the DDMs of its controllers; the host
// processor adds the CTA, the UMA, the SCSI target, the iSCSI transport and the XOR task. Used by the release image (index.ts) and the test build alike.
import { bootInfoConfigRomBase, bootInfoEcamBase, bootInfoMuLocalBase, bootInfoNamePtr, bootInfoPciMemBase, bootInfoPciMemSize,
  bootInfoProcessorIndex, bootInfoRole, Role } from "./board/boot_info";
import { busWrite32 } from "./board/bus";
import { MU_LOCAL_OMR0, MU_READY } from "./board/mu";
import { pciEnumerate } from "./board/pci";
import { clusterConfigure } from "./cluster/config_rom";
import { CtaTask } from "./cta/cta";
import { volumesConfigure } from "./volumes/config";
import { volumesInit } from "./volumes/volume";
import { ddmBoot } from "./ddm/registry";
import { vectorAllocate } from "./kernel/vectors";
import { irqRoute, taskAdd } from "./kernel/scheduler";
import { framesInit, MuLocalLink } from "./rta/links";
import { RtaTask } from "./rta/rta";
import { UmaTask } from "./uma/uma";
import { scsiBoot } from "./scsi/target";
import { IscsiTask } from "./tts/iscsi/target";
import { xorBoot, XorTask } from "./xor/xor";
import { fabricBoot, FabricTask } from "./fabric/fabric";
import { REMOTE_PROCESSOR_BASE } from "./fabric/limits";

let rta: RtaTask | null = null;
let cta: CtaTask | null = null;
let uma: UmaTask | null = null;
let tts: IscsiTask | null = null;
let xor: XorTask | null = null;
let fabric: FabricTask | null = null;

/** Boot: enumerate the bus, create the role's agents and their links. Before the kernel seals. */
export function agentsBoot(info: usize): void {
  framesInit();
  pciEnumerate(bootInfoEcamBase(info), bootInfoPciMemBase(info), bootInfoPciMemSize(info));
  const theRta = new RtaTask(bootInfoProcessorIndex(info), bootInfoNamePtr(info));
  taskAdd(theRta);
  rta = theRta;
  if (bootInfoRole(info) == Role.Host) {
    volumesInit();
    volumesConfigure(bootInfoConfigRomBase(info));
    clusterConfigure(bootInfoConfigRomBase(info)); // the routing table, when the board is in a cluster (docs/cluster.md)
    const theCta = new CtaTask();
    taskAdd(theCta);
    const theUma = new UmaTask(info, theCta);
    taskAdd(theUma);
    theUma.discover(theRta); // claims the iop-bridges before the DDMs look for controllers
    cta = theCta;
    uma = theUma;
    scsiBoot(theCta.index);
    const theTts = new IscsiTask();
    taskAdd(theTts);
    if (theTts.boot(info)) {
      theUma.ttsTask = theTts.index; // the UMA advertises the volumes to it once discovery is done
      tts = theTts;
    }
    xor = xorBoot(info); // RAID parity: the XOR engine on the bus, or the software loop
    if (xor != null) theCta.ops.xorTask = xor!.index;
    // A board of a cluster: the cluster port, and a link to each other board for the CTA and the RTA (proxy I/O).
    fabric = fabricBoot(info, theCta.index, theRta.index);
    if (fabric != null) {
      if (fabric!.rdmaOnly) theRta.useBounce(fabric!.index); // no window: the RTA moves a peer's data by RDMA
      for (let b: i32 = 0; b < fabric!.links.length; b++) {
        const link = unchecked(fabric!.links[b]);
        if (link == null) continue;
        unchecked(theCta.links[REMOTE_PROCESSOR_BASE + <u32>b] = link);
        unchecked(theRta.remoteLinks[b] = link);
      }
    }
  } else {
    const link = new MuLocalLink(0, info);
    theRta.link = link;
    const vector = vectorAllocate(1);
    irqRoute(vector, theRta.index);
    link.start(vector);
    busWrite32(bootInfoMuLocalBase(info) + MU_LOCAL_OMR0, MU_READY);
  }
  ddmBoot(info, theRta.index);
}

/** After the seal: arm the agents' timers. */
export function agentsStart(): void {
  rta!.start();
  if (cta != null) cta!.start();
  if (uma != null) uma!.start();
  if (xor != null) xor!.start();
  if (fabric != null) fabric!.start();
}

export function agentRta(): RtaTask { return rta!; }
export function agentCta(): CtaTask | null { return cta; }
export function agentUma(): UmaTask | null { return uma; }
export function agentTts(): IscsiTask | null { return tts; }
/** The fabric task (host processor of a board in a cluster with a cluster port), or null. */
export function agentFabric(): FabricTask | null { return fabric; }
/** The XOR task (host processor only): XorRequest goes to its index. */
export function agentXor(): XorTask | null { return xor; }
