// The page owners a data directory holds data for (host/cluster/page_owners.ts; docs/cluster.md, "Changing owners
// between runs"): a cluster file edited between two runs over the same data directories may not give a page to another
// board (nothing moves its data); the refusal names the file and the field, and nothing is written then. A new version
// with the same owners, pages moved between two other boards as far as one board is concerned, and memory disks pass.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseClusterFile } from "../../../host/cluster/cluster_file.ts";
import { checkPageOwners, PAGE_OWNERS_FILE } from "../../../host/cluster/page_owners.ts";
import { ROOT } from "../../../host/root.ts";

const trio = (): Record<string, any> => JSON.parse(readFileSync(join(ROOT, "clusters/trio.json"), "utf8"));
const root = mkdtempSync(join(tmpdir(), "wasm-iop-page-owners-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;
// A cluster file as clusters/x.json whose boards keep their data under `dir`/<board>: check, as `run --cluster` does.
function start(json: Record<string, any>, dir: string, only?: string): void {
  for (const b of json.boards) b.dataDir = join(dir, b.name);
  const file = parseClusterFile(json, join(ROOT, "clusters/x.json"));
  const record = checkPageOwners(file.boards.filter((b) => only === undefined || b.name === only).map((b) => ({ spec: b.spec, dataDir: b.dataDir, file: file.file, fieldPrefix: "" })));
  record(); // run does this once its control socket holds the data directory
}
const fresh = () => join(root, `run${++runs}`);
const explicit = (owners: string[]) => { const j = trio(); j.volumes[0].owners = owners; return j; };
const roundRobin = Array.from({ length: 96 }, (_, p) => ["a", "b", "c"][p % 3]!);

describe("page owners kept across runs", () => {
  it("records the owners at the first start and starts again with the same ones, also written out or at a new version", () => {
    const dir = fresh();
    start(trio(), dir);
    const record = JSON.parse(readFileSync(join(dir, "b", PAGE_OWNERS_FILE), "utf8"));
    expect(record.board).toBe("b");
    expect(record.volumes).toEqual([{ volume: "pv0", pageBlocks: 2048, owners: roundRobin }]);
    start(trio(), dir);
    start(explicit(roundRobin), dir);
    const newer = explicit(roundRobin);
    newer.version = 2;
    start(newer, dir);
  });

  it("refuses a page given to another board, naming the file and the page's field; nothing is written", () => {
    const dir = fresh();
    start(trio(), dir);
    const moved = [...roundRobin];
    moved[4] = "c"; // b's page 4, to c
    expect(() => start(explicit(moved), dir)).toThrow(
      /clusters\/x\.json: volumes\[0\]\.owners\[4\]: expected "b" as owner of page 4 of pv0: its data is in .*run\d+\/b, board c would serve it from a disk without it \(nothing moves a page's data between boards: keep the owners, or start with empty data directories\), got "c"/);
    // c's process alone (run --cluster F --board c) refuses too: c would serve page 4 from its disk, which lacks it.
    expect(() => start(explicit(moved), dir, "c")).toThrow(/volumes\[0\]\.owners\[4\]: expected "b" as owner of page 4 of pv0: board c would serve it from .*run\d+\/c, which does not hold it/);
    // a's data is not concerned: a alone starts.
    start(explicit(moved), dir, "a");
    expect(JSON.parse(readFileSync(join(dir, "b", PAGE_OWNERS_FILE), "utf8")).volumes[0].owners[4]).toBe("b");
  });

  it("refuses a new round robin's first board and a new page size, naming the field", () => {
    const dir = fresh();
    start(trio(), dir);
    const shifted = trio();
    shifted.volumes[0].owners = { roundRobinFrom: "b" };
    expect(() => start(shifted, dir)).toThrow(/clusters\/x\.json: volumes\[0\]\.owners: expected "a" as owner of page 0 of pv0: its data is in .*, got a rule giving it to "b"/);
    const pages = trio();
    pages.volumes[0].pageBlocks = 4096;
    pages.volumes[0].pageCount = 48;
    expect(() => start(pages, dir)).toThrow(/clusters\/x\.json: volumes\[0\]\.pageBlocks: expected 2048, the page size .* holds board a's pages of pv0 in .*, got 4096/);
  });

  it("keeps no record for boards whose disks are in memory", () => {
    const dir = fresh();
    const node = JSON.parse(readFileSync(join(ROOT, "boards/cluster-node.json"), "utf8"));
    node.disks[0] = { name: "pv0", sizeMiB: 96, blockSize: 512, backend: "memory" };
    writeFileSync(join(root, "memory-node.json"), JSON.stringify(node));
    const json = trio();
    json.boards = json.boards.map((b: Record<string, unknown>) => ({ ...b, file: join(root, "memory-node.json") }));
    start(json, dir);
    expect(existsSync(join(dir, "a", PAGE_OWNERS_FILE))).toBe(false);
  });
});
