"""Class 12, ECH: [tls] ech = outer (default) | deny | allow.

Browsers, BoringSSL, NSS and Go send a GREASE encrypted_client_hello
(0xfe0d) in nearly every hello. openssl s_client on Debian 12 cannot send
one, so CLIENT below crafts a TLS 1.3 ClientHello with an SNI and a GREASE
ECH extension (outer type, HPKE suite, random config id / enc / payload).

- outer: the hello is decided on its outer SNI. An allowed, bound name is
  delivered (nginx answers); an outer SNI naming another tenant of the same
  address (cdn-b.example.org on cdn-a.example.org's address) is denied, and
  nginx never serves it.
- deny: the same allowed hello is denied with reason `ech`.
- DNS: an HTTPS record carrying an ech SvcParam reaches the client without it
  under outer; allow relays it; deny answers HTTPS queries empty.
"""
import json
import os

import pytest

import dnsb
import lab as L

UPDATES = "updates.example.com"
UPDATES4, UPDATES6 = L.HOSTS[UPDATES]

CLIENT = r'''
import json, os, socket, struct, sys
sni, family = sys.argv[1], sys.argv[2]
fam = socket.AF_INET6 if family == "6" else socket.AF_INET
addr = socket.getaddrinfo(sys.argv[3] if len(sys.argv) > 3 else sni, 443, fam,
                          socket.SOCK_STREAM)[0][4]
def ext(t, body):
    return struct.pack("!HH", t, len(body)) + body
name = sni.encode()
exts = ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
exts += ext(10, struct.pack("!HH", 2, 0x001d))                      # groups: x25519
exts += ext(13, struct.pack("!HHHH", 6, 0x0403, 0x0804, 0x0401))    # signature algorithms
exts += ext(43, bytes([4]) + struct.pack("!HH", 0x0304, 0x0303))    # versions 1.3, 1.2
exts += ext(51, struct.pack("!HHH", 36, 0x001d, 32) + os.urandom(32))  # key_share
enc, payload = os.urandom(32), os.urandom(176)
exts += ext(0xfe0d, bytes([0]) + struct.pack("!HH", 1, 1) + os.urandom(1) +
            struct.pack("!H", len(enc)) + enc + struct.pack("!H", len(payload)) + payload)
suites = struct.pack("!HHHH", 6, 0x1301, 0x1302, 0x1303)
body = struct.pack("!H", 0x0303) + os.urandom(32) + bytes([32]) + os.urandom(32) + suites
body += bytes([1, 0]) + struct.pack("!H", len(exts)) + exts
hs = bytes([1]) + len(body).to_bytes(3, "big") + body
rec = bytes([22, 3, 1]) + struct.pack("!H", len(hs)) + hs
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(3)
got, err = b"", None
try:
    s.connect(addr)
    s.sendall(rec)
    while len(got) < 5:
        d = s.recv(4096)
        if not d:
            break
        got += d
except OSError as e:
    err = str(e)
print(json.dumps({"addr": addr[0], "bytes": len(got), "first": got[:1].hex(), "err": err}))
'''


def start(lab, ech, **kw):
    """egressd with [tls] ech = ECH (write_conf writes deny)."""
    e = lab.write_conf(**kw)
    with open(e.conf) as f:
        text = f.read()
    assert text.count("\nech = deny\n") == 1, text
    with open(e.conf, "w") as f:
        f.write(text.replace("\nech = deny\n", "\nech = %s\n" % ech))
    return e.start()


def grease_hello(lab, sni, family="4", resolve=None):
    args = [L.PY, "-c", CLIENT, sni, family] + ([resolve] if resolve else [])
    p = lab.ns_run(lab.cli, args, timeout=10)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("family", ["4", "6"])
def test_grease_ech_allowed_name_outer(anylab, family):
    e = start(anylab, "outer")
    r = grease_hello(anylab, UPDATES, family)
    assert r["addr"] == (UPDATES4 if family == "4" else UPDATES6), r
    assert r["bytes"] > 0 and r["first"] in ("16", "15"), r  # nginx answered (hello or alert)
    ev = e.wait_event(lambda ev: ev.get("event") == "allow" and ev.get("name") == UPDATES,
                      what="allow of the GREASE ECH hello")
    assert ev.get("name_source") == "sni", ev
    assert not e.events("deny"), e.events("deny")
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("family", ["4", "6"])
def test_grease_ech_denied_under_deny(anylab, family):
    e = start(anylab, "deny")
    r = grease_hello(anylab, UPDATES, family)
    assert r["bytes"] == 0, r
    ev = e.wait_event(lambda ev: ev.get("event") == "deny", what="deny of the ECH hello")
    assert ev.get("reason") == "ech", ev
    assert "ech" in ev.get("indicators", []), ev
    assert not e.events("allow"), e.events("allow")
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("family", ["4", "6"])
def test_grease_ech_other_tenant_outer_sni_denied(anylab, family):
    """Resolve the allowed cdn-a.example.org, then send a GREASE ECH hello whose
    outer SNI is cdn-b.example.org (same address, not allowed): denied."""
    e = start(anylab, "outer")
    r = grease_hello(anylab, "cdn-b.example.org", family, resolve="cdn-a.example.org")
    assert r["bytes"] == 0, r
    ev = e.wait_event(lambda ev: ev.get("event") == "deny", what="deny of the other tenant")
    assert ev.get("reason") in ("name_not_allowed", "sni_ip_mismatch"), ev
    assert ev.get("name") == "cdn-b.example.org", ev
    assert not e.events("allow"), e.events("allow")
    assert not [a for a in anylab.nginx_access() if "cdn-b" in a], \
        anylab.nginx_access()
    anylab.assert_attacker_got_nothing()


# HTTPS rdata: priority 1, target ".", alpn h2, ech = 6 bytes, ipv4hint.
ECH_PARAM_HEX = "0005" + "0006" + "454348434647"
HINT_HEX = "0004" + "0004" + "cb00710a"
RDATA_WITH_ECH = "0001" + "00" + "0001" + "0003" + "02" + "6832" + ECH_PARAM_HEX + HINT_HEX
RDATA_WITHOUT_ECH = "0001" + "00" + "0001" + "0003" + "02" + "6832" + HINT_HEX


@pytest.mark.parametrize("ech", ["outer", "allow", "deny"])
def test_https_record_ech_param(anylab, ech):
    up = dnsb.Upstream(anylab, {UPDATES: [UPDATES4]},
                       rrs=[(UPDATES, 65, RDATA_WITH_ECH), (UPDATES, 64, RDATA_WITH_ECH)])
    e = dnsb.write_conf(anylab, upstream=up.addr4, ech=ech)
    e.start()
    for qtype in ("HTTPS", "SVCB"):
        for tcp in (False, True):
            r = dnsb.query(anylab, L.RESOLVER4, UPDATES, qtype, tcp=tcp)
            assert r.get("rcode") == "NOERROR", r
            got = [(a["type"], a["value"]) for a in r["answers"]]
            if ech == "deny":
                assert got == [], r
            elif ech == "outer":
                assert got == [(qtype, RDATA_WITHOUT_ECH)], r
            else:
                assert got == [(qtype, RDATA_WITH_ECH)], r
    r = dnsb.query(anylab, L.RESOLVER4, UPDATES, "A")
    assert [a["value"] for a in r["answers"]] == [UPDATES4], r
    anylab.assert_attacker_got_nothing()


# -- real Chromium ---------------------------------------------------------

PAGE = "ech.html"  # text/html: a /file (octet-stream) would be a download, not a DOM


def page(lab, site):
    """An HTML page on nginx's SITE root; its body text."""
    text = "hello from %s over chromium" % site
    with open(os.path.join(lab.dir, "www", site, PAGE), "w") as f:
        f.write("<html><body><p>%s</p></body></html>\n" % text)
    return text


def chromium(lab, url, extra=(), timeout=40):
    """Debian's chromium, headless, in the client namespace (its DNS goes to the
    lab's resolver address, so to egressd). Page DOM on stdout."""
    prof = os.path.join(lab.dir, "chromium-profile-%d" % len(os.listdir(lab.dir)))
    args = ["timeout", "-k", "5", str(timeout - 5), "chromium", "--headless=new", "--no-sandbox",
            "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--user-data-dir=" + prof,
            "--ignore-certificate-errors",
            "--dump-dom"] + list(extra) + [url]
    env = dict(os.environ, HOME=lab.dir)
    return lab.ns_run(lab.cli, args, timeout=timeout, env=env)


needs_chromium = pytest.mark.skipif(not L.shutil.which("chromium"),
                                    reason="chromium not installed (tests/deps.sh)")


@needs_chromium
def test_chromium_outer(gwlab):
    """ech = outer: Chromium (which sends a GREASE ECH extension) gets the allowed
    page; a denied name and another tenant's name on an allowed address fail."""
    e = start(gwlab, "outer")
    want = page(gwlab, "updates")
    p = chromium(gwlab, "https://%s/%s" % (UPDATES, PAGE))
    assert want in p.stdout, (p.returncode, p.stdout, p.stderr[-2000:],
                                                   e.events())
    e.wait_event(lambda ev: ev.get("event") == "allow" and ev.get("name") == UPDATES
                 and ev.get("name_source") == "sni", what="allow of Chromium's hello")
    assert not [ev for ev in e.events("deny") if ev.get("name") == UPDATES], e.events("deny")
    # A name no entry covers: refused at DNS, the page never loads.
    p = chromium(gwlab, "https://mirror.examp1e.net/%s" % PAGE)
    assert "hello from" not in p.stdout, p.stdout
    e.wait_event(lambda ev: ev.get("event") == "dns_deny"
                 and ev.get("qname") == "mirror.examp1e.net", what="dns_deny of the denied name")
    # Another tenant of the allowed cdn-a.example.org's address: denied on its outer SNI.
    assert gwlab.dig("cdn-a.example.org", "A", "+short").stdout.strip() == "203.0.113.30"
    page(gwlab, "cdn-b")
    p = chromium(gwlab, "https://cdn-b.example.org/%s" % PAGE,
                 ["--host-resolver-rules=MAP cdn-b.example.org 203.0.113.30"])
    assert "hello from" not in p.stdout, p.stdout
    e.wait_event(lambda ev: ev.get("event") == "deny" and ev.get("name") == "cdn-b.example.org",
                 what="deny of cdn-b.example.org's hello")
    assert not [a for a in gwlab.nginx_access() if "cdn-b" in a], gwlab.nginx_access()
    gwlab.assert_attacker_got_nothing()


@needs_chromium
def test_chromium_deny(gwlab):
    """ech = deny: the same fetch fails with reason ech, which proves Chromium
    really sends the (GREASE) ECH extension the outer test relies on."""
    e = start(gwlab, "deny")
    page(gwlab, "updates")
    p = chromium(gwlab, "https://%s/%s" % (UPDATES, PAGE))
    assert "hello from" not in p.stdout, p.stdout
    ev = e.wait_event(lambda ev: ev.get("event") == "deny" and ev.get("name") == UPDATES,
                      what="deny of Chromium's hello")
    assert ev.get("reason") == "ech", ev
    assert not e.events("allow"), e.events("allow")
    gwlab.assert_attacker_got_nothing()
