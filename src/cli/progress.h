/* The one-line progress report of a long job (opsctl migration watch):
 *   [#########.........]  47.3%  12,345 rows/s  ETA 0:42  copying
 * Pure formatting, no I/O, so it is unit-tested (t/unit/test_progress.c). */
#ifndef OPSD_PROGRESS_H
#define OPSD_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

struct progress {
	double percent;      /* 0..100; clamped */
	double rows_per_sec; /* < 0: unknown */
	long long eta_sec;   /* < 0: unknown */
	const char *status;  /* NULL: left out */
	bool throttled;
};

/* "[####....]" with width cells between the brackets (1..200), the filled
 * ones rounded to the nearest cell. */
void progress_bar(char *out, size_t len, double percent, int width);
/* "0:42", "12:05", "1:02:03"; "--:--" when unknown (< 0). */
void progress_eta(char *out, size_t len, long long seconds);
/* 12345 → "12,345"; negative numbers keep their sign. */
void progress_thousands(char *out, size_t len, long long n);
/* The whole line, truncated to len - 1. */
void progress_line(char *out, size_t len, const struct progress *p, int width);

#endif
