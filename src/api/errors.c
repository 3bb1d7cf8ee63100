#include "api/errors.h"

const struct err_info user_errors[USER__MAX] = {
    [USER_OK] = {E_INTERNAL, NULL, "ok"},
    [USER_DUPLICATE] = {E_CONFLICT, NULL, "a user with this email already exists"},
    [USER_BAD_EMAIL] = {E_VALIDATION_FAILED, "email", "not a valid email address"},
    [USER_BAD_PASSWORD] = {E_VALIDATION_FAILED, "password", "passwords are 12 to 1024 bytes"},
    [USER_ORG_REQUIRED] = {E_VALIDATION_FAILED, "orgId", "org_admin and member need an orgId"},
    [USER_NO_SUCH_ORG] = {E_VALIDATION_FAILED, "orgId", "no such org"},
    [USER_NOT_FOUND] = {E_NOT_FOUND, NULL, "no such user"},
    [USER_LEGAL_HOLD] = {E_LEGAL_HOLD, NULL, "the user or its org is on legal hold"},
    [USER_NOT_GRANTABLE] = {E_FORBIDDEN, NULL, "this user holds roles you cannot grant"},
    [USER_SELF] = {E_FORBIDDEN, NULL,
        "you cannot change your own roles, disable or delete yourself"},
    [USER_ARCHIVED] = {E_CONFLICT, NULL, "a deleted or archived user cannot be enabled again"},
    [USER_DB_ERROR] = {E_DB_ERROR, NULL, "database error"},
    /* answered by reply_password_busy (its own Retry-After) */
    [USER_BUSY] = {E_UNAVAILABLE, NULL, "too many password checks in progress; retry shortly"},
};

const struct err_info blocklist_errors[BL__MAX] = {
    [BL_OK] = {E_INTERNAL, NULL, "ok"},
    [BL_DUPLICATE] = {E_CONFLICT, NULL, "this range is already blocked"},
    [BL_NOT_FOUND] = {E_NOT_FOUND, NULL, "no such blocklist entry"},
    [BL_DB_ERROR] = {E_DB_ERROR, NULL, "database error"},
};

const struct err_info legal_errors[LEGAL__MAX] = {
    [LEGAL_OK] = {E_INTERNAL, NULL, "ok"},
    [LEGAL_DUPLICATE] = {E_DUPLICATE_VERSION, NULL, "this version of this type already exists"},
    [LEGAL_DB_ERROR] = {E_DB_ERROR, NULL, "database error"},
};

const struct err_info legal_report_errors[LEGAL_REPORT__MAX] = {
    [LEGAL_REPORT_OK] = {E_INTERNAL, NULL, "ok"},
    [LEGAL_REPORT_NO_CURRENT] = {E_NOT_FOUND, NULL, "no current document of this type"},
    [LEGAL_REPORT_NO_VERSION] = {E_NOT_FOUND, NULL, "no such version"},
    [LEGAL_REPORT_DB_ERROR] = {E_DB_ERROR, NULL, "database error"},
};

const struct err_info mail_errors[MAIL__MAX] = {
    [MAIL_OK] = {E_INTERNAL, NULL, "ok"},
    [MAIL_BAD_ADDRESS] = {E_VALIDATION_FAILED, "to", "not a valid email address"},
    [MAIL_BAD_CONTENT] = {E_VALIDATION_FAILED, "to", "not a valid email address"},
    [MAIL_DB_ERROR] = {E_DB_ERROR, NULL, "database error"},
};

const struct err_info mig_errors[MIG_E__MAX] = {
    [MIG_OK] = {E_INTERNAL, NULL, "ok"},
    [MIG_E_DB] = {E_DB_ERROR, NULL, "the database is unavailable"},
    [MIG_E_NO_ORG] = {E_NOT_FOUND, NULL, "no such org"},
    [MIG_E_NO_MIGRATION] = {E_NOT_FOUND, NULL, "this org has no migration"},
    [MIG_E_DIRECTION] = {E_CONFLICT, "direction",
        "the org's database mode does not allow this direction"},
    [MIG_E_CHUNK] = {E_VALIDATION_FAILED, "chunkSize", "must be an integer between 1 and 100000"},
    [MIG_E_URI] = {E_VALIDATION_FAILED, "targetUri",
        "must look like mysql://user:pass@host[:port]/db"},
    [MIG_E_DBNAME] = {E_VALIDATION_FAILED, "dbName",
        "must be 1 to 64 of [a-z0-9_], starting with a letter"},
    [MIG_E_NO_TARGET] = {E_VALIDATION_FAILED, "targetUri",
        "required: OPSD_DEDICATED_DB_URI is not set"},
    [MIG_E_NO_KEY] = {E_DATA_KEY_REQUIRED, NULL,
        "OPSD_DATA_KEY must be set to store target credentials"},
    [MIG_E_UNREACHABLE] = {E_TARGET_UNREACHABLE, "targetUri",
        "the target database cannot be reached"},
    [MIG_E_TARGET_NOT_EMPTY] = {E_CONFLICT, "dbName", "the target already holds rows of this org"},
    [MIG_E_IN_PROGRESS] = {E_MIGRATION_IN_PROGRESS, NULL,
        "a migration of this org is already running"},
    [MIG_E_LEGAL_HOLD] = {E_LEGAL_HOLD, NULL, "the org or one of its records is on legal hold"},
    [MIG_E_REASON] = {E_VALIDATION_FAILED, "reason", "must be 1 to 500 characters"},
    [MIG_E_NOT_READY] = {E_CONFLICT, NULL,
        "only a migration in ready_for_cutover can be finalized"},
    [MIG_E_FINISHED] = {E_CONFLICT, NULL, "the migration has finished or already switched"},
    [MIG_E_REHEARSING] = {E_CONFLICT, NULL,
        "a rehearsal of the cut-over is running; its report comes within seconds"},
    [MIG_E_NOT_DEDICATED] = {E_CONFLICT, NULL,
        "the org's records are in the shared database: a migration moves them"},
    [MIG_E_TARGET_INVALID] = {E_CONFLICT, "targetUri",
        "the target does not hold this org's tenant database"},
};

const struct err_info tenant_errors[TENANT__MAX] = {
    [TENANT_OK] = {E_INTERNAL, NULL, "ok"},
    [TENANT_NO_ORG] = {E_NOT_FOUND, NULL, "no such org"},
    [TENANT_FROZEN] = {E_ORG_MIGRATING, NULL,
        "this org is moving to another database; writes resume within seconds"},
    [TENANT_UNREACHABLE] = {E_UNAVAILABLE, NULL, "the org's database is unreachable"},
    [TENANT_REFUSED] = {E_CONFLICT, NULL, "the change was refused"},
    [TENANT_DB_ERROR] = {E_DB_ERROR, NULL, "database error"},
};

const struct err_info batch_errors[BATCH__MAX] = {
    [BATCH_OK] = {E_INTERNAL, NULL, "ok"},
    [BATCH_NO_MEMORY] = {E_INTERNAL, NULL, "out of memory"},
    [BATCH_DB_ERROR] = {E_DB_ERROR, NULL, "database error"},
    [BATCH_UNAVAILABLE] = {E_UNAVAILABLE, NULL,
        "the records' databases are unavailable; nothing was changed"},
};
