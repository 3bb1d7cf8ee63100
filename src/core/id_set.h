/* Sets of record ids in bounded statements. Compliance batches judge and
 * change a chunk of records with a few statements of the form
 * "... WHERE id IN (?, ?, ...)" rather than a few per record. Each
 * statement takes at most ID_SET_MAX ids, so its text stays under 2 KB and
 * its parameters under 10 KB whatever the chunk (far below any
 * max_allowed_packet), and the number of placeholders is rounded up to a
 * few sizes (the last id repeated) so that a connection prepares a handful
 * of statement texts, not one per count. Pure: text, sorting and lookup. */
#ifndef OPSD_ID_SET_H
#define OPSD_ID_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_SET_MAX 500
/* Room for head and tail of at most extra bytes around the placeholders. */
#define ID_SET_SQL_LEN(extra) ((extra) + 3 * ID_SET_MAX + 3)

/* How many placeholders a statement over n ids (1..ID_SET_MAX) carries:
 * n rounded up to the next size of a short fixed list. */
size_t id_set_slots(size_t n);

/* head, "(?, ?, ...)" with slots placeholders, then tail, into buf. The
 * length, or 0 when slots is 0 or above ID_SET_MAX or it does not fit. */
size_t id_set_sql(char *buf, size_t len, const char *head, size_t slots, const char *tail);

/* Sorting and lookup of binary ids. */
void id_set_sort(uint8_t (*ids)[16], size_t n);
/* The position of id in the sorted ids[0..n), or -1. */
long id_set_find(const uint8_t (*ids)[16], size_t n, const uint8_t id[16]);

/* first[k]: the position of the first occurrence of ids[k] among ids[0..n)
 * (k itself for an id not seen before). scratch holds n entries. */
struct id_pos {
	uint8_t id[16];
	size_t pos;
};
void id_set_firsts(const uint8_t (*ids)[16], size_t n, struct id_pos *scratch, size_t *first);

#endif
