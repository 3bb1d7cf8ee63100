/* RFC 5322 messages (lib/mail_format.c) from hostile parts: the input is
 * the recipient, sender, subject, body and message id separated by 0x01,
 * then 8 bytes of date. When mail_format accepts them, the message is
 * 7-bit, every line ends in CRLF, the header is exactly the eight fields in
 * order (so no CR or LF of the input started a header line of its own),
 * header lines are at most 998 characters and the Subject's at most 78, the subject's encoded-words
 * are well-formed (RFC 2047: at most 75 characters, base64 of whole UTF-8 characters) and decode to
 * the subject, and the quoted-printable body (lines of at most 76) decodes to the body with CRLF
 * line ends. When it refuses them, the buffer is as it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lib/buf.h"
#include "lib/mail_format.h"
#include "lib/utf8.h"

static const char *const fields[] = {"Date: ", "Message-ID: <",
    "From: ", "To: ", "Subject:", "MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8",
    "Content-Transfer-Encoding: quoted-printable"};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static int b64_val(char c)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;
	return p ? (int)(p - a) : -1;
}

/* Padded standard base64 → out; false when malformed. */
static bool b64_dec(const char *s, size_t n, struct buf *out)
{
	if (n == 0 || n % 4 != 0)
		return false;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;
		for (size_t j = 0; j < 4; j++) {
			if (s[i + j] == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad || (v[j] = b64_val(s[i + j])) < 0)
				return false;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		             (uint32_t)v[3];
		buf_putc(out, (char)(w >> 16));
		if (pad < 2)
			buf_putc(out, (char)(w >> 8));
		if (pad < 1)
			buf_putc(out, (char)w);
	}
	return true;
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 2045 §6.7: uppercase only when we write it */
}

/* The body as it must come out: each line (ended by CRLF, CR or LF, or the
 * end) followed by CRLF. */
static void expected_body(const char *b, struct buf *out)
{
	while (*b) {
		size_t n = strcspn(b, "\r\n");
		buf_append(out, b, n);
		buf_puts(out, "\r\n");
		b += n;
		if (b[0] == '\r' && b[1] == '\n')
			b += 2;
		else if (*b)
			b++;
	}
}

static void check_subject(const char *const *lines, size_t nl, const char *subject)
{
	struct buf got;
	buf_init(&got);
	buf_puts(&got, "");
	if (nl == 1 && strncmp(lines[0], "Subject: ", 9) == 0 && strstr(lines[0], "=?") == NULL) {
		if (strcmp(lines[0] + 9, subject) != 0)
			abort();
		buf_free(&got);
		return;
	}
	for (size_t i = 0; i < nl; i++) {
		const char *w = lines[i] + (i == 0 ? strlen("Subject:") : 0);
		size_t n = strlen(w);
		/* " =?UTF-8?B?...?=": one encoded-word per line, at most 75 */
		if (n < 13 || strncmp(w, " =?UTF-8?B?", 11) != 0 || strcmp(w + n - 2, "?=") != 0 ||
		    n - 1 > 75)
			abort();
		size_t before = got.len;
		if (!b64_dec(w + 11, n - 13, &got))
			abort();
		/* whole characters in each word (RFC 2047 §5 (3)) */
		if (!utf8_valid(got.data + before, got.len - before))
			abort();
	}
	if (strcmp(buf_cstr(&got), subject) != 0)
		abort();
	buf_free(&got);
}

static void check_body(const char *const *lines, size_t nl, const char *body)
{
	struct buf got, want;
	buf_init(&got);
	buf_init(&want);
	buf_puts(&got, "");
	buf_puts(&want, "");
	for (size_t i = 0; i < nl; i++) {
		const char *l = lines[i];
		size_t n = strlen(l);
		bool soft = n > 0 && l[n - 1] == '=';
		if (n > 76 || strncmp(l, "From ", 5) == 0)
			abort();
		if (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '\t'))
			abort(); /* RFC 2045 §6.7 (3): no trailing white space */
		for (size_t j = 0; j < n - soft; j++) {
			if (l[j] != '=') {
				buf_putc(&got, l[j]);
				continue;
			}
			int hi = j + 2 < n ? hexv(l[j + 1]) : -1,
			    lo = j + 2 < n ? hexv(l[j + 2]) : -1;
			if (hi < 0 || lo < 0)
				abort();
			buf_putc(&got, (char)(hi << 4 | lo));
			j += 2;
		}
		if (!soft)
			buf_puts(&got, "\r\n");
		else if (i + 1 == nl)
			abort(); /* a soft break ends no message */
	}
	expected_body(body, &want);
	if (strcmp(buf_cstr(&got), buf_cstr(&want)) != 0)
		abort();
	buf_free(&got);
	buf_free(&want);
}

static void check(const struct buf *b, const struct mail_message *m, const char *from)
{
	char *text = strndup(b->data, b->len);
	char **lines = NULL;
	size_t nl = 0, cap = 0;
	if (!text)
		abort();
	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];
		if (c == 0 || c >= 0x80)
			abort(); /* 7-bit */
		if (c == '\r' && (i + 1 == b->len || b->data[i + 1] != '\n'))
			abort();
		if (c == '\n' && (i == 0 || b->data[i - 1] != '\r'))
			abort();
	}
	if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2) != 0)
		abort();
	for (char *p = text, *e; *p; p = e + 2) {
		e = strstr(p, "\r\n");
		*e = '\0';
		if (nl == cap) {
			cap = cap ? 2 * cap : 64;
			lines = realloc(lines, cap * sizeof(*lines));
			if (!lines)
				abort();
		}
		lines[nl++] = p;
	}
	/* the header: the eight fields in order, only Subject folded */
	size_t i = 0, subj = 0, subj_n = 0;
	for (size_t f = 0; f < NFIELDS; f++) {
		if (i >= nl || strncmp(lines[i], fields[f], strlen(fields[f])) != 0)
			abort();
		/* RFC 5322 §2.1.1: 998 at most; 78 for the Subject, which folds
		 * (an addr-spec or a msg-id cannot) */
		if (strlen(lines[i]) > (f == 4 ? 78 : 998))
			abort();
		if (f == 4)
			subj = i;
		i++;
		while (f == 4 && i < nl && lines[i][0] == ' ') {
			if (strlen(lines[i]) > 78)
				abort();
			i++;
		}
		if (f == 4)
			subj_n = i - subj;
	}
	if (i >= nl || lines[i][0] != '\0')
		abort(); /* the blank line */
	if (strcmp(lines[2] + 6, from) != 0 || strcmp(lines[3] + 4, m->to) != 0 ||
	    strncmp(lines[1] + 13, m->message_id, strlen(m->message_id)) != 0 ||
	    strcmp(lines[1] + 13 + strlen(m->message_id), ">") != 0)
		abort();
	check_subject((const char *const *)lines + subj, subj_n, m->subject);
	check_body((const char *const *)lines + i + 1, nl - i - 1, m->body);
	free(lines);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *part[5] = {"", "", "", "", ""};
	int64_t date = 1795516075123LL;
	if (size > 16384)
		return 0;
	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	size_t k = 0;
	char *p = s;
	for (char *q = s; k < 5; q++) {
		if (*q == '\x01' || q == s + size) {
			bool end = q == s + size;
			*q = '\0';
			part[k++] = p;
			p = q + 1;
			if (end)
				break;
		}
	}
	if (k == 5 && p + 8 <= s + size)
		memcpy(&date, p, 8);
	struct mail_message m = {.to = part[0],
	    .subject = part[2],
	    .body = part[3],
	    .message_id = part[4],
	    .date_ms = date};
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "prefix");
	if (mail_format(&m, part[1], &b)) {
		struct buf msg = {0};
		msg.data = b.data + 6;
		msg.len = b.len - 6;
		check(&msg, &m, part[1]);
	} else if (b.len != 6 || strcmp(b.data, "prefix") != 0) {
		abort();
	}
	buf_free(&b);
	free(s);
	return 0;
}
