/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * egressd learn [LOG]...
 *
 * Turns event logs written at `level = all` (audit or enforcing) into a
 * minimal allowlist: one entry per name (ports merged) that a flow used,
 * names that were only resolved, and address:port entries for flows that
 * never had a name. Each entry is commented with what used it and how
 * often. A wildcard is suggested only when at least LEARN_WILDCARD_MIN
 * sibling names were seen under one parent, and never one that covers a
 * public suffix (libpsl) or a multi-tenant one (config/multitenant.list).
 */
#define _GNU_SOURCE
#include "egressd.h"

#include <errno.h>
#include <json-c/json.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEARN_WILDCARD_MIN 4
#define LEARN_MAX_PORTS 16

struct learn_entry {
	char *key;        /* name, or "[addr]" for nameless flows */
	bool is_addr;
	bool dns_only;    /* seen only as a DNS query */
	uint16_t ports[LEARN_MAX_PORTS];
	size_t nports;
	unsigned flows, queries;
	char sources[64]; /* how it was seen: "sni http_host dns" */
	char clients[128];
	bool merged;      /* folded into a wildcard */
};

struct learn {
	struct learn_entry *v;
	size_t n, cap;
	unsigned events, logs, bad_lines;
	unsigned skipped_credential; /* events that carried a credential: left out */
};

static struct learn_entry *learn_get(struct learn *l, const char *key, bool is_addr)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].is_addr == is_addr && strcmp(l->v[i].key, key) == 0)
			return &l->v[i];
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct learn_entry *nv = realloc(l->v, cap * sizeof *nv);
		if (!nv)
			return NULL;
		l->v = nv;
		l->cap = cap;
	}
	struct learn_entry *e = &l->v[l->n];
	memset(e, 0, sizeof *e);
	e->key = strdup(key);
	if (!e->key)
		return NULL;
	e->is_addr = is_addr;
	e->dns_only = true;
	l->n++;
	return e;
}

static void learn_add_word(char *list, size_t cap, const char *word)
{
	if (!word || !*word)
		return;
	size_t wl = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += wl)
		if ((p == list || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\0'))
			return;
	size_t len = strlen(list);
	if (len + wl + 2 > cap)
		return;
	if (len)
		list[len++] = ' ';
	memcpy(list + len, word, wl + 1);
}

static void learn_add_port(struct learn_entry *e, int port)
{
	if (port <= 0 || port > 65535)
		return;
	for (size_t i = 0; i < e->nports; i++)
		if (e->ports[i] == port)
			return;
	if (e->nports < LEARN_MAX_PORTS)
		e->ports[e->nports++] = (uint16_t)port;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int jint(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v))
		return 0;
	return json_object_get_int(v);
}

/* Did the event find a credential? Such a flow is exfiltration, never an entry. */
static bool carries_credential(struct json_object *o)
{
	struct json_object *ind;
	if (!json_object_object_get_ex(o, "indicators", &ind) ||
	    !json_object_is_type(ind, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(ind); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(ind, i));
		if (s && strncmp(s, "credential:", 11) == 0)
			return true;
	}
	return false;
}

static void learn_event(struct learn *l, struct json_object *o)
{
	const char *ev = jstr(o, "event");
	if (!ev)
		return;
	if (carries_credential(o)) {
		l->skipped_credential++;
		return;
	}
	int count = jint(o, "count");
	if (count < 1)
		count = 1;
	const char *client = jstr(o, "src");
	if (strcmp(ev, "dns_allow") == 0 || strcmp(ev, "dns_deny") == 0) {
		const char *q = jstr(o, "qname");
		/* A DNS query that was refused in enforcing mode was never used: skip it. */
		struct json_object *enf;
		if (!q || !*q ||
		    (strcmp(ev, "dns_deny") == 0 && json_object_object_get_ex(o, "enforced", &enf) &&
		     json_object_get_boolean(enf)))
			return;
		struct learn_entry *e = learn_get(l, q, false);
		if (!e)
			return;
		e->queries += (unsigned)count;
		learn_add_word(e->clients, sizeof e->clients, client);
		l->events++;
		return;
	}
	if (strcmp(ev, "allow") != 0 && strcmp(ev, "deny") != 0)
		return;
	/* An enforced deny was a flow that never happened: not something to allow. */
	struct json_object *enf;
	if (strcmp(ev, "deny") == 0 && json_object_object_get_ex(o, "enforced", &enf) &&
	    json_object_get_boolean(enf))
		return;
	const char *name = jstr(o, "name"), *src = jstr(o, "name_source");
	const char *dst = jstr(o, "dst");
	int port = jint(o, "dport");
	struct learn_entry *e;
	if (name && *name) {
		e = learn_get(l, name, false);
	} else if (dst && *dst) {
		e = learn_get(l, dst, true);
		src = "address";
	} else {
		return;
	}
	if (!e)
		return;
	e->dns_only = false;
	e->flows += (unsigned)count;
	learn_add_port(e, port);
	learn_add_word(e->sources, sizeof e->sources, src);
	learn_add_word(e->clients, sizeof e->clients, client);
	l->events++;
}

static int learn_file(struct learn *l, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!f) {
		fprintf(stderr, "egressd learn: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	while (getline(&line, &cap, f) != -1) {
		lineno++;
		if (line[0] == '\n' || line[0] == '\0')
			continue;
		struct json_object *o = json_tokener_parse(line);
		if (!o || !json_object_is_type(o, json_type_object)) {
			if (l->bad_lines++ < 5)
				fprintf(stderr, "egressd learn: %s:%u: not a JSON event, skipped\n",
					path, lineno);
			json_object_put(o);
			continue;
		}
		learn_event(l, o);
		json_object_put(o);
	}
	free(line);
	if (f != stdin)
		fclose(f);
	l->logs++;
	return 0;
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct learn_entry *x = a, *y = b;
	if (x->is_addr != y->is_addr)
		return x->is_addr - y->is_addr;
	return strcmp(x->key, y->key);
}

static void print_ports(FILE *out, const uint16_t *ports, size_t n)
{
	if (n == 0 || (n == 1 && ports[0] == 443))
		return;
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%c%u", i ? ',' : ':', ports[i]);
}

/* Fold >= LEARN_WILDCARD_MIN names below one parent into "*.parent". */
static void learn_wildcards(struct learn *l, const psl_ctx_t *psl, FILE *out)
{
	for (size_t i = 0; i < l->n; i++) {
		struct learn_entry *e = &l->v[i];
		if (e->is_addr || e->merged)
			continue;
		const char *dot = strchr(e->key, '.');
		if (!dot || !strchr(dot + 1, '.'))
			continue; /* never a wildcard at or above a registrable domain's parent */
		const char *parent = dot + 1;
		if (psl && (psl_is_public_suffix(psl, parent) ||
			    !psl_registrable_domain(psl, parent)))
			continue; /* "*.parent" would cover a public suffix */
		char what[NAME_MAX_LEN + 64];
		struct diag dg = {0};
		int shared = allowlist_shared_suffix(parent, what, sizeof what, &dg);
		diag_clear(&dg);
		if (shared)
			continue; /* nor a multi-tenant one: egressd check would refuse it */
		size_t siblings = 0;
		for (size_t j = 0; j < l->n; j++) {
			const char *d = strchr(l->v[j].key, '.');
			if (!l->v[j].is_addr && d && strcmp(d + 1, parent) == 0)
				siblings++;
		}
		if (siblings < LEARN_WILDCARD_MIN)
			continue;
		uint16_t ports[LEARN_MAX_PORTS];
		size_t np = 0;
		unsigned flows = 0, queries = 0;
		fprintf(out, "# %zu names seen below %s:", siblings, parent);
		for (size_t j = 0; j < l->n; j++) {
			struct learn_entry *s = &l->v[j];
			const char *d = strchr(s->key, '.');
			if (s->is_addr || !d || strcmp(d + 1, parent) != 0)
				continue;
			s->merged = true;
			flows += s->flows;
			queries += s->queries;
			fprintf(out, " %s", s->key);
			for (size_t k = 0; k < s->nports; k++) {
				bool have = false;
				for (size_t m = 0; m < np; m++)
					have |= ports[m] == s->ports[k];
				if (!have && np < LEARN_MAX_PORTS)
					ports[np++] = s->ports[k];
			}
		}
		qsort(ports, np, sizeof ports[0], cmp_u16);
		fprintf(out, "\n# %u flows, %u DNS queries\n*.%s", flows, queries, parent);
		print_ports(out, ports, np);
		fputs("\n\n", out);
	}
}

static void learn_usage(FILE *f)
{
	fprintf(f, "usage: egressd learn [LOG]...\n"
		   "\n"
		   "Read egressd event logs written with [log] level = all (in audit or\n"
		   "enforcing mode; \"-\" or no LOG reads stdin) and print a minimal allowlist,\n"
		   "each entry commented with what used it and how often. Review it, then put\n"
		   "it in /etc/egressd/allow.d/.\n");
}

int cmd_learn(int argc, char **argv)
{
	struct learn l = {0};
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			learn_usage(stdout);
			return 0;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "egressd learn: unknown option %s\n", argv[i]);
			learn_usage(stderr);
			return 2;
		}
	}
	if (argc < 2)
		rc |= learn_file(&l, "-");
	for (int i = 1; i < argc; i++)
		rc |= learn_file(&l, argv[i]);
	if (rc != 0)
		goto out;

	qsort(l.v, l.n, sizeof *l.v, cmp_entry);
	const psl_ctx_t *psl = psl_builtin();
	FILE *out = stdout;
	time_t now = time(NULL);
	struct tm tm;
	char day[16] = "";
	if (gmtime_r(&now, &tm))
		strftime(day, sizeof day, "%Y-%m-%d", &tm);
	fprintf(out,
		"# egressd allowlist learned on %s from %u log(s), %u events.\n"
		"# Review every entry before enforcing: it allows what the workload did,\n"
		"# including anything it should not have done.\n\n",
		day, l.logs, l.events);
	if (l.skipped_credential)
		fprintf(out,
			"# %u event(s) carried a credential (see indicators in the log) and were\n"
			"# left out: whatever they reached is exfiltration, not an endpoint to allow.\n\n",
			l.skipped_credential);
	learn_wildcards(&l, psl, out);
	for (size_t i = 0; i < l.n; i++) {
		struct learn_entry *e = &l.v[i];
		if (e->merged)
			continue;
		qsort(e->ports, e->nports, sizeof e->ports[0], cmp_u16);
		if (e->dns_only)
			fprintf(out, "# %s: resolved %u time(s), no connection seen; by %s\n", e->key,
				e->queries, e->clients[0] ? e->clients : "?");
		else
			fprintf(out, "# %s: %u flow(s) (%s), %u DNS queries; by %s\n", e->key,
				e->flows, e->sources[0] ? e->sources : "?", e->queries,
				e->clients[0] ? e->clients : "?");
		if (e->is_addr) {
			bool v6 = strchr(e->key, ':') != NULL;
			fprintf(out, "%s%s%s", v6 ? "[" : "", e->key, v6 ? "]" : "");
			if (e->nports == 1 && e->ports[0] == 443 && v6)
				fputs(":443", out);
			print_ports(out, e->ports, e->nports);
		} else {
			fputs(e->key, out);
			print_ports(out, e->ports, e->nports);
		}
		fputs("\n\n", out);
	}
	if (l.n == 0)
		fputs("# no flows found: was the log written with [log] level = all?\n", out);
out:
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].key);
	free(l.v);
	return rc ? 1 : 0;
}
