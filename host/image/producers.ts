// Producer metadata in a .wasm: the standard `producers` custom section (WebAssembly tool-conventions,
// ProducersSection.md), read and written by hand. jco's `metadataAdd` writes the same section, but jco pulls in
// componentize-js, rolldown and a second TypeScript (tens of megabytes) for these hundred lines.
//
// Section content: vec(field), field = name(field-name) vec(value), value = name(name) name(version);
// a vec is a LEB128 u32 count, a name a LEB128 u32 byte length and UTF-8. Field names: "language",
// "processed-by", "sdk"; each appears at most once, and so does the section.

const WASM_PREAMBLE_SIZE_BYTES = 8;
const WASM_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const SECTION_ID_CUSTOM = 0;
const PRODUCERS_SECTION_NAME = "producers";
const LEB128_U32_SIZE_MAX_BYTES = 5;

export type ProducerFieldName = "language" | "processed-by" | "sdk";
export const PRODUCER_FIELD_NAMES: readonly ProducerFieldName[] = ["language", "processed-by", "sdk"];

export interface ProducerEntry {
  name: string;
  version: string;
}

/** Fields in the order they appear, each with its values. */
export type Producers = Map<string, ProducerEntry[]>;

/** A module that is not WebAssembly 1.0 or whose section or producers structure does not parse. */
export class WasmFormatError extends Error {
  override name = "WasmFormatError";
}

interface Section {
  id: number;
  start: number; // offset of the id byte
  end: number; // offset just past the content
  contentStart: number;
  customName: string | null;
}

class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    public at: number,
    private readonly end: number,
  ) {}

  u8(): number {
    if (this.at >= this.end) throw new WasmFormatError(`unexpected end at byte ${this.at}`);
    const value = this.bytes[this.at] as number;
    this.at += 1;
    return value;
  }

  u32(): number {
    let value = 0;
    // A u32 takes at most 5 LEB128 bytes (WebAssembly core spec, Integers).
    for (let index = 0; index < LEB128_U32_SIZE_MAX_BYTES; index += 1) {
      const byte = this.u8();
      value += (byte & 0x7f) * 2 ** (7 * index);
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) throw new WasmFormatError(`LEB128 u32 overflows at byte ${this.at}`);
        return value;
      }
    }
    throw new WasmFormatError(`LEB128 u32 longer than ${LEB128_U32_SIZE_MAX_BYTES} bytes at byte ${this.at}`);
  }

  name(): string {
    const lengthBytes = this.u32();
    if (this.at + lengthBytes > this.end) throw new WasmFormatError(`name at byte ${this.at} runs past its section`);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(this.at, this.at + lengthBytes));
    } catch {
      throw new WasmFormatError(`name at byte ${this.at} is not UTF-8`);
    }
    this.at += lengthBytes;
    return text;
  }
}

function encodeU32(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  // Seven bits per byte; a u32 needs at most five.
  for (let index = 0; index < LEB128_U32_SIZE_MAX_BYTES; index += 1) {
    const byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
    out.push(rest === 0 ? byte : byte | 0x80);
    if (rest === 0) break;
  }
  return out;
}

function encodeName(text: string): number[] {
  const utf8 = new TextEncoder().encode(text);
  return [...encodeU32(utf8.length), ...utf8];
}

function sections(wasm: Uint8Array): Section[] {
  if (wasm.length < WASM_PREAMBLE_SIZE_BYTES || !WASM_PREAMBLE.every((byte, index) => wasm[index] === byte)) {
    throw new WasmFormatError("not a WebAssembly 1.0 module (no \\0asm version 1 preamble)");
  }
  const found: Section[] = [];
  const reader = new Reader(wasm, WASM_PREAMBLE_SIZE_BYTES, wasm.length);
  // Each section consumes at least two bytes (id and size), so this ends within wasm.length / 2 passes.
  while (reader.at < wasm.length) {
    const start = reader.at;
    const id = reader.u8();
    const sizeBytes = reader.u32();
    const contentStart = reader.at;
    const end = contentStart + sizeBytes;
    if (end > wasm.length) throw new WasmFormatError(`section ${id} at byte ${start} runs past the module's end`);
    const customName = id === SECTION_ID_CUSTOM ? new Reader(wasm, contentStart, end).name() : null;
    found.push({ id, start, end, contentStart, customName });
    reader.at = end;
  }
  return found;
}

function decodeProducers(wasm: Uint8Array, section: Section): Producers {
  const reader = new Reader(wasm, section.contentStart, section.end);
  reader.name(); // "producers"
  const producers: Producers = new Map();
  const fieldCount = reader.u32();
  for (let fieldIndex = 0; fieldIndex < fieldCount; fieldIndex += 1) {
    const field = reader.name();
    if (producers.has(field)) throw new WasmFormatError(`producers field '${field}' appears twice`);
    const valueCount = reader.u32();
    const values: ProducerEntry[] = [];
    for (let valueIndex = 0; valueIndex < valueCount; valueIndex += 1) {
      values.push({ name: reader.name(), version: reader.name() });
    }
    producers.set(field, values);
  }
  if (reader.at !== section.end) throw new WasmFormatError("producers section has bytes after its last field");
  return producers;
}

function encodeProducersSection(producers: Producers): Uint8Array {
  const content: number[] = [...encodeName(PRODUCERS_SECTION_NAME), ...encodeU32(producers.size)];
  for (const [field, values] of producers) {
    content.push(...encodeName(field), ...encodeU32(values.length));
    for (const value of values) content.push(...encodeName(value.name), ...encodeName(value.version));
  }
  return new Uint8Array([SECTION_ID_CUSTOM, ...encodeU32(content.length), ...content]);
}

/** The module's producers, or an empty map when it has no producers section. */
export function readProducers(wasm: Uint8Array): Producers {
  const all = sections(wasm).filter((section) => section.customName === PRODUCERS_SECTION_NAME);
  if (all.length > 1) throw new WasmFormatError("more than one producers section");
  const section = all[0];
  return section === undefined ? new Map() : decodeProducers(wasm, section);
}

/**
 * Returns a copy of `wasm` whose producers section lists `entry` under `field`, replacing an entry of the same name
 * there and keeping every other field and value. The section moves to the end of the module, where the conventions
 * place it; code and data are untouched.
 */
export function addProducer(wasm: Uint8Array, field: ProducerFieldName, entry: ProducerEntry): Uint8Array {
  const all = sections(wasm);
  const producers = readProducers(wasm);
  const values = (producers.get(field) ?? []).filter((value) => value.name !== entry.name);
  values.push(entry);
  producers.set(field, values);
  const kept = all.filter((section) => section.customName !== PRODUCERS_SECTION_NAME);
  const parts: Uint8Array[] = [wasm.subarray(0, WASM_PREAMBLE_SIZE_BYTES)];
  for (const section of kept) parts.push(wasm.subarray(section.start, section.end));
  parts.push(encodeProducersSection(producers));
  return new Uint8Array(Buffer.concat(parts));
}

export interface FirmwareProducer {
  name: string; // e.g. "wasm-iop"
  version: string; // the firmware's version
  gitCommit: string | null; // the commit it was built from, when known
}

/**
 * The firmware's own entry: producers values are (name, version), so the commit rides in the version as semver
 * build metadata, `0.1.0+git.<commit>`.
 */
export function firmwareProducerEntry(producer: FirmwareProducer): ProducerEntry {
  // Semver allows one "+": a version that already carries build metadata gets the commit appended to it.
  const separator = producer.version.includes("+") ? "." : "+";
  const version = producer.gitCommit === null ? producer.version : `${producer.version}${separator}git.${producer.gitCommit}`;
  return { name: producer.name, version };
}

/** Adds the firmware's name, version and commit to `processed-by`. */
export function addFirmwareProducer(wasm: Uint8Array, producer: FirmwareProducer): Uint8Array {
  return addProducer(wasm, "processed-by", firmwareProducerEntry(producer));
}
