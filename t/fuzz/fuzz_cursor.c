/* Page cursors a client hands back: GET /audit/verify's MAC'd position
 * (checked under a fixed test key ring), GET /audit's keyset cursor and the
 * subject search's. Byte 0 chooses: odd, the rest is a cursor text for every
 * parser (a forged or edited one must be refused); even, the rest is a
 * position and the times it is issued and read at, made into a cursor with
 * the current key and read back: accepted exactly when it is fresh and
 * sound, then the same position. */
#include "fuzz.h"

#include "core/audit.h"
#include "core/audit_query.h"
#include "core/subjects.h"

static struct audit_keys keys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	keys.n = 2;
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < 32; i++)
			keys.key[k][i] = (uint8_t)(i * 7 + k + 1);
		snprintf(keys.id[k], sizeof(keys.id[k]), "test%d", k);
	}
	return 0;
}

static uint64_t take_u64(const uint8_t **p, size_t *n)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++) {
		v = v << 8 | (*n ? **p : 0);
		if (*n) {
			(*p)++;
			(*n)--;
		}
	}
	return v;
}

static void parse_text(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	struct audit_verify_pos pos;
	struct subject_pos sp;
	char again[200];
	int64_t seq;

	(void)audit_verify_cursor_parse(&keys, 1800000000, s, &pos);
	if (audit_cursor_parse(s, &seq) && seq <= 0)
		abort();
	/* the text is not canonical ("c..users..<id>" reads like "c.users.<id>"),
	 * the position is: formatted and read again, the same */
	if (subject_pos_parse(s, &sp)) {
		struct subject_pos sp2;

		subject_pos_format(&sp, again, sizeof(again));
		if (!subject_pos_parse(again, &sp2) || memcmp(&sp, &sp2, sizeof(sp)) != 0)
			abort();
	}
	free(s);
}

static void round_trip(const uint8_t *p, size_t n)
{
	struct audit_verify_pos pos, back;
	char cur[AUDIT_VERIFY_CURSOR_MAX];
	int64_t issued, now;
	const char *why;
	bool fresh, sound;

	memset(&pos, 0, sizeof(pos));
	pos.from_seq = (int64_t)take_u64(&p, &n);
	pos.next_seq = (int64_t)take_u64(&p, &n);
	pos.checked = take_u64(&p, &n);
	pos.checkpoints_after = (int64_t)take_u64(&p, &n);
	pos.full = n && (*p & 1);
	for (size_t i = 0; i < sizeof(pos.prev) && n; i++, n--)
		pos.prev[i] = *p++;
	issued = (int64_t)(take_u64(&p, &n) % 4000000000u);
	now = issued + (int64_t)(take_u64(&p, &n) % 10000) - 5000;
	audit_verify_cursor(&keys, issued, &pos, cur);
	if (strlen(cur) >= AUDIT_VERIFY_CURSOR_MAX)
		abort();
	why = audit_verify_cursor_parse(&keys, now, cur, &back);
	sound = pos.from_seq >= 1 && pos.next_seq >= pos.from_seq && pos.checkpoints_after >= 0;
	/* an hour's life, and a clock up to 5 minutes behind the issuer's */
	fresh = now - issued <= AUDIT_VERIFY_CURSOR_TTL_S && issued - now <= 300;
	if ((why == NULL) != (sound && fresh))
		abort();
	if (!why && (back.from_seq != pos.from_seq || back.next_seq != pos.next_seq ||
	                back.checked != pos.checked || back.full != pos.full ||
	                back.checkpoints_after != pos.checkpoints_after ||
	                memcmp(back.prev, pos.prev, sizeof(pos.prev)) != 0))
		abort();
	/* one character changed (but the last, whose low bits may be padding):
	 * not ours */
	if (n && strlen(cur) > 1) {
		size_t at = *p % (strlen(cur) - 1);

		cur[at] = cur[at] == 'A' ? 'B' : 'A';
		if (!audit_verify_cursor_parse(&keys, now, cur, &back))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		parse_text(data + 1, size - 1);
	else
		round_trip(data + 1, size - 1);
	return 0;
}
