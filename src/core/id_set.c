/* Sets of record ids in bounded statements (see id_set.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/id_set.h"
#include "lib/util.h"

/* The placeholder counts a statement may carry: few texts to prepare, and
 * at most about twice the ids needed. */
static const size_t slot_sizes[] = {1, 4, 16, 64, 128, 256, ID_SET_MAX};

size_t id_set_slots(size_t n)
{
	for (size_t i = 0; i < countof(slot_sizes); i++)
		if (n <= slot_sizes[i])
			return n ? slot_sizes[i] : 0;
	return 0;
}

size_t id_set_sql(char *buf, size_t len, const char *head, size_t slots, const char *tail)
{
	size_t n;
	int w;

	if (slots == 0 || slots > ID_SET_MAX)
		return 0;
	w = snprintf(buf, len, "%s(?", head);
	if (w < 0 || (size_t)w >= len)
		return 0;
	n = (size_t)w;
	for (size_t i = 1; i < slots; i++) {
		if (len - n <= 3)
			return 0;
		memcpy(buf + n, ", ?", 3);
		n += 3;
	}
	w = snprintf(buf + n, len - n, ")%s", tail);
	if (w < 0 || (size_t)w >= len - n)
		return 0;
	return n + (size_t)w;
}

static int id_cmp(const void *x, const void *y)
{
	return memcmp(x, y, 16);
}

void id_set_sort(uint8_t (*ids)[16], size_t n)
{
	if (n > 1)
		qsort(ids, n, 16, id_cmp);
}

long id_set_find(const uint8_t (*ids)[16], size_t n, const uint8_t id[16])
{
	const uint8_t(*hit)[16] = n ? bsearch(id, ids, n, 16, id_cmp) : NULL;

	return hit ? (long)(hit - ids) : -1;
}

static int pos_cmp(const void *x, const void *y)
{
	const struct id_pos *a = x, *b = y;
	int c = memcmp(a->id, b->id, 16);

	return c ? c : (a->pos > b->pos) - (a->pos < b->pos);
}

void id_set_firsts(const uint8_t (*ids)[16], size_t n, struct id_pos *scratch, size_t *first)
{
	for (size_t k = 0; k < n; k++) {
		memcpy(scratch[k].id, ids[k], 16);
		scratch[k].pos = k;
	}
	if (n > 1)
		qsort(scratch, n, sizeof(*scratch), pos_cmp);
	for (size_t k = 0; k < n; k++)
		first[scratch[k].pos] = k > 0 && memcmp(scratch[k].id, scratch[k - 1].id, 16) == 0
		                            ? first[scratch[k - 1].pos]
		                            : scratch[k].pos;
}
