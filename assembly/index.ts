// The firmware's exports, and nothing else: the board ABI v1 (docs/board-abi.md).
import { agentsBoot, agentsStart } from "./agents";
import { ABI_VERSION } from "./config";
import { BootStatus, kernelBoot, kernelStart } from "./kernel/boot";
import { heapTop as heapProbe } from "./kernel/carve";
import { irqLatch, schedulerRun } from "./kernel/scheduler";

export function abiVersion(): u32 {
  return ABI_VERSION;
}

export function boot(bootInfo: usize): u32 {
  const status = kernelBoot(bootInfo);
  if (status != BootStatus.Ok) return status;
  agentsBoot(bootInfo);
  const started = kernelStart(bootInfo);
  if (started != BootStatus.Ok) return started;
  agentsStart();
  return started;
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
