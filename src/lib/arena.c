/* Bump allocator: a list of chunks, newest first; oversized requests get a
 * chunk of their own so a large body never wastes a standard chunk. */
#include "lib/arena.h"

#include "lib/secret.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 8
#define ARENA_MIN_CHUNK 256

struct chunk {
	struct chunk *next;
	size_t size; /* usable bytes in data */
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena {
	struct chunk *head; /* current chunk; the first one is at the tail */
	struct chunk *first;
	size_t chunk_size;
	size_t used;
};

static struct chunk *chunk_new(size_t size)
{
	if (size > SIZE_MAX - sizeof(struct chunk))
		return NULL;
	struct chunk *c = malloc(sizeof(*c) + size);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

struct arena *arena_new(size_t chunk_size)
{
	if (chunk_size < ARENA_MIN_CHUNK)
		chunk_size = ARENA_MIN_CHUNK;
	struct arena *a = malloc(sizeof(*a));
	if (a == NULL)
		return NULL;
	a->first = chunk_new(chunk_size);
	if (a->first == NULL) {
		free(a);
		return NULL;
	}
	a->head = a->first;
	a->chunk_size = chunk_size;
	a->used = 0;
	return a;
}

void arena_free(struct arena *a)
{
	if (a == NULL)
		return;
	for (struct chunk *c = a->head, *next; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

void arena_reset(struct arena *a)
{
	/* A request's arena holds its body, passwords included: nothing of it outlives the
	 * request (README "Hardening"). */
	for (struct chunk *c = a->head, *next; c != NULL; c = next) {
		next = c->next;
		secret_wipe(c->data, c->used);
		if (c != a->first)
			free(c);
	}
	a->first->next = NULL;
	a->first->used = 0;
	a->head = a->first;
	a->used = 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
	if (n == 0)
		n = 1;
	if (n > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	struct chunk *c = a->head;
	if (c->size - c->used < need) {
		/* A big request gets an exact-size chunk linked behind the current
		 * one, so the free space left in the current chunk is not lost. */
		if (need > a->chunk_size / 4) {
			struct chunk *big = chunk_new(need);
			if (big == NULL)
				return NULL;
			big->used = need;
			big->next = c->next;
			c->next = big;
			a->used += need;
			return big->data;
		}
		struct chunk *fresh = chunk_new(a->chunk_size);
		if (fresh == NULL)
			return NULL;
		fresh->next = c;
		a->head = c = fresh;
	}
	void *p = c->data + c->used;
	c->used += need;
	a->used += need;
	return p;
}

void *arena_calloc(struct arena *a, size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	void *p = arena_alloc(a, count * size);
	if (p != NULL)
		memset(p, 0, count * size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = arena_alloc(a, len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, SIZE_MAX);
}

char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int len = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (len < 0)
		return NULL;
	char *p = arena_alloc(a, (size_t)len + 1);
	if (p != NULL)
		vsnprintf(p, (size_t)len + 1, fmt, ap);
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

size_t arena_used(const struct arena *a)
{
	return a->used;
}
