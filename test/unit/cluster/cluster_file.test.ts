// The cluster file (docs/cluster.md, "The cluster file"): clusters/trio.json expands into three board specs, each with
// its name, portals, seed, routing-table section and a cluster port at its board id; a bad file fails with one line
// naming the file and the field (schema errors through ajv, and the board-section rules per board); and the schema's
// copies of the board schema's definitions are the board schema's, so the two files cannot drift apart.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadClusterFile, parseClusterFile, requireFabricAddresses } from "../../../host/cluster/cluster_file.ts";
import { ROOT } from "../../../host/root.ts";

const TRIO = join(ROOT, "clusters/trio.json");
const trio = (): Record<string, any> => JSON.parse(readFileSync(TRIO, "utf8"));
const dir = mkdtempSync(join(tmpdir(), "wasm-iop-cluster-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Parses `json` as if it were clusters/x.json (board files resolve beside it).
const parse = (json: unknown) => () => parseClusterFile(json, join(ROOT, "clusters/x.json"));

describe("cluster file", () => {
  it("expands clusters/trio.json into three boards with their names, portals, seeds, sections and cluster ports", () => {
    const cluster = loadClusterFile(TRIO);
    expect(cluster.name).toBe("trio");
    expect(cluster.boards.map((b) => [b.name, b.id, b.seed, b.spec.portals[0]!.port])).toEqual([["a", 1, 17, 3270], ["b", 2, 18, 3271], ["c", 3, 19, 3272]]);
    for (const board of cluster.boards) {
      expect(board.spec.name).toBe(board.name);
      expect(board.spec.cluster!.board).toBe(board.name);
      expect(board.spec.cluster!.boards.map((b) => b.id)).toEqual([1, 2, 3]);
      expect(board.spec.cluster!.volumes).toEqual([{ volume: 0, pageBlocks: 2048, pageCount: 96, owners: { kind: "roundRobin", from: "a" } }]);
      const host = board.spec.processors.find((p) => p.role === "host")!;
      expect(host.pci.filter((f) => f.model === "cluster-port")).toEqual([{ model: "cluster-port", slot: 9, function: 0 }]);
      expect(board.dataDir.endsWith(join("var", "trio", board.name))).toBe(true);
    }
  });

  it("names the file and the field of a schema error", () => {
    const extra = trio();
    extra.boards[1].colour = "red";
    expect(parse(extra)).toThrow(/x\.json: boards\[1\]\.colour: unknown field/);
    const id = trio();
    id.boards[2].id = 5000;
    expect(parse(id)).toThrow(/x\.json: boards\[2\]\.id: expected a board id from 1 to 4095, got 5000/);
    const none = trio();
    delete none.boards;
    expect(parse(none)).toThrow(/x\.json: boards: expected this field, got nothing/);
  });

  it("reads each board's fabric address for --board, and names the file and field of a bad or missing one", () => {
    expect(requireFabricAddresses(loadClusterFile(TRIO))).toEqual([3370, 3371, 3372].map((port) => ({ host: "127.0.0.1", port })));
    const port = trio();
    port.boards[1].fabric.port = 70000;
    expect(parse(port)).toThrow(/x\.json: boards\[1\]\.fabric\.port: expected a TCP port from 1 to 65535, got 70000/);
    const host = trio();
    delete host.boards[2].fabric.host;
    expect(parse(host)).toThrow(/x\.json: boards\[2\]\.fabric\.host: expected this field, got nothing/);
    const extra = trio();
    extra.boards[0].fabric.tls = true;
    expect(parse(extra)).toThrow(/x\.json: boards\[0\]\.fabric\.tls: unknown field/);
    const clash = trio();
    clash.boards[2].fabric.port = 3271; // b's portal
    expect(parse(clash)).toThrow(/x\.json: boards\[2\]\.fabric: expected an address not already used by boards\[1\]\.portals\[0\], got "127\.0\.0\.1:3271"/);
    const without = trio();
    delete without.boards[1].fabric;
    const loaded = parse(without)(); // fine in one process
    expect(() => requireFabricAddresses(loaded)).toThrow(/x\.json: boards\[1\]\.fabric: expected the board's fabric address .* got nothing/);
  });

  it("names the field of a rule the schema cannot state: a name or id used twice, an owner that is no board, a board file missing", () => {
    const twice = trio();
    twice.boards[2].id = 1;
    expect(parse(twice)).toThrow(/x\.json: boards\[2\]\.id: expected an id not already used by boards\[0\], got 1/);
    const owner = trio();
    owner.volumes[0].owners = Array.from({ length: 96 }, (_, p) => (p === 7 ? "z" : "a"));
    expect(parse(owner)).toThrow(/x\.json: boards\[0\] \(\.\.\/boards\/cluster-node\.json\): cluster\.volumes\[0\]\.owners\[7\]: expected the name of one of cluster\.boards \("a", "b", "c"\), got "z"/);
    const short = trio();
    short.volumes[0].pageCount = 10;
    expect(parse(short)).toThrow(/cluster\.volumes\[0\]\.pageCount: expected pages covering the volume's 196608 blocks/);
    const missing = trio();
    missing.boards[1].file = "nope.json";
    expect(parse(missing)).toThrow(/x\.json: boards\[1\]\.file: expected a readable board file/);
    writeFileSync(join(dir, "bad.json"), "{ not json");
    expect(() => loadClusterFile(join(dir, "bad.json"))).toThrow(/bad\.json: expected JSON text/);
  });

  it("copies the board schema's definitions unchanged", () => {
    const cluster = JSON.parse(readFileSync(join(ROOT, "clusters/cluster.schema.json"), "utf8"));
    const board = JSON.parse(readFileSync(join(ROOT, "boards/board.schema.json"), "utf8"));
    for (const name of ["clusterBoardName", "clusterVolume", "portal", "volumeNumber", "volumeName"]) expect(cluster.$defs[name], name).toEqual(board.$defs[name]);
    expect(cluster.$defs.board.properties.id).toEqual(board.$defs.clusterBoard.properties.id);
    expect(cluster.$defs.board.properties.portals).toEqual(board.$defs.clusterBoard.properties.portals);
  });
});
