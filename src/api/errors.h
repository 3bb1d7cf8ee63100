/* How the API (and opsctl) answer each refusal of the core: one table per
 * domain error enum, read by reply_err (http/http.h). A new refusal is one
 * line in its table. */
#ifndef OPSD_ERRORS_H
#define OPSD_ERRORS_H

#include "core/batch.h"
#include "core/blocklist.h"
#include "core/legal.h"
#include "core/mail.h"
#include "core/tenant_db.h"
#include "core/users.h"
#include "http/http.h"
#include "migration/migration.h"

extern const struct err_info user_errors[USER__MAX];
extern const struct err_info blocklist_errors[BL__MAX];
extern const struct err_info legal_errors[LEGAL__MAX];
extern const struct err_info legal_report_errors[LEGAL_REPORT__MAX];
extern const struct err_info mail_errors[MAIL__MAX];
extern const struct err_info mig_errors[MIG_E__MAX];
extern const struct err_info batch_errors[BATCH__MAX];
/* Routing and writes of tenant records; TENANT_REFUSED depends on the
 * write (its handler answers it). */
extern const struct err_info tenant_errors[TENANT__MAX];

#endif
