/* The firmware image format (docs/image-format.md): decode and verify, in the order and with the refusal reasons
 * and messages of host/image/format.ts. Ed25519 and SHA-256 come from libsodium. */
#ifndef IOP_IMAGE_H
#define IOP_IMAGE_H
#include <stddef.h>
#include <stdint.h>

#define IMAGE_MAGIC 0x474d4957u
#define IMAGE_HEADER_SIZE_BYTES 64u
#define IMAGE_SIZE_MAX_BYTES (4u * 1024u * 1024u)
#define KEY_ID_SIZE_BYTES 8

typedef struct {
  uint8_t key_id[KEY_ID_SIZE_BYTES];
  uint8_t public_key[32];
} trusted_key;

typedef struct {
  const trusted_key *keys;
  size_t key_count;
  const char *board_compat; /* NULL: not checked */
  int abi_version;          /* < 0: not checked */
  int64_t security_counter_min; /* < 0: not checked */
  uint64_t slot_size_bytes;  /* 0: no slot */
  int allow_trailing;        /* a slot's unused tail follows the image */
} image_policy;

typedef struct {
  uint16_t header_size, protected_tlv_size, abi_version;
  uint32_t payload_size, flags;
  uint8_t major, minor;
  uint16_t revision;
  uint32_t build;
  char board_compat[32];
  const uint8_t *payload;
  uint32_t security_counter;
  const uint8_t *key_id, *hash, *signature; /* key_id/signature NULL when unsigned */
  uint64_t hashed_size, total_size;
} decoded_image;

/* 0, or -1 with "reason: detail" in `error` (the reason one of docs/image-format.md's). Never reads past `length`. */
int image_decode(const uint8_t *bytes, uint64_t length, const image_policy *policy, decoded_image *out, char *error,
                 size_t error_bytes);
int image_verify(const uint8_t *bytes, uint64_t length, const image_policy *policy, decoded_image *out, char *error,
                 size_t error_bytes);
/* Reads an Ed25519 public key in SPKI PEM (the .pub files `wasm-iop image keygen` writes); -1 with a message. */
int trusted_key_from_pem_file(const char *path, trusted_key *out, char *error, size_t error_bytes);
#endif
