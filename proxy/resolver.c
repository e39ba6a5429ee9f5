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
 */
#include "resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Defaults tuned for a forwarder: clients (glibc: 5 s, 2 attempts) should
 * see our SERVFAIL before they give up on us. One server: 1.5 s + 3 s. */
#define RESOLVER_TIMEOUT_MS 1500
#define RESOLVER_TRIES 2
#define RESOLVER_LOOKUP_MAX 32 /* addresses kept per lookup (A + AAAA) */

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
	uint32_t port_seed;
};

struct resolver_send_ctx {
	resolver_raw_fn fn;
	void *arg;
};

struct resolver_lookup_ctx {
	resolver_addr_fn fn;
	void *arg;
	unsigned pending; /* ares_query callbacks still to come (2, then 1, then 0) */
	size_t n;
	struct dns_addr addrs[RESOLVER_LOOKUP_MAX];
	char name[NAME_MAX_LEN + 1];
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
	r->port_seed = (uint32_t)(uintptr_t)r ^ (uint32_t)getpid();
}

/* Bind fd to one of our ports (a few tries); on failure the kernel picks. */
static void resolver_bind_port(struct resolver *r, ares_socket_t fd)
{
	int domain = 0;
	socklen_t dl = sizeof(domain);
	if (r->port_lo == 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) == -1)
		return;
	unsigned span = (unsigned)r->port_hi - r->port_lo + 1;
	for (int i = 0; i < 16; i++) {
		r->port_seed = r->port_seed * 1103515245u + 12345u;
		uint16_t port = (uint16_t)(r->port_lo + (r->port_seed >> 8) % span);
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
	free(r);
	ares_library_cleanup();
}

static void resolver_send_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct resolver_send_ctx *ctx = arg;

	(void)timeouts;
	if (status == ARES_SUCCESS && abuf && alen > 0)
		ctx->fn(ctx->arg, 0, abuf, (size_t)alen);
	else
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
	ctx = malloc(sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->fn = fn;
	ctx->arg = arg;
	/* From here the callback runs exactly once, maybe before we return. */
	ares_send(r->channel, query, (int)len, resolver_send_done, ctx);
	resolver_schedule(r);
	return 0;
}

static void resolver_lookup_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct resolver_lookup_ctx *ctx = arg;

	(void)timeouts;
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
	memcpy(ctx->name, name, len + 1);
	/* Both count as pending before either is sent: the first callback may
	 * run synchronously inside ares_query. */
	ctx->pending = 2;
	ares_query(r->channel, ctx->name, 1 /* ns_c_in */, DNS_TYPE_A, resolver_lookup_done, ctx);
	ares_query(r->channel, ctx->name, 1 /* ns_c_in */, DNS_TYPE_AAAA, resolver_lookup_done,
	           ctx);
	resolver_schedule(r);
	return 0;
}
