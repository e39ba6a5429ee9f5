/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * egressd report on hostile log lines (proxy/report.c). The input is split at
 * newlines and fed line by line. Invariants: every line is an event or
 * malformed; the tallies add up to the totals they split (count honoured);
 * the rendered page never contains an element the input could have smuggled
 * in (script, img, iframe, link, object, a, embed, base, a refresh).
 */
#define _GNU_SOURCE /* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../proxy/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t tally_sum(const struct report_tally *t)
{
	uint64_t s = 0;
	for (size_t i = 0; i < t->n; i++)
		s += t->v[i].n;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct report r;
	report_init(&r);
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		(void)report_add_line(&r, p, len);
		p += len + (nl ? 1 : 0);
	}
	if (r.events + r.malformed != r.lines)
		abort();
	if (tally_sum(&r.dests) != r.deny || tally_sum(&r.reasons) != r.deny ||
	    tally_sum(&r.qnames) != r.dns_deny)
		abort();
	uint64_t sev = 0;
	for (int i = 0; i < REPORT_NSEV; i++)
		sev += r.sev[i];
	if (sev != r.deny + r.dns_deny)
		abort();
	char *html = NULL;
	size_t hlen = 0;
	FILE *f = open_memstream(&html, &hlen);
	if (!f)
		abort();
	if (report_render(&r, f) != 0)
		abort();
	fclose(f);
	/* a URL as text is harmless (and may well be logged); an element is not */
	static const char *const never[] = {"<script", "<img",    "<iframe",
	                                    "<link",   "<object", "<a ",
	                                    "<embed",  "<base",   "<meta http-equiv=\"refresh"};
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		if (memmem(html, hlen, never[i], strlen(never[i])))
			abort();
	free(html);
	report_free(&r);
	return 0;
}
