/* opsctl audit verify and audit purge: the hash chain of the audit events
 * and their retention (README, "Audit retention"). */
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "core/audit.h"
#include "core/authz.h"
#include "infra/db.h"
#include "lib/util.h"

static int verify_broken(const struct audit_verify_result *res)
{
	if (!res->first_broken_id[0])
		printf("broken: %s (from seq %lld)\n", res->reason,
		    (long long)res->first_broken_seq);
	else {
		printf("broken: first bad event %s (seq %lld)\n", res->first_broken_id,
		    (long long)res->first_broken_seq);
		printf("reason: %s\n", res->reason);
	}
	printf("%llu events before it verified\n", (unsigned long long)res->checked);
	return EXIT_FAILED;
}

/* The range replayed, on a line of its own after "ok: N events checked". */
static void verify_range(const struct audit_verify_result *res, bool full)
{
	if (res->to_seq < res->from_seq)
		printf("range: none (nothing appended since the checkpoint at seq %lld)\n",
		    (long long)res->checkpoint.seq);
	else
		printf("range: seq %lld..%lld\n", (long long)res->from_seq, (long long)res->to_seq);
	if (full)
		printf("the whole chain; %llu checkpoints checked\n",
		    (unsigned long long)res->checkpoints);
	else if (res->from_checkpoint)
		printf("since the checkpoint at seq %lld (verified %s by %s)\n",
		    (long long)res->checkpoint.seq, res->checkpoint.verified_at,
		    res->checkpoint.verified_by);
	else
		printf("the whole chain (no checkpoint yet)\n");
}

/* Without --full: from the newest checkpoint, which must verify, to the
 * head, then a new checkpoint there (audit.verified). --full: the whole
 * chain and every checkpoint, streamed in pages; it records nothing. */
int cmd_audit_verify(struct opsctl *o)
{
	struct audit_verify_result res;
	struct audit_checkpoint cp;
	struct audit_keys keys;
	bool full = opt_flag(o, "--full");
	struct audit_verify_opts vo = {.keys = &keys, .from_checkpoint = !full};
	bool have_key = audit_anchor_keys(&o->cfg, &keys);
	int rc, recorded = 0;

	rc = audit_verify_run(o->db, &vo, &res);
	if (rc == 0 && res.ok && !full &&
	    (recorded = audit_checkpoint_record(o->db, &o->actor, &keys, &res, &cp)) < 0)
		rc = -1;
	audit_keys_wipe(&keys);
	if (rc != 0) {
		fprintf(stderr, "opsctl: verify failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	if (!res.ok)
		return verify_broken(&res);
	printf("ok: %llu events checked\n", (unsigned long long)res.checked);
	verify_range(&res, full);
	if (recorded > 0)
		printf("checkpoint recorded at seq %lld\n", (long long)cp.seq);
	else if (!full && !have_key)
		printf("no checkpoint recorded: OPSD_DATA_KEY is unset\n");
	return EXIT_OK;
}

/* Retention by hand: what the job does, to the end of the backlog, or
 * only a report with --dry-run. --days overrides OPSD_AUDIT_RETENTION_DAYS
 * for this run (0: everything before now), e.g. after a shorter retention
 * was agreed; held subjects are kept whatever it says. */
int cmd_audit_purge(struct opsctl *o)
{
	struct audit_purge_result res;
	const char *days_s = opt_value(o, "--days");
	bool dry = opt_flag(o, "--dry-run");
	long long days = o->cfg.audit_retention_days;
	struct audit_keys keys;
	bool have_key = audit_anchor_keys(&o->cfg, &keys);
	int rc;

	if (days_s && !parse_ll_range(days_s, 0, 36500, &days)) {
		fprintf(stderr, "opsctl: --days must be a whole number of days (0..36500)\n");
		return EXIT_USAGE;
	}
	/* The configured retention is what the jobs process applies anyway; a
	 * shorter one erases evidence sooner, which only a principal holding every
	 * permission may decide (not the security admin whose actions the log
	 * records). A dry run deletes nothing. */
	if (!dry && days < o->cfg.audit_retention_days &&
	    o->perms != role_perms(1u << ROLE_SUPERADMIN)) {
		fprintf(stderr,
		    "opsctl: %s may purge only past OPSD_AUDIT_RETENTION_DAYS (%d); a shorter "
		    "--days needs superadmin\n",
		    o->label, o->cfg.audit_retention_days);
		audit_keys_wipe(&keys);
		return EXIT_DENIED;
	}
	if (!dry && !have_key) {
		fprintf(stderr, "opsctl: OPSD_DATA_KEY is unset: anchors cannot be signed, nothing "
		                "deleted\n");
		return EXIT_FAILED;
	}
	rc = audit_purge(o->db, &o->cfg, &o->actor, &keys, now_ms() - days * 86400000LL, dry, 0,
	    &res);
	audit_keys_wipe(&keys);
	if (rc != 0) {
		fprintf(stderr, "opsctl: purge failed: %s\n", db_error(o->db));
		return EXIT_FAILED;
	}
	printf("%s %llu events older than %s (%lld days); %llu kept under legal hold; %llu anchors"
	       "%s\n",
	    dry ? "would delete" : "deleted", (unsigned long long)res.deleted, res.cutoff, days,
	    (unsigned long long)res.kept_held, (unsigned long long)res.anchors,
	    dry ? " (dry run: nothing changed)" : "");
	if (res.refused_at) {
		printf("stopped: audit event seq %lld does not verify; retention never deletes it "
		       "(see opsctl audit verify)\n",
		    (long long)res.refused_at);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}
