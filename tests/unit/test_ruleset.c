/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rules_render(): the text of the ruleset for host/gateway, nft/xt, one and
 * four queues. No kernel is touched (apply/delete: tests/nfq/selftest.sh).
 */
#include "../../nfq/marks.h"
#include "../../nfq/ruleset.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FAST_PATH "ct mark & 0x0f000000 == 0x01000000 accept"
#define SET_QUEUED "meta mark set meta mark & 0xf0ffffff | 0x04000000"
#define POST_QUEUED_DROP "meta mark & 0x0f000000 == 0x04000000 drop"
#define SET_QUEUED_NEW "ct state new meta mark set meta mark & 0xf0ffffff | 0x06000000"
#define POST_QUEUED_NEW_DROP "meta mark & 0x0f000000 == 0x06000000 drop"
#define HOST_REPLIES "ct direction reply meta l4proto { tcp, icmp, ipv6-icmp } accept"
#define SET_REPLY_NEW "ct direction reply meta mark set meta mark & 0xf0ffffff | 0x06000000"

static struct rules_params host_params(void)
{
	struct rules_params p = {.queue_num = 0, .queue_threads = 1};

	assert_true(addr_parse("127.0.0.1", &p.dns_v4));
	assert_true(addr_parse("::1", &p.dns_v6));
	return p;
}

static struct rules_params gateway_params(void)
{
	struct rules_params p = {.gateway = true,
	                         .inside = "eth1",
	                         .queue_num = 0,
	                         .queue_threads = 1,
	                         .dns_port = 5353};

	assert_true(addr_parse("198.51.100.1", &p.dns_v4));
	assert_true(addr_parse("2001:db8::1", &p.dns_v6));
	return p;
}

/* Offset of needle in hay; fails the test when absent. */
static size_t at(const char *hay, const char *needle)
{
	const char *s;

	if (!hay)
		fail_msg("missing \"%s\": no such chain", needle);
	s = strstr(hay, needle);
	if (!s)
		fail_msg("missing \"%s\" in:\n%s", needle, hay);
	return (size_t)(s - hay);
}

static void assert_absent(const char *hay, const char *needle)
{
	if (!hay)
		fail_msg("no such chain (looking for \"%s\")", needle);
	if (strstr(hay, needle))
		fail_msg("unexpected \"%s\" in:\n%s", needle, hay);
}

/* Text between "chain NAME {" and the next "\t}". */
static char *chain(const char *text, const char *name)
{
	char head[64];
	const char *s, *e;
	char *out;

	snprintf(head, sizeof(head), "\tchain %s {\n", name);
	s = strstr(text, head);
	if (!s)
		return NULL;
	e = strstr(s, "\n\t}\n");
	assert_non_null(e);
	out = strndup(s, (size_t)(e - s) + 1);
	assert_non_null(out);
	return out;
}

/* What every variant must have. */
static void common_checks(const char *t, enum rules_backend b, bool gateway)
{
	/* our own sockets are untracked, before conntrack sees them */
	char *self = chain(t, "self");
	assert_non_null(self);
	at(self, "type filter hook output priority raw; policy accept;");
	at(self, "meta mark & 0x0f000000 == 0x08000000 notrack");
	free(self);

	char *pre = chain(t, "pre"), *post = chain(t, "post");

	assert_non_null(pre);
	assert_non_null(post);
	assert_absent(t, "bypass");
	assert_absent(t, "fanout");
	/* fast path before anything else that costs, and before the queue */
	assert_true(at(pre, FAST_PATH) < at(pre, SET_QUEUED));
	assert_true(at(pre, "ct mark & 0x0f000000 == 0x02000000 meta l4proto tcp reject with "
	                    "tcp reset") < at(pre, SET_QUEUED));
	/* passed always: ICMP errors, ND, DHCP - before QUEUED is set */
	assert_true(at(pre, "ct state related icmp type { destination-unreachable, "
	                    "time-exceeded, parameter-problem } accept") < at(pre, SET_QUEUED));
	assert_true(at(pre, "packet-too-big") < at(pre, SET_QUEUED));
	/* ct state invalid never reaches the queue */
	assert_true(at(pre, "ct state invalid drop") < at(pre, SET_QUEUED));
	if (gateway) {
		/* link-local traffic is never forwarded: no ND, MLD or DHCP accept */
		assert_absent(pre, "nd-neighbor");
		assert_absent(pre, "mld");
		assert_absent(pre, "sport 68");
		assert_absent(pre, "sport 546");
		assert_true(at(pre, "ip ttl < 64 ip ttl set 64") < at(pre, SET_QUEUED));
		assert_true(at(pre, "ip6 hoplimit < 64 ip6 hoplimit set 64") < at(pre, SET_QUEUED));
	} else {
		/* ND / MLD only to link-local or multicast, with their hop limits;
		 * DHCP only to broadcast / the DHCPv6 group */
		assert_true(at(pre, "nd-neighbor-advert, nd-redirect } ip6 hoplimit 255 ip6 daddr "
		                    "{ fe80::/10, ff02::/16 } accept") < at(pre, SET_QUEUED));
		assert_true(at(pre, "{ nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 "
		                    "ip6 length <= 32 accept") < at(pre, SET_QUEUED));
		assert_true(at(pre, "mld2-listener-report } ip6 hoplimit 1 ip6 daddr { fe80::/10, "
		                    "ff02::/16 } accept") < at(pre, SET_QUEUED));
		assert_true(at(pre, "udp sport 68 udp dport 67 ip daddr 255.255.255.255 accept") <
		            at(pre, SET_QUEUED));
		assert_true(at(pre, "udp sport 546 udp dport 547 ip6 daddr ff02::1:2 accept") <
		            at(pre, SET_QUEUED));
		assert_absent(pre, "ttl set");
	}
	/* a packet without a conntrack entry is queued as such (incarnations) */
	assert_true(at(pre, SET_QUEUED) < at(pre, SET_QUEUED_NEW));
	if (b == RULES_NFT) {
		assert_true(at(pre, SET_QUEUED_NEW) < at(pre, "\t\tqueue num "));
	} else {
		/* xt: the queue step is the NFQUEUE target added by libnftnl */
		assert_absent(pre, "\t\tqueue ");
	}
	/* post: fail closed, and the verdict marks become ct marks */
	at(post,
	   gateway ? "hook forward priority filter + 10" : "hook output priority filter + 10");
	assert_true(at(post, POST_QUEUED_DROP) < at(post, "== 0x01000000 ct mark set"));
	assert_true(at(post, POST_QUEUED_NEW_DROP) < at(post, "== 0x01000000 ct mark set"));
	at(post, "meta mark & 0x0f000000 == 0x01000000 ct mark set ct mark & 0xf0ffffff | "
	         "0x01000000 accept");
	assert_true(at(post, "meta mark & 0x0f000000 == 0x02000000 ct mark set ct mark & "
	                     "0xf0ffffff | 0x02000000") <
	            at(post, "meta mark & 0x0f000000 == 0x02000000 meta l4proto tcp reject with "
	                     "tcp reset"));
	at(post, "meta mark & 0x0f000000 == 0x02000000 drop");
	at(post, "meta mark & 0x0f000000 == 0x03000000 accept");
	free(pre);
	free(post);
}

static void test_host(enum rules_backend b, unsigned threads)
{
	struct rules_params p = host_params();
	char *t, *pre, *dns;

	p.queue_threads = (uint16_t)threads;
	t = rules_render(&p, b);
	assert_non_null(t);
	assert_int_equal(at(t, "table inet egressd {\n"), 0);
	common_checks(t, b, false);
	pre = chain(t, "pre");
	at(pre, "type filter hook output priority filter; policy accept;");
	/* loopback before the DENY rule: our own resets reach local sockets */
	assert_true(at(pre, "oif \"lo\" accept") < at(pre, "== 0x02000000 meta l4proto tcp"));
	assert_true(at(pre, "meta mark & 0x0f000000 == 0x08000000 accept") < at(pre, SET_QUEUED));
	/* replies of local servers are not egress where a handshake made the
	 * entry (TCP) and for ICMP answers ... */
	assert_true(at(pre, HOST_REPLIES) < at(pre, SET_QUEUED));
	assert_absent(pre, "\t\tct direction reply accept");
	/* ... UDP and the rest in the reply direction are queued as packets
	 * conntrack had no entry for: an entry the server's datagram made after
	 * conntrack forgot the client's flow (issue 9, class 1) */
	assert_true(at(pre, SET_QUEUED_NEW) < at(pre, SET_REPLY_NEW));
	if (b == RULES_NFT)
		assert_true(at(pre, SET_REPLY_NEW) < at(pre, "\t\tqueue num "));
	assert_absent(pre, "iifname");
	/* DNS redirected to our own listener passes (only that address and port) */
	assert_true(at(pre, "ct status dnat ip daddr 127.0.0.1 th dport 53 accept") <
	            at(pre, SET_QUEUED));
	assert_true(at(pre, "ct status dnat ip6 daddr ::1 th dport 53 accept") <
	            at(pre, SET_QUEUED));
	if (b == RULES_NFT)
		at(pre, threads > 1 ? "queue num 0-3\n" : "queue num 0\n");
	dns = chain(t, "dns");
	assert_non_null(dns);
	at(dns, "type nat hook output priority -100;");
	assert_true(at(dns, "meta mark & 0x0f000000 == 0x08000000 return") <
	            at(dns, "meta l4proto { udp, tcp } th dport 53 dnat ip to 127.0.0.1:53\n"));
	at(dns, "meta l4proto { udp, tcp } th dport 53 dnat ip6 to [::1]:53\n");
	free(dns);
	free(pre);
	free(t);
}

static void test_gateway(enum rules_backend b, unsigned threads)
{
	struct rules_params p = gateway_params();
	char *t, *pre, *dns;

	p.queue_threads = (uint16_t)threads;
	p.queue_num = 4;
	t = rules_render(&p, b);
	assert_non_null(t);
	common_checks(t, b, true);
	pre = chain(t, "pre");
	at(pre, "type filter hook forward priority filter; policy accept;");
	/* neither from nor to the inside: not ours (other run tables, other links) */
	assert_true(at(pre, "iifname != \"eth1\" oifname != \"eth1\" accept") <
	            at(pre, "iifname != \"eth1\" ct state established,related accept"));
	/* replies from outside: established only, after the fast path */
	assert_true(at(pre, FAST_PATH) <
	            at(pre, "iifname != \"eth1\" ct state established,related accept"));
	assert_true(at(pre, "iifname != \"eth1\" ct state established,related accept") <
	            at(pre, "iifname != \"eth1\" drop"));
	assert_true(at(pre, "iifname != \"eth1\" drop") < at(pre, SET_QUEUED));
	assert_absent(pre, "oif \"lo\"");
	/* the gateway judges replies by interface (established from outside) */
	assert_absent(pre, "ct direction reply meta");
	if (b == RULES_NFT)
		at(pre, threads > 1 ? "queue num 4-7\n" : "queue num 4\n");
	dns = chain(t, "dns");
	assert_non_null(dns);
	at(dns, "type nat hook prerouting priority dstnat;");
	assert_true(at(dns, "iifname != \"eth1\" return") <
	            at(dns, "th dport 53 dnat ip to 198.51.100.1:5353\n"));
	at(dns, "th dport 53 dnat ip6 to [2001:db8::1]:5353\n");
	free(dns);
	free(pre);
	free(t);
}

static void host_nft_1(void **state)
{
	test_host(RULES_NFT, 1);
}
static void host_nft_4(void **state)
{
	test_host(RULES_NFT, 4);
}
static void host_xt_1(void **state)
{
	test_host(RULES_XT, 1);
}
static void host_xt_4(void **state)
{
	test_host(RULES_XT, 4);
}
static void gateway_nft_1(void **state)
{
	test_gateway(RULES_NFT, 1);
}
static void gateway_nft_4(void **state)
{
	test_gateway(RULES_NFT, 4);
}
static void gateway_xt_1(void **state)
{
	test_gateway(RULES_XT, 1);
}
static void gateway_xt_4(void **state)
{
	test_gateway(RULES_XT, 4);
}

static void table_name_and_no_dns(void **state)
{
	struct rules_params p = {.table = "egressd_run42", .queue_threads = 1};
	char *t = rules_render(&p, RULES_NFT);

	assert_non_null(t);
	assert_int_equal(at(t, "table inet egressd_run42 {\n"), 0);
	assert_absent(t, "chain dns");
	assert_absent(t, "dnat");
	free(t);
}

static void refused_params(void **state)
{
	struct rules_params p = gateway_params();
	char *t;

	p.inside = NULL; /* gateway without an inside interface */
	assert_null(rules_render(&p, RULES_NFT));
	p.inside = "eth1\" accept #"; /* would end the string in nft text */
	assert_null(rules_render(&p, RULES_NFT));
	p.inside = "averyveryverylongifname"; /* > IFNAMSIZ - 1 */
	assert_null(rules_render(&p, RULES_NFT));
	p.inside = "eth1";
	p.table = "egressd; flush ruleset";
	assert_null(rules_render(&p, RULES_XT));
	p.table = "";
	assert_null(rules_render(&p, RULES_XT));
	p.table = NULL;
	p.queue_num = 65535;
	p.queue_threads = 2; /* 65535..65536 */
	assert_null(rules_render(&p, RULES_NFT));
	p.queue_threads = 1;
	t = rules_render(&p, RULES_NFT);
	assert_non_null(t);
	free(t);
}

static void backend_names(void **state)
{
	assert_string_equal(rules_backend_name(RULES_AUTO), "auto");
	assert_string_equal(rules_backend_name(RULES_NFT), "nft");
	assert_string_equal(rules_backend_name(RULES_XT), "xt");
}

static void marks_are_distinct_and_masked(void **state)
{
	const uint32_t m[] = {MARK_ALLOW, MARK_DENY,       MARK_PASS, MARK_QUEUED,
	                      MARK_QUEUED_NEW, MARK_INSPECT, MARK_SELF};
	const size_t n = sizeof m / sizeof m[0];

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(m[i] & ~MARK_MASK, 0);
		for (size_t j = i + 1; j < n; j++)
			assert_int_not_equal(m[i], m[j]);
	}
}

/* Issue 9, class 6: forged sources to the host's (gateway's) own addresses. */
static void local_spoof(void **state)
{
	static const char udp[] = "\"lo\" fib saddr type != local meta l4proto udp drop\n";
	static const char tcp[] = "\"lo\" fib saddr type != local tcp flags & rst == 0 drop\n";
	char o_udp[80], o_tcp[80], i_udp[80], i_tcp[80];
	struct rules_params p = host_params();
	char *t, *pre, *in;

	(void)state;
	snprintf(o_udp, sizeof(o_udp), "oif %s", udp);
	snprintf(o_tcp, sizeof(o_tcp), "oif %s", tcp);
	snprintf(i_udp, sizeof(i_udp), "iif %s", udp);
	snprintf(i_tcp, sizeof(i_tcp), "iif %s", tcp);
	for (int b = RULES_NFT; b <= RULES_XT; b++) {
		t = rules_render(&p, (enum rules_backend)b);
		assert_non_null(t);
		pre = chain(t, "pre");
		/* before anything accepts loopback, and never a reset (ours pass) */
		assert_true(at(pre, o_udp) < at(pre, "oif \"lo\" accept"));
		assert_true(at(pre, o_tcp) < at(pre, "oif \"lo\" accept"));
		in = chain(t, "local_in");
		at(in, "type filter hook input priority filter; policy accept;");
		/* the replies of DNS redirected to our listener carry the server's address */
		assert_true(at(in, "iif \"lo\" ct status dnat accept") < at(in, i_udp));
		at(in, i_tcp);
		assert_absent(in, "reset");
		free(in);
		free(pre);
		free(t);
	}
	/* gateway: reverse path on the inside, for the gateway's own sockets */
	p = gateway_params();
	t = rules_render(&p, RULES_NFT);
	assert_non_null(t);
	assert_absent(t, "fib saddr type != local");
	in = chain(t, "local_in");
	at(in, "type filter hook input priority filter; policy accept;");
	assert_true(at(in, "iifname \"eth1\" udp dport 67 accept") <
	            at(in, "iifname \"eth1\" meta l4proto { udp, tcp } fib saddr . iif oif missing "
	                   "drop\n"));
	free(in);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(host_nft_1),
	    cmocka_unit_test(host_nft_4),
	    cmocka_unit_test(host_xt_1),
	    cmocka_unit_test(host_xt_4),
	    cmocka_unit_test(gateway_nft_1),
	    cmocka_unit_test(gateway_nft_4),
	    cmocka_unit_test(gateway_xt_1),
	    cmocka_unit_test(gateway_xt_4),
	    cmocka_unit_test(table_name_and_no_dns),
	    cmocka_unit_test(refused_params),
	    cmocka_unit_test(backend_names),
	    cmocka_unit_test(marks_are_distinct_and_masked),
	    cmocka_unit_test(local_spoof),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
