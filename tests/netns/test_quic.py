"""QUIC on UDP 443: [quic] policy = inspect decides on the Initial's SNI; deny refuses it.

The client (quic/quic_client.py) sends a real-looking QUIC v1 (or v2)
Initial: OpenSSL's TLS 1.3 ClientHello with quic_transport_parameters, in
CRYPTO frames, protected with the Initial keys, padded to 1200 bytes. A UDP
recorder (quic/udp_recorder.py) on 203.0.113.10, 2001:db8:2::10 and
203.0.113.11 port 443 in the fake internet records every datagram (length
and sha256) and answers each one, so a denied test also waits 1 s for an
answer that must not come; the lab's attacker records UDP 443 on
203.0.113.66 and 2001:db8:2::66. Gateway and host mode.
"""
import json
import os

import pytest

import lab as L

QUIC_DIR = os.path.join(L.HERE, "quic")
UPDATES4, UPDATES6 = L.HOSTS["updates.example.com"]
MIRROR4 = L.HOSTS["mirror.example.net"][0]
RECORDER_ADDRS = [UPDATES4, UPDATES6, MIRROR4]
LOOKALIKE = "updates.examp1e.com"
AKIA = "AKIAIOSFODNN7EXAMPLE"  # what quic_client.py --garbage carries


def start(lab, policy="inspect", **kw):
    """egressd with [quic] policy = POLICY (write_conf always writes deny)."""
    e = lab.write_conf(**kw)
    with open(e.conf) as f:
        text = f.read()
    assert text.count("[quic]\npolicy = deny\n") == 1, text
    with open(e.conf, "w") as f:
        f.write(text.replace("[quic]\npolicy = deny\n", "[quic]\npolicy = %s\n" % policy))
    return e.start()


class Recorder:
    def __init__(self, lab):
        self.path = os.path.join(lab.dir, "quic-recorder.json")
        args = [L.PY, os.path.join(QUIC_DIR, "udp_recorder.py"), "--record", self.path]
        for a in RECORDER_ADDRS:
            args += ["--listen", a]
        self.proc = lab.spawn(lab.net, args, stderr=os.path.join(lab.dir, "quic-recorder.stderr"))

        def ready():
            if self.proc.poll() is not None:
                raise L.LabError("udp_recorder exited (%s): see %s/quic-recorder.stderr"
                                 % (self.proc.returncode, lab.dir))
            return os.path.exists(self.path)
        L.wait_for(ready, 5, "the UDP recorder to listen")

    def datagrams(self):
        with open(self.path) as f:
            return json.load(f)["datagrams"]


@pytest.fixture
def rec(anylab):
    return Recorder(anylab)


def resolve(lab, name, fam="4"):
    """Resolve through egressd (the lab's resolver address is redirected to it): binds name."""
    qtype = "AAAA" if fam == "6" else "A"
    p = lab.dig("+short", name, qtype)
    assert p.returncode == 0, p.stdout + p.stderr
    want = L.HOSTS[name][1 if fam == "6" else 0]
    assert p.stdout.split() == [want], p.stdout
    return want


def quic(lab, addr, *args, timeout=8):
    p = lab.ns_run(lab.cli, [L.PY, os.path.join(QUIC_DIR, "quic_client.py"), "--addr", addr]
                   + list(args), timeout=timeout)
    assert p.returncode == 0, "quic_client failed: %s%s" % (p.stdout, p.stderr)
    return json.loads(p.stdout)


def udp_event(kind, dst):
    return lambda x: (x.get("event") == kind and x.get("proto") == "udp"
                      and x.get("dst") == dst and x.get("dport") == 443)


def flow_events(e, dst):
    return [x for x in e.events() if x.get("event") in ("allow", "deny")
            and x.get("proto") == "udp" and x.get("dst") == dst]


@pytest.mark.parametrize("fam,version", [("4", "v1"), ("6", "v1"), ("4", "v2")])
def test_quic_allowed_sni(anylab, rec, fam, version):
    """The allowed name's Initial reaches its server; the flow then passes on its own."""
    e = start(anylab)
    dst = resolve(anylab, "updates.example.com", fam)
    r = quic(anylab, dst, "--sni", "updates.example.com", "--version", version,
             "--wait", "3", "--followup", "2")
    assert [s["len"] for s in r["sent"]] == [1200, 49, 49], r
    assert r["replies"] == 1, "no answer to the Initial: %s" % r
    assert r["followup_replies"] == 2, r
    ev = e.wait_event(udp_event("allow", dst), what="allow of the QUIC Initial to %s" % dst)
    assert ev.get("name") == "updates.example.com", ev
    assert ev.get("name_source") == "quic_sni", ev
    assert str(ev.get("rule", "")).endswith("lab.list:%d" % L.ALLOW_LINE["updates.example.com"])
    got = rec.datagrams()
    assert [g["sha256"] for g in got] == [s["sha256"] for s in r["sent"]], got
    assert all(g["local"] == "%s:443" % dst for g in got), got
    # one decision for the flow: the follow-ups went by the conntrack mark
    assert len(flow_events(e, dst)) == 1, flow_events(e, dst)
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_quic_denied_sni(anylab, rec, fam):
    """A look-alike name in the SNI, straight to the attacker's address: dropped."""
    e = start(anylab)
    dst = L.ATTACKER6 if fam == "6" else L.ATTACKER4
    r = quic(anylab, dst, "--sni", LOOKALIKE)
    assert [s["len"] for s in r["sent"]] == [1200]
    ev = e.wait_event(udp_event("deny", dst), what="deny of the look-alike QUIC SNI")
    assert ev.get("reason") == "name_not_allowed", ev
    assert ev.get("name") == LOOKALIKE, ev
    assert ev.get("name_source") == "quic_sni", ev
    assert ev.get("enforced", True) is True, ev
    anylab.assert_attacker_got_nothing()
    assert rec.datagrams() == []


def test_quic_sni_ip_mismatch(anylab, rec):
    """An allowed SNI sent to an address bound to another name only."""
    e = start(anylab)
    resolve(anylab, "updates.example.com")
    assert resolve(anylab, "mirror.example.net") == MIRROR4
    r = quic(anylab, MIRROR4, "--sni", "updates.example.com", "--wait", "1")
    assert r["replies"] == 0, "the server answered: %s" % r
    assert [s["len"] for s in r["sent"]] == [1200]
    ev = e.wait_event(udp_event("deny", MIRROR4), what="deny of the mismatched QUIC SNI")
    assert ev.get("reason") == "sni_ip_mismatch", ev
    assert ev.get("name") == "updates.example.com", ev
    assert ev.get("name_source") == "quic_sni", ev
    assert "sni_spoof" in ev.get("indicators", []), ev
    assert rec.datagrams() == []
    anylab.assert_attacker_got_nothing()


def test_quic_hello_split_over_two_initials(anylab, rec):
    """A ClientHello spread over two Initials (as Chrome's post-quantum hello is): the
    engine reassembles the CRYPTO frames of both datagrams, holds both until the hello
    is whole, then allows the flow: both datagrams reach the server, one allow event."""
    e = start(anylab)
    dst = resolve(anylab, "updates.example.com")
    r = quic(anylab, dst, "--sni", "updates.example.com", "--split", "2", "--wait", "3")
    assert [s["len"] for s in r["sent"]] == [1200, 1200], r
    assert r["replies"] >= 1, "no answer to the split Initial: %s" % r
    ev = e.wait_event(udp_event("allow", dst), what="allow of the split Initial")
    assert ev.get("name") == "updates.example.com", ev
    assert ev.get("name_source") == "quic_sni", ev
    L.wait_for(lambda: len(rec.datagrams()) >= 2, 5, "both datagrams at the server")
    got = rec.datagrams()
    assert sorted(g["sha256"] for g in got) == sorted(s["sha256"] for s in r["sent"]), got
    assert all(g["local"] == "%s:443" % dst for g in got), got
    assert len(flow_events(e, dst)) == 1, flow_events(e, dst)
    anylab.assert_attacker_got_nothing()


def test_quic_denied_hello_split_over_two_initials(anylab, rec):
    """A look-alike name whose hello spans two Initials: neither datagram is delivered,
    denied name_not_allowed, flagged quic and split_hello."""
    e = start(anylab)
    dst = resolve(anylab, "updates.example.com")
    r = quic(anylab, dst, "--sni", LOOKALIKE, "--split", "2", "--wait", "1")
    assert r["replies"] == 0, "the server answered: %s" % r
    assert [s["len"] for s in r["sent"]] == [1200, 1200], r
    ev = e.wait_event(udp_event("deny", dst), what="deny of the split look-alike Initial")
    assert ev.get("reason") == "name_not_allowed", ev
    assert ev.get("name") == LOOKALIKE, ev
    assert ev.get("name_source") == "quic_sni", ev
    assert "quic" in ev.get("indicators", []), ev
    assert "split_hello" in ev.get("indicators", []), ev
    assert ev.get("enforced", True) is True, ev
    assert rec.datagrams() == []
    assert len(flow_events(e, dst)) == 1, flow_events(e, dst)
    anylab.assert_attacker_got_nothing()


def test_quic_tampered_initial(anylab, rec):
    """An Initial whose AEAD tag does not verify: malformed, nothing delivered."""
    e = start(anylab)
    dst = resolve(anylab, "updates.example.com")
    r = quic(anylab, dst, "--sni", "updates.example.com", "--tamper", "--wait", "1")
    assert r["replies"] == 0, "the server answered: %s" % r
    assert [s["len"] for s in r["sent"]] == [1200]
    ev = e.wait_event(udp_event("deny", dst), what="deny of the tampered Initial")
    assert ev.get("reason") == "malformed", ev
    assert ev.get("detail") == "decrypt", ev
    assert "quic" in ev.get("indicators", []), ev
    assert rec.datagrams() == []
    anylab.assert_attacker_got_nothing()


def test_quic_garbage_to_443(anylab, rec):
    """UDP 443 that is not a QUIC long header: protocol_not_allowed, nothing delivered."""
    e = start(anylab)
    dst = resolve(anylab, "updates.example.com")
    r = quic(anylab, dst, "--garbage", "--wait", "1")
    assert r["replies"] == 0, "the server answered: %s" % r
    assert len(r["sent"]) == 1
    ev = e.wait_event(udp_event("deny", dst), what="deny of garbage to UDP 443")
    assert ev.get("reason") == "protocol_not_allowed", ev
    assert ev.get("detail") == "not_long_header", ev
    assert "quic" in ev.get("indicators", []), ev
    # the datagram carried an AWS key id in clear: flagged, and never logged in clear
    assert "credential:aws_access_key" in ev.get("indicators", []), ev
    with open(e.log, errors="replace") as f:
        assert AKIA not in f.read(), "the key was logged in clear"
    assert rec.datagrams() == []
    anylab.assert_attacker_got_nothing()


def test_quic_policy_deny(anylab, rec):
    """[quic] policy = deny: even the allowed name's Initial is refused, flagged quic."""
    e = start(anylab, policy="deny")
    dst = resolve(anylab, "updates.example.com")
    r = quic(anylab, dst, "--sni", "updates.example.com", "--wait", "1")
    assert r["replies"] == 0, "the server answered: %s" % r
    assert [s["len"] for s in r["sent"]] == [1200]
    ev = e.wait_event(udp_event("deny", dst), what="deny of QUIC under policy deny")
    assert ev.get("reason") == "protocol_not_allowed", ev
    assert ev.get("detail") == "quic_policy_deny", ev
    assert "quic" in ev.get("indicators", []), ev
    assert ev.get("name_source") != "quic_sni", ev
    assert rec.datagrams() == []
    anylab.assert_attacker_got_nothing()
