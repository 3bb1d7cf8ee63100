/* RFC 5322 messages as opsd sends them (see mail_format.h). */
#include "lib/mail_format.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/encoding.h"
#include "lib/utf8.h"

/* RFC 2047 §2: an encoded-word is at most 75 characters, a line holding
 * one at most 76. "=?UTF-8?B?" + base64 + "?=": 60 base64 characters (45
 * bytes) fit on a continuation line, 52 (39 bytes) after "Subject: ". */
#define EW_FIRST_BYTES 39
#define EW_NEXT_BYTES 45
#define LINE_MAX_HDR 78 /* RFC 5322 §2.1.1 */
#define QP_LINE_MAX 76  /* RFC 2045 §6.7 rule 5 */

/* An addr-spec as we send it: printable ASCII, no space, nothing that
 * would end "<...>" in MAIL FROM/RCPT TO or add a second address. */
static bool addr_ok(const char *s)
{
	size_t n = strlen(s);
	const char *at = strrchr(s, '@');
	if (n == 0 || n > 254 || at == NULL || at == s || at[1] == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("<>,;\"\\", *p) != NULL)
			return false;
	return true;
}

static bool msgid_ok(const char *s)
{
	if (s[0] == '\0' || strlen(s) > 250)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '<' || *p == '>')
			return false;
	return true;
}

static bool put_date(struct buf *out, int64_t ms)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
	    "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 9999)
		return false;
	/* RFC 5322 §3.3, fixed English names whatever the locale */
	buf_printf(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
	    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return true;
}

/* Plain when it is printable ASCII that fits one line and cannot be read as
 * an encoded-word; otherwise RFC 2047 B encoded-words of whole characters
 * (RFC 2047 §5), folded with CRLF SP. */
static void put_subject(struct buf *out, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	bool plain = strlen("Subject: ") + n <= LINE_MAX_HDR && strstr(s, "=?") == NULL;
	for (size_t i = 0; plain && i < n; i++)
		plain = u[i] >= 0x20 && u[i] < 0x7f;
	if (plain) {
		buf_printf(out, "Subject: %s\r\n", s);
		return;
	}
	buf_puts(out, "Subject:");
	for (size_t i = 0; i < n;) {
		char word[4 * (EW_NEXT_BYTES + 2) / 3 + 1];
		size_t max = i == 0 ? EW_FIRST_BYTES : EW_NEXT_BYTES;
		size_t j = i;
		size_t len;

		/* whole characters only (the subject was checked to be UTF-8) */
		while (j < n && (len = utf8_seq_len(s + j, n - j)) > 0 && j + len - i <= max)
			j += len;
		if (j == i)
			j = i + 1;
		if (i > 0)
			buf_puts(out, "\r\n");
		buf_puts(out, " =?UTF-8?B?");
		b64_encode(false, true, u + i, j - i, word, sizeof(word));
		buf_puts(out, word);
		buf_puts(out, "?=");
		i = j;
	}
	buf_puts(out, "\r\n");
}

/* One body line, quoted-printable (RFC 2045 §6.7), ended with CRLF. */
static void put_qp_line(struct buf *out, const unsigned char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		bool last = i + 1 == n;
		bool literal =
		    ((c == ' ' || c == '\t') && !last) || (c >= 33 && c <= 126 && c != '=');
		size_t tl = literal ? 1 : 3;
		/* keep room for the soft break's '=' unless this token ends the line */
		if (col + tl > (last ? QP_LINE_MAX : QP_LINE_MAX - 1)) {
			buf_puts(out, "=\r\n");
			col = 0;
		}
		/* "From " starting a line, after a soft break too, is encoded so mbox
		 * stores keep it (RFC 2049 §3); at a line's start the 3 bytes fit */
		if (col == 0 && n - i >= 5 && memcmp(s + i, "From ", 5) == 0)
			literal = false, tl = 3;
		if (literal) {
			buf_putc(out, (char)c);
		} else {
			char tok[3] = {'=', hex[c >> 4], hex[c & 15]};
			buf_append(out, tok, 3);
		}
		col += tl;
	}
	buf_puts(out, "\r\n");
}

/* Lines end at CRLF, a bare CR or a bare LF; each goes out with CRLF. */
static void put_qp_body(struct buf *out, const char *body)
{
	const char *p = body;
	while (*p != '\0') {
		size_t n = strcspn(p, "\r\n");
		put_qp_line(out, (const unsigned char *)p, n);
		p += n;
		if (*p == '\r' && p[1] == '\n')
			p += 2;
		else if (*p != '\0')
			p++;
	}
}

bool mail_format(const struct mail_message *m, const char *from, struct buf *out)
{
	size_t start = out->len;
	/* A NUL cannot reach us inside a C string; CR/LF would start a header. */
	if (m == NULL || from == NULL || m->to == NULL || m->subject == NULL || m->body == NULL ||
	    m->message_id == NULL)
		return false;
	if (!addr_ok(from) || !addr_ok(m->to) || !msgid_ok(m->message_id))
		return false;
	if (strpbrk(m->subject, "\r\n") != NULL || !utf8_valid(m->subject, strlen(m->subject)) ||
	    !utf8_valid(m->body, strlen(m->body)))
		return false;
	if (!put_date(out, m->date_ms))
		goto fail;
	buf_printf(out, "Message-ID: <%s>\r\n", m->message_id);
	buf_printf(out, "From: %s\r\n", from);
	buf_printf(out, "To: %s\r\n", m->to);
	put_subject(out, m->subject);
	buf_puts(out, "MIME-Version: 1.0\r\n"
	              "Content-Type: text/plain; charset=UTF-8\r\n"
	              "Content-Transfer-Encoding: quoted-printable\r\n"
	              "\r\n");
	put_qp_body(out, m->body);
	if (buf_failed(out))
		goto fail;
	return true;
fail:
	if (out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	return false;
}
