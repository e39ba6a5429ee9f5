/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_BIND_H
#define EGRESSD_BIND_H
/*
 * Name bindings: address -> allowed names that DNS really answered with it,
 * each until an expiry time (answer TTL + grace). Keyed on (address, name):
 * add, lookup and expiry are O(1) however many names share one address.
 * Times are nanoseconds, monotonic, supplied by the caller.
 *
 * Bounded three ways (DESIGN.md "Bindings"); a cap never fails open, it only
 * forgets a binding (a later connection to that address and name is denied
 * until DNS answers it again):
 *   max_entries     all bindings. When full, the oldest binding of the client
 *                   charged with the most bindings goes (the adding client's
 *                   own oldest if it is among them): a client never loses a
 *                   binding to a client that holds as many or more.
 *   max_per_client  bindings charged to one client (the DNS client's source
 *                   address; NULL = the engine's own resolutions, verify mode).
 *                   At the cap the client's own oldest binding is replaced.
 *                   A binding is charged to the client that last asked for it.
 *   max_per_name    addresses bound to one name. At the cap the name's oldest
 *                   address is replaced (the newest answer is the one a
 *                   client is about to connect to).
 */
#include "addr.h"
#include "name.h"
#include <stdint.h>

#define BIND_DEFAULT_PER_NAME 256
#define BIND_DEFAULT_PER_CLIENT 32768

struct bind_config {
	size_t max_entries;    /* > 0 */
	size_t max_per_name;   /* > 0; default BIND_DEFAULT_PER_NAME */
	size_t max_per_client; /* > 0; default BIND_DEFAULT_PER_CLIENT (capped at max_entries) */
	uint64_t seed;         /* hash seed: getrandom in the daemon (0: a fixed one, tests) */
};
void bind_config_defaults(struct bind_config *c, size_t max_entries);

struct bindings;

struct bindings *bind_new_config(const struct bind_config *c);
/* Defaults and a fixed seed: for tests and tools, not for the daemon. */
struct bindings *bind_new(size_t max_entries);
void bind_free(struct bindings *b); /* NULL-safe */
/*
 * Share b between threads (the daemon's workers read, its DNS side writes):
 * from now on every call below takes b's lock: a reader its own thread's
 * slot, a writer every slot (bind_any calls fn under the read lock: fn must
 * not call back into b). Call before the threads start. 0, or -errno.
 */
int bind_share(struct bindings *b);

/*
 * Bind addr to name until expires, charged to client (NULL: the engine
 * itself); refreshes an existing binding (never shortens it). 0 or -ENOMEM.
 */
int bind_add_client(struct bindings *b, const char *name, const struct addr *a,
		    const struct addr *client, uint64_t expires, uint64_t now);
int bind_add(struct bindings *b, const char *name, const struct addr *a, uint64_t expires,
	     uint64_t now); /* client NULL */

/* Is addr bound to exactly this name (not expired at now)? */
bool bind_has(const struct bindings *b, const struct addr *a, const char *name, uint64_t now);

/*
 * Calls fn for each live name bound to addr; stops when fn returns true
 * and then returns true.
 */
bool bind_any(const struct bindings *b, const struct addr *a, uint64_t now,
	      bool (*fn)(const char *name, void *arg), void *arg);

/* Drop expired bindings; returns how many were dropped. Amortised O(1) per binding. */
size_t bind_expire(struct bindings *b, uint64_t now);
size_t bind_count(const struct bindings *b);
/* Bindings charged to client (NULL: the engine's own). */
size_t bind_client_count(const struct bindings *b, const struct addr *client);

#endif
