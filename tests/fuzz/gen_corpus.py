#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the seed corpora of the core parsers' fuzz targets.

Real-looking inputs: ClientHellos made by Python's ssl module (OpenSSL) for
real hostnames, HTTP requests, DNS queries and answers, IPv4/IPv6 packets,
and the RFC 9001 A.2 QUIC client Initial rebuilt from its plaintext; plus
edge cases each parser must refuse by name. Deterministic apart from the
random fields OpenSSL puts in its hellos.

Usage: /usr/bin/python3 tests/fuzz/gen_corpus.py  (needs python3-cryptography)
"""
import hashlib
import hmac
import os
import ssl
import struct
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
LIMIT = 40


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- TLS ---------------------------------------------------------------

def openssl_hello(hostname, alpn=None, maxv=None, minv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if hostname is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if maxv:
        ctx.maximum_version = maxv
    if minv:
        ctx.minimum_version = minv
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname=hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def records_of(stream):
    """Split a stream of TLS records into (type, version, fragment)."""
    out, i = [], 0
    while i + 5 <= len(stream):
        t, v, n = struct.unpack("!BHH", stream[i:i + 5])
        out.append((t, v, stream[i + 5:i + 5 + n]))
        i += 5 + n
    return out


def rerecord(msg, sizes, version=0x0301):
    """Wrap a handshake message into records of the given sizes (last takes the rest)."""
    out, i = b"", 0
    for s in sizes:
        if i >= len(msg):
            break
        out += struct.pack("!BHH", 22, version, len(msg[i:i + s])) + msg[i:i + s]
        i += s
    if i < len(msg):
        out += struct.pack("!BHH", 22, version, len(msg) - i) + msg[i:]
    return out


def u16(b):
    return struct.pack("!H", len(b)) + b


def ext(t, body):
    return struct.pack("!H", t) + u16(body)


def sni_ext(*names):
    lst = b"".join(b"\x00" + u16(n) for n in names)
    return ext(0, u16(lst))


def built_hello(exts, version=0x0303, tail=b""):
    body = struct.pack("!H", version) + bytes(range(32)) + b"\x20" + bytes(32)
    body += u16(b"\x13\x01\x13\x02\xc0\x2f") + b"\x01\x00"
    body += u16(b"".join(exts)) + tail
    return b"\x01" + struct.pack("!I", len(body))[1:] + body


SV13 = ext(43, b"\x04\x03\x04\x03\x03")


def tls_seeds():
    real = openssl_hello("example.com", alpn=["h2", "http/1.1"])
    write("tls", "openssl-example.com", real)
    write("tls", "openssl-updates.example.org", openssl_hello("updates.example.org"))
    write("tls", "openssl-idn", openssl_hello("xn--bcher-kva.example"))
    write("tls", "openssl-nosni", openssl_hello(None))
    write("tls", "openssl-tls12-only",
          openssl_hello("deb.debian.org", maxv=ssl.TLSVersion.TLSv1_2))
    write("tls", "openssl-tls13-only",
          openssl_hello("api.example.net", minv=ssl.TLSVersion.TLSv1_3))
    msg = records_of(real)[0][2]
    write("tls", "split-3-records", rerecord(msg, [3, 60]))
    write("tls", "split-1-byte-records", rerecord(msg, [1] * 12))
    write("tls", "split-1400", rerecord(msg, [100]))
    write("tls", "truncated-half", real[:len(real) // 2])
    write("tls", "truncated-header", real[:4])
    write("tls", "sslv2-hello", bytes.fromhex("802e0103010015000000100000"
                                              "0400000500000a01008007c0030080") + bytes(16))
    write("tls", "appdata-record", b"\x17\x03\x03\x00\x05hello")
    write("tls", "record-version-0304", b"\x16\x03\x04\x00\x04\x01\x00\x00\x00")
    write("tls", "server-hello", b"\x16\x03\x03\x00\x06\x02\x00\x00\x02\x03\x03")
    write("tls", "big-pq-2500", rerecord(built_hello(
        [sni_ext(b"pq.example.com"), SV13, ext(51, bytes(2500))]), [16384]))
    write("tls", "big-pq-split-1400", rerecord(built_hello(
        [sni_ext(b"pq.example.com"), SV13, ext(51, bytes(2500))]), [1400, 1400]))
    write("tls", "two-names", rerecord(built_hello(
        [sni_ext(b"ok.example.com", b"evil.example")]), []))
    write("tls", "dup-extension", rerecord(built_hello(
        [sni_ext(b"a.example"), SV13, SV13]), []))
    write("tls", "ech", rerecord(built_hello(
        [sni_ext(b"public.example"), SV13, ext(0xfe0d, bytes(200))]), []))
    write("tls", "sni-empty-list", rerecord(built_hello([ext(0, u16(b""))]), []))
    write("tls", "sni-nul", rerecord(built_hello(
        [sni_ext(b"good.example\x00.evil.example")]), []))
    write("tls", "sni-ip", rerecord(built_hello([sni_ext(b"192.0.2.1")]), []))
    write("tls", "sni-upper-dot", rerecord(built_hello([sni_ext(b"WWW.Example.COM.")]), []))
    write("tls", "no-extensions-tls10", rerecord(
        b"\x01\x00\x00\x29\x03\x01" + bytes(32) + b"\x00\x00\x02\x00\x2f\x01\x00", []))
    write("tls", "legacy-0300", rerecord(built_hello([sni_ext(b"a.example")], 0x0300), []))
    write("tls", "too-large", b"\x16\x03\x01\x40\x00\x01\x01\x00\x00")
    write("tls", "trailing", rerecord(built_hello([sni_ext(b"a.example")], tail=b"\xde\xad"), []))
    # a hello whose extensions block claims more than there is
    bad = bytearray(built_hello([sni_ext(b"a.example")]))
    bad[4 + 2 + 32 + 1 + 32 + 2 + 6 + 2 + 1] += 8
    write("tls", "ext-len-past-parent", rerecord(bytes(bad), []))
    return real


# ---- HTTP --------------------------------------------------------------

def http_seeds():
    reqs = {
        "get": b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/7.88.1\r\n"
               b"Accept: */*\r\n\r\n",
        "get-port": b"GET /index.html HTTP/1.0\r\nHost: deb.debian.org:8080\r\n\r\n",
        "post-body": b"POST /upload HTTP/1.1\r\nHost: api.example.net\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 27\r\n\r\n"
                     b"{\"key\":\"AKIAIOSFODNN7EXAMPLE\"}",
        "absolute-agree": b"GET http://example.com/a HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "absolute-mismatch": b"GET http://evil.example/ HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "two-hosts": b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        "no-host": b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
        "connect": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "h2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "partial": b"GET /path HTTP/1.1\r\nHost: exa",
        "ip-host": b"GET / HTTP/1.1\r\nHost: 192.0.2.7\r\n\r\n",
        "ipv6-host": b"GET / HTTP/1.1\r\nHost: [2001:db8::7]:80\r\n\r\n",
        "obs-fold": b"GET / HTTP/1.1\r\nX: a\r\n b\r\nHost: a.example\r\n\r\n",
        "bare-lf": b"GET / HTTP/1.1\nHost: a.example\n\n",
        "space-before-colon": b"GET / HTTP/1.1\r\nHost : a.example\r\n\r\n",
        "options-star": b"OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "http2-version": b"GET / HTTP/2.0\r\nHost: a.example\r\n\r\n",
        "userinfo": b"GET http://a.example@evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        "ssh": b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
        "nul-in-host": b"GET / HTTP/1.1\r\nHost: a.example\x00.evil\r\n\r\n",
        "many-headers": b"GET / HTTP/1.1\r\n" + b"".join(
            b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(60)) +
            b"Host: many.example\r\n\r\n",
    }
    for k, v in reqs.items():
        write("http", k, v)


# ---- DNS ---------------------------------------------------------------

def dname(n):
    if n in ("", "."):
        return b"\x00"
    return b"".join(bytes([len(l)]) + l.encode() for l in n.rstrip(".").split(".")) + b"\x00"


def dhdr(id_, flags, qd, an, ns=0, ar=0):
    return struct.pack("!HHHHHH", id_, flags, qd, an, ns, ar)


def question(n, t, c=1):
    return dname(n) + struct.pack("!HH", t, c)


def rr(owner, t, ttl, rdata, c=1):
    return owner + struct.pack("!HHIH", t, c, ttl, len(rdata)) + rdata


OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)


def dns_seeds():
    write("dns", "query-a", dhdr(0x1234, 0x0100, 1, 0) + question("example.com", 1))
    write("dns", "query-aaaa-edns", dhdr(0x2345, 0x0120, 1, 0, 0, 1) +
          question("www.Example.COM", 28) + OPT)
    write("dns", "query-https", dhdr(7, 0x0100, 1, 0) + question("svc.example", 65))
    write("dns", "query-tunnel-txt", dhdr(8, 0x0100, 1, 0) + question(
        "aGVsbG8gd29ybGQgdGhpcyBpcyBleGZpbHRyYXRlZA.x7f3.t.evil.example", 16))
    write("dns", "query-two-questions", dhdr(9, 0x0100, 2, 0) +
          question("a.example", 1) + question("b.example", 1))
    write("dns", "query-chaos", dhdr(10, 0x0100, 1, 0) + question("version.bind", 16, 3))
    write("dns", "query-update", dhdr(11, 0x2800, 1, 0) + question("a.example", 6))
    write("dns", "query-pointer-loop", dhdr(12, 0x0100, 1, 0) + b"\x01a\xc0\x0c" +
          struct.pack("!HH", 1, 1))
    write("dns", "query-pointer-forward", dhdr(13, 0x0100, 1, 0) + b"\xc0\x12" +
          struct.pack("!HH", 1, 1) + dname("a.example"))
    write("dns", "query-ip-literal", dhdr(14, 0x0100, 1, 0) + question("192.0.2.1", 1))
    write("dns", "query-root", dhdr(15, 0x0100, 1, 0) + question("", 2))
    write("dns", "query-binary-label", dhdr(16, 0x0100, 1, 0) + b"\x04a\x01.b" +
          dname("x.example") + struct.pack("!HH", 1, 1))
    write("dns", "query-long-name", dhdr(17, 0x0100, 1, 0) +
          b"".join(b"\x3f" + b"x" * 63 for _ in range(5)) + b"\x00" +
          struct.pack("!HH", 1, 1))
    # answer: www.example.com CNAME cdn.example.net CNAME edge; A, AAAA; compression
    q = question("www.example.com", 1)
    ans = rr(b"\xc0\x0c", 5, 300, dname("cdn.example.net"))
    cdn_off = 12 + len(q) + 12
    ans += rr(struct.pack("!H", 0xc000 | cdn_off), 5, 30, b"\x04edge" +
              struct.pack("!H", 0xc000 | cdn_off))
    edge_off = 12 + len(q) + len(rr(b"\xc0\x0c", 5, 300, dname("cdn.example.net"))) + 12
    ans += rr(struct.pack("!H", 0xc000 | edge_off), 1, 600, bytes([198, 51, 100, 7]))
    ans += rr(struct.pack("!H", 0xc000 | edge_off), 28, 10,
              bytes.fromhex("20010db8000000000000000000000007"))
    write("dns", "answer-cname-chain", dhdr(0x1234, 0x8180, 1, 4) + q + ans)
    write("dns", "answer-truncated", (dhdr(0x1234, 0x8180, 1, 4) + q + ans)[:-7])
    write("dns", "answer-nxdomain", dhdr(1, 0x8183, 1, 0) + q)
    svc = struct.pack("!H", 1) + b"\x00" + struct.pack("!HH", 1, 3) + b"\x02h2" + \
        struct.pack("!HH", 4, 8) + bytes([198, 51, 100, 1, 198, 51, 100, 2]) + \
        struct.pack("!HH", 6, 16) + bytes.fromhex("20010db8000000000000000000000009")
    write("dns", "answer-https-hints", dhdr(2, 0x8180, 1, 1) + question("svc.example", 65) +
          rr(b"\xc0\x0c", 65, 120, svc))
    loop = question("a.example", 1)
    b_off = 12 + len(loop) + 12
    write("dns", "answer-cname-loop", dhdr(3, 0x8180, 1, 3) + loop +
          rr(b"\xc0\x0c", 5, 100, dname("b.example")) +
          rr(struct.pack("!H", 0xc000 | b_off), 5, 50, b"\xc0\x0c") +
          rr(struct.pack("!H", 0xc000 | b_off), 1, 70, bytes([192, 0, 2, 5])))
    msg = dhdr(0x1234, 0x0100, 1, 0) + question("example.com", 1)
    write("dns", "tcp-stream-two", u16(msg) + u16(msg))
    return msg


# ---- packets -----------------------------------------------------------

def csum(b):
    if len(b) % 2:
        b += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ip4(proto, payload, src=(192, 0, 2, 10), dst=(203, 0, 113, 5), frag=0x4000, opts=b""):
    ihl = 5 + len(opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(opts) + len(payload), 0x1234,
                    frag, 64, proto, 0, bytes(src), bytes(dst)) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


S6 = bytes.fromhex("20010db800000000000000000000000a")
D6 = bytes.fromhex("20010db8000100000000000000000005")


def ip6(nh, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + S6 + D6 + payload


def tcp(flags, payload=b"", sport=40000, dport=443, opts=b""):
    doff = 5 + len(opts) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, doff << 4, flags, 65535, 0, 0) + \
        opts + payload


def udp(payload, sport=5353, dport=53):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def packet_seeds(hello, dnsq, quic_pkt):
    mss = b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + bytes(8) + b"\x01\x03\x03\x07"
    write("packet", "v4-tcp-syn", ip4(6, tcp(0x02, opts=mss)))
    write("packet", "v4-tcp-hello", ip4(6, tcp(0x18, hello)))
    write("packet", "v4-tcp-http", ip4(6, tcp(0x18, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
                                              dport=80)))
    write("packet", "v4-udp-dns", ip4(17, udp(dnsq)))
    write("packet", "v4-udp-quic", ip4(17, udp(quic_pkt, 50000, 443)))
    write("packet", "v4-icmp-echo", ip4(1, b"\x08\x00\x00\x00\x00\x01\x00\x01" + bytes(16)))
    write("packet", "v4-icmp-fragneeded", ip4(1, b"\x03\x04\x00\x00\x00\x00\x05\xdc" +
                                              ip4(6, tcp(0x10))[:28]))
    write("packet", "v4-options", ip4(6, tcp(0x02), opts=b"\x01\x01\x01\x01" * 2))
    write("packet", "v4-fragment-mf", ip4(17, udp(b"x" * 16), frag=0x2000))
    write("packet", "v4-fragment-offset", ip4(17, b"x" * 16, frag=0x0010))
    write("packet", "v4-bad-ihl", b"\x44" + ip4(6, tcp(0x02))[1:])
    write("packet", "v4-total-past", ip4(6, tcp(0x02))[:30])
    write("packet", "v4-bad-doff", ip4(6, b"\x9c\x40\x01\xbb" + bytes(8) + b"\x30\x02" + bytes(6)))
    write("packet", "v4-udp-len-past", ip4(17, struct.pack("!HHHH", 1, 53, 200, 0) + b"q"))
    write("packet", "v6-tcp-syn", ip6(6, tcp(0x02, opts=mss)))
    write("packet", "v6-tcp-hello", ip6(6, tcp(0x18, hello)))
    write("packet", "v6-udp-dns", ip6(17, udp(dnsq)))
    hbh = b"\x3c\x00\x01\x04\x00\x00\x00\x00"
    dst = b"\x2c\x01\x01\x0c" + bytes(12)
    frag0 = b"\x33\x00\x00\x00\x11\x22\x33\x44"
    ah = b"\x06\x04\x00\x00" + bytes(20)
    write("packet", "v6-ext-chain", ip6(0, hbh + dst + frag0 + ah + tcp(0x02)))
    write("packet", "v6-fragment-m", ip6(44, b"\x11\x00\x00\x01\x00\x00\x00\x01" + udp(b"x")))
    write("packet", "v6-ext-past", ip6(60, b"\x06\x20" + bytes(6)))
    write("packet", "v6-ext-too-many", ip6(60, b"".join(
        (b"\x3c" if i < 8 else b"\x11") + b"\x00\x01\x04\x00\x00\x00\x00" for i in range(9)) +
        udp(b"")))
    write("packet", "v6-icmp-ns", ip6(58, b"\x87\x00\x00\x00\x00\x00\x00\x00" + D6))
    write("packet", "v6-jumbo-zero-len", struct.pack("!IHBB", 0x60000000, 0, 6, 64) + S6 + D6)
    write("packet", "bad-version", b"\x50" + bytes(39))
    option_seeds()


def option_seeds():
    """Headers of bare packets (pkt_plain_headers): what stacks send, and covert fields."""
    ts = b"\x01\x01\x08\x0a" + bytes(8)
    write("packet", "opt-v4-ack-ts-sack", ip4(6, tcp(0x10, opts=ts + b"\x01\x01\x05\x0a" +
                                                  bytes(8))))
    write("packet", "opt-v4-syn-macos-eol", ip4(6, tcp(0x02, opts=b"\x02\x04\x05\xb4\x01\x03"
                                                    b"\x03\x06\x22\x02\x04\x02\x00\x00\x00\x00")))
    write("packet", "opt-v4-syn-unknown", ip4(6, tcp(0x02, opts=b"\xfd\x06EXFL\x01\x01")))
    write("packet", "opt-v4-syn-tfo-cookie", ip4(6, tcp(0x02, opts=b"\x22\x0a" + bytes(8) +
                                                     b"\x01\x01")))
    write("packet", "opt-v4-syn-after-eol", ip4(6, tcp(0x02, opts=b"\x02\x04\x05\xb4\x00EXF")))
    write("packet", "opt-v4-syn-len-past", ip4(6, tcp(0x02, opts=b"\x02\x04\x05\xb4\x08\x28\x00"
                                                   b"\x00")))
    write("packet", "opt-v4-ip-unknown", ip4(6, tcp(0x02), opts=b"\x1e\x06EXFL\x00\x00"))
    write("packet", "opt-v4-ip-rr", ip4(6, tcp(0x02), opts=b"\x07\x07\x04EXFL\x00"))
    write("packet", "opt-v6-dstopt-syn", ip6(60, b"\x06\x00\x1e\x04EXFL" + tcp(0x02)))


# ---- QUIC --------------------------------------------------------------

RFC_CRYPTO = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff")


def hkdf_label(secret, label, length):
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    return hmac.new(secret, info + b"\x01", hashlib.sha256).digest()[:length]


def quic_keys(dcid, v2=False):
    salt = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9" if v2 else
                         "38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
    initial = hmac.new(salt, dcid, hashlib.sha256).digest()
    client = hkdf_label(initial, b"client in", 32)
    p = b"quicv2 " if v2 else b"quic "
    return (hkdf_label(client, p + b"key", 16), hkdf_label(client, p + b"iv", 12),
            hkdf_label(client, p + b"hp", 16))


def quic_initial(dcid, plain, pn=2, v2=False, scid=b""):
    key, iv, hp = quic_keys(dcid, v2)
    first = 0xd3 if v2 else 0xc3
    ver = 0x6b3343cf if v2 else 1
    length = 4 + len(plain) + 16
    hdr = struct.pack("!BI", first, ver) + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + \
        scid + b"\x00" + struct.pack("!H", 0x4000 | length) + struct.pack("!I", pn)
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    ct = AESGCM(key).encrypt(nonce, plain, hdr)
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(ct[:16]) + enc.finalize()
    out = bytearray(hdr + ct)
    out[0] ^= mask[0] & 0x0f
    for i in range(4):
        out[len(hdr) - 4 + i] ^= mask[1 + i]
    return bytes(out)


def quic_seeds():
    dcid = bytes.fromhex("8394c8f03e515708")
    rfc = quic_initial(dcid, RFC_CRYPTO + bytes(1162 - len(RFC_CRYPTO)))
    assert rfc[:32].hex() == "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11"
    assert rfc[-16:].hex() == "e221af44860018ab0856972e194cd934"
    write("quic", "rfc9001-a2-initial", rfc)
    write("quic", "v2-initial", quic_initial(dcid, RFC_CRYPTO + bytes(900), v2=True))
    hello = RFC_CRYPTO[4:]
    def cf(off, d):
        return b"\x06" + struct.pack("!HH", 0x4000 | off, 0x4000 | len(d)) + d
    shuffled = cf(100, hello[100:]) + b"\x01\x00" + cf(0, hello[:100])
    write("quic", "shuffled-crypto", quic_initial(bytes(range(1, 17)), shuffled + bytes(900),
                                                   pn=0, scid=b"\xaa\xbb"))
    write("quic", "hello-continues", quic_initial(dcid, cf(0, hello[:120]) + bytes(1000)))
    write("quic", "rfc-tampered", rfc[:500] + bytes([rfc[500] ^ 1]) + rfc[501:])
    write("quic", "truncated", rfc[:600])
    write("quic", "short-header", b"\x40" + dcid + bytes(40))
    write("quic", "version-negotiation", b"\xc0\x00\x00\x00\x00\x08" + dcid + b"\x00" +
          b"\x00\x00\x00\x01")
    write("quic", "handshake-type", b"\xe0" + rfc[1:])
    # decrypted payload shapes: fuzz_quic also protects its input as a payload
    write("quic", "frames-rfc-crypto", RFC_CRYPTO)
    write("quic", "frames-shuffled-ack", shuffled + b"\x02\x00\x00\x01\x00\x00\x00")
    write("quic", "frames-stream", RFC_CRYPTO + b"\x08\x00")
    write("quic", "frames-conflict", cf(0, hello[:60]) + cf(0, b"\xff" * 60))
    write("quic", "frames-close", b"\x1c\x0a\x00\x03bye")
    return rfc


def main():
    real = tls_seeds()
    http_seeds()
    dnsq = dns_seeds()
    rfc = quic_seeds()
    packet_seeds(real, dnsq, rfc)
    for t in ("packet", "tls", "http", "dns", "quic"):
        n = len(os.listdir(os.path.join(CORPUS, t)))
        print("%s: %d seeds" % (t, n))
        if n > LIMIT:
            sys.exit("%s: more than %d seeds" % (t, LIMIT))


if __name__ == "__main__":
    main()
