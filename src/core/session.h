/* Session cookies (README "Identity, sessions and roles"): 256 random bits of id; the database
 * keeps only sha256(id); the cookie carries the id and an HMAC under SESSION_SECRET, so a new
 * secret invalidates every cookie at once (runbook 7). */
#ifndef OPSD_SESSION_H
#define OPSD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SESSION_COOKIE_NAME "__Host-opsd_session"
#define SESSION_ID_LEN 32
/* b64url(id) "." b64url(hmac): 43 + 1 + 43. */
#define SESSION_COOKIE_VALUE_LEN 87
#define CSRF_TOKEN_LEN 43

/* Cookie value for id. out[SESSION_COOKIE_VALUE_LEN + 1]. */
void session_cookie_value(const char *secret, const uint8_t id[SESSION_ID_LEN], char *out);
/* Finds SESSION_COOKIE_NAME in a Cookie header (RFC 6265 §5.4 syntax,
 * several cookies, any order), checks its shape and HMAC in constant time.
 * True and the id when valid. A duplicate session cookie is refused. */
bool session_cookie_parse(const char *secret, const char *cookie_header,
    uint8_t id[SESSION_ID_LEN]);
/* The CSRF token bound to a session: b64url(HMAC(secret, "csrf" || id)).
 * out[CSRF_TOKEN_LEN + 1]. */
void session_csrf_token(const char *secret, const uint8_t id[SESSION_ID_LEN], char *out);
bool session_csrf_ok(const char *secret, const uint8_t id[SESSION_ID_LEN], const char *header);
/* Set-Cookie value: name=value; Path=/; Secure; HttpOnly; SameSite=Strict
 * (and Max-Age=0 with an empty value when value is NULL, to clear it). */
void session_set_cookie(const char *value, long max_age_s, char *out, size_t out_len);

#define SESSION_SECRET_FINGERPRINT_LEN 16
/* What names a secret in the audit log without revealing it: the first 8
 * bytes of HMAC-SHA256 keyed by the secret over a fixed text, in hex. The
 * same secret gives the same fingerprint on every host; finding the secret
 * from it costs a guess of the whole secret per try.
 * out[SESSION_SECRET_FINGERPRINT_LEN + 1]; "" when secret is NULL. */
void session_secret_fingerprint(const char *secret, char *out);

#endif
