// The cluster port's PCI identity, BAR 0 registers, limits and codes (docs/hardware.md, "cluster-port"), as the fabric
// task sees them. The host model (host/devices/cluster_port.ts) defines the same values;
// test/unit/fabric/shared_constants.test.ts keeps the two equal.

export const CLUSTER_PORT_VENDOR_ID: u32 = 0x1234;
export const CLUSTER_PORT_DEVICE_ID: u32 = 0x11d0;
// The revision says how peers' memory is reached: 1 also through the window (BAR 4, a DMA master's access done at
// once); 2 only by RDMA READ and WRITE work requests (the fabric is carried by a network: the window reaches nothing).
export const CLUSTER_PORT_REVISION_WINDOW: u32 = 1;
export const CLUSTER_PORT_REVISION_RDMA: u32 = 2;
export const CLUSTER_PORT_BAR_REGISTERS: u32 = 0;
export const CLUSTER_PORT_BAR_WINDOW: u32 = 4; // the window onto peers' regions: CP_WINDOW_SLOTS slots
export const CLUSTER_PORT_VECTOR_COMPLETION: u32 = 0; // a completion entry was written
export const CLUSTER_PORT_VECTOR_TUNNEL_BASE: u32 = 1; // a peer's interrupt v arrives on vector 1 + v
export const CLUSTER_PORT_TUNNEL_VECTORS: u32 = 8;
export const CLUSTER_PORT_VECTOR_COUNT: u32 = 9;

// BAR 0, all 32 bits.
export const CP_CTRL: u64 = 0x00; // bit 0 enable, bit 1 reset (W)
export const CP_STATUS: u64 = 0x04; // RO: links up, active link, completion overflow, enabled
export const CP_FABRIC_ADDRESS: u64 = 0x08; // RO: this board's id in the routing table
export const CP_FAULT_COUNT: u64 = 0x0c; // RO: peers' accesses refused (key, range, access)
export const CP_FAILOVER_COUNT: u64 = 0x10; // RO: the bond moved to the other link
export const CP_SQ_BASE_LO: u64 = 0x20;
export const CP_SQ_BASE_HI: u64 = 0x24;
export const CP_SQ_SIZE: u64 = 0x28;
export const CP_SQ_TAIL: u64 = 0x2c; // the doorbell
export const CP_SQ_HEAD: u64 = 0x30; // RO
export const CP_RQ_BASE_LO: u64 = 0x40;
export const CP_RQ_BASE_HI: u64 = 0x44;
export const CP_RQ_SIZE: u64 = 0x48;
export const CP_RQ_TAIL: u64 = 0x4c;
export const CP_RQ_HEAD: u64 = 0x50; // RO
export const CP_CQ_BASE_LO: u64 = 0x60;
export const CP_CQ_BASE_HI: u64 = 0x64;
export const CP_CQ_SIZE: u64 = 0x68;
export const CP_CQ_TAIL: u64 = 0x6c; // RO
export const CP_CQ_HEAD: u64 = 0x70;
export const CP_REGION_SELECT: u64 = 0x80;
export const CP_REGION_BASE_LO: u64 = 0x84;
export const CP_REGION_BASE_HI: u64 = 0x88;
export const CP_REGION_LENGTH: u64 = 0x8c;
export const CP_REGION_ACCESS: u64 = 0x90; // W: register with this access (0 revokes)
export const CP_REGION_KEY: u64 = 0x94; // RO: the key the port gave, 0 when none
export const CP_WINDOW_SELECT: u64 = 0xa0;
export const CP_WINDOW_DESTINATION: u64 = 0xa4;
export const CP_WINDOW_KEY: u64 = 0xa8; // non-zero opens the slot onto the destination's region of that key

export const CP_CTRL_ENABLE: u32 = 1 << 0;
export const CP_CTRL_RESET: u32 = 1 << 1;
export const CP_STATUS_LINK0_UP: u32 = 1 << 0;
export const CP_STATUS_LINK1_UP: u32 = 1 << 1;
export const CP_STATUS_ACTIVE_LINK1: u32 = 1 << 2;
export const CP_STATUS_CQ_OVERFLOW: u32 = 1 << 3;
export const CP_STATUS_ENABLED: u32 = 1 << 4;
export const CP_ACCESS_REMOTE_READ: u32 = 1 << 0;
export const CP_ACCESS_REMOTE_WRITE: u32 = 1 << 1;
export const CP_REGIONS_MAX: u32 = 16;
export const CP_QUEUE_ENTRIES_MIN: u32 = 2;
export const CP_QUEUE_ENTRIES_MAX: u32 = 1024;
export const FABRIC_TRANSFER_BYTES_MAX: u32 = 1 << 20;
export const FABRIC_TIMEOUT_NS: u64 = 100_000;
export const CP_REGION_LENGTH_MAX: u32 = 0x8000_0000;
export const CP_WINDOW_SLOTS: u32 = 4;
export const CP_WINDOW_SLOT_BYTES: u64 = 0x400_0000; // slot offset x is offset x of the peer's region

export enum FabricOpcode {
  Write = 1, // RDMA WRITE: local bytes into the peer's region at the offset
  Read = 2, // RDMA READ: the peer's region at the offset into local memory
  Send = 3, // local bytes into the peer's next receive buffer
  Interrupt = 4, // the peer's tunneled vector (the remote offset), after everything sent before
  Receive = 5, // completion only: a SEND arrived
}

export enum FabricStatus {
  Ok = 0,
  KeyFault = 1,
  RangeFault = 2,
  AccessFault = 3,
  LinkDown = 4,
  NoPort = 5,
  ReceiverNotReady = 6,
  ReceiveLength = 7,
  LocalFault = 8,
  RemoteFault = 9,
  Fenced = 10,
  BadRequest = 11,
  NotEnabled = 12,
}
