// The initiators the bench drives both targets with, and the parsers for what they print: qemu-img bench over
// QEMU's iscsi:// block driver (a fixed count of requests at a fixed depth, sequential, step = request size, wrapping
// at the end of the disk) and libiscsi's iscsi-perf (sequential 512-byte-block reads at a fixed depth for a whole
// number of seconds).
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export type ClientTool = "qemu-img" | "iscsi-perf";

/** One workload: the same for both targets. */
export interface Workload {
  name: string; // e.g. "4k-read-qd32"
  tool: ClientTool;
  write: boolean;
  sizeBytes: number; // per request
  depth: number; // requests in flight
  stepBytes?: number; // qemu-img bench only: from one request's offset to the next (-S; default sizeBytes: sequential)
}

/** What one run of one workload against one target measured. */
export interface RunFigures {
  ios: number; // requests completed
  seconds: number; // as the client timed it
  iops: number;
  mibPerS: number;
  latencyUs: number; // mean, by Little's law: depth / IOPS (a closed loop holds `depth` requests in flight)
}

export const WORKLOADS: readonly Workload[] = [
  { name: "4k-read-qd1", tool: "qemu-img", write: false, sizeBytes: 4096, depth: 1 },
  { name: "4k-write-qd1", tool: "qemu-img", write: true, sizeBytes: 4096, depth: 1 },
  { name: "4k-read-qd32", tool: "qemu-img", write: false, sizeBytes: 4096, depth: 32 },
  { name: "4k-write-qd32", tool: "qemu-img", write: true, sizeBytes: 4096, depth: 32 },
  { name: "1m-read-qd8", tool: "qemu-img", write: false, sizeBytes: 1 << 20, depth: 8 },
  { name: "1m-write-qd8", tool: "qemu-img", write: true, sizeBytes: 1 << 20, depth: 8 },
  { name: "perf-4k-read-qd32", tool: "iscsi-perf", write: false, sizeBytes: 4096, depth: 32 },
];

// 4 KiB requests 1 021 × 4 KiB apart (qemu-img bench -S; the offset wraps modulo the LUN's size): a stride, not
// random (qemu-img bench has no random mode, and iscsi-perf does not write), but 1 021 is prime, so the requests visit
// every 4 KiB block of a LUN of 2^k × 4 KiB or 126 MiB once per pass, consecutive ones ~4 MiB apart: each in another
// RAID stripe row, on alternating members, never two in flight on one row. The volumes bench's small-block load.
export const SCATTER_STEP_BYTES = 1021 * 4096;

/** `wasm-iop bench --volumes`: small scattered requests at depth 32, large sequential ones at depth 8. */
export const VOLUME_WORKLOADS: readonly Workload[] = [
  { name: "4k-scatter-read-qd32", tool: "qemu-img", write: false, sizeBytes: 4096, depth: 32, stepBytes: SCATTER_STEP_BYTES },
  { name: "4k-scatter-write-qd32", tool: "qemu-img", write: true, sizeBytes: 4096, depth: 32, stepBytes: SCATTER_STEP_BYTES },
  { name: "1m-read-qd8", tool: "qemu-img", write: false, sizeBytes: 1 << 20, depth: 8 },
  { name: "1m-write-qd8", tool: "qemu-img", write: true, sizeBytes: 1 << 20, depth: 8 },
];

/** `wasm-iop bench --nbd`: the three, against nbdkit (qemu-img bench over nbd://). */
export const NBD_WORKLOADS: readonly Workload[] = WORKLOADS.filter((w) => ["4k-read-qd32", "4k-write-qd32", "1m-read-qd8"].includes(w.name));

/** The Debian tools the bench needs, with the package each comes in. */
export const REQUIRED_TOOLS: readonly { tool: string; probe: string[]; pkg: string }[] = [
  { tool: "qemu-img", probe: ["--version"], pkg: "qemu-utils and qemu-block-extra" },
  { tool: "iscsi-perf", probe: [], pkg: "libiscsi-bin" },
  { tool: "tgtd", probe: ["--version"], pkg: "tgt" },
  { tool: "tgtadm", probe: ["--help"], pkg: "tgt" },
];

export function figures(ios: number, seconds: number, workload: Workload): RunFigures {
  const iops = ios / seconds;
  return { ios, seconds, iops, mibPerS: (iops * workload.sizeBytes) / (1 << 20), latencyUs: (workload.depth / iops) * 1e6 };
}

/** qemu-img bench's last line: "Run completed in 1.234 seconds." */
export function parseQemuImgBench(output: string): number {
  const match = /Run completed in ([0-9.]+) seconds/.exec(output);
  if (match === null) throw new Error(`qemu-img bench printed no "Run completed in N seconds":\n${output}`);
  return Number(match[1]);
}

/** iscsi-perf's closing figure: the last "iops average N" (it rewrites a status line with \r as it goes). */
export function parseIscsiPerf(output: string): number {
  const all = [...output.matchAll(/iops average (\d+)/g)];
  if (all.length === 0) throw new Error(`iscsi-perf printed no "iops average N":\n${output}`);
  return Number(all[all.length - 1]![1]);
}

/**
 * Runs `workload` against `url`: qemu-img bench for `count` requests, or iscsi-perf for `seconds` (a whole number,
 * at least 1). Rejects with the client's output if it fails or prints no figure.
 */
export async function runWorkload(workload: Workload, url: string, count: number, seconds: number): Promise<RunFigures> {
  if (workload.tool === "qemu-img") {
    const args = ["bench", "-f", "raw", "-t", "none", "-c", String(count), "-d", String(workload.depth), "-s", String(workload.sizeBytes)];
    if (workload.stepBytes !== undefined) args.push("-S", String(workload.stepBytes));
    if (workload.write) args.push("-w", "--pattern=0x5a");
    const { stdout, stderr } = await run("qemu-img", [...args, url], { timeout: 600_000 });
    return figures(count, parseQemuImgBench(stdout + stderr), workload);
  }
  const wholeSeconds = Math.max(1, Math.round(seconds));
  const blocks = String(workload.sizeBytes / 512);
  const { stdout, stderr } = await run("iscsi-perf", ["-m", String(workload.depth), "-b", blocks, "-t", String(wholeSeconds), url], {
    timeout: (wholeSeconds + 60) * 1000,
  });
  const iops = parseIscsiPerf(stdout + stderr);
  return figures(iops * wholeSeconds, wholeSeconds, workload);
}
