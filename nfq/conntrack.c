/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctnetlink over libmnl (conntrack.h).
 *
 *   dump:     IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC, CTA_MARK + CTA_MARK_MASK
 *   set mark: IPCTNL_MSG_CT_NEW without NLM_F_CREATE (an update: ENOENT if
 *             gone), CTA_TUPLE_ORIG, CTA_ZONE, CTA_MARK + CTA_MARK_MASK: the
 *             kernel computes (old & ~mask) ^ value
 *   delete:   IPCTNL_MSG_CT_DELETE, CTA_TUPLE_ORIG, CTA_ZONE
 */
#include "conntrack.h"
#include "errf.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <arpa/inet.h>

#define CT_MSG_MAX 1024     /* one request: a tuple and a few attributes */
#define CT_RECV_MAX 65536   /* one read of a dump */

struct ct {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	char rbuf[CT_RECV_MAX];
};

bool ct_entry_open(const struct ct_entry *e)
{
	return !(e->proto == IPPROTO_TCP && e->has_tcp_state &&
	         (e->tcp_state == TCP_CONNTRACK_TIME_WAIT || e->tcp_state == TCP_CONNTRACK_CLOSE));
}

static struct nlmsghdr *put_header(void *buf, size_t cap, uint16_t type, uint16_t flags,
                                   uint32_t seq, uint8_t family)
{
	if (cap < CT_MSG_MAX)
		return NULL;
	memset(buf, 0, CT_MSG_MAX);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (uint16_t)(NFNL_SUBSYS_CTNETLINK << 8 | type);
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof *nfg);
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

struct nlmsghdr *ct_build_dump(void *buf, size_t cap, uint32_t seq, uint32_t mark, uint32_t mask)
{
	struct nlmsghdr *nlh =
	    put_header(buf, cap, IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, AF_UNSPEC);
	if (!nlh)
		return NULL;
	mnl_attr_put_u32(nlh, CTA_MARK, htonl(mark));
	mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mask));
	return nlh;
}

static uint8_t family_of(const struct ct_entry *e)
{
	return e->src.family == ADDR_V6 ? AF_INET6 : AF_INET;
}

static bool put_tuple(struct nlmsghdr *nlh, const struct ct_entry *e)
{
	if (e->src.family != e->dst.family ||
	    (e->src.family != ADDR_V4 && e->src.family != ADDR_V6))
		return false;
	struct nlattr *tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (e->src.family == ADDR_V4) {
		mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, e->src.b);
		mnl_attr_put(nlh, CTA_IP_V4_DST, 4, e->dst.b);
	} else {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, e->src.b);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, e->dst.b);
	}
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, e->proto);
	if (e->proto == IPPROTO_TCP || e->proto == IPPROTO_UDP || e->proto == IPPROTO_SCTP ||
	    e->proto == IPPROTO_UDPLITE || e->proto == IPPROTO_DCCP) {
		mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(e->sport));
		mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(e->dport));
	}
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
	if (e->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(e->zone));
	return true;
}

struct nlmsghdr *ct_build_set_mark(void *buf, size_t cap, uint32_t seq, const struct ct_entry *e,
                                   uint32_t value, uint32_t mask)
{
	struct nlmsghdr *nlh =
	    put_header(buf, cap, IPCTNL_MSG_CT_NEW, NLM_F_REQUEST | NLM_F_ACK, seq, family_of(e));
	if (!nlh || !put_tuple(nlh, e))
		return NULL;
	mnl_attr_put_u32(nlh, CTA_MARK, htonl(value & mask));
	mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mask));
	return nlh;
}

struct nlmsghdr *ct_build_delete(void *buf, size_t cap, uint32_t seq, const struct ct_entry *e)
{
	struct nlmsghdr *nlh = put_header(buf, cap, IPCTNL_MSG_CT_DELETE,
	                                  NLM_F_REQUEST | NLM_F_ACK, seq, family_of(e));
	if (!nlh || !put_tuple(nlh, e))
		return NULL;
	return nlh;
}

/* ---- parsing ---- */

struct attrs {
	const struct nlattr *a[CTA_MAX + 1];
	int max;
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	struct attrs *t = data;
	int type = mnl_attr_get_type(attr);
	if (type < 0 || type > t->max)
		return MNL_CB_OK; /* newer kernel: ignore */
	t->a[type] = attr;
	return MNL_CB_OK;
}

static int parse_nested(const struct nlattr *nest, struct attrs *t, int max)
{
	memset(t, 0, sizeof *t);
	t->max = max < CTA_MAX ? max : CTA_MAX;
	return mnl_attr_parse_nested(nest, attr_cb, t) < 0 ? -EINVAL : 0;
}

static bool get_addr(const struct nlattr *a, uint8_t fam, struct addr *out)
{
	size_t n = fam == ADDR_V4 ? 4 : 16;
	if (!a || mnl_attr_get_payload_len(a) != n)
		return false;
	memset(out, 0, sizeof *out);
	out->family = fam;
	memcpy(out->b, mnl_attr_get_payload(a), n);
	return true;
}

static bool get_u16(const struct nlattr *a, uint16_t *v)
{
	if (!a || mnl_attr_validate(a, MNL_TYPE_U16) < 0)
		return false;
	*v = ntohs(mnl_attr_get_u16(a));
	return true;
}

static int parse_tuple(const struct nlattr *tuple, struct ct_entry *out)
{
	struct attrs t, ip, pr;
	if (parse_nested(tuple, &t, CTA_TUPLE_MAX) < 0 || !t.a[CTA_TUPLE_IP] ||
	    !t.a[CTA_TUPLE_PROTO])
		return -EINVAL;
	if (parse_nested(t.a[CTA_TUPLE_IP], &ip, CTA_IP_MAX) < 0)
		return -EINVAL;
	if (ip.a[CTA_IP_V4_SRC]) {
		if (!get_addr(ip.a[CTA_IP_V4_SRC], ADDR_V4, &out->src) ||
		    !get_addr(ip.a[CTA_IP_V4_DST], ADDR_V4, &out->dst))
			return -EINVAL;
	} else if (!get_addr(ip.a[CTA_IP_V6_SRC], ADDR_V6, &out->src) ||
	           !get_addr(ip.a[CTA_IP_V6_DST], ADDR_V6, &out->dst)) {
		return -EINVAL;
	}
	if (parse_nested(t.a[CTA_TUPLE_PROTO], &pr, CTA_PROTO_MAX) < 0 || !pr.a[CTA_PROTO_NUM] ||
	    mnl_attr_validate(pr.a[CTA_PROTO_NUM], MNL_TYPE_U8) < 0)
		return -EINVAL;
	out->proto = mnl_attr_get_u8(pr.a[CTA_PROTO_NUM]);
	if (pr.a[CTA_PROTO_SRC_PORT] && !get_u16(pr.a[CTA_PROTO_SRC_PORT], &out->sport))
		return -EINVAL;
	if (pr.a[CTA_PROTO_DST_PORT] && !get_u16(pr.a[CTA_PROTO_DST_PORT], &out->dport))
		return -EINVAL;
	if (t.a[CTA_TUPLE_ZONE] && !out->zone)
		(void)get_u16(t.a[CTA_TUPLE_ZONE], &out->zone);
	return 0;
}

int ct_parse(const struct nlmsghdr *nlh, size_t len, struct ct_entry *out)
{
	memset(out, 0, sizeof *out);
	/* mnl_nlmsg_ok() compares the length as an int: a length with the top bit
	 * set passes it, so the bound is checked here, unsigned. */
	if (!nlh || len < sizeof *nlh || nlh->nlmsg_len > len ||
	    nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nfgenmsg)))
		return -EINVAL;
	struct attrs t;
	memset(&t, 0, sizeof t);
	t.max = CTA_MAX;
	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, &t) < 0 || !t.a[CTA_TUPLE_ORIG])
		return -EINVAL;
	if (t.a[CTA_ZONE] && !get_u16(t.a[CTA_ZONE], &out->zone))
		return -EINVAL;
	if (parse_tuple(t.a[CTA_TUPLE_ORIG], out) < 0)
		return -EINVAL;
	if (t.a[CTA_MARK]) {
		if (mnl_attr_validate(t.a[CTA_MARK], MNL_TYPE_U32) < 0)
			return -EINVAL;
		out->mark = ntohl(mnl_attr_get_u32(t.a[CTA_MARK]));
	}
	if (t.a[CTA_PROTOINFO]) {
		struct attrs pi, tcp;
		if (parse_nested(t.a[CTA_PROTOINFO], &pi, CTA_PROTOINFO_MAX) == 0 &&
		    pi.a[CTA_PROTOINFO_TCP] &&
		    parse_nested(pi.a[CTA_PROTOINFO_TCP], &tcp, CTA_PROTOINFO_TCP_MAX) == 0 &&
		    tcp.a[CTA_PROTOINFO_TCP_STATE] &&
		    mnl_attr_validate(tcp.a[CTA_PROTOINFO_TCP_STATE], MNL_TYPE_U8) == 0) {
			out->has_tcp_state = true;
			out->tcp_state = mnl_attr_get_u8(tcp.a[CTA_PROTOINFO_TCP_STATE]);
		}
	}
	return 0;
}

/* ---- socket ---- */

struct ct *ct_open(char *err, size_t errlen)
{
	struct ct *c = calloc(1, sizeof *c);
	if (!c) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	c->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!c->nl || mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		errf(err, errlen, "ctnetlink socket: %s", strerror(errno));
		ct_close(c);
		return NULL;
	}
	c->portid = mnl_socket_get_portid(c->nl);
	c->seq = (uint32_t)time(NULL);
	return c;
}

void ct_close(struct ct *c)
{
	if (!c)
		return;
	if (c->nl)
		mnl_socket_close(c->nl);
	free(c);
}

struct dump_ctx {
	uint32_t value, mask;
	int (*fn)(const struct ct_entry *e, void *arg);
	void *arg;
	bool stopped;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *d = data;
	struct ct_entry e;
	if (d->stopped || ct_parse(nlh, nlh->nlmsg_len, &e) < 0)
		return MNL_CB_OK; /* unreadable entry: skipped (it is not ours to judge) */
	if ((e.mark & d->mask) != d->value)
		return MNL_CB_OK; /* a kernel without the mark filter */
	if (d->fn(&e, d->arg) < 0)
		d->stopped = true;
	return MNL_CB_OK;
}

/*
 * Send nlh and read its answers until NLMSG_DONE or the ack; cb for data
 * messages (may be NULL). Messages of another sequence (the rest of a dump
 * an earlier error cut short) are skipped, so one failure does not poison
 * the socket. A dump the kernel marks interrupted is read to its end and
 * reported as -EINTR.
 */
static int talk(struct ct *c, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char *buf = c->rbuf;
	uint32_t seq = nlh->nlmsg_seq;
	bool intr = false;
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(c->nl, buf, sizeof c->rbuf);
		if (n < 0)
			return -errno;
		int left = (int)n;
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
		     mnl_nlmsg_ok(h, left) && h->nlmsg_len <= (uint32_t)left;
		     h = mnl_nlmsg_next(h, &left)) {
			if (h->nlmsg_seq != seq || (h->nlmsg_pid && h->nlmsg_pid != c->portid))
				continue;
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			if (h->nlmsg_type == NLMSG_DONE)
				return intr ? -EINTR : 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
				if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
					return -EBADMSG;
				return e->error < 0 ? e->error : (intr ? -EINTR : 0);
			}
			if (h->nlmsg_type < NLMSG_MIN_TYPE || !cb)
				continue;
			if (cb(h, data) < 0)
				return -EBADMSG;
		}
	}
}

int ct_dump_mark(struct ct *c, uint32_t value, uint32_t mask,
                 int (*fn)(const struct ct_entry *e, void *arg), void *arg)
{
	char buf[CT_MSG_MAX];
	if (!c || !fn)
		return -EINVAL;
	struct nlmsghdr *nlh = ct_build_dump(buf, sizeof buf, ++c->seq, value, mask);
	if (!nlh)
		return -EINVAL;
	struct dump_ctx d = {.value = value & mask, .mask = mask, .fn = fn, .arg = arg};
	return talk(c, nlh, dump_cb, &d);
}

int ct_set_mark(struct ct *c, const struct ct_entry *e, uint32_t value, uint32_t mask)
{
	char buf[CT_MSG_MAX];
	if (!c || !e)
		return -EINVAL;
	struct nlmsghdr *nlh = ct_build_set_mark(buf, sizeof buf, ++c->seq, e, value, mask);
	if (!nlh)
		return -EINVAL;
	return talk(c, nlh, NULL, NULL);
}

int ct_delete(struct ct *c, const struct ct_entry *e)
{
	char buf[CT_MSG_MAX];
	if (!c || !e)
		return -EINVAL;
	struct nlmsghdr *nlh = ct_build_delete(buf, sizeof buf, ++c->seq, e);
	if (!nlh)
		return -EINVAL;
	return talk(c, nlh, NULL, NULL);
}
