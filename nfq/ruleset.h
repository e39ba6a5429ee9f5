/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_RULESET_H
#define EGRESSD_RULESET_H
/*
 * The netfilter ruleset for a config: render as text, apply, delete.
 * Backend nft: native `queue` statement, via libnftables, one transaction.
 * Backend xt: the same table via libnftables, with the queue step done by
 * the xtables NFQUEUE target (nft_compat) added with libnftnl.
 */
#include "../proxy/core/addr.h"
#include <stdbool.h>
#include <stdint.h>

enum rules_backend {
	RULES_AUTO = 0,
	RULES_NFT = 1,
	RULES_XT = 2,
};
const char *rules_backend_name(enum rules_backend b);

struct rules_params {
	const char *table;     /* nft table name; NULL = "egressd" (run mode: one per run) */
	bool gateway;          /* false: host mode */
	const char *inside;    /* gateway: interface name */
	uint16_t queue_num;
	uint16_t queue_threads;
	uint32_t mark_mask;    /* [queue] mark_mask (marks.h); 0 = MARK_MASK_DEFAULT */
	/* DNS redirect target (listener); family ADDR_NONE = absent */
	struct addr dns_v4, dns_v6;
	uint16_t dns_port;
	/* host mode: DNS forwarded for the namespaces behind the host is
	 * redirected to this port on the address of the interface it came in
	 * on (a wildcard listener); 0 = no redirect (it is decided as a flow) */
	uint16_t container_port;
	/* egressd run: the inside may reach this host (input hook) only for DNS to
	 * the listener above; replies to what it let in pass (issue 9, class 10) */
	bool inside_local_dns_only;
};

/* Which backend the running kernel supports (probe in a throwaway table). */
int rules_detect(enum rules_backend *out, char *why, size_t whylen);

/* Ruleset text (malloc'd, caller frees) for `egressd rules`. */
char *rules_render(const struct rules_params *p, enum rules_backend b);

/* Apply (replacing any previous egressd ruleset) or delete. 0 or -1 with err. */
int rules_apply(const struct rules_params *p, enum rules_backend b, char *err, size_t errlen);
/* table NULL = "egressd"; also removes the xt fallback tables ip/ip6 <table>_q.
 * On success err says "deleted" or "nothing to delete" (not an error). */
int rules_delete(const char *table, char *err, size_t errlen);

/*
 * Do rules in other tables (not egressd, egressd_*, p->table) set or match mark bits
 * of p's mark_mask? Lists the running ruleset (libnftables, JSON).
 * 0: none; 1: yes, err names the first rules (table, chain, handle, bits);
 * -1: the listing failed (err says why). `egressd rules --apply` refuses
 * on 1 unless --force.
 */
int rules_mark_conflicts(const struct rules_params *p, char *err, size_t errlen);
/* The same on a listing (`nft -j -a list ruleset`); own_table (and own_table_q)
 * count as egressd's too. For tests. */
int rules_mark_conflicts_json(const char *json, uint32_t mask, const char *own_table, char *err,
                              size_t errlen);

/*
 * egressd run's NAT: table ip <table>, chain post (nat postrouting) that
 * masquerades what comes from net/prefix (IPv4) and leaves by another
 * interface than `inside` (its veth). Render (malloc'd; NULL on a bad
 * argument), apply (replacing a table of that name, one transaction) or
 * delete (no error when it is not there). 0 or -1 with err.
 */
char *rules_render_run_nat(const char *table, const struct addr *net, unsigned prefix,
                           const char *inside);
int rules_apply_run_nat(const char *table, const struct addr *net, unsigned prefix,
                        const char *inside, char *err, size_t errlen);
int rules_delete_run_nat(const char *table, char *err, size_t errlen);

#endif
