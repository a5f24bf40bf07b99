// Where one NVMe controller's DMA memory lives: three large data buffers (64 KiB each, page aligned) reserved at boot
// (kernel/buffers.ts bufferReserve), so a controller does not take the agents' boot reserve.
// Buffer 0: |0 admin SQ (16·64 B)|4 KiB admin CQ|8 KiB I/O SQ (65·64 B, two pages)|16 KiB I/O CQ|20 KiB identify|
//           |24 KiB log page|28-64 KiB unused|
// Buffers 1 and 2: the request slots' pointer areas, NVME_POINTER_AREA_BYTES each, 32 per buffer.
import { BUFFER_CLASS_LARGE, BUFFER_LARGE_BYTES } from "../../config";
import { bufferPool, bufferReserve } from "../../kernel/buffers";
import { POOL_NONE } from "../../kernel/pool";
import { NVME_ADMIN_QUEUE_ENTRIES, NVME_IO_QUEUE_ENTRIES, NVME_POINTER_AREA_BYTES, NVME_REQUESTS_MAX } from "./limits";
import { CQ_ENTRY_BYTES, SQ_ENTRY_BYTES } from "./registers";

const AT_ADMIN_SQ: usize = 0;
const AT_ADMIN_CQ: usize = 4096;
const AT_IO_SQ: usize = 8192;
const AT_IO_CQ: usize = 16384;
const AT_IDENTIFY: usize = 20480;
const AT_LOG: usize = 24576;
const AREAS_PER_BUFFER: u32 = BUFFER_LARGE_BYTES / NVME_POINTER_AREA_BYTES;

// @ts-ignore: ERROR is an AssemblyScript builtin
if (NVME_ADMIN_QUEUE_ENTRIES * SQ_ENTRY_BYTES > 4096 || NVME_ADMIN_QUEUE_ENTRIES * CQ_ENTRY_BYTES > 4096) ERROR("the admin queues fit a page each");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (NVME_IO_QUEUE_ENTRIES * SQ_ENTRY_BYTES > 8192 || NVME_IO_QUEUE_ENTRIES * CQ_ENTRY_BYTES > 4096) ERROR("the I/O queues fit their pages");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (NVME_REQUESTS_MAX > 2 * AREAS_PER_BUFFER) ERROR("two buffers hold every request's pointer area");

export class NvmeMemory {
  adminSq: usize = 0;
  adminCq: usize = 0;
  ioSq: usize = 0;
  ioCq: usize = 0;
  identify: usize = 0;
  log: usize = 0;
  private areas0: usize = 0;
  private areas1: usize = 0;

  /** Reserves the three buffers; false when the pool ran dry (what was taken stays reserved, unused). Boot only. */
  reserve(): bool {
    const pool = bufferPool(BUFFER_CLASS_LARGE);
    const b0 = bufferReserve(BUFFER_CLASS_LARGE);
    const b1 = bufferReserve(BUFFER_CLASS_LARGE);
    const b2 = bufferReserve(BUFFER_CLASS_LARGE);
    if (b0 == POOL_NONE || b1 == POOL_NONE || b2 == POOL_NONE) return false;
    const base = pool.address(b0);
    assert((base & 4095) == 0, "nvme: large buffers are page aligned");
    memory.fill(base, 0, BUFFER_LARGE_BYTES);
    this.adminSq = base + AT_ADMIN_SQ;
    this.adminCq = base + AT_ADMIN_CQ;
    this.ioSq = base + AT_IO_SQ;
    this.ioCq = base + AT_IO_CQ;
    this.identify = base + AT_IDENTIFY;
    this.log = base + AT_LOG;
    this.areas0 = pool.address(b1);
    this.areas1 = pool.address(b2);
    return true;
  }

  /** Request slot `r`'s pointer area (2 KiB aligned: never crosses a page). */
  area(r: u32): usize {
    assert(r < NVME_REQUESTS_MAX);
    const base = r < AREAS_PER_BUFFER ? this.areas0 : this.areas1;
    return base + <usize>(r % AREAS_PER_BUFFER) * NVME_POINTER_AREA_BYTES;
  }
}
