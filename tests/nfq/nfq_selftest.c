/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nfq_selftest: drives nfq/queue.c and nfq/ruleset.c against the real
 * kernel, for tests/nfq/selftest.sh (run it inside a network namespace).
 *
 *   nfq_selftest --render host|gateway [--backend nft|xt] [options]
 *   nfq_selftest --detect
 *   nfq_selftest --apply host|gateway [--backend auto|nft|xt] [options]
 *   nfq_selftest --delete [--table T]
 *   nfq_selftest --run [--queue N] [--ready FILE] [--hold-ms MS]
 * options: --table T --inside IF --queue N --threads N --dns4 A --dns6 A --dns-port P
 *
 * --run verdicts, from the packet bytes alone: TCP to port 9 -> DENY; a
 * TCP SYN -> PASS (the flow stays queued); TCP to port 10: PASS until the
 * first payload, which is DENY; UDP to port 7 -> ALLOW after
 * --hold-ms (a held verdict); everything else -> ALLOW. One line per
 * packet on stdout: "pkt <handle> len <n> uid <uid> <verdict>".
 * SIGTERM/SIGINT: print the counters and exit.
 */
#include "../../nfq/queue.h"
#include "../../nfq/ruleset.h"

#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct held {
	struct event *ev;
	struct queue *q;
	uint64_t handle;
};

struct run {
	struct event_base *base;
	struct queue *q;
	unsigned hold_ms;
	unsigned long verdicts[4];
};

static const char *verdict_name(enum verdict v)
{
	static const char *const names[] = {"PASS", "ALLOW", "DENY", "DROP"};
	return (unsigned)v < 4 ? names[v] : "?";
}

/*
 * IPv4: ver/ihl(1) tos(1) len(2) id(2) frag(2) ttl(1) proto(1) ...
 * IPv6: ver(4b)... next header at 6, header 40 bytes (no extension headers
 * here). TCP: sport(2) dport(2) seq(4) ack(4) off(1) flags(1).
 */
static enum verdict decide(const uint8_t *p, size_t len, bool *hold)
{
	size_t l4;
	uint8_t proto;

	*hold = false;
	if (len < 1)
		return VERDICT_DROP;
	if ((p[0] >> 4) == 4) {
		if (len < 20 || (size_t)(p[0] & 0x0f) * 4 < 20)
			return VERDICT_DROP;
		l4 = (size_t)(p[0] & 0x0f) * 4;
		proto = p[9];
	} else if ((p[0] >> 4) == 6) {
		if (len < 40)
			return VERDICT_DROP;
		l4 = 40;
		proto = p[6];
	} else {
		return VERDICT_DROP;
	}
	if (proto == 6 && len >= l4 + 14) {
		unsigned dport = (unsigned)p[l4 + 2] << 8 | p[l4 + 3];
		uint8_t flags = p[l4 + 13];

		size_t doff = (size_t)(p[l4 + 12] >> 4) * 4;

		if (dport == 9)
			return VERDICT_DENY;
		if (flags & 0x02)
			return VERDICT_PASS;
		/* port 10: decided on the first payload, like the engine does */
		if (dport == 10)
			return len > l4 + doff ? VERDICT_DENY : VERDICT_PASS;
		return VERDICT_ALLOW;
	}
	if (proto == 17 && len >= l4 + 8) {
		unsigned dport = (unsigned)p[l4 + 2] << 8 | p[l4 + 3];

		if (dport == 7)
			*hold = true;
	}
	return VERDICT_ALLOW;
}

static void give(struct run *r, uint64_t handle, enum verdict v)
{
	int rc = queue_verdict(r->q, handle, v);

	r->verdicts[v & 3]++;
	printf("pkt %llx verdict %s%s\n", (unsigned long long)handle, verdict_name(v),
	       rc ? " (error)" : "");
	fflush(stdout);
}

static struct run *g_run;

static void on_held(evutil_socket_t fd, short what, void *arg)
{
	struct held *h = arg;

	give(g_run, h->handle, VERDICT_ALLOW);
	event_free(h->ev);
	free(h);
}

static void on_packet(void *arg, uint64_t handle, const uint8_t *pkt, size_t len, int64_t uid,
                      unsigned flags, uint64_t now)
{
	struct run *r = arg;
	bool hold;
	enum verdict v = decide(pkt, len, &hold);

	printf("pkt %llx len %zu uid %lld\n", (unsigned long long)handle, len, (long long)uid);
	if (hold) {
		struct held *h = calloc(1, sizeof(*h));
		struct timeval tv = {.tv_sec = r->hold_ms / 1000,
		                     .tv_usec = (r->hold_ms % 1000) * 1000};

		if (h) {
			h->handle = handle;
			h->ev = evtimer_new(r->base, on_held, h);
		}
		if (h && h->ev && evtimer_add(h->ev, &tv) == 0) {
			printf("pkt %llx held %u ms\n", (unsigned long long)handle, r->hold_ms);
			fflush(stdout);
			return;
		}
		if (h && h->ev)
			event_free(h->ev);
		free(h);
		v = VERDICT_DROP;
	}
	give(r, handle, v);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

static int do_run(uint16_t num, unsigned hold_ms, const char *ready)
{
	struct run r = {.hold_ms = hold_ms};
	struct event *sterm, *sint;
	struct queue_stats st;
	char err[256];

	g_run = &r;
	r.base = event_base_new();
	if (!r.base)
		return 1;
	r.q = queue_open(r.base, num, on_packet, &r, err, sizeof(err));
	if (!r.q) {
		fprintf(stderr, "nfq_selftest: %s\n", err);
		return 1;
	}
	sterm = evsignal_new(r.base, SIGTERM, on_signal, r.base);
	sint = evsignal_new(r.base, SIGINT, on_signal, r.base);
	evsignal_add(sterm, NULL);
	evsignal_add(sint, NULL);
	if (ready) {
		FILE *f = fopen(ready, "w");
		if (f)
			fclose(f);
	}
	printf("ready queue %u\n", num);
	fflush(stdout);
	event_base_dispatch(r.base);

	queue_stats(r.q, &st);
	printf("stats packets %llu pass %lu allow %lu deny %lu drop %lu queue_dropped %llu "
	       "user_dropped %llu verdict_errors %llu bad %llu outstanding %llu\n",
	       (unsigned long long)st.packets, r.verdicts[VERDICT_PASS], r.verdicts[VERDICT_ALLOW],
	       r.verdicts[VERDICT_DENY], r.verdicts[VERDICT_DROP],
	       (unsigned long long)st.queue_dropped, (unsigned long long)st.user_dropped,
	       (unsigned long long)st.verdict_errors, (unsigned long long)st.bad_messages,
	       (unsigned long long)st.outstanding);
	queue_close(r.q);
	event_free(sterm);
	event_free(sint);
	event_base_free(r.base);
	return 0;
}

static int parse_backend(const char *s, enum rules_backend *b)
{
	if (!strcmp(s, "auto"))
		*b = RULES_AUTO;
	else if (!strcmp(s, "nft"))
		*b = RULES_NFT;
	else if (!strcmp(s, "xt"))
		*b = RULES_XT;
	else
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	enum { OP_NONE, OP_RENDER, OP_DETECT, OP_APPLY, OP_DELETE, OP_RUN } op = OP_NONE;
	static const struct option opts[] = {
	    {"render", required_argument, NULL, 'r'},
	    {"detect", no_argument, NULL, 'D'},
	    {"apply", required_argument, NULL, 'a'},
	    {"delete", no_argument, NULL, 'd'},
	    {"run", no_argument, NULL, 'R'},
	    {"backend", required_argument, NULL, 'b'},
	    {"table", required_argument, NULL, 't'},
	    {"inside", required_argument, NULL, 'i'},
	    {"queue", required_argument, NULL, 'q'},
	    {"threads", required_argument, NULL, 'T'},
	    {"dns4", required_argument, NULL, '4'},
	    {"dns6", required_argument, NULL, '6'},
	    {"dns-port", required_argument, NULL, 'p'},
	    {"ready", required_argument, NULL, 'y'},
	    {"hold-ms", required_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct rules_params p = {.queue_threads = 1};
	enum rules_backend b = RULES_AUTO;
	const char *ready = NULL;
	unsigned hold_ms = 200;
	char err[1024] = "";
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
		case 'a':
			op = c == 'r' ? OP_RENDER : OP_APPLY;
			if (strcmp(optarg, "host") && strcmp(optarg, "gateway"))
				goto usage;
			p.gateway = !strcmp(optarg, "gateway");
			break;
		case 'D':
			op = OP_DETECT;
			break;
		case 'd':
			op = OP_DELETE;
			break;
		case 'R':
			op = OP_RUN;
			break;
		case 'b':
			if (parse_backend(optarg, &b))
				goto usage;
			break;
		case 't':
			p.table = optarg;
			break;
		case 'i':
			p.inside = optarg;
			break;
		case 'q':
			p.queue_num = (uint16_t)atoi(optarg);
			break;
		case 'T':
			p.queue_threads = (uint16_t)atoi(optarg);
			break;
		case '4':
		case '6':
			if (!addr_parse(optarg, c == '4' ? &p.dns_v4 : &p.dns_v6))
				goto usage;
			break;
		case 'p':
			p.dns_port = (uint16_t)atoi(optarg);
			break;
		case 'y':
			ready = optarg;
			break;
		case 'h':
			hold_ms = (unsigned)atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	switch (op) {
	case OP_RENDER: {
		char *t = rules_render(&p, b);
		if (!t) {
			fprintf(stderr, "nfq_selftest: cannot render\n");
			return 1;
		}
		fputs(t, stdout);
		free(t);
		return 0;
	}
	case OP_DETECT:
		if (rules_detect(&b, err, sizeof(err)) != 0) {
			fprintf(stderr, "nfq_selftest: %s\n", err);
			return 1;
		}
		printf("%s: %s\n", rules_backend_name(b), err);
		return 0;
	case OP_APPLY:
		if (rules_apply(&p, b, err, sizeof(err)) != 0) {
			fprintf(stderr, "nfq_selftest: %s\n", err);
			return 1;
		}
		return 0;
	case OP_DELETE:
		if (rules_delete(p.table, err, sizeof(err)) != 0) {
			fprintf(stderr, "nfq_selftest: %s\n", err);
			return 1;
		}
		printf("%s\n", err);
		return 0;
	case OP_RUN:
		return do_run(p.queue_num, hold_ms, ready);
	case OP_NONE:
		break;
	}
usage:
	fprintf(stderr, "usage: nfq_selftest --render|--apply host|gateway | --detect | --delete "
	                "| --run  [--backend auto|nft|xt] [--table T] [--inside IF] [--queue N] "
	                "[--threads N] [--dns4 A] [--dns6 A] [--dns-port P] [--ready F] "
	                "[--hold-ms MS]\n");
	return 2;
}
