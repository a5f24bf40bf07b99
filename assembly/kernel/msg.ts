// The kernel message: a 32-byte record copied by value into task inboxes.
// |0 kind u16|2 source u16|4 a u32|8 b u32|12 c u32|16 d u64|24 e u64|
// Agent-to-agent message frames (the seed design's one frame format) travel as a frame index in `a`.

export enum MsgKind {
  None = 0,
  Timer = 1, // a: timer id, b: tag
  Irq = 2, // a: vector
  User = 16, // first kind a task defines for itself (test probes)
  BlockIo = 32, // to a DDM: one block request (assembly/ddm/block.ts)
  BlockIoDone = 33, // from a DDM: its completion
  DdmReady = 34, // from a DDM: the controller is up and its disks are known (a: controller index)
  Frame = 40, // a message frame for an agent: a = frame pool index (assembly/board/frame.ts)
  ServiceIo = 41, // to the CTA: a READ/WRITE/… service request (assembly/cta/cta.ts)
  ServiceIoDone = 42, // from the CTA: its completion
  ScsiCommand = 48, // transport → SCSI target (assembly/scsi/interface.ts)
  ScsiDataOut = 49, // SCSI target → transport
  ScsiDataReady = 50, // transport → SCSI target
  ScsiDone = 51, // SCSI target → transport
  ScsiTmf = 52, // transport → SCSI target
  ScsiTmfDone = 53, // SCSI target → transport
  ScsiNexusIdentify = 54, // transport → SCSI target: a: cookie, b: target port, c: port name bytes, d: port name address
  ScsiNexusIdentified = 55, // SCSI target → transport: a: the cookie, b: the nexus id (NEXUS_NONE: the table is full)
  ScsiNexusGone = 57, // transport → SCSI target: a: the nexus id of a session that ended
  ScsiTargetLuns = 58, // transport → SCSI target: a: target port, b: LUN count, d: address of the LUN numbers (u32 each), c: of the volumes they map (u32 each); e: the port's NIC port and the board's target count (scsi/transport.ts)
  TtsAdvertise = 56, // UMA → TTS: discovery is done; a: the volume count. The transport starts serving.
  VolumesLoad = 62, // UMA → CTA: the volumes are assembled; read their metadata (RAID superblocks, thin maps)
  VolumesLoaded = 63, // CTA → UMA: every volume's metadata is read and current; they may be served
  XorRequest = 60, // to the XOR task (assembly/xor/xor.ts): a = sourceCount | flags << 16, c = SGL, e = tag
  XorDone = 61, // from the XOR task: a = XorStatus, b = 1 when checked and not all zeros, c = the SGL, e = tag
  FabricFrameOut = 100, // a FabricLink to the fabric task: a = frame pool index (the task releases it), b = board index
  FabricPeerRestarted = 101, // the fabric task to the RTA: board a started again; forget its transactions
  // The RTA to the fabric task, on a board whose port has no window (rta/bounce.ts): an RDMA of b bytes between local
  // address c and address d of board (a & 0xffff)'s registered buffers; a >> 16 the port's opcode (Read or Write);
  // e = the RTA's cookie, given back in FabricRdmaDone.
  FabricRdma = 102,
  FabricRdmaDone = 103, // the fabric task to the RTA: a = the port's status (0 Ok), e = FabricRdma's cookie
}

@unmanaged
export class Msg {
  kind: u16 = 0;
  source: u16 = 0;
  a: u32 = 0;
  b: u32 = 0;
  c: u32 = 0;
  d: u64 = 0;
  e: u64 = 0;

  set(kind: u32, source: u32, a: u32, b: u32): Msg {
    this.kind = <u16>kind;
    this.source = <u16>source;
    this.a = a;
    this.b = b;
    this.c = 0;
    this.d = 0;
    this.e = 0;
    return this;
  }
}
