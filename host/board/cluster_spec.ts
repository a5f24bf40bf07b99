// A board file's `cluster` section (docs/cluster.md, "The routing table"): this board's place in a cluster of boards,
// as the cluster tooling writes it per board from a clusters/*.json file. The schema (boards/board.schema.json,
// $defs.cluster) checks the shapes; checkCluster here checks what a schema cannot (unique ids and names, this board
// among the boards, owners naming boards, one owner per page, volumes that exist and that the pages cover), each
// problem as one BoardFileError naming the file and the field; buildCluster turns it into the ClusterSpec the
// configuration ROM encodes (host/bus/cluster_rom.ts).

/** The routing table as this board receives it. */
export interface ClusterSpec {
  readonly version: number; // the table's generation, 1 and up
  readonly board: string; // which of `boards` this board is
  readonly redirect: boolean; // logins may be redirected to the board that holds the most; false when absent
  readonly boards: readonly ClusterBoardSpec[];
  readonly volumes: readonly ClusterVolumeSpec[]; // [] when absent
}

export interface ClusterBoardSpec {
  readonly id: number; // 1..4095: the board's ALUA target port group and its portals' portal group tag
  readonly name: string;
  readonly portals: readonly { readonly host: string; readonly port: number }[];
}

export interface ClusterVolumeSpec {
  readonly volume: number; // this board's volume that presents the partitioned volume (index in BoardSpec.volumes)
  readonly pageBlocks: number;
  readonly pageCount: number;
  // Explicit: a board name per page. Round robin: page p belongs to boards[(indexOf(from) + p) % boards.length].
  readonly owners: { readonly kind: "explicit"; readonly boards: readonly string[] } | { readonly kind: "roundRobin"; readonly from: string };
}

/** The section as the schema lets it through. */
export interface RawCluster {
  version: number;
  board: string;
  redirect?: boolean;
  boards: { id: number; name: string; portals: { host: string; port: number }[] }[];
  volumes?: { volume: number | string; pageBlocks: number; pageCount: number; owners: string[] | { roundRobinFrom: string } }[];
}

/**
 * What checkCluster needs to know of the rest of the board: its volumes, by name in order, with their size in blocks,
 * and how many iSCSI targets it presents.
 */
export interface ClusterVolumeFacts {
  readonly names: readonly string[];
  readonly capacityBlocks: (index: number) => number;
  readonly targetCount: number;
}

/**
 * The local SCSI target ports a board has room for: 4 bits of the relative target port identifier (docs/cluster.md,
 * "Names on the wire"; the firmware's TARGET_PORT_LOCAL_MAX in assembly/scsi/target_port.ts, checked alike by
 * test/unit/cluster/shared_constants.test.ts). A board of a cluster has one per target and NIC port (portal).
 */
export const CLUSTER_TARGET_PORTS_MAX = 15;

/** Raised for each problem: `field` is the path under the file, e.g. cluster.volumes[0].owners[3]. */
export type ClusterProblem = (field: string, expected: string, got: unknown) => Error;

/** The rules a schema cannot state; throws problem(field, expected, got) at the first offence, in file order. */
export function checkCluster(raw: RawCluster, volumes: ClusterVolumeFacts, problem: ClusterProblem): void {
  const names = raw.boards.map((b) => b.name);
  const firstByName = new Map<string, number>();
  const firstById = new Map<number, number>();
  raw.boards.forEach((b, i) => {
    const byName = firstByName.get(b.name);
    if (byName !== undefined) throw problem(`cluster.boards[${i}].name`, `a name not already used by cluster.boards[${byName}]`, b.name);
    firstByName.set(b.name, i);
    const byId = firstById.get(b.id);
    if (byId !== undefined) throw problem(`cluster.boards[${i}].id`, `an id not already used by cluster.boards[${byId}]`, b.id);
    firstById.set(b.id, i);
  });
  raw.boards.forEach((b, i) => {
    if (b.portals.length * volumes.targetCount > CLUSTER_TARGET_PORTS_MAX) {
      throw problem(`cluster.boards[${i}].portals`, `at most ${Math.floor(CLUSTER_TARGET_PORTS_MAX / volumes.targetCount)} portals: each is a target port of each of the ${volumes.targetCount} targets, and a board has ${CLUSTER_TARGET_PORTS_MAX}`, Symbol(`${b.portals.length} portals`));
    }
  });
  const boardList = names.map((n) => JSON.stringify(n)).join(", ");
  if (!firstByName.has(raw.board)) throw problem("cluster.board", `the name of one of cluster.boards (${boardList})`, raw.board);
  const firstByVolume = new Map<number, number>();
  (raw.volumes ?? []).forEach((v, i) => {
    const prefix = `cluster.volumes[${i}]`;
    const index = typeof v.volume === "number" ? v.volume : volumes.names.indexOf(v.volume);
    if (typeof v.volume === "string" && index < 0) {
      throw problem(`${prefix}.volume`, `the name of a volume of this board (${volumes.names.map((n) => JSON.stringify(n)).join(", ")})`, v.volume);
    }
    if (index >= volumes.names.length) throw problem(`${prefix}.volume`, `a volume number below ${volumes.names.length}`, v.volume);
    const first = firstByVolume.get(index);
    if (first !== undefined) throw problem(`${prefix}.volume`, `a volume not already partitioned by cluster.volumes[${first}]`, v.volume);
    firstByVolume.set(index, i);
    const covered = v.pageBlocks * v.pageCount;
    const capacity = volumes.capacityBlocks(index);
    if (covered < capacity) {
      throw problem(`${prefix}.pageCount`, `pages covering the volume's ${capacity} blocks (at least ${Math.ceil(capacity / v.pageBlocks)} of ${v.pageBlocks} blocks)`, v.pageCount);
    }
    if (Array.isArray(v.owners)) {
      if (v.owners.length !== v.pageCount) throw problem(`${prefix}.owners`, `one board name per page (${v.pageCount})`, Symbol(`${v.owners.length} names`));
      v.owners.forEach((owner, k) => {
        if (!firstByName.has(owner)) throw problem(`${prefix}.owners[${k}]`, `the name of one of cluster.boards (${boardList})`, owner);
      });
    } else if (!firstByName.has(v.owners.roundRobinFrom)) {
      throw problem(`${prefix}.owners.roundRobinFrom`, `the name of one of cluster.boards (${boardList})`, v.owners.roundRobinFrom);
    }
  });
}

/** The spec, from a section checkCluster accepted; `volumeIndex` resolves a volume name. */
export function buildCluster(raw: RawCluster, volumeIndex: (name: string) => number): ClusterSpec {
  return {
    version: raw.version,
    board: raw.board,
    redirect: raw.redirect ?? false,
    boards: raw.boards.map((b) => ({ id: b.id, name: b.name, portals: b.portals.map((p) => ({ host: p.host, port: p.port })) })),
    volumes: (raw.volumes ?? []).map((v) => ({
      volume: typeof v.volume === "number" ? v.volume : volumeIndex(v.volume),
      pageBlocks: v.pageBlocks,
      pageCount: v.pageCount,
      owners: Array.isArray(v.owners) ? { kind: "explicit", boards: [...v.owners] } : { kind: "roundRobin", from: v.owners.roundRobinFrom },
    })),
  };
}

/** The board that owns each page, by name: the owners rule applied. */
export function clusterPageOwners(cluster: ClusterSpec, volume: ClusterVolumeSpec): string[] {
  if (volume.owners.kind === "explicit") return [...volume.owners.boards];
  const start = cluster.boards.findIndex((b) => b.name === (volume.owners as { from: string }).from);
  return Array.from({ length: volume.pageCount }, (_, p) => cluster.boards[(start + p) % cluster.boards.length]!.name);
}
