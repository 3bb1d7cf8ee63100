/* The API's error vocabulary (http/reply.c) and the answer tables of the
 * domain error enums (api/errors.c): every code has a status, every domain
 * value an answer with a message, field errors name their field. A value
 * added to an enum without its table entry fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "api/errors.h"

static void check_table(const struct err_info *t, size_t n, size_t ok_index)
{
	for (size_t i = 0; i < n; i++) {
		assert_non_null(t[i].message);
		assert_true(strlen(t[i].message) > 1);
		assert_true((unsigned)t[i].error < E__MAX);
		if (t[i].error == E_VALIDATION_FAILED)
			assert_non_null(t[i].field);
		/* no value but OK reuses the OK placeholder */
		if (i != ok_index)
			assert_true(t[i].error != E_INTERNAL || strcmp(t[i].message, "ok") != 0);
	}
}

static void test_api_errors(void **state)
{
	(void)state;
	for (int i = 0; i < E__MAX; i++) {
		assert_non_null(api_errors[i].code);
		assert_true(api_errors[i].status >= 400 && api_errors[i].status <= 599);
		for (int j = 0; j < i; j++)
			if (i != E_DB_ERROR && j != E_DB_ERROR)
				assert_string_not_equal(api_errors[i].code, api_errors[j].code);
	}
	assert_string_equal(api_errors[E_NOT_FOUND].code, "not_found");
	assert_int_equal(api_errors[E_ORG_MIGRATING].status, 503);
	assert_string_equal(api_errors[E_ORG_MIGRATING].retry_after, "2");
	assert_string_equal(api_errors[E_UNAVAILABLE].retry_after, "5");
}

static void test_domain_tables(void **state)
{
	(void)state;
	check_table(user_errors, USER__MAX, USER_OK);
	check_table(blocklist_errors, BL__MAX, BL_OK);
	check_table(legal_errors, LEGAL__MAX, LEGAL_OK);
	check_table(mail_errors, MAIL__MAX, MAIL_OK);
	check_table(mig_errors, MIG_E__MAX, MIG_OK);
	check_table(tenant_errors, TENANT__MAX, TENANT_OK);
	check_table(batch_errors, BATCH__MAX, BATCH_OK);
	/* database failures are answered by reply_db_error, everywhere */
	assert_int_equal(user_errors[USER_DB_ERROR].error, E_DB_ERROR);
	assert_int_equal(mig_errors[MIG_E_DB].error, E_DB_ERROR);
	assert_int_equal(tenant_errors[TENANT_DB_ERROR].error, E_DB_ERROR);
	assert_int_equal(batch_errors[BATCH_DB_ERROR].error, E_DB_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_api_errors),
	    cmocka_unit_test(test_domain_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
