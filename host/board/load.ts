// Reads a board file (boards/*.json), checks it against boards/board.schema.json and then against the rules a
// schema cannot state, and returns it as a typed BoardSpec with every default filled in. Every problem becomes one
// BoardFileError whose message is a single line naming the file, the field and what was expected, because a
// person fixes board files by hand and a wall of validator output hides the one line that matters.

import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ROOT } from "../root.ts";
import { NIC_COPY_BYTES_PER_NS_DEFAULT } from "../devices/nic.ts";
import { NVRAM_SIZE_DEFAULT_KIB } from "../devices/nvram.ts";
import { Ajv2020, type AnySchemaObject, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { buildCluster, checkCluster, type ClusterSpec, type RawCluster } from "./cluster_spec.ts";
import {
  diskBytes,
  KIB_BYTES,
  MIB_BYTES,
  RAID_METADATA_BYTES,
  raidDataAreaBytes,
  thinMetadataBytes,
  thinPoolChunkCount,
  volumeBlockSizeBytes,
  volumeCapacityBytes,
} from "./volume_geometry.ts";

export const DEFAULT_BOARD_PATH: string = join(ROOT, "boards/iop-dev.json");
const SCHEMA_PATH = join(ROOT, "boards/board.schema.json");

const SEED_DEFAULT = 1;
const PCI_FUNCTION_DEFAULT = 0;
const QUEUE_SIZE_DEFAULT = 128;
const NVME_QUEUE_ENTRIES_DEFAULT = 1024;
const NVME_IO_QUEUES_DEFAULT = 4;
const RX_RING_ENTRIES_DEFAULT = 256;
const NVRAM_IMAGE_DEFAULT = "nvram.bin";
const BOARD_NAME_BYTES_MAX = 64; // the boot-info block's char[64] board name
const VOLUMES_MAX = 16; // the firmware's volume table (assembly/volumes/volume.ts VOLUMES_MAX); the schema's maxItems too
const RAID_CHUNK_KIB_DEFAULT = 64;
const THIN_CHUNK_KIB_DEFAULT = 1024;
const GOT_TEXT_LENGTH_MAX = 40; // longer arrays and objects are summarized, so a message stays one readable line

// ---------------------------------------------------------------------------------------------------------------
// The spec: the board file as the emulator uses it.

export type ProcessorRole = "host" | "storage";
export type DiskBlockSize = 512 | 4096;

export interface BoardSpec {
  readonly file: string; // the path the board was loaded from, as given, for messages
  readonly name: string;
  readonly description: string; // "" when absent
  readonly seed: number; // 1 when absent
  readonly processors: readonly ProcessorSpec[]; // processors[0] is the host
  readonly disks: readonly DiskSpec[];
  readonly volumes: readonly VolumeSpec[]; // volume n is volumes[n]; without volumes in the file, one "disk" volume per disk
  readonly portals: readonly PortalSpec[]; // [] when absent
  readonly flash: FlashSpec | undefined; // absent: the emulator runs build/firmware.wasm directly
  readonly targets: readonly TargetSpec[]; // never empty: the default target when the file names none
  readonly nbd: NbdSpec | undefined; // absent: no NBD server
  readonly cluster: ClusterSpec | undefined; // absent: a single board (docs/cluster.md)
  // A replica's copies on other boards of the cluster, by the name the volume gives them ("BOARD:DISK"); only a
  // cluster file resolves them (host/cluster/cluster_file.ts). Absent or [] for a board without any.
  readonly remoteDisks?: readonly RemoteDiskSpec[];
}

/**
 * A disk of another board of the cluster that holds a copy of one of this board's replicas (docs/volumes.md, "Copies
 * on two boards"): reached over the fabric through that board's host processor, whose RTA serves it by its index.
 */
export interface RemoteDiskSpec {
  readonly name: string; // "BOARD:DISK", as the replica's copies name it
  readonly board: string; // the other board's name in the cluster
  readonly boardId: number; // its id in the routing table
  readonly index: number; // the disk's index among that board's host processor's disks (host/board/disk_address.ts)
  readonly disk: DiskSpec; // its geometry, from that board's file (its name is that board's)
}

/** Finds "BOARD:DISK" of a replica's copy: the disk, or a sentence saying what is wrong. */
export type RemoteDiskResolver = (board: string, disk: string) => RemoteDiskSpec | string;

/** A replica copy naming a disk on another board: "BOARD:DISK". */
export function isRemoteCopy(name: string): boolean { return name.includes(":"); }

/** The NBD server (docs/nbd.md): its portal and its exports, each a volume by number. */
export interface NbdSpec {
  readonly portal: PortalSpec; // 127.0.0.1:10809 when absent
  readonly exports: readonly NbdExportSpec[];
}

export interface NbdExportSpec {
  readonly name: string;
  readonly volume: number;
  readonly readOnly: boolean;
}

export const NBD_PORTAL_DEFAULT: PortalSpec = { host: "127.0.0.1", port: 10809 };

export interface TargetSpec {
  readonly name: string;
  readonly alias: string; // "" when absent
  readonly luns: readonly LunSpec[] | undefined; // undefined: every top-level volume, writable (targetLuns)
  readonly chap: { readonly user: string; readonly secret: string; readonly mutualUser?: string; readonly mutualSecret?: string } | undefined;
  readonly initiators: readonly string[]; // [] when absent: any initiator
}

/** One LUN of a target: LUN n is the target's n-th entry. */
export interface LunSpec {
  readonly volume: number; // the index in BoardSpec.volumes (the file may name the volume; the loader resolves it)
  readonly readOnly: boolean; // writes to the medium are refused (DATA PROTECT, WRITE PROTECTED); false when absent
}

export interface FlashSpec {
  readonly image: string; // relative to the board's data directory
  readonly slotSizeMiB: number; // 4 when absent
  readonly trustedKeys: readonly string[]; // absolute paths of public keys (PEM)
  readonly boardCompat: string; // "wasm-iop" when absent
  readonly populateKey: string | undefined; // absolute path of the private key that signs the first image, if any
}

export interface ProcessorSpec {
  readonly name: string;
  readonly role: ProcessorRole;
  readonly ramMiB: number;
  readonly pci: readonly PciFunctionSpec[];
}

export type PciFunctionSpec = IopBridgeSpec | VirtioScsiSpec | NvmeSpec | NicSpec | XorEngineSpec | NvramSpec | ClusterPortSpec;
/** The storage controllers: the functions that hold disks. */
export type StorageControllerSpec = VirtioScsiSpec | NvmeSpec;

export interface IopBridgeSpec {
  readonly model: "iop-bridge";
  readonly slot: number;
  readonly function: number; // 0 when absent
  readonly processor: string; // the storage processor behind the bridge
}

export interface VirtioScsiSpec {
  readonly model: "virtio-scsi";
  readonly slot: number;
  readonly function: number; // 0 when absent
  readonly disks: readonly string[];
  readonly queueSize: number; // 128 when absent
}

export interface NvmeSpec {
  readonly model: "nvme";
  readonly slot: number;
  readonly function: number; // 0 when absent
  readonly disks: readonly string[]; // namespace n + 1 is the n-th
  readonly queueEntriesMax: number; // 1024 when absent
  readonly ioQueues: number; // 4 when absent
}

/** True for a function that holds disks (virtio-scsi or NVMe). */
export function isStorageController(f: PciFunctionSpec): f is StorageControllerSpec {
  return f.model === "virtio-scsi" || f.model === "nvme";
}

export interface NicSpec {
  readonly model: "nic";
  readonly slot: number;
  readonly function: number; // 0 when absent
  readonly rxRingEntries: number; // 256 when absent
  readonly copyGBps: number; // the engine's copy rate between guest RAM and the network, bytes per ns; 1 when absent
}

export interface XorEngineSpec {
  readonly model: "xor-engine";
  readonly slot: number;
  readonly function: number; // 0 when absent
}

/**
 * The cluster port (docs/hardware.md, "cluster-port"): not written in board files; the cluster file's tooling adds it
 * to the host processor of each board it runs (host/cluster/cluster_file.ts), with the board's id as its address.
 */
export interface ClusterPortSpec {
  readonly model: "cluster-port";
  readonly slot: number;
  readonly function: number;
}

/** A battery-backed NVRAM card (docs/hardware.md, "nvram"). */
export interface NvramSpec {
  readonly model: "nvram";
  readonly slot: number;
  readonly function: number; // 0 when absent
  readonly sizeKiB: number; // NVRAM_SIZE_DEFAULT_KIB when absent
  readonly backend: "file" | "memory"; // file when absent
  readonly image: string; // under the data directory; nvram.bin when absent
}

export type DiskSpec = FileDiskSpec | MemoryDiskSpec;

export interface FileDiskSpec {
  readonly name: string;
  readonly sizeMiB: number;
  readonly blockSize: DiskBlockSize;
  readonly physicalBlockSize: number; // a power of two, at least blockSize; blockSize when the file leaves it out
  readonly backend: "file";
  readonly image: string; // relative to the board's data directory
}

export interface MemoryDiskSpec {
  readonly name: string;
  readonly sizeMiB: number;
  readonly blockSize: DiskBlockSize;
  readonly physicalBlockSize: number; // a power of two, at least blockSize; blockSize when the file leaves it out
  readonly backend: "memory";
}

export type VolumeSpec = DiskVolumeSpec | RaidVolumeSpec | ThinVolumeSpec;

/** One whole disk. */
export interface DiskVolumeSpec {
  readonly name: string;
  readonly type: "disk";
  readonly disk: string;
}

/**
 * Striping (raid0), mirroring (raid1), striping with rotating parity (raid5) over disks, or a replica: two copies on
 * two processors (the board file's `copies`, here its members; docs/volumes.md, "Replication").
 */
export interface RaidVolumeSpec {
  readonly name: string;
  readonly type: "raid0" | "raid1" | "raid5" | "replica";
  readonly members: readonly string[]; // disk names, in stripe order
  readonly chunkKiB: number; // the stripe unit on each member; 64 when absent
  readonly spares: readonly string[]; // disk names of hot spares; [] when absent (always for raid0)
}

/** A virtual size served from chunks allocated in the pool, an earlier volume that is not thin. */
export interface ThinVolumeSpec {
  readonly name: string;
  readonly type: "thin";
  readonly pool: string; // a volume name
  readonly sizeMiB: number; // the virtual size, which may exceed the pool's
  readonly chunkKiB: number; // the allocation chunk; 1024 when absent
  readonly softThresholdPercent: number | undefined; // undefined: no soft threshold
}

export interface PortalSpec {
  readonly host: string;
  readonly port: number;
}

// ---------------------------------------------------------------------------------------------------------------
// The error.

// Values for BoardFileError.got that are not a value from the file. Each renders as its description.
export const GOT_NOTHING: unique symbol = Symbol("nothing"); // a required field, or a bridge or disk user, is absent
export const GOT_END_OF_FILE: unique symbol = Symbol("end of file"); // the JSON text stops early
export const GOT_UNKNOWN_FIELD: unique symbol = Symbol("unknown field"); // `field` itself is not in the schema

// One problem in one board file. The message reads `file: field: expected …, got …`; for an unknown field it reads
// `file: field: unknown field (expected one of …)`, `expected` then listing the allowed names.
export class BoardFileError extends Error {
  override name = "BoardFileError";

  constructor(
    readonly file: string,
    readonly field: string, // dotted/bracket path such as processors[0].pci[2].model, "" for the whole file
    readonly expected: string,
    readonly got?: unknown,
  ) {
    super(boardFileErrorMessage(file, field, expected, got));
  }
}

function boardFileErrorMessage(file: string, field: string, expected: string, got: unknown): string {
  const where = field === "" ? `${file}: ` : `${file}: ${field}: `;
  if (got === GOT_UNKNOWN_FIELD) return `${where}unknown field (expected one of ${expected})`;
  if (got === undefined) return `${where}expected ${expected}`;
  return `${where}expected ${expected}, got ${renderGot(got)}`;
}

// Renders a value found in the file as JSON, short enough for one line; symbols stand for text, not values.
function renderGot(got: unknown): string {
  if (typeof got === "symbol") return got.description ?? "something else";
  const text = JSON.stringify(got);
  if (text === undefined) return String(got);
  if (text.length <= GOT_TEXT_LENGTH_MAX) return text;
  if (Array.isArray(got)) return got.length === 1 ? "an array of 1 item" : `an array of ${got.length} items`;
  if (typeof got === "object" && got !== null) return "an object";
  return `${text.slice(0, GOT_TEXT_LENGTH_MAX - 4)}…${text.slice(-1)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading.

// Reads and parses the board file at `path`. A file that cannot be read, is not JSON, or is not a valid board
// throws a BoardFileError naming `path` as given.
export function loadBoardFile(path: string): BoardSpec {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new BoardFileError(path, "", "a readable board file", Symbol(describeFileError(error)));
  }
  return parseBoard(parseJsonText(text, path), path);
}

// Checks parsed JSON against the schema and the cross-field rules; `file` only labels the messages.
// `remote`: how a replica's copy on another board ("BOARD:DISK") is found; only a cluster file gives one.
export function parseBoard(json: unknown, file: string, remote?: RemoteDiskResolver): BoardSpec {
  const raw = parseBoardHardware(json, file);
  const remoteDisks = checkVolumes(raw, file, remote);
  checkTargets(raw, file);
  checkNbd(raw, file);
  checkClusterSection(raw, file, remoteDisks);
  const spec = buildSpec(raw, file);
  return remoteDisks.length === 0 ? spec : { ...spec, remoteDisks };
}

// The schema and the rules of the processors, buses and disks: what a board is, before what it serves.
function parseBoardHardware(json: unknown, file: string): RawBoard {
  const validate = boardValidator();
  if (!validate(json)) throw schemaError(validate.errors ?? [], json, file);
  const raw = json as RawBoard;
  checkProcessors(raw, file);
  checkNames(raw, file);
  checkBuses(raw, file);
  checkNvram(raw, file);
  checkBridges(raw, file);
  checkDiskUse(raw, file);
  checkDiskGeometry(raw, file);
  return raw;
}

/** A board file's processors and disks, checked as parseBoard checks them (its volumes and targets are not looked at). */
export function parseBoardDisks(json: unknown, file: string): Pick<BoardSpec, "processors" | "disks"> {
  const raw = parseBoardHardware(json, file);
  return {
    processors: raw.processors.map((processor) => ({ name: processor.name, role: processor.role, ramMiB: processor.ramMiB, pci: processor.pci.map(buildPciFunction) })),
    disks: raw.disks.map(buildDisk),
  };
}

// "ENOENT (no such file or directory)" from Node's "ENOENT: no such file or directory, open '…'".
function describeFileError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^([A-Z]+): ([^,]+)/.exec(message);
  return match === null ? message : `${match[1]} (${match[2]})`;
}

// JSON.parse, with a failure turned into a line and column and what the grammar expected there. The position comes
// from our own scan because V8's messages differ between versions and some carry no position at all.
function parseJsonText(text: string, file: string): unknown {
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text; // editors may save a byte-order mark
  try {
    return JSON.parse(body);
  } catch (error) {
    const syntax = findJsonSyntaxError(body);
    if (syntax === undefined) {
      throw new BoardFileError(file, "line 1, column 1", "valid JSON", Symbol(String(error)));
    }
    throw new BoardFileError(file, lineColumn(body, syntax.index), syntax.expected, jsonTokenAt(body, syntax.index));
  }
}

function lineColumn(text: string, index: number): string {
  let line = 1;
  let lineStartIndex = 0;
  for (let i = 0; i < index; i += 1) {
    if (text.charCodeAt(i) === 0x0a) {
      line += 1;
      lineStartIndex = i + 1;
    }
  }
  return `line ${line}, column ${index - lineStartIndex + 1}`;
}

// What the scan found at `index`: the end of the file, a string, a word (a misspelt literal) or one character.
function jsonTokenAt(text: string, index: number): unknown {
  if (index >= text.length) return GOT_END_OF_FILE;
  if (text[index] === '"') return Symbol("a string");
  const word = /^[A-Za-z0-9_.+-]+/.exec(text.slice(index, index + GOT_TEXT_LENGTH_MAX));
  return word === null ? text[index] : word[0];
}

// ---------------------------------------------------------------------------------------------------------------
// The schema and its errors.

// The file as the schema guarantees it, before defaults are filled in.
interface RawBoard {
  name: string;
  description?: string;
  seed?: number;
  processors: RawProcessor[];
  disks: RawDisk[];
  volumes?: RawVolume[];
  portals?: PortalSpec[];
  flash?: { image: string; slotSizeMiB?: number; trustedKeys: string[]; boardCompat?: string; populateKey?: string };
  targets?: { name: string; alias?: string; luns?: RawLun[]; chap?: { user: string; secret: string; mutualUser?: string; mutualSecret?: string }; initiators?: string[] }[];
  nbd?: { portal?: PortalSpec; exports: { name: string; volume: number | string; readOnly?: boolean }[] };
  cluster?: RawCluster;
}
type RawLun = number | string | { volume: number | string; readOnly?: boolean };
type RawVolume =
  | { name: string; type: "disk"; disk: string }
  | { name: string; type: "raid0" | "raid1" | "raid5"; members: string[]; chunkKiB?: number; spares?: string[] }
  | { name: string; type: "replica"; copies: string[]; chunkKiB?: number; spares?: string[] }
  | { name: string; type: "thin"; pool: string; sizeMiB: number; chunkKiB?: number; softThresholdPercent?: number };
type RawDisk =
  | (Omit<FileDiskSpec, "physicalBlockSize"> & { physicalBlockSize?: number })
  | (Omit<MemoryDiskSpec, "physicalBlockSize"> & { physicalBlockSize?: number });
interface RawProcessor {
  name: string;
  role: ProcessorRole;
  ramMiB: number;
  pci: RawPciFunction[];
}
type RawPciFunction =
  | { model: "iop-bridge"; slot: number; function?: number; processor: string }
  | { model: "virtio-scsi"; slot: number; function?: number; disks: string[]; queueSize?: number }
  | { model: "nvme"; slot: number; function?: number; disks: string[]; queueEntriesMax?: number; ioQueues?: number }
  | { model: "nic"; slot: number; function?: number; rxRingEntries?: number; copyGBps?: number }
  | { model: "xor-engine"; slot: number; function?: number }
  | { model: "nvram"; slot: number; function?: number; sizeKiB?: number; backend?: "file" | "memory"; image?: string };

let schemaRoot: AnySchemaObject | undefined;
let validatorCached: ValidateFunction | undefined;

// Compiled once, on first use, so importing this module costs nothing until a board is loaded.
function boardValidator(): ValidateFunction {
  if (validatorCached !== undefined) return validatorCached;
  schemaRoot = JSON.parse(readFileSync(SCHEMA_PATH, "utf8")) as AnySchemaObject;
  // allErrors false: the first error is the one reported, and validation stops there. Strict, except that a
  // discriminator's `required` names the tag, which only its oneOf branches define (strictRequired would refuse).
  const ajv = new Ajv2020({
    allErrors: false,
    verbose: true,
    discriminator: true,
    strict: true,
    strictRequired: false,
  });
  ajv.addKeyword({ keyword: "expected", schemaType: "string" }); // an annotation the messages quote
  validatorCached = ajv.compile(schemaRoot);
  return validatorCached;
}

// Follows local references of the form "#/$defs/name", the only kind the board schema uses.
function resolveSchema(schema: unknown): AnySchemaObject | undefined {
  if (typeof schema !== "object" || schema === null) return undefined;
  const ref = (schema as AnySchemaObject)["$ref"];
  if (typeof ref !== "string") return schema as AnySchemaObject;
  const match = /^#\/\$defs\/([A-Za-z0-9_]+)$/.exec(ref);
  const defs = schemaRoot?.["$defs"] as Record<string, AnySchemaObject> | undefined;
  return match === null || defs === undefined ? undefined : resolveSchema(defs[match[1]!]);
}

// Turns the most specific ajv error into a BoardFileError.
function schemaError(errors: readonly ErrorObject[], json: unknown, file: string): BoardFileError {
  let chosen = errors[0];
  for (const error of errors) {
    if (chosen === undefined || pointerDepth(error.instancePath) > pointerDepth(chosen.instancePath)) chosen = error;
  }
  if (chosen === undefined) return new BoardFileError(file, "", "a valid board");
  const tokens = pointerTokens(chosen.instancePath);
  const field = fieldPath(json, tokens);
  const parent = resolveSchema(chosen.parentSchema) ?? {};
  switch (chosen.keyword) {
    case "additionalProperties": {
      const key = String(chosen.params["additionalProperty"]);
      return unknownFieldError(file, joinField(field, key), parent);
    }
    case "required":
      return missingFieldError(file, field, String(chosen.params["missingProperty"]), parent, chosen.data);
    case "discriminator": {
      const tag = String(chosen.params["tag"]);
      const tagValue: unknown = chosen.params["tagValue"];
      return new BoardFileError(file, joinField(field, tag), describeDiscriminator(parent), tagValue ?? GOT_NOTHING);
    }
    default:
      return new BoardFileError(file, field === "" ? "top level" : field, describeSchema(parent), chosen.data);
  }
}

function unknownFieldError(file: string, field: string, objectSchema: AnySchemaObject): BoardFileError {
  const names = Object.keys((objectSchema["properties"] as object | undefined) ?? {});
  return new BoardFileError(file, field, names.join(", "), GOT_UNKNOWN_FIELD);
}

// A missing field is reported as such, unless the object also holds a field the schema does not know: that is
// most likely the missing one misspelt, and naming it points at the line to fix.
function missingFieldError(
  file: string,
  field: string,
  missing: string,
  objectSchema: AnySchemaObject,
  data: unknown,
): BoardFileError {
  const properties = objectSchema["properties"] as Record<string, unknown> | undefined;
  if (properties !== undefined && typeof data === "object" && data !== null) {
    const unknownKey = Object.keys(data).find((key) => !(key in properties));
    if (unknownKey !== undefined) return unknownFieldError(file, joinField(field, unknownKey), objectSchema);
  }
  const discriminator = objectSchema["discriminator"] as { propertyName?: string } | undefined;
  if (discriminator?.propertyName === missing) {
    return new BoardFileError(file, joinField(field, missing), describeDiscriminator(objectSchema), GOT_NOTHING);
  }
  let expected = describeSchema(resolveSchema(properties?.[missing]) ?? {});
  // Inside a branch chosen by a discriminator, say which choice made the field required.
  for (const [key, value] of Object.entries(properties ?? {})) {
    const constValue: unknown = resolveSchema(value)?.["const"];
    if (key !== missing && constValue !== undefined) {
      expected += ` (required when ${key} is ${JSON.stringify(constValue)})`;
      break;
    }
  }
  return new BoardFileError(file, joinField(field, missing), expected, GOT_NOTHING);
}

// 'one of "iop-bridge", "virtio-scsi", "nic"': the const of each branch a discriminator chooses between.
function describeDiscriminator(schema: AnySchemaObject): string {
  const tag = (schema["discriminator"] as { propertyName: string }).propertyName;
  const branches = (schema["oneOf"] as unknown[] | undefined) ?? [];
  const values = branches.map((branch) => {
    const properties = resolveSchema(branch)?.["properties"] as Record<string, unknown> | undefined;
    return JSON.stringify(resolveSchema(properties?.[tag])?.["const"]);
  });
  return `one of ${values.join(", ")}`;
}

// What a field's schema asks for, in words: its "expected" annotation, else built from its type and bounds.
function describeSchema(schema: AnySchemaObject): string {
  if (typeof schema["expected"] === "string") return schema["expected"];
  if (schema["const"] !== undefined) return JSON.stringify(schema["const"]);
  if (Array.isArray(schema["enum"])) return `one of ${schema["enum"].map((value) => JSON.stringify(value)).join(", ")}`;
  const minimum = schema["minimum"] as number | undefined;
  const maximum = schema["maximum"] as number | undefined;
  switch (schema["type"]) {
    case "integer":
      if (minimum !== undefined && maximum !== undefined) return `an integer from ${minimum} to ${maximum}`;
      if (minimum !== undefined) return `an integer of at least ${minimum}`;
      if (maximum !== undefined) return `an integer of at most ${maximum}`;
      return "an integer";
    case "string":
      return "a string";
    case "array":
      return "an array";
    case "object":
      return "an object";
    default:
      return "a valid value";
  }
}

function pointerTokens(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer
    .split("/")
    .slice(1)
    .map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function pointerDepth(pointer: string): number {
  return pointer === "" ? 0 : pointer.split("/").length - 1;
}

// processors[0].pci[2] from the tokens of /processors/0/pci/2, looking at the data to tell indexes from keys.
function fieldPath(json: unknown, tokens: readonly string[]): string {
  let field = "";
  let node: unknown = json;
  for (const token of tokens) {
    if (Array.isArray(node)) {
      field += `[${token}]`;
      node = node[Number(token)];
    } else {
      field = joinField(field, token);
      node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[token] : undefined;
    }
  }
  return field;
}

function joinField(field: string, key: string): string {
  if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return `${field}[${JSON.stringify(key)}]`;
  return field === "" ? key : `${field}.${key}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The rules a schema cannot state. Each check throws at the first offence, in file order, so the same bad file
// always gives the same message.

// Exactly one host, and it is processors[0], so that processor index 0 in the boot-info block is the host.
function checkProcessors(board: RawBoard, file: string): void {
  if (Buffer.byteLength(board.name, "utf8") > BOARD_NAME_BYTES_MAX) {
    throw new BoardFileError(file, "name", `a name of at most ${BOARD_NAME_BYTES_MAX} bytes`, board.name);
  }
  board.processors.forEach((processor, index) => {
    if (index === 0 && processor.role !== "host") {
      throw new BoardFileError(file, "processors[0].role", '"host" (the first processor is the host)', processor.role);
    }
    if (index > 0 && processor.role !== "storage") {
      const expected = '"storage" (only processors[0] is the host)';
      throw new BoardFileError(file, `processors[${index}].role`, expected, processor.role);
    }
  });
}

function checkNames(board: RawBoard, file: string): void {
  checkUnique(
    board.processors.map((processor) => processor.name),
    "processors",
    file,
  );
  checkUnique(
    board.disks.map((disk) => disk.name),
    "disks",
    file,
  );
}

function checkUnique(names: readonly string[], listField: string, file: string): void {
  const firstIndexByName = new Map<string, number>();
  names.forEach((name, index) => {
    const firstIndex = firstIndexByName.get(name);
    if (firstIndex !== undefined) {
      const expected = `a name not already used by ${listField}[${firstIndex}]`;
      throw new BoardFileError(file, `${listField}[${index}].name`, expected, name);
    }
    firstIndexByName.set(name, index);
  });
}

// Target names are unique, each LUN names a volume (by number or name) at most once per target, and mutual CHAP
// comes with both its user and its secret.
function checkTargets(board: RawBoard, file: string): void {
  const targets = board.targets ?? [];
  const volumeNames = rawVolumes(board).map((volume) => volume.name);
  const indexByName = new Map(volumeNames.map((name, index) => [name, index]));
  const whose = board.volumes === undefined ? "one volume per disk" : "one per entry of volumes";
  checkUnique(targets.map((target) => target.name), "targets", file);
  targets.forEach((target, index) => {
    const firstLunByVolume = new Map<number, number>();
    target.luns?.forEach((raw, lunIndex) => {
      const reference = typeof raw === "object" ? raw.volume : raw;
      const field = typeof raw === "object" ? `targets[${index}].luns[${lunIndex}].volume` : `targets[${index}].luns[${lunIndex}]`;
      if (typeof reference === "string" && !indexByName.has(reference)) {
        const names = board.volumes === undefined ? "a volume, named after its disk" : "a volume listed in volumes";
        throw new BoardFileError(file, field, `the name of ${names} (${volumeNames.map(quote).join(", ")})`, reference);
      }
      if (typeof reference === "number" && reference >= volumeNames.length) {
        throw new BoardFileError(file, field, `a volume number below ${volumeNames.length} (${whose})`, reference);
      }
      const volume = buildLun(raw, indexByName).volume;
      const first = firstLunByVolume.get(volume);
      if (first !== undefined) throw new BoardFileError(file, field, `a volume not already listed by targets[${index}].luns[${first}]`, reference);
      firstLunByVolume.set(volume, lunIndex);
    });
    const chap = target.chap;
    if (chap !== undefined && (chap.mutualUser === undefined) !== (chap.mutualSecret === undefined)) {
      const missing = chap.mutualUser === undefined ? "mutualUser" : "mutualSecret";
      throw new BoardFileError(file, `targets[${index}].chap.${missing}`, "both mutualUser and mutualSecret, or neither", GOT_NOTHING);
    }
    if (chap?.mutualSecret !== undefined && chap.mutualSecret === chap.secret) {
      throw new BoardFileError(file, `targets[${index}].chap.mutualSecret`, "a secret other than the initiator's (RFC 7143 forbids reusing it)", "the same secret");
    }
  });
}

// NBD export names are unique and each names a volume that exists, by number or name.
function checkNbd(board: RawBoard, file: string): void {
  const exports = board.nbd?.exports ?? [];
  const volumeNames = rawVolumes(board).map((volume) => volume.name);
  checkUnique(exports.map((entry) => entry.name), "nbd.exports", file);
  exports.forEach((entry, index) => {
    const field = `nbd.exports[${index}].volume`;
    if (typeof entry.volume === "string" && !volumeNames.includes(entry.volume)) {
      const names = board.volumes === undefined ? "a volume, named after its disk" : "a volume listed in volumes";
      throw new BoardFileError(file, field, `the name of ${names} (${volumeNames.map(quote).join(", ")})`, entry.volume);
    }
    if (typeof entry.volume === "number" && entry.volume >= volumeNames.length) {
      const whose = board.volumes === undefined ? "one volume per disk" : "one per entry of volumes";
      throw new BoardFileError(file, field, `a volume number below ${volumeNames.length} (${whose})`, entry.volume);
    }
  });
}

// The cluster section (host/board/cluster_spec.ts): boards, this board, owners, and volumes the pages cover.
function checkClusterSection(board: RawBoard, file: string, remoteDisks: readonly RemoteDiskSpec[]): void {
  if (board.cluster === undefined) return;
  const disks = [...board.disks.map(buildDisk), ...remoteDisks.map(remoteDiskAsLocal)];
  const volumes = rawVolumes(board).map(buildVolume);
  checkCluster(board.cluster, {
    names: volumes.map((v) => v.name),
    capacityBlocks: (index) => volumeCapacityBytes(volumes[index]!, disks, volumes) / volumeBlockSizeBytes(volumes[index]!, disks, volumes),
    targetCount: board.targets?.length ?? 1,
  }, (field, expected, got) => new BoardFileError(file, field, expected, got));
}

// The volumes the file lists, or the one "disk" volume per disk a board without `volumes` has.
function rawVolumes(board: RawBoard): RawVolume[] {
  return board.volumes ?? board.disks.map((disk) => ({ name: disk.name, type: "disk", disk: disk.name }));
}

// Volumes: names unique among the volumes and unlike any disk's (a "disk" volume may take its own disk's name),
// every name they use known, each disk and volume used once, and sizes that fit (host/board/volume_geometry.ts).
// A board without `volumes` has one volume per disk, which must fit the firmware's table too.
// Answers the replicas' copies on other boards, resolved through `remote`.
function checkVolumes(board: RawBoard, file: string, remote: RemoteDiskResolver | undefined): RemoteDiskSpec[] {
  if (board.volumes === undefined) {
    if (board.disks.length > VOLUMES_MAX) {
      const expected = `at most ${VOLUMES_MAX} disks on a board without volumes (one volume per disk, at most ${VOLUMES_MAX} volumes)`;
      throw new BoardFileError(file, "disks", expected, Symbol(`${board.disks.length} disks`));
    }
    return [];
  }
  const raws = board.volumes;
  checkUnique(raws.map((volume) => volume.name), "volumes", file);
  const remoteDisks = remoteCopies(board, file, remote);
  const disks = [...board.disks.map(buildDisk), ...remoteDisks.map(remoteDiskAsLocal)];
  const volumes = raws.map(buildVolume);
  const uses = new VolumeUses(file, disks, raws);
  volumes.forEach((volume, index) => {
    const prefix = `volumes[${index}]`;
    switch (volume.type) {
      case "disk":
        uses.disk(volume.disk, `${prefix}.disk`, "");
        checkVolumeName(volume, prefix, disks, file);
        break;
      case "raid0":
      case "raid1":
      case "raid5":
        volume.members.forEach((name, k) => uses.disk(name, `${prefix}.members[${k}]`, " (members are disks for now)"));
        volume.spares.forEach((name, k) => uses.disk(name, `${prefix}.spares[${k}]`, ""));
        checkVolumeName(volume, prefix, disks, file);
        checkRaidFit(volume, prefix, disks, file);
        break;
      case "replica":
        volume.members.forEach((name, k) => { if (!isRemoteCopy(name)) uses.disk(name, `${prefix}.copies[${k}]`, ""); });
        volume.spares.forEach((name, k) => uses.disk(name, `${prefix}.spares[${k}]`, ""));
        checkReplicaProcessors(board, volume, prefix, file);
        checkVolumeName(volume, prefix, disks, file);
        checkRaidFit(volume, prefix, disks, file);
        break;
      case "thin":
        uses.pool(volume.pool, `${prefix}.pool`, index);
        checkVolumeName(volume, prefix, disks, file);
        checkThinFit(volume, prefix, disks, volumes, file);
        break;
    }
  });
  return remoteDisks;
}

// Every replica copy named "BOARD:DISK": a disk of another board of this board's cluster, found by `remote`; a
// replica holds its copy 0 here (the board that presents it), and a remote disk is used once. Raid volumes' members
// and spares stay this board's disks (the usual rules refuse a ":" name as an unknown disk).
function remoteCopies(board: RawBoard, file: string, remote: RemoteDiskResolver | undefined): RemoteDiskSpec[] {
  const found: RemoteDiskSpec[] = [];
  (board.volumes ?? []).forEach((volume, index) => {
    if (volume.type !== "replica") return;
    volume.copies.forEach((name, k) => {
      if (!isRemoteCopy(name)) return;
      const field = `volumes[${index}].copies[${k}]`;
      if (k === 0) throw new BoardFileError(file, field, "a disk of this board (copy 0 is the presenting board's; copies[1] may be \"BOARD:DISK\" on another board)", name);
      const [boardName, diskName] = [name.slice(0, name.indexOf(":")), name.slice(name.indexOf(":") + 1)];
      const boards = board.cluster?.boards.map((b) => b.name) ?? [];
      if (board.cluster === undefined || remote === undefined) {
        throw new BoardFileError(file, field, "a disk of this board: a copy on another board (\"BOARD:DISK\") needs a cluster file naming both boards (wasm-iop run --cluster)", name);
      }
      if (boardName === board.cluster.board || !boards.includes(boardName)) {
        throw new BoardFileError(file, field, `"BOARD:DISK" with BOARD another board of the cluster (${boards.filter((b) => b !== board.cluster!.board).map(quote).join(", ")})`, name);
      }
      const answer = remote(boardName, diskName);
      if (typeof answer === "string") throw new BoardFileError(file, field, answer, name);
      if (found.some((d) => d.name === name)) throw new BoardFileError(file, field, "a disk not already used by another copy", name);
      found.push(answer);
    });
  });
  return found;
}

/** A remote copy's disk under the name the replica gives it, for the geometry rules (volume_geometry.ts). */
export function remoteDiskAsLocal(remote: RemoteDiskSpec): DiskSpec {
  return { ...remote.disk, name: remote.name };
}

// A replica's two copies are on two processors: one processor's failure leaves the other copy.
function checkReplicaProcessors(board: RawBoard, volume: RaidVolumeSpec, prefix: string, file: string): void {
  const processorOf = (disk: string) => board.processors.find((p) => p.pci.some((f) => "disks" in f && f.disks.includes(disk)))?.name;
  const first = processorOf(volume.members[0]!);
  if (first !== undefined && processorOf(volume.members[1]!) === first) {
    throw new BoardFileError(file, `${prefix}.copies[1]`, `a disk on another processor than copies[0] (${first})`, volume.members[1]!);
  }
}

// A LUN names a volume, never a disk, so a volume's name is no disk's, but for a "disk" volume over that disk (the
// volumes a board without `volumes` has are named so). Checked after the volume's references, so that a mistyped
// disk of a disk volume is reported as such rather than as a name that no longer matches its disk.
function checkVolumeName(volume: VolumeSpec, prefix: string, disks: readonly DiskSpec[], file: string): void {
  const diskIndex = disks.findIndex((disk) => disk.name === volume.name);
  if (diskIndex >= 0 && !(volume.type === "disk" && volume.disk === volume.name)) {
    const expected = `a name no disk has (disks[${diskIndex}] has it; only a "disk" volume may take its own disk's name)`;
    throw new BoardFileError(file, `${prefix}.name`, expected, volume.name);
  }
}

// Each disk and each volume is used at most once across the volumes: as a "disk" volume's disk, a member, a spare or
// a pool. A second use is refused naming the field of the first.
class VolumeUses {
  private readonly firstFieldByDisk = new Map<string, string>();
  private readonly firstFieldByVolume = new Map<string, string>();

  constructor(
    private readonly file: string,
    private readonly disks: readonly DiskSpec[],
    private readonly volumes: readonly RawVolume[],
  ) {}

  disk(name: string, field: string, note: string): void {
    if (!this.disks.some((disk) => disk.name === name)) {
      throw new BoardFileError(this.file, field, `the name of a disk listed in disks${note}`, name);
    }
    const first = this.firstFieldByDisk.get(name);
    if (first !== undefined) throw new BoardFileError(this.file, field, `a disk not already used by ${first}`, name);
    this.firstFieldByDisk.set(name, field);
  }

  // A pool is an earlier volume, so volumes stack without cycles, and it is not thin: a thin volume hands out
  // chunks, it does not take a second layer of them.
  pool(name: string, field: string, userIndex: number): void {
    const poolIndex = this.volumes.findIndex((volume) => volume.name === name);
    if (poolIndex < 0) throw new BoardFileError(this.file, field, "the name of an earlier volume listed in volumes", name);
    if (poolIndex >= userIndex) {
      throw new BoardFileError(this.file, field, `a volume listed before volumes[${userIndex}] (volumes[${poolIndex}] comes after)`, name);
    }
    if (this.volumes[poolIndex]!.type === "thin") {
      throw new BoardFileError(this.file, field, `a volume that is not thin (volumes[${poolIndex}] is thin)`, name);
    }
    const first = this.firstFieldByVolume.get(name);
    if (first !== undefined) throw new BoardFileError(this.file, field, `a volume not already used by ${first}`, name);
    this.firstFieldByVolume.set(name, field);
  }
}

// A RAID volume's disks share one block size; its smallest member leaves room for at least one stripe unit after
// its metadata, and each spare is as large as the smallest member.
function checkRaidFit(volume: RaidVolumeSpec, prefix: string, disks: readonly DiskSpec[], file: string): void {
  const diskOf = (name: string) => disks.find((disk) => disk.name === name)!;
  const first = diskOf(volume.members[0]!);
  const fields = [...volume.members.map((name, k) => [name, `${prefix}.members[${k}]`]), ...volume.spares.map((name, k) => [name, `${prefix}.spares[${k}]`])];
  for (const [name, field] of fields) {
    const disk = diskOf(name!);
    if (disk.blockSize !== first.blockSize) {
      const expected = `a disk of blockSize ${first.blockSize}, as ${prefix}.members[0] (${quote(first.name)}) has`;
      throw new BoardFileError(file, field!, expected, Symbol(`${quote(disk.name)} of blockSize ${disk.blockSize}`));
    }
  }
  const chunkBytes = volume.chunkKiB * KIB_BYTES;
  const smallestIndex = volume.members.reduce((best, name, k) => (diskOf(name).sizeMiB < diskOf(volume.members[best]!).sizeMiB ? k : best), 0);
  const smallest = diskOf(volume.members[smallestIndex]!);
  if (raidDataAreaBytes(diskBytes(smallest), chunkBytes) === 0) {
    const expected = `a disk larger than ${mib(RAID_METADATA_BYTES)} by at least one ${volume.chunkKiB} KiB chunk (each member keeps its first ${mib(RAID_METADATA_BYTES)} for metadata)`;
    throw new BoardFileError(file, `${prefix}.members[${smallestIndex}]`, expected, Symbol(`${quote(smallest.name)} of ${smallest.sizeMiB} MiB`));
  }
  volume.spares.forEach((name, k) => {
    const spare = diskOf(name);
    if (spare.sizeMiB < smallest.sizeMiB) {
      const expected = `a disk of at least ${smallest.sizeMiB} MiB, as the smallest member ${prefix}.members[${smallestIndex}] (${quote(smallest.name)})`;
      throw new BoardFileError(file, `${prefix}.spares[${k}]`, expected, Symbol(`${quote(spare.name)} of ${spare.sizeMiB} MiB`));
    }
  });
}

// A thin volume's pool holds its metadata (which grows with the virtual size) and at least one chunk.
function checkThinFit(volume: ThinVolumeSpec, prefix: string, disks: readonly DiskSpec[], volumes: readonly VolumeSpec[], file: string): void {
  const pool = volumes.find((v) => v.name === volume.pool)!;
  const poolBytes = volumeCapacityBytes(pool, disks, volumes);
  const virtualBytes = volume.sizeMiB * MIB_BYTES;
  const chunkBytes = volume.chunkKiB * KIB_BYTES;
  if (thinPoolChunkCount(poolBytes, virtualBytes, chunkBytes) === 0) {
    const metadataBytes = thinMetadataBytes(virtualBytes, chunkBytes);
    const expected = `a pool of at least ${mib(metadataBytes + chunkBytes)} (${mib(metadataBytes)} of metadata for ${volume.sizeMiB} MiB in ${volume.chunkKiB} KiB chunks, and one chunk)`;
    throw new BoardFileError(file, `${prefix}.pool`, expected, Symbol(`${quote(pool.name)} of ${mib(poolBytes)}`));
  }
}

// "1 MiB", "1.0625 MiB": sizes in messages, exact.
function mib(bytes: number): string {
  return `${bytes / MIB_BYTES} MiB`;
}

// A PCI function is addressed by (slot, function) on its processor's bus, so no two may share both.
function checkBuses(board: RawBoard, file: string): void {
  board.processors.forEach((processor, processorIndex) => {
    const pciIndexByAddress = new Map<number, number>();
    processor.pci.forEach((pciFunction, pciIndex) => {
      const functionNumber = pciFunction.function ?? PCI_FUNCTION_DEFAULT;
      const address = pciFunction.slot * 8 + functionNumber;
      const firstIndex = pciIndexByAddress.get(address);
      if (firstIndex !== undefined) {
        const field = `processors[${processorIndex}].pci[${pciIndex}].slot`;
        const firstField = `processors[${processorIndex}].pci[${firstIndex}]`;
        const expected = `a slot not already used with function ${functionNumber} by ${firstField}`;
        throw new BoardFileError(file, field, expected, pciFunction.slot);
      }
      pciIndexByAddress.set(address, pciIndex);
    });
  });
}

// The NVRAM is the host processor's (the SCSI target keeps its persistent reservations there): one card at most, on
// the host's bus, its image not a disk's.
function checkNvram(board: RawBoard, file: string): void {
  let firstField: string | undefined;
  board.processors.forEach((processor, processorIndex) => {
    processor.pci.forEach((pciFunction, pciIndex) => {
      if (pciFunction.model !== "nvram") return;
      const prefix = `processors[${processorIndex}].pci[${pciIndex}]`;
      if (processor.role !== "host") throw new BoardFileError(file, `${prefix}.model`, 'a model other than "nvram" (the NVRAM is on the host\'s bus)', pciFunction.model);
      if (firstField !== undefined) throw new BoardFileError(file, prefix, `no second nvram (${firstField} is the board's)`, pciFunction.model);
      firstField = prefix;
      const image = pciFunction.image ?? NVRAM_IMAGE_DEFAULT;
      const disk = board.disks.find((d) => d.backend === "file" && d.image === image);
      if (disk !== undefined) throw new BoardFileError(file, `${prefix}.image`, `an image no disk uses (disk ${quote(disk.name)} does)`, image);
    });
  });
}

// Bridges sit on the host's bus and each storage processor sits behind exactly one, so the processors form a star
// around the host: no processor unreachable, none reachable twice, no bridge loops.
function checkBridges(board: RawBoard, file: string): void {
  const storageNames = board.processors.filter((processor) => processor.role === "storage").map((p) => p.name);
  const bridgeFieldByName = new Map<string, string>();
  board.processors.forEach((processor, processorIndex) => {
    processor.pci.forEach((pciFunction, pciIndex) => {
      if (pciFunction.model !== "iop-bridge") return;
      const prefix = `processors[${processorIndex}].pci[${pciIndex}]`;
      if (processorIndex !== 0) {
        const expected = 'a model other than "iop-bridge" (only the host\'s bus bridges to storage processors)';
        throw new BoardFileError(file, `${prefix}.model`, expected, pciFunction.model);
      }
      if (!storageNames.includes(pciFunction.processor)) {
        const names = storageNames.length === 0 ? "none on this board" : storageNames.map(quote).join(", ");
        const expected = `the name of a storage processor (${names})`;
        throw new BoardFileError(file, `${prefix}.processor`, expected, pciFunction.processor);
      }
      const firstField = bridgeFieldByName.get(pciFunction.processor);
      if (firstField !== undefined) {
        const expected = `a storage processor not already bridged by ${firstField}`;
        throw new BoardFileError(file, `${prefix}.processor`, expected, pciFunction.processor);
      }
      bridgeFieldByName.set(pciFunction.processor, prefix);
    });
  });
  board.processors.forEach((processor, processorIndex) => {
    if (processor.role === "storage" && !bridgeFieldByName.has(processor.name)) {
      const expected = `an "iop-bridge" on the host's bus naming ${quote(processor.name)}`;
      throw new BoardFileError(file, `processors[${processorIndex}]`, expected, GOT_NOTHING);
    }
  });
}

// Each disk has exactly one owner: a virtio-scsi or NVMe function that names it, on exactly one processor.
function checkDiskUse(board: RawBoard, file: string): void {
  const diskNames = new Set(board.disks.map((disk) => disk.name));
  const userFieldByDisk = new Map<string, string>();
  board.processors.forEach((processor, processorIndex) => {
    processor.pci.forEach((pciFunction, pciIndex) => {
      if (pciFunction.model !== "virtio-scsi" && pciFunction.model !== "nvme") return;
      const prefix = `processors[${processorIndex}].pci[${pciIndex}]`;
      pciFunction.disks.forEach((diskName, diskIndex) => {
        const field = `${prefix}.disks[${diskIndex}]`;
        if (!diskNames.has(diskName)) {
          throw new BoardFileError(file, field, "the name of a disk listed in disks", diskName);
        }
        const firstField = userFieldByDisk.get(diskName);
        if (firstField !== undefined) {
          throw new BoardFileError(file, field, `a disk not already attached by ${firstField}`, diskName);
        }
        userFieldByDisk.set(diskName, prefix);
      });
    });
  });
  board.disks.forEach((disk, diskIndex) => {
    if (!userFieldByDisk.has(disk.name)) {
      const expected = `a "virtio-scsi" or "nvme" function whose disks name ${quote(disk.name)}`;
      throw new BoardFileError(file, `disks[${diskIndex}]`, expected, GOT_NOTHING);
    }
  });
}

function quote(name: string): string {
  return JSON.stringify(name);
}

// ---------------------------------------------------------------------------------------------------------------
// The spec, built field by field so nothing from the file rides along unchecked.

function buildSpec(board: RawBoard, file: string): BoardSpec {
  const volumeIndexByName = new Map(rawVolumes(board).map((volume, index) => [volume.name, index]));
  return {
    file,
    name: board.name,
    description: board.description ?? "",
    seed: board.seed ?? SEED_DEFAULT,
    processors: board.processors.map((processor) => ({
      name: processor.name,
      role: processor.role,
      ramMiB: processor.ramMiB,
      pci: processor.pci.map(buildPciFunction),
    })),
    disks: board.disks.map(buildDisk),
    volumes: rawVolumes(board).map(buildVolume),
    portals: (board.portals ?? []).map((portal) => ({ host: portal.host, port: portal.port })),
    flash: board.flash === undefined ? undefined : {
      image: board.flash.image,
      slotSizeMiB: board.flash.slotSizeMiB ?? 4,
      // Key paths are relative to the board file, so a board and its keys travel together.
      trustedKeys: board.flash.trustedKeys.map((key) => resolve(dirname(file), key)),
      boardCompat: board.flash.boardCompat ?? "wasm-iop",
      populateKey: board.flash.populateKey === undefined ? undefined : resolve(dirname(file), board.flash.populateKey),
    },
    targets: (board.targets ?? [{ name: `iqn.2026-11.org.wasm-iop:${board.name}` }]).map((t) => ({
      name: t.name,
      alias: t.alias ?? "",
      luns: t.luns?.map((lun) => buildLun(lun, volumeIndexByName)),
      chap: t.chap,
      initiators: t.initiators ?? [],
    })),
    nbd: board.nbd === undefined ? undefined : {
      portal: board.nbd.portal === undefined ? NBD_PORTAL_DEFAULT : { host: board.nbd.portal.host, port: board.nbd.portal.port },
      exports: board.nbd.exports.map((entry) => ({
        name: entry.name,
        volume: typeof entry.volume === "number" ? entry.volume : volumeIndexByName.get(entry.volume)!,
        readOnly: entry.readOnly ?? false,
      })),
    },
    cluster: board.cluster === undefined ? undefined : buildCluster(board.cluster, (name) => volumeIndexByName.get(name)!),
  };
}

// A LUN's volume by number, or by name through `indexByName` (checkTargets has refused unknown names).
function buildLun(raw: RawLun, indexByName: ReadonlyMap<string, number>): LunSpec {
  const reference = typeof raw === "object" ? raw.volume : raw;
  const volume = typeof reference === "number" ? reference : indexByName.get(reference)!;
  return { volume, readOnly: typeof raw === "object" ? (raw.readOnly ?? false) : false };
}

function buildVolume(raw: RawVolume): VolumeSpec {
  switch (raw.type) {
    case "disk":
      return { name: raw.name, type: "disk", disk: raw.disk };
    case "raid0":
    case "raid1":
    case "raid5":
      return { name: raw.name, type: raw.type, members: [...raw.members], chunkKiB: raw.chunkKiB ?? RAID_CHUNK_KIB_DEFAULT, spares: [...(raw.spares ?? [])] };
    case "replica":
      return { name: raw.name, type: raw.type, members: [...raw.copies], chunkKiB: raw.chunkKiB ?? RAID_CHUNK_KIB_DEFAULT, spares: [...(raw.spares ?? [])] };
    case "thin":
      return {
        name: raw.name,
        type: "thin",
        pool: raw.pool,
        sizeMiB: raw.sizeMiB,
        chunkKiB: raw.chunkKiB ?? THIN_CHUNK_KIB_DEFAULT,
        softThresholdPercent: raw.softThresholdPercent,
      };
  }
}

/** The volumes no other volume is built on (none names them as its pool), by index, in order. */
export function topLevelVolumes(volumes: readonly VolumeSpec[]): number[] {
  const pools = new Set(volumes.flatMap((volume) => (volume.type === "thin" ? [volume.pool] : [])));
  return volumes.flatMap((volume, index) => (pools.has(volume.name) ? [] : [index]));
}

/** A target's LUNs, LUN n first: the file's list, or every top-level volume, writable, when it gives none. */
export function targetLuns(spec: Pick<BoardSpec, "volumes">, target: Pick<TargetSpec, "luns">): readonly LunSpec[] {
  return target.luns ?? topLevelVolumes(spec.volumes).map((volume) => ({ volume, readOnly: false }));
}

function buildPciFunction(pciFunction: RawPciFunction): PciFunctionSpec {
  const functionNumber = pciFunction.function ?? PCI_FUNCTION_DEFAULT;
  switch (pciFunction.model) {
    case "iop-bridge":
      return {
        model: "iop-bridge",
        slot: pciFunction.slot,
        function: functionNumber,
        processor: pciFunction.processor,
      };
    case "virtio-scsi":
      return {
        model: "virtio-scsi",
        slot: pciFunction.slot,
        function: functionNumber,
        disks: [...pciFunction.disks],
        queueSize: pciFunction.queueSize ?? QUEUE_SIZE_DEFAULT,
      };
    case "nvme":
      return {
        model: "nvme",
        slot: pciFunction.slot,
        function: functionNumber,
        disks: [...pciFunction.disks],
        queueEntriesMax: pciFunction.queueEntriesMax ?? NVME_QUEUE_ENTRIES_DEFAULT,
        ioQueues: pciFunction.ioQueues ?? NVME_IO_QUEUES_DEFAULT,
      };
    case "nic":
      return {
        model: "nic",
        slot: pciFunction.slot,
        function: functionNumber,
        rxRingEntries: pciFunction.rxRingEntries ?? RX_RING_ENTRIES_DEFAULT,
        copyGBps: pciFunction.copyGBps ?? NIC_COPY_BYTES_PER_NS_DEFAULT, // GB/s = bytes per ns
      };
    case "xor-engine":
      return { model: "xor-engine", slot: pciFunction.slot, function: functionNumber };
    case "nvram":
      return {
        model: "nvram",
        slot: pciFunction.slot,
        function: functionNumber,
        sizeKiB: pciFunction.sizeKiB ?? NVRAM_SIZE_DEFAULT_KIB,
        backend: pciFunction.backend ?? "file",
        image: pciFunction.image ?? NVRAM_IMAGE_DEFAULT,
      };
  }
}

// A physical block holds whole logical blocks (SBC-3, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT). Both sizes are
// powers of two (the schema's lists) and a disk is whole MiB, so the disk holds whole physical blocks too.
function checkDiskGeometry(board: RawBoard, file: string): void {
  board.disks.forEach((disk, diskIndex) => {
    const physical = disk.physicalBlockSize ?? disk.blockSize;
    if (physical < disk.blockSize) {
      throw new BoardFileError(file, `disks[${diskIndex}].physicalBlockSize`, `a size not below blockSize (${disk.blockSize})`, physical);
    }
  });
}

function buildDisk(disk: RawDisk): DiskSpec {
  const common = { name: disk.name, sizeMiB: disk.sizeMiB, blockSize: disk.blockSize, physicalBlockSize: disk.physicalBlockSize ?? disk.blockSize };
  return disk.backend === "file" ? { ...common, backend: "file", image: disk.image } : { ...common, backend: "memory" };
}

// ---------------------------------------------------------------------------------------------------------------
// A JSON syntax scan that reports where the text first breaks the grammar (RFC 8259) and what would have been
// valid there. It runs only after JSON.parse has failed. Containers are tracked on an explicit stack, and every
// pass of the main loop consumes at least one character or returns, so it ends within text.length passes.

interface JsonSyntaxError {
  readonly index: number;
  readonly expected: string;
}

enum JsonWant {
  Value, // any value: after ":", after "," in an array, or at the start
  ValueOrClose, // just after "["
  Key, // after "," in an object
  KeyOrClose, // just after "{"
  Colon, // after a property name
  CommaOrClose, // after a value inside a container
  End, // after the top-level value
}

function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const stack: Array<"{" | "["> = [];
  let want = JsonWant.Value;
  let index = 0;
  for (;;) {
    index = skipJsonSpace(text, index);
    const c = text[index];
    const step = jsonStep(text, index, want, stack, c);
    if (typeof step === "object") return step;
    if (step === JSON_DONE) return undefined;
    index = step;
    if (want === JsonWant.Key || want === JsonWant.KeyOrClose) {
      want = c === "}" ? afterJsonValue(stack) : JsonWant.Colon;
    } else if (want === JsonWant.Colon) {
      want = JsonWant.Value;
    } else if (want === JsonWant.CommaOrClose && c === ",") {
      want = stack[stack.length - 1] === "{" ? JsonWant.Key : JsonWant.Value;
    } else if (c === "{") {
      want = JsonWant.KeyOrClose;
    } else if (c === "[") {
      want = JsonWant.ValueOrClose;
    } else {
      want = afterJsonValue(stack);
    }
  }
}

const JSON_DONE = -1;

// Consumes the token `want` allows at `index` and returns the index after it, JSON_DONE at a valid end, or the
// error. Opening and closing brackets update `stack`.
function jsonStep(
  text: string,
  index: number,
  want: JsonWant,
  stack: Array<"{" | "[">,
  c: string | undefined,
): number | JsonSyntaxError {
  switch (want) {
    case JsonWant.End:
      return c === undefined ? JSON_DONE : { index, expected: "the end of the file after the top-level value" };
    case JsonWant.Colon:
      return c === ":" ? index + 1 : { index, expected: '":" after a property name' };
    case JsonWant.Key:
    case JsonWant.KeyOrClose:
      if (c === "}" && want === JsonWant.KeyOrClose) return closeJson(stack, index);
      if (c === '"') return scanJsonString(text, index);
      return { index, expected: `a property name in double quotes${want === JsonWant.KeyOrClose ? ' or "}"' : ""}` };
    case JsonWant.CommaOrClose: {
      const close = stack[stack.length - 1] === "{" ? "}" : "]";
      if (c === ",") return index + 1;
      if (c === close) return closeJson(stack, index);
      const after = close === "}" ? "a property value" : "an array element";
      return { index, expected: `"," or "${close}" after ${after}` };
    }
    case JsonWant.Value:
    case JsonWant.ValueOrClose:
      if (c === "]" && want === JsonWant.ValueOrClose) return closeJson(stack, index);
      return scanJsonValueStart(text, index, stack, want === JsonWant.ValueOrClose ? ' or "]"' : "");
  }
}

function scanJsonValueStart(
  text: string,
  index: number,
  stack: Array<"{" | "[">,
  orClose: string,
): number | JsonSyntaxError {
  const c = text[index];
  if (c === "{" || c === "[") {
    stack.push(c);
    return index + 1;
  }
  if (c === '"') return scanJsonString(text, index);
  if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return scanJsonNumber(text, index);
  for (const literal of ["true", "false", "null"]) {
    if (text.startsWith(literal, index) && !/[A-Za-z0-9_]/.test(text[index + literal.length] ?? "")) {
      return index + literal.length;
    }
  }
  return { index, expected: `a value (object, array, string, number, true, false or null)${orClose}` };
}

function closeJson(stack: Array<"{" | "[">, index: number): number {
  stack.pop();
  return index + 1;
}

function afterJsonValue(stack: readonly ("{" | "[")[]): JsonWant {
  return stack.length === 0 ? JsonWant.End : JsonWant.CommaOrClose;
}

function skipJsonSpace(text: string, index: number): number {
  while (index < text.length && " \t\n\r".includes(text[index]!)) index += 1;
  return index;
}

// A string from its opening quote; returns the index after the closing quote.
function scanJsonString(text: string, start: number): number | JsonSyntaxError {
  let index = start + 1;
  while (index < text.length) {
    const code = text.charCodeAt(index);
    if (code === 0x22) return index + 1; // the closing quote
    // A raw line break or other control character: most often a string whose closing quote is missing.
    if (code < 0x20) return { index, expected: "the closing quote of the string" };
    if (code === 0x5c) {
      const escape = text[index + 1];
      if (escape === "u" && /^[0-9A-Fa-f]{4}$/.test(text.slice(index + 2, index + 6))) {
        index += 6;
        continue;
      }
      if (escape === undefined || !'"\\/bfnrt'.includes(escape)) {
        const expected = 'an escape (\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\u and 4 hex digits)';
        return { index: index + 1, expected };
      }
      index += 2;
      continue;
    }
    index += 1;
  }
  return { index, expected: "the closing quote of the string" };
}

// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; returns the index after the number.
function scanJsonNumber(text: string, start: number): number | JsonSyntaxError {
  let index = start;
  if (text[index] === "-") index += 1;
  if (text[index] === "0") {
    index += 1;
  } else {
    const end = skipDigits(text, index);
    if (end === index) return { index, expected: "a digit" };
    index = end;
  }
  if (text[index] === ".") {
    const end = skipDigits(text, index + 1);
    if (end === index + 1) return { index: end, expected: 'a digit after "."' };
    index = end;
  }
  if (text[index] === "e" || text[index] === "E") {
    index += 1;
    if (text[index] === "+" || text[index] === "-") index += 1;
    const end = skipDigits(text, index);
    if (end === index) return { index, expected: "a digit in the exponent" };
    index = end;
  }
  return index;
}

function skipDigits(text: string, start: number): number {
  let index = start;
  while (index < text.length && text[index]! >= "0" && text[index]! <= "9") index += 1;
  return index;
}
