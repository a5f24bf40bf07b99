// SCSI operation codes and service actions (SPC-4 and SBC-3, the command descriptions): byte 0 of a CDB, and byte 1
// of the commands that carry a service action. The SCSI target (assembly/scsi/) decodes them from initiators, the
// virtio-scsi DDM (assembly/ddm/virtio_scsi/) builds CDBs with them for its disks; the DDM sits below the target and
// may not import assembly/scsi/ (see sense_keys.ts). One type, u32, as the target compares them with CDB bytes it
// reads widened; the DDM casts to u8 where it stores one.

export const OP_TEST_UNIT_READY: u32 = 0x00;
export const OP_REQUEST_SENSE: u32 = 0x03;
export const OP_READ_6: u32 = 0x08;
export const OP_WRITE_6: u32 = 0x0a;
export const OP_INQUIRY: u32 = 0x12;
export const OP_MODE_SELECT_6: u32 = 0x15;
export const OP_RESERVE_6: u32 = 0x16;
export const OP_RELEASE_6: u32 = 0x17;
export const OP_MODE_SENSE_6: u32 = 0x1a;
export const OP_START_STOP_UNIT: u32 = 0x1b;
export const OP_PREVENT_ALLOW_MEDIUM_REMOVAL: u32 = 0x1e;
export const OP_READ_CAPACITY_10: u32 = 0x25;
export const OP_READ_10: u32 = 0x28;
export const OP_WRITE_10: u32 = 0x2a;
export const OP_WRITE_AND_VERIFY_10: u32 = 0x2e;
export const OP_VERIFY_10: u32 = 0x2f;
export const OP_PRE_FETCH_10: u32 = 0x34;
export const OP_SYNCHRONIZE_CACHE_10: u32 = 0x35;
export const OP_READ_DEFECT_DATA_10: u32 = 0x37;
export const OP_WRITE_SAME_10: u32 = 0x41;
export const OP_UNMAP: u32 = 0x42;
export const OP_SANITIZE: u32 = 0x48;
export const OP_MODE_SELECT_10: u32 = 0x55;
export const OP_MODE_SENSE_10: u32 = 0x5a;
export const OP_PERSISTENT_RESERVE_IN: u32 = 0x5e;
export const OP_PERSISTENT_RESERVE_OUT: u32 = 0x5f;
export const OP_EXTENDED_COPY: u32 = 0x83;
export const OP_RECEIVE_COPY_RESULTS: u32 = 0x84;
export const OP_READ_16: u32 = 0x88;
export const OP_COMPARE_AND_WRITE: u32 = 0x89;
export const OP_WRITE_16: u32 = 0x8a;
export const OP_ORWRITE_16: u32 = 0x8b;
export const OP_WRITE_AND_VERIFY_16: u32 = 0x8e;
export const OP_VERIFY_16: u32 = 0x8f;
export const OP_PRE_FETCH_16: u32 = 0x90;
export const OP_SYNCHRONIZE_CACHE_16: u32 = 0x91;
export const OP_WRITE_SAME_16: u32 = 0x93;
export const OP_WRITE_ATOMIC_16: u32 = 0x9c;
export const OP_SERVICE_ACTION_IN_16: u32 = 0x9e;
export const OP_REPORT_LUNS: u32 = 0xa0;
export const OP_MAINTENANCE_IN: u32 = 0xa3;
export const OP_READ_12: u32 = 0xa8;
export const OP_WRITE_12: u32 = 0xaa;
export const OP_WRITE_AND_VERIFY_12: u32 = 0xae;
export const OP_VERIFY_12: u32 = 0xaf;
export const OP_READ_DEFECT_DATA_12: u32 = 0xb7;

// Service actions, in byte 1 under the opcode that names them.
export const SA_READ_CAPACITY_16: u32 = 0x10;
export const SA_GET_LBA_STATUS: u32 = 0x12;
export const SA_REPORT_REFERRALS: u32 = 0x13; // SBC-3, under SERVICE ACTION IN (16)
export const SA_REPORT_TARGET_PORT_GROUPS: u32 = 0x0a; // SPC-4, under MAINTENANCE IN
export const SA_REPORT_SUPPORTED_OPERATION_CODES: u32 = 0x0c;
export const SA_REPORT_SUPPORTED_TMFS: u32 = 0x0d;
export const SA_SANITIZE_OVERWRITE: u32 = 0x01;
export const SA_SANITIZE_BLOCK_ERASE: u32 = 0x02;
export const SA_SANITIZE_CRYPTOGRAPHIC_ERASE: u32 = 0x03;
export const SA_SANITIZE_EXIT_FAILURE_MODE: u32 = 0x1f;
