/* The part of the board file (boards/board.schema.json) the native board supports, read with libcjson: one host
 * processor with virtio-scsi and NIC functions, file disks, "disk" volumes, portals, targets and the flash. A key or
 * value outside that part is refused with a message naming the file and the field. */
#ifndef IOP_BOARD_FILE_H
#define IOP_BOARD_FILE_H
#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define TRUSTED_KEYS_MAX 8
#define BOARD_DISKS_MAX 16
#define BOARD_PCI_MAX 8
#define BOARD_PORTALS_MAX 8
#define BOARD_TARGETS_MAX 8
#define TARGET_LUNS_MAX 16
#define TARGET_INITIATORS_MAX 8

typedef struct {
  char name[32];
  char image[256];
  uint32_t size_mib, block_size, physical_block_size;
} disk_spec;

enum { PCI_VIRTIO_SCSI = 1, PCI_NIC = 2 };
typedef struct {
  int model, slot, function;
  int disks[BOARD_DISKS_MAX]; /* indexes into board_spec.disks */
  int disk_count;
  uint32_t queue_size;
} pci_spec;

typedef struct {
  char name[32];
  int disk;
} volume_spec;

typedef struct {
  char host[256];
  int port;
} portal_spec;

typedef struct {
  char name[224];
  char alias[65];
  int luns_given, lun_count;
  int lun_volume[TARGET_LUNS_MAX], lun_read_only[TARGET_LUNS_MAX];
  int has_chap, has_mutual_user, has_mutual_secret;
  char chap_user[65], chap_secret[65], mutual_user[65], mutual_secret[65];
  int initiator_count;
  char initiators[TARGET_INITIATORS_MAX][224];
} target_spec;

typedef struct {
  char name[64];
  char seed[32];
  char processor_name[32];
  uint32_t ram_mib;
  pci_spec pci[BOARD_PCI_MAX];
  int pci_count;
  disk_spec disks[BOARD_DISKS_MAX];
  int disk_count;
  volume_spec volumes[BOARD_DISKS_MAX];
  int volume_count;
  portal_spec portals[BOARD_PORTALS_MAX];
  int portal_count;
  target_spec targets[BOARD_TARGETS_MAX];
  int target_count;
  char flash_image[256];
  uint32_t slot_size_mib;
  char board_compat[32];
  trusted_key keys[TRUSTED_KEYS_MAX];
  size_t key_count;
} board_spec;

int board_file_load(const char *path, board_spec *out, char *error, size_t error_bytes);
#endif
