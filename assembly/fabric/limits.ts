// The fabric task's sizes (assembly/fabric/fabric.ts) and the agent numbering of other boards.

/** In an agent address, processor REMOTE_PROCESSOR_BASE + b is the host processor of board b of the routing table. */
export const REMOTE_PROCESSOR_BASE: u32 = 16;
/** The CTA's link table: this board's processors below REMOTE_PROCESSOR_BASE, then one per board of a cluster. */
export const LINKS_MAX: u32 = REMOTE_PROCESSOR_BASE + 16; // CLUSTER_BOARDS_MAX boards

export const FABRIC_PRIORITY: u32 = 2;
export const FABRIC_INBOX_DEPTH: u32 = 256;
export const FABRIC_BATCH_MAX: u32 = 64;
export const FABRIC_SQ_ENTRIES: u32 = 256; // frames and hellos in flight to the port
export const FABRIC_RQ_ENTRIES: u32 = 128; // receive buffers posted
export const FABRIC_CQ_ENTRIES: u32 = 512; // > SQ + RQ: every request and receive has room for its completion
export const FABRIC_RECEIVE_BYTES: u32 = 128; // a frame (FRAME_BYTES), the largest message
export const FABRIC_HELLO_RETRY_NS: u64 = 1_000_000; // a hello the peer did not take is sent again after this
export const FABRIC_HELD_MAX: u32 = 128; // replies received and waiting for their tunneled interrupt (= receive buffers)
export const FABRIC_TUNNEL_WAIT_NS: u64 = 500_000; // a reply whose tunneled interrupt has not come by then is dropped

// The hello's layout: hello.ts.
