// The virtio-scsi DDM's limits. Everything a controller needs is carved at boot from these (ddmBoot).
// Per controller, with the defaults: the rings (16·QS + 6+2·QS + 6+8·QS ≈ 3.3 KiB), REQUESTS_MAX request areas of
// REQUEST_AREA_BYTES (32 KiB), the discovery buffer, the inbox and the completion outbox: about 64 KiB in all.

export const VSCSI_VENDOR_ID: u32 = 0x1af4;
export const VSCSI_DEVICE_ID: u32 = 0x1048; // 0x1040 + virtio device ID 8 (virtio §4.1.2.1)

export const VSCSI_CONTROLLERS_MAX: u32 = 4; // per processor; more are left unclaimed, with a console line
export const VSCSI_DISKS_MAX: u32 = 8; // per controller: LUNs beyond the 8 lowest are not used
export const VSCSI_QUEUE_SIZE_MAX: u32 = 128; // the request queue takes min(device maximum, this), a power of two
export const VSCSI_REQUESTS_MAX: u32 = 128; // accepted requests per controller: in flight plus queued for descriptors
export const VSCSI_SEGMENTS_MAX: u32 = 64; // data descriptors per request (also capped by seg_max and QS - 3)
export const VSCSI_TRANSFER_BYTES_MAX: u32 = 1 << 20; // per request (also capped by max_sectors × 512)
export const VSCSI_RETRIES_MAX: u32 = 2; // re-issues after a UNIT ATTENTION, per request

// Time, on the board clock.
export const VSCSI_TICK_NS: u64 = 100_000_000; // the period of the deadline, status and retry sweep
export const VSCSI_REQUEST_TIMEOUT_NS: u64 = 2_000_000_000; // a request not completed in this resets the controller
export const VSCSI_RESET_WAIT_NS: u64 = 1_000_000_000; // device_status must read back 0 within this after a reset

// Giving up: a controller that keeps failing is turned off (bus mastering too) and fails every request.
export const VSCSI_BRINGUP_ATTEMPTS_MAX: u32 = 3; // bring-ups in a row the device refuses
export const VSCSI_FAULTS_IN_ROW_MAX: u32 = 8; // resets without a successful completion between them

// The task.
export const VSCSI_PRIORITY: u32 = 1;
export const VSCSI_INBOX_DEPTH: u32 = 128;
export const VSCSI_OUTBOX_DEPTH: u32 = 64; // completions a requester's full inbox refused, retried every run and tick
export const VSCSI_BATCH_MAX: u32 = 32; // messages per dispatch
export const VSCSI_BUDGET_NS: u64 = 1_000_000;

// @ts-ignore: ERROR is an AssemblyScript builtin
if ((VSCSI_QUEUE_SIZE_MAX & (VSCSI_QUEUE_SIZE_MAX - 1)) != 0) ERROR("split virtqueues have a power-of-two size");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (VSCSI_QUEUE_SIZE_MAX < 8 || VSCSI_QUEUE_SIZE_MAX > 32768) ERROR("queue size out of the virtio range");
// @ts-ignore: ERROR is an AssemblyScript builtin
if (VSCSI_REQUESTS_MAX >= 0xffff) ERROR("request indexes are u16 with 0xFFFF for none");
