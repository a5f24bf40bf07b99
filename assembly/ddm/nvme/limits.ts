// The NVMe DDM's limits. Everything a controller needs is reserved at boot from these (ddmBoot): its DMA memory is
// three large buffers taken for good from the data pool (bufferReserve), not the agents' boot reserve. One holds the
// admin queue pair (16·64 + 16·16 B), the I/O queue pair (65·64 + 65·16 B), the 4 KiB identify buffer and the 4 KiB
// log buffer, each on its own pages (NvmeMemory); two hold one 2 KiB data-pointer area per request slot (a PRP list
// of 256 entries, an SGL of 128 descriptors, or a DSM range).

export const NVME_CLASS_CODE: u32 = 0x01_08_02; // mass storage, non-volatile memory controller, NVM Express

export const NVME_CONTROLLERS_MAX: u32 = 4; // per processor; more are left unclaimed, with a console line
export const NVME_DISKS_MAX: u32 = 8; // namespaces used per controller: the 8 lowest active NSIDs
export const NVME_REQUESTS_MAX: u32 = 64; // accepted requests per controller; each may be in flight at once
export const NVME_IO_QUEUE_ENTRIES: u32 = NVME_REQUESTS_MAX + 1; // one slot always empty (NVMe 1.4 §4.1.1: full is head = tail + 1)
export const NVME_ADMIN_QUEUE_ENTRIES: u32 = 16;
export const NVME_SEGMENTS_MAX: u32 = 128; // data segments per request sent as an NVMe SGL (PRPs take any number)
export const NVME_TRANSFER_BYTES_MAX: u32 = 1 << 20; // per request (also capped by the controller's MDTS)
export const NVME_PAGE_BYTES: u32 = 4096; // CC.MPS 0: the memory page size of PRPs
export const NVME_POINTER_AREA_BYTES: u32 = 2048; // per request: 256 PRP entries (1 MiB), never crossing a page

// Time, on the board clock.
export const NVME_TICK_NS: u64 = 100_000_000; // the period of the deadline, status and ready-wait sweep
export const NVME_REQUEST_TIMEOUT_NS: u64 = 2_000_000_000; // an I/O not completed in this is aborted
export const NVME_ABORT_WAIT_NS: u64 = 500_000_000; // an ABORT that does not end its command in this resets the controller
export const NVME_ADMIN_TIMEOUT_NS: u64 = 2_000_000_000; // a bring-up command not completed in this resets the controller
export const NVME_READY_WAIT_NS_MAX: u64 = 5_000_000_000; // CSTS.RDY waits: CAP.TO, at most this

// Giving up: a controller that keeps failing is turned off (bus mastering too) and fails every request.
export const NVME_BRINGUP_ATTEMPTS_MAX: u32 = 3; // bring-ups in a row the controller refuses
export const NVME_FAULTS_IN_ROW_MAX: u32 = 8; // resets without a successful completion between them

// The task.
export const NVME_PRIORITY: u32 = 1;
export const NVME_INBOX_DEPTH: u32 = 128;
export const NVME_OUTBOX_DEPTH: u32 = 64; // completions a requester's full inbox refused, retried every run and tick
export const NVME_BATCH_MAX: u32 = 32; // messages per dispatch
export const NVME_BUDGET_NS: u64 = 1_000_000;

// @ts-ignore: ERROR is an AssemblyScript builtin
if (NVME_REQUESTS_MAX > 128) ERROR("a command identifier holds the request index in 7 bits");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (NVME_POINTER_AREA_BYTES / 8 < NVME_TRANSFER_BYTES_MAX / NVME_PAGE_BYTES) ERROR("a PRP list holds the pages after the first");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (NVME_PAGE_BYTES % NVME_POINTER_AREA_BYTES != 0) ERROR("pointer areas never cross a page");
