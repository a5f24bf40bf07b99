// What a transport keeps per command it hands to the SCSI target, indexed like the SCSI target's task table: where
// the command stands on the transport's side, the connection it came on, its tag and LUN, what it needs to reach the
// SCSI target if it waits first (CDB, flags, expected length, sequence number), and its transmit pieces in flight.
// Nothing here is iSCSI's own: another transport (NBD) keeps its commands in the same records.
import { carve } from "../kernel/carve";
import { SCSI_TASKS_MAX } from "../scsi/tasks";

export const COMMAND_CDB_BYTES: u32 = 16; // the longest CDB a command carries here

// Where a command stands on the transport's side.
export enum CommandPhase {
  Free = 0, // not the transport's
  Submitted = 1, // with the SCSI target
  DataOut = 2, // receiving the Data-Out the SCSI target asked for
  Sending = 3, // Data-In and status being queued on the NIC (as room allows)
  Orphan = 4, // its connection is gone: released when the SCSI target answers
  Sent = 5, // everything queued: released when the NIC has sent the last piece
  Waiting = 6, // waiting for the commands before it (iSCSI: its session's reorder queue): not yet with the SCSI target
}

// What a record stands for. Most are SCSI commands; iSCSI also keeps its other numbered requests (TMF, Text, NOP-Out,
// Logout) here while they wait in the reorder queue, and a TMF while the SCSI target works on it.
export enum CommandKind {
  Scsi = 0, // a SCSI command (its CDB, expected length and flags are set)
  Tmf = 1, // a task management request: flags the function, extra the referenced task tag, expected the RefCmdSN
  Text = 2, // a Text Request waiting: flags TEXT_HELD_DATA_LOST, extra the page holding its 48-byte header
  NopOut = 3, // a NOP-Out ping waiting: extra the page holding its data, expected its data bytes
  Logout = 4, // a Logout Request waiting: flags its reason code
  Nbd = 5, // an NBD request (tts/nbd/server.ts keeps the rest): extra its export, expected its length
}

export class TransportCommands {
  private readonly phases: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly connections: StaticArray<u8> = new StaticArray<u8>(SCSI_TASKS_MAX);
  private readonly tags: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // iSCSI: the ITT
  private readonly luns: StaticArray<u64> = new StaticArray<u64>(SCSI_TASKS_MAX); // the LUN field as on the wire
  private readonly expectedBytes: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX);
  private readonly pieces: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // NIC entries in flight
  private readonly flags: StaticArray<u8> = new StaticArray<u8>(SCSI_TASKS_MAX); // the transport's command flags
  private readonly sequences: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // iSCSI: the CmdSN
  private readonly kinds: StaticArray<u8> = new StaticArray<u8>(SCSI_TASKS_MAX);
  private readonly extras: StaticArray<u32> = new StaticArray<u32>(SCSI_TASKS_MAX); // what the kind keeps besides
  private readonly cdbs: usize = carve(SCSI_TASKS_MAX * COMMAND_CDB_BYTES, 16);

  phase(t: u32): CommandPhase { return <CommandPhase>this.phases[t]; }
  setPhase(t: u32, phase: CommandPhase): void { this.phases[t] = <u32>phase; }
  connection(t: u32): u32 { return <u32>this.connections[t]; }
  tag(t: u32): u32 { return this.tags[t]; }
  lun(t: u32): u64 { return this.luns[t]; }
  expectedBytesOf(t: u32): u32 { return this.expectedBytes[t]; }
  flagsOf(t: u32): u32 { return <u32>this.flags[t]; }
  sequence(t: u32): u32 { return this.sequences[t]; }
  setSequence(t: u32, sequence: u32): void { this.sequences[t] = sequence; }
  kind(t: u32): CommandKind { return <CommandKind>this.kinds[t]; }
  extra(t: u32): u32 { return this.extras[t]; }

  /** A request other than a SCSI command (CommandKind says what flags, extra and expected hold for each). */
  setRequest(t: u32, kind: CommandKind, flags: u32, extra: u32, expected: u32): void {
    assert(kind != CommandKind.Scsi, "transport: a SCSI command is set by setCommand");
    assert(flags <= 0xff, "transport: request flags fit a byte");
    this.kinds[t] = <u8>kind;
    this.flags[t] = <u8>flags;
    this.extras[t] = extra;
    this.expectedBytes[t] = expected;
    this.pieces[t] = 0;
  }

  /** The CDB of command t (COMMAND_CDB_BYTES). */
  cdb(t: u32): usize {
    assert(t < SCSI_TASKS_MAX, "transport: command index out of range");
    return this.cdbs + <usize>t * COMMAND_CDB_BYTES;
  }

  /** Command t now belongs to the transport: from `connection`, with its tag and LUN, nothing in flight. */
  begin(t: u32, connection: u32, tag: u32, lun: u64): void {
    assert(connection <= 0xff, "transport: connection fits a byte");
    this.connections[t] = <u8>connection;
    this.tags[t] = tag;
    this.luns[t] = lun;
  }

  /** What a SCSI command needs to reach the SCSI target later: its expected length, flags and CDB. */
  setCommand(t: u32, expectedBytes: u32, flags: u32, cdb: usize): void {
    this.kinds[t] = <u8>CommandKind.Scsi;
    this.expectedBytes[t] = expectedBytes;
    this.pieces[t] = 0;
    this.flags[t] = <u8>flags;
    memory.copy(this.cdb(t), cdb, COMMAND_CDB_BYTES);
  }

  /** True when SCSI command t is the transport's, from `connection`, in one of the phases a new PDU can still reach. */
  live(t: u32, connection: u32): bool {
    const phase = this.phase(t);
    return this.kind(t) == CommandKind.Scsi && (phase == CommandPhase.Submitted || phase == CommandPhase.DataOut || phase == CommandPhase.Waiting)
      && this.connection(t) == connection;
  }

  /** The live command of `connection` with `tag`, or `none`. Bounded by the table. */
  ofTag(connection: u32, tag: u32, none: u32): u32 {
    for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) if (this.live(t, connection) && this.tag(t) == tag) return t;
    return none;
  }

  piecesInFlight(t: u32): u32 { return this.pieces[t]; }
  pieceQueued(t: u32): void { this.pieces[t] += 1; }
  /** One NIC entry of command t was sent; false when none was in flight (a stale or confused completion). */
  pieceSent(t: u32): bool {
    if (this.pieces[t] == 0) return false;
    this.pieces[t] -= 1;
    return true;
  }
}
