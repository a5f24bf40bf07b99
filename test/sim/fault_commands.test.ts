// Faults injected into a running board through its one control door (host/board/control.ts), as `wasm-iop fault`
// does, and what the firmware makes of them, seen by an iSCSI initiator. What it proves: a command takes effect at a
// clock event at the board time it was submitted, not inside the submit call; a pulled disk fails its LUN's I/O
// visibly (CHECK CONDITION) while the other LUN keeps working and nothing panics; a replaced disk serves zeros at
// once (the firmware's driver absorbs the disk's unit attention); a hung controller's I/O fails once the firmware's
// request timeout resets the controller, and the LUN works again after that; the same commands at the same board
// times give the same bus trace. And a RAID-5 volume with a member pulled goes degraded, reads on, and `status` shows
// the volume line the firmware printed.
// How: the iSCSI sim board (host + sp1, one memory disk each, LUN 0 on the host, LUN 1 on sp1), the test initiator;
// for RAID 5, the test build's CTA client over four disks on two storage processors.
import { describe, expect, it } from "vitest";
import { BoardControl, type ControlAnswer, type ControlRequest } from "../../host/board/control.ts";
import { testBoard } from "../support/board.ts";
import { bootIscsiBoard, type IscsiEnv, TEST_BOARD_TARGET } from "../support/iscsi_board.ts";
import { Initiator, InitiatorError, seeded } from "../support/iscsi_initiator.ts";

const BLOCK = 512;
const S = 1_000_000_000;

function session(env: IscsiEnv): Initiator {
  // Board time to wait for an answer: past the firmware's 2 s request timeout, so a hung controller's I/O is answered.
  const i = new Initiator(env.board, env.network, { targetName: TEST_BOARD_TARGET, timeoutNs: 10 * S });
  i.login();
  i.clearUnitAttention(0);
  i.clearUnitAttention(1);
  return i;
}

/** Submits `request` and runs the board until it has been answered (it is, at the next clock event). */
function command(env: Pick<IscsiEnv, "board">, control: BoardControl, request: ControlRequest): ControlAnswer {
  let answer: ControlAnswer | undefined;
  control.submit(request, (a) => (answer = a));
  env.board.runFor(0);
  expect(answer).toBeDefined();
  return answer!;
}

/** The sense key/ASC/ASCQ of a READ(10) that must fail, as the initiator's error names it. */
function readFails(i: Initiator, lun: number, lba: number): string {
  try {
    i.read(lun, lba, 1);
  } catch (error) {
    expect(error).toBeInstanceOf(InitiatorError);
    return /sense (\w\w\/\w\w\/\w\w)/.exec((error as Error).message)?.[1] ?? (error as Error).message;
  }
  throw new Error(`READ(10) on LUN ${lun} succeeded`);
}

describe("faults through the board's control", () => {
  it("applies a command at a clock event at the current board time, never inside submit()", () => {
    const env = bootIscsiBoard();
    const control = new BoardControl(env.board);
    const nowNs = env.board.clock.nowNs;
    let answer: ControlAnswer | undefined;
    control.submit({ object: "disk", name: "sp1:0", action: "fail" }, (a) => (answer = a));
    expect(answer).toBeUndefined();
    expect(env.board.isDiskPulled("sp1-disk0")).toBe(false);
    env.board.runFor(0);
    expect(answer).toEqual({ ok: true, boardTimeNs: nowNs, message: `disk sp1:0 (sp1-disk0) pulled at ${(nowNs / 1e9).toFixed(6)} s` });
    expect(env.board.isDiskPulled("sp1-disk0")).toBe(true);
  });

  it("a pulled disk fails its LUN's I/O visibly; the other LUN works on; a blank replacement is said once, then serves zeros", () => {
    const env = bootIscsiBoard();
    const control = new BoardControl(env.board);
    const i = session(env);
    const data = seeded("pulled", 8 * BLOCK);
    i.write(1, 16, data);
    expect(command(env, control, { object: "disk", name: "sp1:0", action: "fail" }).ok).toBe(true);
    expect(readFails(i, 1, 16)).toBe("05/25/00"); // the RTA's NoDisk: ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED
    i.write(0, 16, data); // the host's disk
    expect(i.read(0, 16, 8)).toEqual(data);
    expect(env.console.filter((l) => /resetting the controller|giving up/.test(l))).toEqual([]); // a missing disk is no controller fault

    const replaced = command(env, control, { object: "disk", name: "sp1:0", action: "replace" });
    expect(replaced).toMatchObject({ ok: true, message: expect.stringMatching(/^disk sp1:0 \(sp1-disk0\) replaced by a blank disk at /) });
    // The first command meets the new disk's power-on unit attention: the firmware's driver says the disk changed
    // (a RAID would rebuild it), which a plain disk volume answers as a retryable ABORTED COMMAND; then it is blank.
    expect(readFails(i, 1, 16)).toBe("0b/08/00");
    expect(i.read(1, 16, 8)).toEqual(new Uint8Array(8 * BLOCK));
    i.write(1, 16, data);
    expect(i.read(1, 16, 8)).toEqual(data);
    expect(env.board.panics).toEqual([]);
  });

  it("a hung controller's I/O fails when the firmware's request timeout resets it, and the LUN works again", () => {
    const env = bootIscsiBoard();
    const control = new BoardControl(env.board);
    const i = session(env);
    const data = seeded("hung", 4 * BLOCK);
    i.write(1, 0, data);
    expect(command(env, control, { object: "controller", name: "sp1:0", action: "hang" }).ok).toBe(true);
    const startNs = env.board.clock.nowNs;
    const sense = readFails(i, 1, 0);
    expect(env.board.clock.nowNs - startNs).toBeGreaterThanOrEqual(2 * S); // the DDM's VSCSI_REQUEST_TIMEOUT_NS
    expect(sense).toBe("0b/08/00"); // ABORTED COMMAND, LOGICAL UNIT COMMUNICATION FAILURE: retryable
    expect(env.console.some((l) => /^sp1 2: vscsi0: 1 requests timed out/.test(l))).toBe(true);
    expect(env.board.controllersOf("sp1")[0]!.device.isHung).toBe(false); // the firmware's reset ended the hang
    expect(i.read(1, 0, 4)).toEqual(data);
    expect(env.board.panics).toEqual([]);
  });

  it("a hung controller resumed before the timeout completes the I/O it held", () => {
    const env = bootIscsiBoard();
    const control = new BoardControl(env.board);
    const i = session(env);
    const data = seeded("resumed", 4 * BLOCK);
    i.write(1, 0, data);
    command(env, control, { object: "controller", name: "sp1:0", action: "hang" });
    env.board.clock.after(S / 2, () => control.submit({ object: "controller", name: "sp1:0", action: "resume" }, () => undefined));
    expect(i.read(1, 0, 4)).toEqual(data);
    expect(env.console.some((l) => l.includes("timed out"))).toBe(false);
  });

  it("gives the same bus trace for the same commands at the same board times", () => {
    const digest = (): string => {
      const env = bootIscsiBoard();
      const control = new BoardControl(env.board);
      const i = session(env);
      command(env, control, { object: "disk", name: "sp1:0", action: "fail" });
      readFails(i, 1, 0);
      command(env, control, { object: "disk", name: "sp1:0", action: "replace" });
      readFails(i, 1, 0); // the new disk's power-on unit attention
      i.read(1, 0, 1);
      return env.board.trace.digest();
    };
    expect(digest()).toBe(digest());
  });

  it("a RAID-5 member pulled: the volume goes degraded and reads on, and status shows the firmware's volume line", () => {
    const t = testBoard({
      ramMiB: [64, 32, 32], disksMiB: [[], [8, 8], [8, 8]], seed: 5,
      volumes: [{ name: "r5", type: "raid5", members: ["sp1-disk0", "sp2-disk0", "sp1-disk1", "sp2-disk1"], chunkKiB: 8 }],
    });
    for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
    expect(t.call("testUmaReady")).toBe(1);
    const control = new BoardControl(t.board);
    const Fn = { Read: 3, Write: 4 } as const; // assembly/board/frame.ts FrameFunction
    const PAGE = 1; // 4 KiB buffers
    const ram = () => new Uint8Array(t.host.memory.buffer);
    const data = seeded("raid5", 4 * 4096);
    const io = (fn: number): number => { // 16 KiB at block 64 of LUN 0; the request's status
      const r = t.call("testClientPrepare", PAGE, 4) as number;
      if (fn === Fn.Write) for (let p = 0; p < 4; p++) ram().set(data.subarray(p * 4096, (p + 1) * 4096), t.call("testClientBufferAddress", r, p) as number);
      expect(t.call("testClientSubmit", r, fn, 0, 64n, 32)).toBe(1);
      for (let i = 0; i < 1000 && t.call("testClientStatus", r) === 0xff; i++) t.board.runFor(1_000_000);
      const status = t.call("testClientStatus", r) as number;
      if (fn === Fn.Read && status === 0) for (let p = 0; p < 4; p++) {
        const at = t.call("testClientBufferAddress", r, p) as number;
        expect(ram().slice(at, at + 4096)).toEqual(data.subarray(p * 4096, (p + 1) * 4096));
      }
      t.call("testClientRelease", r);
      return status;
    };
    expect(io(Fn.Write)).toBe(0);
    expect(command(t, control, { object: "disk", name: "sp2:0", action: "fail" }).ok).toBe(true);
    expect(io(Fn.Read)).toBe(0); // the pulled member's chunk rebuilt from the others
    for (const line of t.console) control.observeConsole(line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(": ") + 2));
    const status = command(t, control, { object: "status" });
    expect(status.ok && status.status!.volumes.map((v) => v.record.state)).toEqual(["degraded"]);
    expect(t.stops).toEqual([]);
  });

  // A replica's copy by its volume: `copy rep:1 fail` pulls the copy's disk, `copy rep:1 restore` puts it back with
  // what it held; the firmware copies to it only the regions written meanwhile. Names the board lacks are refused
  // with what exists.
  it("a replica's copy failed and restored by its volume: degraded, then only the regions written meanwhile copied back", () => {
    const t = testBoard({
      ramMiB: [64, 32, 32], disksMiB: [[], [8], [8]], seed: 5,
      volumes: [{ name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0"], chunkKiB: 64 }],
    });
    for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
    expect(t.call("testUmaReady")).toBe(1);
    const control = new BoardControl(t.board);
    const bad = (name: string) => { const a = command(t, control, { object: "copy", name, action: "fail" }); return a.ok ? "" : a.message; };
    expect(bad("rep:2")).toBe("no copy rep:2: volume rep has copies rep:0 (sp1-disk0) and rep:1 (sp2-disk0)");
    expect(bad("r5:0")).toBe('no replica volume "r5" on board test-board; replicas: rep');
    const ram = () => new Uint8Array(t.host.memory.buffer);
    const data = seeded("replica", 4096);
    const write = (): number => {
      const r = t.call("testClientPrepare", 1, 1) as number;
      ram().set(data, t.call("testClientBufferAddress", r, 0) as number);
      expect(t.call("testClientSubmit", r, 4, 0, 64n, 8)).toBe(1);
      for (let i = 0; i < 1000 && t.call("testClientStatus", r) === 0xff; i++) t.board.runFor(1_000_000);
      const status = t.call("testClientStatus", r) as number;
      t.call("testClientRelease", r);
      return status;
    };
    const failed = command(t, control, { object: "copy", name: "rep:1", action: "fail" });
    expect(failed.ok && failed.message).toMatch(/^copy rep:1 \(sp2-disk0\) pulled at /);
    expect(t.board.isDiskPulled("sp2-disk0")).toBe(true);
    expect(write()).toBe(0);
    const volume = () => t.console.filter((l) => l.includes(" volume index=0 ")).at(-1);
    expect(volume()).toMatch(/state=degraded copies=current,failed/);
    const restored = command(t, control, { object: "copy", name: "rep:1", action: "restore" });
    expect(restored.ok && restored.message).toMatch(/^copy rep:1 \(sp2-disk0\) put back at .* with what it held$/);
    expect(command(t, control, { object: "disk", name: "sp2:0", action: "restore" })).toMatchObject({ ok: true, message: "disk sp2:0 (sp2-disk0) was not pulled" });
    for (let i = 0; i < 500 && !/state=optimal/.test(volume() ?? ""); i++) t.board.runFor(10_000_000);
    expect(volume()).toMatch(/state=optimal copies=current,current/);
    expect(t.console.join("\n")).toMatch(/copying 1 regions of volume 0 from copy 0 to copy 1/);
    expect(t.stops).toEqual([]);
  });

  // Once a hot spare has taken a copy's place, the board file's disk of that copy is no longer the volume's: `fault
  // copy` names the spare in its place (the firmware says which disk it took; host/board/copy_places.ts).
  it("a replica's copy whose place a spare took: fault copy names the spare, fails and restores it", () => {
    const volumes = [{ name: "rep", type: "replica", copies: ["sp1-disk0", "sp2-disk0"], chunkKiB: 64, spares: ["host-disk0"] }];
    const boot = () => {
      const t = testBoard({ ramMiB: [64, 32, 32], disksMiB: [[8], [8], [8]], seed: 5, volumes });
      const control = new BoardControl(t.board);
      for (let i = 0; i < 400 && t.call("testUmaReady") !== 1; i++) t.board.runFor(5_000_000);
      expect(t.call("testUmaReady")).toBe(1);
      return { t, control };
    };
    const { t, control } = boot();
    let seen = 0;
    const feed = () => { // the console lines since the last feed, as `run` hands them to its control
      for (const line of t.console.slice(seen)) control.observeConsole(line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(": ") + 2));
      seen = t.console.length;
    };
    const ram = () => new Uint8Array(t.host.memory.buffer);
    const write = (): number => {
      const r = t.call("testClientPrepare", 1, 1) as number;
      ram().set(seeded("spare", 4096), t.call("testClientBufferAddress", r, 0) as number);
      expect(t.call("testClientSubmit", r, 4, 0, 64n, 8)).toBe(1);
      for (let i = 0; i < 1000 && t.call("testClientStatus", r) === 0xff; i++) t.board.runFor(1_000_000);
      const status = t.call("testClientStatus", r) as number;
      t.call("testClientRelease", r);
      return status;
    };
    const volume = () => t.console.filter((l) => l.includes(" volume index=0 ")).at(-1) ?? "";
    const settle = (state: RegExp) => { for (let i = 0; i < 500 && !state.test(volume()); i++) t.board.runFor(10_000_000); feed(); };
    feed();
    const first = command(t, control, { object: "copy", name: "rep:1", action: "fail" });
    expect(first.ok && first.message).toMatch(/^copy rep:1 \(sp2-disk0\) pulled at /);
    expect(write()).toBe(0);
    settle(/state=optimal/);
    expect(volume()).toMatch(/state=optimal copies=current,current/);
    expect(t.console.join("\n")).toMatch(/volumes: a spare takes copy 1 of volume 0; the whole volume is copied to it \(processor 0 disk 0\)/);
    // Copy 1 is host-disk0 now: failing it pulls the spare, not sp2-disk0 again.
    const second = command(t, control, { object: "copy", name: "rep:1", action: "fail" });
    expect(second.ok && second.message).toMatch(/^copy rep:1 \(host-disk0, the spare in sp2-disk0's place\) pulled at /);
    expect(t.board.isDiskPulled("host-disk0")).toBe(true);
    expect(write()).toBe(0);
    settle(/state=degraded/);
    expect(volume()).toMatch(/state=degraded copies=current,failed/);
    const restored = command(t, control, { object: "copy", name: "rep:1", action: "restore" });
    expect(restored.ok && restored.message).toMatch(/^copy rep:1 \(host-disk0, the spare in sp2-disk0's place\) put back at .* with what it held$/);
    settle(/state=optimal/);
    expect(volume()).toMatch(/state=optimal copies=current,current/);
    expect(t.board.isDiskPulled("sp2-disk0")).toBe(true); // the old disk stays out: it is no copy any more
    expect(t.stops).toEqual([]);
  });
});
