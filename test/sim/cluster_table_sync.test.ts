// Routing-table changes at run time (docs/cluster.md, "Changing the table"; assembly/cluster/table_sync.ts): three
// boards of one cluster on the board clock, the test image's exports proposing changes. Proves that a change (a page's
// owner moving, a board leaving) reaches every board; that no board ever activates a version before every board has
// staged (acknowledged) it, also with packets dropped and duplicated and links flapping, checked against the console
// lines' board times; that a proposal a board cannot answer is abandoned with nothing changed anywhere; that a
// board that starts again (booting on its ROM's version 1) fetches the current table before it serves a page, from
// another board when the first stops answering, and holds its partitioned volumes back for as long as no board can give
// it the table; and that a board that missed a Commit learns the table from the next proposal.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "../../host/cluster/cluster.ts";
import { loadClusterFile } from "../../host/cluster/cluster_file.ts";
import { ROOT } from "../../host/root.ts";
import { Prng } from "../../host/sim/prng.ts";
import { FIRMWARE_TEST_PATH } from "../../tools/build/firmware.ts";
import { firmwareModule, unsigned } from "../support/board.ts";

const dir = mkdtempSync(join(tmpdir(), "wasm-iop-table-sync-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const NAMES = ["a", "b", "c"];
const ANY = 0xff;

let cluster: Cluster;
const lines: string[] = []; // every board's console, "name: line"
let onLine: ((line: string) => void) | undefined; // a test's hook on every console line ("name: line"), as it is said
// Per board and version: the board time it staged (acknowledged) and activated it.
const staged = new Map<string, number>();
const active = new Map<string, number>();

const call = (board: string, name: string, ...args: number[]) => unsigned(cluster.board(board).processors[0]!.invoke(name, ...args)) as number;
const run = (ns: number) => cluster.runUntil(cluster.clock.nowNs + ns);

beforeAll(() => {
  const node = JSON.parse(readFileSync(join(ROOT, "boards/cluster-node.json"), "utf8"));
  node.disks[0] = { name: "pv0", sizeMiB: 4, blockSize: 512, backend: "memory" };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "node.json"), JSON.stringify(node));
  const file = JSON.parse(readFileSync(join(ROOT, "clusters/trio.json"), "utf8"));
  for (const b of file.boards) b.file = "node.json";
  file.volumes[0] = { volume: "pv0", pageBlocks: 256, pageCount: 32, owners: { roundRobinFrom: "a" } };
  writeFileSync(join(dir, "trio.json"), JSON.stringify(file));
  cluster = new Cluster({
    cluster: loadClusterFile(join(dir, "trio.json")),
    firmware: firmwareModule(FIRMWARE_TEST_PATH),
    boardOptions: (name) => ({
      dataDir: join(dir, name),
      onStop: (p, report) => { if (report !== undefined) lines.push(`${name}/${p} STOP ${report.kind} ${report.message}`); },
      onConsole: (_p, _fd, line) => {
        lines.push(`${name}: ${line}`);
        onLine?.(`${name}: ${line}`);
        const m = /cluster: routing table version (\d+) (staged|active)/.exec(line);
        const proposing = /cluster: proposing routing table version (\d+)/.exec(line);
        const now = cluster.clock.nowNs;
        if (proposing !== null) staged.set(`${name}/${proposing[1]}`, now); // the coordinator stages as it proposes
        if (m !== null) (m[2] === "staged" ? staged : active).set(`${name}/${m[1]}`, now);
      },
    }),
  });
  expect(cluster.powerOn(), lines.slice(-20).join("\n")).toBe(true);
  for (let i = 0; i < 400 && lines.filter((l) => l.includes("tts: serving")).length < 3; i++) run(5_000_000);
  run(20_000_000);
}, 120_000);

// Every activation of every version came after every board staged that version.
function checkNoEarlyUse(): number {
  let checked = 0;
  for (const [key, at] of active) {
    const version = key.split("/")[1]!;
    for (const b of NAMES) {
      const s = staged.get(`${b}/${version}`);
      expect(s, `board ${b} staged version ${version} before ${key} activated it`).toBeDefined();
      expect(s!).toBeLessThanOrEqual(at);
    }
    checked += 1;
  }
  return checked;
}

describe("routing-table changes across boards", () => {
  it("moves a page's owner on every board, each activating only after all three staged it", () => {
    expect(call("a", "testClusterVersion")).toBe(1);
    expect(call("a", "testClusterOwner", 0, 1)).toBe(1); // page 1: b (round robin from a)
    expect(call("a", "testClusterPropose", 0, 1, 1, ANY, 2)).toBe(1); // page 1 to c
    run(20_000_000);
    for (const b of NAMES) {
      expect(call(b, "testClusterVersion"), b).toBe(2);
      expect(call(b, "testClusterOwner", 0, 1), b).toBe(2);
      expect(call(b, "testClusterOwner", 0, 4), b).toBe(1); // the others stay
    }
    expect(checkNoEarlyUse()).toBe(3);
  });

  it("a board leaving: its pages go to another board, everywhere", () => {
    expect(call("c", "testClusterPropose", 0, 0, 32, 1, 0)).toBe(1); // every page of b to a, proposed by c
    run(20_000_000);
    for (const b of NAMES) {
      expect(call(b, "testClusterVersion"), b).toBe(3);
      for (let p = 0; p < 32; p++) expect(call(b, "testClusterOwner", 0, p), `${b} page ${p}`).not.toBe(1);
    }
    checkNoEarlyUse();
  });

  it("a proposal a board cannot answer is abandoned: nobody uses it", () => {
    cluster.fabric.setLink(2, 0, false);
    cluster.fabric.setLink(2, 1, false);
    expect(call("a", "testClusterPropose", 0, 3, 1, ANY, 2)).toBe(1);
    run(100_000_000);
    for (const b of NAMES) expect(call(b, "testClusterVersion"), b).toBe(3);
    expect(active.has("a/4") || active.has("c/4")).toBe(false);
    expect(staged.has("c/4")).toBe(true); // c acknowledged, and let it go
    cluster.fabric.setLink(2, 0, true);
    cluster.fabric.setLink(2, 1, true);
    run(300_000_000); // past every hold
  });

  it("under dropped, duplicated packets and flapping links, no board uses a version another has not staged", () => {
    const prng = new Prng(17);
    let proposals = 0;
    for (let round = 0; round < 40; round++) {
      const fault = prng.intBelow(4);
      if (fault === 0) cluster.fabric.inject({ kind: "drop-next", count: 1 + prng.intBelow(6) });
      if (fault === 1) cluster.fabric.inject({ kind: "duplicate-next", count: 1 + prng.intBelow(6) });
      if (fault === 2) cluster.fabric.setLink(1 + prng.intBelow(3), prng.intBelow(2), false);
      if (fault === 3) for (const address of [1, 2, 3]) for (const link of [0, 1]) cluster.fabric.setLink(address, link, true);
      const by = NAMES[prng.intBelow(3)]!;
      if (call(by, "testClusterPropose", 0, prng.intBelow(32), 1 + prng.intBelow(4), ANY, prng.intBelow(3)) === 1) proposals += 1;
      run(1_000_000 * (1 + prng.intBelow(120)));
      checkNoEarlyUse();
    }
    for (const address of [1, 2, 3]) for (const link of [0, 1]) cluster.fabric.setLink(address, link, true);
    run(6_000_000_000); // commits retried to the end, holds lapsed
    const versions = NAMES.map((b) => call(b, "testClusterVersion"));
    expect(proposals).toBeGreaterThan(5);
    const checked = checkNoEarlyUse();
    expect(checked).toBeGreaterThan(9); // activations checked, across the rounds
    expect(new Set(versions).size, `versions ${versions}`).toBe(1); // the links back, every board ends on one version
    for (let p = 0; p < 32; p++) {
      const owners = new Set(NAMES.map((b) => call(b, "testClusterOwner", 0, p)));
      expect(owners.size, `page ${p}`).toBe(1);
    }
  }, 120_000);

  it("a board that starts again fetches the table the others use before it serves a page of the volume", () => {
    const version = call("a", "testClusterVersion");
    expect(version).toBeGreaterThan(2); // the table changed since boot: page owners no longer the ROM's round robin
    const owners = Array.from({ length: 32 }, (_, p) => call("a", "testClusterOwner", 0, p));
    expect(owners.some((o, p) => o !== p % 3)).toBe(true);
    const fetched = lines.length;
    cluster.board("b").powerCut();
    run(50_000_000);
    expect(cluster.board("b").powerOn()).toBe(true);
    for (let i = 0; i < 400 && !lines.slice(fetched).some((l) => l.startsWith("b: tts: serving")); i++) run(5_000_000);
    run(50_000_000);
    const after = lines.slice(fetched);
    expect(after.filter((l) => l.startsWith("b: ")).join("\n")).toMatch(new RegExp(`b: cluster: routing table version ${version} active \\(fetched from board \\d\\)`));
    expect(call("b", "testClusterVersion")).toBe(version);
    for (let p = 0; p < 32; p++) expect(call("b", "testClusterOwner", 0, p), `page ${p}`).toBe(owners[p]);
    // It used no table before: the version it serves with is the fetched one, said after the fetch.
    const inUse = after.findIndex((l) => /^b: cluster: routing table version \d+ in use/.test(l));
    const active = after.findIndex((l) => l.includes("b: cluster: routing table version") && l.includes("fetched from board"));
    expect(inUse).toBeGreaterThan(active);
    expect(after[inUse]).toContain(`version ${version} in use`);
    // And it takes part in changes again: a proposal from b itself commits everywhere.
    expect(call("b", "testClusterPropose", 0, 5, 1, ANY, 0)).toBe(1);
    run(20_000_000);
    for (const b of NAMES) expect(call(b, "testClusterVersion"), b).toBe(version + 1);
    checkNoEarlyUse();
  }, 120_000);

  const ADDRESS: Record<string, number> = { a: 1, b: 2, c: 3 };
  const links = (name: string, up: boolean) => { for (const link of [0, 1]) cluster.fabric.setLink(ADDRESS[name]!, link, up); };
  it("a fetch its board stops answering goes on from another board that has the version", () => {
    const version = call("a", "testClusterVersion");
    const owners = Array.from({ length: 32 }, (_, p) => call("a", "testClusterOwner", 0, p));
    const from = lines.length;
    let silent = "";
    cluster.board("b").powerCut();
    run(50_000_000);
    onLine = (line) => {
      const m = /^b: cluster: routing table version \d+ at board (\d), this board has \d+: fetching it/.exec(line);
      if (m === null || silent !== "") return;
      silent = NAMES[Number(m[1]) - 1]!;
      links(silent, false); // its hello came; its Chunk cannot
    };
    expect(cluster.board("b").powerOn()).toBe(true);
    for (let i = 0; i < 400 && !lines.slice(from).some((l) => /^b: cluster: routing table version \d+ in use/.test(l)); i++) run(5_000_000);
    onLine = undefined;
    const said = lines.slice(from).filter((l) => l.startsWith("b: ")).join("\n");
    links(silent, true);
    expect(silent).not.toBe("");
    expect(call("b", "testClusterVersion"), said).toBe(version); // was 1: the fetch given up after 5 s, b went on alone
    const other = silent === "a" ? 3 : 1;
    expect(said).toContain(`b: cluster: routing table version ${version}: board ${ADDRESS[silent]} does not answer, fetching from board ${other}`);
    expect(said).toContain(`b: cluster: routing table version ${version} active (fetched from board ${other})`);
    expect(said).toContain(`b: cluster: routing table version ${version} in use`);
    expect(call("b", "testClusterVersion")).toBe(version);
    for (let p = 0; p < 32; p++) expect(call("b", "testClusterOwner", 0, p), `page ${p}`).toBe(owners[p]);
    run(50_000_000);
  }, 120_000);

  it("while no board that has the version answers, the partitioned volumes stay not ready; the first that answers ends it", () => {
    const version = call("a", "testClusterVersion");
    const from = lines.length;
    let cut = false;
    cluster.board("b").powerCut();
    run(50_000_000);
    onLine = (line) => {
      if (cut || !/^b: cluster: routing table version \d+ at board \d, this board has \d+: fetching it/.test(line)) return;
      cut = true;
      links("a", false); // both boards that have the version: their hellos came, nothing more will
      links("c", false);
    };
    expect(cluster.board("b").powerOn()).toBe(true);
    run(8_000_000_000); // past the 5 s after which a fetch used to be given up (and b went on with version 1)
    onLine = undefined;
    const said = () => lines.slice(from).filter((l) => l.startsWith("b: ")).join("\n");
    expect(cut).toBe(true);
    const caughtUp = call("b", "testClusterCaughtUp");
    if (caughtUp !== 0) for (const name of ["a", "c"]) links(name, true); // the next tests start from a whole cluster
    expect(caughtUp, said()).toBe(0); // was 1: b served its pages from version 1's owner map
    expect(said()).toContain(`b: cluster: routing table version ${version}: no board that has it answers; partitioned volumes stay not ready`);
    expect(said()).not.toMatch(/b: cluster: routing table version \d+ in use/);
    expect(call("b", "testClusterCaughtUp")).toBe(0);
    expect(call("b", "testClusterVersion")).toBe(1);
    links("c", true); // c answers the next round (b asks at most every 640 ms)
    run(1_500_000_000);
    expect(said()).toMatch(new RegExp(`b: cluster: routing table version ${version} active \\(fetched from board 3\\)`));
    expect(said()).toContain(`b: cluster: routing table version ${version} in use`);
    expect(call("b", "testClusterCaughtUp")).toBe(1);
    expect(call("b", "testClusterVersion")).toBe(version);
    links("a", true);
    run(50_000_000);
  }, 120_000);

  it("a board that missed a Commit learns the table from the next proposal, which then commits everywhere", () => {
    const version = call("a", "testClusterVersion");
    let cut = false;
    onLine = (line) => {
      if (cut || line !== `a: cluster: routing table version ${version + 1} active (every board acknowledged)`) return;
      cut = true;
      links("c", false); // c acknowledged; a's Commit cannot reach it
    };
    expect(call("a", "testClusterPropose", 0, 7, 1, ANY, 1)).toBe(1);
    run(6_000_000_000); // the Commit is sent again for 5 s, then given up
    onLine = undefined;
    links("c", true);
    expect(cut).toBe(true);
    expect(NAMES.map((b) => call(b, "testClusterVersion"))).toEqual([version + 1, version + 1, version]);
    // The next proposal reaches c with a base newer than its table: c fetches it (and refuses this one, being behind).
    expect(call("a", "testClusterPropose", 0, 8, 1, ANY, 1)).toBe(1);
    run(300_000_000);
    expect(call("c", "testClusterVersion")).toBe(version + 1);
    expect(call("c", "testClusterOwner", 0, 7)).toBe(1);
    expect(call("a", "testClusterPropose", 0, 8, 1, ANY, 1)).toBe(1);
    run(20_000_000);
    for (const b of NAMES) expect(call(b, "testClusterVersion"), b).toBe(version + 2);
    checkNoEarlyUse();
  }, 120_000);

  it("where pages may not move (the release firmware), a change giving a page another owner is refused; one that keeps every owner commits", () => {
    const version = call("a", "testClusterVersion");
    const owner = call("a", "testClusterOwner", 0, 9);
    const other = (owner + 1) % 3;
    try {
      for (const b of NAMES) call(b, "testClusterPagesMayMove", 0);
      const from = lines.length;
      expect(call("a", "testClusterPropose", 0, 9, 1, ANY, other)).toBe(0); // refused by its coordinator
      expect(lines.slice(from).join("\n")).toContain(`a: cluster: routing table change refused: it gives page 9 of volume 0 from board ${owner + 1} to board ${other + 1}, and page data does not move between boards`);
      expect(call("a", "testClusterPropose", 0, 9, 1, ANY, owner)).toBe(1); // same owner: a version, no move
      run(20_000_000);
      for (const b of NAMES) expect(call(b, "testClusterVersion"), b).toBe(version + 1);
      call("a", "testClusterPagesMayMove", 1); // a coordinator that would move it: the others refuse, nothing changes
      expect(call("a", "testClusterPropose", 0, 9, 1, ANY, other)).toBe(1);
      run(100_000_000);
      expect(lines.slice(from).join("\n")).toContain(`a: cluster: routing table version ${version + 2} abandoned: a board refused`);
      for (const b of NAMES) expect(call(b, "testClusterVersion"), b).toBe(version + 1);
      for (const b of NAMES) expect(call(b, "testClusterOwner", 0, 9), b).toBe(owner);
      run(300_000_000); // past every hold
    } finally {
      for (const b of NAMES) call(b, "testClusterPagesMayMove", 1);
    }
  }, 120_000);

  it("where pages may not move, a board that starts again does not use a fetched table that moved pages: its partitioned volumes stay not ready", () => {
    const version = call("a", "testClusterVersion");
    expect(Array.from({ length: 32 }, (_, p) => call("a", "testClusterOwner", 0, p)).some((o, p) => o !== p % 3)).toBe(true);
    const from = lines.length;
    cluster.board("b").powerCut();
    run(50_000_000);
    expect(cluster.board("b").powerOn()).toBe(true);
    call("b", "testClusterPagesMayMove", 0); // before its first hello is answered
    run(3_000_000_000);
    const said = lines.slice(from).filter((l) => l.startsWith("b: ")).join("\n");
    expect(call("b", "testClusterCaughtUp"), said).toBe(0);
    expect(call("b", "testClusterVersion")).toBe(1);
    expect(said).toMatch(new RegExp(`b: cluster: routing table version ${version} from board \\d gives page \\d+ of volume 0 to board \\d, this board's version 1 to board \\d: page data does not move between boards; not used, partitioned volumes stay not ready`));
    expect(said).not.toMatch(/b: cluster: routing table version \d+ in use/);
    // Started again where pages may move (the test build's default), it fetches and uses the table.
    cluster.board("b").powerCut();
    run(50_000_000);
    expect(cluster.board("b").powerOn()).toBe(true);
    run(200_000_000);
    expect(call("b", "testClusterVersion")).toBe(version);
    expect(call("b", "testClusterCaughtUp")).toBe(1);
  }, 120_000);
});
