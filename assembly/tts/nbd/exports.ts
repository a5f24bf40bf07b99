// The NBD exports (board file "nbd.exports", through the configuration ROM): each a name clients ask for and the
// volume it serves, maybe read-only. Filled at boot (config_rom.ts), read-only after.
import { BUFFER_CLASS_PAGE } from "../../config";
import { bufferPool, bufferReserve } from "../../kernel/buffers";
import { POOL_NONE } from "../../kernel/pool";

export const EXPORTS_MAX: u32 = 16;
export const EXPORT_NAME_BYTES_MAX: u32 = 200; // the board file's limit: NBD_OPT_LIST of 16 exports fits one page
export const EXPORT_NONE: u32 = 0xffff_ffff;

export class NbdExports {
  private names: usize = 0; // a page buffer reserved at boot (16 names of at most 200 bytes)
  private readonly nameBytes: StaticArray<u32> = new StaticArray<u32>(EXPORTS_MAX);
  private readonly volumes: StaticArray<u32> = new StaticArray<u32>(EXPORTS_MAX);
  private readonly readOnly: StaticArray<bool> = new StaticArray<bool>(EXPORTS_MAX);
  count: u32 = 0;

  /** Boot: the page the names live in. */
  boot(): void {
    const pool = bufferPool(BUFFER_CLASS_PAGE);
    assert(EXPORTS_MAX * EXPORT_NAME_BYTES_MAX <= pool.slotBytes, "nbd: export names fit a page");
    const page = bufferReserve(BUFFER_CLASS_PAGE);
    assert(page != POOL_NONE, "nbd: the export names' page at boot");
    this.names = pool.address(page);
  }

  /** Adds an export; false when the table is full, the name is empty or too long, or already taken. Boot only. */
  add(name: usize, nameBytes: u32, volume: u32, readOnly: bool): bool {
    if (this.count >= EXPORTS_MAX || nameBytes == 0 || nameBytes > EXPORT_NAME_BYTES_MAX) return false;
    if (this.find(name, nameBytes) != EXPORT_NONE) return false;
    const i = this.count;
    memory.copy(this.name(i), name, nameBytes);
    unchecked(this.nameBytes[i] = nameBytes);
    unchecked(this.volumes[i] = volume);
    unchecked(this.readOnly[i] = readOnly);
    this.count += 1;
    return true;
  }

  /** The export named by the `nameBytes` at `name`, or EXPORT_NONE. The name is the client's: any bytes. */
  find(name: usize, nameBytes: u32): u32 {
    for (let i: u32 = 0; i < this.count; i++) {
      if (unchecked(this.nameBytes[i]) != nameBytes) continue;
      if (memory.compare(this.name(i), name, nameBytes) == 0) return i;
    }
    return EXPORT_NONE;
  }

  name(i: u32): usize {
    assert(i < EXPORTS_MAX, "nbd: export index out of range");
    return this.names + <usize>i * EXPORT_NAME_BYTES_MAX;
  }
  nameBytesOf(i: u32): u32 { return this.nameBytes[i]; }
  volume(i: u32): u32 { return this.volumes[i]; }
  isReadOnly(i: u32): bool { return this.readOnly[i]; }
}
