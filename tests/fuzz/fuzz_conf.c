/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * egressd.conf parser: the input becomes a memfd read by path, so conf_load
 * runs exactly as for a real file (libinih reader, line counting, checks).
 * Policies are built only from "preset:" items: other allow items are file
 * system paths and globs the fuzzer must not roam.
 */
#define _GNU_SOURCE
#include "../../config/conf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct diag d = {0};
	struct conf *c = NULL;
	int fd = memfd_create("fuzz-conf", MFD_CLOEXEC);

	if (fd == -1)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t w = write(fd, data + off, size - off);
		if (w == -1)
			abort();
		off += (size_t)w;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (conf_load(path, &c, &d) == 0) {
		if (!c || d.errors)
			abort(); /* success means no error and a config */
		bool presets_only = true;
		for (size_t i = 0; i < c->nallow; i++)
			presets_only = presets_only && !strncmp(c->allow[i], "preset:", 7);
		if (presets_only)
			policy_free(conf_load_policy(c, &d));
		conf_free(c);
	} else if (c || !d.errors) {
		abort(); /* failure means an error and nothing returned */
	}
	diag_clear(&d);
	close(fd);
	return 0;
}
