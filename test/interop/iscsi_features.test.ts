// Features of the iSCSI target against real initiators nobody here wrote (Debian's libiscsi tools, and QEMU's iSCSI
// driver, which is libiscsi too): CHAP, one-way and mutual, with the credentials libiscsi takes in the URL
// (iscsi://user%secret@host/iqn/lun) and, for the target's side of mutual CHAP, in LIBISCSI_CHAP_TARGET_USERNAME and
// LIBISCSI_CHAP_TARGET_PASSWORD; refusals for a wrong secret, a wrong target secret and an initiator not on the
// allow list; discovery of eight targets with long names; and immediate data: the firmware's log line at the end of
// each connection says how a write's data came (immediate, unsolicited Data-Out, R2Ts). Without the Debian tools
// these tests say what they skipped; under CI (CI=true) a missing tool is a failure.
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_BOARD_PATH } from "../../host/board/load.ts";
import { serveBoard, type ServingBoard } from "../../tools/conformance/serve.ts";
import { scaled, until } from "../support/time.ts";

const run = promisify(execFile);
const TOOLS = ["iscsi-ls", "iscsi-inq", "qemu-io"];
const missing = TOOLS.filter((tool) => spawnSync(tool, ["--help"], { stdio: "ignore" }).error !== undefined);
if (missing.length > 0) {
  const message = `iSCSI feature interop tests skipped: ${missing.join(", ")} not installed (Debian: apt-get install libiscsi-bin qemu-utils qemu-block-extra)`;
  if (process.env.CI === "true") throw new Error(`${message}; CI must have them`);
  process.stderr.write(`${message}\n`);
}

const PREFIX = "iqn.2026-11.org.wasm-iop:";
const ALLOWED = "iqn.2026-11.org.example:allowed";
const LONG = (n: number) => `${PREFIX}${"long-name-".repeat(18)}${n}`; // ~210 bytes: eight fill 2 KiB of SendTargets
const TARGETS = [
  { name: `${PREFIX}open`, luns: [0, 1, 2] },
  { name: `${PREFIX}oneway`, luns: [1], chap: { user: "alice", secret: "alice-secret-12" } },
  { name: `${PREFIX}mutual`, luns: [2], chap: { user: "bob", secret: "bob-secret-1234", mutualUser: "target-t", mutualSecret: "target-secret-99" } },
  { name: `${PREFIX}allowlist`, luns: [0], initiators: [ALLOWED] },
  ...[4, 5, 6, 7].map((n) => ({ name: LONG(n), luns: [0] })),
];

function boardFile(dir: string): string {
  const board = JSON.parse(readFileSync(DEFAULT_BOARD_PATH, "utf8")) as Record<string, unknown>;
  delete board.$schema;
  delete board.flash; // its key paths are relative to boards/
  board.targets = TARGETS;
  const path = join(dir, "features.json");
  writeFileSync(path, JSON.stringify(board));
  return path;
}

/** Runs a tool; its exit status, stdout and stderr (never throws for a non-zero exit). */
async function tool(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { env: { ...process.env, ...env }, timeout: scaled(30_000) });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

describe.skipIf(missing.length > 0)("iSCSI features with Debian's initiators", () => {
  let serving: ServingBoard;
  let host: string;
  let dir: string | undefined; // the board file's; removed once the board has stopped
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "wasm-iop-features-"));
    serving = await serveBoard({ boardPath: boardFile(dir), timeoutMs: scaled(20_000) });
    host = serving.urls[0]!.replace(/^iscsi:\/\//, "").replace(/\/.*$/, "");
  }, scaled(60_000));
  afterAll(async () => {
    await serving?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("lists the seven targets this initiator may log in to, the long-named ones included (iscsi-ls, SendTargets=All)", async () => {
    const { code, out } = await tool("iscsi-ls", [`iscsi://${host}`]);
    expect(code, out).toBe(0);
    for (const t of TARGETS.filter((t) => t.initiators === undefined)) expect(out).toContain(`Target:${t.name} Portal:${host}`);
    expect(out).not.toContain("allowlist"); // SendTargets lists only what the initiator may log in to
    const allowed = await tool("iscsi-ls", ["-i", ALLOWED, `iscsi://${host}`]);
    for (const t of TARGETS) expect(allowed.out).toContain(`Target:${t.name} Portal:${host}`);
  });

  it("logs in with one-way CHAP, and refuses a wrong secret and a missing one (iscsi-inq)", async () => {
    const good = await tool("iscsi-inq", [`iscsi://alice%alice-secret-12@${host}/${PREFIX}oneway/0`]);
    expect(good.code, good.out).toBe(0);
    expect(good.out).toContain("Vendor:WASM-IOP");
    const wrong = await tool("iscsi-inq", [`iscsi://alice%wrong-secret-00@${host}/${PREFIX}oneway/0`]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/[Ll]ogin|[Aa]uthentication/);
    const none = await tool("iscsi-inq", [`iscsi://${host}/${PREFIX}oneway/0`]);
    expect(none.code).not.toBe(0);
  });

  it("logs in with mutual CHAP, the target proving itself with its own secret, and refuses a wrong target secret", async () => {
    const url = `iscsi://bob%bob-secret-1234@${host}/${PREFIX}mutual/0`;
    const good = await tool("iscsi-inq", [url], { LIBISCSI_CHAP_TARGET_USERNAME: "target-t", LIBISCSI_CHAP_TARGET_PASSWORD: "target-secret-99" });
    expect(good.code, good.out).toBe(0);
    expect(good.out).toContain("Vendor:WASM-IOP");
    // The initiator checks the target's CHAP_R: with the wrong target secret it must give up.
    const wrongTarget = await tool("iscsi-inq", [url], { LIBISCSI_CHAP_TARGET_USERNAME: "target-t", LIBISCSI_CHAP_TARGET_PASSWORD: "not-the-secret-0" });
    expect(wrongTarget.code).not.toBe(0);
    const wrongInitiator = await tool("iscsi-inq", [`iscsi://bob%bob-wrong-00000@${host}/${PREFIX}mutual/0`], { LIBISCSI_CHAP_TARGET_USERNAME: "target-t", LIBISCSI_CHAP_TARGET_PASSWORD: "target-secret-99" });
    expect(wrongInitiator.code).not.toBe(0);
  });

  it("lets only the initiators on the allow list log in", async () => {
    const allowed = await tool("iscsi-inq", ["-i", ALLOWED, `iscsi://${host}/${PREFIX}allowlist/0`]);
    expect(allowed.code, allowed.out).toBe(0);
    const other = await tool("iscsi-inq", ["-i", "iqn.2026-11.org.example:stranger", `iscsi://${host}/${PREFIX}allowlist/0`]);
    expect(other.code).not.toBe(0);
    expect(serving.log.some((l) => l.includes("login refused") && l.includes("0202") && l.includes("stranger"))).toBe(true);
  });

  it("gets immediate data from QEMU's libiscsi driver: a 1 MiB write's first 64 KiB come with the command", async () => {
    const url = `iscsi://${host}/${PREFIX}open/1`;
    const seen = serving.log.length;
    const { code, out } = await tool("qemu-io", ["-f", "raw", "-c", "write -P 0x3c 0 1M", url]);
    expect(code, out).toBe(0);
    const endsSince = () => serving.log.slice(seen).filter((l) => l.includes("iscsi: connection") && l.includes(" ends: "));
    await until(() => endsSince().length > 0, "the connection's end in the board's log");
    const ends = endsSince();
    process.stdout.write(`qemu-io write 1M: ${ends.join(" | ")}\n`);
    const figures = ends.map((l) => /immediate data (\d+) bytes, unsolicited Data-Out (\d+) bytes, (\d+) R2Ts/.exec(l)!).map((m) => m.slice(1).map(Number));
    const immediate = figures.reduce((sum, f) => sum + f[0]!, 0);
    expect(immediate).toBeGreaterThanOrEqual(65536);
    const read = await tool("qemu-io", ["-f", "raw", "-c", "read -P 0x3c 0 1M", url]);
    expect(read.out).toMatch(/read 1048576\/1048576 bytes/);
  }, scaled(60_000));
});
