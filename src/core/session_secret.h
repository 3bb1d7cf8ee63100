/* Noticing a new SESSION_SECRET (README "Runbook 7"): every cookie signed
 * with the old one is refused from the first request a new worker serves;
 * this makes the change visible in the audit log, once for the whole
 * deployment, with fingerprints (core/session.h) instead of secrets. */
#ifndef OPSD_SESSION_SECRET_H
#define OPSD_SESSION_SECRET_H

#include "core/session.h"

struct db;
struct opsd_config;

enum secret_change {
	SECRET_UNCHANGED,  /* the secret last seen, or another process recorded this one */
	SECRET_FIRST_SEEN, /* nothing was recorded before: stored, not audited */
	SECRET_ROTATED,    /* stored and audited security.session_secret_rotated */
};
struct secret_seen {
	enum secret_change change;
	char fingerprint[SESSION_SECRET_FINGERPRINT_LEN + 1];
	char previous[SESSION_SECRET_FINGERPRINT_LEN + 1]; /* SECRET_ROTATED */
};
/* Compares the fingerprint of cfg's SESSION_SECRET with the one stored
 * and, when they differ, stores it and audits the rotation (fingerprint and
 * previous fingerprint) in one transaction. One conditional UPDATE decides:
 * of several processes or hosts starting with the same new secret, only the
 * one that changed the row writes the event. 0 and *out, or -1. */
int session_secret_note(struct db *d, const struct opsd_config *cfg, struct secret_seen *out);
/* The jobs-process entry: once per jobs process (so at every start and
 * reload), tried again each second until the database answers. */
int session_secret_job(struct db *d, const struct opsd_config *cfg);

#endif
