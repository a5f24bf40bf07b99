/* A virtio-scsi controller on the virtio 1.x modern PCI transport with split virtqueues, as
 * host/devices/virtio_scsi.ts (its interpretations of the spec included): one target, one LUN per disk; queues 0
 * control, 1 event, 2 request. Commands execute when taken off the ring; completions reach guest memory after the
 * modelled latency, in submission order per queue. The JS model's fault injection and control commands (pull,
 * insert, hang) are not ported. */
#ifndef IOP_VIRTIO_SCSI_H
#define IOP_VIRTIO_SCSI_H
#include <stdint.h>

#include "clock.h"
#include "pci_function.h"
#include "scsi_disk.h"

#define VIRTIO_SCSI_DISKS_MAX 16
#define VIRTIO_QUEUE_COUNT 3

typedef struct virtio_request virtio_request;

typedef struct {
  uint32_t size;
  uint16_t msix_vector;
  int enabled;
  uint64_t desc_address, driver_address, device_address;
  uint16_t avail_index_next, used_index;
  uint64_t completion_last_ns;
} virtqueue;

typedef struct {
  pci_fn fn; /* first: the PCI function's callbacks get this pointer */
  vclock *clock;
  scsi_disk *disks[VIRTIO_SCSI_DISKS_MAX];
  int disk_count;
  uint32_t queue_size_max;
  uint32_t *chain_marks;
  uint32_t chain_mark;
  uint8_t *data_out_scratch;
  void (*log)(void *ctx, const char *message);
  void *log_ctx;
  uint32_t device_feature_select, driver_feature_select;
  uint32_t driver_features[2];
  int driver_feature_written_other; /* a word other than 0 and 1 was written non-zero */
  uint16_t config_msix_vector;
  uint8_t device_status;
  uint16_t queue_select;
  virtqueue queues[VIRTIO_QUEUE_COUNT];
  uint8_t isr;
  uint32_t sense_size, cdb_size;
  virtio_request *in_flight_head, *in_flight_tail; /* in submission order */
  uint32_t event_buffer_count;
  uint64_t requests, errors;
} virtio_scsi;

void virtio_scsi_init(virtio_scsi *v, const char *name, vclock *clock, scsi_disk **disks, int disk_count,
                      uint32_t queue_size, void (*log)(void *, const char *), void *log_ctx);
#endif
