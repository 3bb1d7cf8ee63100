/* opsctl data-key rotate (README "Runbook 7", rotating the data key):
 * everything sealed or signed under OPSD_DATA_KEY_PREVIOUS again under
 * OPSD_DATA_KEY (core/rekey.c). */
#include <stdio.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "core/rekey.h"
#include "infra/db.h"

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

int cmd_data_key_rotate(struct opsctl *o)
{
	struct rekey_result res;
	enum rekey_rc rc = data_key_rotate(o->db, &o->cfg, &o->actor, &res);

	if (rc == REKEY_NO_KEY) {
		fprintf(stderr, "opsctl: OPSD_DATA_KEY is unset: there is no key to rotate to\n");
		return EXIT_USAGE;
	}
	if (rc != REKEY_OK) {
		fprintf(stderr,
		    "opsctl: data-key rotate failed: %s (run it again: it goes on "
		    "where it stopped)\n",
		    db_error(o->db));
		return EXIT_FAILED;
	}
	printf("current key %s; previous key%s:", res.key, plural(res.nprevious));
	for (size_t i = 0; i < res.nprevious; i++)
		printf(" %s", res.previous[i]);
	printf("%s\n", res.nprevious ? "" : " none");
	printf("sealed again: %llu dedicated target%s, %llu migration target%s; signed again: "
	       "%llu audit anchor%s; already under the current key: %llu\n",
	    (unsigned long long)res.org_targets, plural(res.org_targets),
	    (unsigned long long)res.migration_targets, plural(res.migration_targets),
	    (unsigned long long)res.anchors, plural(res.anchors), (unsigned long long)res.current);
	if (res.checkpoints)
		printf("signed again: %llu audit verification checkpoint%s\n",
		    (unsigned long long)res.checkpoints, plural(res.checkpoints));
	if (res.unopenable)
		printf("left as they are: %llu sealed target%s that no key of the ring opens\n",
		    (unsigned long long)res.unopenable, plural(res.unopenable));
	if (res.unverifiable)
		printf(
		    "left as they are: %llu audit anchor%s that no key of the ring verifies (see "
		    "opsctl audit verify)\n",
		    (unsigned long long)res.unverifiable, plural(res.unverifiable));
	if (res.unopenable || res.unverifiable)
		return EXIT_FAILED;
	printf("OPSD_DATA_KEY_PREVIOUS can now be emptied (then SIGHUP)\n");
	return EXIT_OK;
}
