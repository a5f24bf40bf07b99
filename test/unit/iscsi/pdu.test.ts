// iSCSI PDU headers (RFC 7143, iSCSI PDU Formats): every builder's 48 bytes against a layout written out here from
// the RFC's drawings, field by field with distinct values so a field at the wrong offset shows; the check of
// initiator headers, one case per PduCheck with the Reject reason (RFC 7143, Reason) or login status it maps to; and
// random headers never stopping the processor. The probes build and check in the test build's scratch RAM.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { iscsiScratch, testBoard } from "../../support/board.ts";

const BHS = 48;
const RESERVED = 0xffffffff;


/** A 48-byte header from [offset, width, value] fields, big-endian; everything else zero. */
function golden(fields: [number, number, number | bigint][]): Uint8Array {
  const bytes = new Uint8Array(BHS);
  for (const [offset, width, value] of fields) {
    let v = BigInt(value);
    for (let i = width - 1; i >= 0; i--) { bytes[offset + i] = Number(v & 0xffn); v >>= 8n; }
  }
  return bytes;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").replace(/(.{8})/g, "$1 ").trim();

describe("BHS builders", () => {
  const t = testBoard();
  const s = iscsiScratch(t);
  const built = (fn: string, ...args: unknown[]) => {
    s.fill(0, BHS, 0xee); // every byte must be written
    t.call(fn, s.base, ...args);
    return hex(s.read(0, BHS));
  };

  it("SCSI Response: flags, response, status, numbers, residuals", () => {
    expect(built("testIscsiBuildScsiResponse", 0x11223344, 0x01, 0x02, 0x02, 0x200, 0x300, 0x01020304, 0x05060708, 0x090a0b0c, 3, 20))
      .toBe(hex(golden([[0, 1, 0x21], [1, 1, 0x82], [2, 1, 0x01], [3, 1, 0x02], [5, 3, 20], [16, 4, 0x11223344],
        [24, 4, 0x01020304], [28, 4, 0x05060708], [32, 4, 0x090a0b0c], [36, 4, 3], [40, 4, 0x300], [44, 4, 0x200]])));
    expect(built("testIscsiBuildScsiResponse", 7, 0, 0, 0x14, 8, 0, 1, 2, 3, 0, 0))
      .toBe(hex(golden([[0, 1, 0x21], [1, 1, 0x94], [16, 4, 7], [24, 4, 1], [28, 4, 2], [32, 4, 3], [44, 4, 8]])));
  });

  it("SCSI Data-In: plain, and with phase-collapsed status (S) and underflow", () => {
    expect(built("testIscsiBuildDataIn", 0n, 0xaabbccdd, RESERVED, 5, 0x10000, 4096, 0, 0, 0, 0, 0, 0, 0, 0x21, 0x22))
      .toBe(hex(golden([[0, 1, 0x25], [1, 1, 0x00], [5, 3, 4096], [16, 4, 0xaabbccdd], [20, 4, RESERVED], [28, 4, 0x21],
        [32, 4, 0x22], [36, 4, 5], [40, 4, 0x10000]])));
    expect(built("testIscsiBuildDataIn", 0x0001000000000000n, 9, 0x77, 6, 8192, 100, 1, 1, 1, 0x02, 0x02, 412, 0x31, 0x32, 0x33))
      .toBe(hex(golden([[0, 1, 0x25], [1, 1, 0xc3], [3, 1, 0x02], [5, 3, 100], [8, 8, 0x0001000000000000n], [16, 4, 9],
        [20, 4, 0x77], [24, 4, 0x31], [28, 4, 0x32], [32, 4, 0x33], [36, 4, 6], [40, 4, 8192], [44, 4, 412]])));
    expect(built("testIscsiBuildDataIn", 0n, 1, RESERVED, 0, 0, 512, 1, 0, 1, 0, 0x04, 12, 5, 6, 7))
      .toBe(hex(golden([[0, 1, 0x25], [1, 1, 0x85], [5, 3, 512], [16, 4, 1], [20, 4, RESERVED], [24, 4, 5], [28, 4, 6],
        [32, 4, 7], [44, 4, 12]])));
  });

  it("R2T: LUN, tags, R2TSN, offset and desired length", () => {
    expect(built("testIscsiBuildR2t", 0x0002000000000000n, 0x10, 0x20, 0x30, 0x40, 0x50, 2, 65536, 262144))
      .toBe(hex(golden([[0, 1, 0x31], [1, 1, 0x80], [8, 8, 0x0002000000000000n], [16, 4, 0x10], [20, 4, 0x20],
        [24, 4, 0x30], [28, 4, 0x40], [32, 4, 0x50], [36, 4, 2], [40, 4, 65536], [44, 4, 262144]])));
  });

  it("NOP-In: an answer (ITT, TTT reserved) and a ping (ITT reserved)", () => {
    expect(built("testIscsiBuildNopIn", 0n, 0x1234, RESERVED, 1, 2, 3, 16))
      .toBe(hex(golden([[0, 1, 0x20], [1, 1, 0x80], [5, 3, 16], [16, 4, 0x1234], [20, 4, RESERVED], [24, 4, 1], [28, 4, 2], [32, 4, 3]])));
    expect(built("testIscsiBuildNopIn", 0x0003000000000000n, RESERVED, 0x99, 1, 2, 3, 0))
      .toBe(hex(golden([[0, 1, 0x20], [1, 1, 0x80], [8, 8, 0x0003000000000000n], [16, 4, RESERVED], [20, 4, 0x99],
        [24, 4, 1], [28, 4, 2], [32, 4, 3]])));
  });

  it("Task Management Function Response", () => {
    expect(built("testIscsiBuildTmfResponse", 0x42, 5, 10, 11, 12))
      .toBe(hex(golden([[0, 1, 0x22], [1, 1, 0x80], [2, 1, 5], [16, 4, 0x42], [24, 4, 10], [28, 4, 11], [32, 4, 12]])));
  });

  it("Logout Response with Time2Wait and Time2Retain", () => {
    expect(built("testIscsiBuildLogoutResponse", 0x43, 0, 10, 11, 12, 2, 20))
      .toBe(hex(golden([[0, 1, 0x26], [1, 1, 0x80], [16, 4, 0x43], [24, 4, 10], [28, 4, 11], [32, 4, 12], [40, 2, 2], [42, 2, 20]])));
  });

  it("Reject carries the rejected header as its data", () => {
    const rejected = Uint8Array.from({ length: BHS }, (_, i) => i + 1);
    const at = s.write(1024, rejected);
    s.fill(0, BHS, 0xee);
    t.call("testIscsiBuildReject", s.base, s.base + 512, at, BHS, 0x04, 100, 101, 108, 0);
    expect(hex(s.read(0, BHS))).toBe(hex(golden([[0, 1, 0x3f], [1, 1, 0x80], [2, 1, 0x04], [5, 3, BHS], [16, 4, RESERVED],
      [24, 4, 100], [28, 4, 101], [32, 4, 108]])));
    expect(s.read(512, BHS)).toEqual(rejected);
  });

  it("Login Response: T, CSG/NSG, versions, ISID, TSIH, status", () => {
    expect(built("testIscsiBuildLoginResponse", 1, 0, 1, 3, 0x023d00000001n, 0x0102, 0x77, 1000, 5, 36, 0, 200))
      .toBe(hex(golden([[0, 1, 0x23], [1, 1, 0x87], [5, 3, 200], [8, 6, 0x023d00000001n], [14, 2, 0x0102], [16, 4, 0x77],
        [24, 4, 1000], [28, 4, 5], [32, 4, 36]])));
    // A failure: no transit, NSG not written, class and detail at 36 and 37.
    expect(built("testIscsiBuildLoginResponse", 0, 0, 0, 1, 0x800000000000n, 0, 0x78, 0, 0, 0, 0x0201, 0))
      .toBe(hex(golden([[0, 1, 0x23], [1, 1, 0x00], [8, 6, 0x800000000000n], [16, 4, 0x78], [36, 1, 2], [37, 1, 1]])));
    // Continue: C without T.
    expect(built("testIscsiBuildLoginResponse", 0, 1, 1, 0, 0n, 9, 1, 2, 3, 4, 0, 8192).slice(0, 8)).toBe("23440000");
  });

  it("Text Response: F, C and the transfer tag", () => {
    expect(built("testIscsiBuildTextResponse", 1, 0, 0n, 0x55, RESERVED, 7, 8, 9, 64))
      .toBe(hex(golden([[0, 1, 0x24], [1, 1, 0x80], [5, 3, 64], [16, 4, 0x55], [20, 4, RESERVED], [24, 4, 7], [28, 4, 8], [32, 4, 9]])));
    expect(built("testIscsiBuildTextResponse", 0, 1, 0n, 0x55, 0x1000, 7, 8, 9, 8192))
      .toBe(hex(golden([[0, 1, 0x24], [1, 1, 0x40], [5, 3, 8192], [16, 4, 0x55], [20, 4, 0x1000], [24, 4, 7], [28, 4, 8], [32, 4, 9]])));
  });

  it("Asynchronous Message: event, code and three parameters", () => {
    expect(built("testIscsiBuildAsyncMessage", 0x0001000000000000n, 20, 21, 22, 1, 0, 0, 0, 5, 0))
      .toBe(hex(golden([[0, 1, 0x32], [1, 1, 0x80], [8, 8, 0x0001000000000000n], [16, 4, RESERVED], [24, 4, 20], [28, 4, 21],
        [32, 4, 22], [36, 1, 1], [42, 2, 5]])));
    expect(built("testIscsiBuildAsyncMessage", 0n, 1, 2, 3, 2, 0x7f, 0x0101, 2, 20, 0))
      .toBe(hex(golden([[0, 1, 0x32], [1, 1, 0x80], [16, 4, RESERVED], [24, 4, 1], [28, 4, 2], [32, 4, 3], [36, 1, 2], [37, 1, 0x7f],
        [38, 2, 0x0101], [40, 2, 2], [42, 2, 20]])));
  });

  it("sense segment: a 2-byte SenseLength before the sense bytes", () => {
    const sense = Uint8Array.from([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0]);
    const at = s.write(2048, sense);
    expect(t.call("testIscsiSenseSegment", s.base + 4096, at, sense.length)).toBe(20);
    expect(s.read(4096, 20)).toEqual(Uint8Array.from([0, 18, ...sense]));
  });

  it("LUNs: peripheral addressing below 256, flat space above, other forms refused", () => {
    expect(t.call("testIscsiLunEncode", 0)).toBe(0n);
    expect(t.call("testIscsiLunEncode", 5)).toBe(0x0005000000000000n);
    expect(t.call("testIscsiLunEncode", 300)).toBe(0x412c000000000000n);
    for (const lun of [0, 1, 255, 256, 16383]) expect(t.call("testIscsiLunDecode", t.call("testIscsiLunEncode", lun))).toBe(lun);
    expect(t.call("testIscsiLunDecode", 0x0105000000000000n)).toBe(RESERVED); // peripheral, bus 1
    expect(t.call("testIscsiLunDecode", 0x0005000000000001n)).toBe(RESERVED); // a second level
    expect(t.call("testIscsiLunDecode", 0x8005000000000000n)).toBe(RESERVED); // logical unit addressing
    expect(t.stops).toEqual([]);
  });
});

// PduCheck values (assembly/tts/iscsi/pdu.ts) and PduPhase.
const Check = {
  Ok: 0, OpcodeUnknown: 1, OpcodeFromTarget: 2, AhsNotAllowed: 3, DataSegmentTooLong: 4, DataSegmentNotAllowed: 5,
  ImmediateNotAllowed: 6, FinalBitClear: 7, TextContinueAndFinal: 8, LoginInFullFeature: 9, NotLoginDuringLogin: 10,
  NotInDiscovery: 11, LogoutReasonInvalid: 12, SnackTypeInvalid: 13, NopOutUnanswerable: 14, ScsiCommandFlagsInvalid: 15,
  AhsMalformed: 16,
} as const;
const Phase = { Login: 0, Normal: 1, Discovery: 2 } as const;

describe("checking initiator headers", () => {
  const t = testBoard();
  const s = iscsiScratch(t);
  const check = (fields: [number, number, number | bigint][], phase: number = Phase.Normal, mrdsl = 8192) => {
    s.write(0, golden(fields));
    return t.call("testIscsiValidate", s.base, mrdsl, phase) as number;
  };

  it("accepts well-formed PDUs of every initiator opcode", () => {
    expect(check([[0, 1, 0x40], [1, 1, 0x80], [16, 4, 1]])).toBe(Check.Ok); // NOP-Out ping, immediate
    expect(check([[0, 1, 0x00], [1, 1, 0x80], [16, 4, RESERVED]], Phase.Normal)).toBe(Check.NopOutUnanswerable);
    expect(check([[0, 1, 0x01], [1, 1, 0xa1], [5, 3, 4096], [20, 4, 4096]])).toBe(Check.Ok); // SCSI write, simple
    expect(check([[0, 1, 0x01], [1, 1, 0xc1], [4, 1, 2]])).toBe(Check.Ok); // SCSI command with 8 bytes of AHS
    expect(check([[0, 1, 0x42], [1, 1, 0x81]])).toBe(Check.Ok); // TMF abort task
    expect(check([[0, 1, 0x04], [1, 1, 0x80], [5, 3, 16]])).toBe(Check.Ok); // Text
    expect(check([[0, 1, 0x05], [1, 1, 0x80], [5, 3, 8192]])).toBe(Check.Ok); // Data-Out
    expect(check([[0, 1, 0x46], [1, 1, 0x80]])).toBe(Check.Ok); // Logout, close session
    expect(check([[0, 1, 0x10], [1, 1, 0x81]])).toBe(Check.Ok); // SNACK status
    expect(check([[0, 1, 0x43], [1, 1, 0x81], [5, 3, 100]], Phase.Login)).toBe(Check.Ok); // Login
    expect(check([[0, 1, 0x04], [1, 1, 0x80]], Phase.Discovery)).toBe(Check.Ok);
  });

  it("names each fault, with RFC 7143's Reject reason (or the login status during login)", () => {
    const cases: [string, number, number, [number, number, number | bigint][], number?][] = [
      ["unknown opcode", Check.OpcodeUnknown, 0x05, [[0, 1, 0x07], [1, 1, 0x80]]],
      ["vendor-specific opcode", Check.OpcodeUnknown, 0x05, [[0, 1, 0x1c], [1, 1, 0x80]]],
      ["target opcode", Check.OpcodeFromTarget, 0x04, [[0, 1, 0x21], [1, 1, 0x80]]],
      ["AHS on a NOP-Out", Check.AhsNotAllowed, 0x04, [[0, 1, 0x40], [1, 1, 0x80], [4, 1, 1]]],
      ["data beyond MaxRecvDataSegmentLength", Check.DataSegmentTooLong, 0x04, [[0, 1, 0x05], [1, 1, 0x80], [5, 3, 8193]]],
      ["data on a TMF request", Check.DataSegmentNotAllowed, 0x04, [[0, 1, 0x02], [1, 1, 0x81], [5, 3, 4]]],
      ["data on a Logout", Check.DataSegmentNotAllowed, 0x04, [[0, 1, 0x06], [1, 1, 0x80], [5, 3, 4]]],
      ["I on a Data-Out", Check.ImmediateNotAllowed, 0x09, [[0, 1, 0x45], [1, 1, 0x80]]],
      ["I on a SNACK", Check.ImmediateNotAllowed, 0x09, [[0, 1, 0x50], [1, 1, 0x80]]],
      ["F clear on a NOP-Out", Check.FinalBitClear, 0x09, [[0, 1, 0x40], [1, 1, 0x00], [16, 4, 1]]],
      ["bit 7 clear on a TMF", Check.FinalBitClear, 0x09, [[0, 1, 0x02], [1, 1, 0x01]]],
      ["Text with C and F", Check.TextContinueAndFinal, 0x04, [[0, 1, 0x04], [1, 1, 0xc0]]],
      ["Login after login", Check.LoginInFullFeature, 0x04, [[0, 1, 0x43], [1, 1, 0x87]]],
      ["SCSI command on a discovery session", Check.NotInDiscovery, 0x04, [[0, 1, 0x01], [1, 1, 0x81]], Phase.Discovery],
      ["Logout reason 3", Check.LogoutReasonInvalid, 0x09, [[0, 1, 0x06], [1, 1, 0x83]]],
      ["SNACK type 4", Check.SnackTypeInvalid, 0x09, [[0, 1, 0x10], [1, 1, 0x84]]],
      ["NOP-Out without answer, not immediate", Check.NopOutUnanswerable, 0x09, [[0, 1, 0x00], [1, 1, 0x80], [16, 4, RESERVED]]],
      ["task attribute 5", Check.ScsiCommandFlagsInvalid, 0x09, [[0, 1, 0x01], [1, 1, 0x85]]],
    ];
    for (const [name, expected, reason, fields, phase] of cases) {
      const got = check(fields, phase ?? Phase.Normal);
      expect(got, name).toBe(expected);
      expect(t.call("testIscsiRejectReason", got), name).toBe(reason);
    }
    // During login: anything but a Login Request, and a login with AHS or too much data.
    expect(check([[0, 1, 0x01], [1, 1, 0x81]], Phase.Login)).toBe(Check.NotLoginDuringLogin);
    expect(check([[0, 1, 0x21], [1, 1, 0x80]], Phase.Login)).toBe(Check.NotLoginDuringLogin);
    expect(check([[0, 1, 0x43], [1, 1, 0x81], [4, 1, 1]], Phase.Login)).toBe(Check.AhsNotAllowed);
    expect(check([[0, 1, 0x43], [1, 1, 0x81], [5, 3, 8193]], Phase.Login)).toBe(Check.DataSegmentTooLong);
    expect(t.call("testIscsiRejectReason", Check.Ok)).toBe(0);
  });

  it("checks AHS entries: lengths within TotalAHSLength, known types only", () => {
    const ahs = (bytes: number[]) => t.call("testIscsiValidateAhs", s.write(512, Uint8Array.from(bytes)), bytes.length);
    expect(ahs([0, 5, 2, 0, 0, 0, 0x10, 0])).toBe(Check.Ok); // bidirectional read length
    expect(ahs([0, 17, 1, 0, ...new Array(16).fill(0)])).toBe(Check.Ok); // extended CDB of 32 bytes
    expect(ahs([0, 5, 2, 0, 0, 0, 0x10, 0, 0, 17, 1, 0, ...new Array(16).fill(0)])).toBe(Check.Ok);
    expect(ahs([0, 9, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0])).toBe(Check.AhsMalformed); // bidi AHSLength must be 5
    expect(ahs([0, 200, 1, 0, 0, 0, 0, 0])).toBe(Check.AhsMalformed); // overruns TotalAHSLength
    expect(ahs([0, 1, 9, 0])).toBe(Check.AhsMalformed); // unknown type
    expect(ahs([0, 5, 2, 0, 0, 0])).toBe(Check.AhsMalformed); // cut short
    expect(ahs([])).toBe(Check.Ok);
  });

  it("never stops the processor, whatever 48 bytes arrive, and names a Reject reason for every fault", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: BHS, maxLength: BHS }), fc.constantFrom(0, 1, 2), fc.nat({ max: 1 << 24 }), (bytes, phase, mrdsl) => {
        s.write(0, bytes);
        const got = t.call("testIscsiValidate", s.base, mrdsl, phase) as number;
        expect(got).toBeLessThanOrEqual(Check.AhsMalformed);
        const reason = t.call("testIscsiRejectReason", got) as number;
        if (got === Check.Ok || got === Check.NotLoginDuringLogin) expect(reason).toBe(0);
        else expect([0x04, 0x05, 0x09]).toContain(reason);
        const ahsBytes = bytes[4]! * 4;
        t.call("testIscsiValidateAhs", s.base, Math.min(ahsBytes, BHS));
      }),
      { numRuns: 500, seed: 11 },
    );
    expect(t.stops).toEqual([]);
  });
});
