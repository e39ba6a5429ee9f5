"""Issue 9, class 1: a decision belongs to one connection incarnation.

An unprivileged client fetches from an allowed name, closes with RST, and
reconnects from the same source port to the same (shared CDN) address with a
denied SNI. conntrack makes a fresh unmarked entry; the engine must read the
new hello instead of re-issuing the old ALLOW.
"""
import json
import os
import shutil
import time

import pytest

import lab as L

HERE = os.path.dirname(os.path.abspath(__file__))


def reconnect(lab, fam, sport, user=False):
    cafile = lab.ca["ca"]
    pre = []
    if user:
        # the attack needs no privilege: run it as nobody (a CA copy it can read)
        cafile = "/tmp/%s-ca.pem" % L.PREFIX
        shutil.copy(lab.ca["ca"], cafile)
        os.chmod(cafile, 0o644)
        pre = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    p = lab.ns_run(lab.cli, pre + [L.PY, os.path.join(HERE, "reconnect.py"), "--allowed",
                                   "cdn-a.example.org", "--denied", "cdn-b.example.org",
                                   "--fam", fam, "--sport", str(sport), "--cafile", cafile],
                   timeout=20)
    if user:
        os.unlink(cafile)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("fam", ["4", "6"])
def test_reconnect_same_port_denied_sni(anylab, fam):
    e = anylab.start_egressd()
    r = reconnect(anylab, fam, 41234 if fam == "4" else 41236)
    # positive control: the allowed name works through the same path
    assert r["first"] == L.site_body("cdn-a"), r
    assert r["second"] != L.site_body("cdn-b"), r
    assert r["second"].startswith("error"), r
    served = [x for x in anylab.nginx_access() if x.startswith("cdn-b")]
    assert served == [], served
    e.wait_event(lambda x: x.get("event") == "deny" and x.get("name") == "cdn-b.example.org",
                 what="deny event for the second incarnation's SNI")
    assert e.running()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_reconnect_unprivileged_host(hostlab, fam):
    """Host mode, the attacker as an unprivileged user on the filtered host."""
    e = hostlab.start_egressd()
    r = reconnect(hostlab, fam, 41238 if fam == "4" else 41240, user=True)
    assert r["first"] == L.site_body("cdn-a"), r
    assert r["second"].startswith("error"), r
    assert [x for x in hostlab.nginx_access() if x.startswith("cdn-b")] == []
    e.wait_event(lambda x: x.get("event") == "deny" and x.get("name") == "cdn-b.example.org",
                 what="deny event for the second incarnation's SNI")
    assert e.running()


def conntrack_has(lab, dst, sport):
    fam = ["-f", "ipv6"] if ":" in dst else []
    p = lab.ns_run(lab.fw, ["conntrack", "-L"] + fam + ["-p", "udp", "--dst", dst, "--sport",
                                                        str(sport)])
    assert p.returncode == 0, p.stderr
    return "sport=%d " % sport in p.stdout


@pytest.mark.parametrize("fam", ["4", "6"])
def test_udp_same_tuple_after_conntrack_expiry(anylab, fam):
    """QUIC: an allowed Initial from a fixed port, then conntrack forgets the
    flow (its UDP timeout) while egressd still remembers the decision; a
    datagram that is no QUIC Initial (an AWS key in clear) from the same
    port to the same address must be read again and denied, not released on
    the old ALLOW."""
    import test_quic as Q
    # Host IPv6 once leaked here: the host's first neighbour solicitation for
    # the server is lost, so the Initial waits 1 s (RetransTimer) in the
    # neighbour queue while its conntrack entry (1 s timeout here) runs out;
    # the server's answer then creates an entry in the server's direction and
    # the garbage datagram is a reply of it (see test_udp_server_speaks_first).
    rec = Q.Recorder(anylab)
    e = Q.start(anylab)
    # conntrack forgets an idle UDP flow after 1 s (default 30 / 120 s)
    anylab.sysctl(anylab.fw, "net.netfilter.nf_conntrack_udp_timeout=1",
                  "net.netfilter.nf_conntrack_udp_timeout_stream=1")
    dst = Q.resolve(anylab, "updates.example.com", fam)
    sport = 41300 if fam == "4" else 41302
    r = Q.quic(anylab, dst, "--sni", "updates.example.com", "--sport", str(sport), "--wait", "3")
    assert r["replies"] == 1, r  # positive control: the allowed Initial was answered
    e.wait_event(Q.udp_event("allow", dst), what="allow of the first incarnation")
    L.wait_for(lambda: not conntrack_has(anylab, dst, sport), 10,
               "conntrack to forget the UDP flow")
    r2 = Q.quic(anylab, dst, "--garbage", "--sport", str(sport), "--wait", "1")
    assert r2["replies"] == 0, json.dumps([x for x in e.events() if x.get("proto") == "udp"])
    got = [g["sha256"] for g in rec.datagrams()]
    assert got == [s["sha256"] for s in r["sent"]], got
    ev = e.wait_event(Q.udp_event("deny", dst), what="deny of the second incarnation")
    assert ev.get("reason") == "protocol_not_allowed", ev
    assert ev.get("sport") == sport, ev
    assert "credential:aws_access_key" in ev.get("indicators", []), ev
    assert e.running()


# the filtered client's address as the fake internet sees it
CLIENT = {("gateway", "4"): "198.51.100.10", ("gateway", "6"): "2001:db8:1::10",
          ("host", "4"): "203.0.113.1", ("host", "6"): "2001:db8:2::1"}


@pytest.mark.parametrize("fam", ["4", "6"])
def test_udp_server_speaks_first(anylab, fam):
    """conntrack forgets an allowed QUIC flow (here: deleted), then the server
    speaks first: its datagram makes a new conntrack entry whose original
    direction is server -> client. In host mode the client's next datagram on
    the same 4-tuple is a reply of that entry; it must still be read (here:
    no QUIC Initial, an AWS key in clear: denied), not passed as the answer
    of a local server. Gateway: the server's datagram has no connection to
    belong to and is dropped, the client's datagram is a new one."""
    import test_quic as Q
    rec = Q.Recorder(anylab)
    e = Q.start(anylab)
    dst = Q.resolve(anylab, "updates.example.com", fam)
    sport = 41304 if fam == "4" else 41306
    r = Q.quic(anylab, dst, "--sni", "updates.example.com", "--sport", str(sport), "--wait", "2")
    assert r["replies"] == 1, r  # positive control: the allowed Initial was answered
    e.wait_event(Q.udp_event("allow", dst), what="allow of the first incarnation")
    p = anylab.ns_run(anylab.fw, ["conntrack", "-D", "-f", "ipv6" if fam == "6" else "ipv4",
                                  "-p", "udp", "--sport", str(sport)])
    assert "1 flow entries have been deleted" in p.stderr, p.stdout + p.stderr
    p = anylab.ns_run(anylab.net, [L.PY, os.path.join(HERE, "udp_from.py"), "--src", dst,
                                   "--sport", "443", "--dst", CLIENT[anylab.mode, fam],
                                   "--dport", str(sport)])
    assert p.returncode == 0, p.stderr
    # past the engine's UDP race window (a datagram queued before the first
    # one's entry was confirmed is re-issued its verdict): this one is not
    time.sleep(1)
    r2 = Q.quic(anylab, dst, "--garbage", "--sport", str(sport), "--wait", "1")
    assert r2["replies"] == 0, json.dumps([x for x in e.events() if x.get("proto") == "udp"])
    got = [g["sha256"] for g in rec.datagrams()]
    assert got == [s["sha256"] for s in r["sent"]], got
    ev = e.wait_event(Q.udp_event("deny", dst), what="deny of the second incarnation")
    assert ev.get("reason") == "protocol_not_allowed", ev
    assert ev.get("sport") == sport, ev
    assert "credential:aws_access_key" in ev.get("indicators", []), ev
    assert e.running()


def echo_server(lab, addr, port, proto):
    ready = os.path.join(lab.dir, "echo-%s-%d.ready" % (proto, port))
    proc = lab.spawn(lab.hst, [L.PY, os.path.join(HERE, "echo.py"), "--listen", addr, "--port",
                               str(port), "--proto", proto, "--ready", ready])

    def up():
        if proc.poll() is not None:
            raise L.LabError("echo.py server exited (%s)" % proc.returncode)
        return os.path.exists(ready)
    L.wait_for(up, 5, "the echo server to listen")


def echo(lab, addr, port, proto, sport):
    src = L.ATTACKER6 if ":" in addr else L.ATTACKER4
    p = lab.ns_run(lab.net, [L.PY, os.path.join(HERE, "echo.py"), "--connect", addr, "--port",
                             str(port), "--proto", proto, "--bind", src, "--sport", str(sport)])
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["answer"]


@pytest.mark.parametrize("fam", ["4", "6"])
def test_host_local_server_replies(hostlab, fam):
    """Host mode after the fix above: a local TCP server still answers a
    client from outside unqueued (a handshake made its entry); a local UDP
    server's answer is egress like any datagram: it reaches a client the
    policy allows (a range entry for that port) and is denied, with an
    event, to one it does not."""
    peer = L.ATTACKER4 if fam == "4" else L.ATTACKER6
    allowed = "%s:47001" % ("203.0.113.66/32" if fam == "4" else "[2001:db8:2::66/128]")
    e = hostlab.start_egressd(allow=L.DEFAULT_ALLOW + allowed + "\n")
    local = CLIENT["host", fam]
    echo_server(hostlab, local, 7001, "tcp")
    echo_server(hostlab, local, 7000, "udp")
    assert echo(hostlab, local, 7001, "tcp", 47003) == "pong:ping"
    assert echo(hostlab, local, 7000, "udp", 47001) == "pong:ping"
    # the entry carries the ALLOW verdict now: the next answer is not queued again
    assert echo(hostlab, local, 7000, "udp", 47001) == "pong:ping"
    assert echo(hostlab, local, 7000, "udp", 47002) is None
    ev = e.wait_event(lambda x: x.get("event") == "deny" and x.get("proto") == "udp"
                      and x.get("dst") == peer and x.get("dport") == 47002,
                      what="deny of the local UDP server's answer to an unallowed client")
    assert ev.get("sport") == 7000, ev
    flows = [x for x in e.events() if x.get("event") in ("allow", "deny")
             and x.get("dst") == peer]
    # one decision per conntrack entry; the TCP server's answers were never queued
    assert [(x["event"], x["dport"]) for x in flows] == [("allow", 47001), ("deny", 47002)], flows
    assert e.running()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_host_tcp_reverse_entry(hostlab, fam):
    """TCP keeps `ct direction reply accept` in host mode. An entry in the
    server's direction on the client's 4-tuple (what a stray segment of the
    server makes, by loose pickup, after conntrack forgot the connection; here
    inserted with conntrack -I) must not carry a new connection with a denied
    SNI: the client's SYN is a reply there, conntrack calls it invalid and
    the ruleset drops it. Once the entry is gone the port works again."""
    e = hostlab.start_egressd()
    addr = L.HOSTS["cdn-a.example.org"][0 if fam == "4" else 1]
    p = hostlab.dig("+short", "cdn-a.example.org", "A" if fam == "4" else "AAAA")
    assert p.stdout.split() == [addr], p.stdout + p.stderr
    sport = 41310 if fam == "4" else 41312
    client = CLIENT["host", fam]
    p = hostlab.ns_run(hostlab.fw, ["conntrack", "-I", "-p", "tcp", "-s", addr, "-d", client,
                                    "--sport", "443", "--dport", str(sport), "--state",
                                    "ESTABLISHED", "-t", "60"])
    assert p.returncode == 0, p.stderr
    host = addr if fam == "4" else "[%s]" % addr
    r = hostlab.curl("https://cdn-b.example.org/file", "--resolve",
                     "cdn-b.example.org:443:%s" % host, "--local-port", str(sport),
                     "--connect-timeout", "2", timeout=5)
    assert r.returncode != 0, r.stdout
    assert [x for x in hostlab.nginx_access() if x.startswith("cdn-b")] == []
    # positive control: the same port reaches the allowed name once the entry is gone
    p = hostlab.ns_run(hostlab.fw, ["conntrack", "-D", "-p", "tcp", "-s", addr, "--sport",
                                    "443", "--dport", str(sport)])
    assert p.returncode == 0, p.stderr
    r = hostlab.curl("https://cdn-a.example.org/file", "--resolve",
                     "cdn-a.example.org:443:%s" % host, "--local-port", str(sport), timeout=8)
    assert r.stdout == L.site_body("cdn-a"), r.stdout + r.stderr
    assert e.running()
