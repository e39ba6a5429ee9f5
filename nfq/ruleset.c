/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The netfilter ruleset: rendered as nft text, applied with libnftables in
 * one transaction; with the xt backend the queue step (the xtables NFQUEUE
 * target through nft_compat) is added by a second libnftnl batch. Between
 * the two, chain post drops every packet still carrying MARK_QUEUED, so the
 * ruleset is fail-closed at every instant. See doc/DESIGN.md "Ruleset".
 */
#define _GNU_SOURCE /* secure_getenv */
#include "ruleset.h"
#include "errf.h"
#include "marks.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RULES_TABLE_DEFAULT "egressd"
#define RULES_PROBE_TABLE "egressd_probe"
#define RULES_NAME_MAX 64  /* our own bound; the kernel allows 256 */
#define RULES_QUEUE_PRIO 5 /* egressd_q chains: between pre (0) and post (10) */

/* Where the xt queue rule lives: in chain pre of the inet table, or (if the
 * kernel refuses xt targets in inet tables) in ip/ip6 <table>_q tables. */
enum xt_place {
	XT_PLACE_INET = 1,
	XT_PLACE_IPTABLES = 2,
};

const char *rules_backend_name(enum rules_backend b)
{
	switch (b) {
	case RULES_AUTO:
		return "auto";
	case RULES_NFT:
		return "nft";
	case RULES_XT:
		return "xt";
	}
	return "?";
}


/* A table or interface name goes into nft text unquoted or quoted: accept
 * only [A-Za-z0-9_.-], so no name can close a string or start a statement. */
static bool name_ok(const char *s, size_t max)
{
	size_t n = 0;

	if (!s || !*s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
		if (!ok || n >= max)
			return false;
	}
	return true;
}

static const char *table_name(const char *t)
{
	return t ? t : RULES_TABLE_DEFAULT;
}

/* The marks of p's [queue] mark_mask (params_ok refused a bad one). */
static struct marks rules_marks(const struct rules_params *p)
{
	struct marks m;

	marks_from_mask(p ? p->mark_mask : 0, &m);
	return m;
}

/* ---------------------------------------------------------------- render */

/*
 * The text, for host mode (gateway differs where marked):
 *
 *   table inet T {
 *     chain pre  { filter hook output (gateway: forward) priority filter
 *       fast path on ct mark, DENY ct mark, loopback/SELF (gateway: replies
 *       from outside), ICMP errors, ND, DHCP, set QUEUED, queue }
 *     chain post { same hook, priority filter + 10: verdict mark -> action }
 *     chain dns  { nat hook output (gateway: prerouting) priority dstnat }
 *   }
 *
 * Backend xt: no queue statement; the NFQUEUE target is appended later.
 */
static void render_dns_redirected(FILE *f, const struct rules_params *p)
{
	uint16_t port = p->dns_port ? p->dns_port : 53;
	char a[ADDR_STRLEN];

	if (p->dns_v4.family == ADDR_V4)
		fprintf(f, "\t\tct status dnat ip daddr %s th dport %u accept\n",
		        addr_str(&p->dns_v4, a), port);
	if (p->dns_v6.family == ADDR_V6)
		fprintf(f, "\t\tct status dnat ip6 daddr %s th dport %u accept\n",
		        addr_str(&p->dns_v6, a), port);
}

/*
 * egressd's own sockets (SELF mark) are not tracked. Their flows share the
 * address and port space of the clients (host mode): a c-ares socket that
 * happens to get the source port of a client's recent DNS query would match
 * that query's conntrack entry, which the dns chain redirected to our own
 * listener, and the upstream query would loop back to us. Untracked, they
 * never meet a NAT binding.
 */
static void render_self(FILE *f, const struct rules_params *p)
{
	const struct marks mk = rules_marks(p);

	fprintf(f, "\tchain self {\n");
	fprintf(f, "\t\ttype filter hook output priority raw; policy accept;\n");
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x notrack\n", mk.mask, mk.self);
	fprintf(f, "\t}\n");
}

/*
 * An INSPECT connection (allowed plain HTTP): replies and client packets
 * without payload pass here; every client byte of payload is still queued,
 * and so are the client's FIN and RST (the engine forgets the connection
 * soon after them). "Without payload" is read from the lengths: IPv4
 * without options and total length = 20 + TCP header; IPv6 with TCP as the
 * first next header (no extension headers) and payload length = TCP header.
 */
static void render_inspect(FILE *f, const struct marks *mk)
{
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x ct direction reply accept\n", mk->mask,
	        mk->inspect);
	for (unsigned doff = 5; doff <= 15; doff++)
		fprintf(f,
		        "\t\tct mark & 0x%08x == 0x%08x ip hdrlength 5 tcp doff %u ip length %u "
		        "tcp flags & (fin | rst) == 0 accept\n",
		        mk->mask, mk->inspect, doff, 20 + 4 * doff);
	for (unsigned doff = 5; doff <= 15; doff++)
		fprintf(f,
		        "\t\tct mark & 0x%08x == 0x%08x ip6 nexthdr tcp tcp doff %u ip6 length %u "
		        "tcp flags & (fin | rst) == 0 accept\n",
		        mk->mask, mk->inspect, doff, 4 * doff);
}

/*
 * Host mode only: what the link itself needs, and nothing that a router
 * would carry further. ND and MLD go to link-local or multicast addresses
 * with the hop limit their receivers insist on (255 for ND, RFC 4861 6.1;
 * 1 for MLD, RFC 2710 3), so no router forwards them. A unicast NS (NUD)
 * or solicited NA to an on-link global address is the one exception: it is
 * allowed only at its own size (header, target, one link-layer option =
 * 32 bytes), which leaves no room for a message. DHCP only to the link's
 * broadcast and the DHCPv6 relay/server group. The gateway forwards none of
 * this: link-local traffic is never forwarded, so nothing here belongs in
 * FORWARD (issue 9, classes 3 and 4).
 */
static void render_link_local(FILE *f)
{
	fprintf(f, "\t\ticmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
	           "nd-neighbor-advert, nd-redirect } ip6 hoplimit 255 "
	           "ip6 daddr { fe80::/10, ff02::/16 } accept\n");
	fprintf(f, "\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 "
	           "ip6 length <= 32 accept\n");
	fprintf(f, "\t\ticmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, "
	           "mld2-listener-report } ip6 hoplimit 1 ip6 daddr { fe80::/10, ff02::/16 } "
	           "accept\n");
	fprintf(f, "\t\tudp sport 68 udp dport 67 ip daddr 255.255.255.255 accept\n");
	fprintf(f, "\t\tudp sport 546 udp dport 547 ip6 daddr ff02::1:2 accept\n");
}

/*
 * Host mode: a packet this host sends to itself (it leaves through lo) with a
 * source address that is not the host's own was forged: a process with
 * CAP_NET_RAW posing as the upstream resolver to our resolver's port (issue 9,
 * class 6). Dropped for UDP and for TCP that is not a reset: the resets our
 * own `reject with tcp reset` statements send to local sockets carry the
 * remote peer's address and leave through lo too, and must stay. A forged
 * reset can only cut a connection, never bind a name.
 */
static void render_local_spoof(FILE *f, const char *dir)
{
	fprintf(f, "\t\t%s \"lo\" fib saddr type != local meta l4proto udp drop\n", dir);
	fprintf(f, "\t\t%s \"lo\" fib saddr type != local tcp flags & rst == 0 drop\n", dir);
}

/*
 * The same on input, for what never passes the output hook: a frame written
 * to lo with an AF_PACKET socket. Replies of the DNS our dns chain redirected
 * to our listener arrive here with the original server as their source (the
 * NAT is undone after output): those are accepted first (when there is a
 * dns chain).
 */
static void render_local_in(FILE *f, const struct rules_params *p)
{
	fprintf(f, "\tchain local_in {\n");
	fprintf(f, "\t\ttype filter hook input priority filter; policy accept;\n");
	if (p->dns_v4.family == ADDR_V4 || p->dns_v6.family == ADDR_V6)
		fprintf(f, "\t\tiif \"lo\" ct status dnat accept\n");
	render_local_spoof(f, "iif");
	fprintf(f, "\t}\n");
}

/*
 * Gateway: a client spoofing the upstream's address to the resolver port of
 * the gateway itself reaches the input hook on the inside interface. What
 * arrives there from an address the gateway would not route back through
 * the inside (reverse path) is dropped, UDP and TCP; DHCP from 0.0.0.0 to
 * a server on the gateway stays.
 */
static void render_inside_in(FILE *f, const struct rules_params *p)
{
	fprintf(f, "\tchain local_in {\n");
	fprintf(f, "\t\ttype filter hook input priority filter; policy accept;\n");
	fprintf(f, "\t\tiifname \"%s\" udp dport 67 accept\n", p->inside);
	fprintf(f, "\t\tiifname \"%s\" meta l4proto { udp, tcp } fib saddr . iif oif missing "
	           "drop\n",
	        p->inside);
	fprintf(f, "\t}\n");
}

static void render_queue(FILE *f, const struct rules_params *p, enum rules_backend b);

/*
 * Host mode: a packet in the reply direction of a conntrack entry answers a
 * connection that came from outside (a local server). For TCP that took a
 * handshake the peer started; ICMP answers (echo replies) carry what the
 * request asked for. UDP has no handshake: the entry is whatever datagram
 * arrived first, and that can be the allowed server's, arriving after
 * conntrack forgot the client's flow (timeout, early drop, flush): the
 * client's next datagrams on the same 4-tuple are then replies (issue 9,
 * class 1). So UDP and everything else in the reply direction (of an entry
 * without a verdict yet: ALLOW and DENY took the fast path above) is queued
 * as a packet conntrack had no entry for: the engine decides it as a new
 * flow (a re-incarnation of a flow it decided, or the first answer of a
 * local UDP server, which the policy must then allow like any egress).
 */
static void render_host_replies(FILE *f, const struct rules_params *p)
{
	fprintf(f, "\t\tct direction reply meta l4proto { tcp, icmp, ipv6-icmp } accept\n");
	/* Two kinds of UDP answers are ours, not a reversed entry: those of
	 * egressd's listeners to queries our own redirects sent there (the
	 * containers' DNS, chain dnsfwd: the entry was made by that NAT, from the
	 * query), and those to the namespace of an `egressd run` (its veth egr*,
	 * where the run's own table and daemon decide). */
	if (p->container_port)
		fprintf(f, "\t\tct direction reply ct status dnat accept\n");
	fprintf(f, "\t\toifname \"egr*\" ct direction reply accept\n");
}

static void render_pre(FILE *f, const struct rules_params *p, enum rules_backend b)
{
	const char *hook = p->gateway ? "forward" : "output";
	const struct marks mk = rules_marks(p);

	fprintf(f, "\tchain pre {\n");
	fprintf(f, "\t\ttype filter hook %s priority filter; policy accept;\n", hook);
	if (!p->gateway) {
		render_local_spoof(f, "oif");
		/* loopback next: the TCP resets our own reject statements
		 * send to local sockets leave through this hook, on lo, with
		 * the DENY-marked conntrack attached */
		fprintf(f, "\t\toif \"lo\" accept\n");
		/* DNS the dns chain redirected to our listener: the nat output
		 * hook rerouted it to lo, but oif still names the original
		 * interface here. Only our own listener address and port. */
		render_dns_redirected(f, p);
	}
	/* Packets conntrack cannot place in a connection (out of window, a
	 * stray ACK without a SYN it saw...) never reach the queue: what the
	 * engine decides on must be a packet the tracked connection carries. */
	fprintf(f, "\t\tct state invalid drop\n");
	fprintf(f, "\t\t# fast path: a decided connection never reaches userspace again\n");
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x accept\n", mk.mask, mk.allow);
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x meta l4proto tcp reject with tcp reset\n",
	        mk.mask, mk.deny);
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x drop\n", mk.mask, mk.deny);
	render_inspect(f, &mk);
	if (p->gateway) {
		/* Traffic that neither comes from nor goes to the inside is not ours
		 * (other interfaces, other egressd run tables on the same hook). */
		fprintf(f, "\t\tiifname != \"%s\" oifname != \"%s\" accept\n", p->inside,
		        p->inside);
		fprintf(f, "\t\t# replies from outside: only to connections we let out\n");
		fprintf(f, "\t\tiifname != \"%s\" ct state established,related accept\n",
		        p->inside);
		fprintf(f, "\t\tiifname != \"%s\" drop\n", p->inside);
	} else {
		fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x accept\n", mk.mask, mk.self);
		/* answers of local servers to connections from outside: not
		 * egress, where the protocol has a handshake (render_host_replies) */
		render_host_replies(f, p);
	}
	fprintf(f, "\t\tct state related icmp type { destination-unreachable, time-exceeded, "
	           "parameter-problem } accept\n");
	fprintf(f, "\t\tct state related icmpv6 type { destination-unreachable, packet-too-big, "
	           "time-exceeded, parameter-problem } accept\n");
	if (!p->gateway)
		render_link_local(f);
	if (p->gateway) {
		/* What the engine decides on must be what the server reads: a
		 * decoy segment sent with a TTL that expires between us and the
		 * server would be judged here and never arrive. Queued packets
		 * leave with a fresh TTL / hop limit (issue 9, class 2). */
		fprintf(f, "\t\tip ttl < 64 ip ttl set 64\n");
		fprintf(f, "\t\tip6 hoplimit < 64 ip6 hoplimit set 64\n");
	}
	render_queue(f, p, b);
	fprintf(f, "\t}\n");
}

/*
 * Round trips (issue 10): the engine passed the SYN of an undecided TCP
 * connection (chain post gave it ct mark PENDING); the client's handshake
 * ACK passes here, in the kernel, once: the rule that accepts it moves the
 * ct mark to ACKED, so every later packet is queued again (as QUEUED_ACKED:
 * the engine learns that the client ACKed, and never re-bases the stream
 * after that). The first payload still goes to the engine and is held until
 * the decision.
 *
 * What passes is what tcp_pass_bare() would have passed (pkt_plain_headers,
 * issue 9 class 9), read from fixed fields: client to server, flags exactly
 * ACK, no payload (lengths as in render_inspect), IPv4 without options and
 * the reserved flag clear, IPv6 with TCP as the first next header, TCP
 * reserved bits and urgent pointer zero, and options either none (doff 5)
 * or the one layout Linux and the BSDs send on that ACK: NOP NOP timestamps
 * (doff 8). Anything else goes to the engine as before. meta length (the
 * packet as the hook sees it) must equal the header lengths too: an IPv6
 * raw socket (host mode) may send bytes past its payload length, which the
 * receiver trims but a sniffer on the path reads.
 */
static void render_pending(FILE *f, const struct marks *mk)
{
	static const struct {
		unsigned doff;
		const char *opts;
	} layouts[] = {{5, ""}, {8, "@th,160,32 0x0101080a "}};

	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		unsigned doff = layouts[i].doff;

		fprintf(f,
		        "\t\tct mark & 0x%08x == 0x%08x ct direction original ip hdrlength 5 "
		        "ip frag-off & 0x8000 == 0 ip length %u meta length %u tcp doff %u "
		        "tcp flags == ack tcp urgptr 0 @th,100,3 0 %sct mark set ct mark & 0x%08x | "
		        "0x%08x accept\n",
		        mk->mask, mk->pending, 20 + 4 * doff, 20 + 4 * doff, doff, layouts[i].opts,
		        ~mk->mask, mk->acked);
		fprintf(f,
		        "\t\tct mark & 0x%08x == 0x%08x ct direction original ip6 nexthdr tcp "
		        "ip6 length %u meta length %u tcp doff %u tcp flags == ack tcp urgptr 0 "
		        "@th,100,3 0 %sct mark set ct mark & 0x%08x | 0x%08x accept\n",
		        mk->mask, mk->pending, 4 * doff, 40 + 4 * doff, doff, layouts[i].opts,
		        ~mk->mask, mk->acked);
	}
}

/* Set QUEUED and queue (nft), or leave the queue step to the xt target. */
static void render_queue(FILE *f, const struct rules_params *p, enum rules_backend b)
{
	unsigned threads = p->queue_threads ? p->queue_threads : 1;
	const struct marks mk = rules_marks(p);

	render_pending(f, &mk);
	fprintf(f, "\t\t# everything else: to userspace; still QUEUED after = not queued\n");
	fprintf(f, "\t\tmeta mark set meta mark & 0x%08x | 0x%08x\n", ~mk.mask, mk.queued);
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x meta mark set meta mark & 0x%08x | 0x%08x\n",
	        mk.mask, mk.acked, ~mk.mask, mk.queued_acked);
	/* the engine must know a packet conntrack has no entry for: on a flow
	 * it decided, conntrack forgot the connection (a new incarnation) */
	fprintf(f, "\t\tct state new meta mark set meta mark & 0x%08x | 0x%08x\n", ~mk.mask,
	        mk.queued_new);
	/* host mode: a reply-direction packet of an entry without a verdict
	 * (render_host_replies); in fpre replies were accepted before this */
	if (!p->gateway)
		fprintf(f, "\t\tct direction reply meta mark set meta mark & 0x%08x | 0x%08x\n",
		        ~mk.mask, mk.queued_new);
	if (b == RULES_NFT) {
		/* Several queues: the kernel spreads flows by address hash, so
		 * a flow stays on one worker (no CPU fanout). No bypass. */
		if (threads > 1)
			fprintf(f, "\t\tqueue num %u-%u\n", p->queue_num,
			        p->queue_num + threads - 1);
		else
			fprintf(f, "\t\tqueue num %u\n", p->queue_num);
	} else {
		fprintf(f,
		        "\t\t# xt backend: the xtables NFQUEUE target (queue %u, %u queue%s, "
		        "fails closed) follows, added with libnftnl\n",
		        p->queue_num, threads, threads > 1 ? "s" : "");
	}
}

static void render_post_hook(FILE *f, const struct rules_params *p, const char *chain,
                             const char *hook)
{
	const struct marks mk = rules_marks(p);

	fprintf(f, "\tchain %s {\n", chain);
	fprintf(f, "\t\ttype filter hook %s priority filter + 10; policy accept;\n", hook);
	fprintf(f, "\t\t# fail closed: QUEUED still set means no queue took the packet\n");
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x drop\n", mk.mask, mk.queued);
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x drop\n", mk.mask, mk.queued_new);
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x drop\n", mk.mask, mk.queued_acked);
	fprintf(f,
	        "\t\tmeta mark & 0x%08x == 0x%08x ct mark set ct mark & 0x%08x | 0x%08x "
	        "accept\n",
	        mk.mask, mk.allow, ~mk.mask, mk.allow);
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x ct mark set ct mark & 0x%08x | 0x%08x\n",
	        mk.mask, mk.deny, ~mk.mask, mk.deny);
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x meta l4proto tcp reject with tcp reset\n",
	        mk.mask, mk.deny);
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x drop\n", mk.mask, mk.deny);
	/* the SYN of an undecided connection: its handshake ACK may pass in
	 * the kernel (render_pending); only on a connection without a mark */
	fprintf(f,
	        "\t\tmeta mark & 0x%08x == 0x%08x tcp flags & (syn | ack) == syn "
	        "ct mark & 0x%08x == 0 ct mark set ct mark & 0x%08x | 0x%08x accept\n",
	        mk.mask, mk.pass, mk.mask, ~mk.mask, mk.pending);
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x accept\n", mk.mask, mk.pass);
	fprintf(f,
	        "\t\tmeta mark & 0x%08x == 0x%08x ct mark set ct mark & 0x%08x | 0x%08x "
	        "accept\n",
	        mk.mask, mk.inspect, ~mk.mask, mk.inspect);
	fprintf(f, "\t}\n");
}

static void render_post(FILE *f, const struct rules_params *p)
{
	render_post_hook(f, p, "post", p->gateway ? "forward" : "output");
}

static void render_dns(FILE *f, const struct rules_params *p)
{
	uint16_t port = p->dns_port ? p->dns_port : 53;
	const struct marks mk = rules_marks(p);
	char a[ADDR_STRLEN];

	if (p->dns_v4.family != ADDR_V4 && p->dns_v6.family != ADDR_V6)
		return;
	fprintf(f, "\tchain dns {\n");
	/* nft names priority dstnat only for prerouting; output takes -100 */
	fprintf(f, "\t\ttype nat hook %s priority %s; policy accept;\n",
	        p->gateway ? "prerouting" : "output", p->gateway ? "dstnat" : "-100");
	fprintf(f, "\t\tmeta mark & 0x%08x == 0x%08x return\n", mk.mask, mk.self);
	if (p->gateway)
		fprintf(f, "\t\tiifname != \"%s\" return\n", p->inside);
	if (p->dns_v4.family == ADDR_V4)
		fprintf(f, "\t\tmeta l4proto { udp, tcp } th dport 53 dnat ip to %s:%u\n",
		        addr_str(&p->dns_v4, a), port);
	if (p->dns_v6.family == ADDR_V6)
		fprintf(f, "\t\tmeta l4proto { udp, tcp } th dport 53 dnat ip6 to [%s]:%u\n",
		        addr_str(&p->dns_v6, a), port);
	fprintf(f, "\t}\n");
}

/*
 * Host mode, the namespaces behind the host (issue 9, class 5): Docker and
 * podman bridges, `unshare -n` + veth. Their traffic is routed by this host,
 * so it crosses FORWARD, never OUTPUT: chain fpre decides it like the
 * gateway's pre (same queue, same verdict marks, ct mark fast path, default
 * deny), chain fpost turns the verdicts into ct marks like post.
 *
 * Not egress, so not queued: replies to connections the containers opened,
 * connections to this host itself that it forwards on (Docker's -p port
 * forwards: DNAT to a container), and packets whose destination is reached
 * through the interface they came in on: between containers of one bridge
 * (with br_netfilter, bridged frames cross this hook with the bridge as in
 * and out interface). A container bridged onto the uplink itself (a bridge
 * holding the physical NIC, macvlan) is a host of the LAN, not behind this
 * one: host mode does not cover it (doc/DESIGN.md). Chain inbound marks the latter before
 * NAT, while the destination is still the host's own address: only root
 * makes a port forward, a container cannot make a connection look like one.
 * The veths of `egressd run` (egr<N>h, "egr*") are decided by that run's own table
 * and daemon alone: two egressd verdicts on one packet would overwrite
 * each other's marks.
 */
static void render_host_inbound(FILE *f, const struct rules_params *p)
{
	const struct marks mk = rules_marks(p);

	fprintf(f, "\tchain inbound {\n");
	fprintf(f, "\t\ttype filter hook prerouting priority -150; policy accept;\n");
	fprintf(f, "\t\tiifname != \"lo\" ct state new ct mark & 0x%08x == 0 fib daddr type local "
	           "ct mark set ct mark & 0x%08x | 0x%08x\n",
	        mk.mask, ~mk.mask, mk.inbound);
	fprintf(f, "\t}\n");
}

static void render_host_fwd(FILE *f, const struct rules_params *p, enum rules_backend b)
{
	const struct marks mk = rules_marks(p);

	fprintf(f, "\tchain fpre {\n");
	fprintf(f, "\t\ttype filter hook forward priority filter; policy accept;\n");
	fprintf(f, "\t\tiifname \"egr*\" accept\n");
	fprintf(f, "\t\toifname \"egr*\" accept\n");
	fprintf(f, "\t\tct state invalid drop\n");
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x accept\n", mk.mask, mk.allow);
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x meta l4proto tcp reject with tcp reset\n",
	        mk.mask, mk.deny);
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x drop\n", mk.mask, mk.deny);
	fprintf(f, "\t\tct mark & 0x%08x == 0x%08x accept\n", mk.mask, mk.inbound);
	/* out the way it came in: frames between two ports of one bridge, which
	 * br_netfilter (Docker loads it) passes through this hook too */
	fprintf(f, "\t\tfib daddr . iif oif exists accept\n");
	fprintf(f, "\t\tct direction reply accept\n");
	fprintf(f, "\t\tct state related icmp type { destination-unreachable, time-exceeded, "
	           "parameter-problem } accept\n");
	fprintf(f, "\t\tct state related icmpv6 type { destination-unreachable, packet-too-big, "
	           "time-exceeded, parameter-problem } accept\n");
	/* as the gateway: what is decided on must be what the server reads */
	fprintf(f, "\t\tip ttl < 64 ip ttl set 64\n");
	fprintf(f, "\t\tip6 hoplimit < 64 ip6 hoplimit set 64\n");
	render_queue(f, p, b);
	fprintf(f, "\t}\n");
}

/*
 * DNS of the namespaces behind the host, to any address but this host's
 * own (a resolver on the bridge, podman's aardvark-dns, answers those and
 * asks upstream through OUTPUT, where chain dns redirects it): redirected
 * to the address of the interface it came in on, port container_port,
 * where a wildcard listener of egressd answers. Why not DNAT to the
 * 127.0.0.1 listener: a packet from outside to 127.0.0.0/8 is a martian
 * unless route_localnet is on, which would expose every loopback service
 * to the containers (CVE-2020-8558), and IPv6 has no such switch at all.
 * Chain dnsin lets only redirected packets reach the container port, so the
 * wildcard listener is no resolver for the network.
 */
static void render_host_dns_fwd(FILE *f, const struct rules_params *p)
{
	fprintf(f, "\tchain dnsfwd {\n");
	fprintf(f, "\t\ttype nat hook prerouting priority dstnat; policy accept;\n");
	fprintf(f, "\t\tiifname \"lo\" return\n");
	fprintf(f, "\t\tiifname \"egr*\" return\n");
	fprintf(f, "\t\tfib daddr type local return\n");
	fprintf(f, "\t\tmeta l4proto { udp, tcp } th dport 53 redirect to :%u\n", p->container_port);
	fprintf(f, "\t}\n");
	fprintf(f, "\tchain dnsin {\n");
	fprintf(f, "\t\ttype filter hook input priority filter; policy accept;\n");
	fprintf(f, "\t\tmeta l4proto { udp, tcp } th dport %u ct status dnat accept\n",
	        p->container_port);
	fprintf(f, "\t\tmeta l4proto { udp, tcp } th dport %u iifname != \"lo\" drop\n",
	        p->container_port);
	fprintf(f, "\t}\n");
}

/*
 * egressd run: CMD's only route is the veth, and a packet to one of the
 * calling namespace's own addresses (its LAN address, the veth's, a
 * broadcast, ff02::1, a link-local) is delivered locally: the input hook,
 * which the forward chains never see. From the inside, this host takes
 * DNS to egressd's listener and what belongs to connections already let
 * in (replies, ICMP errors); nothing else, IPv4 or IPv6 (issue 9, class 10).
 */
static void render_run_input(FILE *f, const struct rules_params *p)
{
	uint16_t port = p->dns_port ? p->dns_port : 53;
	char a[ADDR_STRLEN];

	if (!p->gateway || !p->inside_local_dns_only)
		return;
	fprintf(f, "\tchain input {\n");
	fprintf(f, "\t\ttype filter hook input priority filter; policy accept;\n");
	fprintf(f, "\t\tiifname != \"%s\" accept\n", p->inside);
	fprintf(f, "\t\tct state established,related accept\n");
	if (p->dns_v4.family == ADDR_V4)
		fprintf(f, "\t\tip daddr %s meta l4proto { udp, tcp } th dport %u accept\n",
		        addr_str(&p->dns_v4, a), port);
	if (p->dns_v6.family == ADDR_V6)
		fprintf(f, "\t\tip6 daddr %s meta l4proto { udp, tcp } th dport %u accept\n",
		        addr_str(&p->dns_v6, a), port);
	fprintf(f, "\t\tdrop\n");
	fprintf(f, "\t}\n");
}

static bool params_ok(const struct rules_params *p, char *err, size_t errlen)
{
	unsigned threads = p->queue_threads ? p->queue_threads : 1;

	if (!name_ok(table_name(p->table), RULES_NAME_MAX - 3)) {
		errf(err, errlen, "bad nft table name \"%s\"", table_name(p->table));
		return false;
	}
	if (p->gateway && !name_ok(p->inside, 15)) {
		errf(err, errlen, "gateway mode needs a valid inside interface name");
		return false;
	}
	if (p->mark_mask && marks_bits(p->mark_mask) < MARK_BITS) {
		errf(err, errlen, "mark mask 0x%08x has fewer than %d bits", p->mark_mask, MARK_BITS);
		return false;
	}
	if ((unsigned)p->queue_num + threads - 1 > 0xffff) {
		errf(err, errlen, "queue numbers %u..%u out of range", p->queue_num,
		     p->queue_num + threads - 1);
		return false;
	}
	return true;
}

static char *render(const struct rules_params *p, enum rules_backend b)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	fprintf(f, "table inet %s {\n", table_name(p->table));
	render_self(f, p);
	render_pre(f, p, b);
	render_post(f, p);
	render_dns(f, p);
	if (!p->gateway) {
		render_local_in(f, p);
		render_host_inbound(f, p);
		render_host_fwd(f, p, b);
		render_post_hook(f, p, "fpost", "forward");
		if (p->container_port)
			render_host_dns_fwd(f, p);
	} else {
		render_inside_in(f, p);
	}
	render_run_input(f, p);
	fprintf(f, "}\n");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

char *rules_render(const struct rules_params *p, enum rules_backend b)
{
	if (!p || !params_ok(p, NULL, 0))
		return NULL;
	/* Printing without a kernel to ask: auto renders what this kernel
	 * family needs most often; `egressd rules --apply` detects. */
	if (b == RULES_AUTO)
		b = RULES_XT;
	return render(p, b);
}

/* ------------------------------------------------------------ libnftables */

/* Run one nft script as one transaction. 0, or -1 with the error text. */
static int nft_run(const char *script, char *out_borrowed, size_t outlen, char *err, size_t errlen)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc = -1;

	if (!ctx) {
		errf(err, errlen, "libnftables: cannot create a context");
		return -1;
	}
	if (nft_ctx_buffer_error(ctx) != 0 || nft_ctx_buffer_output(ctx) != 0) {
		errf(err, errlen, "libnftables: cannot buffer output");
		goto fail;
	}
	if (nft_run_cmd_from_buffer(ctx, script) != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		size_t n;

		errf(err, errlen, "%s", e && *e ? e : "nft: transaction failed");
		n = err ? strlen(err) : 0;
		while (n > 0 && err[n - 1] == '\n')
			err[--n] = '\0';
		goto fail;
	}
	if (out_borrowed && outlen) {
		const char *o = nft_ctx_get_output_buffer(ctx);
		snprintf(out_borrowed, outlen, "%s", o ? o : "");
	}
	rc = 0;
fail:
	nft_ctx_free(ctx);
	return rc;
}

/* ---------------------------------------------------------------- libnftnl */

struct nl_batch {
	char *buf;
	size_t size;
	struct mnl_nlmsg_batch *b;
	uint32_t seq;
	unsigned acks; /* messages asking for an ack */
};

static int batch_init(struct nl_batch *nb, uint32_t seq)
{
	nb->size = 32768;
	nb->buf = calloc(1, nb->size);
	if (!nb->buf)
		return -ENOMEM;
	nb->b = mnl_nlmsg_batch_start(nb->buf, nb->size);
	nb->seq = seq;
	nb->acks = 0;
	nftnl_batch_begin(mnl_nlmsg_batch_current(nb->b), nb->seq++);
	mnl_nlmsg_batch_next(nb->b);
	return 0;
}

static void batch_free(struct nl_batch *nb)
{
	if (nb->b)
		mnl_nlmsg_batch_stop(nb->b);
	free(nb->buf);
	nb->b = NULL;
	nb->buf = NULL;
}

static struct nlmsghdr *batch_hdr(struct nl_batch *nb, uint16_t type, uint16_t family,
                                  uint16_t flags)
{
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(nb->b), type, family,
	                                             flags | NLM_F_ACK, nb->seq++);
	nb->acks++;
	return nlh;
}

static int batch_next(struct nl_batch *nb)
{
	/* false: the page is full; our batches are a handful of small
	 * messages, so that is a broken invariant */
	if (!mnl_nlmsg_batch_next(nb->b))
		return -ENOSPC;
	return 0;
}

static int batch_table(struct nl_batch *nb, uint16_t type, uint16_t family, const char *name,
                       uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	nlh = batch_hdr(nb, type, family, flags);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	return batch_next(nb);
}

/* hooknum < 0: a regular chain (no hook). */
static int batch_chain(struct nl_batch *nb, uint16_t family, const char *table, const char *name,
                       int hooknum, int prio)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, family);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (hooknum >= 0) {
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)hooknum);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = batch_hdr(nb, NFT_MSG_NEWCHAIN, family, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	return batch_next(nb);
}

/*
 * The queue rule: [meta mark & MARK_MASK is QUEUED or QUEUED_NEW] NFQUEUE, as
 *   meta load mark => reg 1
 *   bitwise reg 1 = (reg 1 & MARK_MASK) ^ 0
 *   cmp eq reg 1 MARK_QUEUED
 *   target NFQUEUE rev <rev> info xt_NFQ_info_v<rev>
 * match_mark false: the target alone (last rule of pre, QUEUED just set).
 */
static int batch_queue_rule(struct nl_batch *nb, uint16_t family, const char *table,
                            const char *chain, bool match_mark, uint16_t qnum, uint16_t threads,
                            uint32_t rev, const struct marks *mk)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr *e;
	struct nlmsghdr *nlh;
	union {
		struct xt_NFQ_info_v1 v1;
		struct xt_NFQ_info_v3 v3;
	} info;
	size_t info_len;
	void *tginfo;

	if (!r)
		return -ENOMEM;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, family);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);

	if (match_mark) {
		/* QUEUED, QUEUED_NEW and QUEUED_ACKED differ from each other in
		 * two bits: the mask leaves them out, so the three (and no other
		 * mark value in use) are queued */
		uint32_t mask = mk->mask & ~((mk->queued ^ mk->queued_new) |
		                             (mk->queued ^ mk->queued_acked)),
		         xor = 0, want = mk->queued;

		e = nftnl_expr_alloc("meta");
		if (!e)
			goto nomem;
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
		nftnl_rule_add_expr(r, e);

		e = nftnl_expr_alloc("bitwise");
		if (!e)
			goto nomem;
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(uint32_t));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, sizeof(xor));
		nftnl_rule_add_expr(r, e);

		e = nftnl_expr_alloc("cmp");
		if (!e)
			goto nomem;
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &want, sizeof(want));
		nftnl_rule_add_expr(r, e);
	}

	memset(&info, 0, sizeof(info));
	if (rev == 3) {
		info.v3.queuenum = qnum;
		info.v3.queues_total = threads;
		info.v3.flags = 0; /* no bypass; hash spreading keeps a flow on one queue */
		info_len = sizeof(info.v3);
	} else {
		info.v1.queuenum = qnum;
		info.v1.queues_total = threads;
		info_len = sizeof(info.v1);
	}
	/* libnftnl keeps (and later frees) the TG_INFO pointer: give it a copy */
	tginfo = malloc(info_len);
	e = nftnl_expr_alloc("target");
	if (!e || !tginfo) {
		nftnl_expr_free(e);
		free(tginfo);
		goto nomem;
	}
	memcpy(tginfo, &info, info_len);
	nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
	nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, rev);
	nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, tginfo, (uint32_t)info_len);
	nftnl_rule_add_expr(r, e);

	nlh = batch_hdr(nb, NFT_MSG_NEWRULE, family, NLM_F_APPEND | NLM_F_CREATE);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	return batch_next(nb);
nomem:
	nftnl_rule_free(r);
	return -ENOMEM;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Close the batch, send it, and wait for one answer per message that asked
 * for an ack (bounded by 3 s). 0, or the first -errno the kernel gave. */
static int batch_send(struct nl_batch *nb)
{
	struct mnl_socket *nl = NULL;
	char rbuf[16384];
	unsigned answers = 0;
	int64_t deadline;
	int first_err = 0;
	uint32_t portid;

	nftnl_batch_end(mnl_nlmsg_batch_current(nb->b), nb->seq++);
	mnl_nlmsg_batch_next(nb->b);

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == -1)
		goto fail_errno;
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(nb->b), mnl_nlmsg_batch_size(nb->b)) == -1)
		goto fail_errno;

	deadline = mono_ms() + 3000;
	while (answers < nb->acks) {
		struct pollfd pfd = {.fd = mnl_socket_get_fd(nl), .events = POLLIN};
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0) {
			first_err = first_err ? first_err : -ETIMEDOUT;
			break;
		}
		if (poll(&pfd, 1, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			goto fail_errno;
		}
		if (!(pfd.revents & POLLIN))
			continue;
		n = mnl_socket_recvfrom(nl, rbuf, sizeof(rbuf));
		if (n == -1)
			goto fail_errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)rbuf; mnl_nlmsg_ok(h, (int)n);
		     h = mnl_nlmsg_next(h, (int *)&n)) {
			if (h->nlmsg_pid != portid && h->nlmsg_pid != 0)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);

				if (h->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
					continue;
				answers++;
				if (e->error != 0 && first_err == 0)
					first_err = e->error;
			}
		}
	}
	mnl_socket_close(nl);
	return first_err;
fail_errno:
	first_err = -errno;
	mnl_socket_close(nl);
	return first_err;
}

/* ----------------------------------------------------------------- probes */

/* Would the kernel take a native `queue` statement? Probed on a chain with
 * no hook in a throwaway table created and deleted in the same transaction:
 * nothing ever sees a packet. 1 yes, 0 no (why filled). */
static int probe_nft_queue(char *why, size_t whylen)
{
	static const char script[] = "table inet " RULES_PROBE_TABLE " {\n"
	                             "\tchain probe {\n\t\tqueue num 0\n\t}\n}\n"
	                             "delete table inet " RULES_PROBE_TABLE "\n";

	return nft_run(script, NULL, 0, why, whylen) == 0 ? 1 : 0;
}

/* Would the kernel take the xt NFQUEUE target in a table of `family`?
 * Same throwaway pattern through libnftnl. 0 or -errno. */
static int probe_xt(uint16_t family, uint32_t rev)
{
	struct nl_batch nb;
	const struct marks mk = rules_marks(NULL);
	int rc = batch_init(&nb, (uint32_t)time(NULL));

	if (rc != 0)
		return rc;
	if ((rc = batch_table(&nb, NFT_MSG_NEWTABLE, family, RULES_PROBE_TABLE, NLM_F_CREATE)) ||
	    (rc = batch_chain(&nb, family, RULES_PROBE_TABLE, "probe", -1, 0)) ||
	    (rc = batch_queue_rule(&nb, family, RULES_PROBE_TABLE, "probe", true, 0, 1, rev, &mk)) ||
	    (rc = batch_table(&nb, NFT_MSG_DELTABLE, family, RULES_PROBE_TABLE, 0)))
		goto out;
	rc = batch_send(&nb);
out:
	batch_free(&nb);
	return rc;
}

/* Find a working NFQUEUE target revision and where it may live. */
static int xt_detect(enum xt_place *place, uint32_t *rev, char *why, size_t whylen)
{
	static const uint32_t revs[] = {3, 2, 1};
	int rc_inet = -EOPNOTSUPP, rc_ip = 0;
	/* test seam: exercise the ip/ip6 placement on kernels that do not need it */
	const char *force = secure_getenv("EGRESSD_TEST_XT_TABLES");
	bool inet_ok = !(force && strcmp(force, "1") == 0);

	for (size_t i = 0; inet_ok && i < sizeof(revs) / sizeof(revs[0]); i++) {
		rc_inet = probe_xt(NFPROTO_INET, revs[i]);
		if (rc_inet == 0) {
			*place = XT_PLACE_INET;
			*rev = revs[i];
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(revs) / sizeof(revs[0]); i++) {
		rc_ip = probe_xt(NFPROTO_IPV4, revs[i]);
		if (rc_ip == 0 && probe_xt(NFPROTO_IPV6, revs[i]) == 0) {
			*place = XT_PLACE_IPTABLES;
			*rev = revs[i];
			return 0;
		}
	}
	errf(why, whylen,
	     "this kernel takes neither the nft queue statement nor the xt NFQUEUE target "
	     "(inet: %s; ip: %s); need CONFIG_NFT_QUEUE, or CONFIG_NFT_COMPAT and "
	     "CONFIG_NETFILTER_XT_TARGET_NFQUEUE",
	     strerror(-rc_inet), strerror(-rc_ip));
	return -1;
}

int rules_detect(enum rules_backend *out, char *why, size_t whylen)
{
	enum xt_place place;
	uint32_t rev;
	char nftwhy[256] = "";

	if (probe_nft_queue(nftwhy, sizeof(nftwhy))) {
		*out = RULES_NFT;
		errf(why, whylen, "native nft queue statement works");
		return 0;
	}
	if (xt_detect(&place, &rev, why, whylen) != 0)
		return -1;
	*out = RULES_XT;
	errf(why, whylen, "no native nft queue (CONFIG_NFT_QUEUE); xt NFQUEUE rev %u in %s", rev,
	     place == XT_PLACE_INET ? "the inet table" : "ip/ip6 tables");
	return 0;
}

/* ------------------------------------------------------------ apply/delete */

/* Remove the previous table (if any) and install the new one, in one
 * transaction; the same transaction removes stale <table>_q tables. */
static char *apply_script(const struct rules_params *p, const char *body)
{
	const char *t = table_name(p->table);
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	if (!f)
		return NULL;
	fprintf(f, "table inet %s {}\ndelete table inet %s\n", t, t);
	fprintf(f, "table ip %s_q {}\ndelete table ip %s_q\n", t, t);
	fprintf(f, "table ip6 %s_q {}\ndelete table ip6 %s_q\n", t, t);
	fputs(body, f);
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* Second transaction of the xt backend. */
static int apply_xt_queue(const struct rules_params *p, enum xt_place place, uint32_t rev)
{
	const char *t = table_name(p->table);
	uint16_t threads = p->queue_threads ? p->queue_threads : 1;
	struct nl_batch nb;
	char qt[RULES_NAME_MAX + 3];
	int hook = p->gateway ? NF_INET_FORWARD : NF_INET_LOCAL_OUT;
	const struct marks mk = rules_marks(p);
	int rc = batch_init(&nb, (uint32_t)time(NULL));

	if (rc != 0)
		return rc;
	if (place == XT_PLACE_INET) {
		rc = batch_queue_rule(&nb, NFPROTO_INET, t, "pre", false, p->queue_num, threads,
		                      rev, &mk);
		/* host mode: chain fpre too (the namespaces behind the host) */
		if (rc == 0 && !p->gateway)
			rc = batch_queue_rule(&nb, NFPROTO_INET, t, "fpre", false, p->queue_num,
			                      threads, rev, &mk);
	} else {
		static const uint16_t fams[] = {NFPROTO_IPV4, NFPROTO_IPV6};

		snprintf(qt, sizeof(qt), "%s_q", t);
		for (size_t i = 0; i < 2 && rc == 0; i++) {
			if ((rc = batch_table(&nb, NFT_MSG_NEWTABLE, fams[i], qt, NLM_F_CREATE)) ||
			    (rc = batch_chain(&nb, fams[i], qt, "queue", hook, RULES_QUEUE_PRIO)))
				break;
			rc = batch_queue_rule(&nb, fams[i], qt, "queue", true, p->queue_num,
			                      threads, rev, &mk);
			if (rc != 0 || p->gateway)
				continue;
			if ((rc = batch_chain(&nb, fams[i], qt, "fqueue", NF_INET_FORWARD,
			                      RULES_QUEUE_PRIO)))
				break;
			rc = batch_queue_rule(&nb, fams[i], qt, "fqueue", true, p->queue_num,
			                      threads, rev, &mk);
		}
	}
	if (rc == 0)
		rc = batch_send(&nb);
	batch_free(&nb);
	return rc;
}

int rules_apply(const struct rules_params *p, enum rules_backend b, char *err, size_t errlen)
{
	enum xt_place place = XT_PLACE_INET;
	uint32_t rev = 3;
	char *body = NULL, *script = NULL;
	char why[512];
	int rc = -1;

	if (!p) {
		errf(err, errlen, "no parameters");
		return -1;
	}
	if (!params_ok(p, err, errlen))
		return -1;
	if (b == RULES_AUTO && rules_detect(&b, err, errlen) != 0)
		return -1;
	if (b == RULES_NFT && !probe_nft_queue(why, sizeof(why))) {
		/* nft's first line says it; the rest echoes our probe table with carets */
		why[strcspn(why, "\n")] = '\0';
		errf(err, errlen,
		     "this kernel has no nft queue support (CONFIG_NFT_QUEUE); use --backend xt "
		     "or auto (%s)",
		     why);
		return -1;
	}
	if (b == RULES_XT && xt_detect(&place, &rev, err, errlen) != 0)
		return -1;

	body = render(p, b);
	script = body ? apply_script(p, body) : NULL;
	if (!script) {
		errf(err, errlen, "out of memory");
		goto fail;
	}
	if (nft_run(script, NULL, 0, err, errlen) != 0)
		goto fail;
	if (b == RULES_XT) {
		/* Now: table in place, queue step missing, post drops QUEUED. */
		int xrc = apply_xt_queue(p, place, rev);

		if (xrc != 0) {
			char derr[256];

			errf(err, errlen, "adding the xt NFQUEUE rule failed: %s; ruleset removed",
			     strerror(-xrc));
			if (rules_delete(p->table, derr, sizeof(derr)) != 0) {
				size_t n = strlen(err);
				errf(err + n, errlen > n ? errlen - n : 0,
				     "; removing it failed too (%s): QUEUED packets are dropped",
				     derr);
			}
			goto fail;
		}
	}
	rc = 0;
fail:
	free(script);
	free(body);
	return rc;
}

/* Does `table <family> <name>` exist? From `list tables`. */
static bool table_listed(const char *listing, const char *family, const char *name)
{
	char want[RULES_NAME_MAX + 32];
	size_t wl;

	snprintf(want, sizeof(want), "table %s %s", family, name);
	wl = strlen(want);
	for (const char *l = listing; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t ll = nl ? (size_t)(nl - l) : strlen(l);

		if (ll == wl && memcmp(l, want, wl) == 0)
			return true;
		l = nl ? nl + 1 : NULL;
	}
	return false;
}

int rules_delete(const char *table, char *err, size_t errlen)
{
	const char *t = table_name(table);
	char listing[8192];
	char qt[RULES_NAME_MAX + 3];
	char *s = NULL;
	size_t len = 0;
	FILE *f;
	bool any = false;
	int rc;

	if (!name_ok(t, RULES_NAME_MAX - 3)) {
		errf(err, errlen, "bad nft table name \"%s\"", t);
		return -1;
	}
	if (nft_run("list tables", listing, sizeof(listing), err, errlen) != 0)
		return -1;
	snprintf(qt, sizeof(qt), "%s_q", t);

	f = open_memstream(&s, &len);
	if (!f) {
		errf(err, errlen, "out of memory");
		return -1;
	}
	any = table_listed(listing, "inet", t) || table_listed(listing, "ip", qt) ||
	      table_listed(listing, "ip6", qt);
	/* create-then-delete: atomic, and no error if one vanished meanwhile */
	fprintf(f, "table inet %s {}\ndelete table inet %s\n", t, t);
	fprintf(f, "table ip %s {}\ndelete table ip %s\n", qt, qt);
	fprintf(f, "table ip6 %s {}\ndelete table ip6 %s\n", qt, qt);
	if (fclose(f) != 0) {
		free(s);
		errf(err, errlen, "out of memory");
		return -1;
	}
	if (!any) {
		free(s);
		errf(err, errlen, "nothing to delete");
		return 0;
	}
	rc = nft_run(s, NULL, 0, err, errlen);
	free(s);
	if (rc == 0)
		errf(err, errlen, "deleted");
	return rc;
}

/* --------------------------------------------------------- mark conflicts */

/*
 * Does another table use our mark bits? The ruleset is listed as JSON
 * (libnftables) and every rule outside egressd's own tables (named egressd
 * or egressd_*: the daemon's, the xt fallback's, egressd run's) is read for
 * the mark bits it may set or match:
 *   match  `meta|ct mark & M ...`  -> M;  a bare `meta|ct mark ...` (any
 *          use of the whole mark: compare, set or map key) -> all 32 bits
 *   set    `mark set mark | C`, `^ C` -> C;  `mark set mark & A` -> ~A;
 *          `mark set CONSTANT` or anything unknown -> all bits;
 *          `mark set <the other mark>` (meta <-> ct copy) -> none: a copy
 *          moves our bits together, it gives them no other meaning
 *   xt     the mark / MARK / connmark / CONNMARK compat extensions (their
 *          bits are not listed) -> all bits
 * Rules that iptables-legacy holds are invisible here.
 */
#define MARK_ALL 0xffffffffu

static bool mc_is_mark(struct json_object *o)
{
	struct json_object *m, *k;

	if (!o || !json_object_is_type(o, json_type_object))
		return false;
	if (!json_object_object_get_ex(o, "meta", &m) && !json_object_object_get_ex(o, "ct", &m))
		return false;
	return json_object_is_type(m, json_type_object) && json_object_object_get_ex(m, "key", &k) &&
	       json_object_is_type(k, json_type_string) &&
	       strcmp(json_object_get_string(k), "mark") == 0;
}

/* {"OP": [X, INT]}: X and INT; false if o is not that. */
static bool mc_binop(struct json_object *o, const char *op, struct json_object **x, uint32_t *c)
{
	struct json_object *a, *n;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, op, &a) ||
	    !json_object_is_type(a, json_type_array) || json_object_array_length(a) != 2)
		return false;
	n = json_object_array_get_idx(a, 1);
	if (!json_object_is_type(n, json_type_int))
		return false;
	*x = json_object_array_get_idx(a, 0);
	*c = (uint32_t)json_object_get_int64(n);
	return true;
}

/* The mark bits an expression reads. */
static uint32_t mc_reads(struct json_object *o)
{
	struct json_object *x;
	uint32_t c, bits = 0;

	if (mc_is_mark(o))
		return MARK_ALL;
	if (mc_binop(o, "&", &x, &c) && mc_is_mark(x))
		return c;
	if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++)
			bits |= mc_reads(json_object_array_get_idx(o, i));
	} else if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			bits |= mc_reads(val);
		}
	}
	return bits;
}

/* The mark bits `mark set VALUE` may change. */
static uint32_t mc_writes(struct json_object *v)
{
	struct json_object *x;
	uint32_t c;

	if (mc_is_mark(v))
		return 0;
	if (mc_binop(v, "|", &x, &c) || mc_binop(v, "^", &x, &c))
		return mc_writes(x) | c;
	if (mc_binop(v, "&", &x, &c))
		return mc_writes(x) | ~c;
	return MARK_ALL;
}

/* egressd, egressd_* (runs, xt fallback), and --table NAME with its NAME_q */
static bool mc_own_table(const char *name, const char *own)
{
	size_t n = own ? strlen(own) : 0;

	return strcmp(name, RULES_TABLE_DEFAULT) == 0 ||
	       strncmp(name, RULES_TABLE_DEFAULT "_", sizeof(RULES_TABLE_DEFAULT)) == 0 ||
	       (own && (strcmp(name, own) == 0 ||
	                (strncmp(name, own, n) == 0 && strcmp(name + n, "_q") == 0)));
}

static const char *mc_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : "?";
}

/* One rule's statements: the bits it sets and the bits it matches. */
static void mc_rule(struct json_object *exprs, uint32_t *set, uint32_t *match)
{
	for (size_t i = 0; json_object_is_type(exprs, json_type_array) &&
	                   i < json_object_array_length(exprs);
	     i++) {
		struct json_object *st = json_object_array_get_idx(exprs, i), *m, *k, *v;

		if (json_object_object_get_ex(st, "mangle", &m) &&
		    json_object_object_get_ex(m, "key", &k) && mc_is_mark(k)) {
			if (json_object_object_get_ex(m, "value", &v))
				*set |= mc_writes(v);
			else
				*set |= MARK_ALL;
		} else if (json_object_object_get_ex(st, "xt", &m) && m) {
			const char *n = mc_str(m, "name");

			if (strcasecmp(n, "mark") == 0 || strcasecmp(n, "connmark") == 0)
				*set |= MARK_ALL;
		} else {
			*match |= mc_reads(st);
		}
	}
}

int rules_mark_conflicts_json(const char *json, uint32_t mask, const char *own_table, char *err,
                              size_t errlen)
{
	struct json_object *root = json ? json_tokener_parse(json) : NULL, *list;
	unsigned found = 0;
	size_t n = 0;

	if (!root || !json_object_object_get_ex(root, "nftables", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		json_object_put(root);
		errf(err, errlen, "cannot read the nftables ruleset listing (JSON)");
		return -1;
	}
	if (err && errlen)
		err[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *r, *exprs, *h;
		uint32_t set = 0, match = 0;

		if (!json_object_object_get_ex(json_object_array_get_idx(list, i), "rule", &r) ||
		    mc_own_table(mc_str(r, "table"), own_table))
			continue;
		if (json_object_object_get_ex(r, "expr", &exprs))
			mc_rule(exprs, &set, &match);
		if (!((set | match) & mask))
			continue;
		if (found++ < 4 && err && n < errlen) {
			int w = snprintf(err + n, errlen - n,
			                 "%stable %s %s chain %s rule handle %" PRId64 " %s%s%s "
			                 "mark bits 0x%08x",
			                 n ? "; " : "", mc_str(r, "family"), mc_str(r, "table"),
			                 mc_str(r, "chain"),
			                 json_object_object_get_ex(r, "handle", &h)
			                     ? json_object_get_int64(h)
			                     : (int64_t)-1,
			                 set & mask ? "sets" : "", (set & match & mask) ? "/" : "",
			                 match & mask ? "matches" : "", (set | match) & mask);
			n = w < 0 ? errlen : n + (size_t)w;
		}
	}
	if (found > 4 && err && n < errlen)
		snprintf(err + n, errlen - n, "; and %u more", found - 4);
	json_object_put(root);
	return found ? 1 : 0;
}

int rules_mark_conflicts(const struct rules_params *p, char *err, size_t errlen)
{
	const struct marks mk = rules_marks(p);
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc = -1;

	if (!ctx) {
		errf(err, errlen, "libnftables: cannot create a context");
		return -1;
	}
	nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
	if (nft_ctx_buffer_error(ctx) != 0 || nft_ctx_buffer_output(ctx) != 0) {
		errf(err, errlen, "libnftables: cannot buffer output");
		goto fail;
	}
	if (nft_run_cmd_from_buffer(ctx, "list ruleset") != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);

		errf(err, errlen, "listing the ruleset failed: %s", e && *e ? e : "nft error");
		goto fail;
	}
	rc = rules_mark_conflicts_json(nft_ctx_get_output_buffer(ctx), mk.mask,
	                               table_name(p ? p->table : NULL), err, errlen);
fail:
	nft_ctx_free(ctx);
	return rc;
}

/* ------------------------------------------------------- egressd run NAT */

char *rules_render_run_nat(const char *table, const struct addr *net, unsigned prefix,
                           const char *inside)
{
	char a[ADDR_STRLEN];
	char *s = NULL;
	size_t len = 0;
	FILE *f;

	if (!name_ok(table, RULES_NAME_MAX) || !name_ok(inside, 15) || !net ||
	    net->family != ADDR_V4 || prefix > 32)
		return NULL;
	f = open_memstream(&s, &len);
	if (!f)
		return NULL;
	fprintf(f,
	        "table ip %s {\n"
	        "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
	        "    ip saddr %s/%u oifname != \"%s\" masquerade\n"
	        "  }\n"
	        "}\n",
	        table, addr_str(net, a), prefix, inside);
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

int rules_apply_run_nat(const char *table, const struct addr *net, unsigned prefix,
                        const char *inside, char *err, size_t errlen)
{
	char *text = rules_render_run_nat(table, net, prefix, inside);
	char *script = NULL;
	int rc;

	if (!text) {
		errf(err, errlen, "bad run NAT table, network or interface");
		return -1;
	}
	/* Replace what a previous run of the slot left, in the same transaction. */
	if (asprintf(&script, "table ip %s {}\ndelete table ip %s\n%s", table, table, text) < 0) {
		free(text);
		errf(err, errlen, "out of memory");
		return -1;
	}
	free(text);
	rc = nft_run(script, NULL, 0, err, errlen);
	free(script);
	return rc;
}

int rules_delete_run_nat(const char *table, char *err, size_t errlen)
{
	char *script = NULL;
	int rc;

	if (!name_ok(table, RULES_NAME_MAX)) {
		errf(err, errlen, "bad nft table name \"%s\"", table ? table : "");
		return -1;
	}
	/* create-then-delete: no error when there is none */
	if (asprintf(&script, "table ip %s {}\ndelete table ip %s\n", table, table) < 0) {
		errf(err, errlen, "out of memory");
		return -1;
	}
	rc = nft_run(script, NULL, 0, err, errlen);
	free(script);
	return rc;
}
