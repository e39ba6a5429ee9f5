"""Issue 9, class 6: binding poisoning by forged upstream answers (host mode; gateway too).

A root process on the filtered host (CAP_NET_RAW, no CAP_NET_ADMIN) reads the
port of egressd's upstream socket from /proc/net/udp, triggers a query for a
random name under an allowed wildcard, and floods forged answers from the
upstream's address and port 53, every query ID, binding the name to the
attacker's address. The upstream takes 2.5 s to answer (a recursive resolver
on a cache miss: slowdns.py). If one forged answer is accepted, a TLS
connection with that SNI to the attacker's address is allowed.
"""
import json
import os
import random

import pytest

import lab as L

HERE = os.path.dirname(os.path.abspath(__file__))
SLOW4, SLOW6 = "203.0.113.54", "2001:db8:2::54"
ALLOW = L.DEFAULT_ALLOW + "*.wild.example.org\n"


def slow_upstream(lab):
    lab.ip_batch(lab.net, ["addr add %s/24 dev eth0" % SLOW4,
                           "addr add %s/64 dev eth0 nodad" % SLOW6])
    p = lab.spawn(lab.net, [L.PY, os.path.join(HERE, "slowdns.py"), "--listen", SLOW4,
                            "--listen", SLOW6, "--delay", "2.5", "--max-seconds", "60",
                            "--host", "updates.example.com=203.0.113.10",
                            "--host", "updates.example.com=2001:db8:2::10"],
                  stdout=os.path.join(lab.dir, "slowdns.out"),
                  stderr=os.path.join(lab.dir, "slowdns.stderr"))
    L.wait_for(lambda: "ready" in open(os.path.join(lab.dir, "slowdns.out")).read()
               or p.poll() is not None, 5, "slowdns to start")
    assert p.poll() is None, open(os.path.join(lab.dir, "slowdns.stderr")).read()


def start(lab, upstream):
    e = lab.write_conf(allow=ALLOW, extra="")
    with open(e.conf) as f:
        text = f.read()
    text = text.replace("upstream = %s\n" % L.RESOLVER4,
                        "upstream = %s\ntimeout = 4000\ntries = 1\n" % upstream)
    with open(e.conf, "w") as f:
        f.write(text)
    return e.start()


@pytest.mark.parametrize("via", ["raw", "packet"])
@pytest.mark.parametrize("fam", ["4", "6"])
def test_forged_upstream_answer(hostlab, fam, via):
    slow_upstream(hostlab)
    upstream = SLOW4 if fam == "4" else SLOW6
    attacker = L.ATTACKER4 if fam == "4" else L.ATTACKER6
    local = "203.0.113.1" if fam == "4" else "2001:db8:2::1"
    e = start(hostlab, upstream)
    name = "r%08x.wild.example.org" % random.getrandbits(32)
    p = hostlab.ns_run(hostlab.hst, [L.PY, os.path.join(HERE, "dnsforge.py"), "--upstream",
                                     upstream, "--name", name, "--addr", attacker, "--local",
                                     local, "--rounds", "2", "--seconds", "5", "--via", via],
                       timeout=15)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    # the attack ran: it found egressd's upstream socket and flooded it
    assert r["ports"] and r["tried"] >= 65536, r
    c = hostlab.curl("https://%s/" % name, "--resolve", "%s:443:%s" % (
        name, attacker if fam == "4" else "[%s]" % attacker), "-k", timeout=6)
    rec = hostlab.attacker_records()
    assert rec["total_bytes"] == 0, "forged binding let a flow reach the attacker: %s %s" % (
        json.dumps(r), c.stderr)
    bound = [x for x in r["answer"].get("answers", []) if x.get("value") == attacker]
    assert bound == [], r
    # the ruleset stopped them: not one reached the resolver (its 0x20 check would say so)
    assert "dropped an upstream DNS answer" not in e.tail(400), e.tail()
    # the allowed client still resolves through the same upstream and connects
    q = hostlab.dnsq(upstream, "updates.example.com/" + ("A" if fam == "4" else "AAAA"),
                     timeout=5)
    good = L.HOSTS["updates.example.com"][0 if fam == "4" else 1]
    assert [x["value"] for x in q["answers"]] == [good], q
    c = hostlab.curl("https://updates.example.com/file", "--resolve", "updates.example.com:443:%s"
                     % (good if fam == "4" else "[%s]" % good))
    assert c.stdout == L.site_body("updates"), c.stderr
    assert e.running()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_forged_upstream_answer_gateway(gwlab, fam):
    """The same from a client of the gateway (root on its own machine),
    spoofing the upstream's address to the gateway's own resolver socket.
    The port would be found by a scan of the resolver's range (closed ports
    answer ICMP port unreachable); the test reads it from the gateway's /proc."""
    slow_upstream(gwlab)
    upstream = SLOW4 if fam == "4" else SLOW6
    attacker = L.ATTACKER4 if fam == "4" else L.ATTACKER6
    local = "203.0.113.1" if fam == "4" else "2001:db8:2::1"
    e = start(gwlab, upstream)
    # c-ares keeps its socket (and port) while a query is out: the attacker
    # keeps one out, a name under the wildcard (the upstream takes 2.5 s)
    gwlab.spawn(gwlab.cli, [L.PY, os.path.join(L.SERVERS, "dnsq.py"), "--server", upstream,
                            "--q", "keep%08x.wild.example.org" % random.getrandbits(32),
                            "--timeout", "5"])

    def port():
        p = gwlab.ns_run(gwlab.gw, [L.PY, os.path.join(HERE, "dnsforge.py"), "--list-ports",
                                    "--upstream", upstream])
        return json.loads(p.stdout or "[]")
    ports = L.wait_for(port, 2, "the resolver's upstream socket")
    assert len(ports) == 1, ports
    name = "r%08x.wild.example.org" % random.getrandbits(32)
    p = gwlab.ns_run(gwlab.cli, [L.PY, os.path.join(HERE, "dnsforge.py"), "--upstream",
                                 upstream, "--name", name, "--addr", attacker, "--local",
                                 local, "--port", str(ports[0][1]), "--rounds", "2",
                                 "--seconds", "5"], timeout=15)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["sent"] >= 65536, r
    c = gwlab.curl("https://%s/" % name, "--resolve", "%s:443:%s" % (
        name, attacker if fam == "4" else "[%s]" % attacker), "-k", timeout=6)
    rec = gwlab.attacker_records()
    assert rec["total_bytes"] == 0, "forged binding let a flow reach the attacker: %s %s" % (
        json.dumps(r), c.stderr)
    bound = [x for x in r["answer"].get("answers", []) if x.get("value") == attacker]
    assert bound == [], r
    assert "dropped an upstream DNS answer" not in e.tail(400), e.tail()
    assert e.running()
