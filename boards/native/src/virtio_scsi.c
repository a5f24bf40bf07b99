#include "virtio_scsi.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_VENDOR_ID 0x1af4
#define VIRTIO_SCSI_DEVICE_ID 0x1048
#define VIRTIO_SCSI_CLASS_CODE 0x010000
#define BAR_REGISTERS 0
#define BAR_MSIX 4
#define VECTOR_COUNT 4
#define COMMON_OFFSET 0x0000
#define ISR_OFFSET 0x1000
#define DEVICE_OFFSET 0x2000
#define NOTIFY_OFFSET 0x3000
#define NOTIFY_OFF_MULTIPLIER 4
#define COMMON_LENGTH 0x40
#define DEVICE_LENGTH 36
enum {
  C_DEVICE_FEATURE_SELECT = 0x00, C_DEVICE_FEATURE = 0x04, C_DRIVER_FEATURE_SELECT = 0x08, C_DRIVER_FEATURE = 0x0c,
  C_CONFIG_MSIX_VECTOR = 0x10, C_NUM_QUEUES = 0x12, C_DEVICE_STATUS = 0x14, C_CONFIG_GENERATION = 0x15,
  C_QUEUE_SELECT = 0x16, C_QUEUE_SIZE = 0x18, C_QUEUE_MSIX_VECTOR = 0x1a, C_QUEUE_ENABLE = 0x1c, C_QUEUE_NOTIFY_OFF = 0x1e,
  C_QUEUE_DESC = 0x20, C_QUEUE_DRIVER = 0x28, C_QUEUE_DEVICE = 0x30, C_QUEUE_NOTIF_CONFIG_DATA = 0x38
};
enum { S_ACKNOWLEDGE = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 64 };
#define VERSION_1_WORD 1
#define MSI_NO_VECTOR 0xffff
#define ISR_QUEUE 1
#define ISR_CONFIG 2
#define SENSE_SIZE_DEFAULT 96
#define CDB_SIZE_DEFAULT 32
#define SEG_MAX 128
#define MAX_SECTORS 0xffff
#define EVENT_INFO_SIZE 16
#define QUEUE_CONTROL 0
#define QUEUE_EVENT 1
#define QUEUE_REQUEST 2
#define DESC_BYTES 16
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define DESC_F_INDIRECT 4
#define AVAIL_F_NO_INTERRUPT 1
#define CMD_REQ_FIXED 19
#define CMD_RESP_FIXED 12
enum {
  R_OK = 0, R_OVERRUN = 1, R_ABORTED = 2, R_BAD_TARGET = 3, R_RESET = 4, R_BUSY = 5, R_TRANSPORT_FAILURE = 6,
  R_TARGET_FAILURE = 7, R_NEXUS_FAILURE = 8, R_FAILURE = 9, R_FUNCTION_COMPLETE = 0, R_FUNCTION_SUCCEEDED = 10,
  R_FUNCTION_REJECTED = 11
};
enum { TMF_ABORT_TASK, TMF_ABORT_TASK_SET, TMF_CLEAR_ACA, TMF_CLEAR_TASK_SET, TMF_I_T_NEXUS_RESET, TMF_LOGICAL_UNIT_RESET,
       TMF_QUERY_TASK, TMF_QUERY_TASK_SET };
#define TMF_REQ_BYTES 24
#define AN_REQ_BYTES 16
#define AN_RESP_BYTES 5
#define OPCODE_REPORT_LUNS 0xa0
#define DATA_BYTES_MAX (MAX_SECTORS * 512u)
#define CHAIN_BYTES_MAX (1ull << 32)
#define LUN_REPORT_LUNS (-2)
#define LUN_NONE (-1)

typedef struct {
  uint64_t address;
  uint32_t length;
} segment;

typedef struct {
  uint16_t head;
  segment *readable, *writable;
  uint32_t readable_count, writable_count;
  uint64_t readable_bytes, writable_bytes;
} chain;

struct virtio_request {
  virtio_scsi *v;
  virtio_request *next, *prev;
  int queue_index;
  uint16_t head;
  segment *writable;
  uint32_t writable_count;
  uint8_t *header;
  uint32_t header_length;
  uint8_t *data_in;
  uint32_t data_in_length;
  uint64_t tag;
  int lun;
  uint64_t data_in_capacity, data_out_bytes;
  clock_event *handle; /* NULL while a broken device holds it */
};

static void logf_(virtio_scsi *v, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void logf_(virtio_scsi *v, const char *format, ...) {
  char detail[300], line[360];
  va_list args;
  va_start(args, format);
  vsnprintf(detail, sizeof detail, format, args);
  va_end(args);
  snprintf(line, sizeof line, "%s: %s", v->fn.name, detail);
  if (v->log != NULL) v->log(v->log_ctx, line);
}

static int broken(const virtio_scsi *v) { return (v->device_status & S_NEEDS_RESET) != 0; }

static void mark_broken(virtio_scsi *v, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void mark_broken(virtio_scsi *v, const char *format, ...) {
  if (broken(v)) return;
  char reason[300];
  va_list args;
  va_start(args, format);
  vsnprintf(reason, sizeof reason, format, args);
  va_end(args);
  v->errors++;
  logf_(v, "device needs reset: %s", reason);
  v->device_status |= S_NEEDS_RESET;
  v->isr |= ISR_CONFIG;
  if (v->config_msix_vector != MSI_NO_VECTOR) pci_fn_signal(&v->fn, v->config_msix_vector);
}

/* ---- DMA helpers ---- */
static int dma_read(virtio_scsi *v, uint64_t address, void *into, uint64_t length) {
  char fault[160];
  return pci_fn_dma_read(&v->fn, address, into, length, fault, sizeof fault);
}
static int dma_write(virtio_scsi *v, uint64_t address, const void *from, uint64_t length) {
  char fault[160];
  return pci_fn_dma_write(&v->fn, address, from, length, fault, sizeof fault);
}
static int read_u16(virtio_scsi *v, uint64_t address, uint16_t *out) {
  uint8_t b[2];
  if (dma_read(v, address, b, 2) != 0) return -1;
  *out = (uint16_t)(b[0] | b[1] << 8);
  return 0;
}
static int write_u16(virtio_scsi *v, uint64_t address, uint16_t value) {
  uint8_t b[2] = {(uint8_t)value, (uint8_t)(value >> 8)};
  return dma_write(v, address, b, 2);
}
static int gather(virtio_scsi *v, const segment *segments, uint32_t count, uint64_t offset, uint8_t *out, uint64_t length) {
  uint64_t skip = offset, filled = 0;
  for (uint32_t i = 0; i < count && filled < length; i++) {
    if (skip >= segments[i].length) {
      skip -= segments[i].length;
      continue;
    }
    uint64_t take = segments[i].length - skip;
    if (take > length - filled) take = length - filled;
    if (dma_read(v, segments[i].address + skip, out + filled, take) != 0) return -1;
    filled += take;
    skip = 0;
  }
  return 0;
}
static int scatter(virtio_scsi *v, const segment *segments, uint32_t count, uint64_t offset, const uint8_t *bytes, uint64_t length) {
  uint64_t skip = offset, done = 0;
  for (uint32_t i = 0; i < count && done < length; i++) {
    if (skip >= segments[i].length) {
      skip -= segments[i].length;
      continue;
    }
    uint64_t put = segments[i].length - skip;
    if (put > length - done) put = length - done;
    if (dma_write(v, segments[i].address + skip, bytes + done, put) != 0) return -1;
    done += put;
    skip = 0;
  }
  return done == length ? 0 : -1;
}

/* ---- requests in flight ---- */
static void unlink_request(virtio_scsi *v, virtio_request *r) {
  if (r->prev != NULL) r->prev->next = r->next;
  else v->in_flight_head = r->next;
  if (r->next != NULL) r->next->prev = r->prev;
  else v->in_flight_tail = r->prev;
  r->next = r->prev = NULL;
}
static void free_request(virtio_request *r) {
  free(r->writable);
  free(r->header);
  free(r->data_in);
  free(r);
}

/* virtio_scsi_cmd_resp: sense_len, residual, status_qualifier, status, response, sense[sense_size]. */
static void response_header(virtio_scsi *v, virtio_request *r, uint8_t response, uint8_t status, const uint8_t *sense,
                            uint32_t sense_length, uint64_t residual) {
  free(r->header);
  r->header_length = CMD_RESP_FIXED + v->sense_size;
  r->header = calloc(1, r->header_length);
  uint32_t sense_bytes = sense_length < v->sense_size ? sense_length : v->sense_size;
  write_le(r->header, 4, sense_bytes);
  write_le(r->header + 4, 4, (uint32_t)residual);
  r->header[10] = status;
  r->header[11] = response;
  if (sense_bytes > 0) memcpy(r->header + CMD_RESP_FIXED, sense, sense_bytes);
  if (response != R_OK || status != SAM_STATUS_GOOD) v->errors++;
}

static int push_used(virtio_scsi *v, virtqueue *q, uint32_t id, uint32_t length) {
  uint8_t element[8];
  write_le(element, 4, id);
  write_le(element + 4, 4, length);
  uint32_t slot = q->used_index % q->size;
  if (dma_write(v, q->device_address + 4 + (uint64_t)slot * 8, element, 8) != 0) return -1;
  q->used_index = (uint16_t)(q->used_index + 1);
  return write_u16(v, q->device_address + 2, q->used_index);
}

/* Data, then the response, then the used element and index, then the interrupt. */
static void write_completion(virtio_scsi *v, virtio_request *r, int interrupt) {
  virtqueue *q = &v->queues[r->queue_index];
  uint64_t data_written = 0;
  if (r->data_in_length > 0) {
    if (scatter(v, r->writable, r->writable_count, r->header_length, r->data_in, r->data_in_length) == 0) data_written = r->data_in_length;
    else response_header(v, r, R_TRANSPORT_FAILURE, SAM_STATUS_GOOD, NULL, 0, r->data_in_capacity);
  }
  if (scatter(v, r->writable, r->writable_count, 0, r->header, r->header_length) != 0) {
    mark_broken(v, "queue %d: response of request %u cannot be written", r->queue_index, r->head);
    return;
  }
  if (push_used(v, q, r->head, (uint32_t)(r->header_length + data_written)) != 0) {
    mark_broken(v, "queue %d: used ring at 0x%" PRIx64 " cannot be written", r->queue_index, q->device_address);
    return;
  }
  if (!interrupt) return;
  uint16_t avail_flags;
  if (read_u16(v, q->driver_address, &avail_flags) != 0) {
    mark_broken(v, "queue %d: available ring flags unreadable", r->queue_index);
    return;
  }
  if (avail_flags & AVAIL_F_NO_INTERRUPT) return;
  v->isr |= ISR_QUEUE;
  if (q->msix_vector != MSI_NO_VECTOR) pci_fn_signal(&v->fn, q->msix_vector);
}

static void complete(void *ctx) {
  virtio_request *r = ctx;
  virtio_scsi *v = r->v;
  r->handle = NULL;
  if (broken(v)) return; /* held: a broken device writes nothing; a reset settles it */
  unlink_request(v, r);
  write_completion(v, r, 1);
  free_request(r);
}

/* Queues the completion `delay_ns` from now, never before an earlier completion of the same queue. */
static void schedule(virtio_scsi *v, virtio_request *r, uint64_t delay_ns, int out_of_order) {
  virtqueue *q = &v->queues[r->queue_index];
  uint64_t at = v->clock->now_ns;
  if (!out_of_order) {
    at = v->clock->now_ns + delay_ns;
    if (q->completion_last_ns > at) at = q->completion_last_ns;
    q->completion_last_ns = at;
  }
  r->prev = v->in_flight_tail;
  r->next = NULL;
  if (v->in_flight_tail != NULL) v->in_flight_tail->next = r;
  else v->in_flight_head = r;
  v->in_flight_tail = r;
  r->handle = clock_at(v->clock, at, complete, r);
}

static virtio_request *new_request(virtio_scsi *v, int queue_index, const chain *c) {
  virtio_request *r = calloc(1, sizeof *r);
  r->v = v;
  r->queue_index = queue_index;
  r->head = c->head;
  r->writable_count = c->writable_count;
  r->writable = malloc((c->writable_count + 1) * sizeof *r->writable);
  memcpy(r->writable, c->writable, c->writable_count * sizeof *r->writable);
  r->lun = LUN_NONE;
  return r;
}

/* ---- LUNs ---- */
static int decode_lun(const uint8_t *lun, int disk_count) {
  if (lun[0] == 0xc1 && lun[1] == 0x01) return LUN_REPORT_LUNS;
  if (lun[0] != 0x01 || lun[1] != 0) return LUN_NONE;
  int method = lun[2] >> 6;
  if (method > 1 || (method == 0 && (lun[2] & 0x3f) != 0)) return LUN_NONE;
  int index = (lun[2] & 0x3f) << 8 | lun[3];
  return index < disk_count ? index : LUN_NONE;
}

static uint64_t latency_for(uint8_t opcode) {
  switch (opcode) {
    case 0x08: case 0x28: case 0xa8: case 0x88: case 0x2f: case 0x8f: return 20000;
    case 0x0a: case 0x2a: case 0xaa: case 0x8a: case 0x2e: case 0xae: case 0x8e: case 0x41: case 0x93: case 0x42: return 30000;
    case 0x35: case 0x91: return 200000;
    default: return 0;
  }
}

/* ---- the queues ---- */
static const char *walk_chain(virtio_scsi *v, virtqueue *q, uint16_t head, chain *c, char *why, size_t why_bytes) {
  memset(c, 0, sizeof *c);
  c->head = head;
  c->readable = malloc(q->size * sizeof *c->readable);
  c->writable = malloc(q->size * sizeof *c->writable);
  if (++v->chain_mark == 0) {
    memset(v->chain_marks, 0, v->queue_size_max * sizeof *v->chain_marks);
    v->chain_mark = 1;
  }
  uint32_t index = head;
  for (uint32_t count = 0;; count++) {
    if (index >= q->size) return snprintf(why, why_bytes, "descriptor index %u is outside a queue of %u", index, q->size), why;
    if (v->chain_marks[index] == v->chain_mark || count >= q->size)
      return snprintf(why, why_bytes, "descriptor chain from %u loops or is longer than the queue (%u)", head, q->size), why;
    v->chain_marks[index] = v->chain_mark;
    uint8_t desc[DESC_BYTES];
    char fault[160];
    if (pci_fn_dma_read(&v->fn, q->desc_address + (uint64_t)index * DESC_BYTES, desc, DESC_BYTES, fault, sizeof fault) != 0)
      return snprintf(why, why_bytes, "descriptor %u unreadable: %s", index, fault), why;
    segment s = {read_le(desc, 8), (uint32_t)read_le(desc + 8, 4)};
    uint16_t flags = (uint16_t)read_le(desc + 12, 2);
    if (flags & DESC_F_INDIRECT) return snprintf(why, why_bytes, "descriptor %u is INDIRECT, which was not offered", index), why;
    if (flags & DESC_F_WRITE) {
      c->writable[c->writable_count++] = s;
      c->writable_bytes += s.length;
    } else {
      if (c->writable_count > 0) return snprintf(why, why_bytes, "descriptor %u is device-readable after a device-writable one", index), why;
      c->readable[c->readable_count++] = s;
      c->readable_bytes += s.length;
    }
    if (c->readable_bytes + c->writable_bytes > CHAIN_BYTES_MAX)
      return snprintf(why, why_bytes, "descriptor chain from %u carries more than 2^32 bytes", head), why;
    if ((flags & DESC_F_NEXT) == 0) return NULL;
    index = (uint16_t)read_le(desc + 14, 2);
  }
}

static void on_command_request(virtio_scsi *v, const chain *c) {
  v->requests++;
  uint64_t request_header = CMD_REQ_FIXED + (uint64_t)v->cdb_size, response_header_bytes = CMD_RESP_FIXED + (uint64_t)v->sense_size;
  if (c->readable_bytes < request_header || c->writable_bytes < response_header_bytes) {
    mark_broken(v, "request %u: %" PRIu64 " readable / %" PRIu64 " writable bytes do not hold the %" PRIu64 "-byte request and %" PRIu64 "-byte response",
                c->head, c->readable_bytes, c->writable_bytes, request_header, response_header_bytes);
    return;
  }
  uint64_t data_out_bytes = c->readable_bytes - request_header, data_in_capacity = c->writable_bytes - response_header_bytes;
  virtio_request *r = new_request(v, QUEUE_REQUEST, c);
  r->data_in_capacity = data_in_capacity;
  r->data_out_bytes = data_out_bytes;
  uint8_t *header = malloc(request_header);
  if (gather(v, c->readable, c->readable_count, 0, header, request_header) != 0) {
    free(header);
    response_header(v, r, R_TRANSPORT_FAILURE, SAM_STATUS_GOOD, NULL, 0, data_in_capacity + data_out_bytes);
    schedule(v, r, 0, 0);
    return;
  }
  r->tag = read_le(header + 8, 8);
  const uint8_t *cdb = header + CMD_REQ_FIXED;
  int lun = decode_lun(header, v->disk_count);
  r->lun = lun >= 0 ? lun : LUN_NONE;
  if (lun == LUN_NONE) {
    free(header);
    response_header(v, r, R_BAD_TARGET, SAM_STATUS_GOOD, NULL, 0, data_in_capacity + data_out_bytes);
    schedule(v, r, 0, 0);
    return;
  }
  if (data_out_bytes > DATA_BYTES_MAX || data_in_capacity > DATA_BYTES_MAX || (data_out_bytes > 0 && data_in_capacity > 0)) {
    free(header);
    response_header(v, r, R_FAILURE, SAM_STATUS_GOOD, NULL, 0, data_in_capacity + data_out_bytes);
    schedule(v, r, 0, 0);
    return;
  }
  if (gather(v, c->readable, c->readable_count, request_header, v->data_out_scratch, data_out_bytes) != 0) {
    free(header);
    response_header(v, r, R_TRANSPORT_FAILURE, SAM_STATUS_GOOD, NULL, 0, data_out_bytes);
    schedule(v, r, 0, 0);
    return;
  }
  uint8_t opcode = cdb[0];
  if (opcode == OPCODE_REPORT_LUNS) {
    uint32_t allocation = (uint32_t)cdb[6] << 24 | (uint32_t)cdb[7] << 16 | (uint32_t)cdb[8] << 8 | cdb[9];
    int luns[VIRTIO_SCSI_DISKS_MAX];
    for (int i = 0; i < v->disk_count; i++) luns[i] = i;
    uint8_t all[8 + 8 * VIRTIO_SCSI_DISKS_MAX];
    uint32_t length = report_luns_data(all, luns, v->disk_count);
    if (allocation < length) length = allocation;
    if (data_in_capacity < length) length = (uint32_t)data_in_capacity;
    r->data_in = malloc(length + 1);
    memcpy(r->data_in, all, length);
    r->data_in_length = length;
    response_header(v, r, R_OK, SAM_STATUS_GOOD, NULL, 0, data_in_capacity - length);
  } else if (lun == LUN_REPORT_LUNS) {
    uint8_t sense[FIXED_SENSE_LENGTH_BYTES];
    fixed_sense(sense, 0x5, (additional_sense){0x20, 0x00}, 0, -1, -1);
    response_header(v, r, R_OK, SAM_STATUS_CHECK_CONDITION, sense, sizeof sense, data_in_capacity + data_out_bytes);
  } else {
    scsi_result result;
    scsi_disk_execute(v->disks[lun], cdb, v->cdb_size, v->data_out_scratch, (uint32_t)data_out_bytes, (uint32_t)data_in_capacity, &result);
    if (result.data_in_length > 0) {
      r->data_in = malloc(result.data_in_length);
      memcpy(r->data_in, result.data_in, result.data_in_length);
      r->data_in_length = result.data_in_length;
    }
    response_header(v, r, R_OK, result.status, result.sense, result.sense_length, result.residual_bytes);
  }
  free(header);
  schedule(v, r, latency_for(opcode), 0);
}

static void abort_requests(virtio_scsi *v, int lun, int match_tag, uint64_t tag) {
  for (virtio_request *r = v->in_flight_head, *next; r != NULL; r = next) {
    next = r->next;
    if (r->queue_index != QUEUE_REQUEST || r->handle == NULL) continue;
    if (lun != LUN_NONE && r->lun != lun) continue;
    if (match_tag && r->tag != tag) continue;
    clock_cancel(v->clock, r->handle);
    r->handle = NULL;
    unlink_request(v, r);
    free(r->data_in);
    r->data_in = NULL;
    r->data_in_length = 0;
    response_header(v, r, R_ABORTED, SAM_STATUS_GOOD, NULL, 0, r->data_in_capacity + r->data_out_bytes);
    schedule(v, r, 0, 1);
  }
}

static int any_pending(virtio_scsi *v, int lun, int match_tag, uint64_t tag) {
  for (virtio_request *r = v->in_flight_head; r != NULL; r = r->next)
    if (r->queue_index == QUEUE_REQUEST && r->handle != NULL && r->lun == lun && (!match_tag || r->tag == tag)) return 1;
  return 0;
}

static uint8_t task_management(virtio_scsi *v, uint32_t subtype, const uint8_t *lun_bytes, uint64_t tag) {
  int lun = decode_lun(lun_bytes, v->disk_count);
  if (lun < 0) return R_BAD_TARGET;
  switch (subtype) {
    case TMF_ABORT_TASK: abort_requests(v, lun, 1, tag); return R_FUNCTION_COMPLETE;
    case TMF_ABORT_TASK_SET: case TMF_CLEAR_TASK_SET: abort_requests(v, lun, 0, 0); return R_FUNCTION_COMPLETE;
    case TMF_LOGICAL_UNIT_RESET:
      abort_requests(v, lun, 0, 0);
      scsi_disk_unit_attention(v->disks[lun], 0x29, 0x03);
      return R_FUNCTION_COMPLETE;
    case TMF_I_T_NEXUS_RESET:
      abort_requests(v, LUN_NONE, 0, 0);
      for (int i = 0; i < v->disk_count; i++) scsi_disk_unit_attention(v->disks[i], 0x29, 0x07);
      return R_FUNCTION_COMPLETE;
    case TMF_CLEAR_ACA: return R_FUNCTION_COMPLETE;
    case TMF_QUERY_TASK: return any_pending(v, lun, 1, tag) ? R_FUNCTION_SUCCEEDED : R_FUNCTION_COMPLETE;
    case TMF_QUERY_TASK_SET: return any_pending(v, lun, 0, 0) ? R_FUNCTION_SUCCEEDED : R_FUNCTION_COMPLETE;
    default: return R_FUNCTION_REJECTED;
  }
}

static void control_answer(virtio_scsi *v, const chain *c, const uint8_t *answer, uint32_t length) {
  virtio_request *r = new_request(v, QUEUE_CONTROL, c);
  r->header = malloc(length);
  memcpy(r->header, answer, length);
  r->header_length = length;
  schedule(v, r, 0, 0);
}

static void on_control_request(virtio_scsi *v, const chain *c) {
  uint8_t bytes[TMF_REQ_BYTES];
  uint32_t length = c->readable_bytes < TMF_REQ_BYTES ? (uint32_t)c->readable_bytes : TMF_REQ_BYTES;
  int unreadable = gather(v, c->readable, c->readable_count, 0, bytes, length) != 0;
  if (unreadable || length < 4) {
    if (c->writable_bytes < 1) return mark_broken(v, "control request %u has neither a readable type nor a response byte", c->head);
    uint8_t answer = unreadable ? R_TRANSPORT_FAILURE : R_FAILURE;
    return control_answer(v, c, &answer, 1);
  }
  uint32_t type = (uint32_t)read_le(bytes, 4);
  if (type == 0) {
    if (length < TMF_REQ_BYTES || c->writable_bytes < 1)
      return mark_broken(v, "control request %u: TMF needs %d readable and %d writable bytes", c->head, TMF_REQ_BYTES, 1);
    uint8_t answer = task_management(v, (uint32_t)read_le(bytes + 4, 4), bytes + 8, read_le(bytes + 16, 8));
    return control_answer(v, c, &answer, 1);
  }
  if (type == 1 || type == 2) {
    if (length < AN_REQ_BYTES || c->writable_bytes < AN_RESP_BYTES)
      return mark_broken(v, "control request %u: AN needs %d readable and %d writable bytes", c->head, AN_REQ_BYTES, AN_RESP_BYTES);
    uint8_t answer[AN_RESP_BYTES] = {0};
    answer[4] = decode_lun(bytes + 4, v->disk_count) == LUN_NONE ? R_BAD_TARGET : R_OK;
    return control_answer(v, c, answer, AN_RESP_BYTES);
  }
  if (c->writable_bytes < 1) return mark_broken(v, "control request %u of unknown type %u has no response byte", c->head, type);
  uint8_t answer = R_FAILURE;
  control_answer(v, c, &answer, 1);
}

static void process_queue(virtio_scsi *v, int index) {
  virtqueue *q = &v->queues[index];
  uint16_t avail_index;
  if (read_u16(v, q->driver_address + 2, &avail_index) != 0)
    return mark_broken(v, "queue %d: available ring at 0x%" PRIx64 " unreadable", index, q->driver_address);
  uint32_t new_count = (uint16_t)(avail_index - q->avail_index_next);
  if (new_count > q->size)
    return mark_broken(v, "queue %d: available index %u is %u ahead of %u, more than the queue size %u", index, avail_index,
                       new_count, q->avail_index_next, q->size);
  for (uint32_t taken = 0; taken < new_count && !broken(v); taken++) {
    uint32_t slot = q->avail_index_next % q->size;
    uint16_t head;
    if (read_u16(v, q->driver_address + 4 + 2ull * slot, &head) != 0)
      return mark_broken(v, "queue %d: available ring entry %u unreadable", index, slot);
    q->avail_index_next = (uint16_t)(q->avail_index_next + 1);
    chain c;
    char why[200];
    const char *violation = walk_chain(v, q, head, &c, why, sizeof why);
    if (violation != NULL) mark_broken(v, "queue %d: %s", index, violation);
    else if (index == QUEUE_CONTROL) on_control_request(v, &c);
    else if (index == QUEUE_EVENT) {
      if (v->event_buffer_count >= q->size) mark_broken(v, "event queue: more than %u buffers posted", q->size);
      else if (c.writable_bytes < EVENT_INFO_SIZE)
        mark_broken(v, "event buffer %u holds %" PRIu64 " writable bytes, less than %d", c.head, c.writable_bytes, EVENT_INFO_SIZE);
      else v->event_buffer_count++;
    } else on_command_request(v, &c);
    free(c.readable);
    free(c.writable);
    if (violation != NULL) return;
  }
}

/* ---- reset ---- */
static void reset_virtio(virtio_scsi *v) {
  v->device_feature_select = v->driver_feature_select = 0;
  v->driver_features[0] = v->driver_features[1] = 0;
  v->driver_feature_written_other = 0;
  v->config_msix_vector = MSI_NO_VECTOR;
  v->device_status = 0;
  v->queue_select = 0;
  for (int i = 0; i < VIRTIO_QUEUE_COUNT; i++) v->queues[i] = (virtqueue){v->queue_size_max, MSI_NO_VECTOR, 0, 0, 0, 0, 0, 0, 0};
  v->isr = 0;
  v->sense_size = SENSE_SIZE_DEFAULT;
  v->cdb_size = CDB_SIZE_DEFAULT;
  v->event_buffer_count = 0;
}

/* Writing 0 to device_status: every request in flight is completed (no interrupt) before the reset is visible. */
static void reset_by_driver(virtio_scsi *v) {
  virtio_request *r = v->in_flight_head;
  v->in_flight_head = v->in_flight_tail = NULL;
  while (r != NULL) {
    virtio_request *next = r->next;
    if (r->handle != NULL) clock_cancel(v->clock, r->handle);
    if (!broken(v)) write_completion(v, r, 0);
    free_request(r);
    r = next;
  }
  reset_virtio(v);
}

/* ---- registers ---- */
static uint64_t bad_access(virtio_scsi *v, int size, const char *format, ...) __attribute__((format(printf, 3, 4)));
static uint64_t bad_access(virtio_scsi *v, int size, const char *format, ...) {
  char message[200];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  uint64_t value = pci_fn_guest_error(&v->fn, size, "%s", message);
  return size == 8 ? UINT64_MAX : value;
}

static int common_width(uint32_t offset) {
  if (offset < C_CONFIG_MSIX_VECTOR) return offset % 4 == 0 ? 4 : 0;
  if (offset == C_DEVICE_STATUS || offset == C_CONFIG_GENERATION) return 1;
  if (offset >= C_QUEUE_DESC && offset < C_QUEUE_NOTIF_CONFIG_DATA) return offset % 4 == 0 ? 4 : 0;
  return offset % 2 == 0 ? 2 : 0;
}

static uint16_t vector_or_none(uint32_t value) { return value < VECTOR_COUNT ? (uint16_t)value : MSI_NO_VECTOR; }

static uint64_t common_read(virtio_scsi *v, uint32_t offset, int size) {
  if (common_width(offset) == 0 || size != common_width(offset))
    return bad_access(v, size, "common config read of %d bytes at 0x%x", size, offset);
  virtqueue *q = v->queue_select < VIRTIO_QUEUE_COUNT ? &v->queues[v->queue_select] : NULL;
  switch (offset) {
    case C_DEVICE_FEATURE_SELECT: return v->device_feature_select;
    case C_DEVICE_FEATURE: return v->device_feature_select == VERSION_1_WORD ? 1 : 0;
    case C_DRIVER_FEATURE_SELECT: return v->driver_feature_select;
    case C_DRIVER_FEATURE: return v->driver_feature_select < 2 ? v->driver_features[v->driver_feature_select] : 0;
    case C_CONFIG_MSIX_VECTOR: return v->config_msix_vector;
    case C_NUM_QUEUES: return VIRTIO_QUEUE_COUNT;
    case C_DEVICE_STATUS: return v->device_status;
    case C_CONFIG_GENERATION: return 0;
    case C_QUEUE_SELECT: return v->queue_select;
    case C_QUEUE_SIZE: return q == NULL ? 0 : q->size;
    case C_QUEUE_MSIX_VECTOR: return q == NULL ? MSI_NO_VECTOR : q->msix_vector;
    case C_QUEUE_ENABLE: return q != NULL && q->enabled ? 1 : 0;
    case C_QUEUE_NOTIFY_OFF: return q == NULL ? 0 : v->queue_select;
    case C_QUEUE_DESC: case C_QUEUE_DESC + 4: case C_QUEUE_DRIVER: case C_QUEUE_DRIVER + 4: case C_QUEUE_DEVICE: case C_QUEUE_DEVICE + 4: {
      if (q == NULL) return 0;
      uint64_t address = offset < C_QUEUE_DRIVER ? q->desc_address : offset < C_QUEUE_DEVICE ? q->driver_address : q->device_address;
      return (offset & 4) == 0 ? (uint32_t)address : (uint32_t)(address >> 32);
    }
    default: return 0;
  }
}

static int features_acceptable(const virtio_scsi *v) {
  if (v->driver_feature_written_other || v->driver_features[0] != 0 || (v->driver_features[1] & ~1u) != 0) return 0;
  return (v->driver_features[1] & 1) != 0;
}

static void on_device_status_write(virtio_scsi *v, uint32_t value) {
  if (value == 0) return reset_by_driver(v);
  uint8_t driver_bits = v->device_status & (uint8_t)~S_NEEDS_RESET;
  if ((value & driver_bits) != driver_bits) {
    bad_access(v, 1, "device_status 0x%x clears bits of 0x%x", value, v->device_status);
    return;
  }
  uint8_t status = (uint8_t)((value & ~(uint32_t)S_NEEDS_RESET) | (v->device_status & S_NEEDS_RESET));
  int features_ok_new = (status & S_FEATURES_OK) && !(v->device_status & S_FEATURES_OK);
  if (features_ok_new && !features_acceptable(v)) {
    logf_(v, "FEATURES_OK refused: the driver asked for features not offered or left out VERSION_1");
    status &= (uint8_t)~S_FEATURES_OK;
  }
  int driver_ok_new = (status & S_DRIVER_OK) && !(v->device_status & S_DRIVER_OK);
  v->device_status = status;
  if (driver_ok_new)
    for (int i = 0; i < VIRTIO_QUEUE_COUNT; i++)
      if (v->queues[i].enabled) process_queue(v, i);
}

static void on_queue_field_write(virtio_scsi *v, uint32_t offset, uint32_t value) {
  if (v->queue_select >= VIRTIO_QUEUE_COUNT) {
    bad_access(v, 2, "queue field 0x%x written with queue_select %u (no such queue)", offset, v->queue_select);
    return;
  }
  virtqueue *q = &v->queues[v->queue_select];
  if (offset == C_QUEUE_MSIX_VECTOR) {
    q->msix_vector = vector_or_none(value);
    return;
  }
  if (q->enabled) {
    bad_access(v, 2, "queue %u field 0x%x written while the queue is enabled", v->queue_select, offset);
    return;
  }
  uint64_t *address = NULL;
  switch (offset) {
    case C_QUEUE_SIZE:
      if (value < 1 || value > v->queue_size_max || (value & (value - 1)) != 0)
        bad_access(v, 2, "queue_size %u is not a power of two in 1..%u", value, v->queue_size_max);
      else q->size = value;
      return;
    case C_QUEUE_ENABLE:
      if (value != 1) {
        bad_access(v, 2, "queue_enable written with %u (only 1 is allowed)", value);
        return;
      }
      if (q->desc_address % 16 != 0 || q->driver_address % 2 != 0 || q->device_address % 4 != 0) {
        bad_access(v, 2, "queue %u enabled with misaligned areas 0x%" PRIx64 "/0x%" PRIx64 "/0x%" PRIx64, v->queue_select,
                   q->desc_address, q->driver_address, q->device_address);
        return;
      }
      q->enabled = 1;
      return;
    case C_QUEUE_DESC: case C_QUEUE_DESC + 4: address = &q->desc_address; break;
    case C_QUEUE_DRIVER: case C_QUEUE_DRIVER + 4: address = &q->driver_address; break;
    default: address = &q->device_address; break;
  }
  if ((offset & 4) == 0) *address = (*address & ~0xffffffffull) | value;
  else *address = (*address & 0xffffffffull) | (uint64_t)value << 32;
}

static void common_write(virtio_scsi *v, uint32_t offset, int size, uint32_t value) {
  if (common_width(offset) == 0 || size != common_width(offset)) {
    bad_access(v, size, "common config write of %d bytes at 0x%x", size, offset);
    return;
  }
  switch (offset) {
    case C_DEVICE_FEATURE_SELECT: v->device_feature_select = value; return;
    case C_DRIVER_FEATURE_SELECT: v->driver_feature_select = value; return;
    case C_DRIVER_FEATURE:
      if (v->device_status & S_FEATURES_OK) {
        bad_access(v, 4, "driver_feature written after FEATURES_OK");
        return;
      }
      if (v->driver_feature_select < 2) v->driver_features[v->driver_feature_select] = value;
      else if (value != 0) v->driver_feature_written_other = 1;
      return;
    case C_CONFIG_MSIX_VECTOR: v->config_msix_vector = vector_or_none(value); return;
    case C_DEVICE_STATUS: on_device_status_write(v, value); return;
    case C_QUEUE_SELECT: v->queue_select = (uint16_t)value; return;
    case C_QUEUE_SIZE: case C_QUEUE_MSIX_VECTOR: case C_QUEUE_ENABLE: case C_QUEUE_DESC: case C_QUEUE_DESC + 4:
    case C_QUEUE_DRIVER: case C_QUEUE_DRIVER + 4: case C_QUEUE_DEVICE: case C_QUEUE_DEVICE + 4:
      on_queue_field_write(v, offset, value);
      return;
    default: bad_access(v, size, "write to read-only common config field at 0x%x", offset);
  }
}

static uint64_t device_config_read(virtio_scsi *v, uint32_t offset, int size) {
  int width = offset == 28 || offset == 30 ? 2 : offset % 4 == 0 ? 4 : 0;
  if (size != width) return bad_access(v, size, "device config read of %d bytes at 0x%x", size, offset);
  switch (offset) {
    case 0: return 1;
    case 4: return SEG_MAX;
    case 8: return MAX_SECTORS;
    case 12: return v->queue_size_max;
    case 16: return EVENT_INFO_SIZE;
    case 20: return v->sense_size;
    case 24: return v->cdb_size;
    case 28: case 30: return 0;
    default: return (uint64_t)(v->disk_count - 1);
  }
}

static uint64_t mmio_read(pci_fn *fn, int bar, uint32_t offset, int size) {
  virtio_scsi *v = (virtio_scsi *)fn;
  if (bar == BAR_REGISTERS) {
    if (offset < COMMON_OFFSET + COMMON_LENGTH) return common_read(v, offset - COMMON_OFFSET, size);
    if (offset == ISR_OFFSET && size == 1) {
      uint8_t value = v->isr;
      v->isr = 0;
      return value;
    }
    if (offset >= DEVICE_OFFSET && offset < DEVICE_OFFSET + DEVICE_LENGTH) return device_config_read(v, offset - DEVICE_OFFSET, size);
  }
  return bad_access(v, size, "read of %d bytes at BAR%d + 0x%x", size, bar, offset);
}

static void mmio_write(pci_fn *fn, int bar, uint32_t offset, int size, uint64_t value) {
  virtio_scsi *v = (virtio_scsi *)fn;
  if (bar == BAR_REGISTERS) {
    if (offset < COMMON_OFFSET + COMMON_LENGTH) return common_write(v, offset - COMMON_OFFSET, size, (uint32_t)value);
    if (offset >= DEVICE_OFFSET && offset < DEVICE_OFFSET + DEVICE_LENGTH) {
      uint32_t at = offset - DEVICE_OFFSET;
      if (size == 4 && at == 20) v->sense_size = (uint32_t)value;
      else if (size == 4 && at == 24) v->cdb_size = (uint32_t)value;
      else bad_access(v, size, "device config write of %d bytes at 0x%x", size, at);
      return;
    }
    if (offset >= NOTIFY_OFFSET && offset < NOTIFY_OFFSET + VIRTIO_QUEUE_COUNT * NOTIFY_OFF_MULTIPLIER) {
      uint32_t at = offset - NOTIFY_OFFSET, index = at / NOTIFY_OFF_MULTIPLIER;
      if (size != 2 || at % NOTIFY_OFF_MULTIPLIER != 0 || value != index) {
        bad_access(v, size, "notify write of %d bytes (0x%" PRIx64 ") at 0x%x", size, value, offset);
        return;
      }
      if (broken(v)) return;
      if (!(v->device_status & S_DRIVER_OK) || !v->queues[index].enabled) {
        bad_access(v, 2, "notify of queue %u before DRIVER_OK or before the queue is enabled", index);
        return;
      }
      process_queue(v, (int)index);
      return;
    }
  }
  bad_access(v, size, "write of %d bytes at BAR%d + 0x%x", size, bar, offset);
}

static void virtio_cap(pci_fn *fn, uint8_t cfg_type, uint32_t offset, uint32_t length, int notify) {
  uint8_t body[18] = {0};
  size_t n = notify ? 18 : 14;
  body[0] = (uint8_t)(n + 2);
  body[1] = cfg_type;
  body[2] = BAR_REGISTERS;
  write_le(body + 6, 4, offset);
  write_le(body + 10, 4, length);
  if (notify) write_le(body + 14, 4, NOTIFY_OFF_MULTIPLIER);
  pci_fn_add_capability(fn, CAP_VENDOR, body, n, NULL);
}

void virtio_scsi_init(virtio_scsi *v, const char *name, vclock *clock, scsi_disk **disks, int disk_count,
                      uint32_t queue_size, void (*log)(void *, const char *), void *log_ctx) {
  memset(v, 0, sizeof *v);
  pci_fn_init(&v->fn, name, VIRTIO_VENDOR_ID, VIRTIO_SCSI_DEVICE_ID, VIRTIO_SCSI_CLASS_CODE, 1, VIRTIO_VENDOR_ID, VIRTIO_SCSI_DEVICE_ID);
  v->fn.log = log;
  v->fn.log_ctx = log_ctx;
  v->fn.mmio_read = mmio_read;
  v->fn.mmio_write = mmio_write;
  pci_fn_add_bar(&v->fn, BAR_REGISTERS, 16 * 1024, 1);
  pci_fn_add_bar(&v->fn, BAR_MSIX, 4096, 0);
  pci_fn_add_msix(&v->fn, VECTOR_COUNT, BAR_MSIX, 0x000, 0x800);
  virtio_cap(&v->fn, 1, COMMON_OFFSET, COMMON_LENGTH, 0);
  virtio_cap(&v->fn, 2, NOTIFY_OFFSET, VIRTIO_QUEUE_COUNT * NOTIFY_OFF_MULTIPLIER, 1);
  virtio_cap(&v->fn, 3, ISR_OFFSET, 1, 0);
  virtio_cap(&v->fn, 4, DEVICE_OFFSET, DEVICE_LENGTH, 0);
  v->clock = clock;
  for (int i = 0; i < disk_count && i < VIRTIO_SCSI_DISKS_MAX; i++) v->disks[i] = disks[i];
  v->disk_count = disk_count;
  v->queue_size_max = queue_size;
  v->chain_marks = calloc(queue_size, sizeof *v->chain_marks);
  v->data_out_scratch = malloc(DATA_BYTES_MAX);
  v->log = log;
  v->log_ctx = log_ctx;
  reset_virtio(v);
}
