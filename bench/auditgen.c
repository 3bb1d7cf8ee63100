/* bench/auditgen: audit events for bench/scale, hash-chained with opsd's own
 * audit_record_hash, as tab-separated rows for LOAD DATA. The rows continue
 * the chain from a given head, so `opsctl audit verify` accepts them.
 *
 * Usage: auditgen FIRST_SEQ PREV_HASH_HEX COUNT FROM_MS TO_MS ORGS CONTACTS
 *   FIRST_SEQ, PREV_HASH_HEX  the chain head's seq + 1 and hash (64 hex digits)
 *   COUNT                     events to write, occurred_at spread evenly and
 *                             increasing from FROM_MS to TO_MS (Unix ms)
 *   ORGS, CONTACTS            how many org and contact ids to draw from: the
 *                             ids bench/scale gives them (bench_uuid below)
 * Writes COUNT rows to stdout in the column order of bench/scale's LOAD DATA
 * (ids and hashes in hex, \N for NULL), then "LAST_SEQ HASH_HEX" to stderr. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/audit.h"
#include "lib/encoding.h"

/* What a busy installation logs, roughly in proportion: one row per event
 * kind, repeated by weight. */
static const struct kind {
	const char *action;
	const char *target_type; /* NULL: no target */
	int weight;
	bool has_org;
	const char *payload;
} kinds[] = {
    {"tenant.created", "contacts", 30, true, "{\"entity\":\"contacts\"}"},
    {"tenant.updated", "contacts", 30, true, "{\"entity\":\"contacts\",\"fields\":[\"phone\"]}"},
    {"auth.login_succeeded", "user", 12, true, "{}"},
    {"auth.logout", "user", 8, true, "{}"},
    {"legal.accepted", "legal_document", 6, true, "{\"type\":\"privacy\",\"version\":\"v3\"}"},
    {"compliance.exported", "contacts", 3, true, "{\"entity\":\"contacts\",\"format\":\"json\"}"},
    {"email.sent", "email", 5, false, "{\"template\":\"legal_notify\"}"},
    {"security.rate_limited", NULL, 3, false, "{\"scope\":\"ip\",\"limit\":600}"},
    {"user.updated", "user", 2, true, "{\"fields\":[\"name\"]}"},
    {"migration.progress", "org", 1, true, "{\"rowsCopied\":5000}"},
};
#define ACTORS 200
#define TAG_ORG 1
#define TAG_CONTACT 2
#define TAG_ACTOR 4

/* The ids bench/scale gives its rows: a fixed 48-bit prefix, version 7 with
 * the kind's tag, variant 10 and n in the last 60 bits; as text. */
static void bench_uuid(int tag, uint64_t n, char out[37])
{
	snprintf(out, 37, "01900000-0000-7%03x-8%03" PRIx64 "-%012" PRIx64, tag, (n >> 48) & 0xfff,
	    n & (uint64_t)0xffffffffffff);
}

/* A UUIDv7 of the event's own time: ms, version, seq in the rest. */
static void event_uuid(int64_t ms, int64_t seq, char out[37])
{
	snprintf(out, 37, "%08" PRIx64 "-%04" PRIx64 "-7%03" PRIx64 "-8%03" PRIx64 "-%012" PRIx64,
	    ((uint64_t)ms >> 16) & (uint64_t)0xffffffff, (uint64_t)ms & 0xffff,
	    ((uint64_t)seq >> 60) & 0xfff, ((uint64_t)seq >> 48) & 0xfff,
	    (uint64_t)seq & (uint64_t)0xffffffffffff);
}

static void uuid_hex(const char *u, char out[33])
{
	size_t n = 0;

	for (; *u; u++)
		if (*u != '-')
			out[n++] = *u;
	out[n] = '\0';
}

static void put(const char *s, char sep)
{
	fputs(s ? s : "\\N", stdout);
	putchar(sep);
}

int main(int argc, char **argv)
{
	const struct kind *table[128];
	size_t ntable = 0;
	uint8_t prev[32], hash[32];
	char prev_hex[65], hash_hex[65];

	if (argc != 8 || strlen(argv[2]) != 64 || !hex_decode(argv[2], prev, 32)) {
		fprintf(stderr,
		    "usage: auditgen FIRST_SEQ PREV_HASH_HEX COUNT FROM_MS TO_MS ORGS CONTACTS\n");
		return 2;
	}
	int64_t first = strtoll(argv[1], NULL, 10), count = strtoll(argv[3], NULL, 10);
	int64_t from = strtoll(argv[4], NULL, 10), to = strtoll(argv[5], NULL, 10);
	uint64_t orgs = strtoull(argv[6], NULL, 10), contacts = strtoull(argv[7], NULL, 10);
	if (first < 1 || count < 0 || to < from || orgs < 1 || contacts < 1) {
		fprintf(stderr, "auditgen: bad arguments\n");
		return 2;
	}
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (int w = 0; w < kinds[k].weight && ntable < 128; w++)
			table[ntable++] = &kinds[k];

	for (int64_t i = 0; i < count; i++) {
		int64_t seq = first + i;
		int64_t ms =
		    from + (int64_t)((double)(to - from) * (double)i / (double)(count ? count : 1));
		const struct kind *k = table[(uint64_t)(i * 7 + i / 13) % ntable];
		uint64_t actor = (uint64_t)(i * 31) % ACTORS + 1;
		bool system = k->target_type && strcmp(k->target_type, "email") == 0;
		char id[37], org[37], actor_id[37], target[37], when[32], ip[48], rid[33];
		char id_hex[33], org_hex[33], actor_hex[33];
		time_t secs = (time_t)(ms / 1000);
		struct tm tm;

		event_uuid(ms, seq, id);
		bench_uuid(TAG_ORG, (uint64_t)(i * 7919) % orgs + 1, org);
		bench_uuid(TAG_ACTOR, actor, actor_id);
		bench_uuid(TAG_CONTACT, (uint64_t)(i * 104729) % contacts + 1, target);
		gmtime_r(&secs, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(when + strlen(when), 8, ".%03d", (int)(ms % 1000));
		if (i % 16 == 5)
			snprintf(ip, sizeof(ip), "2001:db8:%x::%x", (unsigned)(i % 4096),
			    (unsigned)(i % 65521));
		else
			snprintf(ip, sizeof(ip), "10.%u.%u.%u", (unsigned)(i / 65536 % 256),
			    (unsigned)(i / 256 % 256), (unsigned)(i % 256));
		snprintf(rid, sizeof(rid), "%016" PRIx64 "%016" PRIx64,
		    (uint64_t)seq * (uint64_t)0x9e3779b97f4a7c15, (uint64_t)seq);

		struct audit_record rec = {
		    .seq = seq,
		    .id = id,
		    .occurred_at = when,
		    .actor_id = system ? NULL : actor_id,
		    .actor_label =
		        system ? "system" : (actor % 10 == 0 ? "superadmin" : "org_admin"),
		    .org_id = k->has_org ? org : NULL,
		    .action = k->action,
		    .target_type = k->target_type,
		    .target_id = k->target_type == NULL                    ? NULL
		                 : strcmp(k->target_type, "contacts") == 0 ? target
		                 : strcmp(k->target_type, "user") == 0     ? actor_id
		                 : strcmp(k->target_type, "org") == 0      ? org
		                                                           : "privacy",
		    .ip = system ? NULL : ip,
		    .request_id = system ? NULL : rid,
		    .payload = k->payload,
		};
		memcpy(rec.prev_hash, prev, 32);
		audit_record_hash(&rec, hash);

		uuid_hex(id, id_hex);
		uuid_hex(org, org_hex);
		uuid_hex(actor_id, actor_hex);
		hex_encode(prev, 32, prev_hex);
		hex_encode(hash, 32, hash_hex);
		printf("%" PRId64 "\t", seq);
		put(id_hex, '\t');
		put(rec.occurred_at, '\t');
		put(rec.actor_id ? actor_hex : NULL, '\t');
		put(rec.actor_label, '\t');
		put(rec.org_id ? org_hex : NULL, '\t');
		put(rec.action, '\t');
		put(rec.target_type, '\t');
		put(rec.target_id, '\t');
		put(rec.ip, '\t');
		put(rec.request_id, '\t');
		put(rec.payload, '\t');
		put(prev_hex, '\t');
		put(hash_hex, '\n');
		memcpy(prev, hash, 32);
	}
	hex_encode(prev, 32, prev_hex);
	fprintf(stderr, "%" PRId64 " %s\n", first + count - 1, prev_hex);
	return ferror(stdout) ? 1 : 0;
}
