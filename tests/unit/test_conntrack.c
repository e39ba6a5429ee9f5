/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nfq/conntrack.c without a socket: the update and delete messages carry the
 * tuple, zone and mark they were built from (read back with the parser the
 * dump uses: a dump answer has the same attributes), the dump request asks
 * for the mark filter, and the parser refuses truncated input. The kernel
 * side is exercised by tests/netns/adversary/test_revoke.py.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "../../nfq/conntrack.h"

static struct ct_entry entry(const char *src, const char *dst, uint8_t proto, uint16_t zone)
{
	struct ct_entry e;
	memset(&e, 0, sizeof e);
	assert_true(addr_parse(src, &e.src));
	assert_true(addr_parse(dst, &e.dst));
	e.proto = proto;
	e.sport = 40000;
	e.dport = 8443;
	e.zone = zone;
	return e;
}

static void roundtrip(const char *src, const char *dst, uint8_t proto, uint16_t zone)
{
	char buf[2048];
	struct ct_entry e = entry(src, dst, proto, zone), got;
	struct nlmsghdr *nlh = ct_build_set_mark(buf, sizeof buf, 7, &e, 0x02000000u, 0x0f000000u);
	assert_non_null(nlh);
	assert_int_equal(nlh->nlmsg_type, NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW);
	assert_int_equal(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK); /* an update, never a create */
	assert_int_equal(nlh->nlmsg_seq, 7);
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(nfg->nfgen_family, e.src.family == ADDR_V4 ? AF_INET : AF_INET6);
	assert_int_equal(ct_parse(nlh, nlh->nlmsg_len, &got), 0);
	assert_int_equal(got.proto, proto);
	assert_true(addr_eq(&got.src, &e.src));
	assert_true(addr_eq(&got.dst, &e.dst));
	assert_int_equal(got.sport, 40000);
	assert_int_equal(got.dport, 8443);
	assert_int_equal(got.zone, zone);
	assert_int_equal(got.mark, 0x02000000u);
	assert_true(ct_entry_open(&got));

	nlh = ct_build_delete(buf, sizeof buf, 8, &e);
	assert_non_null(nlh);
	assert_int_equal(nlh->nlmsg_type, NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_DELETE);
	assert_int_equal(ct_parse(nlh, nlh->nlmsg_len, &got), 0);
	assert_true(addr_eq(&got.dst, &e.dst));
	assert_int_equal(got.zone, zone);
	assert_int_equal(got.mark, 0);

	/* every truncation of the message is refused or read without overrun */
	nlh = ct_build_set_mark(buf, sizeof buf, 9, &e, 0x02000000u, 0x0f000000u);
	uint32_t full = nlh->nlmsg_len;
	for (uint32_t n = 0; n < full; n++) {
		char cut[2048];
		memcpy(cut, nlh, n);
		struct nlmsghdr *c = (struct nlmsghdr *)cut;
		if (n >= sizeof *c)
			c->nlmsg_len = n;
		if (n < sizeof *c)
			continue;
		(void)ct_parse(c, n, &got);
	}
}

static void messages(void **state)
{
	(void)state;
	roundtrip("198.51.100.10", "203.0.113.11", IPPROTO_TCP, 0);
	roundtrip("2001:db8:1::10", "2001:db8:2::11", IPPROTO_TCP, 5);
	roundtrip("198.51.100.10", "203.0.113.11", IPPROTO_UDP, 65535);
	/* mixed families or no address: no message */
	char buf[2048];
	struct ct_entry e = entry("198.51.100.10", "2001:db8::1", IPPROTO_TCP, 0);
	assert_null(ct_build_set_mark(buf, sizeof buf, 1, &e, 0, 0));
	memset(&e, 0, sizeof e);
	assert_null(ct_build_delete(buf, sizeof buf, 1, &e));
	/* a buffer too small */
	e = entry("198.51.100.10", "203.0.113.11", IPPROTO_TCP, 0);
	assert_null(ct_build_set_mark(buf, 64, 1, &e, 0, 0));
	/* no tuple: refused */
	struct ct_entry got;
	assert_int_equal(ct_parse(NULL, 0, &got), -EINVAL);
	/* a length field past the buffer (or with the top bit set, which
	 * mnl_nlmsg_ok's int comparison lets through): refused */
	struct nlmsghdr *nlh = ct_build_set_mark(buf, sizeof buf, 1, &e, 0, 0x0f000000u);
	assert_non_null(nlh);
	uint32_t len = nlh->nlmsg_len;
	assert_int_equal(ct_parse(nlh, len - 1, &got), -EINVAL);
	nlh->nlmsg_len = 0x80000000u;
	assert_int_equal(ct_parse(nlh, len, &got), -EINVAL);
}

static void dump_request(void **state)
{
	(void)state;
	char buf[2048];
	struct nlmsghdr *nlh = ct_build_dump(buf, sizeof buf, 3, 0x01000000u, 0x0f000000u);
	assert_non_null(nlh);
	assert_int_equal(nlh->nlmsg_type, NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET);
	assert_true(nlh->nlmsg_flags & NLM_F_DUMP);
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	assert_int_equal(nfg->nfgen_family, AF_UNSPEC); /* both families */
	uint32_t mark = 0, mask = 0;
	const struct nlattr *a;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) == CTA_MARK)
			mark = ntohl(mnl_attr_get_u32(a));
		if (mnl_attr_get_type(a) == CTA_MARK_MASK)
			mask = ntohl(mnl_attr_get_u32(a));
	}
	assert_int_equal(mark, 0x01000000u);
	assert_int_equal(mask, 0x0f000000u);
}

static void open_states(void **state)
{
	(void)state;
	struct ct_entry e = entry("198.51.100.10", "203.0.113.11", IPPROTO_TCP, 0);
	e.has_tcp_state = true;
	e.tcp_state = TCP_CONNTRACK_ESTABLISHED;
	assert_true(ct_entry_open(&e));
	e.tcp_state = TCP_CONNTRACK_CLOSE_WAIT; /* the client may still send */
	assert_true(ct_entry_open(&e));
	e.tcp_state = TCP_CONNTRACK_TIME_WAIT;
	assert_false(ct_entry_open(&e));
	e.tcp_state = TCP_CONNTRACK_CLOSE;
	assert_false(ct_entry_open(&e));
	e.proto = IPPROTO_UDP;
	assert_true(ct_entry_open(&e));
}

/* Dump answers as the kernel writes them (the fuzz seeds): tuples, reply tuple,
 * status, timeout, mark, TCP state, zone. */
static void parse_seed(const char *name, struct ct_entry *e)
{
	char path[512];
	static uint32_t buf[1024];
	snprintf(path, sizeof path, "%s/tests/fuzz/corpus/conntrack/%s", SRCDIR, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf;
	assert_int_equal(ct_parse(nlh, n, e), 0);
}

static void kernel_answers(void **state)
{
	(void)state;
	struct ct_entry e;
	struct addr a;
	parse_seed("tcp4_established", &e);
	assert_int_equal(e.proto, IPPROTO_TCP);
	assert_true(addr_parse("198.51.100.10", &a) && addr_eq(&e.src, &a));
	assert_true(addr_parse("203.0.113.11", &a) && addr_eq(&e.dst, &a));
	assert_int_equal(e.sport, 40000);
	assert_int_equal(e.dport, 8443);
	assert_int_equal(e.mark, 0x01000000u);
	assert_true(e.has_tcp_state);
	assert_int_equal(e.tcp_state, TCP_CONNTRACK_ESTABLISHED);
	assert_int_equal(e.zone, 0);
	assert_true(ct_entry_open(&e));
	parse_seed("udp6_zone", &e);
	assert_int_equal(e.proto, IPPROTO_UDP);
	assert_true(addr_parse("2001:db8:2::11", &a) && addr_eq(&e.dst, &a));
	assert_int_equal(e.zone, 4);
	assert_false(e.has_tcp_state);
	parse_seed("tcp4_time_wait", &e);
	assert_false(ct_entry_open(&e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(messages),
	    cmocka_unit_test(dump_request),
	    cmocka_unit_test(open_states),
	    cmocka_unit_test(kernel_answers),
	};
	return cmocka_run_group_tests_name("conntrack", tests, NULL, NULL);
}
