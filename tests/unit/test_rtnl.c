/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nfq/rtnl.c without a socket: each request egressd run sends is read back
 * (type, flags, family header, attributes, the veth peer's nest), refuses
 * what the kernel would (long or empty names, a prefix longer than the
 * address) and never writes past the buffer it is given; acks are parsed.
 * The kernel side is exercised by tests/netns/test_run.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <string.h>
#include <sys/socket.h>

#include "../../nfq/rtnl.h"

#define ATTR_MAX 64

struct attrs {
	const struct nlattr *tb[ATTR_MAX];
};

static int attr_cb(const struct nlattr *a, void *data)
{
	struct attrs *t = data;
	unsigned type = mnl_attr_get_type(a);
	if (type < ATTR_MAX)
		t->tb[type] = a;
	return MNL_CB_OK;
}

static void parse(const struct nlmsghdr *nlh, size_t hdr, struct attrs *t)
{
	memset(t, 0, sizeof *t);
	assert_int_equal(mnl_attr_parse(nlh, (unsigned)hdr, attr_cb, t), MNL_CB_OK);
}

static void parse_nest(const struct nlattr *nest, struct attrs *t)
{
	memset(t, 0, sizeof *t);
	assert_non_null(nest);
	assert_int_equal(mnl_attr_parse_nested(nest, attr_cb, t), MNL_CB_OK);
}

static const char *str(const struct nlattr *a)
{
	assert_non_null(a);
	assert_int_equal(mnl_attr_validate(a, MNL_TYPE_NUL_STRING), 0);
	return mnl_attr_get_str(a);
}

static void header(const struct nlmsghdr *nlh, uint16_t type, uint16_t flags, uint32_t seq)
{
	assert_non_null(nlh);
	assert_int_equal(nlh->nlmsg_type, type);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK | flags);
	assert_int_equal(nlh->nlmsg_seq, seq);
	assert_true(nlh->nlmsg_len <= RTNL_MSG_MAX);
}

static void veth_new(void **state)
{
	char buf[RTNL_MSG_MAX];
	struct nlmsghdr *nlh = rtnl_msg_veth_new(buf, sizeof buf, 9, "egr3h", "egr3c", 4242);
	struct attrs t, info, data, peer;

	header(nlh, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 9);
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifi->ifi_family, AF_UNSPEC);
	assert_int_equal(ifi->ifi_index, 0);
	parse(nlh, sizeof *ifi, &t);
	assert_string_equal(str(t.tb[IFLA_IFNAME]), "egr3h");
	assert_null(t.tb[IFLA_NET_NS_PID]); /* the host side stays here */
	parse_nest(t.tb[IFLA_LINKINFO], &info);
	assert_string_equal(str(info.tb[IFLA_INFO_KIND]), "veth");
	parse_nest(info.tb[IFLA_INFO_DATA], &data);
	/* VETH_INFO_PEER: an ifinfomsg, then the peer's own attributes */
	const struct nlattr *pe = data.tb[VETH_INFO_PEER];
	assert_non_null(pe);
	assert_true(mnl_attr_get_payload_len(pe) >= sizeof(struct ifinfomsg));
	const struct ifinfomsg *pifi = mnl_attr_get_payload(pe);
	assert_int_equal(pifi->ifi_family, AF_UNSPEC);
	assert_int_equal(pifi->ifi_index, 0);
	memset(&peer, 0, sizeof peer);
	const char *p = (const char *)pifi + MNL_ALIGN(sizeof(struct ifinfomsg));
	size_t plen = mnl_attr_get_payload_len(pe) - MNL_ALIGN(sizeof(struct ifinfomsg));
	assert_int_equal(mnl_attr_parse_payload(p, plen, attr_cb, &peer), MNL_CB_OK);
	assert_string_equal(str(peer.tb[IFLA_IFNAME]), "egr3c");
	assert_non_null(peer.tb[IFLA_NET_NS_PID]);
	assert_int_equal(mnl_attr_get_u32(peer.tb[IFLA_NET_NS_PID]), 4242);

	/* peer_pid 0: the peer stays in this namespace */
	nlh = rtnl_msg_veth_new(buf, sizeof buf, 1, "a", "b", 0);
	assert_non_null(nlh);
	parse(nlh, sizeof *ifi, &t);
	parse_nest(t.tb[IFLA_LINKINFO], &info);
	parse_nest(info.tb[IFLA_INFO_DATA], &data);
	pe = data.tb[VETH_INFO_PEER];
	p = (const char *)mnl_attr_get_payload(pe) + MNL_ALIGN(sizeof(struct ifinfomsg));
	plen = mnl_attr_get_payload_len(pe) - MNL_ALIGN(sizeof(struct ifinfomsg));
	memset(&peer, 0, sizeof peer);
	assert_int_equal(mnl_attr_parse_payload(p, plen, attr_cb, &peer), MNL_CB_OK);
	assert_string_equal(str(peer.tb[IFLA_IFNAME]), "b");
	assert_null(peer.tb[IFLA_NET_NS_PID]);
}

static void names_refused(void **state)
{
	char buf[RTNL_MSG_MAX];
	const char *bad[] = {NULL, "", "sixteen-chars-xx", "a/b", "a b", "a:0", "tab\t"};

	assert_non_null(rtnl_msg_link_up(buf, sizeof buf, 1, "fifteen-chars-x"));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_null(rtnl_msg_veth_new(buf, sizeof buf, 1, bad[i], "ok", 1));
		assert_null(rtnl_msg_veth_new(buf, sizeof buf, 1, "ok", bad[i], 1));
		assert_null(rtnl_msg_link_del(buf, sizeof buf, 1, bad[i]));
		assert_null(rtnl_msg_link_up(buf, sizeof buf, 1, bad[i]));
	}
	assert_null(rtnl_msg_veth_new(buf, sizeof buf, 1, "a", "b", -1));
	assert_null(rtnl_msg_veth_new(NULL, sizeof buf, 1, "a", "b", 1));
}

static void link_del_and_up(void **state)
{
	char buf[RTNL_MSG_MAX];
	struct attrs t;
	struct nlmsghdr *nlh = rtnl_msg_link_del(buf, sizeof buf, 5, "egr0h");

	header(nlh, RTM_DELLINK, 0, 5);
	parse(nlh, sizeof(struct ifinfomsg), &t);
	assert_string_equal(str(t.tb[IFLA_IFNAME]), "egr0h");
	assert_null(t.tb[IFLA_LINKINFO]);

	nlh = rtnl_msg_link_up(buf, sizeof buf, 6, "lo");
	header(nlh, RTM_NEWLINK, 0, 6); /* a change: never NLM_F_CREATE */
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifi->ifi_flags, IFF_UP);
	assert_int_equal(ifi->ifi_change, IFF_UP);
	parse(nlh, sizeof *ifi, &t);
	assert_string_equal(str(t.tb[IFLA_IFNAME]), "lo");
}

static void addr_new(const char *text, unsigned prefix, int af, size_t alen)
{
	char buf[RTNL_MSG_MAX];
	struct addr a;
	struct attrs t;

	assert_true(addr_parse(text, &a));
	struct nlmsghdr *nlh = rtnl_msg_addr_new(buf, sizeof buf, 11, 7, &a, prefix);
	header(nlh, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, 11);
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(ifa->ifa_family, af);
	assert_int_equal(ifa->ifa_prefixlen, prefix);
	assert_int_equal(ifa->ifa_index, 7);
	assert_int_equal(ifa->ifa_scope, RT_SCOPE_UNIVERSE);
	parse(nlh, sizeof *ifa, &t);
	for (int k = IFA_ADDRESS; k <= IFA_LOCAL; k++) {
		assert_non_null(t.tb[k]);
		assert_int_equal(mnl_attr_get_payload_len(t.tb[k]), alen);
		assert_memory_equal(mnl_attr_get_payload(t.tb[k]), a.b, alen);
	}
	/* a prefix longer than the address, no link, no family: refused */
	assert_null(rtnl_msg_addr_new(buf, sizeof buf, 1, 7, &a, (unsigned)(8 * alen + 1)));
	assert_null(rtnl_msg_addr_new(buf, sizeof buf, 1, 0, &a, prefix));
	a.family = ADDR_NONE;
	assert_null(rtnl_msg_addr_new(buf, sizeof buf, 1, 7, &a, prefix));
	assert_null(rtnl_msg_addr_new(buf, sizeof buf, 1, 7, NULL, prefix));
}

static void addr_new_v4_v6(void **state)
{
	addr_new("192.0.2.1", 30, AF_INET, 4);
	addr_new("192.0.2.1", 32, AF_INET, 4);
	addr_new("2001:db8::1", 64, AF_INET6, 16);
	addr_new("2001:db8::1", 128, AF_INET6, 16);
}

static void route_default(const char *text, int af, size_t alen)
{
	char buf[RTNL_MSG_MAX];
	struct addr gw;
	struct attrs t;

	assert_true(addr_parse(text, &gw));
	struct nlmsghdr *nlh = rtnl_msg_route_default(buf, sizeof buf, 13, &gw);
	header(nlh, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, 13);
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(rtm->rtm_family, af);
	assert_int_equal(rtm->rtm_dst_len, 0); /* default */
	assert_int_equal(rtm->rtm_table, RT_TABLE_MAIN);
	assert_int_equal(rtm->rtm_type, RTN_UNICAST);
	assert_int_equal(rtm->rtm_scope, RT_SCOPE_UNIVERSE);
	parse(nlh, sizeof *rtm, &t);
	assert_null(t.tb[RTA_DST]);
	assert_null(t.tb[RTA_OIF]);
	assert_non_null(t.tb[RTA_GATEWAY]);
	assert_int_equal(mnl_attr_get_payload_len(t.tb[RTA_GATEWAY]), alen);
	assert_memory_equal(mnl_attr_get_payload(t.tb[RTA_GATEWAY]), gw.b, alen);
	gw.family = ADDR_NONE;
	assert_null(rtnl_msg_route_default(buf, sizeof buf, 1, &gw));
}

static void route_default_v4_v6(void **state)
{
	route_default("192.0.2.1", AF_INET, 4);
	route_default("2001:db8::1", AF_INET6, 16);
}

/* Every builder, given each buffer shorter than its message: NULL, and
 * nothing written past the length it was given. */
#define CANARY 0xa5
static void short_buffers(void **state)
{
	unsigned char full[RTNL_MSG_MAX], buf[RTNL_MSG_MAX + 64];
	struct addr a6, g4;
	assert_true(addr_parse("2001:db8::2", &a6));
	assert_true(addr_parse("192.0.2.1", &g4));
	for (int which = 0; which < 5; which++) {
		struct nlmsghdr *nlh = NULL;
		size_t need;
#define BUILD(B, L)                                                                                \
	(which == 0   ? rtnl_msg_veth_new(B, L, 1, "egr63h", "egr63c", 99)                         \
	 : which == 1 ? rtnl_msg_link_del(B, L, 1, "egr63h")                                       \
	 : which == 2 ? rtnl_msg_link_up(B, L, 1, "egr63c")                                        \
	 : which == 3 ? rtnl_msg_addr_new(B, L, 1, 3, &a6, 64)                                     \
	              : rtnl_msg_route_default(B, L, 1, &g4))
		nlh = BUILD(full, sizeof full);
		assert_non_null(nlh);
		need = nlh->nlmsg_len;
		for (size_t len = 0; len < need; len++) {
			memset(buf, CANARY, sizeof buf);
			assert_null(BUILD(buf, len));
			for (size_t i = len; i < sizeof buf; i++)
				assert_int_equal(buf[i], CANARY);
		}
		memset(buf, CANARY, sizeof buf);
		nlh = BUILD(buf, need);
		assert_non_null(nlh);
		assert_int_equal(nlh->nlmsg_len, need);
		assert_memory_equal(buf, full, need);
#undef BUILD
	}
}

static size_t put_err(char *buf, uint32_t seq, int error, size_t payload)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = seq;
	struct nlmsgerr *e = mnl_nlmsg_put_extra_header(nlh, sizeof *e);
	e->error = error;
	nlh->nlmsg_len = (uint32_t)(MNL_NLMSG_HDRLEN + payload);
	return nlh->nlmsg_len;
}

static void acks(void **state)
{
	char buf[256];
	size_t n;

	n = put_err(buf, 3, 0, sizeof(struct nlmsgerr));
	assert_int_equal(rtnl_parse_ack(buf, n, 3), 0);
	assert_int_equal(rtnl_parse_ack(buf, n, 4), -EPROTO); /* not ours */
	n = put_err(buf, 3, -EEXIST, sizeof(struct nlmsgerr));
	assert_int_equal(rtnl_parse_ack(buf, n, 3), -EEXIST);
	n = put_err(buf, 3, -ENODEV, sizeof(struct nlmsgerr));
	assert_int_equal(rtnl_parse_ack(buf, n, 3), -ENODEV);
	n = put_err(buf, 3, 17, sizeof(struct nlmsgerr)); /* positive: not an errno */
	assert_int_equal(rtnl_parse_ack(buf, n, 3), -EPROTO);
	n = put_err(buf, 3, 0, 2); /* too short for struct nlmsgerr */
	assert_int_equal(rtnl_parse_ack(buf, n, 3), -EPROTO);
	n = put_err(buf, 3, 0, sizeof(struct nlmsgerr));
	assert_int_equal(rtnl_parse_ack(buf, n - 1, 3), -EPROTO); /* truncated */
	assert_int_equal(rtnl_parse_ack(buf, 0, 3), -EPROTO);
	/* another message first, then ours */
	struct nlmsghdr *other = mnl_nlmsg_put_header(buf);
	other->nlmsg_type = RTM_NEWLINK;
	other->nlmsg_seq = 3;
	size_t first = other->nlmsg_len;
	n = first + put_err(buf + first, 3, -EPERM, sizeof(struct nlmsgerr));
	assert_int_equal(rtnl_parse_ack(buf, n, 3), -EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(veth_new),
	    cmocka_unit_test(names_refused),
	    cmocka_unit_test(link_del_and_up),
	    cmocka_unit_test(addr_new_v4_v6),
	    cmocka_unit_test(route_default_v4_v6),
	    cmocka_unit_test(short_buffers),
	    cmocka_unit_test(acks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
