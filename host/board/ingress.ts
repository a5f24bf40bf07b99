// The one door for everything that enters a board from outside, and the one window on what its NIC sends out
// (DESIGN-NOTES §12; docs/replay.md). The network backend reaches the NIC only through port(); the NIC reaches the
// network only through egress(); control commands and board resets pass through here on their way in. Each passage is
// stamped with where it happened on the board clock (its time and the count of board events run before it) and shown
// to the observers: a recorder writes it down, a replay applies it again at the same place, a packet capture turns it
// into frames. Nothing here changes what the board computes.
import type { IopBridgeFault } from "../devices/iop_bridge.ts";
import type { NetworkBackend, NicPort } from "../devices/nic.ts";
import type { VirtioScsiFault } from "../devices/virtio_scsi.ts";
import type { NvmeFault } from "../devices/nvme.ts";
import type { VirtualClock } from "../sim/clock.ts";
import { Layer } from "../sim/layer_meter.ts";
import type { Trace, TraceValue } from "../sim/trace.ts";
import type { ControlRequest } from "./control.ts";

/**
 * A fault a simulator injects into a device model (by its name, as the trace shows it: "host.slot3") or a processor
 * (a fatal hardware fault: the processor stops). Plain data, so a recording can hold it and a replay inject it again.
 */
export type BoardFault =
  | { device: string; fault: VirtioScsiFault | NvmeFault | IopBridgeFault }
  | { processor: string; fail: string };

/** A line written to the trace from outside the board (a simulator's "sim" events): recorded so a replay writes it too. */
export interface TraceNote {
  source: string;
  event: string;
  fields: Record<string, number | string>;
}

/** Where on the board clock something passed the door: the time, and how many board events had run by then. */
export interface IngressPosition {
  timeNs: number;
  eventCount: number;
}

/** Sees every passage; each method optional. Called before the input reaches the board, or as the NIC sends. */
export interface IngressObserver {
  /** A client connected to `portal`; the NIC gave it slot `connection` (undefined: refused). */
  opened?(at: IngressPosition, portal: number, connection: number | undefined): void;
  /** `bytes` arrived on `connection` (the observer must not keep them past the call without copying). */
  received?(at: IngressPosition, connection: number, bytes: Uint8Array): void;
  /** The client closed `connection` (FIN or reset). */
  peerClosed?(at: IngressPosition, connection: number): void;
  control?(at: IngressPosition, request: ControlRequest): void;
  /** The board is power-cycled from outside (run --reset-on-panic, a simulator). */
  reset?(at: IngressPosition): void;
  /** A fault injected from outside (simulate). */
  fault?(at: IngressPosition, fault: BoardFault): void;
  /** A trace line written from outside (simulate's own events). */
  note?(at: IngressPosition, note: TraceNote): void;
  /** The NIC handed `bytes` to the network on `connection`. */
  sent?(at: IngressPosition, connection: number, bytes: Uint8Array): void;
  /** The NIC closed `connection` (FIN after what it sent). */
  boardClosed?(at: IngressPosition, connection: number): void;
}

export class BoardIngress {
  private observers: IngressObserver[] = [];

  constructor(private readonly clock: VirtualClock, private readonly trace: Trace) {}

  observe(observer: IngressObserver): () => void {
    this.observers.push(observer);
    return () => {
      this.observers = this.observers.filter((o) => o !== observer);
    };
  }

  get position(): IngressPosition {
    return { timeNs: this.clock.nowNs, eventCount: this.clock.boardRanCount };
  }

  /** What the network backend is given in place of the NIC: every call passes the door. */
  port(nic: NicPort): NicPort {
    return {
      opened: (portal) => this.opened(nic, portal),
      received: (connection, bytes) => this.received(nic, connection, bytes),
      closed: (connection) => this.peerClosed(nic, connection),
    };
  }

  /** What the NIC is given in place of the network backend: every send and close is shown to the observers. */
  egress(network: NetworkBackend): NetworkBackend {
    let space: Uint8Array | undefined; // the last sendSpace(): what a commit sends is the start of it
    return {
      sendSpace: (connection, lengthBytes) => (space = network.sendSpace(connection, lengthBytes)),
      sendCommit: (connection, lengthBytes) => {
        if (this.observers.length > 0 && lengthBytes > 0 && space !== undefined) {
          const at = this.position;
          const bytes = space.subarray(0, lengthBytes);
          for (const o of this.observers) o.sent?.(at, connection, bytes);
        }
        space = undefined;
        network.sendCommit(connection, lengthBytes);
      },
      // A view of guest RAM, valid during the call: observers use the bytes before it returns (a CRC, a copy).
      ...(network.sendView !== undefined ? {
        sendView: (connection: number, bytes: Uint8Array, ahead?: () => readonly Uint8Array[]) => {
          if (this.observers.length > 0) {
            const at = this.position;
            for (const o of this.observers) o.sent?.(at, connection, bytes);
          }
          network.sendView!(connection, bytes, ahead); // observers see each view at its own call, early or not
        },
      } : {}),
      close: (connection) => {
        if (this.observers.length > 0) {
          const at = this.position;
          for (const o of this.observers) o.boardClosed?.(at, connection);
        }
        network.close(connection);
      },
      pause: (connection, paused) => network.pause(connection, paused),
      // Not a passage: the NIC gives back memory it was handed, nothing leaves the board.
      ...(network.receivedDone !== undefined ? { receivedDone: network.receivedDone.bind(network) } : {}),
    };
  }

  // With a meter (bench), what comes in from the network is the NIC's work, and so are the events it schedules.
  opened(nic: NicPort, portal: number): number | undefined {
    const outer = this.clock.meter?.enter(Layer.Nic);
    const at = this.position;
    const connection = nic.opened(portal);
    for (const o of this.observers) o.opened?.(at, portal, connection);
    if (outer !== undefined) this.clock.meter!.leave(outer);
    return connection;
  }

  received(nic: NicPort, connection: number, bytes: Uint8Array): void {
    const outer = this.clock.meter?.enter(Layer.Nic);
    const at = this.position;
    for (const o of this.observers) o.received?.(at, connection, bytes);
    nic.received(connection, bytes);
    if (outer !== undefined) this.clock.meter!.leave(outer);
  }

  peerClosed(nic: NicPort, connection: number): void {
    const outer = this.clock.meter?.enter(Layer.Nic);
    const at = this.position;
    for (const o of this.observers) o.peerClosed?.(at, connection);
    nic.closed(connection);
    if (outer !== undefined) this.clock.meter!.leave(outer);
  }

  /** A control command on its way to the board (BoardControl.submit): `apply` schedules it. */
  control(request: ControlRequest, apply: () => void): void {
    const at = this.position;
    for (const o of this.observers) o.control?.(at, request);
    apply();
  }

  /** A reset from outside on its way to the board (Board.reset). */
  reset(apply: () => boolean): boolean {
    const at = this.position;
    for (const o of this.observers) o.reset?.(at);
    return apply();
  }

  /** A fault injected from outside (a simulator) on its way to the board: `apply` injects it. */
  fault(fault: BoardFault, apply: () => void): void {
    const at = this.position;
    for (const o of this.observers) o.fault?.(at, fault);
    apply();
  }

  /** Writes a line to the board's trace from outside the board, at the current board time. */
  note(source: string, event: string, fields: Record<string, number | string> = {}): void {
    const at = this.position;
    const note: TraceNote = { source, event, fields };
    for (const o of this.observers) o.note?.(at, note);
    this.trace.record(at.timeNs, source, event, fields as Record<string, TraceValue>);
  }
}
