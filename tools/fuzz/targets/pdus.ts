// PDUs the fuzzing targets build beyond the initiator's own (RFC 7143 layouts).
import { lunField, Op, pdu } from "../../iscsi/pdu.ts";

export const lunFieldOf = lunField;

/** A Task Management Function Request: function `fn`, referencing task `referencedItt`. */
export function tmfRequest(fn: number, lun: Uint8Array, itt: number, referencedItt: number, cmdSn: number, expStatSn: number): Uint8Array {
  return pdu((bhs, v) => {
    bhs[0] = 0x40 | Op.TmfRequest;
    bhs[1] = 0x80 | (fn & 0x7f);
    bhs.set(lun, 8);
    v.setUint32(16, itt);
    v.setUint32(20, referencedItt);
    v.setUint32(24, cmdSn);
    v.setUint32(28, expStatSn);
    v.setUint32(32, cmdSn);
  });
}

/** A PDU from raw header bytes: opcode and flags given, the rest of the BHS from `rest`, DSL from `data`. */
export function rawPdu(opcode: number, flags: number, rest: Uint8Array, data: Uint8Array, cmdSn: number, expStatSn: number, keepNumbers: boolean): Uint8Array {
  return pdu((bhs, v) => {
    bhs.set(rest.subarray(0, 40), 8);
    bhs[0] = opcode;
    bhs[1] = flags;
    bhs[4] = 0; // no AHS: the input cannot describe one consistently
    if (keepNumbers) {
      v.setUint32(24, cmdSn);
      v.setUint32(28, expStatSn);
    }
  }, data);
}
