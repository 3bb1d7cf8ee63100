/* The data key ring (see data_key.h). */
#include <string.h>

#include "infra/data_key.h"
#include "lib/crypto.h"
#include "lib/encoding.h"
#include "lib/secret.h"

#define FINGERPRINT_LABEL "opsd data key fingerprint v1"

bool data_keyring_load(const struct opsd_config *cfg, struct data_keyring *r)
{
	r->n = config_data_keys(cfg, r->key, DATA_KEYS_MAX);
	return r->n > 0;
}

void data_keyring_wipe(struct data_keyring *r)
{
	secret_wipe(r, sizeof(*r));
}

int data_keyring_open(const struct data_keyring *r, const char *sealed, char *out, size_t out_len)
{
	for (size_t i = 0; sealed && i < r->n; i++)
		if (secret_open(r->key[i], sealed, out, out_len))
			return (int)i;
	if (out_len)
		secret_wipe(out, out_len);
	return -1;
}

bool data_keyring_seal(const struct data_keyring *r, const char *plain, char *out, size_t out_len)
{
	return r->n > 0 && secret_seal(r->key[0], plain, out, out_len);
}

enum data_key_open_rc data_key_open(const struct opsd_config *cfg, const char *sealed, char *out,
    size_t out_len)
{
	struct data_keyring r;
	enum data_key_open_rc rc = DK_NO_KEY;

	if (data_keyring_load(cfg, &r))
		rc = data_keyring_open(&r, sealed, out, out_len) >= 0 ? DK_OPENED : DK_FOREIGN;
	data_keyring_wipe(&r);
	return rc;
}

const char *data_key_open_error(enum data_key_open_rc rc)
{
	return rc == DK_NO_KEY
	           ? "OPSD_DATA_KEY is not set: the stored target cannot be opened"
	           : "the stored target was sealed under neither OPSD_DATA_KEY nor a key "
	             "of OPSD_DATA_KEY_PREVIOUS";
}

void data_key_fingerprint(const uint8_t key[32], char out[DATA_KEY_FP_LEN + 1])
{
	uint8_t mac[32];

	hmac_sha256(key, 32, FINGERPRINT_LABEL, strlen(FINGERPRINT_LABEL), mac);
	hex_encode(mac, DATA_KEY_FP_LEN / 2, out);
	secret_wipe(mac, sizeof(mac));
}
