// The data pointer of one I/O command, built from the requester's SGL (kernel/sgl.ts) in the request's pointer area
// (NVMe 1.4 §4.3 PRPs, §4.4 SGLs). PRPs when the segments fit their rules: every address dword aligned, every
// segment after the first starting on a page, every segment before the last ending on one. Then PRP1 is the first
// segment's address, PRP2 the second page or a PRP list of every page after the first (in the area, which never
// crosses a page, so the list needs no chaining). Otherwise, if the controller offers SGLs, one Data Block
// descriptor per segment (a Last Segment list in the area when there are several); if it does not, the request
// cannot be expressed and is refused.
import { sgls } from "../../kernel/buffers";
import { sglSegmentAddress, sglSegmentLengthBytes } from "../../kernel/sgl";
import { PSDT_PRP, PSDT_SGL, SGL_DATA_BLOCK, SGL_DESCRIPTOR_BYTES, SGL_LAST_SEGMENT, sglDataBlock } from "./command";
import { NVME_PAGE_BYTES, NVME_POINTER_AREA_BYTES } from "./limits";

const PAGE_MASK: u64 = <u64>NVME_PAGE_BYTES - 1;

export enum PointerKind {
  Prp = 0, // PRP1 (and PRP2 a page)
  PrpList = 1, // PRP2 points at the list in the area
  Sgl = 2, // SGL1 a Data Block, or a Last Segment over the area
}

/** What pointerBuild() made: the SQE's PRP1/PRP2 or SGL1 fields. */
export class DataPointer {
  kind: PointerKind = PointerKind.Prp;
  psdt: u32 = PSDT_PRP;
  prp1: u64 = 0; // or the SGL1 descriptor's address
  prp2: u64 = 0;
  sglLengthBytes: u32 = 0;
  sglType: u32 = SGL_DATA_BLOCK;
}

/** True when `sgl`'s segments can be described by PRPs. */
export function sglFitsPrp(sgl: u32): bool {
  const count = sgls().segmentCount(sgl);
  for (let i: u32 = 0; i < count; i++) {
    const segment = sgls().segment(sgl, i);
    const address = sglSegmentAddress(segment);
    const end = address + <u64>sglSegmentLengthBytes(segment);
    if ((address & 3) != 0) return false;
    if (i > 0 && (address & PAGE_MASK) != 0) return false;
    if (i + 1 < count && (end & PAGE_MASK) != 0) return false;
  }
  return true;
}

/** True when the SGL path can take `sgl` (one descriptor per segment must fit the area). */
export function sglFitsDescriptors(sgl: u32): bool {
  return sgls().segmentCount(sgl) * SGL_DESCRIPTOR_BYTES <= NVME_POINTER_AREA_BYTES;
}

/**
 * Fills `out` for `sgl`, writing a PRP list or SGL descriptors into `area` when needed. The caller checked
 * sglFitsPrp() or, with `asSgl`, sglFitsDescriptors(), and that the transfer is at most NVME_TRANSFER_BYTES_MAX.
 */
export function pointerBuild(sgl: u32, area: usize, asSgl: bool, out: DataPointer): void {
  sgls().check(sgl);
  const count = sgls().segmentCount(sgl);
  assert(count > 0, "nvme: an empty SGL has no data pointer");
  if (asSgl) {
    out.kind = PointerKind.Sgl;
    out.psdt = PSDT_SGL;
    out.prp2 = 0;
    if (count == 1) {
      const segment = sgls().segment(sgl, 0);
      out.prp1 = sglSegmentAddress(segment);
      out.sglLengthBytes = sglSegmentLengthBytes(segment);
      out.sglType = SGL_DATA_BLOCK;
      return;
    }
    for (let i: u32 = 0; i < count; i++) {
      const segment = sgls().segment(sgl, i);
      sglDataBlock(area + <usize>i * SGL_DESCRIPTOR_BYTES, sglSegmentAddress(segment), sglSegmentLengthBytes(segment));
    }
    out.prp1 = <u64>area;
    out.sglLengthBytes = count * SGL_DESCRIPTOR_BYTES;
    out.sglType = SGL_LAST_SEGMENT;
    return;
  }
  out.psdt = PSDT_PRP;
  const first = sgls().segment(sgl, 0);
  out.prp1 = load<u64>(first, 0);
  // Every page after PRP1's, in order: the first segment's later pages, then each other segment's pages.
  let entries: u32 = 0;
  let second: u64 = 0;
  const entriesMax = NVME_POINTER_AREA_BYTES / 8;
  for (let i: u32 = 0; i < count; i++) {
    const segment = sgls().segment(sgl, i);
    const start = sglSegmentAddress(segment);
    const end = start + <u64>sglSegmentLengthBytes(segment);
    let page = i == 0 ? (start & ~PAGE_MASK) + NVME_PAGE_BYTES : start;
    for (let n: u32 = 0; page < end && n <= entriesMax; n++) {
      assert(entries < entriesMax, "nvme: PRP list longer than its area");
      if (entries == 0) second = page;
      store<u64>(area + <usize>entries * 8, page);
      entries += 1;
      page += NVME_PAGE_BYTES;
    }
  }
  out.kind = entries > 1 ? PointerKind.PrpList : PointerKind.Prp;
  out.prp2 = entries == 0 ? 0 : entries == 1 ? second : <u64>area;
}
