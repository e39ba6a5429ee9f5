"""Issue 3 (continued): name-bound addresses and the DNS guard's edges.

verify mode, binding expiry (TTL + grace), truncated UDP answers, a silent
upstream, HTTPS/SVCB with ech = deny | allow, and DNS over IPv6. The basics
(refused names, CNAME, shared CDN, DNS over TCP, crafted queries) are in
test_dns.py. Helpers (own dnsmasq, a silent DNS sink, config knobs) are in
dnsb/.
"""
import re
import time

import pytest

import dnsb
import lab as L

UPDATES = "updates.example.com"
UPDATES4, UPDATES6 = L.HOSTS[UPDATES]


def deny_to(dst, dport=443):
    return lambda e: e.get("event") == "deny" and e.get("dst") == dst and e.get("dport") == dport


def allow_to(dst, dport=443):
    return lambda e: e.get("event") == "allow" and e.get("dst") == dst and e.get("dport") == dport


def dns_events(e):
    return [x for x in e.events() if x.get("event") in ("dns_allow", "dns_deny")]


def resolve_arg(name, addr, port=443):
    return "%s:%d:%s" % (name, port, "[%s]" % addr if ":" in addr else addr)


# -- [tls] unknown_ip = verify ---------------------------------------------

def test_verify_mode_forged_address_denied_sni_ip_mismatch(anylab):
    """The SYN to the attacker passes, egressd resolves the SNI itself, the
    attacker's address is not in the answer: reset before any payload."""
    e = anylab.start_egressd(unknown_ip="verify")
    p = anylab.curl("https://%s/file" % UPDATES, "--resolve", resolve_arg(UPDATES, L.ATTACKER4),
                    timeout=8)
    assert p.returncode != 0, p.stdout
    assert p.elapsed < 5, "denied only after %.1fs: %s" % (p.elapsed, p.stderr)
    ev = e.wait_event(deny_to(L.ATTACKER4), what="deny of the forged address")
    assert ev.get("reason") == "sni_ip_mismatch", ev
    assert ev.get("name") == UPDATES and ev.get("name_source") == "sni", ev
    assert ev.get("enforced") is True, ev
    # The SYN did pass in verify mode: the attacker accepted a connection
    # (its accept loop records it on its own time: poll)...
    L.wait_for(lambda: [c for c in anylab.attacker_records()["connections"]
                        if c["proto"] == "tcp" and c["local"] == L.ATTACKER4 + ":443"],
               3, "the attacker to record the connection")
    # ...but not one byte of it, and its DNS server heard nothing.
    anylab.assert_attacker_got_nothing()
    # egressd's own resolution went to the upstream (the client asked nothing).
    assert dns_events(e) == [], dns_events(e)
    # (case-insensitive: upstream queries leave in random case, 0x20)
    asked = re.compile(r"query\[A\] %s from 203\.0\.113\.1\b" % re.escape(UPDATES), re.I)

    def upstream_log():
        with open(anylab.dir + "/dnsmasq.log", errors="replace") as f:
            return asked.search(f.read())
    L.wait_for(upstream_log, 3, "egressd's own query in the upstream's log")


@pytest.mark.parametrize("fam", ["4", "6"])
def test_verify_mode_real_address_allowed_without_client_dns(anylab, fam):
    """A fresh egressd, no DNS query from the client: the SNI is resolved by
    egressd and the real address is among the answers."""
    e = anylab.start_egressd(unknown_ip="verify")
    addr = UPDATES6 if fam == "6" else UPDATES4
    p = anylab.curl("https://%s/file" % UPDATES, "-" + fam, "--resolve", resolve_arg(UPDATES, addr),
                    timeout=8)
    assert p.returncode == 0, (p.returncode, p.stderr, e.events())
    assert p.stdout == L.site_body("updates")
    ev = e.wait_event(allow_to(addr), what="allow of the verified address")
    assert ev.get("name") == UPDATES and ev.get("name_source") == "sni", ev
    assert str(ev.get("rule", "")).endswith("lab.list:%d" % L.ALLOW_LINE[UPDATES]), ev
    assert dns_events(e) == [], "the client resolved nothing: %s" % dns_events(e)
    anylab.assert_attacker_got_nothing()


# -- bindings expire after TTL + grace -------------------------------------

def test_binding_expires_after_ttl_plus_grace(anylab):
    ttl, grace = 2, 1
    up = dnsb.Upstream(anylab, {UPDATES: [UPDATES4]}, ttl=ttl)
    e = dnsb.write_conf(anylab, upstream=up.addr4, grace=grace, metrics=True)
    e.start()
    # Nothing is bound before the lookup: the SYN is denied.
    assert dnsb.metric(anylab, "egressd_bindings") == 0
    t0 = time.monotonic()
    r = dnsb.query(anylab, L.RESOLVER4, UPDATES, "A")
    assert r.get("rcode") == "NOERROR", r
    assert [(a["value"], a["ttl"]) for a in r["answers"]] == [(UPDATES4, ttl)], r
    assert dnsb.metric(anylab, "egressd_bindings") == 1

    def connect():
        return anylab.curl("https://%s/file" % UPDATES, "-4", "--resolve",
                           resolve_arg(UPDATES, UPDATES4), timeout=5)
    p = connect()
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("updates")
    assert time.monotonic() - t0 < ttl + grace, "too slow to test expiry: %.1fs" \
        % (time.monotonic() - t0)

    # Bounded wait for the binding to go: at most TTL + grace (+ margin) after the lookup.
    L.wait_for(lambda: dnsb.metric(anylab, "egressd_bindings") == 0,
               ttl + grace + 3 - (time.monotonic() - t0), "the binding to expire", interval=0.1)
    gone = time.monotonic() - t0
    assert gone >= ttl + grace - 0.1, \
        "binding dropped %.2fs after the lookup, before TTL %d + grace %d" % (gone, ttl, grace)

    assert not e.events("deny"), e.events("deny")
    p = connect()
    assert p.returncode != 0, "connected after the binding expired: %r" % p.stdout
    assert p.elapsed < 2, p.elapsed
    ev = e.wait_event(deny_to(UPDATES4), what="deny after expiry")
    assert ev.get("reason") == "ip_not_allowed", ev
    # It was our binding, not the upstream, that expired: one lookup in all.
    lookups = [q for q in up.queries() if q.lower().startswith("query[a] %s " % UPDATES)]
    assert len(lookups) == 1, up.queries()


# -- a truncated UDP answer ------------------------------------------------

# proxy/resolver.c marks c-ares sockets with ares_set_socket_callback(), which
# c-ares calls after connect(): the SYN of its TCP fallback leaves without
# MARK_SELF, and in host mode the nat output `dns` chain redirects it to
# egressd's own listener (conntrack: 203.0.113.1 -> 203.0.113.54:53, reply
# from 127.0.0.1:53). egressd then forwards to itself until c-ares times out:
# SERVFAIL after 1.5 s. ares_set_socket_configure_callback() runs before
# connect(); with it these tests pass in both modes.


MAX_ANSWER_ADDRS = 64  # proxy/core/engine.c: addresses bound per DNS answer


def assert_answer_binds_exactly_the_first(lab, e, name, count):
    """One answer of COUNT > 64 addresses (over TCP, so whole): egressd binds
    its first 64 in wire order and none of the others."""
    r = dnsb.query(lab, L.RESOLVER4, name, "A", tcp=True, timeout=5)
    got = [a["value"] for a in r["answers"] if a.get("type") == "A"]
    assert r.get("rcode") == "NOERROR" and len(got) == count, r
    assert dnsb.metric(lab, "egressd_bindings") == MAX_ANSWER_ADDRS
    last_in, first_out = got[MAX_ANSWER_ADDRS - 1], got[MAX_ANSWER_ADDRS]
    n0 = len(e.events())
    for addr in (first_out, last_in):
        lab.curl("https://%s/file" % name, "--connect-timeout", "1",
                 "--resolve", resolve_arg(name, addr), timeout=3)
    ev = e.wait_event(deny_to(first_out), what="deny of the 65th address " + first_out)
    assert ev.get("reason") == "ip_not_allowed", ev
    denied = [x for x in e.events()[n0:] if deny_to(last_in)(x)
              and x.get("reason") == "ip_not_allowed"]
    assert not denied, "the 64th address %s was not bound: %s" % (last_in, denied)


@pytest.mark.parametrize("count", [40, 100], ids=["client-tc", "client-and-upstream-tc"])
def test_truncated_udp_answer_retried_over_tcp(anylab, count):
    """More records than fit in 512 bytes: egressd answers the UDP query with
    TC, dig retries over TCP and gets every record. With 100 records (> 1232
    bytes) the upstream truncates c-ares' UDP query too."""
    name = "many.example.com"
    # On the fake internet's link, answered by nobody: a SYN to one of them
    # reaches egressd's hook in both modes (192.0.2.0/24 has no route on gw).
    addrs = ["203.0.113.%d" % (100 + i) for i in range(1, count)] + [UPDATES4]
    up = dnsb.Upstream(anylab, {name: addrs})
    e = dnsb.write_conf(anylab, upstream=up.addr4, allow=L.DEFAULT_ALLOW + name + "\n",
                        metrics=True)
    e.start()
    if count > MAX_ANSWER_ADDRS:
        assert_answer_binds_exactly_the_first(anylab, e, name, count)
    # Over UDP without EDNS, the reply must say TC (and carry no partial answer).
    r = dnsb.query(anylab, L.RESOLVER4, name, "A")
    assert r.get("rcode") == "NOERROR" and r.get("tc") is True, r
    assert r["size"] <= 512, r
    # dig (EDNS 1232) gets TC over UDP, retries over TCP on its own.
    p = anylab.dig(name, "A", timeout=8)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Truncated, retrying in TCP mode" in p.stdout, p.stdout
    m = re.search(r"ANSWER: (\d+),", p.stdout)
    assert m and int(m.group(1)) == count, p.stdout
    got = re.findall(r"^%s\.\s+\d+\s+IN\s+A\s+(\S+)$" % re.escape(name), p.stdout, re.M)
    assert sorted(got) == sorted(addrs), p.stdout
    assert "(TCP)" in p.stdout, p.stdout
    # The answer's addresses were bound. Over the cap, each answer binds its
    # first 64 and dnsmasq rotates the order between answers (the exact cap
    # was checked above on a single answer).
    bound = dnsb.metric(anylab, "egressd_bindings")
    if count <= MAX_ANSWER_ADDRS:
        assert bound == count, bound
    else:
        assert MAX_ANSWER_ADDRS <= bound <= count, bound
    e.wait_event(lambda x: x.get("event") == "dns_allow" and x.get("qname", "").rstrip(".") == name,
                 what="dns_allow for " + name)
    anylab.assert_attacker_got_nothing()


# -- upstream failure ------------------------------------------------------

def test_silent_upstream_gives_servfail_and_binds_nothing(anylab):
    sink = dnsb.Sink(anylab)
    e = dnsb.write_conf(anylab, upstream=sink.addr, metrics=True)
    e.start()
    for tcp in (False, True):
        r = dnsb.query(anylab, L.RESOLVER4, UPDATES, "A", tcp=tcp, timeout=10)
        assert r.get("rcode") == "SERVFAIL", (tcp, r)
        assert r["elapsed_ms"] < 6000, "SERVFAIL after %.0f ms (tcp %s)" % (r["elapsed_ms"], tcp)
        assert r["answers"] == [], r
    # It was forwarded (the sink read it), and the silence made the failure.
    seen = sink.seen()
    assert seen["udp"], seen
    assert all(q["peer"] == "203.0.113.1" for q in seen["udp"] + seen["tcp"]), seen
    assert dnsb.metric(anylab, "egressd_bindings") == 0
    assert not [x for x in e.events() if x.get("event") == "dns_allow"], e.events()
    # No address became reachable: the real one is denied at the SYN.
    for addr, fam in ((UPDATES4, "-4"), (UPDATES6, "-6")):
        p = anylab.curl("https://%s/file" % UPDATES, fam, "--resolve", resolve_arg(UPDATES, addr),
                        timeout=5)
        assert p.returncode != 0, p.stdout
        ev = e.wait_event(deny_to(addr), what="deny of %s" % addr)
        assert ev.get("reason") == "ip_not_allowed", ev
    assert not [x for x in e.events() if x.get("event") == "allow"], e.events()
    assert not anylab.nginx_access(), anylab.nginx_access()
    anylab.assert_attacker_got_nothing()


# -- HTTPS / SVCB and [tls] ech --------------------------------------------

@pytest.mark.parametrize("qtype,num", [("HTTPS", 65), ("SVCB", 64)])
@pytest.mark.parametrize("ech", ["deny", "allow"])
def test_https_svcb_records_and_ech(anylab, ech, qtype, num):
    up = dnsb.Upstream(anylab, {UPDATES: [UPDATES4]},
                       rrs=[(UPDATES, 65, dnsb.SVCB_RDATA_HEX), (UPDATES, 64, dnsb.SVCB_RDATA_HEX)])
    e = dnsb.write_conf(anylab, upstream=up.addr4, ech=ech)
    e.start()
    for tcp in (False, True):
        r = dnsb.query(anylab, L.RESOLVER4, UPDATES, qtype, tcp=tcp)
        assert r.get("rcode") == "NOERROR", r
        if ech == "deny":
            assert r["answers"] == [], r
            assert r["elapsed_ms"] < 100, r
        else:
            assert [(a["type"], a["value"]) for a in r["answers"]] == \
                [(qtype, dnsb.SVCB_RDATA_HEX)], r
    asked = [q for q in up.queries()
             if q.lower().startswith(("query[%s] %s" % (qtype, UPDATES)).lower())
             or q.lower().startswith("query[type=%d] %s" % (num, UPDATES))]
    if ech == "deny":
        assert asked == [], "forwarded with ech = deny: %s" % up.queries()
    else:
        assert len(asked) == 2, up.queries()
    # The same name's addresses still resolve either way.
    r = dnsb.query(anylab, L.RESOLVER4, UPDATES, "A")
    assert [a["value"] for a in r["answers"]] == [UPDATES4], r
    # A name that is not allowed is refused whatever the type.
    r = dnsb.query(anylab, L.RESOLVER4, "mirror.examp1e.net", qtype)
    assert r.get("rcode") == "REFUSED", r
    anylab.assert_attacker_got_nothing()


# -- IPv6 DNS transport ----------------------------------------------------

def test_ipv6_dns_transport_binds_aaaa(anylab):
    """The client's only resolver is [2001:db8:2::53]: its queries reach egressd
    over IPv6 (redirected), the AAAA answer is bound, curl -6 works."""
    e = anylab.start_egressd()
    url = "https://%s/file" % UPDATES
    # Before any lookup the v6 address is not bound.
    p = anylab.curl(url, "-6", "--resolve", resolve_arg(UPDATES, UPDATES6), timeout=5)
    assert p.returncode != 0, p.stdout
    ev = e.wait_event(deny_to(UPDATES6), what="deny before the lookup")
    assert ev.get("reason") == "ip_not_allowed", ev
    # The lab's per-namespace resolv.conf (ip netns exec mounts it): IPv6 only.
    with open("/etc/netns/%s/resolv.conf" % anylab.cli, "w") as f:
        f.write("nameserver %s\noptions timeout:2 attempts:1\n" % L.RESOLVER6)
    p = anylab.curl(url, "-6")
    assert p.returncode == 0, (p.stderr, e.events())
    assert p.stdout == L.site_body("updates")
    ev = e.wait_event(allow_to(UPDATES6), what="allow to the bound AAAA")
    assert ev.get("name") == UPDATES and ev.get("name_source") == "sni", ev
    # (qtype not checked here: see test_dns_allow_events_keep_their_qtype)
    e.wait_event(lambda x: x.get("event") == "dns_allow" and ":" in x.get("src", "")
                 and x.get("qname", "").rstrip(".") == UPDATES,
                 what="dns_allow from the client's IPv6 address")
    # Over TCP on the same transport, and a refused name.
    r = dnsb.query(anylab, L.RESOLVER6, UPDATES, "AAAA", tcp=True)
    assert r.get("rcode") == "NOERROR", r
    assert [a["value"] for a in r["answers"] if a["type"] == "AAAA"] == [UPDATES6], r
    r = dnsb.query(anylab, L.RESOLVER6, "updates.examp1e.com", "AAAA")
    assert r.get("rcode") == "REFUSED", r
    anylab.assert_attacker_got_nothing()


# -- the dns_allow events themselves ----------------------------------------

# proxy/core/engine.c aggregates "identical events within a second", but
# event_hash()/event_same() ignore qtype: an AAAA dns_allow that follows an A
# dns_allow for the same client and name is folded into it, and the flushed
# repeat is written with the first event's qtype ("A"), so the log shows two
# A queries and no AAAA (every curl/getaddrinfo lookup sends A then AAAA).


def test_dns_allow_events_keep_their_qtype(gwlab):
    e = gwlab.start_egressd()
    for qtype in ("A", "AAAA"):
        r = dnsb.query(gwlab, L.RESOLVER4, UPDATES, qtype)
        assert r.get("rcode") == "NOERROR" and r["answers"], r
    for qtype in ("A", "AAAA"):
        e.wait_event(lambda x: x.get("event") == "dns_allow"
                     and x.get("qname", "").rstrip(".") == UPDATES and x.get("qtype") == qtype,
                     timeout=3, what="dns_allow with qtype " + qtype)
    assert len(e.events("dns_allow")) == 2, e.events("dns_allow")
