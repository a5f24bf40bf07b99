// The bench reads its figures from what qemu-img bench and iscsi-perf print, and the top of a V8 CPU profile: these
// parsers are pinned against those tools' real output lines, and refuse output that carries no figure.
import { describe, expect, it } from "vitest";
import { figures, parseIscsiPerf, parseQemuImgBench, WORKLOADS } from "../../../tools/bench/clients.ts";
import { topSelfTime } from "../../../tools/bench/profile.ts";

describe("bench output parsers", () => {
  it("reads qemu-img bench's run time", () => {
    const output = "Sending 20000 write requests, 4096 bytes each, 32 in parallel (starting at offset 0, step size 4096)\nRun completed in 0.833 seconds.\n";
    expect(parseQemuImgBench(output)).toBe(0.833);
    expect(() => parseQemuImgBench("qemu-img: Could not open 'iscsi://...': Failed to connect")).toThrow(/Run completed/);
  });

  it("reads iscsi-perf's last average among its \\r-rewritten status lines", () => {
    const output = "will run for 5 seconds.\n\n00:00:04 - lba 119216, iops current 31249 (122 MB/s), iops average 31249 (122 MB/s), in_flight 32, busy 0 \r" +
      "00:00:01 - lba 29424, iops current 42795 (167 MB/s), iops average 37773 (147 MB/s), in_flight 32, busy 0 \riops average 37666 (147 MB/s)   \n\nfinished.\n";
    expect(parseIscsiPerf(output)).toBe(37666);
    expect(() => parseIscsiPerf("iscsi_connect failed")).toThrow(/iops average/);
  });

  it("derives IOPS, MiB/s and Little's-law latency from a count and a time", () => {
    const qd32 = WORKLOADS.find((w) => w.name === "4k-read-qd32")!;
    expect(figures(20_000, 2, qd32)).toEqual({ ios: 20_000, seconds: 2, iops: 10_000, mibPerS: 10_000 * 4096 / 2 ** 20, latencyUs: 3200 });
  });

  it("sums a profile's self time per function and place, biggest first", () => {
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9 });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame("(root)", "") },
        { id: 2, callFrame: frame("step", "file:///repo/host/board/processor.ts") },
        { id: 3, callFrame: frame("(garbage collector)", "") },
        { id: 4, callFrame: frame("step", "file:///repo/host/board/processor.ts") }, // the same function, another path
      ],
      startTime: 0, endTime: 100, samples: [2, 3, 4, 2], timeDeltas: [0, 10, 20, 30],
    };
    expect(topSelfTime(profile, 5, "/repo/")).toEqual([
      { name: "step", where: "host/board/processor.ts:10", selfMs: 0.04, selfPercent: (100 * 40) / 60 },
      { name: "(garbage collector)", where: "", selfMs: 0.02, selfPercent: (100 * 20) / 60 },
    ]);
  });
});
