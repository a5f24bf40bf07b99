// Fault and management commands for a cluster run in one process (`wasm-iop run --cluster`), from `wasm-iop fault`
// through the control socket in the cluster's data directory (docs/fault.md, "A cluster"): a fabric link of a board
// down or up, the link of one of a board's NIC ports (its portals) down or up, a board reset, powered off or on. Each is applied as one event of the cluster's clock, as a board's own
// control applies its commands (host/board/control.ts).
import type { NetworkBackend } from "../devices/nic.ts";
import type { Cluster } from "./cluster.ts";

export const CLUSTER_CONTROL_ACTIONS = {
  link: ["down", "up"],
  port: ["down", "up"],
  board: ["reset", "off", "on"],
  status: [],
} as const;

export type ClusterControlRequest =
  | { object: "link"; name: string; action: "down" | "up" } // name: BOARD:LINK, a board of the cluster and 0 or 1
  | { object: "port"; name: string; action: "down" | "up" } // name: BOARD:N, a board of the cluster and its NIC port (portal) N
  | { object: "board"; name: string; action: "reset" | "off" | "on" } // name: a board of the cluster
  | { object: "status" };

export interface ClusterControlAnswer {
  ok: boolean;
  error?: "bad-request" | "failed";
  message: string;
}

/** The request, or why it is not one (the shapes only: names are checked against the cluster when applied). */
export function parseClusterControlRequest(value: unknown): ClusterControlRequest | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "a request is a JSON object";
  const { object, name, action } = value as Record<string, unknown>;
  if (typeof object !== "string" || !Object.hasOwn(CLUSTER_CONTROL_ACTIONS, object)) {
    return `unknown object ${JSON.stringify(object)}; objects of a cluster: ${Object.keys(CLUSTER_CONTROL_ACTIONS).join(", ")}`;
  }
  if (object === "status") return { object };
  const actions: readonly string[] = CLUSTER_CONTROL_ACTIONS[object as "link" | "port" | "board"];
  if (object === "link" && (typeof name !== "string" || !/^[^:\s]+:[01]$/.test(name))) return `link: expected a name BOARD:LINK such as b:0 (links 0 and 1), got ${JSON.stringify(name)}`;
  if (object === "port" && (typeof name !== "string" || !/^[^:\s]+:[0-3]$/.test(name))) return `port: expected a name BOARD:N such as a:1 (the board's NIC port, its portal N: 0-3), got ${JSON.stringify(name)}`;
  if (object === "board" && (typeof name !== "string" || name === "")) return `board: expected a board's name, got ${JSON.stringify(name)}`;
  if (typeof action !== "string" || !actions.includes(action)) return `unknown ${object} action ${JSON.stringify(action)}; ${object} actions: ${actions.join(", ")}`;
  return { object, name, action } as ClusterControlRequest;
}

export class ClusterControl {
  constructor(private readonly cluster: Cluster, private readonly ids: ReadonlyMap<string, number>) {}

  /** Applies `request` as an event of the cluster's clock, then answers. */
  submit(request: ClusterControlRequest, reply: (answer: ClusterControlAnswer) => void): void {
    this.cluster.clock.afterOutside(0, () => reply(this.apply(request)));
  }

  /** Applies `request` now (the event submit schedules; tests call it directly). */
  apply(request: ClusterControlRequest): ClusterControlAnswer {
    if (request.object === "status") {
      const f = this.cluster.fabric.stats;
      const boards = this.cluster.boards.map((b) => `${b.name} (${b.processors.every((p) => p.state === "running") ? "running" : "stopped"}, ${b.resetCount} resets)`).join(", ");
      return { ok: true, message: `cluster at ${(this.cluster.clock.nowNs / 1e9).toFixed(6)} s: ${boards}; fabric: ${f.sent} sent, ${f.delivered} delivered, ${f.lost} lost` };
    }
    const boardName = request.object === "board" ? request.name : request.name.slice(0, request.name.indexOf(":"));
    const id = this.ids.get(boardName);
    if (id === undefined) return { ok: false, error: "bad-request", message: `no board ${JSON.stringify(boardName)}; boards: ${[...this.ids.keys()].join(", ")}` };
    if (request.object === "link") {
      const link = Number(request.name.slice(request.name.indexOf(":") + 1));
      this.cluster.fabric.setLink(id, link, request.action === "up");
      return { ok: true, message: `board ${boardName} link ${link} ${request.action}` };
    }
    if (request.object === "port") return nicPortLink(this.cluster.board(boardName).network, request);
    const board = this.cluster.board(boardName);
    switch (request.action) {
      case "reset": return board.reset() ? { ok: true, message: `board ${boardName} reset` } : { ok: false, error: "failed", message: `board ${boardName} did not boot after its reset` };
      case "off":
        board.powerOff();
        return { ok: true, message: `board ${boardName} powered off` };
      default:
        return board.powerOn() ? { ok: true, message: `board ${boardName} powered on` } : { ok: false, error: "failed", message: `board ${boardName} did not boot` };
    }
  }
}

/** A network whose NIC ports' links can be taken down (host/devices/tcp_backend.ts, TcpBackend.portalLink). */
interface NicPortLinks { portalLink(portal: number, up: boolean): number }

/**
 * `port BOARD:N down|up` applied to the board's network: its NIC port N's link (host/devices/tcp_backend.ts,
 * portalLink). A board without real ports (a cluster run with --for, on its loopback) or without port N is refused.
 */
export function nicPortLink(network: NetworkBackend, request: { name: string; action: "down" | "up" }): ClusterControlAnswer {
  const portal = Number(request.name.slice(request.name.indexOf(":") + 1));
  if (!("portalLink" in network)) return { ok: false, error: "bad-request", message: `${request.name}: this board has no network ports to take down (run in real time)` };
  try {
    const reset = (network as NicPortLinks).portalLink(portal, request.action === "up");
    return { ok: true, message: `${request.name} (NIC port ${portal}) link ${request.action}${request.action === "down" ? `: ${reset} connections reset` : ""}` };
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return { ok: false, error: "bad-request", message: `${request.name}: ${error.message}` };
  }
}
