// The firmware's exports, and nothing else: the board ABI v1 (docs/board-abi.md).
import {
  bootInfoBoardNamePtr, bootInfoNamePtr, bootInfoProcessorIndex, bootInfoRamBytes, bootInfoRole,
  BOARD_NAME_BYTES, PROCESSOR_NAME_BYTES, Role,
} from "./board/boot_info";
import { ABI_VERSION, FIRMWARE_VERSION } from "./config";
import { BootStatus, kernelBoot } from "./kernel/boot";
import { carveSeal, heapTop as heapProbe } from "./kernel/carve";
import { line } from "./kernel/console";
import { HealthTask } from "./kernel/health";
import { irqLatch, schedulerRun, taskAdd } from "./kernel/scheduler";

export function abiVersion(): u32 {
  return ABI_VERSION;
}

export function boot(bootInfo: usize): u32 {
  const status = kernelBoot(bootInfo);
  if (status != BootStatus.Ok) return status;
  const health = new HealthTask();
  taskAdd(health);
  carveSeal();
  health.start();
  const ramBytes = bootInfoRamBytes(bootInfo);
  line().s("wasm-iop ").s(FIRMWARE_VERSION).s(" abi ").u32(ABI_VERSION).s(": processor ")
    .bytes(bootInfoNamePtr(bootInfo), PROCESSOR_NAME_BYTES).s(" #").u32(bootInfoProcessorIndex(bootInfo))
    .s(" role ").s(bootInfoRole(bootInfo) == Role.Host ? "host" : "storage")
    .s(" ram ").u64(ramBytes >> 20).s(" MiB board ").bytes(bootInfoBoardNamePtr(bootInfo), BOARD_NAME_BYTES).out();
  return status;
}

export function irq(vector: u32): void {
  irqLatch(vector);
}

export function run(budgetNs: u64): u64 {
  return schedulerRun(budgetNs);
}

export function heapTop(): usize {
  return heapProbe();
}
