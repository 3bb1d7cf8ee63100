/* The SQL text of compliance batches: bounded IN lists (core/id_set) and
 * the strip-PII SET list from the entity table (core/entity). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/entity.h"
#include "core/id_set.h"
#include "lib/util.h"

static void test_slots(void **state)
{
	(void)state;
	assert_int_equal(id_set_slots(0), 0);
	assert_int_equal(id_set_slots(1), 1);
	assert_int_equal(id_set_slots(2), 4);
	assert_int_equal(id_set_slots(4), 4);
	assert_int_equal(id_set_slots(5), 16);
	assert_int_equal(id_set_slots(257), ID_SET_MAX);
	assert_int_equal(id_set_slots(ID_SET_MAX), ID_SET_MAX);
	assert_int_equal(id_set_slots(ID_SET_MAX + 1), 0);
	/* never fewer slots than ids, and few distinct statement texts */
	for (size_t n = 1; n <= ID_SET_MAX; n++)
		assert_true(id_set_slots(n) >= n && id_set_slots(n) <= ID_SET_MAX);
}

static void test_sql(void **state)
{
	char buf[ID_SET_SQL_LEN(64)];

	(void)state;
	assert_int_equal(id_set_sql(buf, sizeof(buf), "SELECT id FROM t WHERE id IN ", 1, ""),
	    strlen("SELECT id FROM t WHERE id IN (?)"));
	assert_string_equal(buf, "SELECT id FROM t WHERE id IN (?)");
	assert_true(
	    id_set_sql(buf, sizeof(buf), "UPDATE t SET a = ? WHERE id IN ", 4, " FOR UPDATE") > 0);
	assert_string_equal(buf, "UPDATE t SET a = ? WHERE id IN (?, ?, ?, ?) FOR UPDATE");
	/* the largest statement fits the documented bound */
	assert_true(
	    id_set_sql(buf, sizeof(buf), "SELECT id FROM t WHERE id IN ", ID_SET_MAX, "") > 0);
	{
		size_t q = 0;

		for (const char *p = buf; *p; p++)
			q += *p == '?';
		assert_int_equal(q, ID_SET_MAX);
	}
	/* refused: no slots, too many, too small a buffer */
	assert_int_equal(id_set_sql(buf, sizeof(buf), "x ", 0, ""), 0);
	assert_int_equal(id_set_sql(buf, sizeof(buf), "x ", ID_SET_MAX + 1, ""), 0);
	assert_int_equal(id_set_sql(buf, 12, "SELECT 1 IN ", 4, ""), 0);
	assert_int_equal(id_set_sql(buf, 20, "x IN ", 4, " tail that does not fit"), 0);
}

static void test_find_and_firsts(void **state)
{
	uint8_t ids[6][16], sorted[6][16];
	size_t first[6];
	struct id_pos scratch[6];

	(void)state;
	memset(ids, 0, sizeof(ids));
	for (int i = 0; i < 6; i++)
		ids[i][15] = (uint8_t)(10 - i);
	ids[4][15] = 9; /* ids[4] repeats ids[1] */
	ids[5][15] = 9; /* and so does ids[5] */
	id_set_firsts((const uint8_t(*)[16])ids, 6, scratch, first);
	assert_int_equal(first[0], 0);
	assert_int_equal(first[1], 1);
	assert_int_equal(first[2], 2);
	assert_int_equal(first[3], 3);
	assert_int_equal(first[4], 1);
	assert_int_equal(first[5], 1);

	memcpy(sorted, ids, sizeof(ids));
	id_set_sort(sorted, 6);
	for (int i = 1; i < 6; i++)
		assert_true(memcmp(sorted[i - 1], sorted[i], 16) <= 0);
	assert_true(id_set_find((const uint8_t(*)[16])sorted, 6, ids[3]) >= 0);
	assert_memory_equal(sorted[id_set_find((const uint8_t(*)[16])sorted, 6, ids[0])], ids[0],
	    16);
	{
		uint8_t none[16] = {0};

		none[15] = 42;
		assert_int_equal(id_set_find((const uint8_t(*)[16])sorted, 6, none), -1);
		assert_int_equal(id_set_find((const uint8_t(*)[16])sorted, 0, none), -1);
	}
}

/* The SET list strip-PII runs is the entity table's: every PII column with
 * its redaction, no column it keeps. */
static void test_strip_set(void **state)
{
	char buf[768];

	(void)state;
	assert_true(entity_strip_set_sql(&entities[ENTITY_CONTACTS], buf, sizeof(buf)) > 0);
	assert_string_equal(buf,
	    "name = '[redacted]', email = CONCAT('redacted+', LEFT(SHA2(id, 256), 16),"
	    " '@redacted.invalid'), phone = NULL, address = NULL, notes = NULL");
	assert_true(entity_strip_set_sql(&entities[ENTITY_PROJECTS], buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "client_name = '[redacted]', description = NULL");
	for (size_t i = 0; i < ENTITY__MAX; i++) {
		const struct entity *e = &entities[i];

		assert_true(entity_strip_set_sql(e, buf, sizeof(buf)) > 0);
		for (size_t c = 0; c < e->ncols; c++) {
			char col[80];

			snprintf(col, sizeof(col), "%s = ", e->cols[c].column);
			if (e->cols[c].redact == RED_KEEP)
				assert_null(entity_redaction_sql(e->cols[c].redact));
			else
				assert_non_null(strstr(buf, col));
		}
	}
	assert_int_equal(entity_strip_set_sql(&entities[ENTITY_CONTACTS], buf, 20), 0);
	assert_null(entity_redaction_sql((enum redaction)99));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slots),
	    cmocka_unit_test(test_sql),
	    cmocka_unit_test(test_find_and_firsts),
	    cmocka_unit_test(test_strip_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
