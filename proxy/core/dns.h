/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef EGRESSD_DNS_H
#define EGRESSD_DNS_H
/*
 * DNS messages (RFC 1035 4.1): what the DNS guard needs and nothing more.
 * header(12) = id flags qdcount ancount nscount arcount
 * question = qname(labels, compression pointers bounded) qtype qclass
 * rr = name type class ttl rdlength rdata
 */
#include "addr.h"
#include "cur.h"
#include "name.h"

enum dns_err {
	DNS_OK = 0,
	DNS_TRUNCATED,        /* shorter than the header or a stated length */
	DNS_NOT_QUERY,        /* QR bit set on a query, or opcode != QUERY */
	DNS_QDCOUNT,          /* not exactly one question */
	DNS_BAD_CLASS,        /* qclass != IN */
	DNS_BAD_NAME,         /* label too long, bad pointer, loop, name > 255 */
	DNS_NAME_REFUSED,     /* a name that name_normalize() refuses (see name_err) */
	DNS_BAD_RR,           /* a resource record runs past the message */
	DNS_ID_MISMATCH,
	DNS_ERR_COUNT_,
};
const char *dns_err_name(enum dns_err e);

enum {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_CNAME = 5,
	DNS_TYPE_NULL = 10,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_SVCB = 64,
	DNS_TYPE_HTTPS = 65,
	DNS_TYPE_ANY = 255,
	DNS_CLASS_IN = 1,
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_REFUSED = 5,
};

#define DNS_MSG_MAX 65535

struct dns_query {
	uint16_t id;
	uint16_t flags;
	uint16_t qtype, qclass;
	char qname[NAME_MAX_LEN + 1]; /* normalised; "" for the root */
	char raw_qname[256];          /* as sent, lowercase, dots, for indicators (may hold odd bytes escaped) */
	enum name_err name_err;
	size_t question_end;          /* offset just past the question */
};

/*
 * Parse a query from a client. PARSE_BAD with *why for anything that is not
 * an ordinary query: one question, class IN, opcode QUERY, QR clear.
 * When only the name is refused (DNS_NAME_REFUSED), q->qtype/raw_qname are
 * still filled so the caller can answer and log.
 */
enum parse dns_query_parse(struct cur msg, struct dns_query *q, enum dns_err *why);

/*
 * Build an answer carrying only the question back, with rcode, into out
 * (cap bytes). Returns its length, or 0 if cap is too small or the query
 * is shorter than its question (then the caller drops it).
 * Used for REFUSED, NXDOMAIN, SERVFAIL and the empty NOERROR answer.
 */
size_t dns_build_reply(const uint8_t *query, size_t qlen, const struct dns_query *q,
		       uint8_t rcode, uint8_t *out, size_t cap);

struct dns_addr {
	struct addr addr;
	uint32_t ttl;
};

/*
 * Addresses an answer binds to qname: A/AAAA records (and, with hints, the
 * ipv4hint/ipv6hint of HTTPS/SVCB records) whose owner is qname or a name
 * reached from it through the CNAME chain in the answer section. TTL is
 * the minimum along the chain. At most cap are stored in out; *n is set.
 * *rcode gets the answer's rcode. PARSE_BAD with *why on a malformed answer.
 */
enum parse dns_answer_addrs(struct cur msg, const char *qname, bool hints,
			    struct dns_addr *out, size_t cap, size_t *n, uint8_t *rcode,
			    enum dns_err *why);

/*
 * Copy msg to out (cap bytes) without the ech SvcParam (key 5) of its
 * HTTPS/SVCB records, RDLENGTHs and compression pointers fixed, the rest as
 * it was. Returns the new length (*changed: an ech param was cut), 0 if the
 * message cannot be walked (the caller must not relay it).
 */
size_t dns_strip_ech(const uint8_t *in, size_t len, uint8_t *out, size_t cap, bool *changed);

/* Overwrite the 16-bit id of a message in place (len >= 2). */
void dns_set_id(uint8_t *msg, size_t len, uint16_t id);

/* DNS over TCP: the next 2-byte length-prefixed message from a stream. */
enum parse dns_tcp_next(struct cur *stream, struct cur *msg);

#endif
