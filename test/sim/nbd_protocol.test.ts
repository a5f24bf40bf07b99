// The NBD server's protocol on the board clock, with a scripted client (test/support/nbd_client.ts) on a loopback
// network: what proto.md says a server must answer, it does, and hostile input gets the protocol's error or a closed
// connection while other clients keep working and no data is lost:
// - the handshake: the greeting's bytes; a client without fixed newstyle, or an option with a bad magic, is closed;
//   STARTTLS, unknown options, SET_META_CONTEXT before STRUCTURED_REPLY, STRUCTURED_REPLY twice, malformed GO data,
//   unknown exports and oversized options get their NBD_REP_ERR_*, and the negotiation goes on after each;
// - transmission: written data reads back; reads and writes past the end, off the block size, unknown commands and
//   block status without a context get EINVAL/ENOSPC (a refused write's payload is skipped, the stream stays in step);
//   a read-only export answers EPERM; a bad request magic closes that connection only;
// - a flood of 600 pipelined requests on one connection is answered in full (it stops reading while it has as many
//   in flight as it may, so the SCSI target's records are never exhausted for the others), and a second client is
//   served meanwhile; NBD_CMD_DISC answers what is in flight, then closes.
import { beforeAll, describe, expect, it } from "vitest";
import { Prng } from "../../host/sim/prng.ts";
import { bootIscsiBoard, type IscsiEnv } from "../support/iscsi_board.ts";
import { Cmd, Err, FLAG_FUA, goData, metaData, NbdClient, Opt, option, Rep, request } from "../support/nbd_client.ts";

const DISK_BYTES = 16 << 20;
let env: IscsiEnv;

function pattern(seed: string, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  new Prng(seed).fill(data);
  return data;
}

describe("NBD protocol on the board clock", () => {
  beforeAll(() => {
    env = bootIscsiBoard({ nbd: { exports: [{ name: "d0", volume: 0 }, { name: "d1", volume: "sp1-disk0" }, { name: "ro", volume: 1, readOnly: true }] } });
  }, 60_000);

  it("greets in fixed newstyle and closes a client that is not", () => {
    const c = new NbdClient(env.board, env.network);
    expect(c.greet(0)).toBe(3); // FIXED_NEWSTYLE | NO_ZEROES; we answered without FIXED_NEWSTYLE
    expect(c.closedByServer()).toBe(true);
  });

  it("closes on an option with a bad magic", () => {
    const c = new NbdClient(env.board, env.network);
    c.greet();
    c.send(option(Opt.List, undefined, 0x1122334455667788n));
    expect(c.closedByServer()).toBe(true);
  });

  it("answers every option it refuses with its error, and negotiates on", () => {
    const c = new NbdClient(env.board, env.network);
    c.greet();
    expect(c.option(Opt.StartTls).map((r) => r.type)).toEqual([Rep.ErrUnsup]);
    expect(c.option(99).map((r) => r.type)).toEqual([Rep.ErrUnsup]);
    expect(c.option(Opt.SetMetaContext, metaData("d0", ["base:allocation"])).map((r) => r.type)).toEqual([Rep.ErrInvalid]);
    expect(c.option(Opt.StructuredReply).map((r) => r.type)).toEqual([Rep.Ack]);
    expect(c.option(Opt.StructuredReply).map((r) => r.type)).toEqual([Rep.ErrInvalid]);
    expect(c.option(Opt.StructuredReply, new Uint8Array(1)).map((r) => r.type)).toEqual([Rep.ErrInvalid]);
    expect(c.option(Opt.Go, goData("nope")).map((r) => r.type)).toEqual([Rep.ErrUnknown]);
    expect(c.option(Opt.Go, goData("d0").subarray(0, 5)).map((r) => r.type)).toEqual([Rep.ErrInvalid]);
    expect(c.option(Opt.Info, new Uint8Array(8192)).map((r) => r.type)).toEqual([Rep.ErrTooBig]);
    expect(c.option(Opt.List).map((r) => r.type)).toEqual([Rep.Server, Rep.Server, Rep.Server, Rep.Ack]);
    expect(c.option(Opt.List, new Uint8Array(4)).map((r) => r.type)).toEqual([Rep.ErrInvalid]);
    const meta = c.option(Opt.SetMetaContext, metaData("d0", ["base:allocation", "qemu:dirty-bitmap:x"]));
    expect(meta.map((r) => r.type)).toEqual([Rep.MetaContext, Rep.Ack]);
    const go = c.option(Opt.Go, goData("d0", [3]));
    expect(go.at(-1)!.type).toBe(Rep.Ack);
    const export_ = go.find((r) => r.type === Rep.Info && new DataView(r.data.buffer).getUint16(0) === 0)!;
    expect(new DataView(export_.data.buffer).getBigUint64(2)).toBe(BigInt(DISK_BYTES));
    const sizes = go.find((r) => r.type === Rep.Info && new DataView(r.data.buffer).getUint16(0) === 3)!;
    expect(new DataView(sizes.data.buffer).getUint32(2)).toBe(512); // minimum: the volume's block
    c.structured = true;
    c.send(request(Cmd.Read, 7n, 0n, 4096));
    const r = c.reply()!;
    expect([r.cookie, r.error, r.data.length]).toEqual([7n, 0, 4096]);
  });

  it("reads back what it wrote, and answers bad requests with their error without losing step", () => {
    const c = new NbdClient(env.board, env.network);
    expect(c.open("d1")).toBe(BigInt(DISK_BYTES));
    const data = pattern("nbd/write", 64 << 10);
    c.send(request(Cmd.Write, 1n, 1n << 20n, data.length, FLAG_FUA, data));
    expect(c.reply()).toMatchObject({ cookie: 1n, error: 0 });
    c.send(request(Cmd.Read, 2n, BigInt(DISK_BYTES - 512), 1024)); // past the end
    c.send(request(Cmd.Write, 3n, BigInt(DISK_BYTES), 4096, 0, new Uint8Array(4096).fill(0xee))); // past the end, with payload
    c.send(request(Cmd.Read, 4n, 100n, 512)); // off the block size
    c.send(request(Cmd.Write, 5n, 0n, 700, 0, new Uint8Array(700).fill(0xee))); // off the block size, with payload
    c.send(request(42, 6n, 0n, 512)); // no such command
    c.send(request(Cmd.Flush, 8n, 0n, 0));
    c.send(request(Cmd.Read, 9n, 1n << 20n, data.length));
    const replies = new Map<bigint, { error: number; data: Uint8Array }>();
    for (let i = 0; i < 7; i++) {
      const r = c.reply()!;
      replies.set(r.cookie, r);
    }
    expect([2n, 3n, 4n, 5n, 6n, 8n].map((k) => replies.get(k)!.error)).toEqual([Err.EINVAL, Err.ENOSPC, Err.EINVAL, Err.EINVAL, Err.EINVAL, 0]);
    expect(replies.get(9n)!.error).toBe(0);
    expect(Buffer.from(replies.get(9n)!.data).equals(Buffer.from(data))).toBe(true);
  });

  it("refuses writes on a read-only export with EPERM and still reads it", () => {
    const c = new NbdClient(env.board, env.network);
    c.open("ro");
    c.send(request(Cmd.Write, 1n, 0n, 512, 0, new Uint8Array(512)));
    c.send(request(Cmd.Trim, 2n, 0n, 4096));
    c.send(request(Cmd.Read, 3n, 1n << 20n, 512));
    const replies = [c.reply()!, c.reply()!, c.reply()!].sort((a, b) => Number(a.cookie - b.cookie));
    expect(replies.map((r) => r.error)).toEqual([Err.EPERM, Err.EPERM, 0]);
  });

  it("closes a connection whose request has a bad magic; another client is served meanwhile", () => {
    const bad = new NbdClient(env.board, env.network);
    bad.open("d0");
    const good = new NbdClient(env.board, env.network);
    good.open("d0");
    bad.send(request(Cmd.Read, 1n, 0n, 512, 0, new Uint8Array(0), 0xdeadbeef));
    good.send(request(Cmd.Read, 2n, 0n, 512));
    expect(bad.closedByServer()).toBe(true);
    expect(good.reply()).toMatchObject({ cookie: 2n, error: 0 });
    expect(good.client.closed).toBe(false);
  });

  it("answers a flood of 600 pipelined requests in full while another client is served", () => {
    const flood = new NbdClient(env.board, env.network);
    flood.open("d0");
    const other = new NbdClient(env.board, env.network);
    other.open("d1");
    const requests: Uint8Array[] = [];
    for (let i = 0; i < 600; i++) requests.push(request(i % 3 === 0 ? Cmd.Flush : Cmd.Read, BigInt(i), i % 3 === 0 ? 0n : BigInt((i * 4096) % DISK_BYTES), i % 3 === 0 ? 0 : 4096));
    flood.send(new Uint8Array(Buffer.concat(requests)));
    other.send(request(Cmd.Read, 1000n, 0n, 4096));
    expect(other.reply()).toMatchObject({ cookie: 1000n, error: 0 });
    const cookies = new Set<bigint>();
    for (let i = 0; i < 600; i++) {
      const r = flood.reply();
      expect(r, `reply ${i}`).toBeDefined();
      expect(r!.error).toBe(0);
      cookies.add(r!.cookie);
    }
    expect(cookies.size).toBe(600);
  });

  it("batches short replies: 32 pipelined 4 KiB reads and writes come back whole, in far fewer NIC entries than replies", () => {
    const c = new NbdClient(env.board, env.network);
    c.open("d1");
    const data = pattern("nbd/batch", 32 * 4096);
    const writes: Uint8Array[] = [];
    for (let i = 0; i < 32; i++) writes.push(request(Cmd.Write, BigInt(i), BigInt(i * 4096), 4096, 0, data.subarray(i * 4096, (i + 1) * 4096)));
    const nic = env.board.nics[0]!;
    const eventsBefore = nic.stats.eventsWritten;
    c.send(new Uint8Array(Buffer.concat(writes)));
    for (let i = 0; i < 32; i++) expect(c.reply(), `write reply ${i}`).toMatchObject({ error: 0 });
    const reads: Uint8Array[] = [];
    for (let i = 0; i < 32; i++) reads.push(request(Cmd.Read, BigInt(100 + i), BigInt(i * 4096), 4096));
    c.send(new Uint8Array(Buffer.concat(reads)));
    const got = new Map<bigint, Uint8Array>();
    for (let i = 0; i < 32; i++) {
      const r = c.reply()!;
      expect(r.error).toBe(0);
      got.set(r.cookie, r.data);
    }
    for (let i = 0; i < 32; i++) expect(Buffer.from(got.get(BigInt(100 + i))!).equals(Buffer.from(data.subarray(i * 4096, (i + 1) * 4096))), `read ${i}`).toBe(true);
    // Unbatched, every write reply is a NIC entry and every read reply two, each ending in a Sent event: 96 events
    // besides the Received ones. Batched, a turn's replies on the connection go in entries of up to 32 KiB.
    expect(nic.stats.eventsWritten - eventsBefore).toBeLessThan(48);
    c.client.end();
    env.board.runFor(10_000_000);
  });

  it("NBD_CMD_DISC answers the requests in flight, then closes", () => {
    const c = new NbdClient(env.board, env.network);
    c.open("d0");
    c.send(new Uint8Array(Buffer.concat([request(Cmd.Read, 1n, 0n, 65536), request(Cmd.Disc, 2n, 0n, 0)])));
    expect(c.reply()).toMatchObject({ cookie: 1n, error: 0 });
    expect(c.closedByServer()).toBe(true);
  });

  it("keeps at most 16 NBD connections: the 17th is closed before its greeting, and one more fits once one ends", () => {
    const clients: NbdClient[] = [];
    for (let i = 0; i < 20; i++) clients.push(new NbdClient(env.board, env.network));
    env.board.runFor(50_000_000);
    const greeted = clients.filter((c) => c.client.received().length >= 18 && !c.client.closed);
    const refused = clients.filter((c) => c.client.closed && c.client.received().length === 0);
    expect(greeted.length + refused.length).toBe(20);
    expect(refused.length).toBeGreaterThanOrEqual(4); // the earlier tests' connections count too
    greeted[0]!.client.end();
    env.board.runFor(50_000_000);
    const late = new NbdClient(env.board, env.network);
    expect(late.greet()).toBe(3);
    for (const c of greeted) c.client.end();
    late.client.end();
    env.board.runFor(50_000_000);
  });

  it("reports allocation through block status (a plain disk: all data) and refuses it without a context", () => {
    const c = new NbdClient(env.board, env.network);
    c.open("d0");
    c.send(request(Cmd.BlockStatus, 1n, 0n, 1 << 20));
    const r = c.reply()!;
    expect(r.type).toBe(5);
    const v = new DataView(r.data.buffer);
    expect([v.getUint32(0), v.getUint32(4) > 0, v.getUint32(4) <= 1 << 20, v.getUint32(8)]).toEqual([1, true, true, 0]);
    const plain = new NbdClient(env.board, env.network);
    plain.greet();
    plain.option(Opt.StructuredReply);
    plain.option(Opt.Go, goData("d0"));
    plain.structured = true;
    plain.send(request(Cmd.BlockStatus, 3n, 0n, 4096));
    expect(plain.reply()).toMatchObject({ cookie: 3n, error: Err.EINVAL });
  });
});
