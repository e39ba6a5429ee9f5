/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_TYPOSQUAT_H
#define EGRESSD_TYPOSQUAT_H
/*
 * The look-alike index of the allowed registrable domains (engine.c's
 * typosquat check). Built once from the domains in the engine's order
 * (sorted by length, then bytes; equal domains adjacent), it answers:
 * which is the first domain, in that order, within edit distance max of a
 * name after the homoglyph fold (ind_within_edit_distance), among those whose
 * length differs from the name's by at most max. typo_nearest does it in
 * well under 50 us at 100,000 domains; typo_nearest_scan is the linear scan
 * it replaces, kept as the reference for tests and the bench.
 */
#include <stdbool.h>
#include <stddef.h>

struct typo_index;

/* regs[0..n): borrowed during the call only. NULL on ENOMEM or n == 0. */
struct typo_index *typo_build(const char *const *regs, size_t n);
void typo_free(struct typo_index *t); /* NULL-safe */

/* Is reg one of the domains, exactly? */
bool typo_has(const struct typo_index *t, const char *reg);

/* Index (into regs) of the first domain near name, or (size_t)-1. max <= 2
 * uses the index; larger max scans. Not reentrant (a visit stamp per call). */
size_t typo_nearest(struct typo_index *t, const char *name, unsigned max);
size_t typo_nearest_scan(const struct typo_index *t, const char *name, unsigned max);

#endif
