// An iSCSI session: who logged in (initiator name, ISID, TSIH, target), its I_T nexus at the SCSI target, the keys
// settled on its leading connection, and its command order (RFC 7143, "Command Numbering and Acknowledging"):
// the reorder queue that hands SCSI commands to the SCSI target in CmdSN order, whatever connection each came on.
import { carve } from "../../kernel/carve";
import { NEXUS_NONE } from "../../scsi/nexus";
import { NegotiatedParams } from "./keys";

export const SESSIONS_MAX: u32 = 32;
export const CMD_WINDOW: u32 = 64; // commands the initiator may send beyond ExpCmdSN: MaxCmdSN = ExpCmdSN + 63
export const INITIATOR_NAME_BYTES_MAX: u32 = 223; // RFC 3720, iSCSI names: at most 223 bytes
// Reorder queue entries besides a waiting command's transport task.
export const ORDER_EMPTY: u32 = 0xffff; // that CmdSN has not arrived
export const ORDER_ARRIVED: u32 = 0xfffe; // taken, nothing left to deliver
// "InitiatorName,i,0xISID": the name, 5 bytes of ",i,0x", 12 hexadecimal digits.
export const PORT_NAME_BYTES_MAX: u32 = INITIATOR_NAME_BYTES_MAX + 17;

export enum SessionState {
  Free = 0, // unused
  Active = 1, // logged in, with at least one connection
  Identifying = 2, // its leading login waits for the SCSI target's nexus id (ScsiNexusIdentified) to answer
  Failing = 3, // a connection failed at ERL 0, so the session fails: its other connections are being dropped
}
export const TMF_HELD_NONE: u32 = 0xffff_ffff; // no immediate TMF waits for the CmdSNs before its own
export const LOGIN_CONN_NONE: u32 = 0xffff_ffff; // no connection waits on the session's login

export class Session {
  state: SessionState = SessionState.Free;
  isid: u64 = 0;
  tsih: u32 = 0;
  target: u32 = 0;
  nicPort: u32 = 0; // the NIC port (its portal group) its connections come through: 0 on a single board
  initiator: usize = carve(INITIATOR_NAME_BYTES_MAX + 1);
  initiatorBytes: u32 = 0;
  nexus: u32 = NEXUS_NONE; // the SCSI target's id of this I_T nexus; none for discovery
  // The initiator port's name, "InitiatorName,i,0xISID": the SCSI target reads it when it answers ScsiNexusIdentify.
  readonly portName: usize = carve(PORT_NAME_BYTES_MAX);
  loginConn: u32 = LOGIN_CONN_NONE; // Identifying: the connection whose login waits; none once it went
  expCmdSn: u32 = 0;
  connections: u32 = 0;
  maxConnections: u32 = 1; // negotiated on the leading connection
  readonly params: NegotiatedParams = new NegotiatedParams(); // the leading connection's: session-wide keys
  discovery: bool = false;
  // The reorder queue: one entry per CmdSN of the window [ExpCmdSN, ExpCmdSN + CMD_WINDOW), at CmdSN mod
  // CMD_WINDOW: ORDER_EMPTY, ORDER_ARRIVED or the transport task of a SCSI command waiting for the commands before it.
  private readonly order: usize = carve(CMD_WINDOW * 2, 2);
  waiting: u32 = 0; // requests in the queue (SCSI commands, and Text, NOP-Out, Logout and TMF requests)
  // An immediate ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET or target reset whose CmdSN is ahead of ExpCmdSN:
  // it acts when ExpCmdSN reaches its CmdSN (RFC 7143, Task Management Function Request: the commands before it are
  // affected, so they must have come). Its transport record, or TMF_HELD_NONE.
  tmfHeld: u32 = TMF_HELD_NONE;

  orderAt(cmdSn: u32): u32 { return <u32>load<u16>(this.order + <usize>(cmdSn % CMD_WINDOW) * 2); }
  private orderSet(cmdSn: u32, value: u32): void { store<u16>(this.order + <usize>(cmdSn % CMD_WINDOW) * 2, <u16>value); }
  orderClear(): void {
    for (let i: u32 = 0; i < CMD_WINDOW; i++) store<u16>(this.order + <usize>i * 2, <u16>ORDER_EMPTY);
    this.waiting = 0;
  }

  maxCmdSn(): u32 { return this.expCmdSn + CMD_WINDOW - 1; }

  // A new session from its leading login: the order starts at that login's CmdSN.
  open(isid: u64, tsih: u32, target: u32, discovery: bool, maxConnections: u32, params: NegotiatedParams, cmdSn: u32,
    initiatorName: usize, initiatorNameBytes: u32): void {
    this.state = SessionState.Active;
    this.isid = isid;
    this.tsih = tsih;
    this.target = target;
    this.connections = 0;
    this.discovery = discovery;
    this.maxConnections = maxConnections;
    this.params.copyFrom(params);
    this.expCmdSn = cmdSn;
    this.orderClear();
    this.initiatorBytes = min(initiatorNameBytes, INITIATOR_NAME_BYTES_MAX);
    memory.copy(this.initiator, initiatorName, this.initiatorBytes);
  }

  // The session's last connection went: the slot is free, its order forgotten. (Its nexus is ended by the caller.)
  close(): void {
    this.nexus = NEXUS_NONE;
    this.loginConn = LOGIN_CONN_NONE;
    this.state = SessionState.Free;
    this.orderClear();
    assert(this.tmfHeld == TMF_HELD_NONE, "iscsi: a held TMF ends with its connection, before its session");
  }

  // The I_T nexus's initiator port as SAM-5 names it for iSCSI (RFC 7143, SCSI Port Names): "InitiatorName,i,0xISID",
  // the ISID as 12 hexadecimal digits. Written into portName; returns its length.
  portNameWrite(): u32 {
    const into = this.portName;
    memory.copy(into, this.initiator, this.initiatorBytes);
    let at = into + this.initiatorBytes;
    store<u8>(at, 0x2c); store<u8>(at, 0x69, 1); store<u8>(at, 0x2c, 2); store<u8>(at, 0x30, 3); store<u8>(at, 0x78, 4); // ",i,0x"
    at += 5;
    for (let i: u32 = 0; i < 12; i++) {
      const nibble = <u32>(this.isid >> (<u64>(11 - i) * 4)) & 0xf;
      store<u8>(at + i, <u8>(nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10));
    }
    return this.initiatorBytes + 17;
  }

  // RFC 7143, "Command Numbering and Acknowledging": a non-immediate command outside [ExpCmdSN, MaxCmdSN] is
  // ignored, and so is one whose CmdSN has already come (a duplicate). Immediate commands are not numbered.
  orderAccepts(cmdSn: u32): bool {
    if (cmdSn - this.expCmdSn >= CMD_WINDOW) return false; // behind ExpCmdSN or past MaxCmdSN: silently ignored
    return this.orderAt(cmdSn) == ORDER_EMPTY;
  }

  // Numbered command `cmdSn` came and needs nothing more from the order. False when it is outside the window (the
  // order does not move).
  orderArrived(cmdSn: u32): bool {
    if (cmdSn - this.expCmdSn >= CMD_WINDOW) return false;
    if (this.orderAt(cmdSn) == ORDER_EMPTY) this.orderSet(cmdSn, ORDER_ARRIVED);
    return true;
  }

  // Request t (a SCSI command, or a Text, NOP-Out, Logout or TMF request) waits at its CmdSN for the ones before it.
  orderHold(cmdSn: u32, t: u32): void {
    assert(t < ORDER_ARRIVED, "iscsi: a waiting command's index fits the order's entries");
    this.orderSet(cmdSn, t);
    this.waiting += 1;
  }

  // The request waiting at `cmdSn` ends without acting (its connection went, a TMF aborted it): its place counts as
  // arrived, so ExpCmdSN still steps over it once the CmdSNs before it have come.
  orderForget(cmdSn: u32): void {
    assert(this.orderAt(cmdSn) < ORDER_ARRIVED, "iscsi: a forgotten request was waiting");
    this.orderSet(cmdSn, ORDER_ARRIVED);
    this.waiting -= 1;
  }

  // One step of ExpCmdSN over the run of arrived commands: ORDER_EMPTY when the run ends (ExpCmdSN stays),
  // ORDER_ARRIVED when it stepped over a command with nothing to deliver, else the waiting command it stepped over,
  // whose turn has come. The caller bounds the steps by CMD_WINDOW.
  orderStep(): u32 {
    const entry = this.orderAt(this.expCmdSn);
    if (entry == ORDER_EMPTY) return ORDER_EMPTY;
    this.orderSet(this.expCmdSn, ORDER_EMPTY);
    this.expCmdSn += 1;
    if (entry != ORDER_ARRIVED) this.waiting -= 1;
    return entry;
  }

  // The gaps before the last waiting command count as arrived (their commands are lost for good at ERL 0). False
  // when no command waits (nothing to give up).
  orderGiveUpGaps(): bool {
    let last: u32 = 0;
    let any = false;
    for (let d: u32 = 0; d < CMD_WINDOW; d++) {
      const entry = this.orderAt(this.expCmdSn + d);
      if (entry != ORDER_EMPTY && entry != ORDER_ARRIVED) { last = d; any = true; }
    }
    if (!any) return false;
    for (let d: u32 = 0; d < last; d++) if (this.orderAt(this.expCmdSn + d) == ORDER_EMPTY) this.orderSet(this.expCmdSn + d, ORDER_ARRIVED);
    return true;
  }
}
