/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rules_render(): the text of the ruleset for host/gateway, nft/xt, one and
 * four queues. No kernel is touched (apply/delete: tests/nfq/selftest.sh).
 */
#include "../../nfq/marks.h"
#include "../../nfq/ruleset.h"

#include <errno.h>
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
	/* the answers into an egressd run's namespace are its own table's; our
	 * listeners' answers to the containers' redirected DNS only with
	 * container_port (host_forward_nft_1) */
	assert_true(at(pre, "\t\toifname \"egr*\" ct direction reply accept\n") <
	            at(pre, SET_QUEUED));
	assert_absent(pre, "ct direction reply ct status dnat accept");
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

/* Host mode, the namespaces behind the host (issue 9, class 5). */
static void test_host_forward(enum rules_backend b, unsigned threads)
{
	struct rules_params p = host_params();
	char *t, *fpre, *fpost, *in, *dnsfwd, *dnsin;

	p.queue_threads = (uint16_t)threads;
	p.container_port = 5399;
	t = rules_render(&p, b);
	assert_non_null(t);
	fpre = chain(t, "fpre");
	fpost = chain(t, "fpost");
	in = chain(t, "inbound");
	dnsfwd = chain(t, "dnsfwd");
	dnsin = chain(t, "dnsin");
	assert_non_null(fpre);
	assert_non_null(fpost);
	assert_non_null(in);
	assert_non_null(dnsfwd);
	assert_non_null(dnsin);
	/* output: our container listener's answers (the entry is the redirect's) */
	char *pre = chain(t, "pre");
	assert_true(at(pre, "\t\tct direction reply ct status dnat accept\n") <
	            at(pre, SET_QUEUED));
	free(pre);

	/* fpre: the gateway's decision path on the forward hook, default deny */
	at(fpre, "type filter hook forward priority filter; policy accept;");
	assert_true(at(fpre, "ct state invalid drop") < at(fpre, SET_QUEUED));
	assert_true(at(fpre, FAST_PATH) < at(fpre, SET_QUEUED));
	assert_true(at(fpre, "ct mark & 0x0f000000 == 0x02000000 meta l4proto tcp reject with "
	                     "tcp reset") < at(fpre, SET_QUEUED));
	assert_true(at(fpre, "ct mark & 0x0f000000 == 0x02000000 drop") < at(fpre, SET_QUEUED));
	/* port forwards to this host and replies are not the containers' egress */
	assert_true(at(fpre, "ct mark & 0x0f000000 == 0x07000000 accept") < at(fpre, SET_QUEUED));
	assert_true(at(fpre, "ct direction reply accept") < at(fpre, SET_QUEUED));
	/* between two ports of one bridge (br_netfilter) */
	assert_true(at(fpre, "fib daddr . iif oif exists accept") < at(fpre, SET_QUEUED));
	assert_true(at(fpre, "ct state related icmp type { destination-unreachable") <
	            at(fpre, SET_QUEUED));
	assert_true(at(fpre, "packet-too-big") < at(fpre, SET_QUEUED));
	/* egressd run's veths: its own table decides */
	assert_true(at(fpre, "iifname \"egr*\" accept") < at(fpre, "ct state invalid drop"));
	at(fpre, "oifname \"egr*\" accept");
	/* released with a fresh TTL, as the gateway */
	assert_true(at(fpre, "ip ttl < 64 ip ttl set 64") < at(fpre, SET_QUEUED));
	assert_true(at(fpre, "ip6 hoplimit < 64 ip6 hoplimit set 64") < at(fpre, SET_QUEUED));
	/* nothing that only the host's own output may carry */
	assert_absent(fpre, "0x08000000 accept"); /* SELF: a forwarded packet is not ours */
	assert_absent(fpre, "oif \"lo\"");
	assert_absent(fpre, "nd-neighbor");
	assert_absent(fpre, "mld");
	assert_absent(fpre, "sport 68");
	assert_absent(fpre, "sport 546");
	assert_absent(fpre, "ct status dnat");
	if (b == RULES_NFT)
		assert_true(at(fpre, SET_QUEUED) <
		            at(fpre, threads > 1 ? "queue num 0-3\n" : "queue num 0\n"));
	else
		assert_absent(fpre, "\t\tqueue ");

	/* fpost: fail closed, verdict marks -> ct marks */
	at(fpost, "type filter hook forward priority filter + 10; policy accept;");
	assert_true(at(fpost, POST_QUEUED_DROP) < at(fpost, "== 0x01000000 ct mark set"));
	at(fpost, "meta mark & 0x0f000000 == 0x01000000 ct mark set ct mark & 0xf0ffffff | "
	          "0x01000000 accept");
	assert_true(at(fpost, "meta mark & 0x0f000000 == 0x02000000 ct mark set") <
	            at(fpost, "meta mark & 0x0f000000 == 0x02000000 meta l4proto tcp reject"));
	at(fpost, "meta mark & 0x0f000000 == 0x02000000 drop");
	at(fpost, "meta mark & 0x0f000000 == 0x03000000 accept");

	/* inbound: before NAT (dstnat is -100), new connections to this host only,
	 * never over a mark egressd already gave */
	at(in, "type filter hook prerouting priority -150; policy accept;");
	at(in, "iifname != \"lo\" ct state new ct mark & 0x0f000000 == 0 fib daddr type local "
	       "ct mark set ct mark & 0xf0ffffff | 0x07000000\n");

	/* dnsfwd: DNS to anywhere but this host, to the container listener */
	at(dnsfwd, "type nat hook prerouting priority dstnat; policy accept;");
	const size_t redir = at(dnsfwd, "meta l4proto { udp, tcp } th dport 53 redirect to :5399\n");
	assert_true(at(dnsfwd, "iifname \"lo\" return") < redir);
	assert_true(at(dnsfwd, "iifname \"egr*\" return") < redir);
	assert_true(at(dnsfwd, "fib daddr type local return") < redir);
	assert_absent(dnsfwd, "127.0.0.1");
	/* dnsin: only redirected packets reach the wildcard listener */
	at(dnsin, "type filter hook input priority filter; policy accept;");
	assert_true(at(dnsin, "meta l4proto { udp, tcp } th dport 5399 ct status dnat accept") <
	            at(dnsin, "meta l4proto { udp, tcp } th dport 5399 iifname != \"lo\" drop"));
	free(fpre);
	free(fpost);
	free(in);
	free(dnsfwd);
	free(dnsin);
	free(t);

	/* container_port 0: the forward path stays, no redirect, no listener rule */
	p.container_port = 0;
	t = rules_render(&p, b);
	assert_non_null(t);
	fpre = chain(t, "fpre");
	assert_non_null(fpre);
	free(fpre);
	assert_absent(t, "chain dnsfwd");
	assert_absent(t, "chain dnsin");
	assert_absent(t, "redirect to");
	free(t);
}

/* The gateway forwards only its inside: none of the host's forward chains. */
static void gateway_has_no_host_forward(void **state)
{
	struct rules_params p = gateway_params();
	char *t;

	p.container_port = 5399; /* ignored in gateway mode */
	t = rules_render(&p, RULES_NFT);
	assert_non_null(t);
	assert_absent(t, "chain fpre");
	assert_absent(t, "chain fpost");
	assert_absent(t, "chain inbound");
	assert_absent(t, "chain dnsfwd");
	assert_absent(t, "redirect to");
	assert_absent(t, "0x07000000");
	free(t);
}

static void host_forward_nft_1(void **state)
{
	test_host_forward(RULES_NFT, 1);
}
static void host_forward_nft_4(void **state)
{
	test_host_forward(RULES_NFT, 4);
}
static void host_forward_xt_1(void **state)
{
	test_host_forward(RULES_XT, 1);
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
	static const uint32_t masks[] = {MARK_MASK_DEFAULT, 0x00f00000u, 0x0000000fu, 0xf0000000u,
	                                 0x80300001u, 0xffffffffu};

	for (size_t k = 0; k < sizeof(masks) / sizeof(masks[0]); k++) {
		struct marks mk;
		assert_int_equal(marks_from_mask(masks[k], &mk), 0);
		const uint32_t m[] = {mk.allow,   mk.deny,       mk.pass,    mk.queued,
		                      mk.inspect, mk.queued_new, mk.inbound, mk.self,
		                      mk.pending, mk.acked,      mk.queued_acked};
		const size_t n = sizeof m / sizeof m[0];

		assert_int_equal(mk.mask, masks[k]);
		for (size_t i = 0; i < n; i++) {
			assert_int_not_equal(m[i], 0);
			assert_int_equal(m[i] & ~mk.mask, 0);
			for (size_t j = i + 1; j < n; j++)
				assert_int_not_equal(m[i], m[j]);
		}
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

/* The default mask keeps the values every earlier release used. */
static void marks_default_values(void **state)
{
	struct marks mk;

	assert_int_equal(marks_from_mask(0, &mk), 0);
	assert_int_equal(mk.mask, 0x0f000000u);
	assert_int_equal(mk.allow, 0x01000000u);
	assert_int_equal(mk.deny, 0x02000000u);
	assert_int_equal(mk.pass, 0x03000000u);
	assert_int_equal(mk.queued, 0x04000000u);
	assert_int_equal(mk.self, 0x08000000u);
	assert_int_equal(mk.inspect, 0x05000000u);
	assert_int_equal(mk.queued_new, 0x06000000u);
	assert_int_equal(mk.inbound, 0x07000000u);
	assert_int_equal(mk.pending, 0x09000000u);
	assert_int_equal(mk.acked, 0x0a000000u);
	assert_int_equal(mk.queued_acked, 0x0c000000u);
	/* bits placed lowest first, also in a mask with holes */
	assert_int_equal(marks_from_mask(0x80300001u, &mk), 0);
	assert_int_equal(mk.allow, 0x00000001u);
	assert_int_equal(mk.deny, 0x00100000u);
	assert_int_equal(mk.pass, 0x00100001u);
	assert_int_equal(mk.queued, 0x00200000u);
	assert_int_equal(mk.self, 0x80000000u);
	/* too few bits: refused, and the default is what the caller gets */
	assert_int_equal(marks_from_mask(0x00000007u, &mk), -EINVAL);
	assert_int_equal(mk.mask, MARK_MASK_DEFAULT);
}

/* [queue] mark_mask = 0x00f00000: every mark in the text uses those bits. */
static void render_with_other_mask(void **state)
{
	static const enum rules_backend bs[] = {RULES_NFT, RULES_XT};

	for (size_t i = 0; i < 2; i++) {
		struct rules_params p = host_params();
		char *t;

		p.mark_mask = 0x00f00000u;
		t = rules_render(&p, bs[i]);
		assert_non_null(t);
		at(t, "meta mark & 0x00f00000 == 0x00800000 notrack");
		at(t, "ct mark & 0x00f00000 == 0x00100000 accept");
		at(t, "ct mark & 0x00f00000 == 0x00200000 meta l4proto tcp reject with tcp reset");
		at(t, "meta mark set meta mark & 0xff0fffff | 0x00400000");
		at(t, "meta mark & 0x00f00000 == 0x00400000 drop");
		at(t, "meta mark & 0x00f00000 == 0x00100000 ct mark set ct mark & 0xff0fffff | "
		      "0x00100000 accept");
		at(t, "meta mark & 0x00f00000 == 0x00300000 accept");
		at(t, "meta mark & 0x00f00000 == 0x00800000 return");
		assert_absent(t, "0x0f000000");
		assert_absent(t, "0xf0ffffff");
		free(t);
		p = gateway_params();
		p.mark_mask = 0x00f00000u;
		t = rules_render(&p, bs[i]);
		assert_non_null(t);
		at(t, "meta mark & 0x00f00000 == 0x00200000 drop");
		assert_absent(t, "0x0f000000");
		free(t);
	}
}

static void render_refuses_small_mask(void **state)
{
	struct rules_params p = host_params();

	p.mark_mask = 0x00000007u;
	assert_null(rules_render(&p, RULES_NFT));
	p.mark_mask = 0x01010100u; /* 3 bits, scattered */
	assert_null(rules_render(&p, RULES_XT));
	p.mark_mask = 0x01010101u;
	char *t = rules_render(&p, RULES_XT);
	assert_non_null(t);
	at(t, "ct mark & 0x01010101 == 0x00000001 accept");
	free(t);
}

/* egressd run (issue 9, class 10): from the inside, this host takes only DNS
 * to the listener and packets of connections already let in. */
static void run_input_only_dns(void **state)
{
	struct rules_params p = gateway_params();
	char *t = rules_render(&p, RULES_NFT);
	size_t in;

	assert_non_null(t);
	assert_absent(t, "chain input {"); /* a plain gateway has only its anti-spoof local_in */
	free(t);
	p.inside_local_dns_only = true;
	t = rules_render(&p, RULES_NFT);
	assert_non_null(t);
	in = at(t, "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n"
	           "\t\tiifname != \"eth1\" accept\n"
	           "\t\tct state established,related accept\n"
	           "\t\tip daddr 198.51.100.1 meta l4proto { udp, tcp } th dport 5353 accept\n"
	           "\t\tip6 daddr 2001:db8::1 meta l4proto { udp, tcp } th dport 5353 accept\n"
	           "\t\tdrop\n\t}\n");
	assert_true(in > at(t, "chain post {"));
	free(t);
	/* without a listener: nothing new is let in at all */
	p.dns_v4.family = ADDR_NONE;
	p.dns_v6.family = ADDR_NONE;
	t = rules_render(&p, RULES_XT);
	assert_non_null(t);
	at(t, "\t\tct state established,related accept\n\t\tdrop\n");
	free(t);
}

/* A listing as `nft -j -a list ruleset` prints it: one rule per case. */
#define MC_RULE(table, handle, expr)                                                      \
	"{\"rule\": {\"family\": \"ip\", \"table\": \"" table "\", \"chain\": \"c\", "          \
	"\"handle\": " #handle ", \"expr\": [" expr "]}}"
#define MC_META "{\"meta\": {\"key\": \"mark\"}}"
#define MC_CT "{\"ct\": {\"key\": \"mark\"}}"
#define MC_LIST(rules)                                                                    \
	"{\"nftables\": [{\"metainfo\": {\"json_schema_version\": 1}}, "                       \
	"{\"table\": {\"family\": \"ip\", \"name\": \"foreign\", \"handle\": 1}}, " rules "]}"

static int mc(const char *rule, uint32_t mask, char *err, size_t errlen)
{
	char json[2048];

	snprintf(json, sizeof(json), MC_LIST("%s"), rule);
	return rules_mark_conflicts_json(json, mask, "mine", err, errlen);
}

static void mark_conflicts(void **state)
{
	/* meta mark & 0x00f00000 == 0x00100000 accept */
	const char *match = MC_RULE("foreign", 2,
	                            "{\"match\": {\"op\": \"==\", \"left\": {\"&\": [" MC_META
	                            ", 15728640]}, \"right\": 1048576}}, {\"accept\": null}");
	/* meta mark set meta mark & 0xff0fffff | 0x00200000 */
	const char *setbits = MC_RULE("foreign", 3,
	                              "{\"mangle\": {\"key\": " MC_META ", \"value\": {\"|\": [{\"&\": "
	                              "[" MC_META ", 4281335807]}, 2097152]}}}");
	/* ct mark set meta mark: a copy */
	const char *copy = MC_RULE("foreign", 4, "{\"mangle\": {\"key\": " MC_CT
	                                         ", \"value\": " MC_META "}}");
	/* meta mark 0xca6c accept: the whole mark compared */
	const char *whole = MC_RULE("foreign", 5,
	                            "{\"match\": {\"op\": \"==\", \"left\": " MC_META
	                            ", \"right\": 51820}}, {\"accept\": null}");
	/* ct mark set ct mark | 0x4000 (kube-proxy style) */
	const char *orbit = MC_RULE("foreign", 6, "{\"mangle\": {\"key\": " MC_CT
	                                          ", \"value\": {\"|\": [" MC_CT ", 16384]}}}");
	/* meta mark set 5: every bit */
	const char *constant = MC_RULE("foreign", 7, "{\"mangle\": {\"key\": " MC_META
	                                             ", \"value\": 5}}");
	/* iptables-nft compat MARK target: bits unknown */
	const char *xt = MC_RULE("foreign", 8, "{\"xt\": {\"type\": \"target\", \"name\": \"MARK\"}}");
	/* other compat extensions say nothing about marks */
	const char *xt_other = MC_RULE("foreign", 9, "{\"xt\": {\"type\": \"match\", \"name\": "
	                                             "\"addrtype\"}}, {\"xt\": null}");
	/* egressd's own tables (egressd run's) are ours */
	const char *own = MC_RULE("egressd_run3", 2,
	                          "{\"match\": {\"op\": \"==\", \"left\": {\"&\": [" MC_META
	                          ", 15728640]}, \"right\": 1048576}}");
	char err[512];

	assert_int_equal(mc(match, 0x00f00000u, err, sizeof(err)), 1);
	assert_string_equal(err, "table ip foreign chain c rule handle 2 matches mark bits 0x00f00000");
	assert_int_equal(mc(match, 0x0f000000u, err, sizeof(err)), 0);
	assert_int_equal(mc(setbits, 0x00f00000u, err, sizeof(err)), 1);
	assert_string_equal(err, "table ip foreign chain c rule handle 3 sets mark bits 0x00f00000");
	assert_int_equal(mc(setbits, 0x0f000000u, err, sizeof(err)), 0);
	assert_int_equal(mc(copy, 0x0f000000u, err, sizeof(err)), 0);
	assert_int_equal(mc(whole, 0x0f000000u, err, sizeof(err)), 1);
	assert_int_equal(mc(whole, 0x000f0000u, err, sizeof(err)), 1);
	assert_int_equal(mc(orbit, 0x0f000000u, err, sizeof(err)), 0);
	assert_int_equal(mc(orbit, 0x0000f000u, err, sizeof(err)), 1);
	assert_string_equal(err, "table ip foreign chain c rule handle 6 sets mark bits 0x00004000");
	assert_int_equal(mc(constant, 0x0f000000u, err, sizeof(err)), 1);
	assert_int_equal(mc(xt, 0x0f000000u, err, sizeof(err)), 1);
	assert_int_equal(mc(xt_other, 0x0f000000u, err, sizeof(err)), 0);
	assert_int_equal(mc(own, 0x00f00000u, err, sizeof(err)), 0);
	/* --table mine: mine and mine_q are ours, mine2 is not */
	const char *named[] = {
	    MC_RULE("mine", 2, "{\"match\": {\"op\": \"==\", \"left\": " MC_META ", \"right\": 1}}"),
	    MC_RULE("mine_q", 2, "{\"match\": {\"op\": \"==\", \"left\": " MC_META ", \"right\": 1}}"),
	    MC_RULE("mine2", 2, "{\"match\": {\"op\": \"==\", \"left\": " MC_META ", \"right\": 1}}"),
	    MC_RULE("egressdx", 2, "{\"match\": {\"op\": \"==\", \"left\": " MC_META ", \"right\": 1}}"),
	};
	assert_int_equal(mc(named[0], 0x0f000000u, err, sizeof(err)), 0);
	assert_int_equal(mc(named[1], 0x0f000000u, err, sizeof(err)), 0);
	assert_int_equal(mc(named[2], 0x0f000000u, err, sizeof(err)), 1);
	assert_int_equal(mc(named[3], 0x0f000000u, err, sizeof(err)), 1);
	/* several: the first four named, the rest counted */
	char all[4096];
	snprintf(all, sizeof(all), MC_LIST("%s, %s, %s, %s, %s, %s"), match, setbits, whole,
	         constant, xt, own);
	assert_int_equal(rules_mark_conflicts_json(all, 0x00f00000u, NULL, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "handle 2 matches"));
	assert_non_null(strstr(err, "; table ip foreign chain c rule handle 3 sets"));
	assert_non_null(strstr(err, "; and 1 more"));
	/* a listing that is not one: an error, not "no conflict" */
	assert_int_equal(rules_mark_conflicts_json("{\"nft\": 1}", 0x0f000000u, NULL, err, sizeof(err)),
	                 -1);
	assert_int_equal(rules_mark_conflicts_json("not json", 0x0f000000u, NULL, err, sizeof(err)), -1);
	assert_int_equal(rules_mark_conflicts_json(MC_LIST(""), 0x0f000000u, NULL, err,
	                                           sizeof(err)), 0);
}

/* egressd run's NAT table: masquerade the run's /30 leaving by any other
 * interface than its veth; names and networks that could not be rendered
 * safely are refused. */
static void run_nat(void **state)
{
	struct addr net, v6;
	char *t;

	assert_true(addr_parse("192.0.2.4", &net));
	t = rules_render_run_nat("egressd_runnat1", &net, 30, "egr1h");
	assert_non_null(t);
	assert_string_equal(t, "table ip egressd_runnat1 {\n"
	                       "  chain post { type nat hook postrouting priority srcnat; "
	                       "policy accept;\n"
	                       "    ip saddr 192.0.2.4/30 oifname != \"egr1h\" masquerade\n"
	                       "  }\n"
	                       "}\n");
	free(t);
	assert_true(addr_parse("2001:db8::", &v6));
	assert_null(rules_render_run_nat("egressd_runnat1", &v6, 30, "egr1h"));
	assert_null(rules_render_run_nat("egressd_runnat1", &net, 33, "egr1h"));
	assert_null(rules_render_run_nat("bad name", &net, 30, "egr1h"));
	assert_null(rules_render_run_nat(NULL, &net, 30, "egr1h"));
	assert_null(rules_render_run_nat("egressd_runnat1", &net, 30, "x\" accept"));
	assert_null(rules_render_run_nat("egressd_runnat1", &net, 30, "sixteen-chars-xx"));
	assert_null(rules_render_run_nat("egressd_runnat1", NULL, 30, "egr1h"));
}

/*
 * Issue 10, round trips: the handshake ACK of a connection whose SYN the
 * engine passed (ct mark PENDING) passes in the kernel once (ct mark ACKED
 * after it); only a data-less plain ACK: exact lengths, flags ACK alone, no
 * IPv4 options or IPv6 extension headers, reserved bits and urgent pointer
 * zero, no TCP options or NOP NOP timestamps. Later packets of the
 * connection are queued as QUEUED_ACKED, which post drops if not queued.
 */
#define PENDING_ACK4_5                                                                          \
	"ct mark & 0x0f000000 == 0x09000000 ct direction original ip hdrlength 5 "                \
	"ip frag-off & 0x8000 == 0 ip length 40 meta length 40 tcp doff 5 tcp flags == ack "         \
	"tcp urgptr 0 "                                                                           \
	"@th,100,3 0 ct mark set ct mark & 0xf0ffffff | 0x0a000000 accept\n"
#define PENDING_ACK4_8                                                                          \
	"ct mark & 0x0f000000 == 0x09000000 ct direction original ip hdrlength 5 "                \
	"ip frag-off & 0x8000 == 0 ip length 52 meta length 52 tcp doff 8 tcp flags == ack "         \
	"tcp urgptr 0 "                                                                           \
	"@th,100,3 0 @th,160,32 0x0101080a ct mark set ct mark & 0xf0ffffff | 0x0a000000 "        \
	"accept\n"
#define PENDING_ACK6_5                                                                          \
	"ct mark & 0x0f000000 == 0x09000000 ct direction original ip6 nexthdr tcp ip6 length 20 " \
	"meta length 60 tcp doff 5 tcp flags == ack tcp urgptr 0 @th,100,3 0 ct mark set ct mark & 0xf0ffffff " \
	"| 0x0a000000 accept\n"
#define PENDING_ACK6_8                                                                          \
	"ct mark & 0x0f000000 == 0x09000000 ct direction original ip6 nexthdr tcp ip6 length 32 " \
	"meta length 72 tcp doff 8 tcp flags == ack tcp urgptr 0 @th,100,3 0 @th,160,32 0x0101080a ct mark set " \
	"ct mark & 0xf0ffffff | 0x0a000000 accept\n"
#define SET_QUEUED_ACKED                                                                        \
	"ct mark & 0x0f000000 == 0x0a000000 meta mark set meta mark & 0xf0ffffff | 0x0c000000\n"
#define POST_PENDING                                                                            \
	"meta mark & 0x0f000000 == 0x03000000 tcp flags & (syn | ack) == syn ct mark & "          \
	"0x0f000000 == 0 ct mark set ct mark & 0xf0ffffff | 0x09000000 accept\n"

static void pending_ack_in_kernel(void **state)
{
	static const char *const acks[] = {PENDING_ACK4_5, PENDING_ACK4_8, PENDING_ACK6_5,
	                                   PENDING_ACK6_8};
	static const char *const pres[] = {"pre", "fpre"};
	static const char *const posts[] = {"post", "fpost"};

	(void)state;
	for (int g = 0; g < 2; g++) {
		struct rules_params p = g ? gateway_params() : host_params();

		for (int b = RULES_NFT; b <= RULES_XT; b++) {
			char *t = rules_render(&p, (enum rules_backend)b);

			assert_non_null(t);
			for (int c = 0; c < (g ? 1 : 2); c++) {
				char *pre = chain(t, pres[c]), *post = chain(t, posts[c]);
				/* after everything that drops or decides, before the
				 * queue marks; exactly one rule per layout */
				for (size_t i = 0; i < 4; i++) {
					const size_t a = at(pre, acks[i]);

					assert_true(at(pre, "ct state invalid drop") < a);
					assert_true(at(pre, FAST_PATH) < a);
					assert_true(at(pre, "== 0x02000000 drop") < a);
					assert_true(a < at(pre, SET_QUEUED));
					assert_null(strstr(pre + a + 1, acks[i]));
				}
				if (g || c)
					assert_true(at(pre, "ip ttl < 64 ip ttl set 64") <
					            at(pre, PENDING_ACK4_5));
				/* no other rule passes on PENDING: a second bare
				 * packet, a SYN, FIN, RST or data are queued */
				assert_null(strstr(strchr(pre + at(pre, PENDING_ACK6_8), '\n'),
				                   "0x09000000"));
				assert_true(at(pre, SET_QUEUED) < at(pre, SET_QUEUED_ACKED));
				assert_true(at(pre, SET_QUEUED_ACKED) < at(pre, SET_QUEUED_NEW));
				/* post: fail closed on QUEUED_ACKED; a PASS SYN on an
				 * unmarked connection makes it PENDING, before the
				 * plain PASS accept */
				assert_true(at(post, "meta mark & 0x0f000000 == 0x0c000000 drop") <
				            at(post, "== 0x01000000 ct mark set"));
				assert_true(at(post, POST_PENDING) <
				            at(post, "meta mark & 0x0f000000 == 0x03000000 accept"));
				free(pre);
				free(post);
			}
			free(t);
		}
	}
	/* with another mask: the same values in its bits */
	struct rules_params p = host_params();
	p.mark_mask = 0x00f00000u;
	char *t = rules_render(&p, RULES_XT);
	assert_non_null(t);
	at(t, "ct mark & 0x00f00000 == 0x00900000 ct direction original ip hdrlength 5 ");
	at(t, "ct mark set ct mark & 0xff0fffff | 0x00a00000 accept\n");
	at(t, "ct mark & 0x00f00000 == 0x00a00000 meta mark set meta mark & 0xff0fffff | "
	      "0x00c00000\n");
	at(t, "meta mark & 0x00f00000 == 0x00c00000 drop\n");
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
	    cmocka_unit_test(host_forward_nft_1),
	    cmocka_unit_test(host_forward_nft_4),
	    cmocka_unit_test(host_forward_xt_1),
	    cmocka_unit_test(gateway_has_no_host_forward),
	    cmocka_unit_test(marks_default_values),
	    cmocka_unit_test(render_with_other_mask),
	    cmocka_unit_test(render_refuses_small_mask),
	    cmocka_unit_test(mark_conflicts),
	    cmocka_unit_test(run_input_only_dns),
	    cmocka_unit_test(run_nat),
	    cmocka_unit_test(pending_ack_in_kernel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
