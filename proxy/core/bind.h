/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_BIND_H
#define EGRESSD_BIND_H
/*
 * Name bindings: address -> allowed names that DNS really answered with it,
 * each until an expiry time (answer TTL + grace). Bounded in entries; when
 * full, the oldest binding is evicted. Times are nanoseconds, monotonic,
 * supplied by the caller.
 */
#include "addr.h"
#include "name.h"
#include <stdint.h>

struct bindings;

struct bindings *bind_new(size_t max_entries);
void bind_free(struct bindings *b); /* NULL-safe */

/* Bind addr to name until expires; refreshes an existing binding. 0 or -ENOMEM. */
int bind_add(struct bindings *b, const char *name, const struct addr *a, uint64_t expires,
	     uint64_t now);

/* Is addr bound to exactly this name (not expired at now)? */
bool bind_has(const struct bindings *b, const struct addr *a, const char *name, uint64_t now);

/*
 * Calls fn for each live name bound to addr; stops when fn returns true
 * and then returns true.
 */
bool bind_any(const struct bindings *b, const struct addr *a, uint64_t now,
	      bool (*fn)(const char *name, void *arg), void *arg);

/* Drop expired bindings; returns how many were dropped. */
size_t bind_expire(struct bindings *b, uint64_t now);
size_t bind_count(const struct bindings *b);

#endif
