// SCSI sense keys (SPC-4, Sense key descriptions): the 4-bit class of a CHECK CONDITION's sense data.
// assembly/protocol/ holds the protocol constants more than one layer speaks: numbers only, no imports and no code, so
// that any layer may import them without pointing up. Here the SCSI target (assembly/scsi/, which builds sense data)
// and the virtio-scsi DDM (assembly/ddm/virtio_scsi/, which reads a device's) both use the sense keys; the DDM sits
// below the target (tts → cta → rta → ddm) and may not import assembly/scsi/.

export const SENSE_KEY_NO_SENSE: u32 = 0x0;
export const SENSE_KEY_RECOVERED_ERROR: u32 = 0x1;
export const SENSE_KEY_NOT_READY: u32 = 0x2;
export const SENSE_KEY_MEDIUM_ERROR: u32 = 0x3;
export const SENSE_KEY_HARDWARE_ERROR: u32 = 0x4;
export const SENSE_KEY_ILLEGAL_REQUEST: u32 = 0x5;
export const SENSE_KEY_UNIT_ATTENTION: u32 = 0x6;
export const SENSE_KEY_DATA_PROTECT: u32 = 0x7;
export const SENSE_KEY_COPY_ABORTED: u32 = 0xa;
export const SENSE_KEY_ABORTED_COMMAND: u32 = 0xb;
export const SENSE_KEY_MISCOMPARE: u32 = 0xe;
