// A snapshot of a whole board, restored in place for every fuzzing input: each processor's RAM (the 4 KiB pages
// written since the last restore, as the dirty map says: the fuzzing image marks its own stores, tools/fuzz/
// instrument.ts, and the host reports its writes and zeroings through writeWatch, host/bus/ram.ts), the firmware
// instance's mutable globals (exported by the fuzzing build, tools/fuzz/instrument.ts),
// and the host side: every object reachable from the board (device models, buses, the clock's event queue, the
// loopback network) has its own fields saved and put back, so the objects keep their identity and the closures the
// clock holds stay valid. Objects made after the snapshot become unreachable and are collected.
//
// What it cannot see: state held only in a closure's variables, or in native objects (a Hash, a socket). The host
// models keep their state in fields, and a fuzzing board has no sockets; `opaque` names what to leave alone.
import type { Board } from "../../host/board/board.ts";
import { writeWatch } from "../../host/bus/ram.ts";
import { DIRTY_MAP_BASE, DIRTY_PAGE_SHIFT, GLOBAL_EXPORT_PREFIX } from "./instrument.ts";

const PAGE_BYTES = 1 << DIRTY_PAGE_SHIFT;

type Saved =
  | { kind: "array"; target: unknown[]; items: unknown[] }
  | { kind: "map"; target: Map<unknown, unknown>; entries: [unknown, unknown][] }
  | { kind: "set"; target: Set<unknown>; values: unknown[] }
  | { kind: "bytes"; target: Uint8Array; bytes: Uint8Array }
  | { kind: "object"; target: Record<string, unknown>; keys: string[]; values: unknown[]; put: Restorer };

// Puts saved values back into an object's own keys. Compiled once per key list (objects of a class share one), so
// each store is a named, monomorphic one: a loop of `target[key] = value` was most of the restore's time.
type Restorer = (target: Record<string, unknown>, values: unknown[]) => void;
const restorers = new Map<string, Restorer>();
function restorerFor(keys: string[]): Restorer {
  const signature = JSON.stringify(keys);
  let put = restorers.get(signature);
  if (put === undefined) {
    put = new Function("t", "v", keys.map((key, i) => `t[${JSON.stringify(key)}] = v[${i}];`).join("\n")) as Restorer;
    restorers.set(signature, put);
  }
  return put;
}

interface SavedMemory {
  live: Uint8Array; // the RAM part of the processor's memory
  saved: Uint8Array;
  savedPages: Uint8Array[]; // views of `saved`, one per page
  dirty: Uint8Array; // the dirty map's bytes for the RAM's pages
  dirtyWords: Uint32Array; // the same, four pages a word, for the scan
}

export class BoardSnapshot {
  private readonly objects: Saved[] = [];
  private readonly memories: SavedMemory[] = [];
  private readonly globals: { global: WebAssembly.Global; value: unknown }[] = [];

  /** `roots[0]` is the board; the others are tools' state saved with it (a target's initiator, its model). */
  constructor(roots: [Board, ...object[]], opaque: readonly object[] = []) {
    const board = roots[0];
    for (const processor of board.processors) {
      const ramBytes = processor.ramBytes;
      const pages = Math.ceil(ramBytes / PAGE_BYTES);
      const live = new Uint8Array(processor.memory.buffer, 0, ramBytes);
      const saved = live.slice();
      const savedPages = Array.from({ length: pages }, (_, page) => saved.subarray(page * PAGE_BYTES, (page + 1) * PAGE_BYTES));
      const mapBytes = (pages + 3) & ~3;
      const dirty = new Uint8Array(processor.memory.buffer, DIRTY_MAP_BASE, mapBytes);
      dirty.fill(0);
      const watch = writeWatch(processor.memory);
      watch.onWrite = (offset, lengthBytes) => {
        if (lengthBytes <= 0) return;
        const last = Math.min((offset + lengthBytes - 1) >> DIRTY_PAGE_SHIFT, pages - 1);
        for (let page = offset >> DIRTY_PAGE_SHIFT; page <= last; page++) dirty[page] = 1;
      };
      // Zeroing (a power cycle zeroes the whole RAM) makes a byte differ from the snapshot only in a page that was
      // not all zeros at the snapshot: about a third of a booted processor's pages. What the new instance writes
      // next is marked by the image itself: its data segments by boot() (tools/fuzz/instrument.ts), its stores.
      const nonzero = savedPages.flatMap((bytes, page) => (new Int32Array(bytes.buffer, bytes.byteOffset, PAGE_BYTES >> 2).some((w) => w !== 0) ? [page] : []));
      watch.onZero = (offset, lengthBytes) => {
        if (lengthBytes <= 0) return;
        const first = offset >> DIRTY_PAGE_SHIFT;
        const last = (offset + lengthBytes - 1) >> DIRTY_PAGE_SHIFT;
        for (const page of nonzero) if (page >= first && page <= last) dirty[page] = 1;
      };
      this.memories.push({ live, saved, savedPages, dirty, dirtyWords: new Uint32Array(dirty.buffer, DIRTY_MAP_BASE, mapBytes / 4) });
      for (const [name, value] of Object.entries(processor.exports ?? {})) {
        if (name.startsWith(GLOBAL_EXPORT_PREFIX) && value instanceof WebAssembly.Global) this.globals.push({ global: value, value: value.value });
      }
    }
    this.walk(roots, new Set<object>(opaque));
  }

  /** How many host objects the snapshot holds, for the progress line. */
  get objectCount(): number {
    return this.objects.length;
  }

  restore(): void {
    for (const { live, savedPages, dirty, dirtyWords } of this.memories) {
      for (let word = 0; word < dirtyWords.length; word++) {
        if (dirtyWords[word] === 0) continue;
        for (let page = word * 4; page < word * 4 + 4 && page < savedPages.length; page++) {
          if (dirty[page] !== 0) live.set(savedPages[page]!, page * PAGE_BYTES);
        }
        dirtyWords[word] = 0;
      }
    }
    for (const { global, value } of this.globals) global.value = value;
    for (const saved of this.objects) {
      switch (saved.kind) {
        case "array":
          saved.target.length = saved.items.length;
          for (let i = 0; i < saved.items.length; i++) saved.target[i] = saved.items[i];
          break;
        case "map":
          saved.target.clear();
          for (const [key, value] of saved.entries) saved.target.set(key, value);
          break;
        case "set":
          saved.target.clear();
          for (const value of saved.values) saved.target.add(value);
          break;
        case "bytes":
          saved.target.set(saved.bytes);
          break;
        case "object":
          // Keys added since the snapshot would survive this: host models keep their shape (fields declared and
          // set in the constructor), and shapeDifference() lets a test check it.
          saved.put(saved.target, saved.values);
          break;
      }
    }
  }

  /** For tests: the first host object (by its constructor's name) whose own keys are not the snapshot's, or undefined. */
  shapeDifference(): string | undefined {
    for (const saved of this.objects) {
      if (saved.kind !== "object") continue;
      const keys = Object.keys(saved.target);
      if (keys.length !== saved.keys.length || keys.some((key, i) => key !== saved.keys[i])) {
        return `${saved.target.constructor?.name ?? "Object"}: keys ${keys.join(", ")}; at the snapshot ${saved.keys.join(", ")}`;
      }
    }
    return undefined;
  }

  /** For tests of the dirty map: the first RAM byte that differs from the snapshot, or undefined. */
  firstDifference(): { processor: number; offset: number } | undefined {
    for (let i = 0; i < this.memories.length; i++) {
      const { live, saved } = this.memories[i]!;
      const a = new Int32Array(live.buffer, live.byteOffset, live.length >> 2);
      const b = new Int32Array(saved.buffer, saved.byteOffset, saved.length >> 2);
      for (let w = 0; w < a.length; w++) if (a[w] !== b[w]) return { processor: i, offset: w * 4 };
    }
    return undefined;
  }

  // Breadth-first over everything reachable, saving each object once. Bounded by the object graph, which is finite.
  private walk(root: object, seen: Set<object>): void {
    const queue: unknown[] = [root];
    while (queue.length > 0) {
      const value = queue.pop();
      if (value === null || typeof value !== "object" || seen.has(value)) continue;
      seen.add(value);
      if (value instanceof WebAssembly.Memory || value instanceof WebAssembly.Module || value instanceof WebAssembly.Instance ||
        value instanceof WebAssembly.Global || value instanceof Promise || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) continue;
      if (ArrayBuffer.isView(value)) {
        if (value.buffer instanceof SharedArrayBuffer) continue; // a view of a processor's memory: saved above
        const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
        this.objects.push({ kind: "bytes", target: bytes, bytes: bytes.slice() });
        continue;
      }
      if (Array.isArray(value)) {
        this.objects.push({ kind: "array", target: value, items: value.slice() });
        queue.push(...value);
        continue;
      }
      if (value instanceof Map) {
        const entries = [...value.entries()];
        this.objects.push({ kind: "map", target: value, entries });
        for (const [k, v] of entries) queue.push(k, v);
        continue;
      }
      if (value instanceof Set) {
        const values = [...value.values()];
        this.objects.push({ kind: "set", target: value, values });
        queue.push(...values);
        continue;
      }
      if (Object.isFrozen(value)) continue; // an instance's exports, constant tables: nothing to restore
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record);
      const values = keys.map((key) => record[key]);
      this.objects.push({ kind: "object", target: record, keys, values, put: restorerFor(keys) });
      queue.push(...values);
    }
  }
}
