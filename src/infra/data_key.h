/* The data key ring (README "Runbook 7"): what is sealed at rest (dedicated
 * targets, migration targets) opens under OPSD_DATA_KEY or any key of
 * OPSD_DATA_KEY_PREVIOUS, and is sealed under OPSD_DATA_KEY only, so a new
 * key can be brought in before anything is re-sealed under it. */
#ifndef OPSD_DATA_KEY_H
#define OPSD_DATA_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "infra/config.h"

#define DATA_KEYS_MAX (1 + DATA_KEYS_PREVIOUS_MAX)
#define DATA_KEY_FP_LEN 16

struct data_keyring {
	size_t n;                       /* 0: OPSD_DATA_KEY is unset */
	uint8_t key[DATA_KEYS_MAX][32]; /* [0] the current key, then the previous ones */
};

/* Loads the ring; false when OPSD_DATA_KEY is unset. data_keyring_wipe
 * clears it either way. */
bool data_keyring_load(const struct opsd_config *cfg, struct data_keyring *r);
void data_keyring_wipe(struct data_keyring *r);
/* Opens sealed text with each key in turn: the index of the key that
 * opened it (0: the current one), or -1 (out cleared). */
int data_keyring_open(const struct data_keyring *r, const char *sealed, char *out, size_t out_len);
/* Seals plain under the current key (secret_seal's out sizing). */
bool data_keyring_seal(const struct data_keyring *r, const char *plain, char *out, size_t out_len);

enum data_key_open_rc { DK_OPENED, DK_NO_KEY, DK_FOREIGN };
/* The ring loaded, sealed opened and the ring wiped: DK_NO_KEY when
 * OPSD_DATA_KEY is unset, DK_FOREIGN when no key of the ring opens it. */
enum data_key_open_rc data_key_open(const struct opsd_config *cfg, const char *sealed, char *out,
    size_t out_len);
/* What a refusal of data_key_open says (never a key). */
const char *data_key_open_error(enum data_key_open_rc rc);

/* A key's public name: 16 hex characters of an HMAC under it, for audit
 * events and opsctl's output (the key cannot be derived from it). */
void data_key_fingerprint(const uint8_t key[32], char out[DATA_KEY_FP_LEN + 1]);

#endif
