"""Issue 9, denial of service: one client must not starve egressd's DNS listener.

A second address of the client (gateway: 198.51.100.11 / 2001:db8:1::11;
host mode: 203.0.113.3 / 2001:db8:2::3, deprecated so the ordinary
client's sockets never pick it) is the attacker; the ordinary client
resolves an allowed name over UDP and TCP while it attacks, each answer
within 3 s (adversary/dnsdos.py, bounded in count and time):
  - trickle: as many TCP connections as the listener takes (it took 256),
    one byte every 2 s on each, never finishing a query; closed ones are
    reopened. Every TCP query of every other client was refused.
  - in flight: UDP queries for random names under an allowed wildcard whose
    upstream never answers (slowdns.py --drop), 2,500 a second, until the
    4,096 forwarded queries in flight are taken; everyone else got SERVFAIL.
Both leaked on main (734cb14, all eight cases). Now a client may hold 16 TCP
connections and 1,024 queries in flight, and a TCP query must be whole 10 s
after its first byte (proxy/dnsd.c, doc/DESIGN.md "Per-client limits").
"""
import json
import os
import time

import pytest

import lab as L
from exfil import common as X

ADV = os.path.dirname(os.path.abspath(__file__))
FLOODER = {"gateway": {"4": "198.51.100.11", "6": "2001:db8:1::11"},
           "host": {"4": "203.0.113.3", "6": "2001:db8:2::3"}}
SERVER = {"4": L.RESOLVER4, "6": L.RESOLVER6}  # any :53 is redirected to egressd
SLOW4, SLOW6 = "203.0.113.54", "2001:db8:2::54"
HOLE = "hole.example.org"
ALLOW = L.DEFAULT_ALLOW + "*.%s\n" % HOLE
TCP_QUERY_S = 10  # a TCP query must be complete this long after its first byte
TRICKLE_S = 18  # past the first connections' limit, and their successors'


def add_flooder(lab, fam):
    a = FLOODER[lab.mode][fam]
    if fam == "4":
        lab.ip_batch(lab.cli, ["addr add %s/24 dev eth0" % a])
    else:
        lab.ip_batch(lab.cli, ["addr add %s/64 dev eth0 nodad preferred_lft 0" % a])
    return a


def start(lab, upstream=None):
    e = lab.write_conf(allow=ALLOW)
    X.with_metrics(e)
    if upstream:
        with open(e.conf) as f:
            text = f.read()
        text = text.replace("upstream = %s\n" % L.RESOLVER4,
                            "upstream = %s\ntimeout = 5000\ntries = 1\n" % upstream)
        with open(e.conf, "w") as f:
            f.write(text)
    return e.start()


def attack(lab, fam, *args):
    path = os.path.join(lab.dir, "dnsdos.%d.json" % len(lab.procs))
    proc = lab.spawn(lab.cli, [L.PY, os.path.join(ADV, "dnsdos.py")] + list(args) + [
        "--server", SERVER[fam], "--src", FLOODER[lab.mode][fam]],
        stdout=path, stderr=path + ".stderr")
    return proc, path


def attack_result(proc, path, timeout):
    proc.wait(timeout)
    with open(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError:
        raise L.LabError("dnsdos.py printed no JSON: %s %s" % (text, open(path + ".stderr").read()))


def victim_resolves(lab, fam, when):
    """The ordinary client resolves an allowed name over UDP and TCP, each within 3 s."""
    qtype = "A" if fam == "4" else "AAAA"
    want = L.HOSTS["updates.example.com"][0 if fam == "4" else 1]
    for tcp in (False, True):
        r = lab.dnsq(SERVER[fam], "updates.example.com/" + qtype, tcp=tcp, timeout=3)
        got = [a.get("value") for a in r.get("answers", [])]
        assert r.get("rcode") == "NOERROR" and got == [want], (
            "the other client was not answered over %s (%s): %s"
            % ("TCP" if tcp else "UDP", when, r))


def limited(lab, limit):
    return X.Metrics(lab).get("egressd_dns_client_limited_total", limit=limit)


@pytest.mark.parametrize("fam", ["4", "6"])
def test_tcp_trickle_from_one_client(anylab, fam):
    add_flooder(anylab, fam)
    start(anylab)
    proc, path = attack(anylab, fam, "trickle", "--conns", "300", "--interval", "2",
                        "--seconds", str(TRICKLE_S), "--max-connects", "3000")
    try:
        time.sleep(4)  # every connection it can get is open and trickling
        victim_resolves(anylab, fam, "4 s into the trickle")
        time.sleep(TCP_QUERY_S)  # the first connections were closed, the attacker reopened
        victim_resolves(anylab, fam, "14 s into the trickle")
    finally:
        r = attack_result(proc, path, TRICKLE_S + 15)
    conns = r["conns"]
    # The attack was real: it held more connections than its share.
    assert r["connects"] > 16, r["connects"]
    held = [c for c in conns if c["first_byte"] is not None]
    assert len(held) >= 16, "the attacker never got to trickle: %s" % conns[:5]
    # No connection outlives its unfinished query's limit (slack: 2 s ticks, load).
    for c in held:
        end = c["closed"] if c["closed"] is not None else TRICKLE_S
        assert end - c["first_byte"] <= TCP_QUERY_S + 3, c
    assert limited(anylab, "tcp_connections") > 0
    assert limited(anylab, "tcp_query_time") >= 16


@pytest.mark.parametrize("fam", ["4", "6"])
def test_inflight_flood_from_one_client(anylab, fam):
    lab = anylab
    lab.ip_batch(lab.net, ["addr add %s/24 dev eth0" % SLOW4,
                           "addr add %s/64 dev eth0 nodad" % SLOW6])
    good = L.HOSTS["updates.example.com"]
    slow = lab.spawn(lab.net, [L.PY, os.path.join(ADV, "slowdns.py"), "--listen", SLOW4,
                               "--delay", "0.05", "--max-seconds", "60", "--drop", HOLE,
                               "--host", "updates.example.com=" + good[0],
                               "--host", "updates.example.com=" + good[1]],
                     stdout=os.path.join(lab.dir, "slowdns.out"),
                     stderr=os.path.join(lab.dir, "slowdns.stderr"))
    L.wait_for(lambda: "ready" in open(os.path.join(lab.dir, "slowdns.out")).read()
               or slow.poll() is not None, 5, "slowdns to start")
    assert slow.poll() is None, open(os.path.join(lab.dir, "slowdns.stderr")).read()
    add_flooder(lab, fam)
    start(lab, upstream=SLOW4)
    victim_resolves(lab, fam, "before the flood")  # control
    # 2,500 a second for 6 s, each in flight for 5 s (the upstream timeout)
    proc, path = attack(lab, fam, "udp", "--suffix", HOLE, "--count", "15000", "--rate", "2500",
                        "--seconds", "6")
    try:
        time.sleep(3.5)  # ~8,000 sent: the table would be full twice over
        victim_resolves(lab, fam, "3.5 s into the flood")
    finally:
        r = attack_result(proc, path, 20)
    assert r["sent"] >= 8000, r
    # the attacker was refused at its own limit (SERVFAIL: the table was full)
    assert r["rcodes"].get("REFUSED", 0) > 0, r
    assert limited(lab, "inflight") > 0
