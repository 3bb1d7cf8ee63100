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

void api_email_test(struct req *r)
{
	struct audit_actor a;
	struct json_object *o;
	char id[UUID_STR_LEN + 1], origin[160];
	enum mail_status status;
	enum mail_err e;

	if (!req_validate_or_reply(r, email_test_spec))
		return;
	req_actor(r, &a);
	snprintf(origin, sizeof(origin), "Request id: %s", r->request_id ? r->request_id : "");
	e = mail_send_test(r->db, r->cfg, &a, json_get_str(r->json, "to", ""), origin, id, &status);
	if (e != MAIL_OK) {
		reply_err(r, &mail_errors[e], NULL);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "status", json_object_new_string(mail_status_name(status)));
	json_object_object_add(o, "to", json_object_new_string(json_get_str(r->json, "to", "")));
	reply_json(r, 202, o);
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
	reply_id_list(r, "outbox", MAIL_OUTBOX_LIST_SQL, p, 2, mail_outbox_json);
}

void api_email_retry(struct req *r)
{
	struct audit_actor a;
	struct opsd_uuid id;
	struct db_rows rows;
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
	if (mail_outbox_get(r->db, r->arena, &id, &rows) != 0 || rows.nrows != 1) {
		reply_db_error(r);
		return;
	}
	reply_json(r, 200, mail_outbox_json(&rows, 0));
}

/* Runbook 5 steps 1-3: what the outbox delivers with, test mode and the
 * allowlist, from this worker's configuration (never the password). */
void api_email_settings(struct req *r)
{
	reply_json(r, 200, mail_settings_json(r->cfg));
}
