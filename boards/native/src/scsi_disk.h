/* A SCSI direct-access logical unit (SBC-3) over a sparse disk file, as host/devices/scsi_disk.ts and the file
 * backend of host/devices/disk_backend.ts: the same commands, checks, sense data and limits. */
#ifndef IOP_SCSI_DISK_H
#define IOP_SCSI_DISK_H
#include <stddef.h>
#include <stdint.h>

#define SAM_STATUS_GOOD 0x00
#define SAM_STATUS_CHECK_CONDITION 0x02
#define FIXED_SENSE_LENGTH_BYTES 18
#define TRANSFER_LENGTH_MAX_BYTES (1u << 20)
#define UNIT_ATTENTION_QUEUE_MAX 8

typedef struct {
  uint8_t asc, ascq;
} additional_sense;

typedef struct {
  char name[64];
  int fd;
  uint64_t size_bytes;
  uint32_t block_size;
  uint64_t block_count;
  int physical_exponent;
  uint64_t naa;
  additional_sense unit_attentions[UNIT_ATTENTION_QUEUE_MAX];
  int unit_attention_count;
  uint8_t *buffer; /* TRANSFER_LENGTH_MAX_BYTES + room for the pages: the Data-In of the last command */
} scsi_disk;

typedef struct {
  uint8_t status;
  uint8_t sense[FIXED_SENSE_LENGTH_BYTES];
  uint32_t sense_length;
  const uint8_t *data_in; /* into the disk's buffer; valid until its next command */
  uint32_t data_in_length;
  uint64_t residual_bytes;
} scsi_result;

/* Opens (or creates sparse) the disk file; -1 with a message. */
int scsi_disk_open(scsi_disk *d, const char *name, const char *path, uint64_t size_bytes, uint32_t block_size,
                   uint32_t physical_block_size, uint64_t naa, char *error, size_t error_bytes);
void scsi_disk_close(scsi_disk *d);
void scsi_disk_unit_attention(scsi_disk *d, uint8_t asc, uint8_t ascq);
void scsi_disk_execute(scsi_disk *d, const uint8_t *cdb, size_t cdb_length, const uint8_t *data_out, uint32_t data_out_length,
                       uint32_t data_in_capacity, scsi_result *result);
/* Fixed-format sense for a current error; `field_byte` < 0: no field pointer; `field_bit` < 0: the whole byte. */
void fixed_sense(uint8_t *sense, uint8_t key, additional_sense additional, int in_cdb, int field_byte, int field_bit);
/* SPC-4 REPORT LUNS parameter data for `count` LUNs (peripheral addressing); returns its length. */
uint32_t report_luns_data(uint8_t *out, const int *luns, int count);
#endif
