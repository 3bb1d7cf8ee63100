/* The one-line progress report of a long job: bar, percent, pace, ETA. */
#include <stdio.h>
#include <string.h>

#include "cli/progress.h"

#define BAR_MAX 200

static double clamp_percent(double p)
{
	if (!(p == p) || p < 0)
		return 0;
	return p > 100 ? 100 : p;
}

void progress_bar(char *out, size_t len, double percent, int width)
{
	char cells[BAR_MAX + 1];
	int filled;

	if (width < 1)
		width = 1;
	if (width > BAR_MAX)
		width = BAR_MAX;
	filled = (int)(clamp_percent(percent) * width / 100.0 + 0.5);
	memset(cells, '#', (size_t)filled);
	memset(cells + filled, '.', (size_t)(width - filled));
	cells[width] = '\0';
	snprintf(out, len, "[%s]", cells);
}

void progress_eta(char *out, size_t len, long long seconds)
{
	if (seconds < 0)
		snprintf(out, len, "--:--");
	else if (seconds < 3600)
		snprintf(out, len, "%lld:%02lld", seconds / 60, seconds % 60);
	else
		snprintf(out, len, "%lld:%02lld:%02lld", seconds / 3600, seconds / 60 % 60,
		    seconds % 60);
}

void progress_thousands(char *out, size_t len, long long n)
{
	char digits[32], grouped[48];
	unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
	size_t nd, j = 0;

	nd = (size_t)snprintf(digits, sizeof(digits), "%llu", u);
	if (n < 0)
		grouped[j++] = '-';
	for (size_t i = 0; i < nd; i++) {
		if (i > 0 && (nd - i) % 3 == 0)
			grouped[j++] = ',';
		grouped[j++] = digits[i];
	}
	grouped[j] = '\0';
	snprintf(out, len, "%s", grouped);
}

void progress_line(char *out, size_t len, const struct progress *p, int width)
{
	char bar[BAR_MAX + 3], rate[48] = "-", eta[32];

	progress_bar(bar, sizeof(bar), p->percent, width);
	/* the bound keeps the conversion defined whatever the document said */
	if (p->rows_per_sec >= 0 && p->rows_per_sec < 1e15)
		progress_thousands(rate, sizeof(rate), (long long)(p->rows_per_sec + 0.5));
	progress_eta(eta, sizeof(eta), p->eta_sec);
	snprintf(out, len, "%s %5.1f%%  %s rows/s  ETA %s%s%s%s", bar, clamp_percent(p->percent),
	    rate, eta, p->status ? "  " : "", p->status ? p->status : "",
	    p->throttled ? " (throttled)" : "");
}
