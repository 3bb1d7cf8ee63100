/* CIDRs as operators and clients write them (POST /security/blocklist,
 * opsctl blocklist, GET /audit?ip=): cidr_parse on any text; an accepted
 * range formats to a text that parses back to the same range, contains its
 * own network address and gives a range lo..hi for the audit search; the
 * nginx line and the firewall renderings of it are one line each with
 * nothing a comment could break out with. The input is three lines: the
 * CIDR, a client address, the entry's reason. */
#include "fuzz.h"

#include "core/audit_query.h"
#include "core/blocklist.h"
#include "core/blocklist_nginx.h"
#include "lib/buf.h"

/* Splits off the next '\n'-terminated line (in place). */
static char *next_line(char **p)
{
	char *s = *p, *nl = strchr(s, '\n');

	if (nl) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

static void check_nginx_line(const char *cidr, const char *reason)
{
	struct buf b;

	buf_init(&b);
	if (blocklist_nginx_line(&b, cidr, reason, "2026-11-24T10:27:55Z")) {
		const char *hash;

		if (buf_failed(&b) || b.len < 8 || memcmp(b.data, "deny ", 5) != 0 ||
		    b.data[b.len - 1] != '\n' || memchr(b.data, '\n', b.len - 1) ||
		    memchr(b.data, '\0', b.len))
			abort();
		/* the only ';' ends the directive, right before the comment */
		hash = memchr(b.data, '#', b.len);
		if (!hash || memchr(hash, ';', b.len - (size_t)(hash - b.data)) ||
		    memchr(hash + 1, '#', b.len - (size_t)(hash + 1 - b.data)))
			abort();
	}
	buf_free(&b);
}

static void check_firewalls(const char *cidr)
{
	const char *const cidrs[] = {cidr, "203.0.113.0/24", "2001:db8::/32"};

	for (int f = 0; f < BF__MAX; f++) {
		struct buf b;

		buf_init(&b);
		blocklist_firewall_render((enum blocklist_format)f, cidrs, 3,
		    "2026-11-24T10:27:55.000Z", &b);
		if (memchr(b.data ? b.data : "", '\0', b.len))
			abort();
		buf_free(&b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_cstr(data, size), *p = in;
	char *text = next_line(&p), *addr = next_line(&p), *reason = p;
	struct cidr c, again;
	char norm[CIDR_STR_LEN], comment[64];
	uint8_t a[16], lo[16], hi[16];
	bool not_mapped;
	const char *why = NULL;
	enum cidr_err e = cidr_parse(text, &c);

	if (cidr_err_text(e) == NULL)
		abort();
	if (e == CIDR_OK || e == CIDR_HOST_BITS) {
		cidr_format(&c, norm);
		if (cidr_parse(norm, &again) != CIDR_OK || memcmp(&c, &again, sizeof(c)) != 0)
			abort();
		if (!cidr_contains(&c, c.net))
			abort();
		if (!audit_ip_range(text, lo, hi, &not_mapped, &why) || memcmp(lo, hi, 16) > 0 ||
		    memcmp(lo, c.net, 16) != 0)
			abort();
		check_firewalls(norm);
	} else if (audit_ip_range(text, lo, hi, &not_mapped, &why) || !why) {
		abort();
	}
	if (addr_parse16(addr, a)) {
		(void)cidr_contains(&c, a);
		if (audit_ip_range(addr, lo, hi, &not_mapped, &why) &&
		    (memcmp(lo, a, 16) != 0 || memcmp(hi, a, 16) != 0))
			abort();
	}
	check_nginx_line(text, reason);
	blocklist_comment(reason, comment, sizeof(comment));
	if (strlen(comment) >= sizeof(comment) || strpbrk(comment, ";#'\"\\{}$`\n\r"))
		abort();
	free(in);
	return 0;
}
