// Test probes for the iSCSI pieces (test build only; harness.ts re-exports this file).
// Tests write their bytes into a static scratch area of the host processor's RAM (testIscsiScratch), call these
// exports with addresses inside it, and read the results back from RAM. The probes only forward to
// assembly/tts/iscsi/*: no logic of their own beyond what an engine would do around them (testIscsiNegotiate runs the
// operational stage's key loop; testIscsiLoginFuzz checks a PDU the way the engine does before loginStep).
import { carve } from "../../assembly/kernel/carve";
import { crc32c } from "../../assembly/tts/iscsi/crc32c";
import { md5Final, md5Init, md5Update, MD5_STATE_BYTES } from "../../assembly/tts/iscsi/md5";
import {
  buildAsyncMessage, buildDataIn, buildLoginResponse, buildLogoutResponse, buildNopIn, buildR2t, buildReject,
  buildScsiResponse, buildTextResponse, buildTmfResponse, bhsOpcode,
  lunDecode, lunEncode, pduCheckRejectReason, PduCheck, PduPhase, scsiSenseSegmentWrite, validateAhs,
  validateInitiatorPdu, loginIsid, loginTsih, bhsInitiatorTaskTag, STAGE_SECURITY, pduCheckLoginStatus,
} from "../../assembly/tts/iscsi/pdu";
import {
  answerNotUnderstood, decodeBinary, declareTargetMaxRecv, DigestPolicy, KeyId, keyFlags, keyLookup, keysTextRequest,
  KEY_IDENTITY, KEY_OPERATIONAL, KEY_SECURITY, MAX_RECV_DATA_SEGMENT_LENGTH_DEFAULT, Negotiation, negotiateOperationalKey, NegotiatedParams, negotiationLimits,
  negotiationLimitsCheck, negotiationPrescan, parseNumber, sendTargetsWrite, SessionType, TextCursor, TextItem,
  TextWriter,
} from "../../assembly/tts/iscsi/keys";
import {
  targetConfigAdd, targetConfigAt, targetConfigClear, targetConfigDiscovery,
} from "../../assembly/tts/iscsi/config";
import { LoginConnection, loginBegin, loginRefuse, loginStep, LoginOutcome } from "../../assembly/tts/iscsi/login";

const SCRATCH_BYTES: u32 = 256 * 1024;
const scratch: usize = carve(SCRATCH_BYTES, 16); // at module start, before boot seals the heap
const md5State: usize = memory.data(<i32>MD5_STATE_BYTES, 8);
const LOGIN_CONNECTIONS: u32 = 2;

// Built when the module starts, before boot seals the heap: the same moment the engine's would be built.
const logins = new StaticArray<LoginConnection>(LOGIN_CONNECTIONS);
for (let i: u32 = 0; i < LOGIN_CONNECTIONS; i++) unchecked(logins[i] = new LoginConnection());
const negotiation = new Negotiation();
const cursor = new TextCursor();
const writer = new TextWriter();

export function testIscsiScratch(): usize { return scratch; }
export function testIscsiScratchBytes(): u32 { return SCRATCH_BYTES; }

// ---- Digests ----
export function testIscsiCrc32c(ptr: usize, lengthBytes: u32): u32 { return crc32c(ptr, lengthBytes); }
export function testIscsiMd5(ptr: usize, lengthBytes: u32, digest: usize, splitAt: u32): void {
  md5Init(md5State);
  const first = min(splitAt, lengthBytes);
  md5Update(md5State, ptr, first);
  md5Update(md5State, ptr + first, lengthBytes - first);
  md5Final(md5State, digest);
}

// ---- PDUs ----
export function testIscsiBuildScsiResponse(bhs: usize, itt: u32, response: u32, status: u32, residualFlags: u32,
  residualCount: u32, bidiResidualCount: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32, expDataSn: u32, dataBytes: u32): void {
  buildScsiResponse(bhs, itt, response, status, residualFlags, residualCount, bidiResidualCount, statSn, expCmdSn, maxCmdSn, expDataSn, dataBytes);
}
export function testIscsiBuildDataIn(bhs: usize, lun: u64, itt: u32, ttt: u32, dataSn: u32, bufferOffset: u32, dataBytes: u32,
  final: bool, acknowledge: bool, statusPresent: bool, status: u32, residualFlags: u32, residualCount: u32,
  statSn: u32, expCmdSn: u32, maxCmdSn: u32): void {
  buildDataIn(bhs, lun, itt, ttt, dataSn, bufferOffset, dataBytes, final, acknowledge, statusPresent, status, residualFlags,
    residualCount, statSn, expCmdSn, maxCmdSn);
}
export function testIscsiBuildR2t(bhs: usize, lun: u64, itt: u32, ttt: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32,
  r2tSn: u32, bufferOffset: u32, desiredBytes: u32): void {
  buildR2t(bhs, lun, itt, ttt, statSn, expCmdSn, maxCmdSn, r2tSn, bufferOffset, desiredBytes);
}
export function testIscsiBuildNopIn(bhs: usize, lun: u64, itt: u32, ttt: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32, dataBytes: u32): void {
  buildNopIn(bhs, lun, itt, ttt, statSn, expCmdSn, maxCmdSn, dataBytes);
}
export function testIscsiBuildTmfResponse(bhs: usize, itt: u32, response: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32): void {
  buildTmfResponse(bhs, itt, response, statSn, expCmdSn, maxCmdSn);
}
export function testIscsiBuildLogoutResponse(bhs: usize, itt: u32, response: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32,
  time2Wait: u32, time2Retain: u32): void {
  buildLogoutResponse(bhs, itt, response, statSn, expCmdSn, maxCmdSn, time2Wait, time2Retain);
}
export function testIscsiBuildReject(bhs: usize, data: usize, rejected: usize, rejectedBytes: u32, reason: u32, statSn: u32,
  expCmdSn: u32, maxCmdSn: u32, dataSn: u32): void {
  buildReject(bhs, data, rejected, rejectedBytes, reason, statSn, expCmdSn, maxCmdSn, dataSn);
}
export function testIscsiBuildLoginResponse(bhs: usize, transit: bool, cont: bool, csg: u32, nsg: u32, isid: u64, tsih: u32,
  itt: u32, statSn: u32, expCmdSn: u32, maxCmdSn: u32, status: u32, dataBytes: u32): void {
  buildLoginResponse(bhs, transit, cont, csg, nsg, isid, tsih, itt, statSn, expCmdSn, maxCmdSn, status, dataBytes);
}
export function testIscsiBuildTextResponse(bhs: usize, final: bool, cont: bool, lun: u64, itt: u32, ttt: u32, statSn: u32,
  expCmdSn: u32, maxCmdSn: u32, dataBytes: u32): void {
  buildTextResponse(bhs, final, cont, lun, itt, ttt, statSn, expCmdSn, maxCmdSn, dataBytes);
}
export function testIscsiBuildAsyncMessage(bhs: usize, lun: u64, statSn: u32, expCmdSn: u32, maxCmdSn: u32, event: u32,
  vendorCode: u32, parameter1: u32, parameter2: u32, parameter3: u32, dataBytes: u32): void {
  buildAsyncMessage(bhs, lun, statSn, expCmdSn, maxCmdSn, event, vendorCode, parameter1, parameter2, parameter3, dataBytes);
}
export function testIscsiSenseSegment(data: usize, sense: usize, senseBytes: u32): u32 { return scsiSenseSegmentWrite(data, sense, senseBytes); }
export function testIscsiValidate(bhs: usize, maxRecvDataSegmentBytes: u32, phase: u32): u32 {
  return <u32>validateInitiatorPdu(bhs, maxRecvDataSegmentBytes, <PduPhase>phase);
}
export function testIscsiRejectReason(check: u32): u32 { return pduCheckRejectReason(<PduCheck>check); }
export function testIscsiValidateAhs(ahs: usize, totalBytes: u32): u32 { return <u32>validateAhs(ahs, totalBytes); }
export function testIscsiLunEncode(lun: u32): u64 { return lunEncode(lun); }
export function testIscsiLunDecode(field: u64): u32 { return lunDecode(field); }

// ---- Text ----
/** Walks the text; writes |item|keyOffset|keyBytes|valueOffset|valueBytes| (u32 each) per item; returns the count. */
export function testIscsiTextParse(ptr: usize, lengthBytes: u32, out: usize, itemsMax: u32): u32 {
  cursor.reset(ptr, lengthBytes);
  let count: u32 = 0;
  while (count < itemsMax) {
    const item = cursor.next();
    if (item == TextItem.End) break;
    const record = out + <usize>count * 20;
    store<u32>(record, <u32>item, 0);
    store<u32>(record, <u32>(cursor.keyPtr - ptr), 4);
    store<u32>(record, cursor.keyBytes, 8);
    store<u32>(record, <u32>(cursor.valuePtr - ptr), 12);
    store<u32>(record, cursor.valueBytes, 16);
    count += 1;
  }
  return count;
}
export function testIscsiKeyLookup(ptr: usize, lengthBytes: u32): u32 { return <u32>keyLookup(ptr, lengthBytes); }
export function testIscsiParseNumber(ptr: usize, lengthBytes: u32): u64 { return parseNumber(ptr, lengthBytes); }
export function testIscsiDecodeBinary(ptr: usize, lengthBytes: u32, out: usize, capacity: u32): i32 {
  return decodeBinary(ptr, lengthBytes, out, capacity);
}

// ---- Negotiation limits and the operational stage ----
export function testIscsiLimitsReset(): void {
  negotiationLimits.reset();
}

/** Sets limit `which` (the NegotiatedParams field order of testIscsiParam) and checks them all. */
export function testIscsiLimitSet(which: u32, value: u32): void {
  const l = negotiationLimits;
  switch (which) {
    case 0: l.headerDigest = <DigestPolicy>value; break;
    case 1: l.dataDigest = <DigestPolicy>value; break;
    case 2: l.maxRecvDataSegmentLength = value; break;
    case 4: l.maxConnections = value; break;
    case 5: l.initialR2t = value != 0; break;
    case 6: l.immediateData = value != 0; break;
    case 7: l.maxBurstLength = value; break;
    case 8: l.firstBurstLength = value; break;
    case 9: l.defaultTime2Wait = value; break;
    case 10: l.defaultTime2Retain = value; break;
    case 11: l.maxOutstandingR2t = value; break;
    case 12: l.dataPduInOrder = value != 0; break;
    case 13: l.dataSequenceInOrder = value != 0; break;
    case 14: l.errorRecoveryLevel = value; break;
    case 15: l.iscsiProtocolLevel = value; break;
    default: assert(false, "testIscsiLimitSet: which");
  }
  negotiationLimitsCheck();
}

function paramValue(p: NegotiatedParams, which: u32): u32 {
  switch (which) {
    case 0: return p.headerDigest ? 1 : 0;
    case 1: return p.dataDigest ? 1 : 0;
    case 2: return p.maxRecvDataSegmentLength;
    case 3: return p.maxSendDataSegmentLength;
    case 4: return p.maxConnections;
    case 5: return p.initialR2t ? 1 : 0;
    case 6: return p.immediateData ? 1 : 0;
    case 7: return p.maxBurstLength;
    case 8: return p.firstBurstLength;
    case 9: return p.defaultTime2Wait;
    case 10: return p.defaultTime2Retain;
    case 11: return p.maxOutstandingR2t;
    case 12: return p.dataPduInOrder ? 1 : 0;
    case 13: return p.dataSequenceInOrder ? 1 : 0;
    case 14: return p.errorRecoveryLevel;
    case 15: return p.iscsiProtocolLevel;
    case 16: return <u32>p.sessionType;
    default: assert(false, "paramValue: which");
  }
  return 0;
}

export function testIscsiNegotiateReset(discovery: bool, leading: bool): void {
  negotiation.reset(leading);
  negotiation.params.sessionType = discovery ? SessionType.Discovery : SessionType.Normal;
}

/**
 * One operational-stage request's keys, as login.ts runs them (identity and security keys excluded): the answers go
 * to `out`. Returns their length, or 0x8000_0000 | the LOGIN_* status when the login would fail.
 */
export function testIscsiNegotiate(ptr: usize, lengthBytes: u32, out: usize, capacity: u32): u32 {
  const n = negotiation;
  writer.reset(out, capacity);
  negotiationPrescan(n, ptr, lengthBytes, cursor);
  cursor.reset(ptr, lengthBytes);
  for (let guard: u32 = 0; guard <= lengthBytes; guard++) {
    const item = cursor.next();
    if (item == TextItem.End) break;
    if (item == TextItem.NoEquals) {
      if (!answerNotUnderstood(n, writer, cursor.keyPtr, cursor.keyBytes)) return 0x8000_0000 | n.failStatus;
      continue;
    }
    if (item != TextItem.Pair) return 0x8000_0200;
    const key = keyLookup(cursor.keyPtr, cursor.keyBytes);
    if (key == KeyId.Unknown) {
      if (!answerNotUnderstood(n, writer, cursor.keyPtr, cursor.keyBytes)) return 0x8000_0000 | n.failStatus;
      continue;
    }
    const flags = keyFlags(key);
    if ((flags & KEY_IDENTITY) != 0) continue;
    if ((flags & KEY_OPERATIONAL) == 0 && (flags & KEY_SECURITY) != 0) return 0x8000_0200; // a security key
    if (!n.see(key)) return 0x8000_0200;
    if (!negotiateOperationalKey(n, key, cursor.valuePtr, cursor.valueBytes, writer)) return 0x8000_0000 | n.failStatus;
  }
  if (!declareTargetMaxRecv(n, writer)) return 0x8000_0000 | n.failStatus;
  return writer.lengthBytes;
}
export function testIscsiParam(which: u32): u32 { return paramValue(negotiation.params, which); }

/** A Text Request's keys in full feature phase: returns TextOutcome; the answer's length is testIscsiTextOutBytes. */
export function testIscsiTextRequest(ptr: usize, lengthBytes: u32, out: usize, capacity: u32): u32 {
  writer.reset(out, capacity);
  return <u32>keysTextRequest(negotiation, ptr, lengthBytes, cursor, writer);
}
export function testIscsiTextOutBytes(): u32 { return writer.lengthBytes; }
/** SendTargets after testIscsiTextRequest, appending to its answer; returns the index to resume from. */
export function testIscsiSendTargets(sessionTarget: u32, initiator: usize, initiatorBytes: u32, portal: usize, portalBytes: u32,
  startIndex: u32, out: usize, capacity: u32, append: bool): u32 {
  if (!append) writer.reset(out, capacity);
  return sendTargetsWrite(negotiation, sessionTarget, initiator, initiatorBytes, portal, portalBytes, startIndex, writer);
}

// ---- Targets ----
export function testIscsiTargetClear(): void { targetConfigClear(); }
export function testIscsiTargetAdd(name: usize, nameBytes: u32, alias: usize, aliasBytes: u32, chapUser: usize, chapUserBytes: u32,
  chapSecret: usize, chapSecretBytes: u32, mutualUser: usize, mutualUserBytes: u32, mutualSecret: usize, mutualSecretBytes: u32): u32 {
  return targetConfigAdd(name, nameBytes, alias, aliasBytes, chapUser, chapUserBytes, chapSecret, chapSecretBytes,
    mutualUser, mutualUserBytes, mutualSecret, mutualSecretBytes);
}
export function testIscsiTargetAllow(target: u32, name: usize, nameBytes: u32): bool { return targetConfigAt(target).allowInitiator(name, nameBytes); }
export function testIscsiTargetAddLun(target: u32, lun: u32, volume: u32): bool { return targetConfigAt(target).addLun(lun, volume); }
export function testIscsiDiscoveryChap(user: usize, userBytes: u32, secret: usize, secretBytes: u32,
  mutualUser: usize, mutualUserBytes: u32, mutualSecret: usize, mutualSecretBytes: u32): bool {
  return targetConfigDiscovery().setChap(user, userBytes, secret, secretBytes, mutualUser, mutualUserBytes, mutualSecret, mutualSecretBytes);
}
export function testIscsiDiscoveryAllow(name: usize, nameBytes: u32): bool { return targetConfigDiscovery().allowInitiator(name, nameBytes); }

// ---- Login ----
function login(index: u32): LoginConnection {
  assert(index < LOGIN_CONNECTIONS, "probe: login connection index");
  return unchecked(logins[index]);
}
export function testIscsiLoginBegin(index: u32, initialStatSn: u32, portalGroupTag: u32, cmdWindow: u32, random: usize): void {
  loginBegin(login(index), initialStatSn, portalGroupTag, cmdWindow, random);
}
export function testIscsiLoginStep(index: u32, bhs: usize, data: usize, dataBytes: u32, response: usize, responseData: usize,
  responseCapacity: u32): u32 {
  return <u32>loginStep(login(index), bhs, data, dataBytes, response, responseData, responseCapacity);
}
export function testIscsiLoginRefuse(index: u32, status: u32, response: usize): void { loginRefuse(login(index), status, response); }
export function testIscsiLoginState(index: u32): u32 { return <u32>login(index).state; }
export function testIscsiLoginStatus(index: u32): u32 { return login(index).status; }
export function testIscsiLoginDataBytes(index: u32): u32 { return login(index).responseDataBytes; }
export function testIscsiLoginIdentifiedNow(index: u32): bool { return login(index).identifiedNow; }
export function testIscsiLoginTarget(index: u32): u32 { return login(index).target; }
export function testIscsiLoginTsih(index: u32): u32 { return login(index).tsih; }
export function testIscsiLoginStatSn(index: u32): u32 { return login(index).statSn; }
export function testIscsiLoginInitiatorBytes(index: u32): u32 { return login(index).initiatorNameBytes; }
export function testIscsiLoginParam(index: u32, which: u32): u32 { return paramValue(login(index).negotiation.params, which); }

/**
 * What the engine does with any PDU during login: check it; a PDU that fails (anything but a well-formed Login
 * Request) gets a failure Login Response with pduCheckLoginStatus and the connection closes; else loginStep.
 * Returns the opcode of the response written at `response`, with 0x100 set when the connection is to be closed.
 */
export function testIscsiLoginFuzz(index: u32, bhs: usize, data: usize, dataBytes: u32, response: usize, responseData: usize,
  responseCapacity: u32): u32 {
  const c = login(index);
  const check = validateInitiatorPdu(bhs, MAX_RECV_DATA_SEGMENT_LENGTH_DEFAULT, PduPhase.Login);
  if (check != PduCheck.Ok) {
    buildLoginResponse(response, false, false, STAGE_SECURITY, 0, loginIsid(bhs), loginTsih(bhs), bhsInitiatorTaskTag(bhs),
      0, 0, 0, pduCheckLoginStatus(check), 0);
    return <u32>bhsOpcode(response) | 0x100;
  }
  const outcome = loginStep(c, bhs, data, dataBytes, response, responseData, responseCapacity);
  return <u32>bhsOpcode(response) | (outcome == LoginOutcome.Failed ? 0x100 : 0);
}
