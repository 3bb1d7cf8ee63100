/* Subject search's pure parts (README "Runbook 2", step 1): each term normalised as the
 * generated columns of the *_subject_search.sql files normalise the stored values, the LIKE
 * prefix with its escapes, the page cursor, and the refusals a request gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/subjects.h"
#include "infra/dbval.h"
#include "lib/encoding.h"

static const char *norm(enum subject_term t, const char *in)
{
	static char out[1024];

	return subject_normalize(t, in, out, sizeof(out)) ? NULL : out;
}

static void test_email(void **state)
{
	(void)state;
	assert_string_equal(norm(SUBJECT_EMAIL, "  Anna.Smith@Example.COM\t"),
	    "anna.smith@example.com");
	assert_string_equal(norm(SUBJECT_EMAIL, "redacted+0123456789abcdef@redacted.invalid"),
	    "redacted+0123456789abcdef@redacted.invalid");
	assert_null(norm(SUBJECT_EMAIL, "anna"));
	assert_null(norm(SUBJECT_EMAIL, "anna@"));
	assert_null(norm(SUBJECT_EMAIL, "@example.com"));
	assert_null(norm(SUBJECT_EMAIL, "an na@example.com"));
	assert_null(norm(SUBJECT_EMAIL, "a@b@example.com"));
	assert_null(norm(SUBJECT_EMAIL, "ánna@example.com"));
	assert_null(norm(SUBJECT_EMAIL, "   "));
	assert_string_equal(subject_normalize(SUBJECT_EMAIL, "x", (char[8]){0}, 8),
	    "must be an email address");
}

static void test_name(void **state)
{
	(void)state;
	assert_string_equal(norm(SUBJECT_NAME, "  Ánna \t\n  Smith  "), "Ánna Smith");
	assert_string_equal(norm(SUBJECT_NAME, "Ann"), "Ann");
	assert_string_equal(norm(SUBJECT_NAME, "Zoë"), "Zoë"); /* three characters, four bytes */
	assert_string_equal(norm(SUBJECT_NAME, "A B"), "A B");
	assert_null(norm(SUBJECT_NAME, "An"));
	assert_null(norm(SUBJECT_NAME, "  A  "));
	assert_null(norm(SUBJECT_NAME, "Ann\x01"));
	assert_null(norm(SUBJECT_NAME, "Ann\x7f"));
	assert_null(norm(SUBJECT_NAME, "Ann\xff"));
	char long_name[210];
	memset(long_name, 'a', 201);
	long_name[201] = '\0';
	assert_null(norm(SUBJECT_NAME, long_name));
	long_name[200] = '\0';
	assert_non_null(norm(SUBJECT_NAME, long_name));
	assert_string_equal(subject_normalize(SUBJECT_NAME, "ab", (char[8]){0}, 8),
	    "must have at least 3 characters besides spaces");
}

static void test_phone(void **state)
{
	(void)state;
	assert_string_equal(norm(SUBJECT_PHONE, "+1 (555) 010-2030"), "15550102030");
	assert_string_equal(norm(SUBJECT_PHONE, "020.7946/0000"), "02079460000");
	assert_null(norm(SUBJECT_PHONE, "12345"));
	assert_null(norm(SUBJECT_PHONE, "555-CALL-NOW"));
	assert_null(norm(SUBJECT_PHONE, "123456789012345678901"));
	assert_string_equal(norm(SUBJECT_PHONE, "12345678901234567890"), "12345678901234567890");
}

static void test_like(void **state)
{
	char out[64];

	(void)state;
	assert_true(subject_like_prefix("Ann", out, sizeof(out)));
	assert_string_equal(out, "Ann%");
	assert_true(subject_like_prefix("50%_off!", out, sizeof(out)));
	assert_string_equal(out, "50!%!_off!!%");
	assert_false(subject_like_prefix("abcdef", out, 6));
	assert_true(subject_like_prefix("abcd", out, 6));
	assert_string_equal(out, "abcd%");
}

static void test_pos(void **state)
{
	struct subject_pos p = {true, true, {0}, ENTITY_OFFICES, {0}}, q;
	char s[160];

	(void)state;
	for (int i = 0; i < 16; i++)
		p.org[i] = (uint8_t)i, p.id[i] = (uint8_t)(0xf0 + i);
	subject_pos_format(&p, s, sizeof(s));
	assert_string_equal(s,
	    "d.000102030405060708090a0b0c0d0e0f.offices.f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
	assert_true(subject_pos_parse(s, &q));
	assert_true(q.set && q.dedicated);
	assert_int_equal(q.entity, ENTITY_OFFICES);
	assert_memory_equal(q.org, p.org, 16);
	assert_memory_equal(q.id, p.id, 16);

	p.dedicated = false;
	p.entity = ENTITY_USERS;
	subject_pos_format(&p, s, sizeof(s));
	assert_string_equal(s, "c.users.f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
	assert_true(subject_pos_parse(s, &q));
	assert_false(q.dedicated);
	assert_int_equal(q.entity, ENTITY_USERS);

	/* users and orgs live in the control database only */
	assert_false(subject_pos_parse(
	    "d.000102030405060708090a0b0c0d0e0f.users.f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", &q));
	assert_false(subject_pos_parse("c.nothing.f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", &q));
	assert_false(subject_pos_parse("c.users.f0f1", &q));
	assert_false(subject_pos_parse("c.users.zzf1f2f3f4f5f6f7f8f9fafbfcfdfeff", &q));
	assert_false(subject_pos_parse("x.users.f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", &q));
	assert_false(subject_pos_parse("c.users.f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff.x", &q));
	assert_false(subject_pos_parse("", &q));
}

/* The hashes MariaDB's generated columns compute:
 * UNHEX(SHA2(LOWER(TRIM(' Foo@Example.com')), 256)) and
 * UNHEX(SHA2(REGEXP_REPLACE('+1 (555) 010-2030', '[^0-9]', ''), 256)). */
static void test_query(void **state)
{
	const char *v[SUBJECT__MAX] = {0}, *field;
	struct subject_query q;
	char hex[65], cur[256];

	(void)state;
	assert_string_equal(subject_query_init(&q, v, 0, NULL, &field),
	    "give at least one of email, name and phone");
	assert_null(field);

	v[SUBJECT_EMAIL] = " Foo@Example.com ";
	v[SUBJECT_PHONE] = "+1 (555) 010-2030";
	assert_null(subject_query_init(&q, v, 0, "", &field));
	assert_true(q.has[SUBJECT_EMAIL] && q.has[SUBJECT_PHONE] && !q.has[SUBJECT_NAME]);
	assert_int_equal(q.limit, SUBJECT_LIMIT_DEFAULT);
	assert_false(q.after.set);
	hex_encode(q.hash[SUBJECT_EMAIL], 32, hex);
	assert_string_equal(hex,
	    "321ba197033e81286fedb719d60d4ed5cecaed170733cb4a92013811afc0e3b6");
	hex_encode(q.hash[SUBJECT_PHONE], 32, hex);
	assert_string_equal(hex,
	    "adcfb0c30a77d7b8bf465c2d886be9d0c8037048e4149c65cb195d6418d76540");

	v[SUBJECT_NAME] = "bad";
	v[SUBJECT_PHONE] = "12";
	assert_non_null(subject_query_init(&q, v, 0, NULL, &field));
	assert_string_equal(field, "phone");
	v[SUBJECT_PHONE] = NULL;
	assert_null(subject_query_init(&q, v, 100, NULL, &field));
	assert_string_equal(q.like[SUBJECT_NAME], "bad%");
	assert_non_null(subject_query_init(&q, v, 101, NULL, &field));
	assert_string_equal(field, "limit");
	assert_non_null(subject_query_init(&q, v, -1, NULL, &field));
	assert_string_equal(field, "limit");

	assert_non_null(subject_query_init(&q, v, 10, "bm90IGEgY3Vyc29y", &field));
	assert_string_equal(field, "cursor");
	cursor_encode("audit", "c.users.f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", cur, sizeof(cur));
	assert_non_null(subject_query_init(&q, v, 10, cur, &field));
	assert_string_equal(field, "cursor");
	cursor_encode("subjects", "c.users.f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", cur, sizeof(cur));
	assert_null(subject_query_init(&q, v, 10, cur, &field));
	assert_true(q.after.set && !q.after.dedicated);
	assert_int_equal(q.after.entity, ENTITY_USERS);
}

/* Every column the entity table marks as a subject's names its generated
 * search column, and only personal data is searched. */
static void test_table(void **state)
{
	size_t searched = 0;

	(void)state;
	for (size_t i = 0; i < ENTITY__MAX; i++)
		for (size_t c = 0; c < entities[i].ncols; c++) {
			const struct entity_column *col = &entities[i].cols[c];

			if (col->subject == SUBJECT_NONE) {
				assert_null(col->search_column);
				continue;
			}
			searched++;
			assert_non_null(col->search_column);
			assert_int_not_equal(col->redact, RED_KEEP);
			assert_true(col->subject != SUBJECT_EMAIL || col->email);
		}
	assert_int_equal(searched, 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_email),
	    cmocka_unit_test(test_name),
	    cmocka_unit_test(test_phone),
	    cmocka_unit_test(test_like),
	    cmocka_unit_test(test_pos),
	    cmocka_unit_test(test_query),
	    cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
