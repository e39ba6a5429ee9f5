/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_NFQ_ERRF_H
#define EGRESSD_NFQ_ERRF_H
/* Format a message into a caller's error buffer (err may be NULL). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#endif
