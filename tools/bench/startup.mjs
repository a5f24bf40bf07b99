// `npm run bench:startup`: how long the CLI takes to answer --help, and how much memory it uses, as a user feels
// it: a fresh `node bin/wasm-iop.js ...` process per run, wall time from spawn to exit, peak RSS read by the child
// itself at exit (process.resourceUsage().maxRSS, through a preloaded hook that adds well under a millisecond).
// Prints the median and the worst of N runs per command, and the machine's load average beside them.
import { spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RUNS = Number(process.argv[2] ?? 10);
const COMMANDS = [["--help"], ["image", "info", "--help"], ["run", "--help"]];
const HOOK = "data:text/javascript,process.on('exit',()=>process.stderr.write('\\nmaxrss '+process.resourceUsage().maxRSS+'\\n'))";

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
spawnSync(process.execPath, ["bin/wasm-iop.js", "--help"], { cwd: ROOT }); // compiles dist/ if stale, warms the disk cache
process.stdout.write(`${cpus().length} x ${cpus()[0].model}, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}\n`);
process.stdout.write(`${"command".padEnd(32)} ${"wall ms (median, max)".padEnd(24)} RSS MB (median, max)\n`);
for (const args of COMMANDS) {
  const walls = [];
  const rss = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const child = spawnSync(process.execPath, ["--import", HOOK, "bin/wasm-iop.js", ...args], { cwd: ROOT, encoding: "utf8" });
    walls.push(performance.now() - t0);
    if (child.status !== 0) throw new Error(`wasm-iop ${args.join(" ")} exited ${child.status}:\n${child.stderr}`);
    rss.push(Number(/maxrss (\d+)/.exec(child.stderr)[1]) / 1024);
  }
  const label = `wasm-iop ${args.join(" ")}`.padEnd(32);
  process.stdout.write(`${label} ${`${median(walls).toFixed(0)}, ${Math.max(...walls).toFixed(0)}`.padEnd(24)} ${median(rss).toFixed(0)}, ${Math.max(...rss).toFixed(0)}\n`);
}
