/* Session cookies and CSRF tokens: pure functions of SESSION_SECRET and the
 * session id (the store lives with the users code). */
#include "core/session.h"

#include "lib/crypto.h"
#include "lib/encoding.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define B64_ID_LEN 43 /* b64url of 32 bytes, unpadded */

_Static_assert(SESSION_COOKIE_VALUE_LEN == 2 * B64_ID_LEN + 1, "cookie value is id.mac");
_Static_assert(CSRF_TOKEN_LEN == B64_ID_LEN, "csrf token is one b64url HMAC");

/* HMAC(secret, purpose || id): the purpose keeps a cookie MAC from ever
 * being usable as a CSRF token and the other way round. */
static void mac_for(const char *secret, const char *purpose, const uint8_t id[SESSION_ID_LEN],
    uint8_t mac[32])
{
	uint8_t msg[16 + SESSION_ID_LEN];
	size_t plen = strlen(purpose);
	memcpy(msg, purpose, plen);
	memcpy(msg + plen, id, SESSION_ID_LEN);
	hmac_sha256(secret, strlen(secret), msg, plen + SESSION_ID_LEN, mac);
}

void session_cookie_value(const char *secret, const uint8_t id[SESSION_ID_LEN], char *out)
{
	uint8_t mac[32];
	out[0] = '\0';
	if (secret == NULL)
		return;
	mac_for(secret, "session", id, mac);
	b64url_encode(id, SESSION_ID_LEN, out, B64_ID_LEN + 1);
	out[B64_ID_LEN] = '.';
	b64url_encode(mac, sizeof(mac), out + B64_ID_LEN + 1, B64_ID_LEN + 1);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The one session cookie value in a Cookie header, or NULL when it is
 * absent or present more than once. RFC 6265 §5.4: pairs are separated by
 * "; "; we also take ";" alone and stray whitespace, as §5.2 parsers do. */
static const char *find_session_value(const char *h, size_t *vlen)
{
	const size_t name_len = sizeof(SESSION_COOKIE_NAME) - 1;
	const char *found = NULL;
	while (*h != '\0') {
		size_t pair_len = strcspn(h, ";");
		const char *b = h, *e = h + pair_len;
		h = *e == ';' ? e + 1 : e;
		while (b < e && is_ows(*b))
			b++;
		while (e > b && is_ows(e[-1]))
			e--;
		const char *eq = memchr(b, '=', (size_t)(e - b));
		if (eq == NULL)
			continue;
		const char *ne = eq;
		while (ne > b && is_ows(ne[-1]))
			ne--;
		/* cookie names are case-sensitive (RFC 6265 §5.3 stores them as given) */
		if ((size_t)(ne - b) != name_len || memcmp(b, SESSION_COOKIE_NAME, name_len) != 0)
			continue;
		/* two session cookies: one may be planted; trust neither */
		if (found != NULL)
			return NULL;
		found = eq + 1;
		while (found < e && is_ows(*found))
			found++;
		*vlen = (size_t)(e - found);
	}
	return found;
}

bool session_cookie_parse(const char *secret, const char *cookie_header, uint8_t id[SESSION_ID_LEN])
{
	uint8_t got_id[SESSION_ID_LEN], got_mac[32], want_mac[32];
	size_t vlen = 0, n = 0;
	if (secret == NULL || cookie_header == NULL)
		return false;
	const char *v = find_session_value(cookie_header, &vlen);
	if (v == NULL || vlen != SESSION_COOKIE_VALUE_LEN || v[B64_ID_LEN] != '.')
		return false;
	if (!b64url_decode(v, B64_ID_LEN, got_id, sizeof(got_id), &n) || n != sizeof(got_id))
		return false;
	if (!b64url_decode(v + B64_ID_LEN + 1, B64_ID_LEN, got_mac, sizeof(got_mac), &n) ||
	    n != sizeof(got_mac))
		return false;
	mac_for(secret, "session", got_id, want_mac);
	if (CRYPTO_memcmp(got_mac, want_mac, sizeof(want_mac)) != 0)
		return false;
	memcpy(id, got_id, SESSION_ID_LEN);
	return true;
}

void session_csrf_token(const char *secret, const uint8_t id[SESSION_ID_LEN], char *out)
{
	uint8_t mac[32];
	out[0] = '\0';
	if (secret == NULL)
		return;
	mac_for(secret, "csrf", id, mac);
	b64url_encode(mac, sizeof(mac), out, CSRF_TOKEN_LEN + 1);
}

bool session_csrf_ok(const char *secret, const uint8_t id[SESSION_ID_LEN], const char *header)
{
	char want[CSRF_TOKEN_LEN + 1];
	if (secret == NULL || header == NULL ||
	    strnlen(header, CSRF_TOKEN_LEN + 1) != CSRF_TOKEN_LEN)
		return false;
	session_csrf_token(secret, id, want);
	return CRYPTO_memcmp(want, header, CSRF_TOKEN_LEN) == 0;
}

void session_set_cookie(const char *value, long max_age_s, char *out, size_t out_len)
{
	if (out_len == 0)
		return;
	if (value == NULL || max_age_s < 0)
		max_age_s = 0;
	/* __Host- requires Secure, Path=/ and no Domain (RFC 6265bis §4.1.3.2) */
	int n = snprintf(out, out_len,
	    SESSION_COOKIE_NAME "=%s; Path=/; Max-Age=%ld; Secure; HttpOnly; SameSite=Strict",
	    value == NULL ? "" : value, max_age_s);
	/* a cut header could lose its flags: send none rather than that */
	if (n < 0 || (size_t)n >= out_len)
		out[0] = '\0';
}

void session_secret_fingerprint(const char *secret, char *out)
{
	static const char label[] = "opsd session secret fingerprint";
	uint8_t mac[32];

	out[0] = '\0';
	if (secret == NULL)
		return;
	hmac_sha256(secret, strlen(secret), label, sizeof(label) - 1, mac);
	hex_encode(mac, SESSION_SECRET_FINGERPRINT_LEN / 2, out);
}
