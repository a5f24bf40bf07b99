// The page owners a board's data directory holds data for (docs/cluster.md, "Changing owners between runs"): a board of
// a cluster keeps, for each partitioned volume whose disks keep data (file-backed), the pages it owns on its own disk,
// and the routing table says which those are. A cluster file (or board file) edited between two runs over the same
// data directories could give a page to another board: that board would then serve it from its own disk, which does
// not hold it (a write read back wrong), and nothing moves page data between boards. So before a board starts, the
// owners its data directory was last started with (DATA_DIR/page-owners.json, written at every start) are compared
// with the table it is given: a page this board owned and no longer owns, or now owns and did not, or a page size that
// changed, is refused, one line naming the file and the field. Pages owned by two other boards are theirs to check.
// A data directory without the record (the first run, or data moved by hand and the record removed) is taken as is.
// The record is written only once the directory is this process's (its control socket bound): a second process started
// on a live board's directory is refused by the socket before it could overwrite what the live board started with.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clusterPageOwners } from "../board/cluster_spec.ts";
import { type BoardSpec, BoardFileError } from "../board/load.ts";

export const PAGE_OWNERS_FILE = "page-owners.json";
const RECORD_FORMAT = 1;

/** What a data directory was last started with: per partitioned volume that keeps data, its pages' owners by name. */
interface PageOwnersRecord {
  readonly format: number;
  readonly board: string;
  readonly version: number; // the table's version then (not compared: a new version may keep every owner)
  readonly volumes: readonly { readonly volume: string; readonly pageBlocks: number; readonly owners: readonly string[] }[];
}

/** One board to check: its spec (with a cluster section), its data directory and how messages name its fields. */
export interface PageOwnersBoard {
  readonly spec: BoardSpec;
  readonly dataDir: string;
  readonly file: string; // the file the messages name (the cluster file, or the board file)
  readonly fieldPrefix: string; // "" for a cluster file's volumes[i], "cluster." for a board file's section
}

/**
 * Checks every board's data directory against the table it is given: throws a BoardFileError at the first page that
 * would change owner for a board that holds (or would hold) its data. Returns what records the table in each: call it
 * once the data directories are claimed (the control socket bound), never before. Nothing is written unless every
 * board passed. Boards whose partitioned volumes keep no data (memory disks) are skipped.
 */
export function checkPageOwners(boards: readonly PageOwnersBoard[]): () => void {
  const records = boards.map((b) => ({ board: b, record: recordOf(b.spec) }));
  for (const { board, record } of records) if (record !== undefined) compare(board, record);
  return () => {
    for (const { board, record } of records) if (record !== undefined) write(board.dataDir, record);
  };
}

// The record a board would write now; undefined when it keeps no page data (not in a cluster, or memory disks only).
function recordOf(spec: BoardSpec): PageOwnersRecord | undefined {
  const cluster = spec.cluster;
  if (cluster === undefined) return undefined;
  const volumes = cluster.volumes
    .filter((v) => keepsData(spec, v.volume, 0))
    .map((v) => ({ volume: spec.volumes[v.volume]!.name, pageBlocks: v.pageBlocks, owners: clusterPageOwners(cluster, v) }));
  if (volumes.length === 0) return undefined;
  return { format: RECORD_FORMAT, board: cluster.board, version: cluster.version, volumes };
}

// Does volume `index` of the board lie, at least in part, on a file-backed disk of its own?
function keepsData(spec: BoardSpec, index: number, depth: number): boolean {
  const volume = spec.volumes[index];
  if (volume === undefined || depth > spec.volumes.length) return false;
  const fileDisk = (name: string) => spec.disks.some((d) => d.name === name && d.backend === "file");
  if (volume.type === "disk") return fileDisk(volume.disk);
  if (volume.type === "thin") return keepsData(spec, spec.volumes.findIndex((v) => v.name === volume.pool), depth + 1);
  return volume.members.some(fileDisk);
}

function compare(board: PageOwnersBoard, now: PageOwnersRecord): void {
  const path = join(board.dataDir, PAGE_OWNERS_FILE);
  if (!existsSync(path)) return;
  let before: PageOwnersRecord;
  try {
    before = JSON.parse(readFileSync(path, "utf8")) as PageOwnersRecord;
  } catch (error) {
    throw new BoardFileError(path, "", "the page owners this data directory was last started with (JSON)", Symbol((error as Error).message.split("\n")[0]));
  }
  if (before.format !== RECORD_FORMAT || !Array.isArray(before.volumes)) {
    throw new BoardFileError(path, "format", `${RECORD_FORMAT}, with its volumes (remove the file if the data is where the cluster file says)`, before.format);
  }
  const me = now.board;
  const cluster = board.spec.cluster!;
  const keep = "(nothing moves a page's data between boards: keep the owners, or start with empty data directories)";
  for (const v of now.volumes) {
    const old = before.volumes.find((o) => o.volume === v.volume);
    if (old === undefined) continue; // newly partitioned here: no pages were owned before
    const i = cluster.volumes.findIndex((c) => board.spec.volumes[c.volume]!.name === v.volume);
    const prefix = `${board.fieldPrefix}volumes[${i}]`;
    if (old.pageBlocks !== v.pageBlocks) {
      throw new BoardFileError(board.file, `${prefix}.pageBlocks`,
        `${old.pageBlocks}, the page size ${board.dataDir} holds board ${me}'s pages of ${v.volume} in ${keep}`, v.pageBlocks);
    }
    const explicit = cluster.volumes[i]!.owners.kind === "explicit";
    const pages = Math.min(old.owners.length, v.owners.length);
    for (let p = 0; p < pages; p++) {
      const was = old.owners[p]!;
      const is = v.owners[p]!;
      if (was === is || (was !== me && is !== me)) continue;
      const field = explicit ? `${prefix}.owners[${p}]` : `${prefix}.owners`;
      const why = was === me
        ? `"${was}" as owner of page ${p} of ${v.volume}: its data is in ${board.dataDir}, board ${is} would serve it from a disk without it`
        : `"${was}" as owner of page ${p} of ${v.volume}: board ${me} would serve it from ${board.dataDir}, which does not hold it`;
      throw new BoardFileError(board.file, field, `${why} ${keep}`, explicit ? is : Symbol(`a rule giving it to "${is}"`));
    }
  }
}

function write(dataDir: string, record: PageOwnersRecord): void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, PAGE_OWNERS_FILE);
  writeFileSync(`${path}.new`, JSON.stringify(record) + "\n");
  renameSync(`${path}.new`, path);
}
