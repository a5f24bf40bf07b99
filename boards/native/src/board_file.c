#include "board_file.h"

#include <cjson/cJSON.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *path;
  char *error;
  size_t error_bytes;
} ctx;

static int refuse(ctx *c, const char *format, ...) __attribute__((format(printf, 2, 3)));
static int refuse(ctx *c, const char *format, ...) {
  int n = snprintf(c->error, c->error_bytes, "%s: ", c->path);
  if (n > 0 && (size_t)n < c->error_bytes) {
    va_list args;
    va_start(args, format);
    vsnprintf(c->error + n, c->error_bytes - (size_t)n, format, args);
    va_end(args);
  }
  return -1;
}

static int is_one_of(const char *key, const char *const *keys) {
  for (; *keys != NULL; keys++)
    if (strcmp(key, *keys) == 0) return 1;
  return 0;
}

static int whole(const cJSON *item, double min, double max) {
  return cJSON_IsNumber(item) && item->valuedouble == floor(item->valuedouble) && item->valuedouble >= min && item->valuedouble <= max;
}

static int printable(const char *s, int min_char) {
  for (; *s != 0; s++)
    if ((unsigned char)*s < min_char || (unsigned char)*s > 0x7e) return 0;
  return 1;
}

/* A lower-case name of 1 to 31: the schema's diskName/volumeName. */
static int is_name(const cJSON *item) {
  if (!cJSON_IsString(item)) return 0;
  const char *s = item->valuestring;
  size_t n = strlen(s);
  if (n < 1 || n > 31 || s[0] < 'a' || s[0] > 'z') return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-')) return 0;
  return 1;
}

static int is_relative_file(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 255 || s[0] == '/' || strstr(s, "..") != NULL) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || strchr("._-/", s[i]) != NULL)) return 0;
  return 1;
}

static int is_iscsi_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 223) return 0;
  if (strncmp(s, "eui.", 4) == 0) {
    if (n != 20) return 0;
    for (size_t i = 4; i < n; i++)
      if (strchr("0123456789abcdefABCDEF", s[i]) == NULL) return 0;
    return 1;
  }
  if (strncmp(s, "iqn.", 4) != 0 || n < 12) return 0;
  for (int i = 4; i < 11; i++)
    if (i == 8 ? s[i] != '-' : (s[i] < '0' || s[i] > '9')) return 0;
  if (s[11] != '.') return 0;
  size_t i = 12;
  for (; i < n && s[i] != ':'; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-')) return 0;
  if (i == 12) return 0;
  if (i < n) {
    if (i + 1 == n) return 0;
    for (i++; i < n; i++)
      if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) return 0;
  }
  return 1;
}

static void resolve_path(const char *board_path, const char *relative, char *out, size_t out_bytes) {
  if (relative[0] == '/') {
    snprintf(out, out_bytes, "%s", relative);
    return;
  }
  char copy[4096];
  snprintf(copy, sizeof copy, "%s", board_path);
  snprintf(out, out_bytes, "%s/%s", dirname(copy), relative);
}

static int check_keys(ctx *c, const cJSON *object, const char *const *known, const char *where) {
  for (const cJSON *item = object->child; item != NULL; item = item->next)
    if (!is_one_of(item->string, known)) return refuse(c, "%s.\"%s\" is not a field the native board knows", where, item->string);
  return 0;
}

static int find_disk(const board_spec *b, const char *name) {
  for (int i = 0; i < b->disk_count; i++)
    if (strcmp(b->disks[i].name, name) == 0) return i;
  return -1;
}

static int load_disks(ctx *c, const cJSON *disks, board_spec *b) {
  static const char *const KEYS[] = {"name", "sizeMiB", "blockSize", "physicalBlockSize", "backend", "image", NULL};
  if (!cJSON_IsArray(disks)) return refuse(c, "\"disks\": expected an array of disks");
  if (cJSON_GetArraySize(disks) > BOARD_DISKS_MAX) return refuse(c, "\"disks\": the native board takes at most %d", BOARD_DISKS_MAX);
  int index = 0;
  for (const cJSON *d = disks->child; d != NULL; d = d->next, index++) {
    char where[32];
    snprintf(where, sizeof where, "\"disks\"[%d]", index);
    if (!cJSON_IsObject(d)) return refuse(c, "%s: expected a disk object", where);
    const cJSON *backend = cJSON_GetObjectItemCaseSensitive(d, "backend");
    if (cJSON_IsString(backend) && strcmp(backend->valuestring, "memory") == 0)
      return refuse(c, "%s.\"backend\": \"memory\" is not supported by the native board (use \"file\")", where);
    if (!cJSON_IsString(backend) || strcmp(backend->valuestring, "file") != 0) return refuse(c, "%s.\"backend\": expected \"file\"", where);
    if (check_keys(c, d, KEYS, where) != 0) return -1;
    disk_spec *s = &b->disks[b->disk_count];
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "name"), *size = cJSON_GetObjectItemCaseSensitive(d, "sizeMiB");
    const cJSON *block = cJSON_GetObjectItemCaseSensitive(d, "blockSize"), *physical = cJSON_GetObjectItemCaseSensitive(d, "physicalBlockSize");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(d, "image");
    if (!is_name(name)) return refuse(c, "%s.\"name\": expected a disk name of 1 to 31 lower-case letters, digits or \"-\", starting with a letter", where);
    if (find_disk(b, name->valuestring) >= 0) return refuse(c, "%s.\"name\": disk \"%s\" is named twice", where, name->valuestring);
    if (!whole(size, 1, 1048576)) return refuse(c, "%s.\"sizeMiB\": expected an integer from 1 to 1048576", where);
    if (!whole(block, 512, 4096) || (block->valueint != 512 && block->valueint != 4096)) return refuse(c, "%s.\"blockSize\": expected 512 or 4096", where);
    if (physical != NULL && (!whole(physical, 512, 65536) || (physical->valueint & (physical->valueint - 1)) != 0 || physical->valueint < block->valueint))
      return refuse(c, "%s.\"physicalBlockSize\": expected a power of two from the block size to 65536", where);
    if (!cJSON_IsString(image) || !is_relative_file(image->valuestring)) return refuse(c, "%s.\"image\": expected a relative file name under the data directory", where);
    snprintf(s->name, sizeof s->name, "%s", name->valuestring);
    snprintf(s->image, sizeof s->image, "%s", image->valuestring);
    s->size_mib = (uint32_t)size->valuedouble;
    s->block_size = (uint32_t)block->valuedouble;
    s->physical_block_size = physical == NULL ? s->block_size : (uint32_t)physical->valuedouble;
    b->disk_count++;
  }
  return 0;
}

static int load_pci(ctx *c, const cJSON *pci, board_spec *b) {
  static const char *const VIRTIO_KEYS[] = {"slot", "function", "model", "disks", "queueSize", NULL};
  static const char *const NIC_KEYS[] = {"slot", "function", "model", "rxRingEntries", NULL};
  if (pci == NULL) return 0;
  if (!cJSON_IsArray(pci)) return refuse(c, "\"processors\"[0].\"pci\": expected an array of PCI functions");
  int index = 0, nics = 0;
  for (const cJSON *f = pci->child; f != NULL; f = f->next, index++) {
    char where[48];
    snprintf(where, sizeof where, "\"processors\"[0].\"pci\"[%d]", index);
    if (!cJSON_IsObject(f)) return refuse(c, "%s: expected a PCI function object", where);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(f, "model");
    const char *m = cJSON_IsString(model) ? model->valuestring : "?";
    int is_virtio = strcmp(m, "virtio-scsi") == 0, is_nic = strcmp(m, "nic") == 0;
    if (!is_virtio && !is_nic) return refuse(c, "%s: model \"%s\" is not supported by the native board yet", where, m);
    if (check_keys(c, f, is_virtio ? VIRTIO_KEYS : NIC_KEYS, where) != 0) return -1;
    if (b->pci_count == BOARD_PCI_MAX) return refuse(c, "%s: the native board takes at most %d PCI functions", where, BOARD_PCI_MAX);
    pci_spec *s = &b->pci[b->pci_count];
    const cJSON *slot = cJSON_GetObjectItemCaseSensitive(f, "slot"), *function = cJSON_GetObjectItemCaseSensitive(f, "function");
    if (!whole(slot, 0, 31)) return refuse(c, "%s.\"slot\": expected an integer from 0 to 31", where);
    if (function != NULL && !whole(function, 0, 7)) return refuse(c, "%s.\"function\": expected an integer from 0 to 7", where);
    s->slot = slot->valueint;
    s->function = function == NULL ? 0 : function->valueint;
    for (int i = 0; i < b->pci_count; i++)
      if (b->pci[i].slot == s->slot && b->pci[i].function == s->function) return refuse(c, "%s: slot %d function %d is taken", where, s->slot, s->function);
    if (is_nic) {
      const cJSON *rx = cJSON_GetObjectItemCaseSensitive(f, "rxRingEntries");
      if (rx != NULL && (!whole(rx, 2, 4096) || (rx->valueint & (rx->valueint - 1)) != 0))
        return refuse(c, "%s.\"rxRingEntries\": expected a power of two from 2 to 4096", where);
      if (++nics > 1) return refuse(c, "%s: the native board takes one NIC", where);
      s->model = PCI_NIC;
    } else {
      s->model = PCI_VIRTIO_SCSI;
      const cJSON *queue = cJSON_GetObjectItemCaseSensitive(f, "queueSize"), *disks = cJSON_GetObjectItemCaseSensitive(f, "disks");
      if (queue != NULL && (!whole(queue, 2, 1024) || (queue->valueint & (queue->valueint - 1)) != 0))
        return refuse(c, "%s.\"queueSize\": expected a power of two from 2 to 1024", where);
      s->queue_size = queue == NULL ? 128 : (uint32_t)queue->valueint;
      if (!cJSON_IsArray(disks) || cJSON_GetArraySize(disks) < 1) return refuse(c, "%s.\"disks\": expected a non-empty array of disk names", where);
      int d = 0;
      for (const cJSON *name = disks->child; name != NULL; name = name->next, d++) {
        int found = cJSON_IsString(name) ? find_disk(b, name->valuestring) : -1;
        if (found < 0) return refuse(c, "%s.\"disks\"[%d]: no disk named %s", where, d, cJSON_IsString(name) ? name->valuestring : "(not a string)");
        for (int p = 0; p <= b->pci_count; p++)
          for (int k = 0; k < (p == b->pci_count ? s->disk_count : b->pci[p].disk_count); k++)
            if ((p == b->pci_count ? s->disks[k] : b->pci[p].disks[k]) == found)
              return refuse(c, "%s.\"disks\"[%d]: disk %s is already on a controller", where, d, name->valuestring);
        if (s->disk_count == BOARD_DISKS_MAX) return refuse(c, "%s.\"disks\": at most %d", where, BOARD_DISKS_MAX);
        s->disks[s->disk_count++] = found;
      }
    }
    b->pci_count++;
  }
  return 0;
}

static int load_volumes(ctx *c, const cJSON *volumes, board_spec *b) {
  static const char *const KEYS[] = {"name", "type", "disk", NULL};
  if (volumes == NULL) { /* one "disk" volume per disk, named after it */
    for (int i = 0; i < b->disk_count; i++) {
      snprintf(b->volumes[i].name, sizeof b->volumes[i].name, "%s", b->disks[i].name);
      b->volumes[i].disk = i;
    }
    b->volume_count = b->disk_count;
    return 0;
  }
  if (!cJSON_IsArray(volumes)) return refuse(c, "\"volumes\": expected an array of volumes");
  if (cJSON_GetArraySize(volumes) > BOARD_DISKS_MAX) return refuse(c, "\"volumes\": the native board takes at most %d", BOARD_DISKS_MAX);
  int index = 0;
  for (const cJSON *v = volumes->child; v != NULL; v = v->next, index++) {
    char where[32];
    snprintf(where, sizeof where, "\"volumes\"[%d]", index);
    if (!cJSON_IsObject(v)) return refuse(c, "%s: expected a volume object", where);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "disk") != 0)
      return refuse(c, "%s.\"type\": \"%s\" is not supported by the native board yet (only \"disk\" volumes)", where,
                    cJSON_IsString(type) ? type->valuestring : "?");
    if (check_keys(c, v, KEYS, where) != 0) return -1;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name"), *disk = cJSON_GetObjectItemCaseSensitive(v, "disk");
    if (!is_name(name)) return refuse(c, "%s.\"name\": expected a volume name of 1 to 31 lower-case letters, digits or \"-\"", where);
    int found = cJSON_IsString(disk) ? find_disk(b, disk->valuestring) : -1;
    if (found < 0) return refuse(c, "%s.\"disk\": no disk named %s", where, cJSON_IsString(disk) ? disk->valuestring : "(not a string)");
    for (int i = 0; i < b->volume_count; i++) {
      if (strcmp(b->volumes[i].name, name->valuestring) == 0) return refuse(c, "%s.\"name\": volume %s is named twice", where, name->valuestring);
      if (b->volumes[i].disk == found) return refuse(c, "%s.\"disk\": disk %s is in two volumes", where, disk->valuestring);
    }
    snprintf(b->volumes[b->volume_count].name, sizeof b->volumes[0].name, "%s", name->valuestring);
    b->volumes[b->volume_count++].disk = found;
  }
  return 0;
}

static int copy_limited(ctx *c, const cJSON *item, char *out, size_t capacity, size_t min, int min_char, const char *where) {
  if (!cJSON_IsString(item) || strlen(item->valuestring) < min || strlen(item->valuestring) >= capacity || !printable(item->valuestring, min_char))
    return refuse(c, "%s: expected %zu to %zu printable characters", where, min, capacity - 1);
  snprintf(out, capacity, "%s", item->valuestring);
  return 0;
}

static int load_targets(ctx *c, const cJSON *targets, board_spec *b) {
  static const char *const KEYS[] = {"name", "alias", "luns", "chap", "initiators", NULL};
  static const char *const CHAP_KEYS[] = {"user", "secret", "mutualUser", "mutualSecret", NULL};
  if (targets == NULL) {
    target_spec *t = &b->targets[0];
    snprintf(t->name, sizeof t->name, "iqn.2026-11.org.wasm-iop:%s", b->name);
    b->target_count = 1;
    return 0;
  }
  if (!cJSON_IsArray(targets) || cJSON_GetArraySize(targets) < 1 || cJSON_GetArraySize(targets) > BOARD_TARGETS_MAX)
    return refuse(c, "\"targets\": expected an array of 1 to 8 targets");
  int index = 0;
  for (const cJSON *o = targets->child; o != NULL; o = o->next, index++) {
    char where[64];
    snprintf(where, sizeof where, "\"targets\"[%d]", index);
    if (!cJSON_IsObject(o)) return refuse(c, "%s: expected a target object", where);
    if (check_keys(c, o, KEYS, where) != 0) return -1;
    target_spec *t = &b->targets[b->target_count];
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(name) || !is_iscsi_name(name->valuestring)) return refuse(c, "%s.\"name\": expected an iSCSI name", where);
    snprintf(t->name, sizeof t->name, "%s", name->valuestring);
    const cJSON *alias = cJSON_GetObjectItemCaseSensitive(o, "alias");
    char field[96];
    snprintf(field, sizeof field, "%s.\"alias\"", where);
    if (alias != NULL && copy_limited(c, alias, t->alias, sizeof t->alias, 1, 0x20, field) != 0) return -1;
    const cJSON *luns = cJSON_GetObjectItemCaseSensitive(o, "luns");
    if (luns != NULL) {
      if (!cJSON_IsArray(luns) || cJSON_GetArraySize(luns) > TARGET_LUNS_MAX) return refuse(c, "%s.\"luns\": expected an array of up to 16 LUNs", where);
      t->luns_given = 1;
      int l = 0;
      for (const cJSON *lun = luns->child; lun != NULL; lun = lun->next, l++) {
        const cJSON *volume = cJSON_IsObject(lun) ? cJSON_GetObjectItemCaseSensitive(lun, "volume") : lun;
        const cJSON *read_only = cJSON_IsObject(lun) ? cJSON_GetObjectItemCaseSensitive(lun, "readOnly") : NULL;
        int found = -1;
        if (whole(volume, 0, 15)) found = volume->valueint < b->volume_count ? volume->valueint : -1;
        else if (cJSON_IsString(volume))
          for (int v = 0; v < b->volume_count; v++)
            if (strcmp(b->volumes[v].name, volume->valuestring) == 0) found = v;
        if (found < 0) return refuse(c, "%s.\"luns\"[%d]: no such volume", where, l);
        if (read_only != NULL && !cJSON_IsBool(read_only)) return refuse(c, "%s.\"luns\"[%d].\"readOnly\": expected true or false", where, l);
        for (int k = 0; k < t->lun_count; k++)
          if (t->lun_volume[k] == found) return refuse(c, "%s.\"luns\"[%d]: volume %d is listed twice", where, l, found);
        t->lun_volume[t->lun_count] = found;
        t->lun_read_only[t->lun_count++] = read_only != NULL && cJSON_IsTrue(read_only);
      }
    }
    const cJSON *chap = cJSON_GetObjectItemCaseSensitive(o, "chap");
    if (chap != NULL) {
      snprintf(field, sizeof field, "%s.\"chap\"", where);
      if (!cJSON_IsObject(chap)) return refuse(c, "%s: expected a chap object", field);
      if (check_keys(c, chap, CHAP_KEYS, field) != 0) return -1;
      t->has_chap = 1;
      char sub[128];
      snprintf(sub, sizeof sub, "%s.\"user\"", field);
      if (copy_limited(c, cJSON_GetObjectItemCaseSensitive(chap, "user"), t->chap_user, sizeof t->chap_user, 1, 0x21, sub) != 0) return -1;
      snprintf(sub, sizeof sub, "%s.\"secret\"", field);
      if (copy_limited(c, cJSON_GetObjectItemCaseSensitive(chap, "secret"), t->chap_secret, sizeof t->chap_secret, 12, 0x21, sub) != 0) return -1;
      const cJSON *mu = cJSON_GetObjectItemCaseSensitive(chap, "mutualUser"), *ms = cJSON_GetObjectItemCaseSensitive(chap, "mutualSecret");
      snprintf(sub, sizeof sub, "%s.\"mutualUser\"", field);
      if (mu != NULL && copy_limited(c, mu, t->mutual_user, sizeof t->mutual_user, 1, 0x21, sub) != 0) return -1;
      snprintf(sub, sizeof sub, "%s.\"mutualSecret\"", field);
      if (ms != NULL && copy_limited(c, ms, t->mutual_secret, sizeof t->mutual_secret, 12, 0x21, sub) != 0) return -1;
      t->has_mutual_user = mu != NULL;
      t->has_mutual_secret = ms != NULL;
    }
    const cJSON *initiators = cJSON_GetObjectItemCaseSensitive(o, "initiators");
    if (initiators != NULL) {
      if (!cJSON_IsArray(initiators) || cJSON_GetArraySize(initiators) > TARGET_INITIATORS_MAX)
        return refuse(c, "%s.\"initiators\": expected an array of up to 8 initiator names", where);
      int i = 0;
      for (const cJSON *name_item = initiators->child; name_item != NULL; name_item = name_item->next, i++) {
        if (!cJSON_IsString(name_item) || !is_iscsi_name(name_item->valuestring)) return refuse(c, "%s.\"initiators\"[%d]: expected an iSCSI name", where, i);
        snprintf(t->initiators[t->initiator_count++], sizeof t->initiators[0], "%s", name_item->valuestring);
      }
    }
    for (int k = 0; k < b->target_count; k++)
      if (strcmp(b->targets[k].name, t->name) == 0) return refuse(c, "%s.\"name\": target %s is named twice", where, t->name);
    b->target_count++;
  }
  return 0;
}

static int load(ctx *c, const cJSON *root, board_spec *out) {
  static const char *const TOP_KEYS[] = {"$schema", "name", "description", "seed", "processors", "disks", "volumes", "portals", "targets", "flash", NULL};
  static const char *const PROCESSOR_KEYS[] = {"name", "role", "ramMiB", "pci", NULL};
  static const char *const FLASH_KEYS[] = {"image", "slotSizeMiB", "trustedKeys", "boardCompat", "populateKey", NULL};
  if (!cJSON_IsObject(root)) return refuse(c, "the board file is not a JSON object");
  for (const cJSON *item = root->child; item != NULL; item = item->next)
    if (!is_one_of(item->string, TOP_KEYS)) return refuse(c, "\"%s\" is not a board-file field the native board knows", item->string);
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
  if (!cJSON_IsString(name) || strlen(name->valuestring) == 0 || strlen(name->valuestring) > 63 || !printable(name->valuestring, 0x21))
    return refuse(c, "\"name\": expected 1 to 63 printable characters");
  snprintf(out->name, sizeof out->name, "%s", name->valuestring);
  const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
  if (seed == NULL) snprintf(out->seed, sizeof out->seed, "0");
  else if (whole(seed, 0, 9007199254740991.0)) snprintf(out->seed, sizeof out->seed, "%.0f", seed->valuedouble);
  else if (cJSON_IsString(seed) && strlen(seed->valuestring) < sizeof out->seed) snprintf(out->seed, sizeof out->seed, "%s", seed->valuestring);
  else return refuse(c, "\"seed\": expected a non-negative safe integer or a string of up to 31 characters");

  const cJSON *disks = cJSON_GetObjectItemCaseSensitive(root, "disks");
  if (disks == NULL) return refuse(c, "\"disks\": expected an array of disks, got nothing");
  if (load_disks(c, disks, out) != 0) return -1;

  const cJSON *processors = cJSON_GetObjectItemCaseSensitive(root, "processors");
  if (!cJSON_IsArray(processors) || cJSON_GetArraySize(processors) < 1) return refuse(c, "\"processors\": expected a non-empty array");
  if (cJSON_GetArraySize(processors) != 1)
    return refuse(c, "\"processors\": the native board runs one processor, the host; this file has %d (storage processors need the iop-bridge model, not ported)",
                  cJSON_GetArraySize(processors));
  const cJSON *p = cJSON_GetArrayItem(processors, 0);
  if (!cJSON_IsObject(p)) return refuse(c, "\"processors\"[0]: expected an object");
  if (check_keys(c, p, PROCESSOR_KEYS, "\"processors\"[0]") != 0) return -1;
  const cJSON *pname = cJSON_GetObjectItemCaseSensitive(p, "name");
  if (!cJSON_IsString(pname) || strlen(pname->valuestring) == 0 || strlen(pname->valuestring) >= 32)
    return refuse(c, "\"processors\"[0].\"name\": expected a string of 1 to 31 characters");
  snprintf(out->processor_name, sizeof out->processor_name, "%s", pname->valuestring);
  const cJSON *role = cJSON_GetObjectItemCaseSensitive(p, "role");
  if (!cJSON_IsString(role) || (strcmp(role->valuestring, "host") != 0 && strcmp(role->valuestring, "storage") != 0))
    return refuse(c, "\"processors\"[0].\"role\": expected \"host\" or \"storage\"");
  if (strcmp(role->valuestring, "host") != 0) return refuse(c, "\"processors\"[0].\"role\": the native board runs a host processor only");
  const cJSON *ram = cJSON_GetObjectItemCaseSensitive(p, "ramMiB");
  if (!whole(ram, 1, 4095)) return refuse(c, "\"processors\"[0].\"ramMiB\": expected an integer from 1 to 4095");
  out->ram_mib = (uint32_t)ram->valuedouble;
  if (load_pci(c, cJSON_GetObjectItemCaseSensitive(p, "pci"), out) != 0) return -1;
  for (int d = 0; d < out->disk_count; d++) {
    int held = 0;
    for (int i = 0; i < out->pci_count; i++)
      for (int k = 0; k < out->pci[i].disk_count; k++) held = held || out->pci[i].disks[k] == d;
    if (!held) return refuse(c, "\"disks\": disk %s is on no controller", out->disks[d].name);
  }
  if (load_volumes(c, cJSON_GetObjectItemCaseSensitive(root, "volumes"), out) != 0) return -1;

  const cJSON *portals = cJSON_GetObjectItemCaseSensitive(root, "portals");
  if (portals != NULL) {
    if (!cJSON_IsArray(portals) || cJSON_GetArraySize(portals) > BOARD_PORTALS_MAX) return refuse(c, "\"portals\": expected an array of up to 8 portals");
    int index = 0;
    for (const cJSON *o = portals->child; o != NULL; o = o->next, index++) {
      static const char *const KEYS[] = {"host", "port", NULL};
      char where[32];
      snprintf(where, sizeof where, "\"portals\"[%d]", index);
      if (!cJSON_IsObject(o)) return refuse(c, "%s: expected a portal object", where);
      if (check_keys(c, o, KEYS, where) != 0) return -1;
      const cJSON *host = cJSON_GetObjectItemCaseSensitive(o, "host"), *port = cJSON_GetObjectItemCaseSensitive(o, "port");
      if (!cJSON_IsString(host) || strlen(host->valuestring) == 0 || strlen(host->valuestring) > 255) return refuse(c, "%s.\"host\": expected a host name or address", where);
      if (!whole(port, 0, 65535)) return refuse(c, "%s.\"port\": expected an integer from 0 to 65535", where);
      snprintf(out->portals[out->portal_count].host, sizeof out->portals[0].host, "%s", host->valuestring);
      out->portals[out->portal_count++].port = port->valueint;
    }
  }
  if (load_targets(c, cJSON_GetObjectItemCaseSensitive(root, "targets"), out) != 0) return -1;

  const cJSON *flash = cJSON_GetObjectItemCaseSensitive(root, "flash");
  if (flash == NULL) return refuse(c, "\"flash\": the native board boots only from its flash; the file needs a \"flash\" section");
  if (!cJSON_IsObject(flash)) return refuse(c, "\"flash\": expected a flash object");
  for (const cJSON *item = flash->child; item != NULL; item = item->next)
    if (!is_one_of(item->string, FLASH_KEYS)) return refuse(c, "\"flash\".\"%s\" is not a flash field", item->string);
  const cJSON *image = cJSON_GetObjectItemCaseSensitive(flash, "image");
  if (!cJSON_IsString(image) || !is_relative_file(image->valuestring)) return refuse(c, "\"flash\".\"image\": expected a relative file name under the data directory");
  snprintf(out->flash_image, sizeof out->flash_image, "%s", image->valuestring);
  const cJSON *slot = cJSON_GetObjectItemCaseSensitive(flash, "slotSizeMiB");
  if (slot != NULL && !whole(slot, 1, 16)) return refuse(c, "\"flash\".\"slotSizeMiB\": expected an integer from 1 to 16");
  out->slot_size_mib = slot == NULL ? 4 : (uint32_t)slot->valuedouble;
  const cJSON *compat = cJSON_GetObjectItemCaseSensitive(flash, "boardCompat");
  if (compat != NULL && (!cJSON_IsString(compat) || strlen(compat->valuestring) < 1 || strlen(compat->valuestring) > 31 || !printable(compat->valuestring, 0x20)))
    return refuse(c, "\"flash\".\"boardCompat\": expected 1 to 31 printable ASCII characters");
  snprintf(out->board_compat, sizeof out->board_compat, "%s", compat == NULL ? "wasm-iop" : compat->valuestring);
  const cJSON *keys = cJSON_GetObjectItemCaseSensitive(flash, "trustedKeys");
  if (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) < 1 || cJSON_GetArraySize(keys) > TRUSTED_KEYS_MAX)
    return refuse(c, "\"flash\".\"trustedKeys\": expected an array of 1 to 8 public-key paths");
  int index = 0;
  for (const cJSON *key = keys->child; key != NULL; key = key->next, index++) {
    if (!cJSON_IsString(key)) return refuse(c, "\"flash\".\"trustedKeys\"[%d]: expected a path", index);
    char key_path[4096], key_error[300];
    resolve_path(c->path, key->valuestring, key_path, sizeof key_path);
    if (trusted_key_from_pem_file(key_path, &out->keys[out->key_count], key_error, sizeof key_error) != 0)
      return refuse(c, "\"flash\".\"trustedKeys\"[%d]: %s", index, key_error);
    out->key_count++;
  }
  return 0;
}

int board_file_load(const char *path, board_spec *out, char *error, size_t error_bytes) {
  memset(out, 0, sizeof *out);
  ctx c = {path, error, error_bytes};
  FILE *f = fopen(path, "rb");
  if (f == NULL) return refuse(&c, "cannot read the board file");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)size + 1);
  size_t got = text == NULL ? 0 : fread(text, 1, (size_t)size, f);
  fclose(f);
  if (text == NULL || got != (size_t)size) {
    free(text);
    return refuse(&c, "cannot read the board file");
  }
  text[size] = 0;
  cJSON *root = cJSON_Parse(text);
  int result = root == NULL ? refuse(&c, "not JSON (near byte %ld)", (long)(cJSON_GetErrorPtr() - text)) : load(&c, root, out);
  cJSON_Delete(root);
  free(text);
  return result;
}
