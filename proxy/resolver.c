/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Upstream DNS through c-ares 1.18 (no event thread, no ares_dns_record):
 * c-ares tells us which sockets it wants watched (sock_state_cb) and we drive
 * it from libevent, one event per socket plus one timer set from
 * ares_timeout(). c-ares does the retries, the server rotation and the TCP
 * fallback on a truncated UDP answer (ARES_FLAG_IGNTC stays off).
 *
 * Every socket c-ares opens gets SO_MARK = sockmark before it is used; if
 * that fails the socket is refused, because an unmarked upstream query
 * would be queued (host mode) or redirected back to our own listener.
 *
 * Forged answers (issue 9, class 6): every query leaves with the letters of
 * its question name in random case (0x20, draft-vixie-dnsext-dns0x20; c-ares
 * 1.18 has no ARES_FLAG_DNS0x20), and an answer is taken only if its
 * question repeats that case byte for byte. c-ares itself compares the
 * question case-insensitively, so the check is made twice: on UDP, below
 * c-ares (our socket functions): an answer whose question is not the one
 * sent with its ID is dropped unread, and the query keeps waiting for the
 * real one; and in the callbacks, for everything (TCP too): a mismatch
 * fails the query. Both count in resolver_case_mismatches(). The answer
 * handed on carries the client's own case again.
 */
#include "resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Defaults tuned for a forwarder: clients (glibc: 5 s, 2 attempts) should
 * see our SERVFAIL before they give up on us. One server: 1.5 s + 3 s. */
#define RESOLVER_TIMEOUT_MS 1500
#define RESOLVER_TRIES 2
#define RESOLVER_LOOKUP_MAX 32 /* addresses kept per lookup (A + AAAA) */
#define RESOLVER_QNAME_MAX 255 /* a question name in wire form, root label included */
#define RESOLVER_DROP_BURST 64 /* mismatched UDP answers dropped per read call */

struct resolver_sock {
	struct resolver *r;
	ares_socket_t fd;
	struct event *ev;
	short what; /* EV_READ | EV_WRITE currently registered */
	struct resolver_sock *next;
};

struct resolver {
	struct event_base *base;
	ares_channel channel;
	bool channel_ok;
	uint32_t sockmark;
	struct event *timer;
	struct resolver_sock *socks;
	bool destroying; /* inside ares_destroy(): no rescheduling */
	uint16_t port_lo, port_hi; /* our source ports, outside the ephemeral range; 0: none */
	uint8_t rnd[256];          /* getrandom() pool: source ports, 0x20 case bits */
	size_t rnd_fill, rnd_left; /* bytes in the pool, of which not used yet */
	uint64_t sig_key;          /* keys the question signatures */
	uint32_t *sent_sig;        /* [query ID]: signature of the question sent with it; 0: none */
	uint64_t case_mismatches;
	time_t case_warned;        /* last report on stderr (at most one a minute) */
	uint32_t max_ttl;          /* TTLs in answers to clients are clamped to this; 0: kept */
};

struct resolver_send_ctx {
	struct resolver *r;
	resolver_raw_fn fn;
	void *arg;
	size_t qn_len;                      /* wire length of the question name */
	uint8_t qn_orig[RESOLVER_QNAME_MAX]; /* as the client sent it */
	uint8_t qn_sent[RESOLVER_QNAME_MAX]; /* as we sent it (0x20) */
};

struct resolver_lookup_ctx {
	resolver_addr_fn fn;
	void *arg;
	unsigned pending; /* ares_query callbacks still to come (2, then 1, then 0) */
	size_t n;
	struct dns_addr addrs[RESOLVER_LOOKUP_MAX];
	char name[NAME_MAX_LEN + 1];
	struct resolver *r;
	size_t qn_len;
	uint8_t qn_sent[RESOLVER_QNAME_MAX]; /* the name as sent (0x20), wire form */
};

static void resolver_schedule(struct resolver *r);

static struct resolver_sock *resolver_sock_find(struct resolver *r, ares_socket_t fd,
                                                struct resolver_sock ***link)
{
	for (struct resolver_sock **pp = &r->socks; *pp; pp = &(*pp)->next) {
		if ((*pp)->fd == fd) {
			if (link)
				*link = pp;
			return *pp;
		}
	}
	return NULL;
}

static void resolver_on_fd(evutil_socket_t fd, short what, void *arg)
{
	struct resolver_sock *s = arg;
	struct resolver *r = s->r;

	/* s may be freed by sock_state_cb inside ares_process_fd: use r only. */
	ares_process_fd(r->channel, (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
	                (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	resolver_schedule(r);
}

static void resolver_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	(void)fd;
	(void)what;
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	resolver_schedule(r);
}

/* Arm the timer for c-ares' next timeout (or disarm it when nothing waits). */
static void resolver_schedule(struct resolver *r)
{
	struct timeval max = {60, 0}, tv, *t;

	if (r->destroying || !r->channel_ok)
		return;
	t = ares_timeout(r->channel, &max, &tv);
	if (!t) {
		evtimer_del(r->timer);
		return;
	}
	evtimer_add(r->timer, t);
}

/*
 * c-ares: watch fd for readable/writable; (0, 0) means the socket is being
 * closed. Out of memory here leaves the socket unwatched: its queries then
 * time out through the timer and fail, which is closed.
 */
static void resolver_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct resolver_sock **link = NULL;
	struct resolver_sock *s = resolver_sock_find(r, fd, &link);
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	if (!what) {
		if (s) {
			*link = s->next;
			event_free(s->ev);
			free(s);
		}
		return;
	}
	if (s && s->what == what)
		return;
	if (s) {
		event_free(s->ev);
		s->ev = NULL;
	} else {
		s = calloc(1, sizeof(*s));
		if (!s)
			return;
		s->r = r;
		s->fd = fd;
		s->next = r->socks;
		r->socks = s;
	}
	s->what = what;
	s->ev = event_new(r->base, fd, (short)(what | EV_PERSIST), resolver_on_fd, s);
	if (!s->ev || event_add(s->ev, NULL) == -1) {
		resolver_sock_find(r, fd, &link);
		*link = s->next;
		event_free(s->ev);
		free(s);
	}
}

/* n random bytes from the pool, refilled from getrandom(). 0 or -errno. */
static int resolver_random(struct resolver *r, void *out, size_t n)
{
	uint8_t *o = out;

	for (int tries = 0; n; ) {
		if (r->rnd_left == 0) {
			ssize_t got = getrandom(r->rnd, sizeof(r->rnd), 0);
			if (got <= 0) {
				if ((got == 0 || errno == EINTR) && ++tries < 8)
					continue;
				return got < 0 ? -errno : -EIO;
			}
			r->rnd_fill = r->rnd_left = (size_t)got;
			continue;
		}
		size_t k = n < r->rnd_left ? n : r->rnd_left;
		memcpy(o, r->rnd + (r->rnd_fill - r->rnd_left), k);
		r->rnd_left -= k;
		o += k;
		n -= k;
	}
	return 0;
}

size_t resolver_qname_len(const uint8_t *msg, size_t len)
{
	size_t off = 12;

	if (len < 12 || msg[4] != 0 || msg[5] != 1) /* exactly one question */
		return 0;
	while (off < len && off - 12 < RESOLVER_QNAME_MAX) {
		uint8_t l = msg[off];
		if (l == 0)
			return off + 1 - 12;
		if (l > 63) /* a compression pointer or reserved: not a plain name */
			return 0;
		off += 1u + l;
	}
	return 0;
}

void resolver_case_randomise(uint8_t *name, size_t len, const uint8_t *bits)
{
	size_t k = 0;

	for (size_t off = 0; off < len && name[off] != 0; off += 1u + name[off]) {
		for (size_t i = off + 1; i <= off + name[off] && i < len; i++) {
			uint8_t c = name[i] | 0x20;
			if (c < 'a' || c > 'z')
				continue;
			name[i] = (bits[k / 8] >> (k % 8)) & 1 ? (uint8_t)(c & ~0x20) : c;
			k++;
		}
	}
}

bool resolver_question_is(const uint8_t *msg, size_t len, const uint8_t *qname, size_t qn_len)
{
	return qn_len && resolver_qname_len(msg, len) == qn_len &&
	       memcmp(msg + 12, qname, qn_len) == 0;
}

/* Randomise the case of the question name at msg + 12 (qn_len bytes). */
static int resolver_0x20(struct resolver *r, uint8_t *msg, size_t qn_len)
{
	uint8_t bits[(RESOLVER_QNAME_MAX + 7) / 8];

	if (resolver_random(r, bits, (qn_len + 7) / 8) != 0)
		return -EIO;
	resolver_case_randomise(msg + 12, qn_len, bits);
	return 0;
}

/* A keyed signature of a message's question (name, type, class); 0: none. */
static uint32_t resolver_sig(const struct resolver *r, const uint8_t *msg, size_t len)
{
	size_t qn = resolver_qname_len(msg, len);
	uint64_t h = r->sig_key;

	if (!qn || 12 + qn + 4 > len)
		return 0;
	for (size_t i = 12; i < 12 + qn + 4; i++)
		h = (h ^ msg[i]) * 0x100000001b3ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (uint32_t)h | 1u;
}

static void resolver_mismatch(struct resolver *r, const char *where)
{
	time_t now = time(NULL);

	r->case_mismatches++;
	if (r->case_warned && now - r->case_warned < 60)
		return;
	r->case_warned = now;
	fprintf(stderr,
	        "egressd: dropped an upstream DNS answer whose question is not the one sent "
	        "(%s; %llu so far): forged, or an upstream that does not keep the case (0x20)\n",
	        where, (unsigned long long)r->case_mismatches);
}

uint64_t resolver_case_mismatches(const struct resolver *r)
{
	return r ? r->case_mismatches : 0;
}

void resolver_set_max_ttl(struct resolver *r, uint32_t max_ttl)
{
	if (r)
		r->max_ttl = max_ttl;
}

/* Skip a name at *off (labels, ending in the root or a pointer). false: malformed. */
static bool skip_name(const uint8_t *m, size_t len, size_t *off)
{
	for (size_t n = 0; *off < len && n < 128; n++) {
		uint8_t l = m[*off];
		if (l == 0) {
			*off += 1;
			return true;
		}
		if ((l & 0xc0) == 0xc0) {
			*off += 2;
			return *off <= len;
		}
		if (l > 63)
			return false;
		*off += 1u + l;
	}
	return false;
}

void resolver_clamp_ttls(uint8_t *m, size_t len, uint32_t max_ttl)
{
	size_t off = 12;
	unsigned qd, rrs;

	if (len < 12 || max_ttl == 0)
		return;
	qd = (unsigned)(m[4] << 8 | m[5]);
	rrs = (unsigned)(m[6] << 8 | m[7]) + (unsigned)(m[8] << 8 | m[9]) +
	      (unsigned)(m[10] << 8 | m[11]);
	for (unsigned i = 0; i < qd; i++) {
		if (!skip_name(m, len, &off) || off + 4 > len)
			return;
		off += 4;
	}
	for (unsigned i = 0; i < rrs; i++) {
		if (!skip_name(m, len, &off) || off + 10 > len)
			return;
		uint16_t type = (uint16_t)(m[off] << 8 | m[off + 1]);
		uint8_t *t = m + off + 4;
		uint32_t ttl = (uint32_t)t[0] << 24 | (uint32_t)t[1] << 16 | (uint32_t)t[2] << 8 | t[3];
		if (type != 41 /* OPT: that field is not a TTL */ && ttl > max_ttl) {
			t[0] = (uint8_t)(max_ttl >> 24);
			t[1] = (uint8_t)(max_ttl >> 16);
			t[2] = (uint8_t)(max_ttl >> 8);
			t[3] = (uint8_t)max_ttl;
		}
		off += 10u + (size_t)(m[off + 8] << 8 | m[off + 9]);
	}
}

/* ---- c-ares socket functions: the UDP answer filter ---- */

/* c-ares leaves user-managed sockets unconfigured: non-blocking, no delay here. */
static ares_socket_t resolver_fn_socket(int domain, int type, int protocol, void *data)
{
	int one = 1;
	int fd = socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);

	(void)data;
	if (fd >= 0 && type == SOCK_STREAM)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd < 0 ? ARES_SOCKET_BAD : fd;
}

static int resolver_fn_close(ares_socket_t fd, void *data)
{
	(void)data;
	return close(fd);
}

static int resolver_fn_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len,
                               void *data)
{
	(void)data;
	return connect(fd, sa, len);
}

static bool resolver_is_udp(ares_socket_t fd)
{
	int type = 0;
	socklen_t tl = sizeof(type);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_DGRAM;
}

/* A UDP query leaves: remember its question under its ID. */
static ares_ssize_t resolver_fn_sendv(ares_socket_t fd, const struct iovec *iov, int n,
                                      void *data)
{
	struct resolver *r = data;

	if (n == 1 && iov[0].iov_len >= 12 && resolver_is_udp(fd)) {
		const uint8_t *m = iov[0].iov_base;
		r->sent_sig[(unsigned)m[0] << 8 | m[1]] = resolver_sig(r, m, iov[0].iov_len);
	}
	return writev(fd, iov, n);
}

/*
 * An answer arrives. UDP (from != NULL): one whose question is not the one
 * sent with its ID is dropped here and the next one read (a burst at most,
 * then EAGAIN: the socket is still readable and we are called again). An ID
 * we never sent passes: c-ares drops it. TCP: as is (the callbacks check).
 */
static ares_ssize_t resolver_fn_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
                                         struct sockaddr *from, ares_socklen_t *fromlen,
                                         void *data)
{
	struct resolver *r = data;
	socklen_t fl0 = fromlen ? *fromlen : 0;

	if (!from)
		return recv(fd, buf, len, flags);
	for (int i = 0; i < RESOLVER_DROP_BURST; i++) {
		if (fromlen)
			*fromlen = fl0;
		ssize_t got = recvfrom(fd, buf, len, flags, from, fromlen);
		if (got < 12)
			return got;
		const uint8_t *m = buf;
		uint32_t want = r->sent_sig[(unsigned)m[0] << 8 | m[1]];
		if (!want || resolver_sig(r, m, (size_t)got) == want)
			return got;
		resolver_mismatch(r, "udp");
	}
	errno = EAGAIN;
	return -1;
}

static const struct ares_socket_functions resolver_socket_fns = {
    .asocket = resolver_fn_socket,
    .aclose = resolver_fn_close,
    .aconnect = resolver_fn_connect,
    .arecvfrom = resolver_fn_recvfrom,
    .asendv = resolver_fn_sendv,
};

/*
 * Source ports for our upstream sockets, outside the kernel's ephemeral range
 * (ip_local_port_range), so that they never share a 4-tuple with a client's
 * DNS flow in host mode: the clients' queries are redirected to our listener,
 * and a conntrack entry of such a query with our source port would catch our
 * upstream query (a loop) or its reply (a clash, the reply dropped). Above
 * the range when there is room, else below it; none when the range is all.
 */
static void resolver_pick_ports(struct resolver *r)
{
	unsigned lo = 32768, hi = 60999;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%u %u", &lo, &hi) != 2)
			lo = 32768, hi = 60999;
		fclose(f);
	}
	if (hi + 1024 <= 65535) {
		r->port_lo = (uint16_t)(hi + 1);
		r->port_hi = 65535;
	} else if (lo >= 1024 + 2048) {
		r->port_lo = (uint16_t)(lo - 2048);
		r->port_hi = (uint16_t)(lo - 1);
	}
}

/* Bind fd to one of our ports, at random (a few tries); on failure the kernel picks. */
static void resolver_bind_port(struct resolver *r, ares_socket_t fd)
{
	int domain = 0;
	socklen_t dl = sizeof(domain);
	if (r->port_lo == 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == -1)
		return;
	unsigned span = (unsigned)r->port_hi - r->port_lo + 1;
	for (int i = 0; i < 16; i++) {
		uint32_t rnd;
		if (resolver_random(r, &rnd, sizeof(rnd)) != 0)
			return; /* the kernel's choice, random too */
		uint16_t port = (uint16_t)(r->port_lo + rnd % span);
		struct sockaddr_storage ss;
		socklen_t len;
		memset(&ss, 0, sizeof(ss));
		if (domain == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(port);
			len = sizeof(*s6);
		} else if (domain == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			s4->sin_port = htons(port);
			len = sizeof(*s4);
		} else {
			return;
		}
		if (bind(fd, (struct sockaddr *)&ss, len) == 0 || errno != EADDRINUSE)
			return;
	}
}

/* c-ares: a socket was just created, not yet connected; mark it or refuse it. */
static int resolver_sock_create(ares_socket_t fd, int type, void *data)
{
	struct resolver *r = data;
	int mark = (int)r->sockmark;

	(void)type;
	if (r->sockmark == 0)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == -1)
		return -1; /* c-ares closes it and treats the server as failed */
	resolver_bind_port(r, fd);
	return 0;
}

static int resolver_set_servers(struct resolver *r, const struct conf_endpoint *servers, size_t n,
                                char *err, size_t errlen)
{
	struct ares_addr_port_node *nodes = calloc(n, sizeof(*nodes));
	int rc;

	if (!nodes) {
		snprintf(err, errlen, "resolver: out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct conf_endpoint *ep = &servers[i];
		struct ares_addr_port_node *node = &nodes[i];

		node->next = i + 1 < n ? &nodes[i + 1] : NULL;
		if (ep->addr.family == ADDR_V4) {
			node->family = AF_INET;
			memcpy(&node->addr.addr4, ep->addr.b, 4);
		} else if (ep->addr.family == ADDR_V6) {
			node->family = AF_INET6;
			memcpy(&node->addr.addr6, ep->addr.b, 16);
		} else {
			free(nodes);
			snprintf(err, errlen, "resolver: upstream %zu has no address", i + 1);
			return -EINVAL;
		}
		node->udp_port = node->tcp_port = ep->port ? ep->port : 53;
	}
	rc = ares_set_servers_ports(r->channel, nodes);
	free(nodes);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: setting upstream servers: %s", ares_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

struct resolver *resolver_new_opts(struct event_base *base, const struct conf_endpoint *servers,
                                   size_t n, uint32_t sockmark, const struct resolver_opts *o,
                                   char *err, size_t errlen)
{
	struct resolver *r;
	struct ares_options opts;
	int optmask, rc;

	if (!base) {
		snprintf(err, errlen, "resolver: no event base");
		return NULL;
	}
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "resolver: out of memory");
		goto fail;
	}
	r->base = base;
	r->sockmark = sockmark;
	r->max_ttl = o ? o->max_ttl : 0;
	r->sent_sig = calloc(65536, sizeof(*r->sent_sig));
	if (!r->sent_sig || resolver_random(r, &r->sig_key, sizeof(r->sig_key)) != 0) {
		snprintf(err, errlen, "resolver: out of memory or no getrandom()");
		goto fail;
	}
	resolver_pick_ports(r);
	r->timer = evtimer_new(base, resolver_on_timer, r);
	if (!r->timer) {
		snprintf(err, errlen, "resolver: cannot create timer");
		goto fail;
	}

	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = resolver_sock_state;
	opts.sock_state_cb_data = r;
	opts.timeout = o && o->timeout_ms ? (int)o->timeout_ms : RESOLVER_TIMEOUT_MS;
	opts.tries = o && o->tries ? (int)o->tries : RESOLVER_TRIES;
	opts.flags = 0; /* keep ARES_FLAG_IGNTC off: TCP fallback on truncation */
	optmask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
	rc = ares_init_options(&r->channel, &opts, optmask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "resolver: c-ares init: %s", ares_strerror(rc));
		goto fail;
	}
	r->channel_ok = true;
	/*
	 * The configure callback runs before connect(): the SYN of c-ares' TCP
	 * fallback must already carry the mark (the create callback runs after
	 * connect, too late for TCP; the ruleset would redirect that SYN back
	 * to our own listener).
	 */
	ares_set_socket_configure_callback(r->channel, resolver_sock_create, r);
	ares_set_socket_functions(r->channel, &resolver_socket_fns, r);
	if (n && resolver_set_servers(r, servers, n, err, errlen) != 0)
		goto fail;
	return r;
fail:
	if (r)
		resolver_free(r); /* also drops our c-ares library reference */
	else
		ares_library_cleanup();
	return NULL;
}

struct resolver *resolver_new(struct event_base *base, const struct conf_endpoint *servers,
                              size_t n, uint32_t sockmark, char *err, size_t errlen)
{
	return resolver_new_opts(base, servers, n, sockmark, NULL, err, errlen);
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	if (r->channel_ok) {
		/* Pending callbacks run now with ARES_EDESTRUCTION; sock_state_cb
		 * reports every socket closed, which frees our events. */
		r->destroying = true;
		ares_destroy(r->channel);
		r->channel_ok = false;
	}
	while (r->socks) {
		struct resolver_sock *s = r->socks;
		r->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	if (r->timer)
		event_free(r->timer);
	free(r->sent_sig);
	free(r);
	ares_library_cleanup();
}

static void resolver_send_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct resolver_send_ctx *ctx = arg;

	(void)timeouts;
	if (status == ARES_SUCCESS && abuf && alen > 0 &&
	    !resolver_question_is(abuf, (size_t)alen, ctx->qn_sent, ctx->qn_len)) {
		resolver_mismatch(ctx->r, "answer");
		status = ARES_EBADRESP;
	}
	if (status == ARES_SUCCESS && abuf && alen > 0) {
		/* the client's own case again (it may check it: 0x20 of its own) */
		memcpy(abuf + 12, ctx->qn_orig, ctx->qn_len);
		/* no client caches an address longer than egressd binds it */
		resolver_clamp_ttls(abuf, (size_t)alen, ctx->r->max_ttl);
		ctx->fn(ctx->arg, 0, abuf, (size_t)alen);
	} else
		ctx->fn(ctx->arg, status == ARES_SUCCESS ? ARES_EBADRESP : status, NULL, 0);
	free(ctx);
}

int resolver_send(struct resolver *r, const uint8_t *query, size_t len, resolver_raw_fn fn,
                  void *arg)
{
	struct resolver_send_ctx *ctx;

	if (!r || !r->channel_ok || r->destroying || !fn)
		return -EINVAL;
	if (len < 12 || len > DNS_MSG_MAX)
		return -EMSGSIZE;
	size_t qn_len = resolver_qname_len(query, len);
	if (!qn_len || 12 + qn_len + 4 > len)
		return -EINVAL; /* one plain question, or we cannot check the answer */
	ctx = malloc(sizeof(*ctx));
	uint8_t *q = malloc(len);
	if (!ctx || !q) {
		free(ctx);
		free(q);
		return -ENOMEM;
	}
	memcpy(q, query, len);
	if (resolver_0x20(r, q, qn_len) != 0) {
		free(ctx);
		free(q);
		return -EIO;
	}
	ctx->r = r;
	ctx->fn = fn;
	ctx->arg = arg;
	ctx->qn_len = qn_len;
	memcpy(ctx->qn_orig, query + 12, qn_len);
	memcpy(ctx->qn_sent, q + 12, qn_len);
	/* From here the callback runs exactly once, maybe before we return.
	 * c-ares copies the query. */
	ares_send(r->channel, q, (int)len, resolver_send_done, ctx);
	free(q);
	resolver_schedule(r);
	return 0;
}

static void resolver_lookup_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct resolver_lookup_ctx *ctx = arg;

	(void)timeouts;
	if (status == ARES_SUCCESS && abuf && alen > 0 &&
	    !resolver_question_is(abuf, (size_t)alen, ctx->qn_sent, ctx->qn_len)) {
		resolver_mismatch(ctx->r, "answer");
		status = ARES_EBADRESP;
	}
	if (status == ARES_SUCCESS && abuf && alen > 0 && ctx->n < RESOLVER_LOOKUP_MAX) {
		size_t k = 0;
		uint8_t rcode = 0;
		enum dns_err why = DNS_OK;
		enum parse pr = dns_answer_addrs(cur_make(abuf, (size_t)alen), ctx->name, false,
		                                 ctx->addrs + ctx->n, RESOLVER_LOOKUP_MAX - ctx->n,
		                                 &k, &rcode, &why);
		if (pr == PARSE_OK && rcode == DNS_RCODE_NOERROR)
			ctx->n += k;
	}
	if (--ctx->pending > 0)
		return;
	ctx->fn(ctx->arg, ctx->name, ctx->n ? ctx->addrs : NULL, ctx->n);
	free(ctx);
}

int resolver_lookup(struct resolver *r, const char *name, resolver_addr_fn fn, void *arg)
{
	struct resolver_lookup_ctx *ctx;
	size_t len;

	if (!r || !r->channel_ok || r->destroying || !fn || !name)
		return -EINVAL;
	len = strlen(name);
	if (len == 0 || len > NAME_MAX_LEN)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->fn = fn;
	ctx->arg = arg;
	ctx->r = r;
	memcpy(ctx->name, name, len + 1);
	/* The name in wire form, then in random case: c-ares' ares_query sends
	 * the name's case as given. Both queries carry the same case. */
	char sent[NAME_MAX_LEN + 1];
	size_t w = 0;
	for (const char *l = name; *l && w < RESOLVER_QNAME_MAX;) {
		size_t ll = strcspn(l, ".");
		if (ll == 0 || ll > 63 || w + 1 + ll + 1 > RESOLVER_QNAME_MAX) {
			free(ctx);
			return -EINVAL;
		}
		ctx->qn_sent[w++] = (uint8_t)ll;
		memcpy(ctx->qn_sent + w, l, ll);
		w += ll;
		l += ll;
		if (*l == '.')
			l++;
	}
	ctx->qn_sent[w++] = 0;
	ctx->qn_len = w;
	uint8_t bits[(RESOLVER_QNAME_MAX + 7) / 8];
	if (resolver_random(r, bits, (w + 7) / 8) != 0) {
		free(ctx);
		return -EIO;
	}
	resolver_case_randomise(ctx->qn_sent, w, bits);
	/* back to text for ares_query: the labels with their new case */
	memcpy(sent, name, len + 1);
	for (size_t off = 0, t = 0; off < w && ctx->qn_sent[off]; off += 1u + ctx->qn_sent[off]) {
		memcpy(sent + t, ctx->qn_sent + off + 1, ctx->qn_sent[off]);
		t += ctx->qn_sent[off] + 1u;
	}
	/* Both count as pending before either is sent: the first callback may
	 * run synchronously inside ares_query. */
	ctx->pending = 2;
	ares_query(r->channel, sent, 1 /* ns_c_in */, DNS_TYPE_A, resolver_lookup_done, ctx);
	ares_query(r->channel, sent, 1 /* ns_c_in */, DNS_TYPE_AAAA, resolver_lookup_done, ctx);
	resolver_schedule(r);
	return 0;
}
