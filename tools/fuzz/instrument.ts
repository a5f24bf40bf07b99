// Coverage instrumentation of the fuzzing image, with binaryen: an edge counter at every function entry, both arms of
// every `if`, every loop body and the code after every named block (where br and br_table land: the cases of a
// switch). Edges are counted the AFL way: a probe with the random 16-bit id `cur` bumps the byte at
// COVERAGE_MAP_BASE + (prev ^ cur) and sets prev = cur >> 1, so the map records which block followed which.
//
// The map lives in the processor's memory above the RAM the firmware is told of (the board gives fuzzing boards a
// memory of COVERAGE_MEMORY_BYTES; docs/fuzzing.md): nothing in the firmware or on the bus can reach it. Every
// mutable global is exported as `__fuzz_global_<n>`, so a snapshot can save and restore the instance's state
// without instantiating it again.
//
// Dirty pages: every store (plain or atomic), atomic read-modify-write, memory.fill and memory.copy also sets the
// byte of its destination's 4 KiB page(s) in the dirty map (DIRTY_MAP_BASE, above the coverage map), so a snapshot
// restores only the pages an input changed (tools/fuzz/snapshot.ts; the host reports its own writes through
// host/bus/ram.ts writeWatch). The mark is made before the store, from the same address: a store that traps has
// marked a page it did not write (harmless), and one that runs has always marked its pages. The firmware's own code
// is unchanged: the probes and marks only add stores to the two maps.
import binaryen from "binaryen";

// The expression-wrapper namespaces binaryen.js has but its typings omit.
const api = binaryen as unknown as {
  Block: { getName(expr: number): string | null; insertChildAt(expr: number, index: number, child: number): void };
  If: { setIfTrue(expr: number, child: number): void; setIfFalse(expr: number, child: number): void };
  Loop: { setBody(expr: number, body: number): void };
  Function: { setBody(fn: number, body: number): void };
  Store: { setPtr(expr: number, ptr: number): void };
  AtomicRMW: { setPtr(expr: number, ptr: number): void };
  AtomicCmpxchg: { setPtr(expr: number, ptr: number): void };
  MemoryFill: { setDest(expr: number, dest: number): void; setSize(expr: number, size: number): void };
  MemoryCopy: { setDest(expr: number, dest: number): void; setSize(expr: number, size: number): void };
  _BinaryenFunctionAddVar(fn: number, type: number): number;
};

export const COVERAGE_MAP_BYTES = 65536;
/** Where the map starts: above the largest RAM a fuzzing board gives a processor. */
export const COVERAGE_MAP_BASE = 64 * 1024 * 1024;
/** The dirty map: one byte per 4 KiB page of the memory (non-zero: written since the map was cleared). */
export const DIRTY_MAP_BASE = COVERAGE_MAP_BASE + COVERAGE_MAP_BYTES;
export const DIRTY_PAGE_SHIFT = 12;
export const DIRTY_MAP_BYTES = 65536; // covers 256 MiB: more than the whole memory, so no mark falls outside
/** The memory a processor of a fuzzing board has: its RAM, the coverage map at COVERAGE_MAP_BASE, the dirty map. */
export const COVERAGE_MEMORY_BYTES = DIRTY_MAP_BASE + DIRTY_MAP_BYTES;
export const GLOBAL_EXPORT_PREFIX = "__fuzz_global_";

const PREV_GLOBAL = "__fuzz_prev";
const MARK_RANGE_FUNCTION = "__fuzz_mark_range";

export interface InstrumentResult {
  binary: Uint8Array;
  probes: number;
  /** Stores, fills and copies that mark their pages dirty. */
  marks: number;
  globals: number;
}

/** Instruments `wasm` (a firmware image); throws if binaryen's validator rejects the result. */
export function instrument(wasm: Uint8Array): InstrumentResult {
  const module = binaryen.readBinary(wasm);
  module.setFeatures(binaryen.Features.MVP | binaryen.Features.MutableGlobals | binaryen.Features.SignExt |
    binaryen.Features.NontrappingFPToInt | binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt | binaryen.Features.Atomics);
  // Probe ids come from a fixed LCG: the same image always gets the same map layout.
  let lcg = 0x2545f491;
  let probes = 0;
  const probe = (): number => {
    lcg = (Math.imul(lcg, 1103515245) + 12345) >>> 0;
    probes += 1;
    // Inline, not a call: a probe runs in every loop body, and a call per probe cost more than the firmware's own
    // idle turn. The map's base is the access's constant offset.
    const cur = (lcg >>> 8) & 0xffff;
    const index = () => module.i32.xor(module.global.get(PREV_GLOBAL, binaryen.i32), module.i32.const(cur));
    return module.block(null, [
      module.i32.store8(COVERAGE_MAP_BASE, 1, index(), module.i32.add(module.i32.load8_u(COVERAGE_MAP_BASE, 1, index()), module.i32.const(1))),
      module.global.set(PREV_GLOBAL, module.i32.const(cur >> 1)),
    ], binaryen.none);
  };
  const wrap = (child: number): number => module.block(null, [probe(), child], binaryen.auto);

  // Dirty-page marks. `fn` is the function being instrumented; its scratch local for store addresses is added on
  // first use (one per function is enough: the address is marked and handed to the store before the store's value,
  // which may hold other stores, is evaluated).
  let fn = 0;
  let storeLocal = -1;
  let marks = 0;
  const i32 = module.i32;
  const markAt = (address: number): number =>
    i32.store8(DIRTY_MAP_BASE, 1, i32.shr_u(address, i32.const(DIRTY_PAGE_SHIFT)), i32.const(1));
  // A store of `bytes` at `ptr + offset`: the pages of its first and last byte.
  const markedPtr = (ptr: number, offset: number, bytes: number): number => {
    if (storeLocal < 0) storeLocal = api._BinaryenFunctionAddVar(fn, binaryen.i32);
    marks += 1;
    const at = (extra: number) => i32.add(module.local.get(storeLocal, binaryen.i32), i32.const((offset + extra) | 0));
    const body = [module.local.set(storeLocal, ptr), markAt(at(0))];
    if (bytes > 1) body.push(markAt(at(bytes - 1)));
    body.push(module.local.get(storeLocal, binaryen.i32));
    return module.block(null, body, binaryen.i32);
  };
  // memory.fill / memory.copy: the destination kept in a local of its own, the range marked once the size is known.
  const markRange = (expr: number, dest: number, size: number, setDest: (e: number, d: number) => void, setSize: (e: number, s: number) => void): void => {
    const d = api._BinaryenFunctionAddVar(fn, binaryen.i32);
    const n = api._BinaryenFunctionAddVar(fn, binaryen.i32);
    marks += 1;
    setDest(expr, module.block(null, [module.local.set(d, dest), module.local.get(d, binaryen.i32)], binaryen.i32));
    setSize(expr, module.block(null, [
      module.local.set(n, size),
      module.call(MARK_RANGE_FUNCTION, [module.local.get(d, binaryen.i32), module.local.get(n, binaryen.i32)], binaryen.none),
      module.local.get(n, binaryen.i32),
    ], binaryen.i32));
  };

  // Depth-first over an expression, instrumenting on the way back up. Kinds not listed carry no control flow of
  // their own; their operands are visited through the generic fields below.
  const visit = (expr: number): void => {
    if (expr === 0) return;
    const id = binaryen.getExpressionId(expr);
    if (id === binaryen.NopId || id === binaryen.UnreachableId || id === binaryen.ConstId || id === binaryen.LocalGetId || id === binaryen.GlobalGetId) return;
    let info: Record<string, unknown> & { id: number };
    try {
      info = binaryen.getExpressionInfo(expr) as unknown as Record<string, unknown> & { id: number };
    } catch {
      return; // a kind binaryen.js has no accessors for (none of the Lime1 set carries control flow)
    }
    switch (info.id) {
      case binaryen.BlockId: {
        const children = info.children as number[];
        for (const child of children) visit(child);
        // After a named block: a branch target. Inserted back to front so indexes stay valid.
        for (let i = children.length - 2; i >= 0; i--) {
          const child = children[i]!;
          if (binaryen.getExpressionId(child) === binaryen.BlockId && api.Block.getName(child)) api.Block.insertChildAt(expr, i + 1, probe());
        }
        return;
      }
      case binaryen.IfId: {
        visit(info.condition as number);
        visit(info.ifTrue as number);
        visit(info.ifFalse as number);
        api.If.setIfTrue(expr, wrap(info.ifTrue as number));
        if (info.ifFalse !== 0) api.If.setIfFalse(expr, wrap(info.ifFalse as number));
        else api.If.setIfFalse(expr, probe());
        return;
      }
      case binaryen.LoopId:
        visit(info.body as number);
        api.Loop.setBody(expr, wrap(info.body as number));
        return;
      case binaryen.StoreId:
        visit(info.ptr as number);
        visit(info.value as number);
        api.Store.setPtr(expr, markedPtr(info.ptr as number, info.offset as number, info.bytes as number));
        return;
      case binaryen.AtomicRMWId:
        visit(info.ptr as number);
        visit(info.value as number);
        api.AtomicRMW.setPtr(expr, markedPtr(info.ptr as number, info.offset as number, info.bytes as number));
        return;
      case binaryen.AtomicCmpxchgId:
        visit(info.ptr as number);
        visit(info.expected as number);
        visit(info.replacement as number);
        api.AtomicCmpxchg.setPtr(expr, markedPtr(info.ptr as number, info.offset as number, info.bytes as number));
        return;
      case binaryen.MemoryFillId:
        visit(info.dest as number);
        visit(info.value as number);
        visit(info.size as number);
        markRange(expr, info.dest as number, info.size as number, api.MemoryFill.setDest, api.MemoryFill.setSize);
        return;
      case binaryen.MemoryCopyId:
        visit(info.dest as number);
        visit(info.source as number);
        visit(info.size as number);
        markRange(expr, info.dest as number, info.size as number, api.MemoryCopy.setDest, api.MemoryCopy.setSize);
        return;
      case binaryen.MemoryInitId:
        throw new Error("instrument: memory.init writes memory the dirty map cannot follow (the firmware has none)");
      default:
        for (const key of OPERAND_FIELDS) {
          const value = info[key];
          if (typeof value === "number") visit(value);
          else if (Array.isArray(value)) for (const operand of value as number[]) visit(operand);
        }
    }
  };

  const functionCount = module.getNumFunctions();
  for (let i = 0; i < functionCount; i++) {
    fn = module.getFunctionByIndex(i);
    storeLocal = -1;
    const info = binaryen.getFunctionInfo(fn);
    if (info.module !== "" && info.module !== null) continue; // an import
    if (info.body === 0) continue;
    visit(info.body);
    api.Function.setBody(fn, module.block(null, [probe(), info.body], binaryen.auto));
  }
  addMarkRange(module);
  markDataOnBoot(module);

  let globals = 0;
  const globalCount = module.getNumGlobals();
  for (let i = 0; i < globalCount; i++) {
    const info = binaryen.getGlobalInfo(module.getGlobalByIndex(i));
    if (!info.mutable || (info.module !== "" && info.module !== null)) continue;
    module.addGlobalExport(info.name, `${GLOBAL_EXPORT_PREFIX}${globals}`);
    globals += 1;
  }
  module.addGlobal(PREV_GLOBAL, binaryen.i32, true, module.i32.const(0));
  module.addGlobalExport(PREV_GLOBAL, `${GLOBAL_EXPORT_PREFIX}${globals}`);
  globals += 1;

  if (!module.validate()) throw new Error("instrumented firmware does not validate");
  const binary = module.emitBinary();
  module.dispose();
  return { binary, probes, marks, globals };
}

// Instantiating the image writes its data segments into memory, which no store marks; a power cycle does that over
// RAM the board has just zeroed. boot(), which the board calls next, first marks the pages the segments span, so the
// snapshot puts back what they overwrote.
function markDataOnBoot(module: binaryen.Module): void {
  const { low, high } = dataSegmentExtent(module);
  if (high === low) return;
  const boot = binaryen.getExportInfo(module.getExport("boot"));
  const fn = module.getFunction(boot.value);
  const info = binaryen.getFunctionInfo(fn);
  api.Function.setBody(fn, module.block(null, [
    module.call(MARK_RANGE_FUNCTION, [module.i32.const(low), module.i32.const(high - low)], binaryen.none),
    info.body,
  ], info.results));
}

/** The bytes the module's data segments span, [low, high) (low = high when there are none). */
export function dataSegmentExtent(module: binaryen.Module): { low: number; high: number } {
  // binaryen.js has these; its typings omit them.
  const segments = module as unknown as { getNumDataSegments(): number; getDataSegmentInfo(segment: number): { offset: unknown; data: ArrayBuffer; passive: boolean } };
  let low = Infinity;
  let high = 0;
  const count = segments.getNumDataSegments();
  for (let i = 0; i < count; i++) {
    const info = segments.getDataSegmentInfo(module.getDataSegmentByIndex(i));
    if (info.passive || typeof info.offset !== "number") throw new Error("instrument: a passive or relocatable data segment (the firmware has none): its writes cannot be marked");
    if (info.data.byteLength === 0) continue;
    low = Math.min(low, info.offset);
    high = Math.max(high, info.offset + info.data.byteLength);
  }
  return high === 0 ? { low: 0, high: 0 } : { low, high };
}

// __fuzz_mark_range(dest, size): marks the pages of [dest, dest + size). Nothing for an empty range, nor for one
// that wraps or passes the end of memory: the fill or copy it precedes traps before writing anything.
function addMarkRange(module: binaryen.Module): void {
  const i32 = module.i32;
  const get = (index: number) => module.local.get(index, binaryen.i32);
  const [DEST, SIZE, END, PAGE] = [0, 1, 2, 3];
  const memoryBytes = i32.shl(module.memory.size(), i32.const(16));
  module.addFunction(MARK_RANGE_FUNCTION, binaryen.createType([binaryen.i32, binaryen.i32]), binaryen.none, [binaryen.i32, binaryen.i32], module.block(null, [
    module.if(i32.eqz(get(SIZE)), module.return()),
    module.local.set(END, i32.add(get(DEST), get(SIZE))),
    module.if(i32.or(i32.lt_u(get(END), get(DEST)), i32.gt_u(get(END), memoryBytes)), module.return()),
    module.local.set(PAGE, i32.shr_u(get(DEST), i32.const(DIRTY_PAGE_SHIFT))),
    module.local.set(END, i32.shr_u(i32.sub(get(END), i32.const(1)), i32.const(DIRTY_PAGE_SHIFT))),
    module.loop("mark", module.block(null, [
      i32.store8(DIRTY_MAP_BASE, 1, get(PAGE), i32.const(1)),
      module.local.set(PAGE, i32.add(get(PAGE), i32.const(1))),
      module.br("mark", i32.le_u(get(PAGE), get(END))),
    ])),
  ]));
}

// The fields of binaryen's expression info that hold operands (ExpressionRefs or arrays of them).
const OPERAND_FIELDS = [
  "condition", "value", "operands", "target", "ptr", "left", "right", "ifTrue", "ifFalse", "delta", "expected",
  "replacement", "timeout", "notifyCount", "dest", "source", "size", "children", "body",
] as const;
