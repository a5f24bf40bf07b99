// One connection's login (RFC 7143, "Login and Full Feature Phase Negotiation"): SecurityNegotiation →
// LoginOperationalNegotiation → FullFeaturePhase, driven by the T, C, CSG and NSG bits of each Login Request.
// The engine owns one LoginConnection per connection that may be logging in (built at boot), and for each Login
// Request calls loginStep, which writes the Login Response (BHS and data) and says what happened:
//   Continue  send it, wait for the next Login Request;
//   Complete  send it; the connection is in full feature phase; c.negotiation.params, c.target, c.initiatorName,
//             c.isid, c.tsih (0: a new session: write the engine's TSIH with loginSetTsih first), c.statSn (next);
//   Failed    send it (status in c.status), then close the connection.
// On the step that sets c.identifiedNow the initiator and target are known and checked; the engine then checks its
// sessions (TSIH 0: reinstatement of a session with the same initiator name and ISID; TSIH ≠ 0: that session must
// exist with the same initiator, ISID and target, and take another connection) and may turn the response into a
// failure with loginRefuse before sending it.
//
// Authentication: AuthMethod=None, or CHAP with MD5 (RFC 1994; RFC 7143, CHAP Considerations): the target challenges
// (CHAP_A=5, CHAP_I, CHAP_C from the random bytes the engine gives loginBegin), checks CHAP_N and CHAP_R, and for
// mutual CHAP answers the initiator's CHAP_I and CHAP_C with its own CHAP_N and CHAP_R, refusing a challenge that
// reflects its own. Every failure gets the RFC's Status-Class and Status-Detail; nothing the initiator sends asserts.
import {
  bytesEqual, ISCSI_NAME_BYTES_MAX, iscsiNameValid, TARGET_NONE, TargetConfig, targetConfigAt, targetConfigDiscovery,
  targetConfigFind,
} from "./config";
import {
  answerNotUnderstood, CHAP_BINARY_BYTES_MAX, CHAP_VALUE_BYTES_MAX, declareTargetMaxRecv, decodeBinary, KEY_AUTH, KEY_IDENTITY,
  KEY_OPERATIONAL, KEY_SECURITY, KeyId, keyFlags, keyLookup, listHas, Negotiation, negotiateOperationalKey,
  negotiationPrescan, NUMBER_INVALID, parseNumber, SessionType, TextCursor, TextItem, TextWriter, bytesIs,
  valueIsReserved, VALUE_BYTES_MAX,
} from "./keys";
import { md5Final, md5Init, md5Update, MD5_DIGEST_BYTES, MD5_STATE_BYTES } from "./md5";
import {
  bhsCmdSn, bhsInitiatorTaskTag, bhsOpcode, bhsSetDataSegmentLength, buildLoginResponse, ISCSI_VERSION, LOGIN_AUTHENTICATION_FAILURE,
  LOGIN_AUTHORIZATION_FAILURE, LOGIN_INITIATOR_ERROR, LOGIN_MISSING_PARAMETER, LOGIN_NOT_FOUND, LOGIN_OUT_OF_RESOURCES,
  LOGIN_SESSION_TYPE_NOT_SUPPORTED, LOGIN_SUCCESS, LOGIN_TARGET_MOVED_TEMPORARILY, LOGIN_UNSUPPORTED_VERSION, loginCid, loginContinue, loginCsg,
  loginIsid, loginNsg, loginTransit, loginTsih, loginVersionMax, loginVersionMin, OP_LOGIN_REQUEST, pduZeroPadding,
  STAGE_FULL_FEATURE, STAGE_OPERATIONAL, STAGE_SECURITY,
} from "./pdu";
import { carve } from "../../kernel/carve";
import { line } from "../../kernel/console";
import { CLUSTER_NONE } from "../../cluster/routing_table";
import { portalWrite } from "./portals";
import { redirectBoard } from "./redirect";

export const LOGIN_TEXT_BYTES_MAX: u32 = 16384; // the text of one request, its continuations joined
export const LOGIN_RESPONSE_DATA_BYTES_MAX: u32 = 8192; // the initiator's MaxRecvDataSegmentLength during login
export const LOGIN_RESPONSE_CAPACITY_MIN: u32 = 1024; // the engine's response data buffer holds at least this
export const LOGIN_STEPS_MAX: u32 = 32; // Login Requests one login may take, continuations included
export const CHAP_CHALLENGE_BYTES: u32 = 16; // our CHAP_C, as long as the MD5 digest
export const LOGIN_RANDOM_BYTES: u32 = CHAP_CHALLENGE_BYTES + 1; // loginBegin's random bytes: challenge, then CHAP_I
const CHAP_ALGORITHM_MD5: u64 = 5; // RFC 7143, CHAP_A: 5 is MD5

export enum LoginOutcome {
  Continue = 0, // send the response; the login goes on
  Complete = 1, // send the response; full feature phase starts with the next PDU
  Failed = 2, // send the response (a failure status, no data), then close the connection
}

export enum LoginState {
  Idle = 0, // no login under way: call loginBegin
  Start = 1, // waiting for the first Login Request
  Security = 2, // in SecurityNegotiation
  Operational = 3, // in LoginOperationalNegotiation
  FullFeature = 4, // the final response is written: the login is over
  Failed = 5, // a failure response is written: close
}

export enum AuthState {
  Open = 0, // no method chosen yet
  NoneChosen = 1, // no authentication: AuthMethod=None, or none required and none asked for
  ChapChosen = 2, // AuthMethod=CHAP answered: CHAP_A comes next
  ChapChallenged = 3, // CHAP_A, CHAP_I, CHAP_C sent: CHAP_N and CHAP_R come next
  Authenticated = 4, // CHAP_R checked (and the mutual answer written)
}

/** One connection's login. Built at boot (it carves its buffers); reused for every login on the connection. */
export class LoginConnection {
  state: LoginState = LoginState.Idle;
  auth: AuthState = AuthState.Open;
  stage: u32 = STAGE_SECURITY; // CSG of the requests now expected
  status: u32 = LOGIN_SUCCESS; // after Failed: the status class << 8 | detail sent
  readonly negotiation: Negotiation = new Negotiation();
  // Who is logging in, once identified.
  identified: bool = false; // the initiator and target are known and checked
  identifiedNow: bool = false; // …and this step made them so: the engine checks its sessions now
  readonly initiatorName: usize = carve(ISCSI_NAME_BYTES_MAX + 1);
  initiatorNameBytes: u32 = 0;
  target: u32 = TARGET_NONE; // index in config.ts; TARGET_NONE in a discovery session
  isid: u64 = 0; // of the first request; every later one must match
  tsih: u32 = 0; // 0: a new session (leading connection); else the session this connection joins
  cid: u32 = 0;
  // Numbering.
  statSn: u32 = 0; // StatSN of the next response
  portalGroupTag: u32 = 0;
  cmdWindow: u32 = 1; // MaxCmdSN = ExpCmdSN + cmdWindow - 1
  stepCount: u32 = 0;
  // The last request, echoed by its response.
  private itt: u32 = 0;
  private requestIsid: u64 = 0;
  private requestTsih: u32 = 0;
  private requestCmdSn: u32 = 0;
  // Buffers.
  readonly text: usize = carve(LOGIN_TEXT_BYTES_MAX); // the request text, continuations joined
  textBytes: u32 = 0;
  readonly challenge: usize = carve(CHAP_CHALLENGE_BYTES);
  chapIdentifier: u32 = 0;
  readonly binary: usize = carve(CHAP_BINARY_BYTES_MAX); // a decoded CHAP_R or CHAP_C
  readonly md5: usize = carve(MD5_STATE_BYTES);
  readonly digest: usize = carve(MD5_DIGEST_BYTES);
  readonly cursor: TextCursor = new TextCursor();
  readonly out: TextWriter = new TextWriter();
  responseDataBytes: u32 = 0; // of the response loginStep wrote
  // CHAP keys of the request being processed: offsets into text, lengths (0: absent).
  chapN: usize = 0;
  chapNBytes: u32 = 0;
  chapR: usize = 0;
  chapRBytes: u32 = 0;
  chapI: usize = 0;
  chapIBytes: u32 = 0;
  chapC: usize = 0;
  chapCBytes: u32 = 0;
  chapSeen: bool = false;
}

/**
 * Starts a login on a new connection. `random` holds LOGIN_RANDOM_BYTES from the board's random source (the CHAP
 * challenge, then its identifier); `initialStatSn` numbers the first response; `portalGroupTag` is the portal's.
 */
export function loginBegin(c: LoginConnection, initialStatSn: u32, portalGroupTag: u32, cmdWindow: u32, random: usize): void {
  assert(cmdWindow >= 1 && portalGroupTag <= 0xffff, "loginBegin: window and tag");
  c.state = LoginState.Start;
  c.auth = AuthState.Open;
  c.stage = STAGE_SECURITY;
  c.status = LOGIN_SUCCESS;
  c.negotiation.reset(true);
  c.identified = false;
  c.identifiedNow = false;
  c.initiatorNameBytes = 0;
  c.target = TARGET_NONE;
  c.isid = 0;
  c.tsih = 0;
  c.cid = 0;
  c.statSn = initialStatSn;
  c.portalGroupTag = portalGroupTag;
  c.cmdWindow = cmdWindow;
  c.stepCount = 0;
  c.textBytes = 0;
  c.responseDataBytes = 0;
  memory.copy(c.challenge, random, CHAP_CHALLENGE_BYTES);
  c.chapIdentifier = <u32>load<u8>(random + CHAP_CHALLENGE_BYTES);
}

/**
 * Handles one Login Request (its BHS, and `dataBytes` of data at `data`; the engine has checked it with
 * validateInitiatorPdu and the header digest). Writes the Login Response BHS at `response` and its data at
 * `responseData` (room for `responseCapacity` ≥ LOGIN_RESPONSE_CAPACITY_MIN bytes, padding included; the length is in
 * c.responseDataBytes, the padding zeroed).
 */
export function loginStep(c: LoginConnection, bhs: usize, data: usize, dataBytes: u32, response: usize,
  responseData: usize, responseCapacity: u32): LoginOutcome {
  assert(c.state == LoginState.Start || c.state == LoginState.Security || c.state == LoginState.Operational, "loginStep: no login under way");
  assert(bhsOpcode(bhs) == OP_LOGIN_REQUEST, "loginStep: a Login Request");
  assert(responseCapacity >= LOGIN_RESPONSE_CAPACITY_MIN, "loginStep: response buffer");
  c.identifiedNow = false;
  c.responseDataBytes = 0;
  c.itt = bhsInitiatorTaskTag(bhs);
  c.requestIsid = loginIsid(bhs);
  c.requestTsih = loginTsih(bhs);
  c.requestCmdSn = bhsCmdSn(bhs);
  c.stepCount += 1;
  if (c.stepCount > LOGIN_STEPS_MAX) return loginFail(c, LOGIN_INITIATOR_ERROR, response);
  const header = checkHeader(c, bhs);
  if (header != LOGIN_SUCCESS) return loginFail(c, header, response);
  if (dataBytes > LOGIN_TEXT_BYTES_MAX - c.textBytes) return loginFail(c, LOGIN_OUT_OF_RESOURCES, response);
  memory.copy(c.text + c.textBytes, data, dataBytes);
  c.textBytes += dataBytes;
  // RFC 7143, Login Request, C bit: the text goes on in the next request; answer with an empty response.
  if (loginContinue(bhs)) return respond(c, false, 0, response);
  const textBytes = c.textBytes;
  c.textBytes = 0;
  if (textBytes > 0 && load<u8>(c.text + textBytes - 1) != 0) return loginFail(c, LOGIN_INITIATOR_ERROR, response);
  c.out.reset(responseData, min(responseCapacity, LOGIN_RESPONSE_DATA_BYTES_MAX) & ~(<u32>3));
  const processed = processText(c, textBytes);
  if (processed == LOGIN_TARGET_MOVED_TEMPORARILY) return loginRedirect(c, response, responseData);
  if (processed != LOGIN_SUCCESS) return loginFail(c, processed, response);
  return transition(c, bhs, response, responseData);
}

/**
 * Replaces the response loginStep just wrote with a failure (`status`: LOGIN_*, class 1..3), for the engine's own
 * checks (sessions, connections, resources). The connection is then Failed: send the response and close.
 */
export function loginRefuse(c: LoginConnection, status: u32, response: usize): void {
  assert(status >= 0x0100 && status <= 0x03ff, "loginRefuse: a failure status");
  loginFail(c, status, response);
}

/**
 * Fails the login for a PDU the engine refused before loginStep could see it (validateInitiatorPdu: a PDU other than
 * a Login Request, or a Login Request with bad lengths or AHS; `status` from pduCheckLoginStatus). The Login Response
 * echoes that PDU's Initiator Task Tag and CmdSN (and its ISID and TSIH when it is a Login Request). Send it, then close.
 */
export function loginRefuseRequest(c: LoginConnection, bhs: usize, status: u32, response: usize): void {
  const login = bhsOpcode(bhs) == OP_LOGIN_REQUEST;
  c.itt = bhsInitiatorTaskTag(bhs);
  c.requestIsid = login ? loginIsid(bhs) : c.isid;
  c.requestTsih = login ? loginTsih(bhs) : c.tsih;
  c.requestCmdSn = bhsCmdSn(bhs);
  loginRefuse(c, status, response);
}

// The header rules: T and C, the stages, the version, and the session identity staying put.
function checkHeader(c: LoginConnection, bhs: usize): u32 {
  const transit = loginTransit(bhs);
  const csg = loginCsg(bhs);
  const nsg = loginNsg(bhs);
  if (transit && loginContinue(bhs)) return LOGIN_INITIATOR_ERROR;
  if (csg > STAGE_OPERATIONAL) return LOGIN_INITIATOR_ERROR;
  if (transit && (nsg == 2 || nsg <= csg)) return LOGIN_INITIATOR_ERROR;
  const versionMax = loginVersionMax(bhs);
  const versionMin = loginVersionMin(bhs);
  if (versionMin > ISCSI_VERSION || versionMax < versionMin) return LOGIN_UNSUPPORTED_VERSION;
  if (c.state == LoginState.Start) {
    c.isid = loginIsid(bhs);
    c.tsih = loginTsih(bhs);
    c.cid = loginCid(bhs);
    c.stage = csg;
    c.negotiation.leading = c.tsih == 0;
    c.state = csg == STAGE_SECURITY ? LoginState.Security : LoginState.Operational;
    return LOGIN_SUCCESS;
  }
  if (loginIsid(bhs) != c.isid || loginTsih(bhs) != c.tsih || loginCid(bhs) != c.cid) return LOGIN_INITIATOR_ERROR;
  if (csg != c.stage) return LOGIN_INITIATOR_ERROR;
  return LOGIN_SUCCESS;
}

// Every key of a complete request: identity first (the first request only), then the rest in order.
function processText(c: LoginConnection, textBytes: u32): u32 {
  const n = c.negotiation;
  const identifying = !c.identified;
  if (identifying) {
    const identity = identify(c, textBytes);
    if (identity != LOGIN_SUCCESS) return identity;
    // A new normal session may belong on another board of the cluster (redirect.ts): its TargetAddress is the answer.
    const elsewhere = c.target != TARGET_NONE && c.tsih == 0 ? redirectBoard(targetConfigAt(c.target)) : CLUSTER_NONE;
    if (elsewhere != CLUSTER_NONE) {
      portalWrite(c.out, elsewhere, 0);
      return c.out.overflow ? LOGIN_OUT_OF_RESOURCES : LOGIN_TARGET_MOVED_TEMPORARILY;
    }
    c.identified = true;
    c.identifiedNow = true;
    if (!declareTarget(c)) return LOGIN_OUT_OF_RESOURCES;
  }
  const config = authConfig(c);
  if (c.stage == STAGE_OPERATIONAL && !authDone(c, config)) return LOGIN_AUTHENTICATION_FAILURE;
  if (c.stage == STAGE_OPERATIONAL) negotiationPrescan(n, c.text, textBytes, c.cursor);
  const authAtStart = c.auth;
  c.chapSeen = false;
  c.chapNBytes = 0;
  c.chapRBytes = 0;
  c.chapIBytes = 0;
  c.chapCBytes = 0;
  const cursor = c.cursor.reset(c.text, textBytes);
  for (let guard: u32 = 0; guard <= textBytes; guard++) {
    const item = cursor.next();
    if (item == TextItem.End) break;
    if (item == TextItem.NoEquals) {
      if (!answerNotUnderstood(n, c.out, cursor.keyPtr, cursor.keyBytes)) return n.failStatus;
      continue;
    }
    if (item != TextItem.Pair) return LOGIN_INITIATOR_ERROR; // an empty or overlong key, text after the last NUL
    const status = processKey(c, config, identifying, authAtStart);
    if (status != LOGIN_SUCCESS) return status;
  }
  if (c.chapSeen) {
    const checked = chapCheck(c, config);
    if (checked != LOGIN_SUCCESS) return checked;
  }
  if (c.stage == STAGE_OPERATIONAL && !declareTargetMaxRecv(n, c.out)) return n.failStatus;
  return LOGIN_SUCCESS;
}

// One key=value pair at the cursor.
function processKey(c: LoginConnection, config: TargetConfig, identifying: bool, authAtStart: AuthState): u32 {
  const n = c.negotiation;
  const cursor = c.cursor;
  const key = keyLookup(cursor.keyPtr, cursor.keyBytes);
  if (key == KeyId.Unknown) return answerNotUnderstood(n, c.out, cursor.keyPtr, cursor.keyBytes) ? LOGIN_SUCCESS : n.failStatus;
  const flags = keyFlags(key);
  if ((flags & KEY_IDENTITY) != 0) return identifying ? LOGIN_SUCCESS : LOGIN_INITIATOR_ERROR; // read by identify()
  // RFC 7143, Login Phase: security keys only in SecurityNegotiation, operational keys only after it.
  const stageBit = c.stage == STAGE_SECURITY ? KEY_SECURITY : KEY_OPERATIONAL;
  if ((flags & (KEY_SECURITY | KEY_OPERATIONAL)) != 0 && (flags & stageBit) == 0) return LOGIN_INITIATOR_ERROR;
  // RFC 7143, Text Mode Negotiation: a parameter is negotiated or declared once per login.
  if (!n.see(key)) return LOGIN_INITIATOR_ERROR;
  if ((flags & KEY_AUTH) == 0) return negotiateOperationalKey(n, key, cursor.valuePtr, cursor.valueBytes, c.out) ? LOGIN_SUCCESS : n.failStatus;
  if (valueIsReserved(cursor.valuePtr, cursor.valueBytes)) return LOGIN_INITIATOR_ERROR;
  switch (key) {
    case KeyId.AuthMethod: return authMethod(c, config, cursor.valuePtr, cursor.valueBytes);
    case KeyId.ChapA: return chapAlgorithm(c, cursor.valuePtr, cursor.valueBytes);
    case KeyId.ChapN:
    case KeyId.ChapR:
    case KeyId.ChapI:
    case KeyId.ChapC: return chapRecord(c, key, authAtStart);
    default: assert(false, "processKey: an authentication key");
  }
  return LOGIN_SUCCESS;
}

// InitiatorName, TargetName and SessionType of the first complete request, then who may log in where.
function identify(c: LoginConnection, textBytes: u32): u32 {
  const n = c.negotiation;
  const cursor = c.cursor.reset(c.text, textBytes);
  let targetName: usize = 0;
  let targetNameBytes: u32 = 0;
  let targetNameSeen = false;
  for (let guard: u32 = 0; guard <= textBytes; guard++) {
    const item = cursor.next();
    if (item == TextItem.End) break;
    if (item != TextItem.Pair) continue; // reported by the main pass
    const key = keyLookup(cursor.keyPtr, cursor.keyBytes);
    if (key == KeyId.Unknown || (keyFlags(key) & KEY_IDENTITY) == 0) continue;
    if (!n.see(key) || valueIsReserved(cursor.valuePtr, cursor.valueBytes)) return LOGIN_INITIATOR_ERROR;
    const value = cursor.valuePtr;
    const valueBytes = cursor.valueBytes;
    if (key == KeyId.InitiatorName) {
      if (!iscsiNameValid(value, valueBytes)) return LOGIN_INITIATOR_ERROR;
      memory.copy(c.initiatorName, value, valueBytes);
      c.initiatorNameBytes = valueBytes;
    } else if (key == KeyId.TargetName) {
      targetName = value;
      targetNameBytes = valueBytes;
      targetNameSeen = true;
    } else if (bytesIs(value, valueBytes, "Discovery")) n.params.sessionType = SessionType.Discovery;
    else if (bytesIs(value, valueBytes, "Normal")) n.params.sessionType = SessionType.Normal;
    else return LOGIN_SESSION_TYPE_NOT_SUPPORTED;
  }
  // RFC 7143, InitiatorName and TargetName: both in the first request; TargetName not for discovery.
  if (c.initiatorNameBytes == 0) return LOGIN_MISSING_PARAMETER;
  if (n.discovery()) {
    return targetConfigDiscovery().initiatorAllowed(c.initiatorName, c.initiatorNameBytes) ? LOGIN_SUCCESS : LOGIN_AUTHORIZATION_FAILURE;
  }
  if (!targetNameSeen) return LOGIN_MISSING_PARAMETER;
  c.target = targetNameBytes <= ISCSI_NAME_BYTES_MAX ? targetConfigFind(targetName, targetNameBytes) : TARGET_NONE;
  if (c.target == TARGET_NONE) return LOGIN_NOT_FOUND;
  if (!targetConfigAt(c.target).initiatorAllowed(c.initiatorName, c.initiatorNameBytes)) return LOGIN_AUTHORIZATION_FAILURE;
  return LOGIN_SUCCESS;
}

// RFC 7143, TargetPortalGroupTag: in the response to the first request naming a target; TargetAlias with it.
function declareTarget(c: LoginConnection): bool {
  if (c.target == TARGET_NONE) return true;
  const t = targetConfigAt(c.target);
  const mark = c.out.mark();
  c.out.s("TargetPortalGroupTag=").u64(<u64>c.portalGroupTag).end();
  if (t.aliasBytes > 0) c.out.s("TargetAlias=").bytes(t.alias, t.aliasBytes).end();
  return c.out.commit(mark);
}

// The configuration whose credentials apply: the target's, or discovery's.
function authConfig(c: LoginConnection): TargetConfig {
  return c.target == TARGET_NONE ? targetConfigDiscovery() : targetConfigAt(c.target);
}

// May the login leave SecurityNegotiation (or skip it)?
function authDone(c: LoginConnection, config: TargetConfig): bool {
  if (c.auth == AuthState.Authenticated || c.auth == AuthState.NoneChosen) return true;
  if (c.auth == AuthState.Open && !config.chapRequired()) {
    c.auth = AuthState.NoneChosen;
    return true;
  }
  return false;
}

// AuthMethod: the first of the initiator's methods the target allows (CHAP when it has credentials, else None).
function authMethod(c: LoginConnection, config: TargetConfig, value: usize, valueBytes: u32): u32 {
  if (c.auth != AuthState.Open) return LOGIN_INITIATOR_ERROR;
  const chap = listHas(value, valueBytes, "CHAP");
  const none = listHas(value, valueBytes, "None");
  let chooseChap = false;
  if (config.chapRequired()) {
    if (!chap) return LOGIN_AUTHENTICATION_FAILURE;
    chooseChap = true;
  } else if (!none) {
    const mark = c.out.mark();
    c.out.s("AuthMethod=Reject").end(); // only methods this target cannot do: the initiator decides what next
    return c.out.commit(mark) ? LOGIN_SUCCESS : LOGIN_OUT_OF_RESOURCES;
  }
  c.auth = chooseChap ? AuthState.ChapChosen : AuthState.NoneChosen;
  const mark = c.out.mark();
  c.out.s("AuthMethod=").s(chooseChap ? "CHAP" : "None").end();
  return c.out.commit(mark) ? LOGIN_SUCCESS : LOGIN_OUT_OF_RESOURCES;
}

// CHAP_A: MD5 (5) must be among the initiator's algorithms; answer with the challenge.
function chapAlgorithm(c: LoginConnection, value: usize, valueBytes: u32): u32 {
  if (c.auth != AuthState.ChapChosen || valueBytes > VALUE_BYTES_MAX) return LOGIN_AUTHENTICATION_FAILURE;
  let md5 = false;
  let start: u32 = 0;
  for (let i: u32 = 0; i <= valueBytes && !md5; i++) {
    if (i < valueBytes && load<u8>(value + i) != 0x2c) continue;
    md5 = parseNumber(value + start, i - start) == CHAP_ALGORITHM_MD5;
    start = i + 1;
  }
  if (!md5) return LOGIN_AUTHENTICATION_FAILURE;
  const mark = c.out.mark();
  c.out.s("CHAP_A=5").end();
  c.out.s("CHAP_I=").u64(<u64>c.chapIdentifier).end();
  c.out.s("CHAP_C=").hex(c.challenge, CHAP_CHALLENGE_BYTES).end();
  if (!c.out.commit(mark)) return LOGIN_OUT_OF_RESOURCES;
  c.auth = AuthState.ChapChallenged;
  return LOGIN_SUCCESS;
}

// CHAP_N, CHAP_R, CHAP_I, CHAP_C: only after our challenge went out; checked together once the text is read.
function chapRecord(c: LoginConnection, key: KeyId, authAtStart: AuthState): u32 {
  if (authAtStart != AuthState.ChapChallenged) return LOGIN_AUTHENTICATION_FAILURE;
  const cursor = c.cursor;
  const limit = key == KeyId.ChapR || key == KeyId.ChapC ? CHAP_VALUE_BYTES_MAX : VALUE_BYTES_MAX;
  if (cursor.valueBytes == 0 || cursor.valueBytes > limit) return LOGIN_AUTHENTICATION_FAILURE;
  c.chapSeen = true;
  switch (key) {
    case KeyId.ChapN: c.chapN = cursor.valuePtr; c.chapNBytes = cursor.valueBytes; break;
    case KeyId.ChapR: c.chapR = cursor.valuePtr; c.chapRBytes = cursor.valueBytes; break;
    case KeyId.ChapI: c.chapI = cursor.valuePtr; c.chapIBytes = cursor.valueBytes; break;
    case KeyId.ChapC: c.chapC = cursor.valuePtr; c.chapCBytes = cursor.valueBytes; break;
    default: assert(false, "chapRecord: a CHAP response key");
  }
  return LOGIN_SUCCESS;
}

// RFC 1994 with RFC 7143's rules: the initiator's CHAP_N and CHAP_R, then the mutual answer if it asked for one.
function chapCheck(c: LoginConnection, config: TargetConfig): u32 {
  if (c.chapNBytes == 0 || c.chapRBytes == 0) return LOGIN_AUTHENTICATION_FAILURE;
  if (!bytesEqual(c.chapN, c.chapNBytes, config.chapUser, config.chapUserBytes)) return LOGIN_AUTHENTICATION_FAILURE;
  const responseBytes = decodeBinary(c.chapR, c.chapRBytes, c.binary, CHAP_BINARY_BYTES_MAX);
  if (responseBytes != <i32>MD5_DIGEST_BYTES) return LOGIN_AUTHENTICATION_FAILURE;
  chapDigest(c, c.chapIdentifier, config.chapSecret, config.chapSecretBytes, c.challenge, CHAP_CHALLENGE_BYTES);
  if (!sameBytes(c.digest, c.binary, MD5_DIGEST_BYTES)) return LOGIN_AUTHENTICATION_FAILURE;
  const mutual = c.chapIBytes > 0 || c.chapCBytes > 0;
  if (mutual) {
    if (c.chapIBytes == 0 || c.chapCBytes == 0 || config.mutualUserBytes == 0) return LOGIN_AUTHENTICATION_FAILURE;
    const identifier = parseNumber(c.chapI, c.chapIBytes);
    if (identifier == NUMBER_INVALID || identifier > 255) return LOGIN_AUTHENTICATION_FAILURE;
    const challengeBytes = decodeBinary(c.chapC, c.chapCBytes, c.binary, CHAP_BINARY_BYTES_MAX);
    if (challengeBytes < 1) return LOGIN_AUTHENTICATION_FAILURE;
    // RFC 7143, CHAP Considerations: a challenge that reflects ours would let the initiator replay our own answer.
    if (<u32>challengeBytes == CHAP_CHALLENGE_BYTES && sameBytes(c.binary, c.challenge, CHAP_CHALLENGE_BYTES)) {
      return LOGIN_AUTHENTICATION_FAILURE;
    }
    chapDigest(c, <u32>identifier, config.mutualSecret, config.mutualSecretBytes, c.binary, <u32>challengeBytes);
    const mark = c.out.mark();
    c.out.s("CHAP_N=").bytes(config.mutualUser, config.mutualUserBytes).end();
    c.out.s("CHAP_R=").hex(c.digest, MD5_DIGEST_BYTES).end();
    if (!c.out.commit(mark)) return LOGIN_OUT_OF_RESOURCES;
  }
  c.auth = AuthState.Authenticated;
  return LOGIN_SUCCESS;
}

// c.digest = MD5(identifier || secret || challenge).
function chapDigest(c: LoginConnection, identifier: u32, secret: usize, secretBytes: u32, challenge: usize, challengeBytes: u32): void {
  store<u8>(c.digest, <u8>identifier);
  md5Init(c.md5);
  md5Update(c.md5, c.digest, 1);
  md5Update(c.md5, secret, secretBytes);
  md5Update(c.md5, challenge, challengeBytes);
  md5Final(c.md5, c.digest);
}

// Compares without an early exit, so the time taken says nothing about where a guessed response went wrong.
function sameBytes(a: usize, b: usize, count: u32): bool {
  let difference: u32 = 0;
  for (let i: u32 = 0; i < count; i++) difference |= <u32>(load<u8>(a + i) ^ load<u8>(b + i));
  return difference == 0;
}

// After the keys: move on if the initiator asked to and the target is ready (RFC 7143, Login Phase: the target
// answers T=1 only when asked, and T=0 while the stage has more to do).
function transition(c: LoginConnection, bhs: usize, response: usize, responseData: usize): LoginOutcome {
  const wantsTransit = loginTransit(bhs);
  const nsg = loginNsg(bhs);
  let transit = false;
  if (wantsTransit) {
    const config = authConfig(c);
    if (c.stage == STAGE_SECURITY && !authDone(c, config)) {
      // Mid-CHAP the initiator may ask ahead (libiscsi sets T with its AuthMethod offer); without CHAP under way
      // it is leaving unauthenticated.
      if (c.auth == AuthState.Open) return loginFail(c, LOGIN_AUTHENTICATION_FAILURE, response);
    } else {
      transit = true;
    }
  }
  if (transit && nsg == STAGE_FULL_FEATURE && c.negotiation.params.firstBurstLength > c.negotiation.params.maxBurstLength) {
    return loginFail(c, LOGIN_INITIATOR_ERROR, response); // offers that broke FirstBurstLength ≤ MaxBurstLength
  }
  const dataBytes = c.out.lengthBytes;
  pduZeroPadding(responseData, dataBytes);
  const outcome = respond(c, transit, nsg, response);
  c.responseDataBytes = dataBytes;
  bhsSetDataSegmentLength(response, dataBytes);
  if (transit) {
    c.stage = nsg;
    if (nsg == STAGE_FULL_FEATURE) {
      c.state = LoginState.FullFeature;
      return LoginOutcome.Complete;
    }
    c.state = LoginState.Operational;
    if (c.auth == AuthState.Open) c.auth = AuthState.NoneChosen;
  }
  return outcome;
}

// A success response without data (its length is set afterwards when there is text); StatSN advances.
function respond(c: LoginConnection, transit: bool, nsg: u32, response: usize): LoginOutcome {
  buildLoginResponse(response, transit, false, c.stage, transit ? nsg : 0, c.requestIsid, c.requestTsih, c.itt,
    c.statSn, c.requestCmdSn, c.requestCmdSn + c.cmdWindow - 1, LOGIN_SUCCESS, 0);
  c.statSn += 1;
  return LoginOutcome.Continue;
}

// RFC 7143, Login Response, Status-Class 1 (Redirection): Target Moved Temporarily with the TargetAddress processText
// wrote; T=0, and the connection is to close (the initiator logs in at the address given). No other key goes with it.
function loginRedirect(c: LoginConnection, response: usize, responseData: usize): LoginOutcome {
  const dataBytes = c.out.lengthBytes;
  assert(dataBytes > 0, "loginRedirect: a TargetAddress was written");
  pduZeroPadding(responseData, dataBytes);
  buildLoginResponse(response, false, false, c.stage, 0, c.requestIsid, c.requestTsih, c.itt, c.statSn, c.requestCmdSn,
    c.requestCmdSn + c.cmdWindow - 1, LOGIN_TARGET_MOVED_TEMPORARILY, 0);
  bhsSetDataSegmentLength(response, dataBytes);
  c.responseDataBytes = dataBytes;
  c.status = LOGIN_TARGET_MOVED_TEMPORARILY;
  c.state = LoginState.Failed;
  line().s("iscsi: login redirected (target moved temporarily) initiator ").bytes(c.initiatorName, c.initiatorNameBytes).out();
  return LoginOutcome.Failed;
}

// A failure response (no data); the connection is to close. One console line says why, for the operator.
function loginFail(c: LoginConnection, status: u32, response: usize): LoginOutcome {
  line().s("iscsi: login refused, status ").hex(<u64>status, 4).s(" initiator ")
    .bytes(c.initiatorName, c.initiatorNameBytes).s(c.initiatorNameBytes == 0 ? "-" : "").out();
  buildLoginResponse(response, false, false, c.stage <= STAGE_OPERATIONAL ? c.stage : STAGE_OPERATIONAL, 0,
    c.requestIsid, c.requestTsih, c.itt, c.statSn, c.requestCmdSn, c.requestCmdSn + c.cmdWindow - 1, status, 0);
  c.responseDataBytes = 0;
  c.status = status;
  c.state = LoginState.Failed;
  return LoginOutcome.Failed;
}
