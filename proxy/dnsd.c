/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The DNS listener: UDP and TCP on each listen endpoint, in the daemon's
 * event loop. Every query is decided by engine_dns_query():
 *
 *   REFUSE  -> reply with the deny rcode at once (never forwarded)
 *   EMPTY   -> reply NOERROR with no records
 *   DROP    -> nothing
 *   FORWARD -> resolver_send(); answer -> engine_dns_answer() (binds the
 *              addresses) -> relayed with the client's id. Upstream failure,
 *              or too many queries in flight -> SERVFAIL; a client
 *              over its own share in flight -> REFUSED.
 *
 * The shell never parses DNS bytes: dns.h builds every reply. The one header
 * bit we touch is TC on a reply we built ourselves.
 *
 * Lifetimes: a forwarded query (struct dnsd_pending) lives until its
 * resolver callback, which always comes (ares_destroy included). If its TCP
 * connection closed meanwhile, the connection struct is kept alive by a
 * reference count and the answer is dropped; if the whole dnsd was freed,
 * pending queries are orphaned (p->d == NULL) and only freed by the callback.
 *
 * Per-client limits (issue 9, denial of service): one client (source
 * address) may hold DNSD_CLIENT_MAX_CONNS TCP connections and a quarter of
 * the forwarded queries in flight; over either it is refused (connection
 * closed at accept; query answered REFUSED) and the refusal counted. A TCP
 * query must be whole DNSD_TCP_QUERY_MS after its first byte, or the
 * connection is closed: the idle timeout alone let a client that sends one
 * byte every few seconds keep a connection forever. The counts live in a
 * fixed pool of client entries (one per client with a connection or a
 * query in flight, so the pool cannot run out before the global caps do),
 * hashed on the address with a seed from getrandom(2).
 *
 * Socket mark: the listeners carry none. Replies to clients need no
 * exemption: in host mode they are replies of a connection the ruleset
 * passes (lo, or `ct direction reply` for clients elsewhere), in gateway
 * mode they cross OUTPUT, not the FORWARD hook the ruleset filters. And they
 * must stay tracked: a reply to a query the dns chain redirected here is
 * un-NATed by conntrack (source 127.0.0.1 back to the address the client
 * asked), while SELF-marked packets are untracked by the ruleset.
 */
#define _GNU_SOURCE /* struct in6_pktinfo */
#include "dnsd.h"

#include "core/engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DNSD_UDP_BURST 64                  /* datagrams read per wakeup */
#define DNSD_UDP_MAX_ANSWER 512            /* RFC 1035 4.2.1, without EDNS */
#define DNSD_MAX_INFLIGHT 4096             /* forwarded queries awaiting upstream */
#define DNSD_MAX_CONNS 256                 /* TCP connections */
#define DNSD_CONN_MAX_PENDING 64           /* forwarded queries per TCP connection */
#define DNSD_CONN_MAX_IN (2 + DNS_MSG_MAX) /* one whole frame */
#define DNSD_CONN_MAX_OUT (256 * 1024)     /* unread answers */
#define DNSD_TCP_IDLE_S 10
#define DNSD_CLIENT_MAX_CONNS 16                         /* TCP connections per client */
#define DNSD_CLIENT_MAX_INFLIGHT (DNSD_MAX_INFLIGHT / 4) /* forwarded queries per client */
#define DNSD_TCP_QUERY_MS 10000 /* a TCP query is whole this long after its first byte */
/* Every live entry holds a connection or a query: never more than both caps. */
#define DNSD_CLIENTS (DNSD_MAX_CONNS + DNSD_MAX_INFLIGHT + 1)
#define DNSD_CLIENT_BUCKETS 2048 /* power of two */

/* What one client holds; live while conns + inflight > 0. */
struct dnsd_client {
	struct addr addr;
	unsigned conns, inflight;
	struct dnsd_client *next; /* hash chain, or the free list */
};

struct dnsd_conn {
	struct dnsd *d;          /* NULL once the dnsd is gone */
	struct bufferevent *bev; /* NULL once closed */
	struct addr client;
	uint16_t client_port;
	unsigned refs;                 /* pending queries pointing here */
	bool eof;                      /* client half-closed: close when done */
	bool partial;                  /* an unfinished query: the timer runs */
	struct dnsd_client *cl;        /* charged one connection, while open */
	struct event *timer;           /* the whole-query timer, while open */
	struct dnsd_conn *prev, *next; /* d->conns, while open */
};

/*
 * A UDP client: where the query came from and, for a wildcard listener, the
 * local address it was sent to, so the reply leaves from that address (the
 * client, or conntrack undoing the DNS redirect, expects it from there).
 */
struct dnsd_peer {
	int fd;
	struct sockaddr_storage sa;
	socklen_t salen;
	bool has_local;
	struct addr local;
	unsigned ifindex;
};

struct dnsd_pending {
	struct dnsd *d; /* NULL: orphaned by dnsd_free() */
	struct dnsd_pending *prev, *next;
	struct dns_query q;
	struct addr client;
	/* UDP: where to answer. TCP: conn (reference held). */
	struct dnsd_peer peer;
	struct dnsd_conn *conn;
	struct dnsd_client *cl; /* charged one query, while linked */
	size_t qlen;
	uint8_t query[]; /* the client's message, for SERVFAIL/TC */
};

struct dnsd_udp {
	struct dnsd *d;
	int fd;
	bool wildcard; /* bound to 0.0.0.0 / :: : reply from the query's address */
	struct event *ev;
};

struct dnsd {
	struct event_base *base;
	struct engine *engine;
	uint8_t deny_rcode;
	struct resolver *resolver;
	struct dnsd_udp udp[CONF_MAX_LISTEN_ALL];
	struct evconnlistener *tcp[CONF_MAX_LISTEN_ALL];
	size_t nudp, ntcp;
	struct dnsd_conn *conns;
	size_t nconns;
	struct dnsd_pending *pending;
	size_t inflight;
	struct dnsd_stats st;
	struct dnsd_limits lim;
	uint64_t seed; /* client hash */
	struct dnsd_client *cfree;
	struct dnsd_client *cbuckets[DNSD_CLIENT_BUCKETS];
	struct dnsd_client clients[DNSD_CLIENTS];
	uint8_t buf[2 + DNS_MSG_MAX]; /* one message (plus TCP length) at a time */
};

static uint64_t dnsd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- clients ----------------------------------------------------------- */

static uint32_t dnsd_client_hash(uint64_t seed, const struct addr *a)
{
	uint64_t h = seed ^ a->family;

	for (size_t i = 0; i < 16; i += 8) {
		uint64_t v;
		memcpy(&v, a->b + i, 8);
		h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
		h ^= h >> 31;
	}
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (uint32_t)h;
}

/* The entry of client a, made on first use; NULL only when the pool is out. */
static struct dnsd_client *dnsd_client_get(struct dnsd *d, const struct addr *a)
{
	struct dnsd_client **b =
	    &d->cbuckets[dnsd_client_hash(d->seed, a) & (DNSD_CLIENT_BUCKETS - 1)];
	struct dnsd_client *c;

	for (c = *b; c; c = c->next)
		if (addr_eq(&c->addr, a))
			return c;
	c = d->cfree;
	if (!c)
		return NULL;
	d->cfree = c->next;
	c->addr = *a;
	c->conns = c->inflight = 0;
	c->next = *b;
	*b = c;
	return c;
}

/* Back to the pool once it holds nothing. NULL-safe. */
static void dnsd_client_put(struct dnsd *d, struct dnsd_client *c)
{
	struct dnsd_client **pp;

	if (!c || c->conns || c->inflight)
		return;
	pp = &d->cbuckets[dnsd_client_hash(d->seed, &c->addr) & (DNSD_CLIENT_BUCKETS - 1)];
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	c->next = d->cfree;
	d->cfree = c;
}

static void dnsd_sa_to_addr(const struct sockaddr_storage *sa, struct addr *a, uint16_t *port)
{
	memset(a, 0, sizeof(*a));
	*port = 0;
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		a->family = ADDR_V4;
		memcpy(a->b, &s4->sin_addr, 4);
		*port = ntohs(s4->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		a->family = ADDR_V6;
		memcpy(a->b, &s6->sin6_addr, 16);
		*port = ntohs(s6->sin6_port);
	}
}

static socklen_t dnsd_endpoint_sa(const struct conf_endpoint *ep, struct sockaddr_storage *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (ep->addr.family == ADDR_V4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(ep->port);
		memcpy(&s4->sin_addr, ep->addr.b, 4);
		return sizeof(*s4);
	}
	if (ep->addr.family == ADDR_V6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(ep->port);
		memcpy(&s6->sin6_addr, ep->addr.b, 16);
		return sizeof(*s6);
	}
	return 0;
}

/*
 * A bound listening socket (type SOCK_DGRAM or SOCK_STREAM), non-blocking:
 * SO_REUSEADDR, IPV6_V6ONLY on v6, IP_FREEBIND / IPV6_FREEBIND so a gateway
 * can start before its inside address is configured.
 * Returns the fd or -errno.
 */
static int dnsd_socket(const struct conf_endpoint *ep, int type, char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	socklen_t salen = dnsd_endpoint_sa(ep, &sa);
	char abuf[ADDR_STRLEN];
	int one = 1, fd, e;
	const char *what;

	if (!salen) {
		snprintf(err, errlen, "dns listen: endpoint without an address");
		return -EINVAL;
	}
	fd = socket(sa.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		what = "socket";
		goto fail;
	}
	what = "SO_REUSEADDR";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	if (sa.ss_family == AF_INET6) {
		what = "IPV6_V6ONLY";
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
			goto fail;
		what = "IPV6_FREEBIND";
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one)) == -1)
			goto fail;
	} else {
		what = "IP_FREEBIND";
		if (setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) == -1)
			goto fail;
	}
	what = "bind";
	if (bind(fd, (struct sockaddr *)&sa, salen) == -1)
		goto fail;
	what = "listen";
	if (type == SOCK_STREAM && listen(fd, 128) == -1)
		goto fail;
	return fd;
fail:
	e = errno;
	snprintf(err, errlen, "dns listen %s%s%s:%u (%s): %s: %s",
	         sa.ss_family == AF_INET6 ? "[" : "", addr_str(&ep->addr, abuf),
	         sa.ss_family == AF_INET6 ? "]" : "", ep->port, type == SOCK_STREAM ? "tcp" : "udp",
	         what, strerror(e));
	if (fd != -1)
		close(fd);
	return -e;
}

static bool dnsd_is_wildcard(const struct addr *a)
{
	size_t n = a->family == ADDR_V4 ? 4 : 16;

	for (size_t i = 0; i < n; i++)
		if (a->b[i])
			return false;
	return true;
}

static int dnsd_want_pktinfo(int fd, uint8_t family)
{
	int one = 1;

	if (family == ADDR_V6)
		return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
}

/* ---- replies ---------------------------------------------------------- */

static void dnsd_udp_send(const struct dnsd_peer *peer, const uint8_t *msg, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)msg, len};
	struct msghdr mh = {
	    .msg_name = (void *)&peer->sa,
	    .msg_namelen = peer->salen,
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	};

	memset(&ctl, 0, sizeof(ctl));
	if (peer->has_local && peer->local.family == ADDR_V4) {
		struct in_pktinfo pi;
		struct cmsghdr *cm;

		memset(&pi, 0, sizeof(pi));
		memcpy(&pi.ipi_spec_dst, peer->local.b, 4);
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(pi));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	} else if (peer->has_local && peer->local.family == ADDR_V6) {
		struct in6_pktinfo pi;
		struct cmsghdr *cm;

		memset(&pi, 0, sizeof(pi));
		memcpy(&pi.ipi6_addr, peer->local.b, 16);
		pi.ipi6_ifindex = peer->ifindex; /* matters for link-local only */
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(pi));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
	}
	/* A full socket buffer drops the reply; the client retries. */
	(void)sendmsg(peer->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void dnsd_conn_close(struct dnsd_conn *c);

/* Queue one framed message on a TCP connection. */
static void dnsd_tcp_send(struct dnsd_conn *c, const uint8_t *msg, size_t len)
{
	uint8_t lenbuf[2] = {(uint8_t)(len >> 8), (uint8_t)len};
	struct evbuffer *out;

	if (!c->bev || len > DNS_MSG_MAX)
		return;
	out = bufferevent_get_output(c->bev);
	if (evbuffer_get_length(out) + len + 2 > DNSD_CONN_MAX_OUT) {
		/* The client does not read its answers: stop serving it. */
		dnsd_conn_close(c);
		return;
	}
	if (evbuffer_add(out, lenbuf, 2) == -1 || evbuffer_add(out, msg, len) == -1)
		dnsd_conn_close(c);
}

/*
 * A reply carrying only the question (dns_build_reply) with rcode; tc sets
 * the TC flag:  id(2) | QR opcode(4) AA TC RD | RA Z(3) rcode(4) | ...
 *                        byte 2, TC = 0x02
 */
static size_t dnsd_local_reply(const uint8_t *query, size_t qlen, const struct dns_query *q,
                               uint8_t rcode, bool tc, uint8_t *out, size_t cap)
{
	size_t n = dns_build_reply(query, qlen, q, rcode, out, cap);

	if (n >= 12 && tc)
		out[2] |= 0x02;
	return n;
}

/* ---- forwarding ------------------------------------------------------- */

static void dnsd_pending_unlink(struct dnsd *d, struct dnsd_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		d->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	d->inflight--;
	if (p->cl) {
		p->cl->inflight--;
		dnsd_client_put(d, p->cl);
		p->cl = NULL;
	}
}

/* Drop a pending query's reference to its connection; frees a closed one. */
static void dnsd_conn_unref(struct dnsd_conn *c)
{
	if (!c)
		return;
	c->refs--;
	if (c->bev) {
		/* Half-closed by the client and nothing left to send: done. */
		if (c->eof && c->refs == 0 &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			dnsd_conn_close(c);
		return;
	}
	if (c->refs == 0)
		free(c);
}

static void dnsd_answer(struct dnsd *d, struct dnsd_pending *p, const uint8_t *msg, size_t len)
{
	if (p->conn) {
		if (p->conn->bev)
			dnsd_tcp_send(p->conn, msg, len);
	} else {
		dnsd_udp_send(&p->peer, msg, len);
	}
	(void)d;
}

static void dnsd_fail(struct dnsd *d, struct dnsd_pending *p)
{
	size_t n = dnsd_local_reply(p->query, p->qlen, &p->q, DNS_RCODE_SERVFAIL, false, d->buf,
	                            sizeof(d->buf));

	d->st.failed++;
	if (n)
		dnsd_answer(d, p, d->buf, n);
}

static void dnsd_resolved(void *arg, int status, const uint8_t *answer, size_t len)
{
	struct dnsd_pending *p = arg;
	struct dnsd *d = p->d;
	struct dnsd_conn *conn = p->conn;

	if (!d)
		goto done; /* the listener is gone: nobody to answer */
	dnsd_pending_unlink(d, p);
	if (conn && !conn->bev)
		goto done; /* the client hung up: drop the answer */
	if (status != 0 || !answer || len < 12 || len > DNS_MSG_MAX) {
		dnsd_fail(d, p);
		goto done;
	}
	if (d->engine)
		engine_dns_answer(d->engine, &p->q, answer, len, &p->client, dnsd_now());
	if (!conn && len > DNSD_UDP_MAX_ANSWER) {
		/* Too big for the client's UDP: tell it to come back over TCP. */
		size_t n = dnsd_local_reply(p->query, p->qlen, &p->q, DNS_RCODE_NOERROR, true,
		                            d->buf, sizeof(d->buf));
		if (n)
			dnsd_answer(d, p, d->buf, n);
		d->st.allowed++;
		goto done;
	}
	if (d->engine && engine_dns_strip_ech(d->engine)) {
		/* No real ECH config reaches a client: it can only GREASE (tls ech = outer). */
		len = dns_strip_ech(answer, len, d->buf, sizeof(d->buf), NULL);
		if (len == 0) {
			dnsd_fail(d, p);
			goto done;
		}
	} else {
		memcpy(d->buf, answer, len);
	}
	dns_set_id(d->buf, len, p->q.id);
	dnsd_answer(d, p, d->buf, len);
	d->st.allowed++;
done:
	free(p);
	dnsd_conn_unref(conn);
}

/*
 * Decide one client message and act: over UDP from peer (conn NULL), or
 * over TCP on conn (peer NULL). msg is borrowed, never d->buf itself.
 */
static void dnsd_query(struct dnsd *d, const uint8_t *msg, size_t len, const struct dnsd_peer *peer,
                       struct dnsd_conn *conn)
{
	struct dnsd_pending *p;
	struct dnsd_client *cl;
	struct dns_query q;
	struct addr client;
	uint16_t port;
	enum dns_action act;
	size_t n;

	if (conn) {
		client = conn->client;
		port = conn->client_port;
	} else {
		dnsd_sa_to_addr(&peer->sa, &client, &port);
	}
	if (!d->engine) {
		d->st.denied++; /* no policy (mid-reload): fail closed */
		return;
	}
	memset(&q, 0, sizeof(q));
	act = engine_dns_query(d->engine, msg, len, &client, port, &q, dnsd_now());
	switch (act) {
	case DNS_REFUSE:
	case DNS_EMPTY:
		d->st.denied++;
		n = dnsd_local_reply(msg, len, &q,
		                     act == DNS_REFUSE ? d->deny_rcode : DNS_RCODE_NOERROR, false,
		                     d->buf, sizeof(d->buf));
		if (!n)
			return;
		if (conn)
			dnsd_tcp_send(conn, d->buf, n);
		else
			dnsd_udp_send(peer, d->buf, n);
		return;
	case DNS_FORWARD:
		break;
	case DNS_DROP:
	default:
		d->st.denied++;
		return;
	}

	/* NULL only when the pool is out, which the global cap below reaches first */
	cl = dnsd_client_get(d, &client);
	if (cl && cl->inflight >= d->lim.inflight_per_client) {
		d->st.limited_inflight++;
		n = dnsd_local_reply(msg, len, &q, DNS_RCODE_REFUSED, false, d->buf,
		                     sizeof(d->buf));
		if (n && conn)
			dnsd_tcp_send(conn, d->buf, n);
		else if (n)
			dnsd_udp_send(peer, d->buf, n);
		return;
	}
	p = calloc(1, sizeof(*p) + len);
	if (!p || !cl || d->inflight >= DNSD_MAX_INFLIGHT ||
	    (conn && conn->refs > DNSD_CONN_MAX_PENDING)) { /* + the reader's own ref */
		free(p);
		dnsd_client_put(d, cl);
		d->st.failed++;
		n = dnsd_local_reply(msg, len, &q, DNS_RCODE_SERVFAIL, false, d->buf,
		                     sizeof(d->buf));
		if (n && conn)
			dnsd_tcp_send(conn, d->buf, n);
		else if (n)
			dnsd_udp_send(peer, d->buf, n);
		return;
	}
	p->d = d;
	p->q = q;
	p->client = client;
	if (!conn)
		p->peer = *peer;
	p->conn = conn;
	if (conn)
		conn->refs++;
	p->qlen = len;
	memcpy(p->query, msg, len);
	p->next = d->pending;
	if (d->pending)
		d->pending->prev = p;
	d->pending = p;
	d->inflight++;
	p->cl = cl;
	cl->inflight++;
	/* On 0 the callback owns p from here (it may already have run). */
	if (resolver_send(d->resolver, p->query, p->qlen, dnsd_resolved, p) != 0) {
		dnsd_pending_unlink(d, p);
		dnsd_fail(d, p);
		free(p);
		dnsd_conn_unref(conn);
	}
}

/* ---- UDP -------------------------------------------------------------- */

/* The local address a datagram was sent to (IP_PKTINFO / IPV6_PKTINFO). */
static void dnsd_peer_local(struct dnsd_peer *peer, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			memset(&peer->local, 0, sizeof(peer->local));
			peer->local.family = ADDR_V4;
			memcpy(peer->local.b, &pi.ipi_addr, 4);
			peer->ifindex = (unsigned)pi.ipi_ifindex;
			peer->has_local = true;
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
		           cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			memset(&peer->local, 0, sizeof(peer->local));
			peer->local.family = ADDR_V6;
			memcpy(peer->local.b, &pi.ipi6_addr, 16);
			peer->ifindex = pi.ipi6_ifindex;
			peer->has_local = true;
		}
	}
}

static void dnsd_udp_read(evutil_socket_t fd, short what, void *arg)
{
	struct dnsd_udp *u = arg;
	struct dnsd *d = u->d;
	uint8_t msg[4096]; /* queries are small; a longer one is dropped */

	(void)what;
	for (unsigned i = 0; i < DNSD_UDP_BURST; i++) {
		union {
			char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			         CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} ctl;
		struct dnsd_peer peer;
		struct iovec iov = {msg, sizeof(msg)};
		struct msghdr mh = {
		    .msg_name = &peer.sa,
		    .msg_namelen = sizeof(peer.sa),
		    .msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = ctl.buf,
		    .msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n;

		memset(&peer, 0, sizeof(peer));
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n == -1)
			return; /* EAGAIN, or an ICMP error from a past reply */
		if (mh.msg_flags & MSG_TRUNC)
			continue;
		peer.fd = fd;
		peer.salen = mh.msg_namelen;
		if (u->wildcard && !(mh.msg_flags & MSG_CTRUNC))
			dnsd_peer_local(&peer, &mh);
		dnsd_query(d, msg, (size_t)n, &peer, NULL);
	}
}

/* ---- TCP -------------------------------------------------------------- */

static void dnsd_conn_close(struct dnsd_conn *c)
{
	struct dnsd *d = c->d;

	if (!c->bev)
		return;
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->timer)
		event_free(c->timer);
	c->timer = NULL;
	if (d) {
		if (c->cl) {
			c->cl->conns--;
			dnsd_client_put(d, c->cl);
		}
		if (c->prev)
			c->prev->next = c->next;
		else
			d->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		d->nconns--;
	}
	c->cl = NULL;
	c->prev = c->next = NULL;
	if (c->refs == 0)
		free(c);
}

static void dnsd_conn_read(struct bufferevent *bev, void *arg)
{
	struct dnsd_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t have = evbuffer_get_length(in), used;
	const uint8_t *p = evbuffer_pullup(in, -1);
	struct cur stream = cur_make(p, have), msg;

	if (have && !p) {
		dnsd_conn_close(c);
		return;
	}
	/* Several pipelined queries may sit in one read. c is kept alive by
	 * the refs the queries take, so a close inside dnsd_query is safe. */
	c->refs++;
	while (c->bev) {
		enum parse pr = dns_tcp_next(&stream, &msg);

		if (pr == PARSE_MORE)
			break;
		if (pr != PARSE_OK) {
			dnsd_conn_close(c); /* not a DNS stream */
			break;
		}
		dnsd_query(c->d, msg.p, msg.left, NULL, c);
	}
	used = have - stream.left;
	if (c->bev) {
		size_t left;

		evbuffer_drain(in, used);
		left = evbuffer_get_length(in);
		if (left > DNSD_CONN_MAX_IN) {
			dnsd_conn_close(c); /* cannot be one frame: not DNS */
		} else if (left == 0) {
			c->partial = false;
			evtimer_del(c->timer);
		} else if (!c->partial || used > 0) {
			/* A query began in this read: it has tcp_query_ms to end. */
			struct timeval tv = {c->d->lim.tcp_query_ms / 1000,
			                     (c->d->lim.tcp_query_ms % 1000) * 1000};
			c->partial = true;
			if (evtimer_add(c->timer, &tv) == -1)
				dnsd_conn_close(c);
		}
	}
	dnsd_conn_unref(c);
}

/* A query still unfinished tcp_query_ms after its first byte: a trickler. */
static void dnsd_conn_slow(evutil_socket_t fd, short what, void *arg)
{
	struct dnsd_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->d)
		c->d->st.limited_slow++;
	dnsd_conn_close(c);
}

static void dnsd_conn_write(struct bufferevent *bev, void *arg)
{
	struct dnsd_conn *c = arg;

	(void)bev;
	if (c->eof && c->refs == 0)
		dnsd_conn_close(c);
}

static void dnsd_conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct dnsd_conn *c = arg;

	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->refs > 0) {
		/* Not idle: answers are still on their way. */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		c->eof = true;
		bufferevent_disable(bev, EV_READ);
		if (c->refs == 0 && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			dnsd_conn_close(c);
		return;
	}
	dnsd_conn_close(c);
}

static void dnsd_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
	struct dnsd *d = arg;
	struct timeval idle = {DNSD_TCP_IDLE_S, 0};
	struct dnsd_conn *c;
	struct dnsd_client *cl;
	struct sockaddr_storage ss;
	struct addr client;
	uint16_t port;

	(void)l;
	if (d->nconns >= DNSD_MAX_CONNS || salen <= 0 || (size_t)salen > sizeof(ss)) {
		evutil_closesocket(fd);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, (size_t)salen);
	dnsd_sa_to_addr(&ss, &client, &port);
	cl = dnsd_client_get(d, &client); /* not NULL: nconns < DNSD_MAX_CONNS */
	if (!cl || cl->conns >= d->lim.conns_per_client) {
		d->st.limited_conns++;
		dnsd_client_put(d, cl);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		dnsd_client_put(d, cl);
		evutil_closesocket(fd);
		return;
	}
	c->client = client;
	c->client_port = port;
	c->d = d;
	c->timer = evtimer_new(d->base, dnsd_conn_slow, c);
	c->bev = c->timer ? bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
	if (!c->bev) {
		if (c->timer)
			event_free(c->timer);
		dnsd_client_put(d, cl);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, dnsd_conn_read, dnsd_conn_write, dnsd_conn_event, c);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	/* Stop reading while one frame's worth is unprocessed. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, DNSD_CONN_MAX_IN + 1);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) == -1) {
		bufferevent_free(c->bev);
		event_free(c->timer);
		dnsd_client_put(d, cl);
		free(c);
		return;
	}
	c->cl = cl;
	cl->conns++;
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	d->nconns++;
}

/* ---- lifecycle -------------------------------------------------------- */

/* The client hash's seed: an attacker who can predict it can fill one chain. */
static int dnsd_seed(uint64_t *seed)
{
	uint8_t *p = (uint8_t *)seed;
	size_t got = 0;

	while (got < sizeof(*seed)) {
		ssize_t n = getrandom(p + got, sizeof(*seed) - got, 0);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

struct dnsd *dnsd_new(struct event_base *base, const struct conf_endpoint *listen, size_t n,
                      struct engine *engine, struct resolver *resolver, uint8_t deny_rcode,
                      char *err, size_t errlen)
{
	struct dnsd *d;

	if (!base || !resolver || !engine || n == 0 || n > CONF_MAX_LISTEN_ALL) {
		snprintf(err, errlen, "dns listen: %s",
		         n == 0                ? "no listen address"
		         : n > CONF_MAX_LISTEN_ALL ? "too many listen addresses"
		                               : "missing engine or resolver");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "dns listen: out of memory");
		return NULL;
	}
	d->base = base;
	d->engine = engine;
	d->deny_rcode = deny_rcode;
	d->resolver = resolver;
	dnsd_set_limits(d, NULL);
	if (dnsd_seed(&d->seed) < 0) {
		snprintf(err, errlen, "dns listen: getrandom: %s", strerror(errno));
		free(d);
		return NULL;
	}
	for (size_t i = DNSD_CLIENTS; i-- > 0;) {
		d->clients[i].next = d->cfree;
		d->cfree = &d->clients[i];
	}
	for (size_t i = 0; i < n; i++) {
		struct dnsd_udp *u = &d->udp[d->nudp];
		int fd = dnsd_socket(&listen[i], SOCK_DGRAM, err, errlen);

		if (fd < 0)
			goto fail;
		u->d = d;
		u->fd = fd;
		u->wildcard = dnsd_is_wildcard(&listen[i].addr);
		if (u->wildcard && dnsd_want_pktinfo(fd, listen[i].addr.family) == -1) {
			snprintf(err, errlen, "dns listen: IP_PKTINFO: %s", strerror(errno));
			close(fd);
			goto fail;
		}
		u->ev = event_new(base, fd, EV_READ | EV_PERSIST, dnsd_udp_read, u);
		if (!u->ev || event_add(u->ev, NULL) == -1) {
			close(fd);
			if (u->ev)
				event_free(u->ev);
			u->ev = NULL;
			snprintf(err, errlen, "dns listen: cannot watch a UDP socket");
			goto fail;
		}
		d->nudp++;

		fd = dnsd_socket(&listen[i], SOCK_STREAM, err, errlen);
		if (fd < 0)
			goto fail;
		d->tcp[d->ntcp] =
		    evconnlistener_new(base, dnsd_accept, d, LEV_OPT_CLOSE_ON_FREE, -1, fd);
		if (!d->tcp[d->ntcp]) {
			close(fd);
			snprintf(err, errlen, "dns listen: cannot watch a TCP socket");
			goto fail;
		}
		d->ntcp++;
	}
	return d;
fail:
	dnsd_free(d);
	return NULL;
}

void dnsd_set_engine(struct dnsd *d, struct engine *engine, uint8_t deny_rcode)
{
	if (!d)
		return;
	d->engine = engine;
	d->deny_rcode = deny_rcode;
}

void dnsd_set_limits(struct dnsd *d, const struct dnsd_limits *lim)
{
	if (!d)
		return;
	d->lim.conns_per_client =
	    lim && lim->conns_per_client ? lim->conns_per_client : DNSD_CLIENT_MAX_CONNS;
	d->lim.inflight_per_client =
	    lim && lim->inflight_per_client ? lim->inflight_per_client : DNSD_CLIENT_MAX_INFLIGHT;
	d->lim.tcp_query_ms = lim && lim->tcp_query_ms ? lim->tcp_query_ms : DNSD_TCP_QUERY_MS;
}

void dnsd_free(struct dnsd *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nudp; i++) {
		event_free(d->udp[i].ev);
		close(d->udp[i].fd);
	}
	for (size_t i = 0; i < d->ntcp; i++)
		evconnlistener_free(d->tcp[i]);
	/* Orphan pending queries: their callbacks free them later. */
	while (d->pending) {
		struct dnsd_pending *p = d->pending;
		dnsd_pending_unlink(d, p);
		p->d = NULL;
	}
	while (d->conns) {
		struct dnsd_conn *c = d->conns;
		/* Hold it across the close so it cannot be freed under us; the
		 * unref frees it unless pending queries still point at it. */
		c->refs++;
		dnsd_conn_close(c);
		c->d = NULL;
		dnsd_conn_unref(c);
	}
	free(d);
}

void dnsd_stats(const struct dnsd *d, struct dnsd_stats *st)
{
	if (!d) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = d->st;
}
