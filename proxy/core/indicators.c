/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Exfiltration indicators. A scanner, not a parser: it walks every offset
 * of a borrowed buffer looking for the shapes of well-known credentials
 * and never keeps one, only its type and a masked form (first and last
 * characters, at most four each, joined by U+2026).
 *
 *   AKIA|ASIA [A-Z0-9]{16}                 AWS access key id
 *   aws_secret_access_key ["':= ]* [A-Za-z0-9/+=]{40}
 *   gh[pousr]_ [A-Za-z0-9]{36}, github_pat_ [A-Za-z0-9_]{82}
 *   glpat- [A-Za-z0-9_-]{20}    xox[baprs]- [A-Za-z0-9-]{10,}    AIza [A-Za-z0-9_-]{35}
 *   -----BEGIN ... PRIVATE KEY-----        eyJ...\.eyJ...\.sig (JWT)
 *   Authorization: Bearer|Basic <token>
 */
#include "indicators.h"

#include <string.h>

const char *indicator_name(enum indicator bit)
{
	switch (bit) {
	case IND_CREDENTIAL:
		return "credential";
	case IND_DNS_TUNNEL:
		return "dns_tunnel";
	case IND_TYPOSQUAT:
		return "typosquat";
	case IND_IP_LITERAL:
		return "ip_literal";
	case IND_SNI_SPOOF:
		return "sni_spoof";
	case IND_ECH:
		return "ech";
	case IND_QUIC:
		return "quic";
	case IND_SPLIT_HELLO:
		return "split_hello";
	case IND_BEACON:
		return "beacon";
	case IND_METADATA:
		return "metadata";
	}
	return "";
}

const char *cred_type_name(enum cred_type t)
{
	static const char *const names[CRED_COUNT_] = {
	    [CRED_NONE] = "",
	    [CRED_AWS_ACCESS_KEY] = "aws_access_key",
	    [CRED_AWS_SECRET_KEY] = "aws_secret_key",
	    [CRED_GITHUB_TOKEN] = "github_token",
	    [CRED_GITLAB_TOKEN] = "gitlab_token",
	    [CRED_SLACK_TOKEN] = "slack_token",
	    [CRED_GOOGLE_API_KEY] = "google_api_key",
	    [CRED_PRIVATE_KEY] = "private_key",
	    [CRED_JWT] = "jwt",
	    [CRED_BEARER] = "bearer",
	    [CRED_BASIC_AUTH] = "basic_auth",
	};
	return (unsigned)t < CRED_COUNT_ ? names[t] : "";
}

const char *severity_name(enum severity s)
{
	switch (s) {
	case SEVERITY_LOW:
		return "low";
	case SEVERITY_MEDIUM:
		return "medium";
	case SEVERITY_HIGH:
		return "high";
	case SEVERITY_CRITICAL:
		return "critical";
	}
	return "low";
}

/* Character classes. */
static bool is_upper_digit(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static bool is_alnum(uint8_t c)
{
	return is_upper_digit(c) || (c >= 'a' && c <= 'z');
}
static bool is_word(uint8_t c)
{
	return is_alnum(c) || c == '_';
}
static bool is_b64url(uint8_t c)
{
	return is_alnum(c) || c == '_' || c == '-';
}
static bool is_b64(uint8_t c)
{
	return is_alnum(c) || c == '+' || c == '/' || c == '=';
}
static bool is_token68(uint8_t c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
	       c == '/' || c == '=';
}
static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* Does buf[i..] start with lit (exact, or ASCII case-insensitive)? */
static bool at(const uint8_t *buf, size_t len, size_t i, const char *lit, bool ci)
{
	size_t n = strlen(lit);
	if (i > len || len - i < n)
		return false;
	for (size_t k = 0; k < n; k++) {
		uint8_t c = buf[i + k];
		if ((ci ? lower(c) : c) != (uint8_t)lit[k])
			return false;
	}
	return true;
}

/* Length of the run of class chars at buf[i..], at most max. */
static size_t run(const uint8_t *buf, size_t len, size_t i, bool (*cls)(uint8_t), size_t max)
{
	size_t n = 0;
	while (i + n < len && n < max && cls(buf[i + n]))
		n++;
	return n;
}

static void add_hit(struct indicators *ind, enum cred_type t, const uint8_t *s, size_t n)
{
	struct cred_hit h = {.type = t};
	/* Show at most 4 at each end, and never more than a quarter of it each. */
	size_t show = n / 4;
	if (show > 4)
		show = 4;
	size_t o = 0;
	for (size_t k = 0; k < show; k++)
		h.masked[o++] = (char)s[k];
	memcpy(h.masked + o, "\xe2\x80\xa6", 3);
	o += 3;
	for (size_t k = n - show; k < n; k++)
		h.masked[o++] = (char)s[k];
	h.masked[o] = '\0';
	ind->bits |= IND_CREDENTIAL;
	for (size_t k = 0; k < ind->ncreds; k++)
		if (ind->creds[k].type == t && strcmp(ind->creds[k].masked, h.masked) == 0)
			return;
	if (ind->ncreds < IND_MAX_CREDS)
		ind->creds[ind->ncreds++] = h;
}

/* The match at i must not continue a longer word on the left. */
static bool left_boundary(const uint8_t *buf, size_t i, bool (*cls)(uint8_t))
{
	return i == 0 || !cls(buf[i - 1]);
}

/* Skip quotes, blanks and one '=' or ':' between a key name and its value. */
static size_t skip_assign(const uint8_t *buf, size_t len, size_t i)
{
	size_t start = i;
	bool sep = false;
	while (i < len && i - start < 16) {
		uint8_t c = buf[i];
		if (c == '"' || c == '\'' || c == ' ' || c == '\t')
			i++;
		else if (!sep && (c == '=' || c == ':')) {
			sep = true;
			i++;
		} else
			break;
	}
	return sep ? i : len;
}

static const char *const aws_secret_keys[] = {
    "aws_secret_access_key", "secret_access_key",     "aws_secret_key",
    "secretaccesskey",       "aws-secret-access-key",
};

/* Returns how many bytes from i were recognised (0: nothing here). */
static size_t scan_at(struct indicators *ind, const uint8_t *buf, size_t len, size_t i)
{
	uint8_t c = buf[i];
	size_t n;
	if ((c == 'A' && (at(buf, len, i, "AKIA", false) || at(buf, len, i, "ASIA", false))) &&
	    left_boundary(buf, i, is_upper_digit)) {
		n = run(buf, len, i + 4, is_upper_digit, 17);
		if (n == 16) {
			add_hit(ind, CRED_AWS_ACCESS_KEY, buf + i, 20);
			return 20;
		}
	}
	if (c == 'A' && at(buf, len, i, "AIza", false) && left_boundary(buf, i, is_b64url)) {
		n = run(buf, len, i + 4, is_b64url, 36);
		if (n == 35) {
			add_hit(ind, CRED_GOOGLE_API_KEY, buf + i, 39);
			return 39;
		}
	}
	if (c == 'g' && left_boundary(buf, i, is_word)) {
		if (at(buf, len, i, "github_pat_", false)) {
			n = run(buf, len, i + 11, is_word, 83);
			if (n == 82) {
				add_hit(ind, CRED_GITHUB_TOKEN, buf + i, 93);
				return 93;
			}
		}
		if (i + 4 <= len && buf[i + 1] == 'h' && buf[i + 3] == '_' &&
		    strchr("pousr", buf[i + 2]) && buf[i + 2]) {
			n = run(buf, len, i + 4, is_alnum, 37);
			if (n == 36) {
				add_hit(ind, CRED_GITHUB_TOKEN, buf + i, 40);
				return 40;
			}
		}
		if (at(buf, len, i, "glpat-", false)) {
			n = run(buf, len, i + 6, is_b64url, 21);
			if (n == 20) {
				add_hit(ind, CRED_GITLAB_TOKEN, buf + i, 26);
				return 26;
			}
		}
	}
	if (c == 'x' && at(buf, len, i, "xox", false) && i + 4 < len && buf[i + 3] &&
	    strchr("baprs", buf[i + 3]) && buf[i + 4] == '-' && left_boundary(buf, i, is_word)) {
		n = run(buf, len, i + 5, is_b64url, 256);
		if (n >= 10) {
			add_hit(ind, CRED_SLACK_TOKEN, buf + i, 5 + n);
			return 5 + n;
		}
	}
	if (c == '-' && at(buf, len, i, "-----BEGIN ", false)) {
		for (size_t k = i + 11; k < len && k < i + 11 + 40; k++) {
			if (buf[k] == '\n' || buf[k] == '\r')
				break;
			if (at(buf, len, k, "PRIVATE KEY-----", false)) {
				/* The label is not secret; mask the armour line anyway. */
				add_hit(ind, CRED_PRIVATE_KEY, buf + i, k + 16 - i);
				return k + 16 - i;
			}
		}
	}
	if (c == 'e' && at(buf, len, i, "eyJ", false) && left_boundary(buf, i, is_b64url)) {
		size_t h = run(buf, len, i, is_b64url, 8192);
		if (h >= 10 && i + h < len && buf[i + h] == '.' &&
		    at(buf, len, i + h + 1, "eyJ", false)) {
			size_t p = run(buf, len, i + h + 1, is_b64url, 65536);
			size_t s = 0;
			if (i + h + 1 + p < len && buf[i + h + 1 + p] == '.')
				s = run(buf, len, i + h + 2 + p, is_b64url, 8192);
			if (p >= 4 && s >= 8) {
				size_t tot = h + 1 + p + 1 + s;
				add_hit(ind, CRED_JWT, buf + i, tot);
				return tot;
			}
		}
	}
	if ((c | 0x20) == 'a' && at(buf, len, i, "authorization:", true)) {
		size_t k = i + 14;
		while (k < len && (buf[k] == ' ' || buf[k] == '\t'))
			k++;
		enum cred_type t = CRED_NONE;
		if (at(buf, len, k, "bearer ", true)) {
			t = CRED_BEARER;
			k += 7;
		} else if (at(buf, len, k, "basic ", true)) {
			t = CRED_BASIC_AUTH;
			k += 6;
		}
		if (t != CRED_NONE) {
			while (k < len && buf[k] == ' ')
				k++;
			n = run(buf, len, k, is_token68, 8192);
			if (n >= 8) {
				/* A JWT or known token inside is reported as what it is too. */
				for (size_t j = k; j < k + n; j++)
					scan_at(ind, buf, k + n, j);
				add_hit(ind, t, buf + k, n);
				return k + n - i;
			}
		}
	}
	if ((c | 0x20) == 'a' || (c | 0x20) == 's') {
		for (size_t q = 0; q < sizeof aws_secret_keys / sizeof *aws_secret_keys; q++) {
			if (!at(buf, len, i, aws_secret_keys[q], true))
				continue;
			size_t k = skip_assign(buf, len, i + strlen(aws_secret_keys[q]));
			if (k >= len)
				break;
			n = run(buf, len, k, is_b64, 41);
			if (n == 40) {
				add_hit(ind, CRED_AWS_SECRET_KEY, buf + k, 40);
				return k + 40 - i;
			}
			break;
		}
	}
	return 0;
}

void ind_scan_credentials(struct indicators *ind, const uint8_t *buf, size_t len)
{
	if (!ind || !buf)
		return;
	for (size_t i = 0; i < len;) {
		size_t used = scan_at(ind, buf, len, i);
		i += used ? used : 1;
	}
}

/* RFC 4648 base32 (case-insensitive), hex and base64url decoders; partial tails dropped. */
static size_t dec_base32(const char *s, size_t n, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = lower((uint8_t)s[i]), v;
		if (c >= 'a' && c <= 'z')
			v = (uint8_t)(c - 'a');
		else if (c >= '2' && c <= '7')
			v = (uint8_t)(c - '2' + 26);
		else if (c == '=')
			break;
		else
			return 0;
		acc = (acc << 5) | v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o < cap)
				out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return o;
}

static int hexval(uint8_t c)
{
	c = lower(c);
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static size_t dec_hex(const char *s, size_t n, uint8_t *out, size_t cap)
{
	if (n % 2)
		return 0;
	size_t o = 0;
	for (size_t i = 0; i + 1 < n && o < cap; i += 2) {
		int h = hexval((uint8_t)s[i]), l = hexval((uint8_t)s[i + 1]);
		if (h < 0 || l < 0)
			return 0;
		out[o++] = (uint8_t)(h << 4 | l);
	}
	return o;
}

static size_t dec_base64(const char *s, size_t n, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i], v;
		if (c >= 'A' && c <= 'Z')
			v = (uint8_t)(c - 'A');
		else if (c >= 'a' && c <= 'z')
			v = (uint8_t)(c - 'a' + 26);
		else if (c >= '0' && c <= '9')
			v = (uint8_t)(c - '0' + 52);
		else if (c == '-' || c == '+')
			v = 62;
		else if (c == '_' || c == '/')
			v = 63;
		else if (c == '=')
			break;
		else
			return 0;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o < cap)
				out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return o;
}

static void scan_decoded(struct indicators *ind, const char *s, size_t n)
{
	uint8_t buf[256];
	size_t k;
	if (n < 8)
		return;
	if ((k = dec_hex(s, n, buf, sizeof buf)))
		ind_scan_credentials(ind, buf, k);
	if ((k = dec_base32(s, n, buf, sizeof buf)))
		ind_scan_credentials(ind, buf, k);
	if ((k = dec_base64(s, n, buf, sizeof buf)))
		ind_scan_credentials(ind, buf, k);
}

/*
 * qname: labels joined by dots. The labels left of the registrable part
 * (taken as the last two labels: this module has no public suffix list)
 * are concatenated and decoded as hex, base32 and base64url, then each of
 * those labels alone, and the name itself is scanned as text (and upper-
 * cased, since DNS folds case and AWS key ids are upper case).
 */
void ind_scan_dns_name(struct indicators *ind, const char *qname)
{
	if (!ind || !qname)
		return;
	size_t n = strnlen(qname, 256);
	ind_scan_credentials(ind, (const uint8_t *)qname, n);
	char up[256], cat[256];
	for (size_t i = 0; i < n; i++)
		up[i] = (char)((qname[i] >= 'a' && qname[i] <= 'z') ? qname[i] - 32 : qname[i]);
	ind_scan_credentials(ind, (const uint8_t *)up, n);

	/* End of the part left of the last two labels. */
	size_t dots = 0, end = 0;
	for (size_t i = n; i-- > 0;) {
		if (qname[i] == '.' && ++dots == 2) {
			end = i;
			break;
		}
	}
	size_t cn = 0, ls = 0;
	for (size_t i = 0; i <= end && end; i++) {
		if (i == end || qname[i] == '.') {
			scan_decoded(ind, qname + ls, i - ls);
			ls = i + 1;
			continue;
		}
		cat[cn++] = qname[i];
	}
	scan_decoded(ind, cat, cn);
}

/* log2(x) for x > 0 without libm: exponent by halving, mantissa by atanh series. */
static double log2_approx(double x)
{
	double e = 0;
	while (x >= 2) {
		x /= 2;
		e += 1;
	}
	while (x < 1) {
		x *= 2;
		e -= 1;
	}
	double t = (x - 1) / (x + 1), t2 = t * t, term = t, sum = 0;
	for (int k = 1; k < 40; k += 2) {
		sum += term / k;
		term *= t2;
	}
	return e + 2 * sum / 0.69314718055994530942;
}

static double label_entropy(const char *s, size_t n)
{
	unsigned counts[256] = {0};
	for (size_t i = 0; i < n; i++)
		counts[(uint8_t)s[i]]++;
	double h = 0;
	for (size_t i = 0; i < 256; i++) {
		if (!counts[i])
			continue;
		double p = (double)counts[i] / (double)n;
		h -= p * log2_approx(p);
	}
	return h;
}

static bool label_tunnel_shaped(const char *s, size_t n)
{
	if (n > 40)
		return true;
	if (n >= 20 && label_entropy(s, n) > 3.5)
		return true;
	if (n < 24)
		return false;
	bool b32 = true, hex = true, digit = false, letter = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = lower((uint8_t)s[i]);
		bool d = c >= '0' && c <= '9', l = c >= 'a' && c <= 'z';
		digit |= d;
		letter |= l;
		if (!(l || (c >= '2' && c <= '7')))
			b32 = false;
		if (hexval(c) < 0)
			hex = false;
	}
	/* A long plain word is not an encoding: require digits among the letters. */
	return digit && ((b32 && letter) || hex);
}

bool ind_dns_name_tunnel_shaped(const char *qname)
{
	if (!qname)
		return false;
	size_t n = strnlen(qname, 256), ls = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || qname[i] == '.') {
			if (label_tunnel_shaped(qname + ls, i - ls))
				return true;
			ls = i + 1;
		}
	}
	return false;
}

/*
 * Homoglyph fold: the characters a look-alike domain swaps in for what
 * they resemble (0->o, 1/i/|->l, 3->e, 5->s, rn->m, vv->w, cl->d).
 */
static size_t fold(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; s[i] && o + 1 < cap; i++) {
		char c = (char)lower((uint8_t)s[i]);
		if (c == 'r' && s[i + 1] == 'n') {
			c = 'm';
			i++;
		} else if (c == 'v' && s[i + 1] == 'v') {
			c = 'w';
			i++;
		} else if (c == 'c' && s[i + 1] == 'l') {
			c = 'd';
			i++;
		} else if (c == '0')
			c = 'o';
		else if (c == '1' || c == 'i' || c == '|')
			c = 'l';
		else if (c == '3')
			c = 'e';
		else if (c == '5')
			c = 's';
		out[o++] = c;
	}
	out[o] = '\0';
	return o;
}

size_t ind_fold(const char *s, char *out, size_t cap)
{
	if (!s || !out || cap == 0)
		return 0;
	return fold(s, out, cap);
}

/* Bounded Levenshtein on the folded strings: true when distance <= max. */
bool ind_within_edit_distance(const char *a, const char *b, unsigned max)
{
	if (!a || !b)
		return false;
	char fa[256], fb[256];
	size_t na = fold(a, fa, sizeof fa), nb = fold(b, fb, sizeof fb);
	size_t d = na > nb ? na - nb : nb - na;
	if (d > max)
		return false;
	/* Two rows of the DP, only the band |i - j| <= max matters. */
	unsigned prev[257], cur[257];
	const unsigned big = max + 1;
	for (size_t j = 0; j <= nb; j++)
		prev[j] = j <= max ? (unsigned)j : big;
	for (size_t i = 1; i <= na; i++) {
		unsigned rowmin = big;
		cur[0] = i <= max ? (unsigned)i : big;
		for (size_t j = 1; j <= nb; j++) {
			if ((i > j ? i - j : j - i) > max) {
				cur[j] = big;
				continue;
			}
			unsigned v = prev[j - 1] + (fa[i - 1] != fb[j - 1]);
			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (cur[j - 1] + 1 < v)
				v = cur[j - 1] + 1;
			cur[j] = v > big ? big : v;
			if (cur[j] < rowmin)
				rowmin = cur[j];
		}
		if (cur[0] < rowmin)
			rowmin = cur[0];
		if (rowmin > max)
			return false;
		memcpy(prev, cur, (nb + 1) * sizeof *prev);
	}
	return prev[nb] <= max;
}

/* ---- IDN look-alikes ---- */

/* Punycode (RFC 3492 6.2) of one label body (after "xn--"); false if malformed. */
static bool puny_decode(const char *in, size_t len, uint32_t *out, size_t cap, size_t *n)
{
	enum { BASE = 36, TMIN = 1, TMAX = 26, SKEW = 38, DAMP = 700 };
	size_t b = 0, outlen = 0;
	for (size_t j = 0; j < len; j++)
		if (in[j] == '-')
			b = j;
	for (size_t j = 0; j < b; j++) {
		if (outlen == cap || (unsigned char)in[j] >= 0x80)
			return false;
		out[outlen++] = (unsigned char)in[j];
	}
	uint32_t nn = 128, i = 0, bias = 72;
	for (size_t pos = b > 0 ? b + 1 : 0; pos < len;) {
		uint32_t oldi = i, w = 1;
		for (uint32_t k = BASE;; k += BASE) {
			if (pos >= len)
				return false;
			char c = in[pos++];
			uint32_t digit;
			if (c >= 'a' && c <= 'z')
				digit = (uint32_t)(c - 'a');
			else if (c >= '0' && c <= '9')
				digit = (uint32_t)(c - '0') + 26;
			else
				return false;
			if (digit > (UINT32_MAX - i) / w)
				return false;
			i += digit * w;
			uint32_t t = k <= bias ? TMIN : k >= bias + TMAX ? TMAX : k - bias;
			if (digit < t)
				break;
			if (w > UINT32_MAX / (BASE - t))
				return false;
			w *= BASE - t;
		}
		/* bias adaptation */
		uint32_t delta = oldi == 0 ? (i - oldi) / DAMP : (i - oldi) / 2;
		delta += delta / (uint32_t)(outlen + 1);
		uint32_t k = 0;
		while (delta > ((BASE - TMIN) * TMAX) / 2) {
			delta /= BASE - TMIN;
			k += BASE;
		}
		bias = k + (BASE - TMIN + 1) * delta / (delta + SKEW);
		if (i / (outlen + 1) > UINT32_MAX - nn)
			return false;
		nn += i / (uint32_t)(outlen + 1);
		i %= (uint32_t)(outlen + 1);
		if (outlen == cap || nn < 0x80 || nn > 0x10ffff)
			return false;
		memmove(out + i + 1, out + i, (outlen - i) * sizeof *out);
		out[i++] = nn;
		outlen++;
	}
	*n = outlen;
	return true;
}

/* The Latin letter a code point is mistaken for, or 0. */
static char confusable(uint32_t cp)
{
	static const struct {
		uint32_t cp;
		char c;
	} map[] = {
		/* Cyrillic */
		{0x430, 'a'}, {0x435, 'e'}, {0x43e, 'o'}, {0x440, 'p'}, {0x441, 'c'},
		{0x443, 'y'}, {0x445, 'x'}, {0x456, 'i'}, {0x458, 'j'}, {0x455, 's'},
		{0x501, 'd'}, {0x51b, 'q'}, {0x51d, 'w'}, {0x4bb, 'h'}, {0x4cf, 'l'},
		{0x43a, 'k'}, {0x432, 'b'}, {0x43d, 'h'}, {0x442, 't'}, {0x433, 'r'},
		/* Greek */
		{0x3b1, 'a'}, {0x3bf, 'o'}, {0x3bd, 'v'}, {0x3c1, 'p'}, {0x3b9, 'i'},
		{0x3ba, 'k'}, {0x3c5, 'u'}, {0x3c7, 'x'}, {0x3b5, 'e'}, {0x3c4, 't'},
		/* Latin with marks, dotless i */
		{0x131, 'i'}, {0xe7, 'c'}, {0xf1, 'n'}, {0xfd, 'y'}, {0xff, 'y'},
		{0x142, 'l'}, {0x111, 'd'}, {0x161, 's'}, {0x17e, 'z'}, {0x10d, 'c'},
	};
	if (cp >= 0xe0 && cp <= 0xe5)
		return 'a';
	if (cp >= 0xe8 && cp <= 0xeb)
		return 'e';
	if (cp >= 0xec && cp <= 0xef)
		return 'i';
	if ((cp >= 0xf2 && cp <= 0xf6) || cp == 0xf8)
		return 'o';
	if (cp >= 0xf9 && cp <= 0xfc)
		return 'u';
	for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
		if (map[k].cp == cp)
			return map[k].c;
	return 0;
}

bool ind_confusable_skeleton(const char *name, char *out, size_t cap)
{
	if (!name || !out || cap == 0)
		return false;
	bool idn = false;
	size_t o = 0;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (len > 4 && strncmp(p, "xn--", 4) == 0) {
			uint32_t cps[64];
			size_t n = 0;
			if (!puny_decode(p + 4, len - 4, cps, 64, &n))
				return false;
			idn = true;
			for (size_t k = 0; k < n; k++) {
				char c = cps[k] < 0x80 ? (char)cps[k] : confusable(cps[k]);
				if (o + 1 >= cap)
					return false;
				out[o++] = c ? c : '~';
			}
		} else {
			if (o + len + 1 >= cap)
				return false;
			memcpy(out + o, p, len);
			o += len;
		}
		if (!dot)
			break;
		if (o + 1 >= cap)
			return false;
		out[o++] = '.';
		p = dot + 1;
	}
	out[o] = '\0';
	return idn;
}

enum severity ind_severity(const struct indicators *ind)
{
	if (!ind)
		return SEVERITY_LOW;
	if (ind->bits & IND_CREDENTIAL)
		return SEVERITY_CRITICAL;
	if (ind->bits & (IND_SNI_SPOOF | IND_TYPOSQUAT | IND_DNS_TUNNEL | IND_METADATA))
		return SEVERITY_HIGH;
	if (ind->bits & (IND_IP_LITERAL | IND_ECH | IND_SPLIT_HELLO | IND_BEACON))
		return SEVERITY_MEDIUM;
	return SEVERITY_LOW;
}
