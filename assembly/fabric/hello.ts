// The hello, 32 bytes: how a board tells the others where its data buffers are, so their storage controllers can
// move a request's data straight into them through the window (docs/cluster.md, "Proxy I/O"). Sent as a SEND on the
// fabric beside the agents' frames; the fabric task tells it from a frame by its length and magic.
// |0 magic u32 "HELO"|4 flags u32 (bit 0: answer with yours)|8 key u32|12 the sender's active routing-table version u32|
// |16 region base u64|24 length u64| (a board that started again learns from it that its table is behind: table_sync.ts)
// Read and written only through the accessors below. The fuzz targets' hostile boards forge and read hellos with
// tools/fuzz/fabric_hello.ts: test/unit/fabric/shared_constants.test.ts checks that every constant here agrees.
export const FABRIC_HELLO_BYTES: u32 = 32;
export const FABRIC_HELLO_MAGIC: u32 = 0x4f4c4548; // "HELO" little-endian; a frame starts with its version, 1
export const FABRIC_HELLO_ANSWER: u32 = 1; // the flag: answer with your own hello (the sender has just started)

export const FABRIC_HELLO_AT_MAGIC: usize = 0;
export const FABRIC_HELLO_AT_FLAGS: usize = 4;
export const FABRIC_HELLO_AT_KEY: usize = 8;
export const FABRIC_HELLO_AT_TABLE_VERSION: usize = 12;
export const FABRIC_HELLO_AT_REGION_BASE: usize = 16;
export const FABRIC_HELLO_AT_REGION_LENGTH: usize = 24;
if (FABRIC_HELLO_AT_REGION_LENGTH + 8 != FABRIC_HELLO_BYTES) ERROR("fabric hello: the last field ends the hello");

@inline export function helloMagic(at: usize): u32 { return load<u32>(at, FABRIC_HELLO_AT_MAGIC); }
@inline export function helloFlags(at: usize): u32 { return load<u32>(at, FABRIC_HELLO_AT_FLAGS); }
@inline export function helloKey(at: usize): u32 { return load<u32>(at, FABRIC_HELLO_AT_KEY); }
@inline export function helloTableVersion(at: usize): u32 { return load<u32>(at, FABRIC_HELLO_AT_TABLE_VERSION); }
@inline export function helloSetTableVersion(at: usize, version: u32): void { store<u32>(at, version, FABRIC_HELLO_AT_TABLE_VERSION); }
@inline export function helloRegionBase(at: usize): u64 { return load<u64>(at, FABRIC_HELLO_AT_REGION_BASE); }
@inline export function helloRegionLength(at: usize): u64 { return load<u64>(at, FABRIC_HELLO_AT_REGION_LENGTH); }

/** A whole hello at `at` (FABRIC_HELLO_BYTES), its table version 0 (set before each send: helloSetTableVersion). */
@inline export function helloSet(at: usize, flags: u32, key: u32, regionBase: u64, regionLength: u64): void {
  memory.fill(at, 0, FABRIC_HELLO_BYTES);
  store<u32>(at, FABRIC_HELLO_MAGIC, FABRIC_HELLO_AT_MAGIC);
  store<u32>(at, flags, FABRIC_HELLO_AT_FLAGS);
  store<u32>(at, key, FABRIC_HELLO_AT_KEY);
  store<u64>(at, regionBase, FABRIC_HELLO_AT_REGION_BASE);
  store<u64>(at, regionLength, FABRIC_HELLO_AT_REGION_LENGTH);
}
