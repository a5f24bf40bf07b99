// A processor's local bus: address regions decoded to handlers. What nothing decodes reads as all ones (a PCI
// master abort) and drops writes; both are logged as guest errors. Every access lands in the trace.
import { hex, type Trace } from "../sim/trace.ts";

export type AccessSize = 1 | 2 | 4 | 8;

/** A decoded region: offsets are relative to the region's base. Values up to 32 bits are numbers, 64-bit are bigints. */
export interface BusRegion {
  readonly name: string;
  read(offset: number, sizeBytes: AccessSize): number | bigint;
  write(offset: number, sizeBytes: AccessSize, value: number | bigint): void;
}

interface Mapping {
  base: bigint;
  end: bigint; // exclusive
  region: BusRegion;
}

const ALL_ONES: Record<AccessSize, number | bigint> = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff, 8: 0xffff_ffff_ffff_ffffn };

export class Bus {
  private readonly mappings: Mapping[] = [];
  guestErrorCount = 0;

  constructor(
    readonly owner: string,
    private readonly trace: Trace,
    private readonly nowNs: () => number,
    private readonly log: (message: string) => void,
  ) {}

  /** Maps `region` at [base, base + sizeBytes). Overlaps are a board-construction bug. */
  map(base: bigint, sizeBytes: bigint, region: BusRegion): void {
    const end = base + sizeBytes;
    for (const m of this.mappings) {
      if (base < m.end && m.base < end) {
        throw new Error(`${this.owner} bus: ${region.name} at ${hex(base)} overlaps ${m.region.name} at ${hex(m.base)}`);
      }
    }
    this.mappings.push({ base, end, region });
  }

  read(address: bigint, sizeBytes: AccessSize): number | bigint {
    const m = this.decode(address, sizeBytes);
    const value = m === undefined ? this.abort("read", address, sizeBytes) : m.region.read(Number(address - m.base), sizeBytes);
    if (this.trace.enabled) this.trace.record(this.nowNs(), this.owner, `r${sizeBytes * 8}`, { addr: hex(address), val: hex(value) });
    return value;
  }

  write(address: bigint, sizeBytes: AccessSize, value: number | bigint): void {
    if (this.trace.enabled) this.trace.record(this.nowNs(), this.owner, `w${sizeBytes * 8}`, { addr: hex(address), val: hex(value) });
    const m = this.decode(address, sizeBytes);
    if (m === undefined) {
      this.abort("write", address, sizeBytes);
      return;
    }
    m.region.write(Number(address - m.base), sizeBytes, value);
  }

  private decode(address: bigint, sizeBytes: AccessSize): Mapping | undefined {
    if (address % BigInt(sizeBytes) !== 0n) return undefined; // unaligned: nothing decodes it
    for (const m of this.mappings) {
      if (address >= m.base && address + BigInt(sizeBytes) <= m.end) return m;
    }
    return undefined;
  }

  private abort(kind: string, address: bigint, sizeBytes: AccessSize): number | bigint {
    this.guestErrorCount += 1;
    // The first few are worth a line each; after that, a count in the stats is enough.
    if (this.guestErrorCount <= 8) this.log(`guest error: ${kind} of ${sizeBytes} bytes at ${hex(address)} decodes to nothing`);
    return ALL_ONES[sizeBytes];
  }
}
