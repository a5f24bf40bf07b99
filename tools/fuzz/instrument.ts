// Coverage instrumentation of the fuzzing image, with binaryen: an edge counter at every function entry, both arms of
// every `if`, every loop body and the code after every named block (where br and br_table land: the cases of a
// switch). Edges are counted the AFL way: a probe with the random 16-bit id `cur` bumps the byte at
// COVERAGE_MAP_BASE + (prev ^ cur) and sets prev = cur >> 1, so the map records which block followed which.
//
// The map lives in the processor's memory above the RAM the firmware is told of (the board gives fuzzing boards a
// memory of COVERAGE_MEMORY_BYTES; docs/fuzzing.md): nothing in the firmware or on the bus can reach it. Every
// mutable global is exported as `__fuzz_global_<n>`, so a snapshot can save and restore the instance's state
// without instantiating it again. The firmware's own code is unchanged: the probes only add stores to the map.
import binaryen from "binaryen";

// The expression-wrapper namespaces binaryen.js has but its typings omit.
const api = binaryen as unknown as {
  Block: { getName(expr: number): string | null; insertChildAt(expr: number, index: number, child: number): void };
  If: { setIfTrue(expr: number, child: number): void; setIfFalse(expr: number, child: number): void };
  Loop: { setBody(expr: number, body: number): void };
  Function: { setBody(fn: number, body: number): void };
};

export const COVERAGE_MAP_BYTES = 65536;
/** Where the map starts: above the largest RAM a fuzzing board gives a processor. */
export const COVERAGE_MAP_BASE = 64 * 1024 * 1024;
/** The memory a processor of a fuzzing board has: its RAM, then the map at COVERAGE_MAP_BASE. */
export const COVERAGE_MEMORY_BYTES = COVERAGE_MAP_BASE + COVERAGE_MAP_BYTES;
export const GLOBAL_EXPORT_PREFIX = "__fuzz_global_";

const PREV_GLOBAL = "__fuzz_prev";

export interface InstrumentResult {
  binary: Uint8Array;
  probes: number;
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
    const fn = module.getFunctionByIndex(i);
    const info = binaryen.getFunctionInfo(fn);
    if (info.module !== "" && info.module !== null) continue; // an import
    if (info.body === 0) continue;
    visit(info.body);
    api.Function.setBody(fn, module.block(null, [probe(), info.body], binaryen.auto));
  }

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
  return { binary, probes, globals };
}

// The fields of binaryen's expression info that hold operands (ExpressionRefs or arrays of them).
const OPERAND_FIELDS = [
  "condition", "value", "operands", "target", "ptr", "left", "right", "ifTrue", "ifFalse", "delta", "expected",
  "replacement", "timeout", "notifyCount", "dest", "source", "size", "children", "body",
] as const;
