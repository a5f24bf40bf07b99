// Transmit entry ids, for every transport on the NIC: |31..24 kind|23..16 connection|15..0 value|. The NIC echoes the
// id in its Sent event, which says what to give back: a header slot (iSCSI), a page buffer, one piece of a command, or a
// large buffer.
export const TX_KIND_SLOT: u32 = 1; // a header slot of the connection (iSCSI)
export const TX_KIND_TASK: u32 = 2; // a piece of a command's answer (value: the task)
export const TX_KIND_PAGE: u32 = 3; // a page buffer holding bytes to send (value: the buffer)
export const TX_KIND_LARGE: u32 = 4; // a large buffer holding bytes to send (value: the buffer; NBD's reply batches)

@inline export function txId(kind: u32, connection: u32, value: u32): u32 { return (kind << 24) | (connection << 16) | (value & 0xffff); }
@inline export function txIdKind(id: u32): u32 { return id >>> 24; }
@inline export function txIdConnection(id: u32): u32 { return (id >>> 16) & 0xff; }
@inline export function txIdValue(id: u32): u32 { return id & 0xffff; }
