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

// The hello, 32 bytes: how a board tells the others where its data buffers are, so their storage controllers can
// move a request's data straight into them through the window (docs/cluster.md, "Proxy I/O").
// |0 magic u32 "HELO"|4 flags u32 (bit 0: answer with yours)|8 key u32|12 reserved u32|16 region base u64|24 length u64|
export const FABRIC_HELLO_BYTES: u32 = 32;
export const FABRIC_HELLO_MAGIC: u32 = 0x4f4c4548; // "HELO" little-endian; a frame starts with its version, 1
export const FABRIC_HELLO_ANSWER: u32 = 1;
