// The fuzzing build's entry: the release image's exports (board ABI v1, unchanged) plus two read-only probes the
// fuzzer's leak oracle reads once the board quiesces, and, on the host processor, a requester task the xor target
// drives the XOR task with (xor_requester.ts; idle unless called). Nothing else here changes what the firmware does;
// the release image (assembly/index.ts) never carries these. tools/fuzz/instrument.ts adds the coverage counters.
export { abiVersion, heapTop, irq, run } from "../../../assembly/index";
import { agentsBoot, agentsStart } from "../../../assembly/agents";
import { BootStatus, kernelBoot, kernelStart } from "../../../assembly/kernel/boot";
import { xorRequesterBoot } from "./xor_requester";
export * from "./xor_requester";

/** assembly/index.ts's boot(), with the XOR requester added before the seal. */
export function boot(bootInfo: usize): u32 {
  const status = kernelBoot(bootInfo);
  if (status != BootStatus.Ok) return status;
  agentsBoot(bootInfo);
  xorRequesterBoot();
  const started = kernelStart(bootInfo);
  if (started != BootStatus.Ok) return started;
  agentsStart();
  return started;
}
import { BUFFER_CLASS_COUNT } from "../../../assembly/config";
import { bufferPool, sgls } from "../../../assembly/kernel/buffers";
import { frames } from "../../../assembly/rta/links";
import { agentRta } from "../../../assembly/agents";
import { POOL_NONE } from "../../../assembly/kernel/pool";
import { TransactionState, TRANSACTIONS_MAX } from "../../../assembly/rta/transactions";

/** Data buffers of every class and SGL blocks not in their pools. */
export function fuzzBuffersInUse(): u32 {
  let used: u32 = 0;
  for (let c: u32 = 0; c < BUFFER_CLASS_COUNT; c++) used += bufferPool(c).capacity - bufferPool(c).freeCount;
  return used + sgls().blocks.capacity - sgls().blocks.freeCount;
}

/** Message frames not in the frame pool, less those the RTA keeps as replies to transactions it finished: a reply
 * stays until the requester acknowledges it (or RETAIN_NS, 10 s, passes), so the last replies of an idle link are
 * held by design, not leaked. A frame no transaction accounts for still counts. */
export function fuzzFramesInUse(): u32 {
  const pool = frames();
  const store = agentRta().store;
  let retained: u32 = 0;
  for (let t: u32 = 0; t < TRANSACTIONS_MAX; t++) {
    if (store.state(t) == TransactionState.Done && store.replySlot(t) != (POOL_NONE & 0xffff)) retained += 1;
  }
  return pool.capacity - pool.freeCount - retained;
}
