// A snapshot of a whole board, restored in place for every fuzzing input: each processor's RAM (one copy into the
// shared memory), the firmware instance's mutable globals (exported by the fuzzing build, tools/fuzz/instrument.ts),
// and the host side: every object reachable from the board (device models, buses, the clock's event queue, the
// loopback network) has its own fields saved and put back, so the objects keep their identity and the closures the
// clock holds stay valid. Objects made after the snapshot become unreachable and are collected.
//
// What it cannot see: state held only in a closure's variables, or in native objects (a Hash, a socket). The host
// models keep their state in fields, and a fuzzing board has no sockets; `opaque` names what to leave alone.
import type { Board } from "../../host/board/board.ts";
import { GLOBAL_EXPORT_PREFIX } from "./instrument.ts";

type Saved =
  | { kind: "array"; target: unknown[]; items: unknown[] }
  | { kind: "map"; target: Map<unknown, unknown>; entries: [unknown, unknown][] }
  | { kind: "set"; target: Set<unknown>; values: unknown[] }
  | { kind: "bytes"; target: Uint8Array; bytes: Uint8Array }
  | { kind: "object"; target: Record<string, unknown>; keys: string[]; values: unknown[] };

interface SavedMemory {
  live: Uint8Array; // the RAM part of the processor's memory
  saved: Uint8Array;
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
      const live = new Uint8Array(processor.memory.buffer, 0, ramBytes);
      this.memories.push({ live, saved: live.slice() });
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
    for (const { live, saved } of this.memories) live.set(saved);
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
        case "object": {
          const target = saved.target;
          for (const key of Object.keys(target)) if (!saved.keys.includes(key)) delete target[key];
          for (let i = 0; i < saved.keys.length; i++) target[saved.keys[i]!] = saved.values[i];
          break;
        }
      }
    }
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
      this.objects.push({ kind: "object", target: record, keys, values });
      queue.push(...values);
    }
  }
}
