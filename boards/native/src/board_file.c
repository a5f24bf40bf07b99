#include "board_file.h"

#include <cjson/cJSON.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFUSE(...)                              \
  do {                                           \
    int n_ = snprintf(error, error_bytes, "%s: ", path); \
    if (n_ > 0 && (size_t)n_ < error_bytes) snprintf(error + n_, error_bytes - (size_t)n_, __VA_ARGS__); \
    goto fail;                                   \
  } while (0)

static int is_one_of(const char *key, const char *const *keys) {
  for (; *keys != NULL; keys++)
    if (strcmp(key, *keys) == 0) return 1;
  return 0;
}

static int whole_number(const cJSON *item, double min, double max) {
  return cJSON_IsNumber(item) && item->valuedouble == floor(item->valuedouble) && item->valuedouble >= min &&
         item->valuedouble <= max;
}

/* Resolves `relative` against the board file's folder, as load.ts does. */
static void resolve_path(const char *board_path, const char *relative, char *out, size_t out_bytes) {
  if (relative[0] == '/') {
    snprintf(out, out_bytes, "%s", relative);
    return;
  }
  char copy[4096];
  snprintf(copy, sizeof copy, "%s", board_path);
  snprintf(out, out_bytes, "%s/%s", dirname(copy), relative);
}

static const char *const TOP_KEYS[] = {"$schema", "name", "description", "seed", "processors", "flash", NULL};
static const char *const TOP_KEYS_LATER[] = {"disks", "volumes", "portals", "targets", NULL};
static const char *const PROCESSOR_KEYS[] = {"name", "role", "ramMiB", "pci", NULL};
static const char *const FLASH_KEYS[] = {"image", "slotSizeMiB", "trustedKeys", "boardCompat", "populateKey", NULL};

int board_file_load(const char *path, board_spec *out, char *error, size_t error_bytes) {
  memset(out, 0, sizeof *out);
  cJSON *root = NULL;
  char *text = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(error, error_bytes, "%s: cannot read the board file", path);
    return -1;
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  text = malloc((size_t)size + 1);
  if (text == NULL || fread(text, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    REFUSE("cannot read the board file");
  }
  fclose(f);
  text[size] = 0;
  root = cJSON_Parse(text);
  if (root == NULL) REFUSE("not JSON (near byte %ld)", (long)(cJSON_GetErrorPtr() - text));
  if (!cJSON_IsObject(root)) REFUSE("the board file is not a JSON object");
  for (cJSON *item = root->child; item != NULL; item = item->next) {
    if (is_one_of(item->string, TOP_KEYS)) continue;
    if (is_one_of(item->string, TOP_KEYS_LATER) && cJSON_IsArray(item) && cJSON_GetArraySize(item) == 0) continue;
    if (is_one_of(item->string, TOP_KEYS_LATER))
      REFUSE("\"%s\" is not supported by the native board yet (it has no NIC or disk models; see boards/native/README.md)", item->string);
    REFUSE("\"%s\" is not a board-file field the native board knows", item->string);
  }
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
  if (!cJSON_IsString(name) || strlen(name->valuestring) == 0 || strlen(name->valuestring) >= 64)
    REFUSE("\"name\": expected a string of 1 to 63 characters");
  snprintf(out->name, sizeof out->name, "%s", name->valuestring);
  const cJSON *seed = cJSON_GetObjectItemCaseSensitive(root, "seed");
  if (seed == NULL) snprintf(out->seed, sizeof out->seed, "0");
  else if (whole_number(seed, 0, 9007199254740991.0)) snprintf(out->seed, sizeof out->seed, "%.0f", seed->valuedouble);
  else if (cJSON_IsString(seed) && strlen(seed->valuestring) < sizeof out->seed) snprintf(out->seed, sizeof out->seed, "%s", seed->valuestring);
  else REFUSE("\"seed\": expected a non-negative safe integer or a string of up to 31 characters");

  const cJSON *processors = cJSON_GetObjectItemCaseSensitive(root, "processors");
  if (!cJSON_IsArray(processors) || cJSON_GetArraySize(processors) < 1) REFUSE("\"processors\": expected a non-empty array");
  if (cJSON_GetArraySize(processors) != 1)
    REFUSE("\"processors\": the native board runs one processor, the host; this file has %d (storage processors need the iop-bridge model, not ported)",
           cJSON_GetArraySize(processors));
  const cJSON *p = cJSON_GetArrayItem(processors, 0);
  if (!cJSON_IsObject(p)) REFUSE("\"processors\"[0]: expected an object");
  for (cJSON *item = p->child; item != NULL; item = item->next)
    if (!is_one_of(item->string, PROCESSOR_KEYS)) REFUSE("\"processors\"[0].\"%s\" is not a field the native board knows", item->string);
  const cJSON *pname = cJSON_GetObjectItemCaseSensitive(p, "name");
  if (!cJSON_IsString(pname) || strlen(pname->valuestring) == 0 || strlen(pname->valuestring) >= 32)
    REFUSE("\"processors\"[0].\"name\": expected a string of 1 to 31 characters");
  snprintf(out->processor_name, sizeof out->processor_name, "%s", pname->valuestring);
  const cJSON *role = cJSON_GetObjectItemCaseSensitive(p, "role");
  if (!cJSON_IsString(role) || (strcmp(role->valuestring, "host") != 0 && strcmp(role->valuestring, "storage") != 0))
    REFUSE("\"processors\"[0].\"role\": expected \"host\" or \"storage\"");
  if (strcmp(role->valuestring, "host") != 0) REFUSE("\"processors\"[0].\"role\": the native board runs a host processor only");
  const cJSON *ram = cJSON_GetObjectItemCaseSensitive(p, "ramMiB");
  if (!whole_number(ram, 1, 4095)) REFUSE("\"processors\"[0].\"ramMiB\": expected an integer from 1 to 4095");
  out->ram_mib = (uint32_t)ram->valuedouble;
  const cJSON *pci = cJSON_GetObjectItemCaseSensitive(p, "pci");
  if (pci != NULL && !cJSON_IsArray(pci)) REFUSE("\"processors\"[0].\"pci\": expected an array");
  int index = 0;
  for (const cJSON *fn = pci == NULL ? NULL : pci->child; fn != NULL; fn = fn->next, index++) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(fn, "model");
    REFUSE("\"processors\"[0].\"pci\"[%d]: model \"%s\" is not supported by the native board yet", index,
           cJSON_IsString(model) ? model->valuestring : "?");
  }

  const cJSON *flash = cJSON_GetObjectItemCaseSensitive(root, "flash");
  if (flash == NULL) REFUSE("\"flash\": the native board boots only from its flash; the file needs a \"flash\" section");
  if (!cJSON_IsObject(flash)) REFUSE("\"flash\": expected a flash object");
  for (cJSON *item = flash->child; item != NULL; item = item->next)
    if (!is_one_of(item->string, FLASH_KEYS)) REFUSE("\"flash\".\"%s\" is not a flash field", item->string);
  const cJSON *image = cJSON_GetObjectItemCaseSensitive(flash, "image");
  if (!cJSON_IsString(image) || strlen(image->valuestring) == 0 || strchr(image->valuestring, '/') != NULL)
    REFUSE("\"flash\".\"image\": expected a file name in the data directory");
  snprintf(out->flash_image, sizeof out->flash_image, "%s", image->valuestring);
  const cJSON *slot = cJSON_GetObjectItemCaseSensitive(flash, "slotSizeMiB");
  if (slot != NULL && !whole_number(slot, 1, 16)) REFUSE("\"flash\".\"slotSizeMiB\": expected an integer from 1 to 16");
  out->slot_size_mib = slot == NULL ? 4 : (uint32_t)slot->valuedouble;
  const cJSON *compat = cJSON_GetObjectItemCaseSensitive(flash, "boardCompat");
  if (compat != NULL) {
    int ok = cJSON_IsString(compat) && strlen(compat->valuestring) >= 1 && strlen(compat->valuestring) <= 31;
    for (const char *c = ok ? compat->valuestring : ""; *c != 0; c++) ok = ok && *c >= 0x20 && *c <= 0x7e;
    if (!ok) REFUSE("\"flash\".\"boardCompat\": expected 1 to 31 printable ASCII characters");
  }
  snprintf(out->board_compat, sizeof out->board_compat, "%s", compat == NULL ? "wasm-iop" : compat->valuestring);
  const cJSON *keys = cJSON_GetObjectItemCaseSensitive(flash, "trustedKeys");
  if (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) < 1 || cJSON_GetArraySize(keys) > TRUSTED_KEYS_MAX)
    REFUSE("\"flash\".\"trustedKeys\": expected an array of 1 to 8 public-key paths");
  index = 0;
  for (const cJSON *key = keys->child; key != NULL; key = key->next, index++) {
    if (!cJSON_IsString(key)) REFUSE("\"flash\".\"trustedKeys\"[%d]: expected a path", index);
    char key_path[4096], key_error[300];
    resolve_path(path, key->valuestring, key_path, sizeof key_path);
    if (trusted_key_from_pem_file(key_path, &out->keys[out->key_count], key_error, sizeof key_error) != 0)
      REFUSE("\"flash\".\"trustedKeys\"[%d]: %s", index, key_error);
    out->key_count++;
  }
  cJSON_Delete(root);
  free(text);
  return 0;
fail:
  cJSON_Delete(root);
  free(text);
  return -1;
}
