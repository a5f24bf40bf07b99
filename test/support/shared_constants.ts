// Constants that the firmware (assembly/) and the host (host/) must agree on, read from both sides so that a test can
// compare them one for one. The firmware cannot import host TypeScript nor the host AssemblyScript, so the firmware's
// side is read from its source text: the test fails when either side changes alone.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../tools/build/firmware.ts";

/** Named integer values: `NAME` for a constant, `Enum.Member` for an enum member. */
export type Constants = ReadonlyMap<string, bigint>;

const CONST_LINE = /^\s*(?:export\s+)?(?:@inline\s+)?(?:export\s+)?const\s+([A-Z][A-Z0-9_]*)\s*(?::\s*[a-z0-9]+)?\s*=\s*([^;]+);/;
const ENUM_OPEN = /^\s*(?:export\s+)?(?:const\s+)?enum\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{/;
const ENUM_MEMBER = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^,]+),?/;
const NUMBER = /^(0x[0-9a-f_]+|0b[01_]+|[0-9][0-9_]*)n?$/i;

/**
 * The top-level integer constants (`[export] [@inline] const NAME[: T] = EXPR;`, one a line) and enum members
 * (`Member = EXPR,`, one a line) of the AssemblyScript or TypeScript file at `path` (relative to the repository),
 * in the order they stand. EXPR may hold integer literals, names defined earlier in the file, and `+ - * << >> | & ( )`;
 * a line whose expression holds anything else (a call, a cast, a string) is left out.
 */
export function sourceConstants(path: string): Constants {
  const values = new Map<string, bigint>();
  let enumName: string | undefined;
  for (const raw of readFileSync(join(ROOT, path), "utf8").split("\n")) {
    const line = raw.replace(/\/\/.*$/, "");
    if (enumName !== undefined) {
      if (/^\s*\}/.test(line)) { enumName = undefined; continue; }
      const member = ENUM_MEMBER.exec(line);
      const value = member === null ? undefined : evaluate(member[2], values, enumName);
      if (member !== null && value !== undefined) values.set(`${enumName}.${member[1]}`, value);
      continue;
    }
    const open = ENUM_OPEN.exec(line);
    if (open !== null) { enumName = open[1]; continue; }
    const constant = CONST_LINE.exec(line);
    const value = constant === null ? undefined : evaluate(constant[2], values, undefined);
    if (constant !== null && value !== undefined) values.set(constant[1], value);
  }
  return values;
}

/**
 * The offsets the firmware's field accessors at `path` use, by the accessor's name without `functionPrefix`:
 * `@inline export function bootInfoRamBytes(info: usize): u64 { return load<u64>(info, AT_RAM_BYTES); }` gives
 * `RamBytes -> [16]`. Every `load<T>(p, N)`, `store<T>(p, v, N)` and `p + N` in the function's lines counts, in order;
 * N is a number or a constant of the same file (sourceConstants). An offset named by anything else throws.
 */
export function accessorOffsets(path: string, functionPrefix: string): ReadonlyMap<string, bigint[]> {
  const constants = sourceConstants(path);
  const value = (token: string): bigint => {
    if (/^\d+$/.test(token)) return BigInt(token);
    const known = constants.get(token);
    if (known === undefined) throw new Error(`${path}: the offset ${token} is not a constant of the file`);
    return known;
  };
  const offsets = new Map<string, bigint[]>();
  const open = new RegExp(`function\\s+${functionPrefix}([A-Za-z0-9_]+)\\s*\\(\\s*(\\w+)`);
  let current: bigint[] | undefined;
  let pointer = "";
  for (const line of readFileSync(join(ROOT, path), "utf8").split("\n")) {
    const start = open.exec(line);
    if (start !== null) { current = []; offsets.set(start[1], current); pointer = start[2]; }
    else if (/^\S/.test(line)) current = undefined; // the function ended
    if (current === undefined) continue;
    const uses = new RegExp(`load<\\w+>\\(${pointer},\\s*(\\w+)\\)|store<\\w+>\\(${pointer},[^,]+,\\s*(\\w+)\\)|${pointer}\\s*\\+\\s*(\\w+)`, "g");
    for (const use of line.matchAll(uses)) current.push(value(use[1] ?? use[2] ?? use[3]!));
  }
  return offsets;
}

/** The integer exports of a host module (`import * as m`), enums flattened to `Enum.Member`. */
export function moduleConstants(module: Record<string, unknown>): Constants {
  const values = new Map<string, bigint>();
  for (const [name, value] of Object.entries(module)) {
    if (typeof value === "number" && Number.isInteger(value)) values.set(name, BigInt(value));
    else if (typeof value === "bigint") values.set(name, value);
    else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      for (const [member, memberValue] of Object.entries(value)) {
        // A numeric enum also maps each value back to its name: those keys are numbers and are passed over.
        if (typeof memberValue === "number" && Number.isInteger(memberValue) && !/^\d+$/.test(member)) {
          values.set(`${name}.${member}`, BigInt(memberValue));
        }
      }
    }
  }
  return values;
}

/** The names in `values` that begin with `prefix`, with the prefix taken off (`"Record."` lists an enum's members). */
export function withPrefix(values: Constants, prefix: string): Constants {
  return new Map([...values].filter(([name]) => name.startsWith(prefix)).map(([name, value]) => [name.slice(prefix.length), value]));
}

/**
 * Every way `firmware` and `host` disagree over `pairs` ([firmware name, host name]): a name one side lacks, or two
 * values that differ. Empty when they agree; a test expects it to equal [] so that the failure lists every row.
 */
export function disagreements(firmware: Constants, host: Constants, pairs: readonly (readonly [string, string])[]): string[] {
  const rows: string[] = [];
  for (const [firmwareName, hostName] of pairs) {
    const f = firmware.get(firmwareName);
    const h = host.get(hostName);
    if (f === undefined) rows.push(`firmware has no ${firmwareName} (host ${hostName} = 0x${h?.toString(16)})`);
    else if (h === undefined) rows.push(`host has no ${hostName} (firmware ${firmwareName} = 0x${f.toString(16)})`);
    else if (f !== h) rows.push(`firmware ${firmwareName} = 0x${f.toString(16)}, host ${hostName} = 0x${h.toString(16)}`);
  }
  return rows;
}

/** The pairs that match every name of `firmware` and of `host` with the same name on the other side: one for one. */
export function sameNames(firmware: Constants, host: Constants): [string, string][] {
  const names = [...new Set([...firmware.keys(), ...host.keys()])].sort();
  return names.map((name) => [name, name]);
}

/** The pairs [name, name] for names that stand the same on both sides. */
export function named(...names: string[]): [string, string][] {
  return names.map((name) => [name, name]);
}

// Integer expressions only: every token a literal, an operator, a parenthesis or a name already known.
function evaluate(expression: string, known: Constants, enumName: string | undefined): bigint | undefined {
  const tokens = expression.trim().match(/0x[0-9a-f_]+n?|0b[01_]+n?|\d[\d_]*n?|[A-Za-z_][A-Za-z0-9_.]*|<<|>>|[-+*|&()]|\S/gi);
  if (tokens === null) return undefined;
  let code = "";
  for (const token of tokens) {
    if (NUMBER.test(token)) code += `${BigInt(token.replace(/_/g, "").replace(/n$/, ""))}n`;
    else if (/^(<<|>>|[-+*|&()])$/.test(token)) code += ` ${token} `;
    else {
      const value = known.get(token) ?? (enumName === undefined ? undefined : known.get(`${enumName}.${token}`));
      if (value === undefined) return undefined;
      code += `(${value}n)`;
    }
  }
  try {
    const value = new Function(`return (${code});`)() as unknown;
    return typeof value === "bigint" ? value : undefined;
  } catch {
    return undefined;
  }
}
