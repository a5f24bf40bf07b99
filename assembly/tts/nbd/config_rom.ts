// Reads the NBD server's records out of the board's configuration ROM (docs/hardware.md, "Configuration ROM"; host
// side host/bus/config_rom.ts NbdRecord): which NIC portal is the NBD one, and the exports. NIC portal i is the i-th
// Portal (iSCSI) or NbdPortal record.
import { CONFIG_RECORD_BYTES_MAX, ConfigRomReader } from "../../board/config_rom";
import { line } from "../../kernel/console";
import { NbdExports } from "./exports";

export const PORTAL_NONE: u32 = 0xffff_ffff;
const EXPORT_READ_ONLY: u32 = 0x8000_0000; // in an NbdExport record's volume word (board file readOnly)

export enum NbdRecord {
  Portal = 0x10, // an iSCSI portal: counted, so the NBD portal's index is known
  NbdPortal = 0x11, // value: "address:port"
  NbdExport = 0x12, // value: |0 volume u32 (| EXPORT_READ_ONLY)|4 name|
}

/** Fills `exports` from the ROM at `base`; answers the NBD portal's NIC index, or PORTAL_NONE. Boot only. */
export function configRomLoadNbd(base: u64, exports: NbdExports): u32 {
  const rom = new ConfigRomReader(base, "nbd");
  if (!rom.present) return PORTAL_NONE;
  let portals: u32 = 0;
  let nbdPortal = PORTAL_NONE;
  while (rom.next()) {
    const value = rom.value;
    switch (<i32>rom.type) {
      case NbdRecord.Portal: portals += 1; break;
      case NbdRecord.NbdPortal: {
        if (nbdPortal == PORTAL_NONE) nbdPortal = portals;
        portals += 1;
        break;
      }
      case NbdRecord.NbdExport: {
        const lengthBytes = rom.lengthBytes;
        assert(lengthBytes <= CONFIG_RECORD_BYTES_MAX, "nbd: a ROM record fits its buffer");
        const word = lengthBytes >= 4 ? load<u32>(value) : 0;
        if (lengthBytes < 5 || !exports.add(value + 4, lengthBytes - 4, word & ~EXPORT_READ_ONLY, (word & EXPORT_READ_ONLY) != 0)) {
          line().s("nbd: configuration ROM export refused (empty, too long, duplicate, or too many)").err();
        }
        break;
      }
      default: break; // another reader's record
    }
  }
  if (nbdPortal != PORTAL_NONE) line().s("nbd: ").u32(exports.count).s(" exports on NIC portal ").u32(nbdPortal).out();
  return nbdPortal;
}
