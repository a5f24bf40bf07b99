// A cluster file (clusters/*.json, docs/cluster.md "The cluster file"): the boards of a cluster with their board
// files, ids and portals, the fabric and the volumes partitioned across them. clusters/cluster.schema.json checks the
// shapes (ajv); loading then writes each board's `cluster` section (docs/cluster.md, "In the board file") into its
// board file's JSON, with the entry's name and portals, and parses that as a board file would be: every rule of
// host/board/cluster_spec.ts applies per board, and every problem is one line naming the file and the field. Each
// board gets a cluster port (docs/hardware.md, "cluster-port") in the fabric's slot, its address the board's id.
import { Ajv2020, type AnySchemaObject, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { withClusterPort } from "../board/board.ts";
import { diskAddresses } from "../board/disk_address.ts";
import { type BoardSpec, BoardFileError, GOT_NOTHING, GOT_UNKNOWN_FIELD, parseBoard, parseBoardDisks, type RemoteDiskResolver } from "../board/load.ts";
import type { RawCluster } from "../board/cluster_spec.ts";
import { ROOT } from "../root.ts";

export const CLUSTER_SCHEMA_PATH = join(ROOT, "clusters/cluster.schema.json");
export const CLUSTER_PORT_SLOT_DEFAULT = 12;

export interface ClusterFileBoard {
  readonly name: string;
  readonly id: number;
  readonly spec: BoardSpec; // its board file with the cluster section and the cluster port
  readonly dataDir: string;
  readonly seed: number;
  /** Where its process listens for the others' when each board runs alone (--board): the fabric over TCP. */
  readonly fabric?: { readonly host: string; readonly port: number };
}

export interface ClusterFile {
  readonly file: string;
  readonly name: string;
  readonly boards: readonly ClusterFileBoard[];
}

interface RawClusterFile {
  name: string;
  seed?: number;
  version?: number;
  redirect?: boolean;
  fabric?: { slot?: number };
  boards: { name: string; id: number; file: string; portals: { host: string; port: number }[]; fabric?: { host: string; port: number }; dataDir?: string }[];
  volumes?: RawCluster["volumes"];
}

let validatorCached: ValidateFunction | undefined;
function clusterValidator(): ValidateFunction {
  if (validatorCached !== undefined) return validatorCached;
  const ajv = new Ajv2020({ allErrors: false, verbose: true, strict: true, strictRequired: false });
  ajv.addKeyword({ keyword: "expected", schemaType: "string" });
  validatorCached = ajv.compile(JSON.parse(readFileSync(CLUSTER_SCHEMA_PATH, "utf8")) as AnySchemaObject);
  return validatorCached;
}

/** Reads, checks and expands the cluster file at `path`; throws a BoardFileError naming the file and the field. */
export function loadClusterFile(path: string): ClusterFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new BoardFileError(path, "", "a readable cluster file", Symbol((error as Error).message.split(",")[0]));
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BoardFileError(path, "", "JSON text", Symbol((error as Error).message));
  }
  return parseClusterFile(json, path);
}

/** As loadClusterFile, from parsed JSON; `file` labels the messages and anchors the board files' paths. */
export function parseClusterFile(json: unknown, file: string): ClusterFile {
  const validate = clusterValidator();
  if (!validate(json)) throw schemaError(validate.errors ?? [], file);
  const raw = json as RawClusterFile;
  checkUnique(raw, file);
  const seed = raw.seed ?? 1;
  const slot = raw.fabric?.slot ?? CLUSTER_PORT_SLOT_DEFAULT;
  const expandedBoards = raw.boards.map((entry, index) => {
    const boardPath = resolve(dirname(file), entry.file);
    let boardJson: Record<string, unknown>;
    try {
      boardJson = JSON.parse(readFileSync(boardPath, "utf8")) as Record<string, unknown>;
    } catch (error) {
      throw new BoardFileError(file, `boards[${index}].file`, "a readable board file holding JSON", Symbol((error as Error).message.split("\n")[0]));
    }
    const section: RawCluster = {
      version: raw.version ?? 1,
      board: entry.name,
      redirect: raw.redirect ?? false,
      boards: raw.boards.map((b) => ({ id: b.id, name: b.name, portals: b.portals })),
      volumes: raw.volumes ?? [],
    };
    const { nbd: _nbd, ...rest } = boardJson; // one NBD portal per process would collide: a cluster serves iSCSI
    return { ...rest, name: entry.name, portals: entry.portals, cluster: section, seed: seed + index };
  });
  // Problems in the expanded board read as the cluster file's entry: "trio.json: boards[1] (b.json): cluster.…".
  const label = (index: number) => `${file}: boards[${index}] (${raw.boards[index]!.file})`;
  const remote = remoteDiskResolver(raw, expandedBoards, label);
  const boards = raw.boards.map((entry, index) => {
    const spec = parseBoard(expandedBoards[index], label(index), remote);
    return {
      name: entry.name,
      id: entry.id,
      spec: withClusterPort(spec, slot),
      dataDir: resolve(entry.dataDir ?? join("var", raw.name, entry.name)),
      seed: seed + index,
      ...(entry.fabric === undefined ? {} : { fabric: { host: entry.fabric.host, port: entry.fabric.port } }),
    };
  });
  checkFabricAddressesUnique(raw, file);
  checkRemoteDisksUnused(boards, label);
  return { file, name: raw.name, boards };
}

// A replica's copy on another board ("BOARD:DISK"): a disk of that board's host processor, whose RTA the fabric
// reaches (docs/volumes.md, "Copies on two boards"), found in that board's file as the cluster expands it.
function remoteDiskResolver(raw: RawClusterFile, expanded: readonly unknown[], label: (index: number) => string): RemoteDiskResolver {
  return (boardName, diskName) => {
    const index = raw.boards.findIndex((b) => b.name === boardName);
    if (index < 0) return `"BOARD:DISK" with BOARD a board of the cluster`;
    const { processors, disks } = parseBoardDisks(expanded[index], label(index));
    const disk = disks.find((d) => d.name === diskName);
    const address = diskAddresses(processors).get(diskName);
    if (disk === undefined || address === undefined) return `a disk of board ${boardName} (its disks: ${disks.map((d) => d.name).join(", ")})`;
    const host = processors.find((p) => p.role === "host")!;
    if (address.processor !== host.name) return `a disk on board ${boardName}'s host processor ${host.name} (the fabric reaches its RTA only), not on ${address.processor}`;
    return { name: `${boardName}:${diskName}`, board: boardName, boardId: raw.boards[index]!.id, index: address.index, disk };
  };
}

// A disk that holds another board's replica copy is that replica's alone: its own board serves it in no volume.
function checkRemoteDisksUnused(boards: readonly { name: string; spec: BoardSpec }[], label: (index: number) => string): void {
  for (const user of boards) {
    for (const remote of user.spec.remoteDisks ?? []) {
      const ownerIndex = boards.findIndex((b) => b.name === remote.board);
      const owner = boards[ownerIndex]!.spec;
      const diskName = remote.disk.name;
      owner.volumes.forEach((volume, v) => {
        const used = volume.type === "disk" ? [volume.disk] : volume.type === "thin" ? [] : [...volume.members, ...volume.spares];
        if (used.includes(diskName)) {
          throw new BoardFileError(label(ownerIndex), `volumes[${v}]`, `no volume over disk ${JSON.stringify(diskName)}: it holds board ${user.name}'s replica copy ${remote.name} (list this board's volumes without it)`, volume.name);
        }
      });
    }
  }
}

/**
 * For `run --cluster FILE --board NAME`: every board's fabric address (the processes dial each other there). Throws a
 * BoardFileError naming the file and the first board without one.
 */
export function requireFabricAddresses(cluster: ClusterFile): { host: string; port: number }[] {
  return cluster.boards.map((b, i) => {
    if (b.fabric === undefined) {
      throw new BoardFileError(cluster.file, `boards[${i}].fabric`, "the board's fabric address { \"host\", \"port\" } (each board runs in its own process with --board, and the others dial it there)", GOT_NOTHING);
    }
    return b.fabric;
  });
}

// Two boards' fabric addresses (or one's and another's portal) on one host and port would collide.
function checkFabricAddressesUnique(raw: RawClusterFile, file: string): void {
  const seen = new Map<string, string>();
  raw.boards.forEach((b, i) => b.portals.forEach((p, j) => seen.set(`${p.host}:${p.port}`, `boards[${i}].portals[${j}]`)));
  raw.boards.forEach((b, i) => {
    if (b.fabric === undefined) return;
    const key = `${b.fabric.host}:${b.fabric.port}`;
    const other = seen.get(key);
    if (other !== undefined) throw new BoardFileError(file, `boards[${i}].fabric`, `an address not already used by ${other}`, key);
    seen.set(key, `boards[${i}].fabric`);
  });
}

// Names and ids unique (the board sections would say so too, but naming the cluster file's own field is clearer).
function checkUnique(raw: RawClusterFile, file: string): void {
  const names = new Map<string, number>();
  const ids = new Map<number, number>();
  raw.boards.forEach((b, i) => {
    const byName = names.get(b.name);
    if (byName !== undefined) throw new BoardFileError(file, `boards[${i}].name`, `a name not already used by boards[${byName}]`, b.name);
    names.set(b.name, i);
    const byId = ids.get(b.id);
    if (byId !== undefined) throw new BoardFileError(file, `boards[${i}].id`, `an id not already used by boards[${byId}]`, b.id);
    ids.set(b.id, i);
  });
}

// The deepest ajv error, as a BoardFileError with the field path and the schema's "expected" text.
function schemaError(errors: readonly ErrorObject[], file: string): BoardFileError {
  let chosen = errors[0];
  for (const error of errors) if (chosen === undefined || error.instancePath.split("/").length > chosen.instancePath.split("/").length) chosen = error;
  if (chosen === undefined) return new BoardFileError(file, "", "a valid cluster file");
  const field = chosen.instancePath.split("/").slice(1).map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((path, token) => (/^\d+$/.test(token) ? `${path}[${token}]` : path === "" ? token : `${path}.${token}`), "");
  const parent = (chosen.parentSchema ?? {}) as AnySchemaObject;
  if (chosen.keyword === "additionalProperties") {
    const key = String(chosen.params["additionalProperty"]);
    const names = Object.keys((parent["properties"] as object | undefined) ?? {}).join(", ");
    return new BoardFileError(file, field === "" ? key : `${field}.${key}`, names, GOT_UNKNOWN_FIELD);
  }
  if (chosen.keyword === "required") {
    const missing = String(chosen.params["missingProperty"]);
    return new BoardFileError(file, field === "" ? missing : `${field}.${missing}`, "this field", GOT_NOTHING);
  }
  const expected = typeof parent["expected"] === "string" ? parent["expected"] : chosen.message ?? "something else";
  return new BoardFileError(file, field === "" ? "top level" : field, expected, chosen.data);
}
