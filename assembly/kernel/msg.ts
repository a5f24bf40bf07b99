// The kernel message: a 32-byte record copied by value into task inboxes.
// |0 kind u16|2 source u16|4 a u32|8 b u32|12 c u32|16 d u64|24 e u64|
// Agent-to-agent message frames (the seed design's one frame format) travel as a frame index in `a`.

export enum MsgKind {
  None = 0,
  Timer = 1, // a: timer id, b: tag
  Irq = 2, // a: vector
  User = 16, // first kind a task defines for itself
}

@unmanaged
export class Msg {
  kind: u16 = 0;
  source: u16 = 0;
  a: u32 = 0;
  b: u32 = 0;
  c: u32 = 0;
  d: u64 = 0;
  e: u64 = 0;

  set(kind: u32, source: u32, a: u32, b: u32): Msg {
    this.kind = <u16>kind;
    this.source = <u16>source;
    this.a = a;
    this.b = b;
    this.c = 0;
    this.d = 0;
    this.e = 0;
    return this;
  }
}
