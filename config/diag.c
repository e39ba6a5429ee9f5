/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Diagnostics with file:line. Errors look like SPEC.md's example
 * ("allow.d/ci.list:7: bad port \"44x\""), warnings say "warning:".
 * Storing a line may fail for lack of memory; the count never does, so an
 * error can not be lost and a bad config can not pass for a good one.
 */
#include "conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void diag_vadd(struct diag *d, const char *kind, const char *file, unsigned line,
                      const char *fmt, va_list ap)
{
	char msg[1024];
	char prefix[1100];
	int n;

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (file && line)
		n = snprintf(prefix, sizeof prefix, "%s:%u: %s", file, line, kind);
	else if (file)
		n = snprintf(prefix, sizeof prefix, "%s: %s", file, kind);
	else
		n = snprintf(prefix, sizeof prefix, "%s", kind);
	if (n < 0)
		return;

	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 16;
		char **nl = realloc(d->lines, ncap * sizeof *nl);
		if (!nl)
			return;
		d->lines = nl;
		d->cap = ncap;
	}
	size_t len = strlen(prefix) + strlen(msg) + 1;
	char *s = malloc(len);
	if (!s)
		return;
	snprintf(s, len, "%s%s", prefix, msg);
	d->lines[d->n++] = s;
}

void diag_error(struct diag *d, const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;

	d->errors++;
	va_start(ap, fmt);
	diag_vadd(d, "", file, line, fmt, ap);
	va_end(ap);
}

void diag_warn(struct diag *d, const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;

	d->warnings++;
	va_start(ap, fmt);
	diag_vadd(d, "warning: ", file, line, fmt, ap);
	va_end(ap);
}

void diag_print(const struct diag *d, FILE *f)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(f, "%s\n", d->lines[i]);
	size_t total = (size_t)d->errors + d->warnings;
	if (total > d->n)
		fprintf(f, "(%zu more messages lost: out of memory)\n", total - d->n);
}

void diag_clear(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	d->lines = NULL;
	d->n = d->cap = 0;
	d->errors = d->warnings = 0;
}
