// Where one piece of a volume request lands: a member disk (its processor and index there) and the LBA on it.
export class Extent {
  member: u32 = 0; // the member's index in its volume
  processor: u32 = 0;
  disk: u32 = 0;
  lba: u64 = 0; // on the disk
  blocks: u64 = 0; // of the request that fit this piece
}
