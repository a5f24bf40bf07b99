#define _GNU_SOURCE
#include "scsi_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
  OP_TEST_UNIT_READY = 0x00, OP_REQUEST_SENSE = 0x03, OP_READ_6 = 0x08, OP_WRITE_6 = 0x0a, OP_INQUIRY = 0x12,
  OP_MODE_SENSE_6 = 0x1a, OP_START_STOP_UNIT = 0x1b, OP_READ_CAPACITY_10 = 0x25, OP_READ_10 = 0x28, OP_WRITE_10 = 0x2a,
  OP_VERIFY_10 = 0x2f, OP_SYNCHRONIZE_CACHE_10 = 0x35, OP_WRITE_SAME_10 = 0x41, OP_UNMAP = 0x42, OP_MODE_SENSE_10 = 0x5a,
  OP_READ_16 = 0x88, OP_WRITE_16 = 0x8a, OP_VERIFY_16 = 0x8f, OP_SYNCHRONIZE_CACHE_16 = 0x91, OP_WRITE_SAME_16 = 0x93,
  OP_SERVICE_ACTION_IN_16 = 0x9e, OP_REPORT_LUNS = 0xa0, OP_READ_12 = 0xa8, OP_WRITE_12 = 0xaa
};
enum { KEY_NO_SENSE = 0x0, KEY_MEDIUM_ERROR = 0x3, KEY_ILLEGAL_REQUEST = 0x5, KEY_UNIT_ATTENTION = 0x6 };
static const additional_sense ASC_NONE = {0x00, 0x00}, ASC_WRITE_ERROR = {0x0c, 0x00}, ASC_UNRECOVERED_READ = {0x11, 0x00},
                              ASC_PARAMETER_LIST_LENGTH = {0x1a, 0x00}, ASC_INVALID_OPCODE = {0x20, 0x00},
                              ASC_LBA_OUT_OF_RANGE = {0x21, 0x00}, ASC_INVALID_FIELD_IN_CDB = {0x24, 0x00},
                              ASC_INVALID_FIELD_IN_PARAMETER_LIST = {0x26, 0x00}, ASC_SAVING_NOT_SUPPORTED = {0x39, 0x00};

#define MIB (1024u * 1024u)
#define UNMAP_LENGTH_MAX_BYTES (32u * MIB)
#define UNMAP_DESCRIPTOR_COUNT_MAX 64u
#define WRITE_SAME_LENGTH_MAX_BYTES UNMAP_LENGTH_MAX_BYTES
#define TRANSFER_GRANULARITY_OPTIMAL_BYTES 4096u
#define INQUIRY_STANDARD_LENGTH 96
#define BUFFER_BYTES (TRANSFER_LENGTH_MAX_BYTES + 4096)

static uint32_t be16(const uint8_t *b, int i) { return (uint32_t)b[i] << 8 | b[i + 1]; }
static uint32_t be32(const uint8_t *b, int i) { return be16(b, i) << 16 | be16(b, i + 2); }
static uint64_t be64(const uint8_t *b, int i) { return (uint64_t)be32(b, i) << 32 | be32(b, i + 4); }
static void put_be16(uint8_t *b, uint32_t v) { b[0] = (uint8_t)(v >> 8), b[1] = (uint8_t)v; }
static void put_be32(uint8_t *b, uint32_t v) { put_be16(b, v >> 16), put_be16(b + 2, v); }
static void put_be64(uint8_t *b, uint64_t v) { put_be32(b, (uint32_t)(v >> 32)), put_be32(b + 4, (uint32_t)v); }

void fixed_sense(uint8_t *sense, uint8_t key, additional_sense additional, int in_cdb, int field_byte, int field_bit) {
  memset(sense, 0, FIXED_SENSE_LENGTH_BYTES);
  sense[0] = 0x70;
  sense[2] = key;
  sense[7] = FIXED_SENSE_LENGTH_BYTES - 8;
  sense[12] = additional.asc;
  sense[13] = additional.ascq;
  if (field_byte >= 0) {
    uint8_t flags = 0x80 | (in_cdb ? 0x40 : 0);
    if (field_bit >= 0) flags |= 0x08 | (uint8_t)field_bit;
    sense[15] = flags;
    sense[16] = (uint8_t)(field_byte >> 8);
    sense[17] = (uint8_t)field_byte;
  }
}

uint32_t report_luns_data(uint8_t *out, const int *luns, int count) {
  memset(out, 0, 8 + 8 * (size_t)count);
  put_be32(out, 8u * (uint32_t)count);
  for (int i = 0; i < count; i++) out[8 + 8 * i + 1] = (uint8_t)luns[i];
  return 8 + 8 * (uint32_t)count;
}

/* What a handler produced; execute() turns it into a result against the initiator's buffers. */
typedef struct {
  uint8_t status;
  uint8_t sense[FIXED_SENSE_LENGTH_BYTES];
  const uint8_t *data;
  uint32_t data_length;
  uint32_t data_out_used;
} outcome;

static outcome good(void) {
  outcome o = {0};
  return o;
}
static outcome check(uint8_t key, additional_sense additional, int in_cdb, int byte, int bit) {
  outcome o = {0};
  o.status = SAM_STATUS_CHECK_CONDITION;
  fixed_sense(o.sense, key, additional, in_cdb, byte, bit);
  return o;
}
static outcome invalid_cdb(int byte, int bit) { return check(KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, 1, byte, bit); }
static outcome lba_out_of_range(void) { return check(KEY_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0, -1, -1); }
static outcome cut(const uint8_t *data, uint32_t length, uint32_t allocation) {
  outcome o = {0};
  o.data = data;
  o.data_length = length < allocation ? length : allocation;
  return o;
}

static void ascii_field(uint8_t *out, const char *text, size_t length) {
  memset(out, ' ', length);
  for (size_t i = 0; i < length && text[i] != 0; i++) out[i] = (uint8_t)text[i];
}

int scsi_disk_open(scsi_disk *d, const char *name, const char *path, uint64_t size_bytes, uint32_t block_size,
                   uint32_t physical_block_size, uint64_t naa, char *error, size_t error_bytes) {
  memset(d, 0, sizeof *d);
  snprintf(d->name, sizeof d->name, "%s", name);
  d->fd = -1;
  if (block_size != 512 && block_size != 4096) return snprintf(error, error_bytes, "disk %s: block size %u", name, block_size), -1;
  uint32_t ratio = physical_block_size / block_size;
  if (physical_block_size % block_size != 0 || ratio == 0 || (ratio & (ratio - 1)) != 0)
    return snprintf(error, error_bytes, "physical block size %u is not the block size %u times a power of two", physical_block_size, block_size), -1;
  while ((1u << d->physical_exponent) < ratio) d->physical_exponent++;
  int created = 0;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    created = 1;
  }
  if (fd < 0) return snprintf(error, error_bytes, "cannot open disk file %s: %s", path, strerror(errno)), -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return snprintf(error, error_bytes, "disk file %s is not a regular file", path), -1;
  }
  if (created && ftruncate(fd, (off_t)size_bytes) != 0) {
    close(fd);
    return snprintf(error, error_bytes, "cannot size disk file %s: %s", path, strerror(errno)), -1;
  }
  if (!created && (uint64_t)st.st_size != size_bytes) {
    close(fd);
    return snprintf(error, error_bytes, "disk file %s is %lld bytes; expected %llu", path, (long long)st.st_size,
                    (unsigned long long)size_bytes), -1;
  }
  d->fd = fd;
  d->size_bytes = size_bytes;
  d->block_size = block_size;
  d->block_count = size_bytes / block_size;
  d->naa = naa;
  d->buffer = malloc(BUFFER_BYTES);
  return 0;
}

void scsi_disk_close(scsi_disk *d) {
  if (d->fd >= 0) close(d->fd);
  d->fd = -1;
  free(d->buffer);
  d->buffer = NULL;
}

void scsi_disk_unit_attention(scsi_disk *d, uint8_t asc, uint8_t ascq) {
  for (int i = 0; i < d->unit_attention_count; i++)
    if (d->unit_attentions[i].asc == asc && d->unit_attentions[i].ascq == ascq) return;
  if (d->unit_attention_count < UNIT_ATTENTION_QUEUE_MAX) d->unit_attentions[d->unit_attention_count++] = (additional_sense){asc, ascq};
}

static int take_unit_attention(scsi_disk *d, additional_sense *out) {
  if (d->unit_attention_count == 0) return 0;
  *out = d->unit_attentions[0];
  memmove(d->unit_attentions, d->unit_attentions + 1, (size_t)(--d->unit_attention_count) * sizeof *out);
  return 1;
}

/* ---- the backend: pread/pwrite, fdatasync, and holes for unmap ---- */
static int backend_read(scsi_disk *d, uint64_t offset, uint8_t *into, size_t length) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(d->fd, into + done, length - done, (off_t)(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) { /* past the end of a file someone shortened: zeros */
      memset(into + done, 0, length - done);
      return 0;
    }
    done += (size_t)n;
  }
  return 0;
}
static int backend_write(scsi_disk *d, uint64_t offset, const uint8_t *data, size_t length) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pwrite(d->fd, data + done, length - done, (off_t)(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}
static int backend_flush(scsi_disk *d) { return fdatasync(d->fd); }
static int backend_unmap(scsi_disk *d, uint64_t offset, uint64_t length) {
  if (fallocate(d->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) == 0) return 0;
  /* No hole punching here: zero the range, skipping steps that already read as zeros (as the JS backend). */
  static uint8_t step[64 * 1024];
  for (uint64_t done = 0; done < length;) {
    size_t n = length - done < sizeof step ? (size_t)(length - done) : sizeof step;
    if (backend_read(d, offset + done, step, n) != 0) return -1;
    int zero = 1;
    for (size_t i = 0; i < n && zero; i++) zero = step[i] == 0;
    if (!zero) {
      memset(step, 0, n);
      if (backend_write(d, offset + done, step, n) != 0) return -1;
    }
    done += n;
  }
  return 0;
}

static outcome written(outcome done, int failed) {
  return failed ? check(KEY_MEDIUM_ERROR, ASC_WRITE_ERROR, 0, -1, -1) : done;
}
static outcome flushed(scsi_disk *d, outcome done) { return written(done, backend_flush(d) != 0); }

static int cdb_length_of(uint8_t opcode) {
  switch (opcode >> 5) {
    case 0: return 6;
    case 1: case 2: return 10;
    case 4: return 16;
    case 5: return 12;
    default: return 0;
  }
}

typedef struct {
  uint64_t lba;
  uint32_t block_count;
  int fua, protect, count_byte;
} block_transfer;

static block_transfer decode_transfer(const uint8_t *cdb) {
  uint8_t flags = cdb[1];
  block_transfer t = {0};
  switch (cdb[0]) {
    case OP_READ_6: case OP_WRITE_6:
      t.lba = (uint64_t)((flags & 0x1f) << 16 | be16(cdb, 2));
      t.block_count = cdb[4] != 0 ? cdb[4] : 256;
      t.count_byte = 4;
      return t;
    case OP_READ_10: case OP_WRITE_10:
      t.lba = be32(cdb, 2), t.block_count = be16(cdb, 7), t.count_byte = 7;
      break;
    case OP_READ_12: case OP_WRITE_12:
      t.lba = be32(cdb, 2), t.block_count = be32(cdb, 6), t.count_byte = 6;
      break;
    default:
      t.lba = be64(cdb, 2), t.block_count = be32(cdb, 10), t.count_byte = 10;
  }
  t.fua = (flags & 0x08) != 0;
  t.protect = flags >> 5;
  return t;
}

static int out_of_range(const scsi_disk *d, uint64_t lba, uint64_t count) {
  return lba >= d->block_count || count > d->block_count - lba;
}

static int check_transfer(const scsi_disk *d, const block_transfer *t, outcome *refused) {
  if (t->protect != 0) return *refused = invalid_cdb(1, 7), 1;
  if (t->block_count > TRANSFER_LENGTH_MAX_BYTES / d->block_size) return *refused = invalid_cdb(t->count_byte, -1), 1;
  if (out_of_range(d, t->lba, t->block_count)) return *refused = lba_out_of_range(), 1;
  return 0;
}

static outcome on_inquiry(scsi_disk *d, const uint8_t *cdb) {
  uint8_t flags = cdb[1], page_code = cdb[2];
  uint32_t allocation = be16(cdb, 3);
  uint8_t *b = d->buffer;
  if (flags & 0x02) return invalid_cdb(1, 1);
  if ((flags & 0x01) == 0) {
    if (page_code != 0) return invalid_cdb(2, -1);
    memset(b, 0, INQUIRY_STANDARD_LENGTH);
    b[2] = 0x06;
    b[3] = 0x12;
    b[4] = INQUIRY_STANDARD_LENGTH - 5;
    b[7] = 0x02;
    ascii_field(b + 8, "WASM-IOP", 8);
    ascii_field(b + 16, "VIRTUAL DISK", 16);
    ascii_field(b + 32, "0001", 4);
    put_be16(b + 58, 0x00a0);
    put_be16(b + 60, 0x0460);
    put_be16(b + 62, 0x04c0);
    return cut(b, INQUIRY_STANDARD_LENGTH, allocation);
  }
  memset(b, 0, 4 + 0x3c + 200);
  b[1] = page_code;
  uint8_t *body = b + 4;
  uint32_t length;
  size_t serial_length = strlen(d->name);
  switch (page_code) {
    case 0x00: {
      static const uint8_t pages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};
      memcpy(body, pages, sizeof pages);
      length = sizeof pages;
      break;
    }
    case 0x80:
      ascii_field(body, d->name, serial_length);
      length = (uint32_t)serial_length;
      break;
    case 0x83: {
      static const uint8_t naa_header[] = {0x01, 0x03, 0x00, 0x08};
      memcpy(body, naa_header, 4);
      put_be64(body + 4, d->naa);
      uint8_t *t10 = body + 12;
      t10[0] = 0x02, t10[1] = 0x01, t10[2] = 0x00, t10[3] = (uint8_t)(8 + 16 + serial_length);
      ascii_field(t10 + 4, "WASM-IOP", 8);
      ascii_field(t10 + 12, "VIRTUAL DISK", 16);
      ascii_field(t10 + 28, d->name, serial_length);
      length = 12 + 4 + 8 + 16 + (uint32_t)serial_length;
      break;
    }
    case 0xb0: {
      uint32_t max_blocks = TRANSFER_LENGTH_MAX_BYTES / d->block_size;
      uint32_t granularity = 1u << d->physical_exponent;
      if (TRANSFER_GRANULARITY_OPTIMAL_BYTES / d->block_size > granularity) granularity = TRANSFER_GRANULARITY_OPTIMAL_BYTES / d->block_size;
      body[0] = 0x01;
      put_be16(body + 2, granularity);
      put_be32(body + 4, max_blocks);
      put_be32(body + 8, max_blocks);
      put_be32(body + 16, UNMAP_LENGTH_MAX_BYTES / d->block_size);
      put_be32(body + 20, UNMAP_DESCRIPTOR_COUNT_MAX);
      put_be32(body + 24, granularity);
      put_be32(body + 28, 0x80000000u);
      put_be64(body + 32, WRITE_SAME_LENGTH_MAX_BYTES / d->block_size);
      length = 0x3c;
      break;
    }
    case 0xb1:
      body[1] = 0x01;
      length = 0x3c;
      break;
    case 0xb2:
      body[1] = 0x80 | 0x40 | 0x20 | 0x04;
      body[2] = 0x02;
      length = 4;
      break;
    default:
      return invalid_cdb(2, -1);
  }
  put_be16(b + 2, length);
  return cut(b, 4 + length, allocation);
}

static uint32_t mode_pages(uint8_t *out, uint8_t page_code, int changeable) {
  uint8_t caching[20] = {0x08, 0x12, (uint8_t)(changeable ? 0x00 : 0x04)};
  uint8_t control[12] = {0x0a, 0x0a};
  switch (page_code) {
    case 0x08: memcpy(out, caching, 20); return 20;
    case 0x0a: memcpy(out, control, 12); return 12;
    case 0x3f: memcpy(out, caching, 20), memcpy(out + 20, control, 12); return 32;
    default: return 0;
  }
}

static outcome on_mode_sense(scsi_disk *d, const uint8_t *cdb) {
  int is10 = cdb[0] == OP_MODE_SENSE_10;
  uint8_t flags = cdb[1], page_control = cdb[2] >> 6, page_code = cdb[2] & 0x3f, subpage = cdb[3];
  uint32_t allocation = is10 ? be16(cdb, 7) : cdb[4];
  if (page_control == 3) return check(KEY_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED, 1, 2, 7);
  uint8_t pages[32];
  uint32_t pages_length = mode_pages(pages, page_code, page_control == 1);
  if (pages_length == 0) return invalid_cdb(2, 5);
  if (subpage != 0x00 && subpage != 0xff) return invalid_cdb(3, -1);
  uint8_t descriptor[16] = {0};
  uint32_t descriptor_length = 0;
  if ((flags & 0x08) == 0) {
    int is_long = is10 && (flags & 0x10) != 0;
    descriptor_length = is_long ? 16 : 8;
    if (page_control != 1) {
      if (is_long) put_be64(descriptor, d->block_count), put_be32(descriptor + 12, d->block_size);
      else put_be32(descriptor, d->block_count < 0xffffffffu ? (uint32_t)d->block_count : 0xffffffffu), put_be32(descriptor + 4, d->block_size);
    }
  }
  uint8_t *b = d->buffer;
  uint32_t header_length;
  if (is10) {
    memset(b, 0, 8);
    put_be16(b, 6 + descriptor_length + pages_length);
    b[3] = 0x10;
    b[4] = descriptor_length == 16 ? 0x01 : 0x00;
    put_be16(b + 6, descriptor_length);
    header_length = 8;
  } else {
    b[0] = (uint8_t)(3 + descriptor_length + pages_length), b[1] = 0, b[2] = 0x10, b[3] = (uint8_t)descriptor_length;
    header_length = 4;
  }
  memcpy(b + header_length, descriptor, descriptor_length);
  memcpy(b + header_length + descriptor_length, pages, pages_length);
  return cut(b, header_length + descriptor_length + pages_length, allocation);
}

static outcome on_write_same(scsi_disk *d, const uint8_t *cdb, const uint8_t *data_out, uint32_t data_out_length) {
  int is16 = cdb[0] == OP_WRITE_SAME_16;
  uint8_t flags = cdb[1];
  uint64_t lba = is16 ? be64(cdb, 2) : be32(cdb, 2);
  uint32_t count = is16 ? be32(cdb, 10) : be16(cdb, 7);
  int count_byte = is16 ? 10 : 7;
  if (flags >> 5) return invalid_cdb(1, 7);
  if (flags & 0x10) return invalid_cdb(1, 4);
  if (flags & 0x06) return invalid_cdb(1, 2);
  if (flags & 0x01) return invalid_cdb(1, 0);
  if (count == 0) return invalid_cdb(count_byte, -1);
  if (count > WRITE_SAME_LENGTH_MAX_BYTES / d->block_size) return invalid_cdb(count_byte, -1);
  if (out_of_range(d, lba, count)) return lba_out_of_range();
  if (data_out_length < d->block_size) return invalid_cdb(count_byte, -1);
  outcome done = good();
  done.data_out_used = d->block_size;
  uint64_t offset = lba * d->block_size;
  int zero = 1;
  for (uint32_t i = 0; i < d->block_size && zero; i++) zero = data_out[i] == 0;
  if ((flags & 0x08) && zero) return written(done, backend_unmap(d, offset, (uint64_t)count * d->block_size) != 0);
  uint32_t batch_blocks = count < TRANSFER_LENGTH_MAX_BYTES / d->block_size ? count : TRANSFER_LENGTH_MAX_BYTES / d->block_size;
  for (uint32_t i = 0; i < batch_blocks; i++) memcpy(d->buffer + (size_t)i * d->block_size, data_out, d->block_size);
  for (uint32_t done_blocks = 0; done_blocks < count; done_blocks += batch_blocks) {
    uint32_t step = count - done_blocks < batch_blocks ? count - done_blocks : batch_blocks;
    if (backend_write(d, offset + (uint64_t)done_blocks * d->block_size, d->buffer, (size_t)step * d->block_size) != 0)
      return written(done, 1);
  }
  return done;
}

static outcome on_unmap(scsi_disk *d, const uint8_t *cdb, const uint8_t *data_out, uint32_t data_out_length) {
  if (cdb[1] & 0x01) return invalid_cdb(1, 0);
  uint32_t list_length = be16(cdb, 7);
  if (list_length == 0) return good();
  if (list_length < 8 || data_out_length < list_length) return check(KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH, 1, 7, -1);
  const uint8_t *list = data_out;
  uint32_t descriptor_bytes = be16(list, 2) < list_length - 8 ? be16(list, 2) : list_length - 8;
  uint32_t descriptor_count = descriptor_bytes / 16;
  if (descriptor_count > UNMAP_DESCRIPTOR_COUNT_MAX) return check(KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, 0, 2, -1);
  uint64_t total = 0;
  for (uint32_t i = 0; i < descriptor_count; i++) {
    int at = 8 + 16 * (int)i;
    uint64_t lba = be64(list, at);
    uint32_t count = be32(list, at + 8);
    total += count;
    if (total > UNMAP_LENGTH_MAX_BYTES / d->block_size) return check(KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, 0, at + 8, -1);
    if (count == 0) continue;
    if (out_of_range(d, lba, count)) return lba_out_of_range();
  }
  outcome done = good();
  done.data_out_used = list_length;
  for (uint32_t i = 0; i < descriptor_count; i++) {
    int at = 8 + 16 * (int)i;
    uint32_t count = be32(list, at + 8);
    if (count == 0) continue;
    if (backend_unmap(d, be64(list, at) * d->block_size, (uint64_t)count * d->block_size) != 0) return written(done, 1);
  }
  return done;
}

static outcome dispatch(scsi_disk *d, const uint8_t *cdb, const uint8_t *data_out, uint32_t data_out_length) {
  switch (cdb[0]) {
    case OP_TEST_UNIT_READY: return good();
    case OP_REQUEST_SENSE: {
      if (cdb[1] & 0x01) return invalid_cdb(1, 0);
      additional_sense ua;
      if (take_unit_attention(d, &ua)) fixed_sense(d->buffer, KEY_UNIT_ATTENTION, ua, 0, -1, -1);
      else fixed_sense(d->buffer, KEY_NO_SENSE, ASC_NONE, 0, -1, -1);
      return cut(d->buffer, FIXED_SENSE_LENGTH_BYTES, cdb[4]);
    }
    case OP_INQUIRY: return on_inquiry(d, cdb);
    case OP_MODE_SENSE_6: case OP_MODE_SENSE_10: return on_mode_sense(d, cdb);
    case OP_START_STOP_UNIT: {
      int start = (cdb[4] & 0x01) != 0, no_flush = (cdb[4] & 0x04) != 0;
      return !start && !no_flush ? flushed(d, good()) : good();
    }
    case OP_READ_CAPACITY_10: {
      int pmi = (cdb[8] & 0x01) != 0;
      if (!pmi && be32(cdb, 2) != 0) return invalid_cdb(2, -1);
      put_be32(d->buffer, d->block_count - 1 < 0xffffffffu ? (uint32_t)(d->block_count - 1) : 0xffffffffu);
      put_be32(d->buffer + 4, d->block_size);
      return cut(d->buffer, 8, 8);
    }
    case OP_SERVICE_ACTION_IN_16: {
      if ((cdb[1] & 0x1f) != 0x10) return invalid_cdb(1, 4);
      int pmi = (cdb[14] & 0x01) != 0;
      if (!pmi && be64(cdb, 2) != 0) return invalid_cdb(2, -1);
      memset(d->buffer, 0, 32);
      put_be64(d->buffer, d->block_count - 1);
      put_be32(d->buffer + 8, d->block_size);
      d->buffer[13] = (uint8_t)d->physical_exponent;
      d->buffer[14] = 0x80 | 0x40;
      return cut(d->buffer, 32, be32(cdb, 10));
    }
    case OP_READ_6: case OP_READ_10: case OP_READ_12: case OP_READ_16: {
      block_transfer t = decode_transfer(cdb);
      outcome refused;
      if (check_transfer(d, &t, &refused)) return refused;
      size_t length = (size_t)t.block_count * d->block_size;
      if (backend_read(d, t.lba * d->block_size, d->buffer, length) != 0) return check(KEY_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0, -1, -1);
      return cut(d->buffer, (uint32_t)length, (uint32_t)length);
    }
    case OP_WRITE_6: case OP_WRITE_10: case OP_WRITE_12: case OP_WRITE_16: {
      block_transfer t = decode_transfer(cdb);
      outcome refused;
      if (check_transfer(d, &t, &refused)) return refused;
      uint32_t length = t.block_count * d->block_size;
      if (data_out_length < length) return invalid_cdb(t.count_byte, -1);
      outcome done = good();
      done.data_out_used = length;
      outcome w = written(done, backend_write(d, t.lba * d->block_size, data_out, length) != 0);
      return t.fua && w.status == SAM_STATUS_GOOD ? flushed(d, w) : w;
    }
    case OP_VERIFY_10: case OP_VERIFY_16: {
      int is16 = cdb[0] == OP_VERIFY_16;
      uint64_t lba = is16 ? be64(cdb, 2) : be32(cdb, 2);
      uint32_t count = is16 ? be32(cdb, 10) : be16(cdb, 7);
      if (cdb[1] >> 5) return invalid_cdb(1, 7);
      if (cdb[1] & 0x06) return invalid_cdb(1, 2);
      if (count > TRANSFER_LENGTH_MAX_BYTES / d->block_size) return invalid_cdb(is16 ? 10 : 7, -1);
      return out_of_range(d, lba, count) ? lba_out_of_range() : good();
    }
    case OP_SYNCHRONIZE_CACHE_10: case OP_SYNCHRONIZE_CACHE_16: {
      int is16 = cdb[0] == OP_SYNCHRONIZE_CACHE_16;
      uint64_t lba = is16 ? be64(cdb, 2) : be32(cdb, 2);
      uint32_t count = is16 ? be32(cdb, 10) : be16(cdb, 7);
      if (out_of_range(d, lba, count)) return lba_out_of_range();
      return flushed(d, good());
    }
    case OP_WRITE_SAME_10: case OP_WRITE_SAME_16: return on_write_same(d, cdb, data_out, data_out_length);
    case OP_UNMAP: return on_unmap(d, cdb, data_out, data_out_length);
    default: return check(KEY_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0, -1, -1);
  }
}

void scsi_disk_execute(scsi_disk *d, const uint8_t *cdb, size_t cdb_length, const uint8_t *data_out, uint32_t data_out_length,
                       uint32_t data_in_capacity, scsi_result *r) {
  memset(r, 0, sizeof *r);
  outcome o;
  int opcode = cdb_length > 0 ? cdb[0] : -1;
  additional_sense ua;
  int cdb_needed = opcode < 0 ? 0 : cdb_length_of((uint8_t)opcode);
  if (opcode != OP_INQUIRY && opcode != OP_REPORT_LUNS && opcode != OP_REQUEST_SENSE && take_unit_attention(d, &ua))
    o = check(KEY_UNIT_ATTENTION, ua, 0, -1, -1);
  else if (cdb_needed == 0) o = check(KEY_ILLEGAL_REQUEST, ASC_INVALID_OPCODE, 0, -1, -1);
  else if (cdb_length < (size_t)cdb_needed) o = check(KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, 0, -1, -1);
  else if (cdb[cdb_needed - 1] & 0x04) o = invalid_cdb(cdb_needed - 1, 2); /* NACA */
  else if (cdb[cdb_needed - 1] & 0x01) o = invalid_cdb(cdb_needed - 1, 0); /* LINK */
  else o = dispatch(d, cdb, data_out, data_out_length);
  r->status = o.status;
  if (o.status != SAM_STATUS_GOOD) {
    memcpy(r->sense, o.sense, FIXED_SENSE_LENGTH_BYTES);
    r->sense_length = FIXED_SENSE_LENGTH_BYTES;
    r->residual_bytes = (uint64_t)data_out_length + data_in_capacity;
    return;
  }
  uint32_t delivered = o.data_length < data_in_capacity ? o.data_length : data_in_capacity;
  r->data_in = o.data;
  r->data_in_length = delivered;
  r->residual_bytes = (uint64_t)(data_in_capacity - delivered) + data_out_length - o.data_out_used;
}
