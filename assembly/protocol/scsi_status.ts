// SAM status codes (SAM-5, Status codes): the status byte that ends every SCSI command. The SCSI target
// (assembly/scsi/) sets it on the commands it answers, the virtio-scsi DDM (assembly/ddm/virtio_scsi/) reads it from
// its disks' responses; the DDM sits below the target and may not import assembly/scsi/ (see sense_keys.ts).

export const SAM_STATUS_GOOD: u32 = 0x00;
export const SAM_STATUS_CHECK_CONDITION: u32 = 0x02;
export const SAM_STATUS_CONDITION_MET: u32 = 0x04;
export const SAM_STATUS_BUSY: u32 = 0x08;
export const SAM_STATUS_RESERVATION_CONFLICT: u32 = 0x18;
export const SAM_STATUS_TASK_SET_FULL: u32 = 0x28;
export const SAM_STATUS_ACA_ACTIVE: u32 = 0x30;
export const SAM_STATUS_TASK_ABORTED: u32 = 0x40;
