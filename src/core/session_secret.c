/* Noticing a new SESSION_SECRET (see session_secret.h). */
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "core/audit.h"
#include "core/session_secret.h"
#include "infra/config.h"
#include "infra/db.h"
#include "lib/arena.h"
#include "lib/log.h"
#include "lib/util.h"

/* previous takes the old value before fingerprint is overwritten: MariaDB
 * assigns a single-table UPDATE's columns left to right. */
static const char update_sql[] =
    "UPDATE secret_fingerprints SET previous = fingerprint, fingerprint = ?, changed_at = NOW(3)"
    " WHERE name = 'session_secret' AND (fingerprint IS NULL OR fingerprint <> ?)";

struct note_tx {
	struct secret_seen *s;
	struct arena *a;
};

static int note_fn(struct db *d, void *arg)
{
	static const struct audit_actor system_actor = {NULL, "system", NULL, NULL};
	struct note_tx *x = arg;
	struct secret_seen *s = x->s;
	struct db_param p[] = {DBP_STR(s->fingerprint), DBP_STR(s->fingerprint)};
	unsigned long long changed = 0;
	struct db_rows rows;
	struct json_object *payload;

	s->change = SECRET_UNCHANGED; /* db_tx may run this again after a deadlock */
	s->previous[0] = '\0';
	if (db_exec(d, update_sql, p, countof(p), &changed) != 0)
		return -1;
	if (changed == 0)
		return 0;
	if (db_query(d, x->a,
	        "SELECT previous FROM secret_fingerprints WHERE name = 'session_secret'", NULL, 0,
	        &rows) != 0)
		return -1;
	if (rows.nrows != 1 || !rows.val[0][0]) {
		s->change = SECRET_FIRST_SEEN;
		return 0;
	}
	str_copy(s->previous, rows.val[0][0], sizeof(s->previous));
	s->change = SECRET_ROTATED;
	payload = json_object_new_object();
	json_object_object_add(payload, "fingerprint", json_object_new_string(s->fingerprint));
	json_object_object_add(payload, "previousFingerprint", json_object_new_string(s->previous));
	return audit_append(d, &system_actor, AA_SECURITY_SESSION_SECRET_ROTATED, NULL, NULL, NULL,
	    payload);
}

int session_secret_note(struct db *d, const struct opsd_config *cfg, struct secret_seen *out)
{
	struct note_tx x = {.s = out};
	int rc;

	memset(out, 0, sizeof(*out));
	session_secret_fingerprint(cfg->session_secret, out->fingerprint);
	if (!out->fingerprint[0] || !(x.a = arena_new(1024)))
		return -1;
	rc = db_tx(d, note_fn, &x);
	arena_free(x.a);
	return rc == 0 ? 0 : -1;
}

int session_secret_job(struct db *d, const struct opsd_config *cfg)
{
	/* Each jobs process is forked afresh at every start and reload. */
	static bool noted;
	struct secret_seen s;

	if (noted)
		return 0;
	if (session_secret_note(d, cfg, &s) != 0)
		return -1;
	noted = true;
	if (s.change == SECRET_ROTATED)
		log_msg(LL_WARN, "session_secret_rotated",
		    "SESSION_SECRET changed (fingerprint %s, was %s): earlier session cookies are refused",
		    s.fingerprint, s.previous);
	else if (s.change == SECRET_FIRST_SEEN)
		log_msg(LL_INFO, "session_secret_recorded",
		    "SESSION_SECRET fingerprint %s recorded", s.fingerprint);
	return 0;
}
