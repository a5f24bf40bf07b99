// Test build entry: the real ABI exports plus probes for vitest. Placeholder; filled below.
export { abiVersion, boot, irq, run, heapTop } from "../../assembly/index";
