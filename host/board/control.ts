// The one door for control commands into a running board (DESIGN-NOTES §12; docs/fault.md): pulling, replacing and
// restoring disks (a replica's copies by their volume), hanging and resuming controllers, and the status query. Whoever carries a command here (the control socket
// of `wasm-iop run`, a test) hands it to BoardControl.submit(), which checks it against the board and applies it as
// an event of the board clock at the current board time: never in the middle of a device access or a firmware call,
// and in a place a recorder can log it and a replay can apply it again at the same board time.
import type { Board, ControllerSlot } from "./board.ts";
import { CopyPlaces } from "./copy_places.ts";
import { type VolumeState, VolumeStates } from "./volume_states.ts";

/** Every object and its actions, for validation and for the CLI's help. */
export const CONTROL_ACTIONS = {
  disk: ["fail", "replace", "restore"],
  copy: ["fail", "restore"],
  controller: ["hang", "resume"],
  status: [],
} as const;

export type ControlObject = keyof typeof CONTROL_ACTIONS;

export type ControlRequest =
  | { object: "disk"; name: string; action: "fail" | "replace" | "restore" } // name: PROCESSOR:DISK, the RTA's disk order
  | { object: "copy"; name: string; action: "fail" | "restore" } // name: VOLUME:COPY, a replica's name (or number) and 0 or 1
  | { object: "controller"; name: string; action: "hang" | "resume" } // name: PROCESSOR:CONTROLLER, slot order
  | { object: "status" };

export interface BoardStatus {
  board: string;
  volumes: VolumeState[];
}

export type ControlAnswer =
  | { ok: true; boardTimeNs: number; message: string; status?: BoardStatus }
  // bad-request: names something the board does not have (the CLI exits 2); not-ready: the board cannot take
  // commands yet; failed: the board could not carry the command out (a disk file it could not rename).
  | { ok: false; error: "bad-request" | "not-ready" | "failed"; message: string };

/** A request from outside (parsed JSON), checked for shape; a string says what is wrong with it. */
export function parseControlRequest(value: unknown): ControlRequest | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "a request is a JSON object";
  const { object, name, action } = value as Record<string, unknown>;
  if (typeof object !== "string" || !Object.hasOwn(CONTROL_ACTIONS, object)) {
    return `unknown object ${JSON.stringify(object)}; objects: ${Object.keys(CONTROL_ACTIONS).join(", ")}`;
  }
  if (object === "status") return { object };
  const actions: readonly string[] = CONTROL_ACTIONS[object as ControlObject];
  const example = object === "copy" ? "VOLUME:COPY such as rep:1" : "PROCESSOR:INDEX such as sp1:0";
  if (typeof name !== "string" || !/^[^:\s]+:\d+$/.test(name)) return `${object}: expected a name ${example}, got ${JSON.stringify(name)}`;
  if (typeof action !== "string" || !actions.includes(action)) return `unknown ${object} action ${JSON.stringify(action)}; ${object} actions: ${actions.join(", ")}`;
  return { object, name, action } as ControlRequest;
}

/** The answer to a command that comes before board `boardName` is built (its BoardControl does not exist yet). */
export function controlNotReady(boardName: string): ControlAnswer {
  return { ok: false, error: "not-ready", message: `board ${boardName} is still booting` };
}

/**
 * One request from a control socket (parsed JSON, unchecked) for board `boardName`, whose control is `control` once
 * the board is built: bad-request when it is no control request, not-ready while there is no board yet, else what
 * BoardControl.submit answers. `done` is called once.
 */
export function submitControlRequest(
  control: BoardControl | undefined, boardName: string, request: unknown, done: (answer: ControlAnswer) => void,
): void {
  const checked = parseControlRequest(request);
  if (typeof checked === "string") done({ ok: false, error: "bad-request", message: checked });
  else if (control === undefined) done(controlNotReady(boardName));
  else control.submit(checked, done);
}

// What a name resolved to: a disk (its board-file name) or a controller.
// spareOf: a replica copy's board-file disk, when the hot spare `disk` has taken its place.
type Target = { kind: "disk"; name: string; disk: string; spareOf?: string } | { kind: "controller"; name: string; slot: ControllerSlot };

export class BoardControl {
  private readonly volumes = new VolumeStates();
  private readonly copyPlaces: CopyPlaces;

  constructor(private readonly board: Board) {
    this.copyPlaces = new CopyPlaces((name) => board.spec.volumes.findIndex((v) => v.name === name));
  }

  /** Every console line of the board goes through here: the volume state lines are kept for `status`. */
  observeConsole(processor: string, line: string): void {
    this.volumes.observe(processor, line);
    this.copyPlaces.observe(line);
  }

  /**
   * Checks `request` against the board and applies it as a clock event at the current board time; `done` gets the
   * answer from inside that event. A request naming what the board does not have is answered at once and never
   * reaches the board.
   */
  submit(request: ControlRequest, done: (answer: ControlAnswer) => void): void {
    if (this.board.processors.length === 0) {
      done({ ok: false, error: "not-ready", message: `board ${this.board.name} is not powered on` });
      return;
    }
    const target = request.object === "status" ? undefined
      : request.object === "copy" ? this.resolveCopy(request.name) : this.resolve(request.object, request.name);
    if (typeof target === "string") {
      done({ ok: false, error: "bad-request", message: target });
      return;
    }
    this.board.ingress.control(request, () => this.board.clock.after(0, () => done(this.apply(request, target))));
  }

  private apply(request: ControlRequest, target: Target | undefined): ControlAnswer {
    const boardTimeNs = this.board.clock.nowNs;
    const at = `at ${(boardTimeNs / 1e9).toFixed(6)} s`;
    if (request.object === "status") {
      return { ok: true, boardTimeNs, message: `board ${this.board.name} ${at}`, status: { board: this.board.name, volumes: this.volumes.list() } };
    }
    this.board.trace.record(boardTimeNs, "board", "control", { object: request.object, name: request.name, action: request.action });
    if (target?.kind === "disk") {
      const what = request.object !== "copy" ? `disk ${target.name} (${target.disk})`
        : target.spareOf === undefined ? `copy ${target.name} (${target.disk})`
          : `copy ${target.name} (${target.disk}, the spare in ${target.spareOf}'s place)`;
      if (request.action === "fail") {
        if (this.board.isDiskPulled(target.disk)) return { ok: true, boardTimeNs, message: `${what} was already pulled` };
        this.board.pullDisk(target.disk);
        return { ok: true, boardTimeNs, message: `${what} pulled ${at}` };
      }
      if (request.action === "restore") {
        if (!this.board.isDiskPulled(target.disk)) return { ok: true, boardTimeNs, message: `${what} was not pulled` };
        this.board.restoreDisk(target.disk);
        return { ok: true, boardTimeNs, message: `${what} put back ${at}, with what it held` };
      }
      let aside: string | undefined;
      try {
        aside = this.board.replaceDisk(target.disk);
      } catch (error) {
        if ((error as Error).name !== "DiskFileError" && (error as Error).name !== "DiskIoError") throw error;
        return { ok: false, error: "failed", message: `${what}: not replaced: ${(error as Error).message}` };
      }
      return { ok: true, boardTimeNs, message: `${what} replaced by a blank disk ${at}` + (aside === undefined ? "" : `; the old image is ${aside}`) };
    }
    if (target?.kind === "controller") {
      const what = `controller ${target.name} (slot ${target.slot.slot})`;
      const device = target.slot.device;
      if (request.action === "hang") {
        if (device.isHung) return { ok: true, boardTimeNs, message: `${what} was already hung` };
        device.hang();
        return { ok: true, boardTimeNs, message: `${what} hung ${at}: it completes nothing until the driver resets it or it is resumed` };
      }
      if (!device.isHung) return { ok: true, boardTimeNs, message: `${what} was not hung` };
      device.resume();
      return { ok: true, boardTimeNs, message: `${what} resumed ${at}` };
    }
    throw new Error(`control: ${request.object} without a target`);
  }

  // VOLUME:COPY (a replica's name or number, copy 0 or 1) to the copy's disk (the hot spare in its place, once one
  // took it: copy_places.ts), or one line naming what exists.
  private resolveCopy(name: string): Target | string {
    const [volumeText, copyText] = name.split(":") as [string, string];
    const volumes = this.board.spec.volumes;
    const replicas = volumes.filter((v) => v.type === "replica").map((v) => v.name);
    const volume = /^\d+$/.test(volumeText) ? volumes[Number(volumeText)] : volumes.find((v) => v.name === volumeText);
    if (volume === undefined || volume.type !== "replica") {
      return `no replica volume ${JSON.stringify(volumeText)} on board ${this.board.name}; replicas: ${replicas.length > 0 ? replicas.join(", ") : "none"}`;
    }
    const copy = Number(copyText);
    const disk = volume.members[copy];
    if (disk === undefined) return `no copy ${name}: volume ${volume.name} has copies ${volume.name}:0 (${volume.members[0]}) and ${volume.name}:1 (${volume.members[1]})`;
    const place = this.copyPlaces.placeOf(volumes.indexOf(volume), copy);
    const remote = this.board.spec.remoteDisks?.find((d) => d.name === disk);
    if (place === undefined && remote !== undefined) {
      return `copy ${name} is board ${remote.board}'s disk ${remote.disk.name}: fail it on that board (disk host:${remote.index} on its control), or power board ${remote.board} off`;
    }
    if (place === undefined) return { kind: "disk", name, disk };
    const processor = this.board.spec.processors[place.processor];
    const spare = processor === undefined ? undefined
      : this.board.controllersOf(processor.name).flatMap((s) => s.disks)[place.disk];
    if (spare === undefined) return `copy ${name}: a spare took its place, at processor ${place.processor} disk ${place.disk}, which board ${this.board.name} does not have`;
    return { kind: "disk", name, disk: spare, spareOf: disk };
  }

  // PROCESSOR:INDEX to what it names on this board, or one line naming what was wrong and what exists.
  private resolve(object: "disk" | "controller", name: string): Target | string {
    const [processor, indexText] = name.split(":") as [string, string];
    const names = this.board.processors.map((p) => p.name);
    if (!names.includes(processor)) return `no processor ${JSON.stringify(processor)} on board ${this.board.name}; processors: ${names.join(", ")}`;
    const slots = this.board.controllersOf(processor);
    const index = Number(indexText);
    if (object === "controller") {
      const slot = slots[index];
      if (slot !== undefined) return { kind: "controller", name, slot };
      const list = slots.map((s, i) => `${processor}:${i} (slot ${s.slot})`);
      return `no controller ${name}: processor ${processor} has ${countOf(list.length, "storage controller")}${list.length > 0 ? `: ${list.join(", ")}` : ""}`;
    }
    const disks = slots.flatMap((s) => s.disks);
    const disk = disks[index];
    if (disk !== undefined) return { kind: "disk", name, disk };
    const list = disks.map((d, i) => `${processor}:${i} (${d})`);
    return `no disk ${name}: processor ${processor} has ${countOf(list.length, "disk")}${list.length > 0 ? `: ${list.join(", ")}` : ""}`;
  }
}

function countOf(count: number, noun: string): string {
  return count === 0 ? `no ${noun}s` : `${count} ${noun}${count === 1 ? "" : "s"}`;
}
