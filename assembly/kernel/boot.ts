// The kernel's part of boot: check the boot-info block, size the pools against RAM, carve them; and, once the
// role's tasks are added, seal the heap and print the banner.
import {
  BOARD_NAME_BYTES, BOOT_INFO_MAGIC, BOOT_INFO_SIZE_BYTES, bootInfoAbiVersion, bootInfoBoardNamePtr, bootInfoMagic,
  bootInfoNamePtr, bootInfoProcessorIndex, bootInfoRamBytes, bootInfoRole, bootInfoSizeBytes, PROCESSOR_NAME_BYTES, Role,
} from "../board/boot_info";
import { ABI_VERSION, FIRMWARE_VERSION } from "../config";
import { buffersInit, buffersPlanBytes } from "./buffers";
import { carveSeal, heapTop } from "./carve";
import { line } from "./console";
import { HealthTask } from "./health";
import { panicInit } from "./panic";
import { schedulerInit, taskAdd, taskCountGet } from "./scheduler";

export enum BootStatus {
  Ok = 0,
  RamTooSmall = 1, // the role's agents and pools sized for at least POOLS_RAM_FLOOR_BYTES do not fit below the boot-info block
  BadBootInfo = 2, // wrong magic, version or size
  ObjectsOverReserve = 3, // the role's agents took more than bootObjectsBytes reserves for them: a firmware defect
}

// The boot reserve: room for what the role's agents carve at boot besides the pools (tasks, connection and session
// tables, rings), which does not depend on RAM. It is kept before the pools are sized, so a processor with too little
// RAM stops with a message instead of trapping half-way through boot, and checked once the agents are up
// (kernelStart), so a table that outgrows it fails every boot; the banner prints what the agents took of it.
// Two sizes per role: the preferred one where RAM holds it beside pools sized for all of RAM (every shipped board),
// else the minimum, so a small processor keeps its pools (a 4 MiB host would lose large buffers it needs to 256 KiB
// of reserve more). Measured (2026-12-07, release image): host 2 035 168 bytes on iop-dev, 2 095 488 on the volumes
// simulation board, 2 016 688 on the 4 MiB test board; storage 230 144 (virtio-scsi), 185 024 (NVMe).
// test/unit/boot/boot_reserve.test.ts fails when a shipped board leaves less than 64 KiB of the reserve free.
const BOOT_OBJECTS_BYTES_HOST: u64 = 2560 * 1024;
const BOOT_OBJECTS_BYTES_HOST_MIN: u64 = 2048 * 1024;
const BOOT_OBJECTS_BYTES_STORAGE: u64 = 384 * 1024;
const BOOT_OBJECTS_BYTES_STORAGE_MIN: u64 = 256 * 1024;
// The pools are sized for the processor's RAM (config.ts: half of it for data buffers) or, when the role's agents
// leave less room than that needs, for a smaller RAM in these steps, but never below the floor: a 4 MiB host carves
// pools as for 3.75 MiB.
const POOLS_RAM_STEP_BYTES: u64 = 256 * 1024;
const POOLS_RAM_FLOOR_BYTES: u64 = 2 * 1024 * 1024;

// The preferred reserve where pools sized for all of `ramBytes` fit beside it in `availableBytes`, else the minimum.
function bootObjectsBytes(info: usize, ramBytes: u64, availableBytes: u64): u64 {
  const host = bootInfoRole(info) == Role.Host;
  const preferred = host ? BOOT_OBJECTS_BYTES_HOST : BOOT_OBJECTS_BYTES_STORAGE;
  if (buffersPlanBytes(ramBytes) + preferred <= availableBytes) return preferred;
  return host ? BOOT_OBJECTS_BYTES_HOST_MIN : BOOT_OBJECTS_BYTES_STORAGE_MIN;
}

let poolsTop: usize = 0; // heapTop() once the pools are carved
let objectsReserveBytes: u64 = 0; // the boot reserve kernelBoot chose

export function kernelBoot(info: usize): BootStatus {
  if (bootInfoMagic(info) != BOOT_INFO_MAGIC || bootInfoAbiVersion(info) != ABI_VERSION
    || bootInfoSizeBytes(info) != BOOT_INFO_SIZE_BYTES) {
    line().s("boot: bad boot-info block at ").hex(info).s(": magic ").hex(bootInfoMagic(info))
      .s(", abi ").u32(bootInfoAbiVersion(info)).s(", size ").u32(bootInfoSizeBytes(info)).err();
    return BootStatus.BadBootInfo;
  }
  panicInit(info);
  const ramBytes = bootInfoRamBytes(info);
  const top = heapTop();
  const availableBytes: u64 = info > top ? <u64>(info - top) : 0;
  const objectsBytes = bootObjectsBytes(info, ramBytes, availableBytes);
  const floorBytes = min(ramBytes, POOLS_RAM_FLOOR_BYTES);
  let poolsRamBytes = ramBytes;
  while (poolsRamBytes > floorBytes && buffersPlanBytes(poolsRamBytes) + objectsBytes > availableBytes) {
    poolsRamBytes = max(poolsRamBytes - POOLS_RAM_STEP_BYTES, floorBytes);
  }
  const poolsBytes = buffersPlanBytes(poolsRamBytes);
  const role = bootInfoRole(info) == Role.Host ? "host" : "storage";
  if (info >= <usize>ramBytes || poolsBytes + objectsBytes > availableBytes) {
    line().s("boot: RAM too small: ").u64(ramBytes >> 10).s(" KiB; pools need ").u64(poolsBytes).s(" bytes and the ")
      .s(role).s(" role's agents ").u64(objectsBytes).s(", ").u64(availableBytes).s(" available below the boot-info block")
      .err();
    return BootStatus.RamTooSmall;
  }
  if (poolsRamBytes < ramBytes) {
    line().s("boot: pools sized for ").u64(poolsRamBytes >> 10).s(" KiB of the ").u64(ramBytes >> 10)
      .s(" KiB of RAM: the ").s(role).s(" role's agents need ").u64(objectsBytes >> 10).s(" KiB").out();
  }
  schedulerInit();
  buffersInit(poolsRamBytes);
  poolsTop = heapTop();
  objectsReserveBytes = objectsBytes;
  return BootStatus.Ok;
}

const health = new HealthTask();

/** Ends boot once every task is added: the health task last, then the seal, then the banner. */
export function kernelStart(info: usize): BootStatus {
  taskAdd(health);
  carveSeal();
  const objectsBytes = <u64>(heapTop() - poolsTop);
  if (objectsBytes > objectsReserveBytes) {
    line().s("boot: the agents took ").u64(objectsBytes).s(" bytes, over the ").u64(objectsReserveBytes)
      .s(" reserved for them (assembly/kernel/boot.ts)").err();
    return BootStatus.ObjectsOverReserve;
  }
  health.start();
  line().s("wasm-iop ").s(FIRMWARE_VERSION).s(" abi ").u32(ABI_VERSION).s(": processor ")
    .bytes(bootInfoNamePtr(info), PROCESSOR_NAME_BYTES).s(" #").u32(bootInfoProcessorIndex(info))
    .s(" role ").s(bootInfoRole(info) == Role.Host ? "host" : "storage")
    .s(" ram ").u64(bootInfoRamBytes(info) >> 20).s(" MiB board ").bytes(bootInfoBoardNamePtr(info), BOARD_NAME_BYTES)
    .s(", ").u32(taskCountGet()).s(" tasks, boot reserve ").u64(objectsBytes).s(" of ").u64(objectsReserveBytes)
    .s(" bytes").out();
  return BootStatus.Ok;
}

/** The health task's count of completed self-checks. */
export function healthCheckCount(): u32 { return health.checkCount; }
