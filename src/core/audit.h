/* The append-only, hash-chained audit log (doc/architecture.md "The audit log"). Each event stores
 * sha256 of its canonical form, which includes the previous event's hash;
 * verification replays the chain and names the first event that breaks it. */
#ifndef OPSD_AUDIT_H
#define OPSD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct json_object;

/* ---- pure part (audit_hash.c) ------------------------------------------ */

/* One row as it is hashed. NULL fields are distinct from "". */
struct audit_record {
	int64_t seq;
	const char *id;          /* UUIDv7 string */
	const char *occurred_at; /* "2026-11-24 10:27:55.123" as stored (UTC) */
	const char *actor_id;
	const char *actor_label; /* role, "cli:<user>", "system" or "anonymous" */
	const char *org_id;
	const char *action;
	const char *target_type;
	const char *target_id;
	const char *ip;
	const char *request_id;
	const char *payload;   /* the stored JSON text */
	uint8_t prev_hash[32]; /* zeros for the first event */
};

/* sha256 over a length-prefixed encoding of every field in order, so no
 * two different records share a canonical form. */
void audit_record_hash(const struct audit_record *rec, uint8_t out[32]);
/* Redacts a payload in place before it is stored: every string value under a
 * sensitive key (redact_key_is_sensitive) becomes "[redacted]", and e-mail
 * addresses or bearer tokens inside other strings are masked, at any depth. */
void audit_redact_payload(struct json_object *payload);
/* The payload as it is stored and hashed: redacted (audit_redact_payload),
 * then compact JSON text without escaped slashes; the text belongs to
 * payload. */
const char *audit_payload_text(struct json_object *payload);

/* Retention anchors: a run of purged events [first_seq, last_seq], the
 * prev_hash of its first event and the hash of its last, so verification
 * steps over the run; signed with a key derived from OPSD_DATA_KEY. */
struct audit_anchor {
	int64_t first_seq;
	int64_t last_seq;
	uint8_t prev_hash[32];
	uint8_t last_hash[32];
};
#define AUDIT_KEY_ID_LEN 16
struct opsd_config;
/* The signing key and its public name (hex of sha256(key), 16 characters).
 * false when OPSD_DATA_KEY is unset. */
bool audit_anchor_key(const struct opsd_config *cfg, uint8_t key[32],
    char key_id[AUDIT_KEY_ID_LEN + 1]);
void audit_key_id(const uint8_t key[32], char key_id[AUDIT_KEY_ID_LEN + 1]);
/* The anchor keys of the whole data key ring (OPSD_DATA_KEY, then
 * OPSD_DATA_KEY_PREVIOUS): anchors are signed with key[0] and verify under
 * the key their key_id names. n is 0 when OPSD_DATA_KEY is unset. */
#define AUDIT_KEYS_MAX 9
struct audit_keys {
	size_t n;
	uint8_t key[AUDIT_KEYS_MAX][32];
	char id[AUDIT_KEYS_MAX][AUDIT_KEY_ID_LEN + 1];
};
bool audit_anchor_keys(const struct opsd_config *cfg, struct audit_keys *out);
/* The key named by key_id, or NULL (none of the ring's). */
const uint8_t *audit_keys_find(const struct audit_keys *k, const char *key_id);
void audit_keys_wipe(struct audit_keys *k);
void audit_anchor_sign(const struct audit_anchor *an, const uint8_t key[32], uint8_t sig[32]);
/* Constant-time check of a stored signature. */
bool audit_anchor_valid(const struct audit_anchor *an, const uint8_t key[32],
    const uint8_t sig[32]);

/* Verification checkpoints (audit_checkpoints): a position of the chain a
 * verification reached clean — the event seq and its hash — with where that
 * verification began, how many events it replayed, when and by whom. Signed
 * with the anchor keys (another label, so neither signature stands for the
 * other) and signed again by opsctl data-key rotate; incremental
 * verification starts after the newest one. */
#define AUDIT_VERIFIED_BY_MAX 190
struct audit_checkpoint {
	int64_t seq;      /* the last event verified (the chain head then) */
	int64_t from_seq; /* the first seq that verification replayed */
	uint64_t events;  /* events it replayed */
	uint8_t hash[32]; /* the hash of event seq */
	char verified_at[24];
	char verified_by[AUDIT_VERIFIED_BY_MAX + 1];
};
void audit_checkpoint_sign(const struct audit_checkpoint *cp, const uint8_t key[32],
    uint8_t sig[32]);
bool audit_checkpoint_valid(const struct audit_checkpoint *cp, const uint8_t key[32],
    const uint8_t sig[32]);

/* ---- the actions ------------------------------------------------------- */

/* Every action opsd writes, declared once: the name stored and shown, and
 * whether opsd_audit_events_total{action} counts it (runbook 6 alerts on
 * legal, compliance, security, migration and retention events; the label
 * set stays bounded and fixed). A new action is one line here and one in
 * audit_actions[]. */
enum audit_action {
	AA_NONE = -1, /* "no event" where a step may or may not write one */
	AA_LEGAL_UPDATED,
	AA_LEGAL_ACCEPTED,
	AA_COMPLIANCE_PII_STRIPPED,
	AA_COMPLIANCE_LEGAL_HOLD_SET,
	AA_COMPLIANCE_LEGAL_HOLD_RELEASED,
	AA_COMPLIANCE_ARCHIVED,
	AA_COMPLIANCE_EXPORTED,
	AA_COMPLIANCE_SUBJECTS_SEARCHED,
	AA_SECURITY_SESSIONS_FLUSHED,
	AA_SECURITY_RATE_LIMITED,
	AA_SECURITY_BLOCKLIST_ADDED,
	AA_SECURITY_BLOCKLIST_REMOVED,
	AA_SECURITY_TOKENS_REVOKED,
	AA_SECURITY_SESSION_SECRET_ROTATED,
	AA_SECURITY_DATA_KEY_ROTATED,
	AA_SECURITY_RATE_LIMITS_CHANGED,
	AA_AUTH_LOGIN_SUCCEEDED,
	AA_AUTH_LOGIN_FAILED,
	AA_AUTH_LOGIN_THROTTLED,
	AA_AUTH_LOGOUT,
	AA_AUTH_PASSWORD_CHANGED,
	AA_AUTH_TOKEN_CREATED,
	AA_AUTH_TOKEN_REVOKED,
	AA_MIGRATION_STARTED,
	AA_MIGRATION_LEGAL_HOLD_OVERRIDE,
	AA_MIGRATION_PROGRESS,
	AA_MIGRATION_READY_FOR_CUTOVER,
	AA_MIGRATION_DRY_RUN_COMPLETED,
	AA_MIGRATION_FINALIZE_REQUESTED,
	AA_MIGRATION_FINALIZE_REHEARSED,
	AA_MIGRATION_CUTOVER_REFUSED,
	AA_MIGRATION_FINALIZED,
	AA_MIGRATION_ABORT_REQUESTED,
	AA_MIGRATION_ABORTED,
	AA_MIGRATION_FAILED,
	AA_AUDIT_PURGED,
	AA_AUDIT_VERIFIED,
	AA_USER_CREATED,
	AA_USER_UPDATED,
	AA_USER_DISABLED,
	AA_USER_ENABLED,
	AA_USER_DELETED,
	AA_ORG_CREATED,
	AA_ORG_DEDICATED_TARGET_CHANGED,
	AA_TENANT_CREATED,
	AA_TENANT_UPDATED,
	AA_TENANT_DELETED,
	AA_EMAIL_SENT,
	AA_EMAIL_FAILED,
	AA_EMAIL_SUPPRESSED,
	AA_EMAIL_RETRY_REQUESTED,
	AA_EMAIL_TEST_REQUESTED,
	AA__MAX
};
struct audit_action_info {
	const char *name; /* "legal.updated" */
	bool counted;     /* a label of opsd_audit_events_total */
};
extern const struct audit_action_info audit_actions[AA__MAX];

/* ---- database part (audit.c) ------------------------------------------- */

struct audit_actor {
	const char *user_id; /* NULL for the CLI, the system or anonymous */
	const char *label;
	const char *ip;
	const char *request_id;
};

/* Appends one event. Must run inside a transaction (db_tx): it locks the
 * chain head, so events of one transaction commit with the change they
 * describe, and the chain stays linear across workers and hosts. It also
 * adds one to the action's row of audit_action_counts (what
 * opsd_audit_events_total shows). payload is redacted and released. 0 or
 * -1. */
int audit_append(struct db *d, const struct audit_actor *actor, enum audit_action action,
    const char *org_id, const char *target_type, const char *target_id,
    struct json_object *payload);
/* The same in its own transaction (for events with no other change, such
 * as a failed login). payload is released here too. */
int audit_append_tx(struct db *d, const struct audit_actor *actor, enum audit_action action,
    const char *org_id, const char *target_type, const char *target_id,
    struct json_object *payload);

/* Events written so far by action (audit_action_counts: every writer, every
 * host), indexed like audit_actions[]; 0 for an action never written. 0 or
 * -1 when the database cannot be read. */
int audit_action_counts(struct db *d, uint64_t counts[AA__MAX]);

/* ---- verification (audit_verify.c) ------------------------------------ */

/* Where a verification stands: the chain up to next_seq - 1 verified, that
 * event's hash, and what the run did so far. A cursor of GET /audit/verify
 * carries it. */
struct audit_verify_pos {
	int64_t from_seq; /* the first seq the run replays */
	int64_t next_seq;
	uint64_t checked; /* events replayed so far by the run */
	uint8_t prev[32];
	bool full; /* from the first event (checkpoint rows are checked at its end) */
	int64_t checkpoints_after; /* at the end of a full run: checkpoint rows up to this seq
	                              checked */
};

struct audit_verify_result {
	bool ok;
	uint64_t checked;
	char first_broken_id[40]; /* when !ok; "" when the chain was cut at its end */
	int64_t first_broken_seq;
	const char *reason;       /* when !ok: "hash mismatch", "events missing",
	                           * "anchor signature mismatch", "anchor signed with another key",
	                           * "anchor cannot be checked: OPSD_DATA_KEY is unset",
	                           * "events missing at the end", "checkpoint signature mismatch",
	                           * "checkpoint signed with another key",
	                           * "checkpoint cannot be checked: OPSD_DATA_KEY is unset",
	                           * "checkpoint does not match the chain" or "checkpoint missing" */
	int64_t from_seq, to_seq; /* the run's first seq, the last one reached */
	bool more;                /* stopped at a bound: pos continues the run */
	struct audit_verify_pos pos;
	bool from_checkpoint; /* the run began after checkpoint */
	struct audit_checkpoint checkpoint;
	uint64_t checkpoints; /* checkpoint rows checked (a full run, at its end) */
};

struct audit_verify_opts {
	const struct audit_keys *keys; /* NULL or none: anchors and checkpoints are breaks */
	bool from_checkpoint;          /* after the newest checkpoint (none: from the start) */
	const struct audit_verify_pos *resume; /* continue a run (from a cursor) */
	uint64_t max_events;                   /* stop after about this many (0: no bound) */
	int64_t deadline_ms;                   /* stop at this now_ms() (0: none) */
};
/* Replays the chain in keyset pages of one snapshot, stepping over retention
 * anchors (each verified under the key of keys its key_id names) and
 * checking that each audit.verified event's checkpoint is stored. A full
 * run that reaches the head also checks every checkpoint row: its signature
 * and that it names an event (or anchor end) with its hash. Incremental
 * runs first check the newest checkpoint and refuse one that does not
 * verify. 0 (result filled) or -1 (db error). */
int audit_verify_run(struct db *d, const struct audit_verify_opts *o,
    struct audit_verify_result *res);
/* The whole chain, unbounded: audit_verify_run from the first event. */
int audit_verify(struct db *d, const struct audit_keys *keys, struct audit_verify_result *res);
/* After a clean run that reached the head: stores a checkpoint there signed
 * under keys' current key, with audit.verified in the same transaction. 1
 * recorded (out filled), 0 nothing to record (no key, an empty chain, or a
 * checkpoint at or past it), -1 on a database error. */
int audit_checkpoint_record(struct db *d, const struct audit_actor *actor,
    const struct audit_keys *keys, const struct audit_verify_result *res,
    struct audit_checkpoint *out);
/* The keys that MAC cursors: the audit keys of OPSD_DATA_KEY's ring, or
 * without a data key one derived from SESSION_SECRET (always set; shared
 * by the workers of a host, and by hosts that share it). */
void audit_verify_cursor_keys(const struct opsd_config *cfg, struct audit_keys *out);
/* The position as an opaque cursor (base64url, MAC'd under keys' current key
 * so it cannot be edited, with the time it was issued) and back: NULL, or
 * why it is refused (not one of ours, or older than AUDIT_VERIFY_CURSOR_TTL_S
 * at now_s). */
#define AUDIT_VERIFY_CURSOR_MAX 160
#define AUDIT_VERIFY_CURSOR_TTL_S 3600
void audit_verify_cursor(const struct audit_keys *keys, int64_t now_s,
    const struct audit_verify_pos *pos, char out[AUDIT_VERIFY_CURSOR_MAX]);
const char *audit_verify_cursor_parse(const struct audit_keys *keys, int64_t now_s, const char *s,
    struct audit_verify_pos *pos);

/* ---- retention (audit_purge.c) ----------------------------------------- */

struct audit_purge_result {
	char cutoff[40];    /* RFC 3339 */
	uint64_t expired;   /* events older than the cutoff that were looked at */
	uint64_t deleted;   /* deleted (dry run: would be) */
	uint64_t kept_held; /* expired but about a subject under legal hold */
	uint64_t anchors;   /* anchors written (merged runs count once) */
	bool more;          /* stopped at max_events with expired events left */
	int64_t refused_at; /* >0: stopped because the event with this seq does
	                     * not verify; retention never deletes evidence */
};
/* Deletes events older than cutoff_ms in batches of one transaction each,
 * keeping every event about a held subject (actor, org, target or any id
 * in the payload: legal_hold_collect) and leaving an anchor signed under
 * keys' current key over each run it removes (merged with neighbours that
 * verify under the key they name). Stops after max_events expired events (0: no limit). A
 * dry run changes nothing and needs no key. Appends `audit.purged` when it
 * deleted anything. 0 or -1. */
int audit_purge(struct db *d, const struct opsd_config *cfg, const struct audit_actor *actor,
    const struct audit_keys *keys, int64_t cutoff_ms, bool dry_run, uint64_t max_events,
    struct audit_purge_result *res);
/* The jobs-process entry: OPSD_AUDIT_RETENTION_DAYS, a bounded amount of
 * work per call. */
int audit_retention_job(struct db *d, const struct opsd_config *cfg);

#endif
