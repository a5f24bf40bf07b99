// Volume lines on the console: `inventory volume …` once after discovery (what `wasm-iop inventory` reads), and
// `volume …` whenever a volume's state changes (what `wasm-iop fault status` shows; docs/volumes.md).
import { ConsoleLine, line } from "../kernel/console";
import { Volume, volumeAt, volumeStateName, volumeTypeName, VolumeType } from "./volume";

function fields(l: ConsoleLine, index: u32, v: Volume): ConsoleLine {
  l.s("index=").u32(index).s(" name=");
  if (v.nameBytes == 0) l.s("volume").u32(index);
  else l.bytes(changetype<usize>(v.name), v.nameBytes);
  l.s(" type=").s(volumeTypeName(v.type)).s(" blocks=").u64(v.blockCount).s(" blockSize=").u32(v.blockSizeBytes)
    .s(" members=").u32(v.memberCount).s(" state=").s(volumeStateName(v.state));
  if (v.type == VolumeType.Thin) l.s(" used=").u32(v.chunksUsed).s(" chunks=").u32(v.chunksVirtual);
  if (v.type == VolumeType.Replica) {
    // Each copy: current, failed, or resyncing (taking writes, being copied to); and the regions in the log.
    l.s(" copies=");
    for (let m: u32 = 0; m < v.memberCount; m++) {
      if (m > 0) l.s(",");
      const copy = v.member(m);
      l.s(!copy.failed ? "current" : m == v.rebuildMember ? "resyncing" : "failed");
    }
    l.s(" pending=").u32(v.logRegions);
  }
  return l;
}

export function volumeInventoryLine(index: u32): void {
  fields(line().s("inventory volume "), index, volumeAt(index)).out();
}

/** The state line, with `event` appended when not empty (a thin pool's `threshold` or `full`, a `metadata` failure). */
export function volumeStateLine(index: u32, event: string = ""): void {
  const v = volumeAt(index);
  const l = fields(line().s("volume "), index, v);
  if (v.failedMask() != 0) l.s(" failed=").u32(v.firstFailed());
  if (v.rebuildMember < v.memberCount && v.blockCount > 0) {
    const rows = v.blockCount / (<u64>(v.memberCount - 1) * <u64>v.chunkBlocks);
    l.s(" progress=").u64(v.rebuildRow * 100 / rows);
  }
  if (event.length > 0) l.s(" event=").s(event);
  l.out();
}
