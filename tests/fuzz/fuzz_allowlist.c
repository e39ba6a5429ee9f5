/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Allowlist line parser: the input is split into lines, each parsed on its
 * own (allowlist_parse_line) and added to a policy builder, which is then
 * finished and probed with every accepted name and range. A wildcard over
 * a public or multi-tenant suffix must come back refused unless "shared".
 */
#include "../../config/conf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag d = {0};
	struct policy_builder *b = policy_builder_new();
	char line[8192];
	unsigned lineno = 0;
	char names[16][NAME_MAX_LEN + 1];
	size_t nnames = 0;

	if (!b)
		return 0;
	for (size_t off = 0; off < size;) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) : size - off;
		size_t copy = n < sizeof line - 1 ? n : sizeof line - 1;
		memcpy(line, data + off, copy);
		line[copy] = '\0';
		lineno++;
		off += n + 1;

		struct allow_entry e;
		unsigned errors0 = d.errors;
		int rc = allowlist_parse_line(line, "fuzz.list", lineno, &e, &d);
		if ((rc == 0) != (d.errors == errors0))
			abort(); /* an error is reported if and only if it is returned */
		if (rc == 0 && e.kind == ALLOW_NAME) {
			enum name_err why;
			char again[NAME_MAX_LEN + 1];
			/* what the parser produced is a normalised name */
			if (!name_normalize(e.name, strlen(e.name), again, &why) ||
			    strcmp(again, e.name))
				abort();
			if (e.nports < 1 || e.nports > POLICY_MAX_PORTS)
				abort();
			for (size_t i = 1; i < e.nports; i++)
				if (e.ports[i - 1] >= e.ports[i])
					abort();
			if (nnames < 16)
				memcpy(names[nnames++], e.name, sizeof names[0]);
			/* a wildcard anyone can register below is accepted only marked shared */
			char what[NAME_MAX_LEN + 64];
			if (e.wildcard && !e.shared &&
			    allowlist_shared_suffix(e.name, what, sizeof what, &d))
				abort();
		}
		if (rc == 0 && e.shared) {
			size_t tl = strlen(e.text);
			if (e.kind == ALLOW_BLANK || tl < 8 || strcmp(e.text + tl - 7, " shared"))
				abort();
		}
		allowlist_add_line(b, line, "fuzz.list", lineno, &d);
	}
	struct policy *p = policy_builder_finish(b);
	if (p) {
		for (size_t i = 0; i < nnames; i++)
			(void)policy_match_name(p, names[i], 443, NULL);
		policy_free(p);
	}
	diag_clear(&d);
	return 0;
}
