/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "dns.h"

#include <string.h>

const char *dns_err_name(enum dns_err e)
{
	static const char *const names[DNS_ERR_COUNT_] = {
	    [DNS_OK] = "ok",
	    [DNS_TRUNCATED] = "truncated",
	    [DNS_NOT_QUERY] = "not_query",
	    [DNS_QDCOUNT] = "qdcount",
	    [DNS_BAD_CLASS] = "bad_class",
	    [DNS_BAD_NAME] = "bad_name",
	    [DNS_NAME_REFUSED] = "name_refused",
	    [DNS_BAD_RR] = "bad_rr",
	    [DNS_ID_MISMATCH] = "id_mismatch",
	};
	if ((unsigned)e >= DNS_ERR_COUNT_)
		return "unknown";
	return names[e];
}

#define DNS_WIRE_MAX 255 /* RFC 1035 3.1: a name is at most 255 octets on the wire */
#define DNS_HOPS_MAX 64
#define DNS_CHAIN_MAX 16

enum {
	DNS_F_QR = 0x8000,
	DNS_F_OPCODE = 0x7800,
	DNS_F_RD = 0x0100,
	DNS_F_RA = 0x0080,
	DNS_F_RCODE = 0x000f,
	DNS_SVC_IPV4HINT = 4,
	DNS_SVC_ECH = 5,
	DNS_SVC_IPV6HINT = 6,
};

struct dns_hdr {
	uint16_t id, flags, qd, an, ns, ar;
};

static bool dns_header(struct cur *c, struct dns_hdr *h)
{
	if (c->left < 12)
		return false;
	cur_u16(c, &h->id);
	cur_u16(c, &h->flags);
	cur_u16(c, &h->qd);
	cur_u16(c, &h->an);
	cur_u16(c, &h->ns);
	cur_u16(c, &h->ar);
	return true;
}

/*
 * Read a name at *pos into its uncompressed wire form (len-prefixed labels,
 * ending in the root's 0). A pointer (11xxxxxx xxxxxxxx, RFC 1035 4.1.4)
 * must point before the place we last jumped to (or, for the first, before
 * itself), so every chain ends; hops are bounded besides. *pos moves past
 * the name as it sits at *pos (up to and including the first pointer).
 * DNS_TRUNCATED: runs out of bytes; DNS_BAD_NAME: everything else.
 */
static enum dns_err dns_name(struct cur msg, struct cur *pos, uint8_t *wire, size_t *wlen)
{
	struct cur c = *pos;
	bool jumped = false;
	size_t limit = 0, w = 0;
	unsigned hops = 0;

	for (;;) {
		size_t at = (size_t)(c.p - msg.p);
		uint8_t len, lo;

		if (!cur_u8(&c, &len))
			return DNS_TRUNCATED;
		if ((len & 0xc0) == 0xc0) {
			if (!cur_u8(&c, &lo))
				return DNS_TRUNCATED;
			size_t off = ((size_t)(len & 0x3f) << 8) | lo;
			if (!jumped) {
				*pos = c;
				jumped = true;
				limit = at;
			}
			if (off >= limit || ++hops > DNS_HOPS_MAX)
				return DNS_BAD_NAME;
			limit = off;
			c = msg;
			cur_skip(&c, off);
			continue;
		}
		if (len & 0xc0) /* 01/10: extended label types, obsolete */
			return DNS_BAD_NAME;
		if (w + 1 + len + (len ? 1 : 0) > DNS_WIRE_MAX)
			return DNS_BAD_NAME;
		wire[w++] = len;
		if (!cur_copy(&c, wire + w, len))
			return DNS_TRUNCATED;
		w += len;
		if (len == 0)
			break;
	}
	if (!jumped)
		*pos = c;
	*wlen = w;
	return DNS_OK;
}

/*
 * Wire form to the normalised text of name.h. A '.' inside a label would
 * read as a separator, so such a name is refused (NAME_BAD_CHAR) here.
 */
static bool dns_wire_text(const uint8_t *wire, size_t wlen, char *out, enum name_err *why)
{
	char text[DNS_WIRE_MAX + 1];
	struct cur c = cur_make(wire, wlen), label;
	size_t t = 0;
	uint8_t ch;

	while (cur_sub_u8len(&c, &label) && label.left) {
		if (t)
			text[t++] = '.';
		while (cur_u8(&label, &ch)) {
			if (ch == '.') {
				out[0] = '\0';
				*why = NAME_BAD_CHAR;
				return false;
			}
			text[t++] = (char)ch;
		}
	}
	return name_normalize(text, t, out, why);
}

/* raw_qname: lowercase, dots between labels, other bytes (and an in-label dot) as \DDD. */
static void dns_wire_raw(const uint8_t *wire, size_t wlen, char *out, size_t cap)
{
	struct cur c = cur_make(wire, wlen), label;
	size_t o = 0;
	uint8_t ch;

	while (cur_sub_u8len(&c, &label) && label.left) {
		if (o && o + 1 < cap)
			out[o++] = '.';
		while (cur_u8(&label, &ch)) {
			if (ch >= 'A' && ch <= 'Z')
				ch = (uint8_t)(ch - 'A' + 'a');
			if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			    ch == '_') {
				if (o + 1 >= cap)
					goto done;
				out[o++] = (char)ch;
			} else {
				if (o + 4 >= cap)
					goto done;
				out[o++] = '\\';
				out[o++] = (char)('0' + ch / 100);
				out[o++] = (char)('0' + ch / 10 % 10);
				out[o++] = (char)('0' + ch % 10);
			}
		}
	}
done:
	out[o] = '\0';
}

/*
 * header(12) question: qname qtype(2) qclass(2)
 * The order of checks is the order a resolver would refuse them in.
 */
enum parse dns_query_parse(struct cur msg, struct dns_query *q, enum dns_err *why)
{
	struct cur c = msg;
	struct dns_hdr h;
	uint8_t wire[DNS_WIRE_MAX];
	size_t wlen = 0;
	enum dns_err err;

	memset(q, 0, sizeof *q);
	if (!dns_header(&c, &h)) {
		err = DNS_TRUNCATED;
		goto bad;
	}
	q->id = h.id;
	q->flags = h.flags;
	if ((h.flags & DNS_F_QR) || (h.flags & DNS_F_OPCODE)) {
		err = DNS_NOT_QUERY;
		goto bad;
	}
	if (h.qd != 1) {
		err = DNS_QDCOUNT;
		goto bad;
	}
	err = dns_name(msg, &c, wire, &wlen);
	if (err != DNS_OK)
		goto bad;
	if (!cur_u16(&c, &q->qtype) || !cur_u16(&c, &q->qclass)) {
		err = DNS_TRUNCATED;
		goto bad;
	}
	q->question_end = (size_t)(c.p - msg.p);
	dns_wire_raw(wire, wlen, q->raw_qname, sizeof q->raw_qname);
	if (q->qclass != DNS_CLASS_IN) {
		err = DNS_BAD_CLASS;
		goto bad;
	}
	if (!dns_wire_text(wire, wlen, q->qname, &q->name_err)) {
		if (why)
			*why = DNS_NAME_REFUSED;
		return PARSE_BAD;
	}
	if (why)
		*why = DNS_OK;
	return PARSE_OK;
bad:
	q->qname[0] = '\0';
	if (why)
		*why = err;
	return PARSE_BAD;
}

static bool dns_put(uint8_t *out, size_t cap, size_t *o, const void *src, size_t n)
{
	if (cap - *o < n)
		return false;
	memcpy(out + *o, src, n);
	*o += n;
	return true;
}

/*
 * The question is written back uncompressed: a pointer in the client's
 * question may aim into the header we are rewriting.
 */
size_t dns_build_reply(const uint8_t *query, size_t qlen, const struct dns_query *q, uint8_t rcode,
                       uint8_t *out, size_t cap)
{
	struct cur msg = cur_make(query, qlen), c = msg;
	struct dns_hdr h;
	uint8_t wire[DNS_WIRE_MAX], tail[4];
	size_t wlen = 0, o = 0;

	if (!q || !dns_header(&c, &h))
		return 0;
	/*
	 * A query whose question we refused to parse (several questions, a
	 * bad name) still gets its answer, with the header alone (qdcount 0),
	 * so the client learns at once instead of timing out.
	 */
	bool question = q->question_end >= 12 && qlen >= q->question_end && h.qd >= 1 &&
	                dns_name(msg, &c, wire, &wlen) == DNS_OK && cur_copy(&c, tail, 4);
	uint16_t flags = (uint16_t)(DNS_F_QR | (h.flags & (DNS_F_OPCODE | DNS_F_RD)) | DNS_F_RA |
	                            (rcode & DNS_F_RCODE));
	uint8_t hdr[12] = {
	    (uint8_t)(h.id >> 8),
	    (uint8_t)h.id,
	    (uint8_t)(flags >> 8),
	    (uint8_t)flags,
	    0,
	    question ? 1 : 0,
	    0,
	    0,
	    0,
	    0,
	    0,
	    0,
	};
	if (!dns_put(out, cap, &o, hdr, sizeof hdr))
		return 0;
	if (question && (!dns_put(out, cap, &o, wire, wlen) || !dns_put(out, cap, &o, tail, sizeof tail)))
		return 0;
	return o;
}

void dns_set_id(uint8_t *msg, size_t len, uint16_t id)
{
	if (!msg || len < 2)
		return;
	msg[0] = (uint8_t)(id >> 8);
	msg[1] = (uint8_t)id;
}

enum parse dns_tcp_next(struct cur *stream, struct cur *msg)
{
	struct cur s = *stream;
	uint16_t len;

	if (!cur_u16(&s, &len))
		return PARSE_MORE;
	if (len < 12)
		return PARSE_BAD;
	if (!cur_sub(&s, len, msg))
		return PARSE_MORE;
	*stream = s;
	return PARSE_OK;
}

/* rr = name type(2) class(2) ttl(4) rdata<0..2^16-1> */
struct dns_rr {
	uint8_t owner[DNS_WIRE_MAX];
	size_t owner_len;
	uint16_t type, class;
	uint32_t ttl;
	struct cur rdata;
};

static enum dns_err dns_rr(struct cur msg, struct cur *c, struct dns_rr *rr)
{
	enum dns_err err = dns_name(msg, c, rr->owner, &rr->owner_len);
	if (err == DNS_TRUNCATED)
		return DNS_BAD_RR;
	if (err != DNS_OK)
		return err;
	if (!cur_u16(c, &rr->type) || !cur_u16(c, &rr->class) || !cur_u32(c, &rr->ttl) ||
	    !cur_sub_u16len(c, &rr->rdata))
		return DNS_BAD_RR;
	if (rr->ttl > 0x7fffffffu) /* RFC 2181 8: treat as zero */
		rr->ttl = 0;
	return DNS_OK;
}

/* Case-insensitive comparison of two wire-form names. */
static bool dns_wire_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	struct cur x = cur_make(a, alen), y = cur_make(b, blen);
	uint8_t p, q;
	if (alen != blen)
		return false;
	while (cur_u8(&x, &p) && cur_u8(&y, &q)) {
		if (p >= 'A' && p <= 'Z')
			p = (uint8_t)(p - 'A' + 'a');
		if (q >= 'A' && q <= 'Z')
			q = (uint8_t)(q - 'A' + 'a');
		if (p != q)
			return false;
	}
	return true;
}

/* Normalised text to wire form. */
static bool dns_text_wire(const char *text, uint8_t *wire, size_t *wlen)
{
	size_t n = strlen(text), w = 0;
	struct cur c = cur_make(text, n);
	uint8_t ch;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	size_t lenpos = w++;
	wire[lenpos] = 0;
	while (cur_u8(&c, &ch)) {
		if (ch == '.') {
			lenpos = w++;
			wire[lenpos] = 0;
			continue;
		}
		wire[w++] = ch;
		wire[lenpos]++;
	}
	wire[w++] = 0;
	*wlen = w;
	return true;
}

struct dns_collect {
	struct dns_addr *out;
	size_t cap, n;
};

static void dns_add(struct dns_collect *col, uint8_t family, const uint8_t *b, uint32_t ttl)
{
	if (col->n >= col->cap)
		return;
	struct dns_addr *d = &col->out[col->n++];
	memset(d, 0, sizeof *d);
	d->addr.family = family;
	memcpy(d->addr.b, b, family == ADDR_V4 ? 4 : 16);
	d->ttl = ttl;
}

/*
 * HTTPS/SVCB rdata (RFC 9460 2.2): priority(2) target(name, uncompressed)
 * params { key(2) value<0..2^16-1> }; ipv4hint(4): n*4 bytes, ipv6hint(6): n*16.
 */
static enum dns_err dns_svcb(struct cur msg, struct cur rdata, uint32_t ttl,
                             struct dns_collect *col)
{
	uint8_t wire[DNS_WIRE_MAX];
	size_t wlen;
	uint16_t prio, key;
	struct cur val;
	const uint8_t *a;

	if (!cur_u16(&rdata, &prio))
		return DNS_BAD_RR;
	if (dns_name(msg, &rdata, wire, &wlen) != DNS_OK)
		return DNS_BAD_RR;
	while (rdata.left) {
		if (!cur_u16(&rdata, &key) || !cur_sub_u16len(&rdata, &val))
			return DNS_BAD_RR;
		if (key == DNS_SVC_IPV4HINT) {
			if (val.left == 0 || val.left % 4)
				return DNS_BAD_RR;
			while (cur_bytes(&val, 4, &a))
				dns_add(col, ADDR_V4, a, ttl);
		} else if (key == DNS_SVC_IPV6HINT) {
			if (val.left == 0 || val.left % 16)
				return DNS_BAD_RR;
			while (cur_bytes(&val, 16, &a))
				dns_add(col, ADDR_V6, a, ttl);
		}
	}
	return DNS_OK;
}

/*
 * Three steps over the answer section: validate every RR, follow the CNAME
 * chain from qname (at most DNS_CHAIN_MAX links, a name seen twice ends it),
 * then collect addresses whose owner is on the chain, each with the minimum
 * TTL of the links that led to it and its own.
 */
enum parse dns_answer_addrs(struct cur msg, const char *qname, bool hints, struct dns_addr *out,
                            size_t cap, size_t *n, uint8_t *rcode, enum dns_err *why)
{
	struct cur c = msg, answers;
	struct dns_hdr h;
	struct dns_rr rr;
	uint8_t chain[DNS_CHAIN_MAX + 1][DNS_WIRE_MAX];
	size_t chain_len[DNS_CHAIN_MAX + 1];
	uint32_t chain_ttl[DNS_CHAIN_MAX + 1];
	size_t links = 0;
	struct dns_collect col = {out, cap, 0};
	uint8_t qwire[DNS_WIRE_MAX];
	enum dns_err err = DNS_OK;
	char norm[NAME_MAX_LEN + 1];
	enum name_err nerr;

	*n = 0;
	if (rcode)
		*rcode = 0;
	if (!dns_header(&c, &h)) {
		err = DNS_TRUNCATED;
		goto bad;
	}
	if (rcode)
		*rcode = (uint8_t)(h.flags & DNS_F_RCODE);
	if (!(h.flags & DNS_F_QR)) {
		err = DNS_NOT_QUERY;
		goto bad;
	}
	for (unsigned i = 0; i < h.qd; i++) {
		err = dns_name(msg, &c, qwire, &chain_len[0]);
		if (err != DNS_OK)
			goto bad;
		if (!cur_skip(&c, 4)) {
			err = DNS_TRUNCATED;
			goto bad;
		}
	}
	answers = c;
	for (unsigned i = 0; i < h.an; i++) {
		err = dns_rr(msg, &c, &rr);
		if (err != DNS_OK)
			goto bad;
		if (rr.class != DNS_CLASS_IN)
			continue;
		if ((rr.type == DNS_TYPE_A && rr.rdata.left != 4) ||
		    (rr.type == DNS_TYPE_AAAA && rr.rdata.left != 16)) {
			err = DNS_BAD_RR;
			goto bad;
		}
		if (rr.type == DNS_TYPE_CNAME) {
			uint8_t t[DNS_WIRE_MAX];
			size_t tl;
			struct cur rd = rr.rdata;
			if (dns_name(msg, &rd, t, &tl) != DNS_OK || rd.left != 0) {
				err = DNS_BAD_RR;
				goto bad;
			}
		}
	}

	if (!qname || !name_normalize(qname, strlen(qname), norm, &nerr) ||
	    !dns_text_wire(norm, chain[0], &chain_len[0]))
		goto ok; /* nothing can be bound to a name we would never allow */
	chain_ttl[0] = UINT32_MAX;
	links = 1;
	while (links <= DNS_CHAIN_MAX) {
		bool found = false;
		c = answers;
		for (unsigned i = 0; i < h.an && !found; i++) {
			dns_rr(msg, &c, &rr);
			if (rr.class != DNS_CLASS_IN || rr.type != DNS_TYPE_CNAME ||
			    !dns_wire_eq(rr.owner, rr.owner_len, chain[links - 1],
			                 chain_len[links - 1]))
				continue;
			struct cur rd = rr.rdata;
			uint8_t t[DNS_WIRE_MAX];
			size_t tl = 0;
			dns_name(msg, &rd, t, &tl);
			for (size_t k = 0; k < links; k++)
				if (dns_wire_eq(t, tl, chain[k], chain_len[k]))
					goto chained; /* a loop: the chain ends here */
			if (links == DNS_CHAIN_MAX + 1)
				goto chained;
			memcpy(chain[links], t, tl);
			chain_len[links] = tl;
			uint32_t prev = chain_ttl[links - 1];
			chain_ttl[links] = rr.ttl < prev ? rr.ttl : prev;
			links++;
			found = true;
		}
		if (!found)
			break;
	}
chained:
	c = answers;
	for (unsigned i = 0; i < h.an; i++) {
		dns_rr(msg, &c, &rr);
		if (rr.class != DNS_CLASS_IN)
			continue;
		size_t k;
		for (k = 0; k < links; k++)
			if (dns_wire_eq(rr.owner, rr.owner_len, chain[k], chain_len[k]))
				break;
		if (k == links)
			continue;
		uint32_t ttl = rr.ttl < chain_ttl[k] ? rr.ttl : chain_ttl[k];
		const uint8_t *a;
		struct cur rd = rr.rdata;
		if (rr.type == DNS_TYPE_A && cur_bytes(&rd, 4, &a)) {
			dns_add(&col, ADDR_V4, a, ttl);
		} else if (rr.type == DNS_TYPE_AAAA && cur_bytes(&rd, 16, &a)) {
			dns_add(&col, ADDR_V6, a, ttl);
		} else if (hints && (rr.type == DNS_TYPE_HTTPS || rr.type == DNS_TYPE_SVCB)) {
			err = dns_svcb(msg, rr.rdata, ttl, &col);
			if (err != DNS_OK)
				goto bad;
		}
	}
ok:
	*n = col.n;
	if (why)
		*why = DNS_OK;
	return PARSE_OK;
bad:
	*n = 0;
	if (why)
		*why = err;
	return PARSE_BAD;
}

/*
 * Stripping the ech SvcParam (key 5) from HTTPS/SVCB records (RFC 9460 2.2).
 * Two walks over the whole message: the first records the byte ranges to cut
 * (each ech key+length+value), the second copies everything else to out and
 * moves every compression pointer it copies (question and owner names, and
 * the names inside the RDATA of the types that may be compressed) back by
 * the bytes cut before its target. A pointer into a cut range, a name or RR
 * running past the message, more cuts than DNS_STRIP_MAX: 0 (the caller
 * answers SERVFAIL). Records of other types are copied byte for byte.
 */
#define DNS_STRIP_MAX 64

struct dns_strip {
	const uint8_t *in;
	size_t len;
	uint8_t *out;        /* NULL on the first walk */
	size_t cap, o;
	size_t cut_at[DNS_STRIP_MAX], cut_len[DNS_STRIP_MAX];
	size_t ncut;
};

static bool strip_put(struct dns_strip *s, const uint8_t *p, size_t n)
{
	if (!s->out)
		return true;
	if (n > s->cap - s->o)
		return false;
	memcpy(s->out + s->o, p, n);
	s->o += n;
	return true;
}

/* Old offset to new offset; false if it falls inside a cut. */
static bool strip_map(const struct dns_strip *s, size_t off, size_t *res)
{
	size_t shift = 0;
	for (size_t i = 0; i < s->ncut; i++) {
		if (off >= s->cut_at[i] + s->cut_len[i])
			shift += s->cut_len[i];
		else if (off >= s->cut_at[i])
			return false;
	}
	*res = off - shift;
	return true;
}

/* Copy the name at *i (up to and including its first pointer), moving the pointer. */
static bool strip_name(struct dns_strip *s, size_t *i, size_t end)
{
	size_t total = 0;
	for (;;) {
		if (*i >= end)
			return false;
		uint8_t l = s->in[*i];
		if ((l & 0xc0) == 0xc0) {
			if (*i + 2 > end)
				return false;
			size_t off = ((size_t)(l & 0x3f) << 8) | s->in[*i + 1], n;
			if (off >= s->len || !strip_map(s, off, &n))
				return false;
			uint8_t p[2] = {(uint8_t)(0xc0 | (n >> 8)), (uint8_t)(n & 0xff)};
			*i += 2;
			return strip_put(s, p, 2);
		}
		if (l & 0xc0)
			return false;
		if (*i + 1 + l > end || (total += 1u + l) > 255)
			return false;
		if (!strip_put(s, s->in + *i, 1u + l))
			return false;
		*i += 1u + l;
		if (l == 0)
			return true;
	}
}

static bool strip_bytes(struct dns_strip *s, size_t *i, size_t n, size_t end)
{
	if (n > end - *i)
		return false;
	if (!strip_put(s, s->in + *i, n))
		return false;
	*i += n;
	return true;
}

/* SvcPriority, TargetName, then the params; ech ones are cut (first walk) or skipped. */
static bool strip_svcb(struct dns_strip *s, size_t i, size_t end)
{
	if (!strip_bytes(s, &i, 2, end) || !strip_name(s, &i, end))
		return false;
	while (i < end) {
		if (end - i < 4)
			return false;
		uint16_t key = (uint16_t)(s->in[i] << 8 | s->in[i + 1]);
		size_t vlen = (size_t)(s->in[i + 2] << 8 | s->in[i + 3]);
		if (vlen > end - i - 4)
			return false;
		if (key == DNS_SVC_ECH) {
			if (!s->out) {
				if (s->ncut == DNS_STRIP_MAX)
					return false;
				s->cut_at[s->ncut] = i;
				s->cut_len[s->ncut++] = 4 + vlen;
			}
			i += 4 + vlen;
			continue;
		}
		if (!strip_bytes(s, &i, 4 + vlen, end))
			return false;
	}
	return true;
}

static bool strip_rdata(struct dns_strip *s, uint16_t type, size_t i, size_t end)
{
	switch (type) {
	case DNS_TYPE_SVCB:
	case DNS_TYPE_HTTPS:
		return strip_svcb(s, i, end);
	case DNS_TYPE_NS:
	case DNS_TYPE_CNAME:
	case 12: /* PTR */
	case 39: /* DNAME */
		return strip_name(s, &i, end) && i == end;
	case 15: /* MX */
		return strip_bytes(s, &i, 2, end) && strip_name(s, &i, end) && i == end;
	case 33: /* SRV */
		return strip_bytes(s, &i, 6, end) && strip_name(s, &i, end) && i == end;
	case 6: /* SOA */
		return strip_name(s, &i, end) && strip_name(s, &i, end) &&
		       strip_bytes(s, &i, 20, end) && i == end;
	default:
		return strip_bytes(s, &i, end - i, end);
	}
}

static bool strip_walk(struct dns_strip *s)
{
	size_t i = 12;
	if (s->len < 12 || !strip_bytes(s, &(size_t){0}, 12, s->len))
		return false;
	unsigned qd = (unsigned)(s->in[4] << 8 | s->in[5]);
	unsigned rr = (unsigned)(s->in[6] << 8 | s->in[7]) + (unsigned)(s->in[8] << 8 | s->in[9]) +
	              (unsigned)(s->in[10] << 8 | s->in[11]);
	for (unsigned k = 0; k < qd; k++)
		if (!strip_name(s, &i, s->len) || !strip_bytes(s, &i, 4, s->len))
			return false;
	for (unsigned k = 0; k < rr; k++) {
		if (!strip_name(s, &i, s->len) || s->len - i < 10)
			return false;
		uint16_t type = (uint16_t)(s->in[i] << 8 | s->in[i + 1]);
		size_t rdlen = (size_t)(s->in[i + 8] << 8 | s->in[i + 9]);
		if (!strip_bytes(s, &i, 8, s->len) || rdlen > s->len - i - 2)
			return false;
		size_t lenpos = s->o;
		i += 2;
		if (!strip_put(s, (const uint8_t[2]){0, 0}, 2))
			return false;
		size_t start = s->o;
		if (!strip_rdata(s, type, i, i + rdlen))
			return false;
		if (s->out) {
			size_t n = s->o - start;
			s->out[lenpos] = (uint8_t)(n >> 8);
			s->out[lenpos + 1] = (uint8_t)(n & 0xff);
		}
		i += rdlen;
	}
	return strip_bytes(s, &i, s->len - i, s->len); /* trailing bytes: as they were */
}

size_t dns_strip_ech(const uint8_t *in, size_t len, uint8_t *out, size_t cap, bool *changed)
{
	struct dns_strip s = {.in = in, .len = len};
	if (changed)
		*changed = false;
	if (!in || !out || len < 12 || !strip_walk(&s))
		return 0;
	s.out = out;
	s.cap = cap;
	s.o = 0;
	if (!strip_walk(&s))
		return 0;
	if (changed)
		*changed = s.ncut > 0;
	return s.o;
}
