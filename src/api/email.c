/* Email for operators (runbook 5): a test message through the outbox, the
 * outbox itself, and retrying a failed message. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "api/api.h"
#include "api/errors.h"
#include "api/specs.h"
#include "core/audit.h"
#include "core/mail.h"
#include "infra/db.h"
#include "infra/dbval.h"
#include "lib/json.h"

const struct field_spec email_test_spec[] = {
    {"to", FT_STRING, FIELD_REQUIRED, 3, 254, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

struct test_tx {
	struct req *r;
	char id[UUID_STR_LEN + 1];
	enum mail_status status;
	enum mail_err err;
};

static int test_fn(struct db *d, void *arg)
{
	struct test_tx *x = arg;
	struct req *r = x->r;
	struct audit_actor a;
	char body[512];

	req_actor(r, &a);
	snprintf(body, sizeof(body),
	    "This is a test message from opsd.\n\nRequest id: %s\nIf you did not expect it, "
	    "you can ignore it.\n",
	    r->request_id);
	x->err = mail_enqueue(d, r->cfg, &a, "test", json_get_str(r->json, "to", ""),
	    "opsd test message", body, x->id, &x->status);
	return x->err == MAIL_OK ? 0 : x->err == MAIL_DB_ERROR ? -1 : 1;
}

void api_email_test(struct req *r)
{
	struct test_tx x = {.r = r};
	struct json_object *o;
	int rc;

	if (!req_validate_or_reply(r, email_test_spec))
		return;
	rc = db_tx(r->db, test_fn, &x);
	if (x.err != MAIL_OK || rc != 0) {
		reply_err(r, &mail_errors[x.err != MAIL_OK ? x.err : MAIL_DB_ERROR], NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(x.id));
	json_object_object_add(o, "status", json_object_new_string(mail_status_name(x.status)));
	json_object_object_add(o, "to", json_object_new_string(json_get_str(r->json, "to", "")));
	reply_json(r, 202, o);
}

#define OUTBOX_COLUMNS                                                                             \
	"id, kind, to_addr, subject, status, attempts, next_attempt_at,"                           \
	" last_smtp_status, last_error, created_at, sent_at"

static struct json_object *outbox_row_json(const struct db_rows *rows, size_t i)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", dbv_json_uuid(rows, i, 0));
	json_object_object_add(o, "kind", dbv_json_str(rows, i, 1));
	json_object_object_add(o, "to", dbv_json_str(rows, i, 2));
	json_object_object_add(o, "subject", dbv_json_str(rows, i, 3));
	json_object_object_add(o, "status", dbv_json_str(rows, i, 4));
	json_object_object_add(o, "attempts", dbv_json_int(rows, i, 5));
	json_object_object_add(o, "nextAttemptAt", dbv_json_time(rows, i, 6));
	json_object_object_add(o, "lastSmtpStatus", dbv_json_int(rows, i, 7));
	json_object_object_add(o, "lastError", dbv_json_str(rows, i, 8));
	json_object_object_add(o, "createdAt", dbv_json_time(rows, i, 9));
	json_object_object_add(o, "sentAt", dbv_json_time(rows, i, 10));
	return o;
}

const struct field_spec email_outbox_query[] = {
    {"status", FT_ENUM, 0, 0, 0, mail_status_names},
    PAGE_QUERY,
    {NULL, 0, 0, 0, 0, NULL},
};

void api_email_outbox(struct req *r)
{
	const char *status = req_query(r, "status");
	struct db_param p[2];

	if (status && mail_status_from_name(status) < 0) {
		reply_choice_error(r, "status", mail_status_names);
		return;
	}
	p[0] = DBP_I64(status != NULL);
	p[1] = DBP_STR(status ? status : "");
	reply_id_list(r, "outbox",
	    "SELECT " OUTBOX_COLUMNS " FROM email_outbox WHERE (? = 0 OR status = ?)"
	    " AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?",
	    p, 2, outbox_row_json);
}

void api_email_retry(struct req *r)
{
	struct audit_actor a;
	struct opsd_uuid id;
	struct db_rows rows;
	struct db_param p[1];
	enum mail_retry_rc rc;

	if (!uuid_param_or_reply(r, "id", &id))
		return;
	req_actor(r, &a);
	rc = mail_retry(r->db, r->arena, &a, &id, req_param(r, "id"));
	if (rc == MAIL_RETRY_DB_ERROR) {
		reply_db_error(r);
		return;
	}
	if (rc == MAIL_RETRY_NOT_FOUND) {
		reply_error(r, E_NOT_FOUND, "no such message", NULL);
		return;
	}
	if (rc == MAIL_RETRY_NOT_FAILED) {
		reply_error(r, E_CONFLICT, "only a failed message can be retried", NULL);
		return;
	}
	p[0] = DBP_BLOB(id.b, 16);
	if (db_query(r->db, r->arena, "SELECT " OUTBOX_COLUMNS " FROM email_outbox WHERE id = ?", p,
	        1, &rows) != 0 ||
	    rows.nrows != 1) {
		reply_db_error(r);
		return;
	}
	reply_json(r, 200, outbox_row_json(&rows, 0));
}
