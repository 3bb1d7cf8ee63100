#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "lib/buf.h"
#include "lib/csv.h"

static void test_field(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	csv_field(&b, "plain");
	buf_putc(&b, '|');
	csv_field(&b, "a,b");
	buf_putc(&b, '|');
	csv_field(&b, "say \"hi\"");
	buf_putc(&b, '|');
	csv_field(&b, "two\r\nlines");
	buf_putc(&b, '|');
	csv_field(&b, "lf\nonly");
	buf_putc(&b, '|');
	csv_field(&b, NULL);
	buf_putc(&b, '|');
	csv_field(&b, "");
	assert_string_equal(buf_cstr(&b),
	    "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\r\nlines\"|\"lf\nonly\"||");
	buf_free(&b);
}

static void test_rows(void **state)
{
	static const char *const names[] = {"id", "a,b", "payload"};
	struct json_object *rec = json_tokener_parse(
	    "{\"id\":\"x\",\"n\":3,\"none\":null,\"payload\":{\"k\":\"v, \\\"q\\\"\",\"l\":[1,2]}}");
	struct buf b;

	(void)state;
	buf_init(&b);
	csv_names(&b, names, 3);
	csv_header(&b, rec);
	csv_row(&b, rec);
	assert_string_equal(buf_cstr(&b),
	    "id,\"a,b\",payload\r\n"
	    "id,n,none,payload\r\n"
	    "x,3,,\"{\"\"k\"\":\"\"v, \\\"\"q\\\"\"\"\",\"\"l\"\":[1,2]}\"\r\n");
	json_object_put(rec);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_field),
	    cmocka_unit_test(test_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
