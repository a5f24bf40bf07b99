// Reads the iSCSI targets and portals out of the board's configuration ROM (docs/hardware.md, "Configuration ROM";
// the walk is assembly/board/config_rom.ts) into the target table (config.ts).
import { CONFIG_RECORD_BYTES_MAX, ConfigRomReader } from "../../board/config_rom";
import { carve } from "../../kernel/carve";
import { line } from "../../kernel/console";
import { TARGET_NONE, targetConfigAdd, targetConfigAt } from "./config";

const RECORD_BYTES_MAX: u32 = CONFIG_RECORD_BYTES_MAX;
const LUN_FLAG_READ_ONLY: u32 = 0x8000_0000; // in a Lun record's value: the LUN refuses writes (board file readOnly)

enum Record {
  TargetBegin = 0x01,
  TargetAlias = 0x02,
  Lun = 0x03, // value: u32 volume number | LUN_FLAG_READ_ONLY; a firmware without the flag finds no such volume
  ChapUser = 0x04,
  ChapSecret = 0x05,
  MutualUser = 0x06,
  MutualSecret = 0x07,
  AllowedInitiator = 0x08,
  TargetEnd = 0x0f,
  Portal = 0x10, // "address:port" of a portal the board listens on
}

// One target's fields as the records give them, until TargetEnd adds it.
class Pending {
  readonly name: usize = carve(RECORD_BYTES_MAX);
  nameBytes: u32 = 0;
  readonly alias: usize = carve(RECORD_BYTES_MAX);
  aliasBytes: u32 = 0;
  readonly chapUser: usize = carve(RECORD_BYTES_MAX);
  chapUserBytes: u32 = 0;
  readonly chapSecret: usize = carve(RECORD_BYTES_MAX);
  chapSecretBytes: u32 = 0;
  readonly mutualUser: usize = carve(RECORD_BYTES_MAX);
  mutualUserBytes: u32 = 0;
  readonly mutualSecret: usize = carve(RECORD_BYTES_MAX);
  mutualSecretBytes: u32 = 0;
  readonly luns: StaticArray<u32> = new StaticArray<u32>(16); // the records' values: volume and flags
  lunCount: u32 = 0;
  readonly initiators: usize = carve(RECORD_BYTES_MAX * 8);
  readonly initiatorBytes: StaticArray<u32> = new StaticArray<u32>(8);
  initiatorCount: u32 = 0;

  clear(): void {
    this.nameBytes = 0;
    this.aliasBytes = 0;
    this.chapUserBytes = 0;
    this.chapSecretBytes = 0;
    this.mutualUserBytes = 0;
    this.mutualSecretBytes = 0;
    this.lunCount = 0;
    this.initiatorCount = 0;
  }
}

/**
 * Adds every target the ROM at `base` describes and writes the first portal as "address:port,1" (NUL-terminated)
 * into `portalText` (capacity `portalCapacity`). Boot only. Returns the number of targets added.
 */
export function configRomLoadTargets(base: u64, portalText: usize, portalCapacity: u32): u32 {
  memory.fill(portalText, 0, portalCapacity);
  const rom = new ConfigRomReader(base, "iscsi");
  if (!rom.present) {
    line().s("iscsi: no configuration ROM; no targets").err();
    return 0;
  }
  const value = rom.value;
  const p = new Pending();
  let added: u32 = 0;
  while (rom.next()) {
    const lengthBytes = rom.lengthBytes;
    switch (<i32>rom.type) {
      case Record.TargetBegin: p.clear(); memory.copy(p.name, value, lengthBytes); p.nameBytes = lengthBytes; break;
      case Record.TargetAlias: memory.copy(p.alias, value, lengthBytes); p.aliasBytes = lengthBytes; break;
      case Record.ChapUser: memory.copy(p.chapUser, value, lengthBytes); p.chapUserBytes = lengthBytes; break;
      case Record.ChapSecret: memory.copy(p.chapSecret, value, lengthBytes); p.chapSecretBytes = lengthBytes; break;
      case Record.MutualUser: memory.copy(p.mutualUser, value, lengthBytes); p.mutualUserBytes = lengthBytes; break;
      case Record.MutualSecret: memory.copy(p.mutualSecret, value, lengthBytes); p.mutualSecretBytes = lengthBytes; break;
      case Record.Lun: if (lengthBytes == 4 && p.lunCount < 16) { unchecked(p.luns[p.lunCount] = load<u32>(value)); p.lunCount += 1; } break;
      case Record.AllowedInitiator: {
        if (p.initiatorCount < 8) {
          memory.copy(p.initiators + <usize>p.initiatorCount * RECORD_BYTES_MAX, value, lengthBytes);
          unchecked(p.initiatorBytes[p.initiatorCount] = lengthBytes);
          p.initiatorCount += 1;
        }
        break;
      }
      case Record.TargetEnd: if (addTarget(p)) added += 1; break;
      case Record.Portal: {
        if (load<u8>(portalText) == 0 && lengthBytes + 3 < portalCapacity) {
          memory.copy(portalText, value, lengthBytes);
          store<u8>(portalText + lengthBytes, 0x2c); // ",1": portal group tag 1
          store<u8>(portalText + lengthBytes + 1, 0x31);
        }
        break;
      }
      default: break; // a record type this reader does not take (the volumes', or newer): skip it
    }
  }
  return added;
}

function addTarget(p: Pending): bool {
  const index = targetConfigAdd(p.name, p.nameBytes, p.alias, p.aliasBytes, p.chapUser, p.chapUserBytes, p.chapSecret,
    p.chapSecretBytes, p.mutualUser, p.mutualUserBytes, p.mutualSecret, p.mutualSecretBytes);
  if (index == TARGET_NONE) {
    line().s("iscsi: configuration ROM target refused (bad name, duplicate, or bad CHAP)").err();
    return false;
  }
  const t = targetConfigAt(index);
  // The target's LUN n is the n-th volume it lists. A flag this firmware does not know leaves a volume number it has
  // not: LOGICAL UNIT NOT SUPPORTED, never a unit served with fewer protections than the board asked for.
  for (let i: u32 = 0; i < p.lunCount; i++) {
    const value = unchecked(p.luns[i]);
    t.addLun(i, value & ~LUN_FLAG_READ_ONLY, (value & LUN_FLAG_READ_ONLY) != 0);
  }
  for (let i: u32 = 0; i < p.initiatorCount; i++) {
    t.allowInitiator(p.initiators + <usize>i * RECORD_BYTES_MAX, unchecked(p.initiatorBytes[i]));
  }
  line().s("iscsi: target ").bytes(p.name, p.nameBytes).s(", ").u32(p.lunCount).s(" LUNs").out();
  return true;
}
