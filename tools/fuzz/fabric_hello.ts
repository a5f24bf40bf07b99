// The fabric hello (assembly/fabric/hello.ts), as the fuzz targets' hostile boards forge and read it: a board's SEND
// of FABRIC_HELLO_BYTES that names its data buffers' region and key.
// |0 magic u32 "HELO"|4 flags u32 (bit 0: answer with yours)|8 key u32|12 the sender's routing-table version u32|
// |16 region base u64|24 length u64|
// The firmware cannot import this file, so test/unit/fabric/shared_constants.test.ts reads the firmware's constants
// from its source and checks that every one below agrees, name for name.
export const FABRIC_HELLO_BYTES = 32;
export const FABRIC_HELLO_MAGIC = 0x4f4c4548; // "HELO" little-endian
export const FABRIC_HELLO_ANSWER = 1;

export const FABRIC_HELLO_AT_MAGIC = 0;
export const FABRIC_HELLO_AT_FLAGS = 4;
export const FABRIC_HELLO_AT_KEY = 8;
export const FABRIC_HELLO_AT_TABLE_VERSION = 12;
export const FABRIC_HELLO_AT_REGION_BASE = 16;
export const FABRIC_HELLO_AT_REGION_LENGTH = 24;

export interface FabricHello {
  flags: number; // FABRIC_HELLO_ANSWER: the sender asks for the receiver's hello
  key: number;
  regionBase: bigint;
  regionLength: bigint;
  tableVersion?: number; // the sender's active routing-table version (0 when absent)
}

/** The hello's bytes (little-endian). */
export function encodeFabricHello(hello: FabricHello): Uint8Array {
  const bytes = new Uint8Array(FABRIC_HELLO_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(FABRIC_HELLO_AT_MAGIC, FABRIC_HELLO_MAGIC, true);
  view.setUint32(FABRIC_HELLO_AT_FLAGS, hello.flags, true);
  view.setUint32(FABRIC_HELLO_AT_KEY, hello.key, true);
  view.setUint32(FABRIC_HELLO_AT_TABLE_VERSION, hello.tableVersion ?? 0, true);
  view.setBigUint64(FABRIC_HELLO_AT_REGION_BASE, hello.regionBase, true);
  view.setBigUint64(FABRIC_HELLO_AT_REGION_LENGTH, hello.regionLength, true);
  return bytes;
}

/** The hello a SEND's bytes carry, or undefined when they are not one (another length, or no magic): a frame. */
export function decodeFabricHello(data: Uint8Array): FabricHello | undefined {
  if (data.length !== FABRIC_HELLO_BYTES) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  if (view.getUint32(FABRIC_HELLO_AT_MAGIC, true) !== FABRIC_HELLO_MAGIC) return undefined;
  return {
    flags: view.getUint32(FABRIC_HELLO_AT_FLAGS, true),
    key: view.getUint32(FABRIC_HELLO_AT_KEY, true),
    tableVersion: view.getUint32(FABRIC_HELLO_AT_TABLE_VERSION, true),
    regionBase: view.getBigUint64(FABRIC_HELLO_AT_REGION_BASE, true),
    regionLength: view.getBigUint64(FABRIC_HELLO_AT_REGION_LENGTH, true),
  };
}
