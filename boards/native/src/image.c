#include "image.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define TLV_INFO_MAGIC 0x6907u
#define TLV_PROT_INFO_MAGIC 0x6908u
#define TLV_KEY_ID 0x01u
#define TLV_SHA256 0x10u
#define TLV_ED25519 0x24u
#define TLV_SEC_CNT 0x50u
#define IMAGE_MAGIC_ERASED 0xffffffffu

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

#define FAIL(reason, ...)                                                 \
  do {                                                                    \
    int n_ = snprintf(error, error_bytes, "%s: ", reason);                \
    if (n_ > 0 && (size_t)n_ < error_bytes) snprintf(error + n_, error_bytes - (size_t)n_, __VA_ARGS__); \
    return -1;                                                            \
  } while (0)

static void hex(const uint8_t *bytes, size_t length, char *out) {
  for (size_t i = 0; i < length; i++) sprintf(out + 2 * i, "%02x", bytes[i]);
  out[2 * length] = 0;
}

static const uint8_t WASM_PREAMBLE[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};

static int require_within(uint64_t end, uint64_t length, const image_policy *policy, const char *what, char *error,
                          size_t error_bytes) {
  uint64_t limit = IMAGE_SIZE_MAX_BYTES;
  char limit_what[64];
  if (policy->slot_size_bytes != 0 && policy->slot_size_bytes < IMAGE_SIZE_MAX_BYTES) {
    limit = policy->slot_size_bytes;
    snprintf(limit_what, sizeof limit_what, "the %" PRIu64 "-byte slot", limit);
  } else {
    snprintf(limit_what, sizeof limit_what, "the image maximum %u", IMAGE_SIZE_MAX_BYTES);
  }
  if (end > limit) FAIL("oversized", "%s ends at byte %" PRIu64 ", past %s", what, end, limit_what);
  if (end > length) FAIL("truncated", "%s ends at byte %" PRIu64 " but only %" PRIu64 " bytes are present", what, end, length);
  return 0;
}

typedef struct {
  const uint8_t *value[256];
  uint32_t size;
} tlv_block;

static const char *tlv_name(unsigned type) {
  switch (type) {
    case TLV_KEY_ID: return "KEY_ID";
    case TLV_SHA256: return "SHA256";
    case TLV_ED25519: return "ED25519";
    case TLV_SEC_CNT: return "SEC_CNT";
    default: return NULL;
  }
}
static int tlv_protected(unsigned type) { return type == TLV_KEY_ID || type == TLV_SEC_CNT; }
static unsigned tlv_length(unsigned type) {
  return type == TLV_KEY_ID ? 8 : type == TLV_SHA256 ? 32 : type == TLV_ED25519 ? 64 : 4;
}

static int decode_tlv_block(const uint8_t *bytes, uint64_t length, uint64_t offset, unsigned magic, int is_protected,
                            const image_policy *policy, tlv_block *out, char *error, size_t error_bytes) {
  const char *block_name = is_protected ? "protected TLV block" : "TLV trailer";
  char what[64];
  snprintf(what, sizeof what, "%s info", block_name);
  if (require_within(offset + 4, length, policy, what, error, error_bytes) != 0) return -1;
  unsigned found = le16(bytes + offset);
  if (found != magic) FAIL("bad-tlv", "%s magic at byte %" PRIu64 " is 0x%x; expected 0x%x", block_name, offset, found, magic);
  uint32_t size = le16(bytes + offset + 2);
  if (size < 4) FAIL("bad-tlv", "%s total %u is smaller than its info header", block_name, size);
  if (require_within(offset + size, length, policy, block_name, error, error_bytes) != 0) return -1;
  memset(out, 0, sizeof *out);
  out->size = size;
  uint64_t end = offset + size, at = offset + 4;
  while (at < end) {
    if (at + 4 > end) FAIL("bad-tlv", "%s: entry header at byte %" PRIu64 " crosses the block end", block_name, at);
    unsigned type = le16(bytes + at), entry_length = le16(bytes + at + 2);
    uint64_t value_end = at + 4 + entry_length;
    if (value_end > end) FAIL("bad-tlv", "%s: TLV 0x%x at byte %" PRIu64 " crosses the block end", block_name, type, at);
    const char *name = tlv_name(type);
    if (name == NULL) FAIL("bad-tlv", "%s: TLV type 0x%x is not allowed", block_name, type);
    if (tlv_protected(type) != is_protected)
      FAIL("bad-tlv", "TLV %s belongs in the %s block", name, tlv_protected(type) ? "protected" : "unprotected");
    if (entry_length != tlv_length(type)) FAIL("bad-tlv", "TLV %s is %u bytes; it must be %u", name, entry_length, tlv_length(type));
    if (out->value[type] != NULL) FAIL("bad-tlv", "TLV %s appears twice", name);
    out->value[type] = bytes + at + 4;
    at = value_end;
  }
  return 0;
}

int image_decode(const uint8_t *bytes, uint64_t length, const image_policy *policy, decoded_image *out, char *error,
                 size_t error_bytes) {
  memset(out, 0, sizeof *out);
  if (length < 4) FAIL("truncated", "image is %" PRIu64 " bytes; even the magic needs 4", length);
  uint32_t magic = le32(bytes);
  if (magic == IMAGE_MAGIC_ERASED) FAIL("empty", "no image: the magic reads 0xffffffff (erased flash)");
  if (magic != IMAGE_MAGIC) FAIL("bad-magic", "header magic is 0x%08x; expected 0x%x", magic, IMAGE_MAGIC);
  if (length < IMAGE_HEADER_SIZE_BYTES)
    FAIL("truncated", "image is %" PRIu64 " bytes; the header alone is %u", length, IMAGE_HEADER_SIZE_BYTES);
  out->header_size = le16(bytes + 4);
  out->protected_tlv_size = le16(bytes + 6);
  out->payload_size = le32(bytes + 8);
  out->flags = le32(bytes + 12);
  out->abi_version = le16(bytes + 16);
  out->major = bytes[20];
  out->minor = bytes[21];
  out->revision = le16(bytes + 22);
  out->build = le32(bytes + 24);
  const uint8_t *compat = bytes + 32;
  int compat_length = -1;
  for (int i = 0; i < 32; i++) {
    if (compat[i] == 0) {
      compat_length = i;
      break;
    }
  }
  if (compat_length > 0) memcpy(out->board_compat, compat, (size_t)compat_length);
  if (out->header_size < IMAGE_HEADER_SIZE_BYTES || out->header_size % 4 != 0)
    FAIL("bad-header", "header size %u is not a multiple of 4 of at least %u", out->header_size, IMAGE_HEADER_SIZE_BYTES);
  if (out->flags != 0) FAIL("bad-header", "unknown flags 0x%x", out->flags);
  int printable = compat_length > 0;
  for (int i = 0; i < compat_length; i++) printable = printable && compat[i] >= 0x20 && compat[i] <= 0x7e;
  if (!printable) FAIL("bad-header", "board compatibility field is not NUL-terminated printable ASCII");
  if (out->payload_size > IMAGE_SIZE_MAX_BYTES)
    FAIL("oversized", "payload is %u bytes; an image is at most %u", out->payload_size, IMAGE_SIZE_MAX_BYTES);
  uint64_t payload_end = (uint64_t)out->header_size + out->payload_size;
  if (require_within(payload_end, length, policy, "payload", error, error_bytes) != 0) return -1;
  uint64_t protected_offset = out->header_size + (((uint64_t)out->payload_size + 3) & ~(uint64_t)3);
  if (out->protected_tlv_size == 0) FAIL("bad-tlv", "no protected TLV block (the security counter lives there)");
  static tlv_block prot, unprot;
  if (decode_tlv_block(bytes, length, protected_offset, TLV_PROT_INFO_MAGIC, 1, policy, &prot, error, error_bytes) != 0) return -1;
  if (prot.size != out->protected_tlv_size)
    FAIL("bad-tlv", "protected TLV block is %u bytes; the header says %u", prot.size, out->protected_tlv_size);
  out->hashed_size = protected_offset + prot.size;
  if (decode_tlv_block(bytes, length, out->hashed_size, TLV_INFO_MAGIC, 0, policy, &unprot, error, error_bytes) != 0) return -1;
  out->total_size = out->hashed_size + unprot.size;
  if (!policy->allow_trailing && length > out->total_size)
    FAIL("trailing-bytes", "%" PRIu64 " bytes follow the TLV trailer, which ends at byte %" PRIu64, length - out->total_size, out->total_size);
  if (prot.value[TLV_SEC_CNT] == NULL) FAIL("bad-tlv", "no SEC_CNT TLV");
  if (unprot.value[TLV_SHA256] == NULL) FAIL("bad-tlv", "no SHA256 TLV");
  out->key_id = prot.value[TLV_KEY_ID];
  out->signature = unprot.value[TLV_ED25519];
  if ((out->key_id == NULL) != (out->signature == NULL))
    FAIL("bad-tlv", "a KEY_ID TLV and an ED25519 TLV come together or not at all");
  out->payload = bytes + out->header_size;
  out->security_counter = le32(prot.value[TLV_SEC_CNT]);
  out->hash = unprot.value[TLV_SHA256];
  return 0;
}

int image_verify(const uint8_t *bytes, uint64_t length, const image_policy *policy, decoded_image *d, char *error,
                 size_t error_bytes) {
  if (sodium_init() < 0) FAIL("bad-signature", "libsodium did not initialize");
  if (image_decode(bytes, length, policy, d, error, error_bytes) != 0) return -1;
  uint8_t computed[32];
  crypto_hash_sha256(computed, bytes, d->hashed_size);
  if (memcmp(computed, d->hash, 32) != 0) {
    char a[65], b[65];
    hex(computed, 32, a);
    hex(d->hash, 32, b);
    FAIL("bad-hash", "SHA-256 over header, payload and protected TLVs is %s; the image says %s", a, b);
  }
  if (d->key_id == NULL) FAIL("unsigned", "the image carries no key id and signature; sign it with `wasm-iop image sign`");
  char key_hex[17];
  hex(d->key_id, KEY_ID_SIZE_BYTES, key_hex);
  const trusted_key *key = NULL;
  for (size_t i = 0; i < policy->key_count && key == NULL; i++) {
    if (memcmp(policy->keys[i].key_id, d->key_id, KEY_ID_SIZE_BYTES) == 0) key = &policy->keys[i];
  }
  if (key == NULL) FAIL("unknown-key", "signed with key %s, which is not among the %zu trusted keys", key_hex, policy->key_count);
  if (crypto_sign_verify_detached(d->signature, d->hash, 32, key->public_key) != 0)
    FAIL("bad-signature", "the Ed25519 signature does not verify with key %s", key_hex);
  if (d->payload_size < 8 || memcmp(d->payload, WASM_PREAMBLE, 8) != 0)
    FAIL("bad-payload", "payload is not a WebAssembly 1.0 module (no \\0asm version 1 preamble)");
  if (policy->abi_version >= 0 && d->abi_version != policy->abi_version)
    FAIL("abi-mismatch", "the image needs board ABI %u; this board provides ABI %d", d->abi_version, policy->abi_version);
  if (policy->board_compat != NULL && strcmp(d->board_compat, policy->board_compat) != 0)
    FAIL("board-mismatch", "the image is for board \"%s\"; this board is \"%s\"", d->board_compat, policy->board_compat);
  if (policy->security_counter_min >= 0 && d->security_counter < policy->security_counter_min)
    FAIL("rollback", "the image's security counter %u is below the board's %" PRId64, d->security_counter,
         policy->security_counter_min);
  return 0;
}

/* SPKI DER of an Ed25519 key: this 12-byte prefix, then the 32 raw bytes (RFC 8410). */
static const uint8_t SPKI_ED25519_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

int trusted_key_from_pem_file(const char *path, trusted_key *out, char *error, size_t error_bytes) {
  if (sodium_init() < 0) {
    snprintf(error, error_bytes, "libsodium did not initialize");
    return -1;
  }
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(error, error_bytes, "cannot read key file %s", path);
    return -1;
  }
  char text[2048];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  if (strstr(text, "PRIVATE KEY") != NULL) {
    snprintf(error, error_bytes, "%s holds a private key; give the .pub file", path);
    return -1;
  }
  const char *begin = strstr(text, "-----BEGIN PUBLIC KEY-----");
  const char *end = begin == NULL ? NULL : strstr(begin, "-----END PUBLIC KEY-----");
  uint8_t der[128];
  size_t der_length = 0;
  if (begin == NULL || end == NULL) {
    snprintf(error, error_bytes, "%s is not a PEM public key", path);
    return -1;
  }
  begin += strlen("-----BEGIN PUBLIC KEY-----");
  if (sodium_base642bin(der, sizeof der, begin, (size_t)(end - begin), " \r\n\t", &der_length, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      der_length != 44 || memcmp(der, SPKI_ED25519_PREFIX, 12) != 0) {
    snprintf(error, error_bytes, "%s is not an Ed25519 public key (SPKI PEM)", path);
    return -1;
  }
  memcpy(out->public_key, der + 12, 32);
  uint8_t digest[32];
  crypto_hash_sha256(digest, out->public_key, 32);
  memcpy(out->key_id, digest, KEY_ID_SIZE_BYTES);
  return 0;
}
