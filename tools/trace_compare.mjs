// `node tools/trace_compare.mjs OLD NEW`: whether two bus traces (simulate/run --trace FILE, .jsonl or .jsonl.gz)
// record the same events in the same order, apart from where the firmware's memory lies. A firmware change that
// only moves memory (a refactor, a longer assert message: the stub runtime's heap starts after the static data, so
// every carve moves) changes the trace hash, because DMA and register lines carry addresses; this is the check that
// such a change left behaviour alone. Hashed lines only (docs/trace-format.md). A line may differ only in `addr` and
// `val` (printed, per source, with the offsets seen: a few constant ones mean memory moved) and in the banner's boot
// reserve figure; anything else is listed (the first 5) and the exit status is 1.
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";

async function* hashedLines(path) {
  const raw = createReadStream(path);
  const rl = createInterface({ input: path.endsWith(".gz") ? raw.pipe(createGunzip()) : raw, crlfDelay: Infinity });
  for await (const line of rl) if (line.startsWith('{"seq"')) yield line;
}

const RESERVE = /boot reserve \d+ of/;
const [oldPath, newPath] = process.argv.slice(2);
if (oldPath === undefined || newPath === undefined) {
  process.stderr.write("usage: node tools/trace_compare.mjs OLD_TRACE NEW_TRACE\n");
  process.exit(2);
}
const [a, b] = [hashedLines(oldPath), hashedLines(newPath)];
let lines = 0, same = 0, moved = 0, other = 0;
const offsets = new Map();
const examples = [];
for (;;) {
  const [x, y] = await Promise.all([a.next(), b.next()]);
  if (x.done || y.done) {
    if (!(x.done && y.done)) {
      other += 1;
      examples.push([`(${x.done ? "old" : "new"} trace ends after line ${lines})`, ""]);
    }
    break;
  }
  lines += 1;
  if (x.value === y.value) {
    same += 1;
    continue;
  }
  const p = JSON.parse(x.value);
  const q = JSON.parse(y.value);
  let onlyMoved = true;
  for (const key of new Set([...Object.keys(p), ...Object.keys(q)])) {
    if (p[key] === q[key]) continue;
    const hex = typeof p[key] === "string" && typeof q[key] === "string" && p[key].startsWith("0x") && q[key].startsWith("0x");
    if ((key === "addr" || key === "val") && hex) {
      const label = `${p.src} ${BigInt(q[key]) - BigInt(p[key])}`;
      offsets.set(label, (offsets.get(label) ?? 0) + 1);
    } else if (key === "text" && p.ev === "console" && p.text.replace(RESERVE, "") === q.text.replace(RESERVE, "")) {
      // the banner's figure of the boot reserve: what the agents carved
    } else onlyMoved = false;
  }
  if (onlyMoved) moved += 1;
  else {
    other += 1;
    if (examples.length < 5) examples.push([x.value, y.value]);
  }
}
process.stdout.write(`${lines} lines: ${same} identical, ${moved} differing only in addresses, ${other} other differences\n`);
process.stdout.write(`address offsets (source new-old: lines): ${[...offsets].sort().map(([k, n]) => `${k}: ${n}`).join("; ") || "none"}\n`);
for (const [x, y] of examples) process.stdout.write(`- ${x}\n+ ${y}\n`);
process.exit(other === 0 ? 0 : 1);
