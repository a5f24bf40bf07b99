// The kernel's part of boot: check the boot-info block, size the pools against RAM, carve them.
import {
  BOOT_INFO_MAGIC, BOOT_INFO_SIZE_BYTES, bootInfoAbiVersion, bootInfoMagic, bootInfoRamBytes, bootInfoSizeBytes,
} from "../board/boot_info";
import { ABI_VERSION } from "../config";
import { buffersInit, buffersPlanBytes } from "./buffers";
import { heapTop } from "./carve";
import { line } from "./console";
import { panicInit } from "./panic";
import { schedulerInit } from "./scheduler";

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
