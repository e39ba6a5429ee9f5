/*
 * egressd status (issue 13): scrape the metrics endpoint ([metrics] listen,
 * loopback) with a tiny HTTP/1.0 GET, parse the Prometheus text, and show one
 * screen: flows/s allowed and denied (rate between two scrapes), top deny
 * reasons, DNS queries, queue drops, bindings, per-worker packets. Refreshes
 * every --interval seconds with an ANSI clear/redraw (q or Ctrl-C quits and
 * restores the terminal), or prints once (--once) for scripts.
 */
#define _GNU_SOURCE
#include "status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../config/conf.h"

#include <json-c/json.h>

/* ---- parsing ---- */

struct label { char k[32]; char v[64]; };

static bool name_ch(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* One sample line [p, e). 0 or -1 (malformed: skipped by the caller). */
static int parse_line(const char *p, const char *e, char *name, size_t nlen,
                      struct label *lab, size_t *nlab, size_t maxlab, double *val)
{
	size_t n = 0;
	*nlab = 0;
	if (p >= e || !name_ch(*p, true))
		return -1;
	while (p < e && name_ch(*p, n == 0)) {
		if (n + 1 >= nlen)
			return -1;
		name[n++] = *p++;
	}
	name[n] = '\0';
	if (p < e && *p == '{') {
		p++;
		for (;;) {
			while (p < e && (*p == ' ' || *p == ','))
				p++;
			if (p < e && *p == '}') {
				p++;
				break;
			}
			struct label dummy, *l = *nlab < maxlab ? &lab[*nlab] : &dummy;
			size_t k = 0;
			while (p < e && name_ch(*p, k == 0)) {
				if (k + 1 < sizeof(l->k))
					l->k[k++] = *p;
				p++;
			}
			l->k[k] = '\0';
			if (k == 0 || p + 1 >= e || *p != '=' || p[1] != '"')
				return -1;
			p += 2;
			size_t v = 0;
			for (;;) {
				if (p >= e)
					return -1;
				char c = *p++;
				if (c == '"')
					break;
				if (c == '\\') {
					if (p >= e)
						return -1;
					c = *p++;
					if (c == 'n')
						c = '\n';
				}
				if (v + 1 < sizeof(l->v))
					l->v[v++] = c;
			}
			l->v[v] = '\0';
			if (l != &dummy)
				(*nlab)++;
		}
	}
	if (p >= e || (*p != ' ' && *p != '\t'))
		return -1;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	char num[64];
	size_t m = 0;
	while (p < e && *p != ' ' && *p != '\t' && *p != '\r') {
		if (m + 1 >= sizeof(num))
			return -1;
		num[m++] = *p++;
	}
	num[m] = '\0';
	char *end;
	errno = 0;
	double d = strtod(num, &end);
	if (m == 0 || *end || errno == ERANGE)
		return -1;
	*val = d;
	return 0;
}

static const char *label(const struct label *lab, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(lab[i].k, k) == 0)
			return lab[i].v;
	return NULL;
}

static uint64_t u64(double d)
{
	if (!(d >= 0)) /* NaN, negative */
		return 0;
	if (d >= 1.8e19)
		return UINT64_MAX;
	return (uint64_t)d;
}

int status_parse(const char *text, size_t len, struct status_snap *s)
{
	double t = s->t;
	memset(s, 0, offsetof(struct status_snap, names));
	s->t = t;
	bool any = false;
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		char name[128];
		struct label lab[8];
		size_t nlab;
		double v;
		if (*p != '#' && parse_line(p, e, name, sizeof(name), lab, &nlab, 8, &v) == 0 &&
		    strncmp(name, "egressd_", 8) == 0) {
			const char *n = name + 8, *d;
			any = true;
			if (strcmp(n, "build_info") == 0 && (d = label(lab, nlab, "version")))
				snprintf(s->version, sizeof(s->version), "%.31s", d);
			else if (strcmp(n, "flows_total") == 0 && (d = label(lab, nlab, "decision"))) {
				const char *r = label(lab, nlab, "reason");
				if (strcmp(d, "allow") == 0)
					s->allow += u64(v);
				else if (strcmp(d, "deny") == 0) {
					s->deny += u64(v);
					r = r && *r ? r : "(none)";
					size_t i;
					for (i = 0; i < s->nreasons; i++)
						if (strcmp(s->reasons[i].reason, r) == 0)
							break;
					if (i == s->nreasons && i < STATUS_MAX_REASONS) {
						snprintf(s->reasons[i].reason, sizeof(s->reasons[i].reason),
						         "%.39s", r);
						s->nreasons++;
					}
					if (i < s->nreasons)
						s->reasons[i].n += u64(v);
				}
			} else if (strcmp(n, "dns_queries_total") == 0 &&
			           (d = label(lab, nlab, "decision"))) {
				if (strcmp(d, "allow") == 0)
					s->dns_allow += u64(v);
				else if (strcmp(d, "deny") == 0)
					s->dns_deny += u64(v);
				else if (strcmp(d, "fail") == 0)
					s->dns_fail += u64(v);
			} else if (strcmp(n, "queue_dropped_total") == 0)
				s->queue_dropped = u64(v);
			else if (strcmp(n, "bindings") == 0)
				s->bindings = u64(v);
			else if (strcmp(n, "flows_tracked") == 0)
				s->flows_tracked = u64(v);
			else if (strcmp(n, "log_dropped_total") == 0)
				s->log_dropped = u64(v);
			else if (strcmp(n, "worker_packets_total") == 0 &&
			         (d = label(lab, nlab, "worker"))) {
				char *x;
				unsigned long w = strtoul(d, &x, 10);
				if (*d && !*x && w < STATUS_MAX_WORKERS) {
					s->workers[w] = u64(v);
					if (w + 1 > s->nworkers)
						s->nworkers = (unsigned)w + 1;
				}
			}
		}
		p = nl ? nl + 1 : end;
	}
	return any ? 0 : -EINVAL;
}

static void count_name(struct status_snap *s, const char *name)
{
	size_t i;
	for (i = 0; i < s->nnames; i++)
		if (strcmp(s->names[i].name, name) == 0)
			break;
	if (i == s->nnames) {
		if (i == STATUS_MAX_NAMES)
			return;
		snprintf(s->names[i].name, sizeof(s->names[i].name), "%.63s", name);
		s->nnames++;
	}
	s->names[i].n++;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int status_log_names(const char *path, size_t tail, struct status_snap *s)
{
	s->nnames = 0;
	snprintf(s->log_src, sizeof(s->log_src), "%.150s", path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	off_t from = end > (off_t)tail ? end - (off_t)tail : 0;
	size_t want = (size_t)(end - from), got = 0;
	char *b = malloc(want + 1);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	while (got < want) {
		ssize_t r = pread(fd, b + got, want - got, from + (off_t)got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	b[got] = '\0';
	char *p = b, *e = b + got;
	if (from > 0) { /* skip the partial first line */
		char *nl = memchr(p, '\n', got);
		p = nl ? nl + 1 : e;
	}
	while (p < e) {
		char *nl = memchr(p, '\n', (size_t)(e - p));
		if (!nl)
			break; /* a line still being written */
		*nl = '\0';
		struct json_object *o = json_tokener_parse(p);
		if (o && json_object_is_type(o, json_type_object)) {
			const char *ev = jstr(o, "event"), *n = NULL;
			if (ev && strcmp(ev, "deny") == 0) {
				n = jstr(o, "name");
				if (!n || !*n)
					n = jstr(o, "dst");
			} else if (ev && strcmp(ev, "dns_deny") == 0)
				n = jstr(o, "qname");
			if (n && *n)
				count_name(s, n);
		}
		json_object_put(o);
		p = nl + 1;
	}
	free(b);
	return 0;
}

static double rate(uint64_t a, uint64_t b, double dt)
{
	return (double)(b >= a ? b - a : b) / dt;
}

void status_rates(const struct status_snap *prev, const struct status_snap *cur,
                  struct status_rates *r)
{
	memset(r, 0, sizeof(*r));
	if (!prev || !(cur->t - prev->t > 0))
		return;
	double dt = cur->t - prev->t;
	r->have = 1;
	r->allow_ps = rate(prev->allow, cur->allow, dt);
	r->deny_ps = rate(prev->deny, cur->deny, dt);
	r->dns_ps = rate(prev->dns_allow + prev->dns_deny + prev->dns_fail,
	                 cur->dns_allow + cur->dns_deny + cur->dns_fail, dt);
	for (unsigned i = 0; i < cur->nworkers; i++)
		r->worker_ps[i] = rate(i < prev->nworkers ? prev->workers[i] : 0, cur->workers[i], dt);
}

/* ---- rendering ---- */

struct out {
	char *b;
	size_t cap, len;
	unsigned width, height, lines;
};

static void line(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct out *o, const char *fmt, ...)
{
	if (o->height && o->lines >= o->height)
		return;
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t l = strlen(tmp);
	if (o->width && l > o->width)
		l = o->width;
	if (o->len + l + 2 > o->cap)
		return;
	memcpy(o->b + o->len, tmp, l);
	o->len += l;
	o->b[o->len++] = '\n';
	o->b[o->len] = '\0';
	o->lines++;
}

static void ps(char *b, size_t n, const struct status_rates *r, double v)
{
	if (r->have)
		snprintf(b, n, "%.1f/s", v);
	else
		snprintf(b, n, "-/s");
}

size_t status_render(char *buf, size_t cap, unsigned width, unsigned height, const char *src,
                     const struct status_snap *prev, const struct status_snap *s)
{
	struct out o = {buf, cap, 0, width, height, 0};
	struct status_rates r;
	char a[32], d[32];
	if (cap)
		buf[0] = '\0';
	status_rates(prev, s, &r);
	line(&o, "egressd %s  %s", *s->version ? s->version : "?", src ? src : "");
	line(&o, "%s", "");
	line(&o, "FLOWS");
	ps(a, sizeof(a), &r, r.allow_ps);
	ps(d, sizeof(d), &r, r.deny_ps);
	line(&o, "  allowed  %-10s total %llu", a, (unsigned long long)s->allow);
	line(&o, "  denied   %-10s total %llu", d, (unsigned long long)s->deny);
	line(&o, "  tracked  %llu", (unsigned long long)s->flows_tracked);
	line(&o, "%s", "");
	line(&o, "TOP DENY REASONS");
	/* Sort the nonzero reasons by count (small n: selection). */
	bool used[STATUS_MAX_REASONS] = {false};
	unsigned shown = 0;
	for (unsigned k = 0; k < 5; k++) {
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < s->nreasons; i++)
			if (!used[i] && s->reasons[i].n &&
			    (best == SIZE_MAX || s->reasons[i].n > s->reasons[best].n))
				best = i;
		if (best == SIZE_MAX)
			break;
		used[best] = true;
		line(&o, "  %-22s %llu", s->reasons[best].reason,
		     (unsigned long long)s->reasons[best].n);
		shown++;
	}
	if (!shown)
		line(&o, "  (none)");
	if (*s->log_src) {
		line(&o, "%s", "");
		line(&o, "TOP DENIED NAMES (last %u KiB of %s)", STATUS_LOG_TAIL >> 10, s->log_src);
		bool nused[STATUS_MAX_NAMES] = {false};
		shown = 0;
		for (unsigned k = 0; k < 5; k++) {
			size_t best = SIZE_MAX;
			for (size_t i = 0; i < s->nnames; i++)
				if (!nused[i] && (best == SIZE_MAX || s->names[i].n > s->names[best].n))
					best = i;
			if (best == SIZE_MAX)
				break;
			nused[best] = true;
			line(&o, "  %-40s %llu", s->names[best].name, (unsigned long long)s->names[best].n);
			shown++;
		}
		if (!shown)
			line(&o, "  (none)");
	}
	line(&o, "%s", "");
	ps(a, sizeof(a), &r, r.dns_ps);
	line(&o, "DNS      %-10s allow %llu  deny %llu  fail %llu", a,
	     (unsigned long long)s->dns_allow, (unsigned long long)s->dns_deny,
	     (unsigned long long)s->dns_fail);
	line(&o, "QUEUE    dropped %llu  log dropped %llu", (unsigned long long)s->queue_dropped,
	     (unsigned long long)s->log_dropped);
	line(&o, "BINDINGS %llu", (unsigned long long)s->bindings);
	line(&o, "%s", "");
	line(&o, "WORKERS  %u", s->nworkers);
	for (unsigned i = 0; i < s->nworkers; i++) {
		ps(a, sizeof(a), &r, r.worker_ps[i]);
		line(&o, "  worker %-3u %-10s packets %llu", i, a, (unsigned long long)s->workers[i]);
	}
	return o.len;
}

/* ---- HTTP ---- */

static char log_path[4096]; /* [log] file of the config, "" = none or stdout */


struct url {
	char host[64];
	char port[8];
	char path[128];
};

static int parse_url(const char *u, struct url *o)
{
	if (strncmp(u, "http://", 7) != 0)
		return -EINVAL;
	u += 7;
	const char *h = u, *he;
	if (*u == '[') {
		h = ++u;
		he = strchr(u, ']');
		if (!he)
			return -EINVAL;
		u = he + 1;
	} else {
		he = u + strcspn(u, ":/");
		u = he;
	}
	if ((size_t)(he - h) >= sizeof(o->host) || he == h)
		return -EINVAL;
	memcpy(o->host, h, (size_t)(he - h));
	o->host[he - h] = '\0';
	snprintf(o->port, sizeof(o->port), "80");
	if (*u == ':') {
		size_t n = strspn(u + 1, "0123456789");
		if (n == 0 || n >= sizeof(o->port))
			return -EINVAL;
		memcpy(o->port, u + 1, n);
		o->port[n] = '\0';
		u += 1 + n;
	}
	if (*u && *u != '/')
		return -EINVAL;
	snprintf(o->path, sizeof(o->path), "%s", *u ? u : "/metrics");
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define STATUS_MAX_BODY (4u << 20)

/* GET url; the body in *body (malloc'd). 0 or -1 with err set. Bounded: 2 s, 4 MiB. */
static int http_get(const struct url *u, char **body, size_t *blen, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
	int rc = getaddrinfo(u->host, u->port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "bad address: %s", gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	char *b = NULL;
	size_t len = 0, cap = 0;
	double deadline = now() + 2.0;
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 && errno != EINPROGRESS) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto fail;
	}
	struct pollfd pf = {.fd = fd, .events = POLLOUT};
	if (poll(&pf, 1, 2000) != 1) {
		snprintf(err, errlen, "connect timed out");
		goto fail;
	}
	int soerr = 0;
	socklen_t sl = sizeof(soerr);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	if (soerr) {
		snprintf(err, errlen, "%s", strerror(soerr));
		goto fail;
	}
	char req[256];
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: egressd-status\r\n\r\n", u->path,
	                 u->host);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		snprintf(err, errlen, "send: %s", strerror(errno));
		goto fail;
	}
	for (;;) {
		double left = deadline - now();
		pf.events = POLLIN;
		if (left <= 0 || poll(&pf, 1, (int)(left * 1000) + 1) != 1) {
			snprintf(err, errlen, "read timed out");
			goto fail;
		}
		if (cap - len < 4096) {
			if (cap >= STATUS_MAX_BODY) {
				snprintf(err, errlen, "answer larger than %u bytes", STATUS_MAX_BODY);
				goto fail;
			}
			cap = cap ? cap * 2 : 16384;
			char *nb = realloc(b, cap + 1);
			if (!nb) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			b = nb;
		}
		ssize_t r = recv(fd, b + len, cap - len, 0);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			snprintf(err, errlen, "recv: %s", strerror(errno));
			goto fail;
		}
		len += (size_t)r;
	}
	if (!b) {
		snprintf(err, errlen, "empty answer");
		goto fail;
	}
	b[len] = '\0';
	char *hend = strstr(b, "\r\n\r\n");
	if (strncmp(b, "HTTP/1.", 7) != 0 || !hend || len < 12) {
		snprintf(err, errlen, "not an HTTP answer");
		goto fail;
	}
	if (strncmp(b + 8, " 200", 4) != 0) {
		char *eol = strstr(b, "\r\n");
		snprintf(err, errlen, "HTTP %.*s", (int)(eol - b - 9), b + 9);
		goto fail;
	}
	size_t off = (size_t)(hend + 4 - b);
	memmove(b, b + off, len - off + 1);
	*body = b;
	*blen = len - off;
	close(fd);
	freeaddrinfo(ai);
	return 0;
fail:
	free(b);
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return -1;
}

static int scrape(const struct url *u, struct status_snap *s, char *err, size_t errlen)
{
	char *body;
	size_t blen;
	if (http_get(u, &body, &blen, err, errlen) != 0)
		return -1;
	s->t = now();
	int rc = status_parse(body, blen, s);
	free(body);
	if (rc == 0 && *log_path)
		status_log_names(log_path, STATUS_LOG_TAIL, s);
	if (rc != 0) {
		snprintf(err, errlen, "no egressd metrics in the answer");
		return -1;
	}
	return 0;
}

/* ---- the command ---- */

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void help_status(FILE *f)
{
	fprintf(f, "Usage: egressd status [-c FILE] [--url URL] [--interval S] [--once]\n"
	           "\n"
	           "Show egressd's metrics on one screen: flows/s allowed and denied, the top\n"
	           "deny reasons, DNS queries, queue drops, bindings and per-worker packets;\n"
	           "the top denied names from the last 256 KiB of the config's event log.\n"
	           "Refreshes every interval; q or Ctrl-C quits. The endpoint is [metrics]\n"
	           "listen of the configuration (default 127.0.0.1:9469).\n"
	           "\n"
	           "  -c, --config FILE   read the metrics address from FILE (default "
	           CONF_DEFAULT_PATH ")\n"
	           "      --url URL       scrape URL instead (http://127.0.0.1:PORT/metrics)\n"
	           "  -i, --interval S    seconds between scrapes (default 1; 0.1 .. 3600)\n"
	           "      --once          two scrapes one interval apart, plain text, then exit\n"
	           "  -h, --help          this text\n"
	           "\n"
	           "Exit status: 0 ok, 1 endpoint unreachable or configuration error, 2 usage.\n");
}

static int url_from_conf(const char *path, bool explicit_path, struct url *u)
{
	if (!explicit_path && access(path, R_OK) != 0) {
		snprintf(u->host, sizeof(u->host), "127.0.0.1");
		snprintf(u->port, sizeof(u->port), "%u", 9469u);
		snprintf(u->path, sizeof(u->path), "/metrics");
		return 0;
	}
	struct diag dg;
	struct conf *c;
	memset(&dg, 0, sizeof(dg));
	if (conf_load(path, &c, &dg) != 0) {
		diag_print(&dg, stderr);
		diag_clear(&dg);
		fprintf(stderr, "egressd status: cannot read %s\n", path);
		return -1;
	}
	diag_clear(&dg);
	if (!c->metrics_enabled) {
		fprintf(stderr, "egressd status: metrics are off in %s ([metrics] listen); "
		                "turn them on or pass --url\n", path);
		conf_free(c);
		return -1;
	}
	if (c->log_file && strcmp(c->log_file, "-") != 0)
		snprintf(log_path, sizeof(log_path), "%s", c->log_file);
	addr_str(&c->metrics_listen.addr, u->host);
	snprintf(u->port, sizeof(u->port), "%u", c->metrics_listen.port);
	snprintf(u->path, sizeof(u->path), "/metrics");
	conf_free(c);
	return 0;
}

static void fmt_url(const struct url *u, char *b, size_t n)
{
	bool v6 = strchr(u->host, ':') != NULL;
	snprintf(b, n, "http://%s%s%s:%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port,
	         u->path);
}

static int run_once(const struct url *u, const char *src, double interval)
{
	struct status_snap a = {0}, b = {0};
	char err[256];
	if (scrape(u, &a, err, sizeof(err)) != 0)
		goto bad;
	struct timespec ts = {(time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9)};
	nanosleep(&ts, NULL);
	if (scrape(u, &b, err, sizeof(err)) != 0)
		goto bad;
	static char buf[16384];
	status_render(buf, sizeof(buf), 0, 0, src, &a, &b);
	fputs(buf, stdout);
	return 0;
bad:
	fprintf(stderr, "egressd status: cannot scrape %s: %s\n", src, err);
	return 1;
}

static int run_live(const struct url *u, const char *src, double interval)
{
	struct termios old, raw;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (tty) {
		raw = old;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, hide cursor */
	struct status_snap prev = {0}, cur = {0};
	bool have_prev = false;
	static char buf[32768];
	char err[256];
	while (!stop) {
		struct winsize ws = {0};
		unsigned w = 80, h = 24;
		if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
			w = ws.ws_col;
			h = ws.ws_row;
		}
		fputs("\033[H\033[2J", stdout);
		if (scrape(u, &cur, err, sizeof(err)) == 0) {
			status_render(buf, sizeof(buf), w, h - 1, src, have_prev ? &prev : NULL, &cur);
			prev = cur;
			have_prev = true;
			fputs(buf, stdout);
		} else {
			printf("egressd status: cannot scrape %.*s: %s\n", (int)(w > 40 ? w - 40 : 20),
			       src, err);
			have_prev = false;
		}
		printf("\033[%u;1Hq: quit  (every %gs)", h, interval);
		fflush(stdout);
		double until = now() + interval;
		while (!stop) {
			double left = until - now();
			if (left <= 0)
				break;
			struct pollfd pf = {.fd = STDIN_FILENO, .events = POLLIN};
			int pr = poll(&pf, tty ? 1 : 0, (int)(left * 1000) + 1);
			if (pr == 1) {
				char c;
				ssize_t r = read(STDIN_FILENO, &c, 1);
				if (r == 1 && (c == 'q' || c == 'Q' || c == 3))
					stop = 1;
				else if (r == 0)
					tty = false; /* EOF: stop polling it */
			}
		}
	}
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'}, {"url", required_argument, NULL, 'U'},
	    {"interval", required_argument, NULL, 'i'}, {"once", no_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	const char *path = CONF_DEFAULT_PATH, *url = NULL;
	bool explicit_path = false, once = false;
	double interval = 1.0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:c:i:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			explicit_path = true;
			break;
		case 'U':
			url = optarg;
			break;
		case 'i': {
			char *e;
			interval = strtod(optarg, &e);
			if (*e || !(interval >= 0.1 && interval <= 3600)) {
				fprintf(stderr, "egressd status: bad --interval '%s' (0.1 .. 3600)\n"
				                "Try 'egressd status --help'.\n", optarg);
				return 2;
			}
			break;
		}
		case 'o':
			once = true;
			break;
		case 'h':
			help_status(stdout);
			return 0;
		case ':':
			fprintf(stderr, "egressd status: option '%s' needs an argument\n"
			                "Try 'egressd status --help'.\n", argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "egressd status: unknown option '%s'\n"
			                "Try 'egressd status --help'.\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "egressd status: unexpected argument '%s'\n"
		                "Try 'egressd status --help'.\n", argv[optind]);
		return 2;
	}
	struct url u;
	if (url) {
		if (parse_url(url, &u) != 0) {
			fprintf(stderr, "egressd status: bad --url '%s' (want http://ADDR:PORT/PATH, "
			                "ADDR numeric)\n", url);
			return 2;
		}
	} else if (url_from_conf(path, explicit_path, &u) != 0)
		return 1;
	char src[256];
	fmt_url(&u, src, sizeof(src));
	return once ? run_once(&u, src, interval) : run_live(&u, src, interval);
}
