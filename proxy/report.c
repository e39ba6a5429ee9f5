/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * egressd report [LOG]... [-o FILE]
 *
 * One self-contained HTML page from event logs: no network fetch, no script,
 * no font; inline CSS and inline SVG only, and a Content-Security-Policy that
 * forbids everything else, so even a string that escaped our escaping could
 * not load or run anything. Every string that came from a log goes through
 * report_html_escape.
 */
#define _GNU_SOURCE /* timegm */
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPORT_TOP 15      /* rows of the top tables */
#define REPORT_SERIES 6    /* destinations with their own colour on the timeline */
#define REPORT_BUCKETS 48  /* timeline columns */
#define REPORT_BAD_SHOWN 5 /* malformed lines named on stderr */

static const char *const sev_names[REPORT_NSEV] = {"low", "medium", "high", "critical"};

/* ---- the tally ---- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void tally_free(struct report_tally *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].key);
	free(t->v);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

static int tally_rehash(struct report_tally *t, size_t nslot)
{
	size_t *s = calloc(nslot, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		size_t h = (size_t)(fnv1a(t->v[i].key) & (nslot - 1));
		while (s[h])
			h = (h + 1) & (nslot - 1);
		s[h] = i + 1;
	}
	free(t->slot);
	t->slot = s;
	t->nslot = nslot;
	return 0;
}

const struct report_item *report_tally_get(const struct report_tally *t, const char *key)
{
	if (!t->nslot)
		return NULL;
	size_t h = (size_t)(fnv1a(key) & (t->nslot - 1));
	for (; t->slot[h]; h = (h + 1) & (t->nslot - 1))
		if (strcmp(t->v[t->slot[h] - 1].key, key) == 0)
			return &t->v[t->slot[h] - 1];
	return NULL;
}

/* The item for key, created at n = 0; its index in *idx. NULL: out of memory. */
static struct report_item *tally_add(struct report_tally *t, const char *key, uint64_t n,
                                     size_t *idx)
{
	if ((t->n + 1) * 2 > t->nslot && tally_rehash(t, t->nslot ? t->nslot * 2 : 64) < 0)
		return NULL;
	size_t h = (size_t)(fnv1a(key) & (t->nslot - 1));
	for (; t->slot[h]; h = (h + 1) & (t->nslot - 1)) {
		struct report_item *it = &t->v[t->slot[h] - 1];
		if (strcmp(it->key, key) == 0) {
			it->n += n;
			if (idx)
				*idx = t->slot[h] - 1;
			return it;
		}
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		struct report_item *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	struct report_item *it = &t->v[t->n];
	memset(it, 0, sizeof(*it));
	it->key = strdup(key);
	if (!it->key)
		return NULL;
	it->n = n;
	t->slot[h] = ++t->n;
	if (idx)
		*idx = t->n - 1;
	return it;
}

static const struct report_tally *sort_tally;

static int cmp_items(const void *a, const void *b)
{
	const struct report_item *x = &sort_tally->v[*(const size_t *)a];
	const struct report_item *y = &sort_tally->v[*(const size_t *)b];
	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->key, y->key);
}

size_t *report_tally_sorted(const struct report_tally *t)
{
	if (t->n == 0)
		return NULL;
	size_t *ix = malloc(t->n * sizeof(*ix));
	if (!ix)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		ix[i] = i;
	sort_tally = t; /* report is single-threaded */
	qsort(ix, t->n, sizeof(*ix), cmp_items);
	sort_tally = NULL;
	return ix;
}

/* ---- reading events ---- */

void report_init(struct report *r)
{
	memset(r, 0, sizeof(*r));
	r->t_min = 1e300;
	r->t_max = -1e300;
}

void report_free(struct report *r)
{
	if (!r)
		return;
	tally_free(&r->dests);
	tally_free(&r->sources);
	tally_free(&r->qnames);
	tally_free(&r->indicators);
	tally_free(&r->creds);
	tally_free(&r->reasons);
	tally_free(&r->procs);
	free(r->samples);
	report_init(r);
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A non-negative integer field, or def. */
static int64_t jint(struct json_object *o, const char *k, int64_t def)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return def;
	int64_t x = json_object_get_int64(v);
	return x < 0 ? def : x;
}

/* RFC 3339 UTC as log.c writes it ("2026-12-03T13:51:21.123456Z"); false if not. */
static bool parse_ts(const char *s, double *t)
{
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	double frac = 0, scale = 0.1;
	const char *p = s + n;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	if (*p != 'Z' && *p != 'z')
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t tt = timegm(&tm);
	if (tt == (time_t)-1)
		return false;
	*t = (double)tt + frac;
	return true;
}

static enum report_sev sev_of(const char *s)
{
	for (int i = 0; s && i < REPORT_NSEV; i++)
		if (strcmp(s, sev_names[i]) == 0)
			return (enum report_sev)i;
	return REPORT_SEV_LOW;
}

static int add_sample(struct report *r, double t, size_t dest, uint64_t n)
{
	if (r->nsamples == r->capsamples) {
		size_t cap = r->capsamples ? r->capsamples * 2 : 256;
		struct report_sample *s = realloc(r->samples, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		r->samples = s;
		r->capsamples = cap;
	}
	r->samples[r->nsamples++] = (struct report_sample){.t = t, .dest = dest, .n = n};
	return 0;
}

/* The credentials of a deny: its "credentials" list (type and masked form, as
 * logged), else its credential:TYPE indicators. */
static int add_creds(struct report *r, struct json_object *o, uint64_t n)
{
	struct json_object *a;
	char key[512];
	bool any = false;

	if (json_object_object_get_ex(o, "credentials", &a) &&
	    json_object_is_type(a, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *c = json_object_array_get_idx(a, i);
			if (!json_object_is_type(c, json_type_object))
				continue;
			const char *type = jstr(c, "type"), *masked = jstr(c, "masked");
			snprintf(key, sizeof(key), "%s %s", type ? type : "?",
			         masked ? masked : "");
			if (!tally_add(&r->creds, key, n, NULL))
				return -ENOMEM;
			any = true;
		}
	}
	if (any || !json_object_object_get_ex(o, "indicators", &a) ||
	    !json_object_is_type(a, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *s = json_object_array_get_idx(a, i);
		const char *v =
		    json_object_is_type(s, json_type_string) ? json_object_get_string(s) : NULL;
		if (!v || strncmp(v, "credential", 10) != 0)
			continue;
		snprintf(key, sizeof(key), "%s ", v[10] == ':' ? v + 11 : "credential");
		if (!tally_add(&r->creds, key, n, NULL))
			return -ENOMEM;
	}
	return 0;
}

/* The severity and indicators of a deny or dns_deny, and its credentials. */
static int add_indicators(struct report *r, struct json_object *o, uint64_t n)
{
	enum report_sev sev = sev_of(jstr(o, "severity"));
	r->sev[sev] += n;
	struct json_object *a;
	if (json_object_object_get_ex(o, "indicators", &a) &&
	    json_object_is_type(a, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(a); i++) {
			struct json_object *s = json_object_array_get_idx(a, i);
			if (!json_object_is_type(s, json_type_string))
				continue;
			struct report_item *it =
			    tally_add(&r->indicators, json_object_get_string(s), n, NULL);
			if (!it)
				return -ENOMEM;
			it->sev[sev] += n;
		}
	}
	return add_creds(r, o, n);
}

static int add_deny(struct report *r, struct json_object *o, uint64_t n, bool have_t, double t)
{
	const char *name = jstr(o, "name"), *dst = jstr(o, "dst");
	int64_t dport = jint(o, "dport", -1);
	char key[600];
	size_t di;

	if (name && *name)
		snprintf(key, sizeof(key), "%s", name);
	else if (dst && *dst)
		snprintf(key, sizeof(key), strchr(dst, ':') ? "[%s]" : "%s", dst);
	else
		snprintf(key, sizeof(key), "(unknown)");
	if (dport >= 0) {
		size_t l = strlen(key);
		snprintf(key + l, sizeof(key) - l, ":%lld", (long long)dport);
	}
	if (!tally_add(&r->dests, key, n, &di))
		return -ENOMEM;
	if (have_t && add_sample(r, t, di, n) < 0)
		return -ENOMEM;
	/* host mode: the process behind it, as precisely as the log knows it */
	const char *proc = jstr(o, "exe");
	if (!proc || !*proc)
		proc = jstr(o, "unit");
	if (!proc || !*proc)
		proc = jstr(o, "cgroup");
	int64_t uid = jint(o, "uid", -1);
	if (proc && *proc) {
		if (uid >= 0)
			snprintf(key, sizeof(key), "%s (uid %lld)", proc, (long long)uid);
		else
			snprintf(key, sizeof(key), "%s", proc);
	} else if (uid >= 0) {
		snprintf(key, sizeof(key), "uid %lld", (long long)uid);
	} else {
		key[0] = '\0';
	}
	if (key[0] && !tally_add(&r->procs, key, n, NULL))
		return -ENOMEM;
	const char *reason = jstr(o, "reason");
	if (!tally_add(&r->reasons, reason && *reason ? reason : "(none)", n, NULL))
		return -ENOMEM;

	return add_indicators(r, o, n);
}

int report_add_line(struct report *r, const char *line, size_t len)
{
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len)
		return 0;
	r->lines++;

	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return -ENOMEM;
	struct json_object *o =
	    json_tokener_parse_ex(tok, line, (int)(len > INT32_MAX ? INT32_MAX : len));
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	const char *ev = NULL;
	if (o && jerr == json_tokener_success && json_object_is_type(o, json_type_object))
		ev = jstr(o, "event");
	/* trailing bytes after the object: not a line log.c wrote */
	for (size_t k = used; ev && k < len; k++)
		if (line[k] != ' ' && line[k] != '\t')
			ev = NULL;
	if (!ev) {
		json_object_put(o);
		r->malformed++;
		return -EINVAL;
	}
	r->events++;
	/* log.c writes an unsigned count; more is not a line it wrote, and would
	 * let one line overflow the sums */
	uint64_t n = (uint64_t)jint(o, "count", 1);
	if (n < 1 || n > UINT32_MAX)
		n = 1;
	double t = 0;
	bool have_t = parse_ts(jstr(o, "ts"), &t);
	if (have_t) {
		if (t < r->t_min)
			r->t_min = t;
		if (t > r->t_max)
			r->t_max = t;
	}
	int rc = 0;
	bool deny = strcmp(ev, "deny") == 0, dns_deny = strcmp(ev, "dns_deny") == 0;
	if (deny || dns_deny) {
		struct json_object *enf;
		if (json_object_object_get_ex(o, "enforced", &enf) &&
		    json_object_is_type(enf, json_type_boolean) && !json_object_get_boolean(enf))
			r->deny_audit += n;
		const char *src = jstr(o, "src");
		if (src && *src && !tally_add(&r->sources, src, n, NULL))
			rc = -ENOMEM;
	}
	if (rc == 0 && deny) {
		r->deny += n;
		rc = add_deny(r, o, n, have_t, t);
	} else if (rc == 0 && dns_deny) {
		r->dns_deny += n;
		const char *q = jstr(o, "qname");
		if (!tally_add(&r->qnames, q && *q ? q : "(empty)", n, NULL))
			rc = -ENOMEM;
		rc = rc ? rc : add_indicators(r, o, n);
	} else if (strcmp(ev, "allow") == 0) {
		r->allow += n;
	} else if (strcmp(ev, "dns_allow") == 0) {
		r->dns_allow += n;
	} else {
		r->other += n;
	}
	json_object_put(o);
	return rc;
}

int report_read_file(struct report *r, const char *path)
{
	bool std = strcmp(path, "-") == 0;
	FILE *f = std ? stdin : fopen(path, "r");
	if (!f) {
		int e = errno;
		fprintf(stderr, "egressd report: %s: %s\n", path, strerror(e));
		r->files_failed++;
		return -e;
	}
	const char *shown = std ? "(stdin)" : path;
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	unsigned long lineno = 0;
	int rc = 0;
	while ((got = getline(&line, &cap, f)) != -1) {
		lineno++;
		int lrc = report_add_line(r, line, (size_t)got);
		if (lrc == -EINVAL && r->malformed <= REPORT_BAD_SHOWN)
			fprintf(stderr, "egressd report: %s:%lu: not an egressd event, skipped\n",
			        shown, lineno);
		if (lrc == -ENOMEM) {
			fprintf(stderr, "egressd report: %s:%lu: out of memory\n", shown, lineno);
			rc = -ENOMEM;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		rc = -EIO;
		fprintf(stderr, "egressd report: %s: read error\n", shown);
	}
	free(line);
	if (!std)
		fclose(f);
	r->files++;
	return rc;
}

/* ---- HTML ---- */

void report_html_escape(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		unsigned char c = *p;
		if (c == '&')
			fputs("&amp;", out);
		else if (c == '<')
			fputs("&lt;", out);
		else if (c == '>')
			fputs("&gt;", out);
		else if (c == '"')
			fputs("&quot;", out);
		else if (c == '\'')
			fputs("&#39;", out);
		else if (c < 0x20 || c == 0x7f)
			fputs("\xef\xbf\xbd", out);
		else if (c < 0x80)
			fputc(c, out);
		else {
			/* a whole valid UTF-8 sequence (RFC 3629), else U+FFFD for one byte */
			size_t len = c >= 0xc2 && c <= 0xdf   ? 2
			             : c >= 0xe0 && c <= 0xef ? 3
			             : c >= 0xf0 && c <= 0xf4 ? 4
			                                      : 0;
			unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
			unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
			bool ok = len > 0 && p[1] >= lo && p[1] <= hi;
			for (size_t k = 2; ok && k < len; k++)
				ok = p[k] >= 0x80 && p[k] <= 0xbf;
			if (!ok) {
				fputs("\xef\xbf\xbd", out);
				p++;
				continue;
			}
			fwrite(p, 1, len, out);
			p += len;
			continue;
		}
		p++;
	}
}

#define esc report_html_escape

static const char *const series_colors[REPORT_SERIES + 1] = {
    "#d62728", "#1f77b4", "#ff7f0e", "#9467bd", "#2ca02c", "#8c564b", "#7f7f7f"};

static void fmt_time(double t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, cap, "?");
}

static void section(FILE *out, const char *id, const char *title)
{
	fprintf(out, "<section id=\"%s\"><h2>%s</h2>\n", id, title);
}

/* A two-column table of the top items of t. */
static void top_table(FILE *out, const struct report_tally *t, const char *id, const char *title,
                      const char *col, uint64_t total, const char *empty)
{
	section(out, id, title);
	size_t *ix = report_tally_sorted(t);
	if (!ix) {
		fprintf(out, "<p class=\"empty\">%s</p></section>\n", empty);
		return;
	}
	fprintf(out,
	        "<div class=\"scroll\"><table><thead><tr><th>%s</th><th class=\"num\">events</th>"
	        "<th class=\"num\">share</th></tr></thead><tbody>\n",
	        col);
	size_t rows = t->n < REPORT_TOP ? t->n : REPORT_TOP;
	for (size_t i = 0; i < rows; i++) {
		const struct report_item *it = &t->v[ix[i]];
		fputs("<tr><td class=\"key\">", out);
		esc(out, it->key);
		fprintf(out, "</td><td class=\"num\">%llu</td><td class=\"num\">%.1f%%</td></tr>\n",
		        (unsigned long long)it->n,
		        total ? 100.0 * (double)it->n / (double)total : 0.0);
	}
	fputs("</tbody></table></div>\n", out);
	if (t->n > rows)
		fprintf(out, "<p class=\"more\">and %zu more</p>\n", t->n - rows);
	fputs("</section>\n", out);
	free(ix);
}

/*
 * The timeline: REPORT_BUCKETS columns over [t_min, t_max] of the denied
 * flows, stacked by destination (the REPORT_SERIES busiest, then "other").
 */
static void timeline(FILE *out, const struct report *r)
{
	section(out, "timeline", "Denied flows over time");
	size_t *ix = report_tally_sorted(&r->dests);
	if (!ix || r->nsamples == 0) {
		fputs("<p class=\"empty\">No denied flows with a timestamp.</p></section>\n", out);
		free(ix);
		return;
	}
	size_t nser = r->dests.n < REPORT_SERIES ? r->dests.n : REPORT_SERIES;
	bool other = r->dests.n > nser;
	size_t *series_of = malloc(r->dests.n * sizeof(*series_of));
	uint64_t(*cell)[REPORT_SERIES + 1] = calloc(REPORT_BUCKETS, sizeof(*cell));
	if (!series_of || !cell) {
		free(series_of);
		free(cell);
		free(ix);
		fputs("<p class=\"empty\">Out of memory.</p></section>\n", out);
		return;
	}
	for (size_t i = 0; i < r->dests.n; i++)
		series_of[ix[i]] = i < nser ? i : REPORT_SERIES;
	double t0 = r->samples[0].t, t1 = t0;
	for (size_t i = 0; i < r->nsamples; i++) {
		if (r->samples[i].t < t0)
			t0 = r->samples[i].t;
		if (r->samples[i].t > t1)
			t1 = r->samples[i].t;
	}
	double span = t1 - t0 < 1 ? 1 : t1 - t0;
	for (size_t i = 0; i < r->nsamples; i++) {
		size_t b = (size_t)((r->samples[i].t - t0) / span * REPORT_BUCKETS);
		if (b >= REPORT_BUCKETS)
			b = REPORT_BUCKETS - 1;
		cell[b][series_of[r->samples[i].dest]] += r->samples[i].n;
	}
	uint64_t peak = 1;
	for (size_t b = 0; b < REPORT_BUCKETS; b++) {
		uint64_t s = 0;
		for (size_t k = 0; k <= REPORT_SERIES; k++)
			s += cell[b][k];
		if (s > peak)
			peak = s;
	}
	/* viewBox units; the SVG scales to the width of the screen */
	const double W = 720, H = 260, L = 44, R = 8, T = 10, B = 34;
	const double pw = W - L - R, ph = H - T - B, bw = pw / REPORT_BUCKETS;
	char a[64], z[64];
	fmt_time(t0, a, sizeof(a));
	fmt_time(t1, z, sizeof(z));
	fprintf(out,
	        "<svg id=\"timeline-plot\" class=\"plot\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
	        "aria-label=\"denied flows per interval, by destination\">\n"
	        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n"
	        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n"
	        "<text x=\"%.1f\" y=\"%.1f\" class=\"lbl\" text-anchor=\"end\">%llu</text>\n"
	        "<text x=\"%.1f\" y=\"%.1f\" class=\"lbl\" text-anchor=\"end\">0</text>\n"
	        "<text x=\"%.1f\" y=\"%.1f\" class=\"lbl\">%s</text>\n"
	        "<text x=\"%.1f\" y=\"%.1f\" class=\"lbl\" text-anchor=\"end\">%s</text>\n",
	        W, H, L, T, L, T + ph, L, T + ph, L + pw, T + ph, L - 4, T + 10,
	        (unsigned long long)peak, L - 4, T + ph, L, H - 8, a, L + pw, H - 8, z);
	for (size_t b = 0; b < REPORT_BUCKETS; b++) {
		double y = T + ph;
		for (size_t k = 0; k <= REPORT_SERIES; k++) {
			if (!cell[b][k])
				continue;
			double h = ph * (double)cell[b][k] / (double)peak;
			y -= h;
			char when[64];
			fmt_time(t0 + span * (double)b / REPORT_BUCKETS, when, sizeof(when));
			fprintf(out,
			        "<rect class=\"bar s%zu\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
			        "height=\"%.2f\" fill=\"%s\"><title>",
			        k, L + bw * (double)b + 0.5, y, bw - 1 > 0.5 ? bw - 1 : 0.5, h,
			        series_colors[k]);
			if (k < REPORT_SERIES)
				esc(out, r->dests.v[ix[k]].key);
			else
				fputs("other destinations", out);
			fprintf(out, ": %llu from %s</title></rect>\n",
			        (unsigned long long)cell[b][k], when);
		}
	}
	fputs("</svg>\n<ul class=\"legend\">\n", out);
	for (size_t k = 0; k < nser; k++) {
		fprintf(out, "<li><span class=\"sw\" style=\"background:%s\"></span>",
		        series_colors[k]);
		esc(out, r->dests.v[ix[k]].key);
		fprintf(out, " <span class=\"cnt\">%llu</span></li>\n",
		        (unsigned long long)r->dests.v[ix[k]].n);
	}
	if (other)
		fprintf(out,
		        "<li><span class=\"sw\" style=\"background:%s\"></span>%zu other "
		        "destinations</li>\n",
		        series_colors[REPORT_SERIES], r->dests.n - nser);
	fprintf(out, "</ul><p class=\"more\">%d intervals of %.0f s each.</p></section>\n",
	        REPORT_BUCKETS, span / REPORT_BUCKETS < 1 ? 1 : span / REPORT_BUCKETS);
	free(series_of);
	free(cell);
	free(ix);
}

/* The allowed / denied bar: flows and DNS queries. */
static void ratio_row(FILE *out, const char *what, uint64_t allow, uint64_t deny)
{
	uint64_t tot = allow + deny;
	double pa = tot ? 100.0 * (double)allow / (double)tot : 0;
	fprintf(out,
	        "<div class=\"ratio\"><div class=\"rlabel\">%s: <b>%llu</b> allowed, <b>%llu</b> "
	        "denied%s</div>\n<div class=\"rbar\"><div class=\"rallow\" style=\"width:%.2f%%\">"
	        "</div><div class=\"rdeny\" style=\"width:%.2f%%\"></div></div></div>\n",
	        what, (unsigned long long)allow, (unsigned long long)deny, tot ? "" : " (none)",
	        tot ? pa : 0, tot ? 100 - pa : 0);
}

static const char css[] =
    ":root{color-scheme:light dark;--fg:#1b1b1b;--bg:#fff;--mut:#666;--line:#ddd;--card:#f6f6f6}"
    "@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--bg:#121212;--mut:#aaa;--line:#333;"
    "--card:#1d1d1d}}"
    "*{box-sizing:border-box}"
    "body{margin:0 auto;max-width:960px;padding:12px;font:15px/1.45 system-ui,-apple-system,"
    "'Segoe UI',Roboto,sans-serif;color:var(--fg);background:var(--bg)}"
    "h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}"
    "section{background:var(--card);border-radius:8px;padding:8px 12px;margin:10px 0}"
    ".scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);"
    "vertical-align:top}"
    "td.key{word-break:break-all;font-family:ui-monospace,monospace;font-size:.92em}"
    ".num{text-align:right;white-space:nowrap}"
    ".empty,.more,.meta{color:var(--mut)}"
    ".cards{display:flex;flex-wrap:wrap;gap:8px}"
    ".card{flex:1 1 130px;background:var(--bg);border:1px solid var(--line);border-radius:6px;"
    "padding:6px 10px}.card b{display:block;font-size:1.4em}"
    "svg.plot{width:100%;height:auto;display:block}"
    "svg .axis{stroke:var(--mut);stroke-width:1}svg .lbl{fill:var(--mut);font-size:15px}"
    ".legend{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:4px 14px}"
    ".legend li{word-break:break-all;font-family:ui-monospace,monospace;font-size:.9em}"
    ".sw{display:inline-block;width:.9em;height:.9em;border-radius:2px;margin-right:4px;"
    "vertical-align:-.1em}.cnt{color:var(--mut)}"
    ".ratio{margin:6px 0}.rbar{display:flex;height:14px;border-radius:7px;overflow:hidden;"
    "background:var(--line)}.rallow{background:#2ca02c}.rdeny{background:#d62728}"
    ".sev-critical{color:#b00020;font-weight:700}.sev-high{color:#d62728}"
    ".sev-medium{color:#c77c00}"
    "@media (max-width:600px){body{padding:6px;font-size:14px}section{padding:6px 8px}"
    "th,td{padding:3px 4px}}";

int report_render(const struct report *r, FILE *out)
{
	char a[64] = "", z[64] = "";
	bool have_t = r->t_min <= r->t_max;
	if (have_t) {
		fmt_time(r->t_min, a, sizeof(a));
		fmt_time(r->t_max, z, sizeof(z));
	}
	fprintf(out,
	        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	        "style-src 'unsafe-inline'\">\n"
	        "<meta name=\"referrer\" content=\"no-referrer\">\n"
	        "<title>egressd report</title>\n<style>%s</style></head>\n<body>\n"
	        "<header><h1>egressd report</h1><p class=\"meta\" id=\"period\">",
	        css);
	if (have_t)
		fprintf(out, "%s &ndash; %s", a, z);
	else
		fputs("no timestamps", out);
	fprintf(out, " &middot; %u log(s), %llu event(s)%s</p></header>\n", r->files,
	        (unsigned long long)r->events, r->malformed ? ", some lines skipped" : "");
	if (r->malformed)
		fprintf(out,
		        "<p class=\"meta\" id=\"malformed\">%llu malformed line(s) skipped.</p>\n",
		        (unsigned long long)r->malformed);

	section(out, "summary", "Summary");
	fprintf(out,
	        "<div class=\"cards\">"
	        "<div class=\"card\" id=\"n-deny\">denied flows<b>%llu</b></div>"
	        "<div class=\"card\" id=\"n-allow\">allowed flows<b>%llu</b></div>"
	        "<div class=\"card\" id=\"n-dns-deny\">refused DNS queries<b>%llu</b></div>"
	        "<div class=\"card\" id=\"n-dests\">denied destinations<b>%zu</b></div>"
	        "<div class=\"card\" id=\"n-sources\">sources<b>%zu</b></div>"
	        "<div class=\"card\" id=\"n-critical\">critical<b>%llu</b></div>"
	        "</div>\n",
	        (unsigned long long)r->deny, (unsigned long long)r->allow,
	        (unsigned long long)r->dns_deny, r->dests.n, r->sources.n,
	        (unsigned long long)r->sev[REPORT_SEV_CRITICAL]);
	if (r->deny_audit)
		fprintf(out,
		        "<p class=\"meta\">%llu of the denials were in audit mode "
		        "(enforced = false): logged, not blocked.</p>\n",
		        (unsigned long long)r->deny_audit);
	fputs("</section>\n", out);

	section(out, "ratio", "Allowed and denied");
	ratio_row(out, "Flows", r->allow, r->deny);
	ratio_row(out, "DNS queries", r->dns_allow, r->dns_deny);
	if (r->allow == 0 && r->dns_allow == 0)
		fputs("<p class=\"meta\">No allowed events: they are logged only with "
		      "[log] level = all.</p>\n",
		      out);
	fputs("</section>\n", out);

	timeline(out, r);
	top_table(out, &r->dests, "top-destinations", "Top denied destinations", "destination",
	          r->deny, "No denied flows.");
	top_table(out, &r->sources, "top-sources", "Top sources of denials", "source",
	          r->deny + r->dns_deny, "No sources.");
	if (r->procs.n)
		top_table(out, &r->procs, "top-processes", "Top processes behind denials",
		          "process", r->deny, "");
	top_table(out, &r->qnames, "dns-denied", "Top refused DNS names", "name", r->dns_deny,
	          "No refused DNS queries.");
	top_table(out, &r->reasons, "reasons", "Deny reasons", "reason", r->deny,
	          "No denied flows.");

	section(out, "indicators", "Indicators by severity");
	fputs("<div class=\"scroll\"><table id=\"severity-table\"><thead><tr><th>severity</th>"
	      "<th class=\"num\">denials</th></tr></thead><tbody>\n",
	      out);
	for (int s = REPORT_NSEV - 1; s >= 0; s--)
		fprintf(out, "<tr class=\"sev-%s\"><td>%s</td><td class=\"num\">%llu</td></tr>\n",
		        sev_names[s], sev_names[s], (unsigned long long)r->sev[s]);
	fputs("</tbody></table></div>\n", out);
	size_t *ix = report_tally_sorted(&r->indicators);
	if (!ix) {
		fputs("<p class=\"empty\">No indicators.</p>\n", out);
	} else {
		fputs("<div class=\"scroll\"><table id=\"indicator-table\"><thead><tr>"
		      "<th>indicator</th>",
		      out);
		for (int s = REPORT_NSEV - 1; s >= 0; s--)
			fprintf(out, "<th class=\"num sev-%s\">%s</th>", sev_names[s],
			        sev_names[s]);
		fputs("<th class=\"num\">total</th></tr></thead><tbody>\n", out);
		for (size_t i = 0; i < r->indicators.n; i++) {
			const struct report_item *it = &r->indicators.v[ix[i]];
			fputs("<tr><td class=\"key\">", out);
			esc(out, it->key);
			fputs("</td>", out);
			for (int s = REPORT_NSEV - 1; s >= 0; s--)
				fprintf(out, "<td class=\"num\">%llu</td>",
				        (unsigned long long)it->sev[s]);
			fprintf(out, "<td class=\"num\">%llu</td></tr>\n",
			        (unsigned long long)it->n);
		}
		fputs("</tbody></table></div>\n", out);
		free(ix);
	}
	fputs("</section>\n", out);

	section(out, "credentials", "Credentials seen (masked as logged)");
	ix = report_tally_sorted(&r->creds);
	if (!ix) {
		fputs("<p class=\"empty\">No credentials detected.</p>\n", out);
	} else {
		fputs("<div class=\"scroll\"><table><thead><tr><th>type</th><th>masked</th>"
		      "<th class=\"num\">events</th></tr></thead><tbody>\n",
		      out);
		for (size_t i = 0; i < r->creds.n; i++) {
			const struct report_item *it = &r->creds.v[ix[i]];
			const char *sp = strchr(it->key, ' ');
			size_t tl = sp ? (size_t)(sp - it->key) : strlen(it->key);
			char type[256];
			snprintf(type, sizeof(type), "%.*s", (int)(tl < 255 ? tl : 255), it->key);
			fputs("<tr><td class=\"key\">", out);
			esc(out, type);
			fputs("</td><td class=\"key\">", out);
			esc(out, sp && sp[1] ? sp + 1 : "");
			fprintf(out, "</td><td class=\"num\">%llu</td></tr>\n",
			        (unsigned long long)it->n);
		}
		fputs("</tbody></table></div>\n", out);
		free(ix);
	}
	fputs("</section>\n", out);

	fprintf(out,
	        "<footer class=\"meta\"><p>egressd %s &middot; self-contained: this page "
	        "loads nothing.</p></footer>\n</body></html>\n",
	        EGRESSD_VERSION);
	if (fflush(out) == EOF || ferror(out))
		return -EIO;
	return 0;
}

/* ---- the command ---- */

static void report_usage(FILE *f)
{
	fprintf(f, "Usage: egressd report [LOG]... [-o FILE]\n"
	           "\n"
	           "Read egressd event logs (JSON lines; \"-\" or no LOG reads stdin) and write\n"
	           "one self-contained HTML page: a timeline of denied flows by destination,\n"
	           "the top destinations and sources, indicators by severity, the credential\n"
	           "types detected (masked, as logged) and the allow/deny ratio. The page\n"
	           "loads nothing from the network and runs no script.\n"
	           "Malformed lines are skipped and reported on stderr (FILE:LINE).\n"
	           "Exit status: 0 written, 1 nothing could be read or written, 2 usage error.\n"
	           "\n"
	           "  -o, --output FILE   write the page to FILE (default: stdout)\n"
	           "  -h, --help          this text\n"
	           "\n"
	           "Example: egressd report /var/log/egressd/events.json -o report.html\n");
}

int cmd_report(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *outpath = NULL;
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:h", lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			outpath = optarg;
			break;
		case 'h':
			report_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "egressd report: option '%s' needs an argument\n",
			        argv[optind - 1]);
			fputs("Try 'egressd report --help'.\n", stderr);
			return 2;
		default:
			fprintf(stderr, "egressd report: unknown option '%s'\n", argv[optind - 1]);
			fputs("Try 'egressd report --help'.\n", stderr);
			return 2;
		}
	}
	struct report r;
	report_init(&r);
	int rc = 0;
	if (optind >= argc)
		rc = report_read_file(&r, "-");
	for (int i = optind; i < argc && rc != -ENOMEM; i++) {
		int frc = report_read_file(&r, argv[i]);
		if (frc == -ENOMEM || frc == -EIO)
			rc = frc;
	}
	if (r.malformed)
		fprintf(stderr, "egressd report: %llu of %llu line(s) malformed and skipped%s\n",
		        (unsigned long long)r.malformed, (unsigned long long)r.lines,
		        r.malformed > REPORT_BAD_SHOWN ? " (the first ones named above)" : "");
	if (rc == -ENOMEM || r.files == 0 || (r.lines > 0 && r.events == 0)) {
		fprintf(stderr, "egressd report: nothing could be read, no report written\n");
		report_free(&r);
		return 1;
	}
	FILE *out = outpath && strcmp(outpath, "-") != 0 ? fopen(outpath, "w") : stdout;
	if (!out) {
		fprintf(stderr, "egressd report: %s: %s\n", outpath, strerror(errno));
		report_free(&r);
		return 1;
	}
	int wrc = report_render(&r, out);
	if (out != stdout && fclose(out) == EOF)
		wrc = -EIO;
	if (wrc < 0)
		fprintf(stderr, "egressd report: %s: write failed\n", outpath ? outpath : "stdout");
	else if (outpath)
		fprintf(stderr, "egressd report: %llu event(s) from %u log(s) -> %s\n",
		        (unsigned long long)r.events, r.files, outpath);
	report_free(&r);
	return wrc < 0 ? 1 : 0;
}
