// The messaging unit's registers (docs/hardware.md, "iop-bridge"): the host side in the bridge's BAR 0, the local
// side at the boot-info's muLocalBase on a storage processor. After the I2O units of the IOP3xx family.

// Host side (BAR 0 of the iop-bridge function).
export const MU_HOST_IMR0: u64 = 0x10;
export const MU_HOST_OMR0: u64 = 0x18;
export const MU_HOST_IDR: u64 = 0x20;
export const MU_HOST_ODR: u64 = 0x2c;
export const MU_HOST_OISR: u64 = 0x30;
export const MU_HOST_OIMR: u64 = 0x34;
export const MU_HOST_INBOUND_PORT: u64 = 0x40;
export const MU_HOST_OUTBOUND_PORT: u64 = 0x44;
export const MU_OISR_OUTBOUND_POST: u32 = 1 << 3;
export const MU_HOST_VECTOR_OUTBOUND_POST: u32 = 0; // MSI-X vector index on the bridge
export const MU_HOST_VECTORS: u32 = 2;

// Local side.
export const MU_LOCAL_IMR0: u64 = 0x10;
export const MU_LOCAL_OMR0: u64 = 0x18;
export const MU_LOCAL_IDR: u64 = 0x20;
export const MU_LOCAL_IISR: u64 = 0x24;
export const MU_LOCAL_IIMR: u64 = 0x28;
export const MU_LOCAL_ODR: u64 = 0x2c;
export const MU_LOCAL_LVEC: u64 = 0x3c;
export const MU_LOCAL_MUCR: u64 = 0x50;
export const MU_LOCAL_QBAR: u64 = 0x54;
export const MU_LOCAL_IFHPR: u64 = 0x60;
export const MU_LOCAL_IFTPR: u64 = 0x64;
export const MU_LOCAL_IPHPR: u64 = 0x68;
export const MU_LOCAL_IPTPR: u64 = 0x6c;
export const MU_LOCAL_OPHPR: u64 = 0x70;
export const MU_LOCAL_OPTPR: u64 = 0x74;
export const MU_LOCAL_OFHPR: u64 = 0x78;
export const MU_LOCAL_OFTPR: u64 = 0x7c;
export const MU_IISR_INBOUND_POST: u32 = 1 << 4;
export const MU_IISR_INBOUND_POST_FULL: u32 = 1 << 5;
export const MU_MUCR_ENABLE: u32 = 1;
// A storage processor writes this to OMR0 once its unit's queues are set up and its free frames posted.
export const MU_READY: u32 = 0x52454459; // 'REDY'

// Queue geometry: four queues of 256 << n entries at QBAR, in the order below.
export const MU_QUEUE_SIZE_CODE: u32 = 0;
export const MU_QUEUE_ENTRIES: u32 = 256 << MU_QUEUE_SIZE_CODE;
export const MU_QUEUE_INBOUND_FREE: u32 = 0;
export const MU_QUEUE_INBOUND_POST: u32 = 1;
export const MU_QUEUE_OUTBOUND_POST: u32 = 2;
export const MU_QUEUE_OUTBOUND_FREE: u32 = 3;

// The iop-bridge function's identity.
export const IOP_BRIDGE_VENDOR: u32 = 0x8086;
export const IOP_BRIDGE_DEVICE: u32 = 0x0303;
export const IOP_BRIDGE_CLASS: u32 = 0x0e0001;
export const IOP_BRIDGE_BAR_MU: u32 = 0;
export const IOP_BRIDGE_BAR_WINDOW: u32 = 2;
