// The latest state of each volume, as the firmware printed it on its console. The volume layer prints
// `volume index=N name=NAME type=TYPE state=optimal|degraded|rebuilding|failed [progress=P] [used=U chunks=C]`
// whenever a volume's state changes; the board's control answers `status` from here (docs/fault.md).
import { type ConsoleRecord, parseConsoleRecord } from "./console_record.ts";

export interface VolumeState {
  index: number;
  line: string; // as the firmware printed it
  record: ConsoleRecord; // its key=value fields
  processor: string; // who printed it
}

export class VolumeStates {
  private readonly latest = new Map<number, VolumeState>();

  /** Keeps `line` when it is a volume state line with an index; ignores every other line. */
  observe(processor: string, line: string): void {
    const parsed = parseConsoleRecord(line, "volume");
    if (parsed === undefined || parsed.kind !== undefined) return;
    const index = parsed.record.index;
    if (typeof index !== "number") return;
    this.latest.set(index, { index, line: line.trim(), record: parsed.record, processor });
  }

  /** The latest line of every volume that reported, by index. */
  list(): VolumeState[] {
    return [...this.latest.values()].sort((a, b) => a.index - b.index);
  }
}
