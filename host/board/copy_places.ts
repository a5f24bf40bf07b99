// Which disk holds each replica copy now, as the firmware said on its console. A hot spare that takes a failed copy's
// place prints `volumes: a spare takes copy C of volume V; the whole volume is copied to it (processor P disk D)`,
// and after a restart `volumes: NAME: spare S holds member C since before the restart (processor P disk D)`; from
// then on the board file's disk of that copy is no longer the volume's, and `wasm-iop fault copy NAME:C` names the
// spare (host/board/control.ts). Forgotten when the host processor boots again: the firmware says it anew.
export interface DiskPlace {
  readonly processor: number; // the processor's index, the board file's order
  readonly disk: number; // the disk's index on it, the RTA's order (host/board/disk_address.ts)
}

const TAKES = /^volumes: a spare takes copy (\d+) of volume (\d+); the whole volume is copied to it \(processor (\d+) disk (\d+)\)/;
const HOLDS = /^volumes: ([^:\s]+): spare \d+ holds member (\d+) since before the restart \(processor (\d+) disk (\d+)\)/;
const HOST_BOOT = /^wasm-iop \S+ abi \d+: processor \S+ #0 /;

export class CopyPlaces {
  private readonly places = new Map<string, DiskPlace>(); // "VOLUME_INDEX:COPY"

  /** `volumeIndexOf` maps a volume's name to its index (the board file's order), -1 when it has none. */
  constructor(private readonly volumeIndexOf: (name: string) => number) {}

  /** Every console line of the board's processors. */
  observe(line: string): void {
    const text = line.trim();
    if (HOST_BOOT.test(text)) {
      this.places.clear();
      return;
    }
    const takes = TAKES.exec(text);
    if (takes !== null) {
      this.places.set(`${takes[2]}:${takes[1]}`, { processor: Number(takes[3]), disk: Number(takes[4]) });
      return;
    }
    const holds = HOLDS.exec(text);
    if (holds === null) return;
    const volume = this.volumeIndexOf(holds[1]!);
    if (volume >= 0) this.places.set(`${volume}:${holds[2]}`, { processor: Number(holds[3]), disk: Number(holds[4]) });
  }

  /** Where copy `copy` of volume `volume` is, when a spare took its place; undefined while it is the board file's. */
  placeOf(volume: number, copy: number): DiskPlace | undefined {
    return this.places.get(`${volume}:${copy}`);
  }
}
