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
  RamTooSmall = 1, // the pools the RAM size asks for do not fit below the boot-info block
  BadBootInfo = 2, // wrong magic, version or size
}

// Room for the objects boot creates besides the pools (tasks, queues, tables), with a margin.
const BOOT_OBJECTS_BYTES: u64 = 512 * 1024;

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
  const neededBytes = buffersPlanBytes(ramBytes) + BOOT_OBJECTS_BYTES;
  if (info >= <usize>ramBytes || neededBytes > availableBytes) {
    line().s("boot: RAM too small: pools need ").u64(neededBytes).s(" bytes, ").u64(availableBytes)
      .s(" available below the boot-info block").err();
    return BootStatus.RamTooSmall;
  }
  schedulerInit();
  buffersInit(ramBytes);
  return BootStatus.Ok;
}

const health = new HealthTask();

/** Ends boot once every task is added: the health task last, then the seal, then the banner. */
export function kernelStart(info: usize): BootStatus {
  taskAdd(health);
  carveSeal();
  health.start();
  line().s("wasm-iop ").s(FIRMWARE_VERSION).s(" abi ").u32(ABI_VERSION).s(": processor ")
    .bytes(bootInfoNamePtr(info), PROCESSOR_NAME_BYTES).s(" #").u32(bootInfoProcessorIndex(info))
    .s(" role ").s(bootInfoRole(info) == Role.Host ? "host" : "storage")
    .s(" ram ").u64(bootInfoRamBytes(info) >> 20).s(" MiB board ").bytes(bootInfoBoardNamePtr(info), BOARD_NAME_BYTES)
    .s(", ").u32(taskCountGet()).s(" tasks").out();
  return BootStatus.Ok;
}

/** The health task's count of completed self-checks. */
export function healthCheckCount(): u32 { return health.checkCount; }
