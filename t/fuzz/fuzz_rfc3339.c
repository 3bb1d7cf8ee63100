/* RFC 3339 times as clients send them (olderThan, since, until, a legal
 * document's effective time): parse_rfc3339 on any text, and what opsd
 * derives from an accepted time: format_rfc3339 (parsed again, the same
 * instant) and db_time_from_ms, the DATETIME(3) parameter (the same
 * calendar fields). The first 8 bytes, as a number of milliseconds, also go
 * through both formatters. */
#include "fuzz.h"

#include "infra/dbval.h"
#include "lib/util.h"

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: what four digits of
 * year can say. */
#define MS_MIN (-62167219200000LL)
#define MS_MAX 253402300799999LL

static void check_formats(int64_t ms)
{
	char out[32], db[DB_TIME_LEN + 1];
	int64_t back;

	format_rfc3339(ms, out);
	if (ms < MS_MIN || ms > MS_MAX)
		return;
	if (!parse_rfc3339(out, &back) || back != ms)
		abort();
	/* "2026-11-24T10:27:55.123Z" and "2026-11-24 10:27:55.123": one instant */
	db_time_from_ms(ms, db);
	if (strlen(db) != DB_TIME_LEN || memcmp(db, out, 10) != 0 || db[10] != ' ' ||
	    memcmp(db + 11, out + 11, 12) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	int64_t ms;

	if (parse_rfc3339(s, &ms)) {
		/* an accepted time, offset applied, is one a DATETIME can hold */
		if (ms < MS_MIN || ms > MS_MAX)
			abort();
		check_formats(ms);
	}
	if (size >= 8) {
		uint64_t u = 0;

		for (int i = 0; i < 8; i++)
			u = u << 8 | data[i];
		/* any number: no overflow, nothing past out[32] */
		check_formats((int64_t)u);
		/* and a real instant, where the round trip must hold */
		check_formats((int64_t)(u % (uint64_t)(MS_MAX - MS_MIN + 1)) + MS_MIN);
	}
	free(s);
	return 0;
}
