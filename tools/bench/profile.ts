// Reads a V8 CPU profile (.cpuprofile, as the inspector's Profiler.stop returns it) into the functions that took the
// most samples themselves (self time), so the bench can print the top of it; docs/performance.md explains the rest.
export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number; // µs
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileItem {
  name: string; // function name, "(anonymous)" when it has none
  where: string; // file:line, relative to the project when inside it; "" for V8's own entries ("(garbage collector)")
  selfMs: number;
  selfPercent: number;
}

/** The `count` entries with the most self time, summed over every node of the same function and place. */
export function topSelfTime(profile: CpuProfile, count: number, root = ""): ProfileItem[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // A sample's time is the delta to the next sample; the last one gets none.
  for (let index = 0; index < samples.length; index += 1) {
    const deltaUs = deltas[index + 1] ?? 0;
    selfUs.set(samples[index]!, (selfUs.get(samples[index]!) ?? 0) + deltaUs);
  }
  const totals = new Map<string, { name: string; where: string; us: number }>();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    totalUs += us;
    const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
    const file = root !== "" && frame.url.includes(root) ? frame.url.slice(frame.url.indexOf(root) + root.length) : frame.url;
    // Positions are in the code as run: for the compiled CLI, a bundle in dist/ (its .map files lead back to the
    // sources); code loaded through tsx reports line 0 for every function.
    const where = file === "" ? "" : frame.lineNumber > 0 ? `${file}:${frame.lineNumber + 1}` : file;
    const key = `${name}@${where}`;
    const entry = totals.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    totals.set(key, entry);
  }
  return [...totals.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, count)
    .map((entry) => ({ name: entry.name, where: entry.where, selfMs: entry.us / 1000, selfPercent: totalUs > 0 ? (100 * entry.us) / totalUs : 0 }));
}
