// host/board/copy_places.ts: which disk holds a replica copy once a hot spare took its place, from the firmware's
// console lines (assembly/cta/replica_resync.ts and raid_metadata.ts print them), forgotten when the host boots again.
import { describe, expect, it } from "vitest";
import { CopyPlaces } from "../../../host/board/copy_places.ts";

describe("CopyPlaces", () => {
  const volumes = ["r5", "rep"];
  const places = () => new CopyPlaces((name) => volumes.indexOf(name));

  it("takes the spare's place from the line that says a spare took a copy", () => {
    const p = places();
    expect(p.placeOf(1, 1)).toBeUndefined();
    p.observe("volumes: a spare takes copy 1 of volume 1; the whole volume is copied to it (processor 0 disk 2)");
    expect(p.placeOf(1, 1)).toEqual({ processor: 0, disk: 2 });
    expect(p.placeOf(1, 0)).toBeUndefined();
  });

  it("takes it from the restart's line naming the volume, and ignores a RAID member's spare and other lines", () => {
    const p = places();
    p.observe("volumes: rep: spare 0 holds member 0 since before the restart (processor 2 disk 1)");
    p.observe("volumes: a spare takes member 1 of volume 0; the whole volume is copied to it (processor 0 disk 0)");
    p.observe("volumes: nope: spare 0 holds member 1 since before the restart (processor 1 disk 1)");
    p.observe("volume index=1 name=rep type=replica state=optimal copies=current,current pending=0");
    expect(p.placeOf(1, 0)).toEqual({ processor: 2, disk: 1 });
    expect(p.placeOf(0, 1)).toBeUndefined();
  });

  it("forgets every place when the host processor boots again, not when another processor does", () => {
    const p = places();
    p.observe("volumes: a spare takes copy 1 of volume 1; the whole volume is copied to it (processor 0 disk 2)");
    p.observe("wasm-iop 0.1.0 abi 2: processor sp2 #2 role storage ram 32 MiB board test-board, 8 tasks");
    expect(p.placeOf(1, 1)).toEqual({ processor: 0, disk: 2 });
    p.observe("wasm-iop 0.1.0 abi 2: processor host #0 role host ram 64 MiB board test-board, 12 tasks");
    expect(p.placeOf(1, 1)).toBeUndefined();
  });
});
