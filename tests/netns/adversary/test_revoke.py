"""Issue 9, class 11: a reload must cut what the new policy no longer allows.

An allowed connection is carried by the kernel on its conntrack mark and
never reaches egressd again. Before the fix, removing its entry and sending
SIGHUP changed nothing for it: the client kept writing to a server the
allowlist no longer named. With `[egressd] revoke = yes` (the default) the
reload re-judges every connection conntrack carries as allowed, cuts those
the new policy does not allow (their next packet is reset) and logs a `deny`
event with reason `revoked` for each, and the count in the `reload` event.

The server (stream_server.py) counts the bytes each connection delivers;
the client (stream_client.py) keeps one TLS connection open and sends on
command, waiting for the server's acknowledgement.
"""
import json
import os
import signal
import subprocess

import pytest

import lab as L

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 8443
UDP_PORT = 5000
STATIC = L.HOSTS["static.example.com"][0]
SERVER_ADDRS = [L.HOSTS["updates.example.com"][0], L.HOSTS["updates.example.com"][1],
                L.HOSTS["mirror.example.net"][0], L.HOSTS["mirror.example.net"][1], STATIC]
ALLOW = L.DEFAULT_ALLOW + "mirror.example.net:8443\nupdates.example.com:8443\n"
# mirror.example.net:8443 removed (the name stays allowed on 80 and 443)
ALLOW_AFTER = L.DEFAULT_ALLOW + "updates.example.com:8443\n"


def start_server(lab):
    path = os.path.join(lab.dir, "stream.json")
    args = [L.PY, os.path.join(HERE, "stream_server.py"), "--record", path, "--port", str(PORT),
            "--udp-port", str(UDP_PORT), "--cert", lab.ca["cert"], "--key", lab.ca["key"],
            "--max-seconds", "90"]
    for a in SERVER_ADDRS:
        args += ["--listen", a]
    proc = lab.spawn(lab.net, args, stderr=path + ".stderr")

    def ready():
        if proc.poll() is not None:
            raise L.LabError("stream_server.py exited: " + open(path + ".stderr").read())
        return os.path.exists(path)
    L.wait_for(ready, 5, "the stream server to start")
    return path


def server_bytes(path, addr, port=PORT):
    """Bytes the server received on connections to addr:port (its local address)."""
    with open(path) as f:
        rec = json.load(f)
    return sum(c["bytes"] for c in rec["connections"]
               if c["local"].rsplit(":", 1) == [addr, str(port)])


class Stream:
    """stream_client.py in the client namespace, one JSON answer per command."""

    def __init__(self, lab, name, fam, udp=False):
        args = ["ip", "netns", "exec", lab.cli, L.PY, os.path.join(HERE, "stream_client.py"),
                "--name", name, "--port", str(UDP_PORT if udp else PORT), "--family", fam,
                "--cafile", lab.ca["ca"], "--ack-timeout", "1.5" if udp else "3"]
        if udp:
            args.append("--udp")
        self.err = os.path.join(lab.dir, "stream_client.%d.stderr" % len(lab.procs))
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(self.err, "wb"), text=True, bufsize=1)
        lab.procs.append(self.proc)
        self.hello = self._answer()

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line:
            raise L.LabError("stream_client.py said nothing: " + open(self.err).read())
        return json.loads(line)

    def send(self, n=1000):
        self.proc.stdin.write("send %d\n" % n)
        self.proc.stdin.flush()
        return self._answer()

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(5)


def reload(e, allow):
    with open(os.path.join(e.lab.dir, "allow.d", "lab.list"), "w") as f:
        f.write(allow)
    n = len(e.events("reload"))
    e.proc.send_signal(signal.SIGHUP)
    L.wait_for(lambda: len(e.events("reload")) > n or not e.running(), 5,
               "the reload event")
    assert e.running(), e.tail()
    return e.events("reload")[-1]


def addr_of(name, fam):
    return L.HOSTS[name][0 if fam == "4" else 1]


def open_pair(lab, fam, udp=False):
    cut = Stream(lab, "mirror.example.net", fam, udp=udp)
    keep = Stream(lab, "updates.example.com", fam, udp=udp)
    assert cut.hello.get("connected") and keep.hello.get("connected"), (cut.hello, keep.hello)
    assert cut.hello["addr"] == addr_of("mirror.example.net", fam)
    for s in (cut, keep):
        r = s.send()
        assert r == {"ok": True, "acked": 1000}, r
    return cut, keep


@pytest.mark.parametrize("fam", ["4", "6"])
def test_reload_cuts_removed_entry(anylab, fam):
    e = anylab.start_egressd(allow=ALLOW)
    rec = start_server(anylab)
    cut, keep = open_pair(anylab, fam)
    mirror = addr_of("mirror.example.net", fam)
    before = server_bytes(rec, mirror)
    assert before == 1000

    ev = reload(e, ALLOW_AFTER)

    sent = [cut.send() for _ in range(3)]
    assert not any(r.get("ok") for r in sent), "the revoked connection still works: %s" % sent
    after = server_bytes(rec, mirror)
    assert after == before, "the server received %d bytes after the reload" % (after - before)
    # Positive control: the connection the new policy still allows goes on.
    r = keep.send()
    assert r == {"ok": True, "acked": 2000}, r
    # A fresh connection to the removed entry is denied as usual.
    again = Stream(anylab, "mirror.example.net", fam)
    assert not again.hello.get("connected"), again.hello
    assert server_bytes(rec, mirror) == before
    revoked = [x for x in e.events("deny") if x.get("reason") == "revoked"]
    assert len(revoked) == 1, revoked
    assert revoked[0]["dst"] == mirror and revoked[0]["dport"] == PORT, revoked
    assert revoked[0]["name"] == "mirror.example.net", revoked
    assert ev.get("revoked") == 1, ev
    for s in (cut, keep, again):
        s.close()
    assert e.running()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_reload_same_policy_cuts_nothing(gwlab, fam):
    """A reload that removes nothing (e.g. log rotation) leaves every connection alone."""
    e = gwlab.start_egressd(allow=ALLOW)
    start_server(gwlab)
    cut, keep = open_pair(gwlab, fam)
    ev = reload(e, ALLOW)
    for s, total in ((cut, 2000), (keep, 2000)):
        r = s.send()
        assert r == {"ok": True, "acked": total}, r
    assert [x for x in e.events("deny") if x.get("reason") == "revoked"] == []
    assert ev.get("revoked") == 0, ev
    cut.close()
    keep.close()


def test_revoke_no_keeps_connections(anylab):
    """revoke = no: the reload changes the policy for new connections only."""
    e = anylab.start_egressd(allow=ALLOW, extra="\n[egressd]\nrevoke = no\n")
    rec = start_server(anylab)
    cut, keep = open_pair(anylab, "4")
    ev = reload(e, ALLOW_AFTER)
    r = cut.send()
    assert r == {"ok": True, "acked": 2000}, r
    assert server_bytes(rec, addr_of("mirror.example.net", "4")) == 2000
    assert [x for x in e.events("deny") if x.get("reason") == "revoked"] == []
    assert "revoked" not in ev, ev
    again = Stream(anylab, "mirror.example.net", "4")
    assert not again.hello.get("connected"), again.hello
    for s in (cut, keep, again):
        s.close()


ALLOW_UDP = L.DEFAULT_ALLOW + "mirror.example.net:5000\nupdates.example.com:5000\n"
ALLOW_UDP_AFTER = L.DEFAULT_ALLOW + "updates.example.com:5000\n"


@pytest.mark.parametrize("fam", ["4", "6"])
def test_reload_cuts_udp(anylab, fam):
    """A UDP flow allowed by its DNS binding: its conntrack entry is cut too."""
    e = anylab.start_egressd(allow=ALLOW_UDP)
    rec = start_server(anylab)
    cut, keep = open_pair(anylab, fam, udp=True)
    mirror = addr_of("mirror.example.net", fam)
    assert server_bytes(rec, mirror, UDP_PORT) == 1000
    ev = reload(e, ALLOW_UDP_AFTER)
    sent = [cut.send() for _ in range(2)]
    assert not any(r.get("ok") for r in sent), sent
    assert server_bytes(rec, mirror, UDP_PORT) == 1000
    r = keep.send()
    assert r == {"ok": True, "acked": 2000}, r
    revoked = [x for x in e.events("deny") if x.get("reason") == "revoked"]
    assert len(revoked) == 1 and revoked[0]["proto"] == "udp", revoked
    assert revoked[0]["name"] == "mirror.example.net", revoked
    assert revoked[0]["name_source"] == "dns", revoked
    assert ev.get("revoked") == 1, ev
    cut.close()
    keep.close()


def test_reload_cuts_removed_range(anylab):
    """A connection allowed by an address range (no name) is cut with its range."""
    e = anylab.start_egressd(allow=L.DEFAULT_ALLOW + "203.0.113.20/32:8443\n")
    rec = start_server(anylab)
    s = Stream(anylab, STATIC, "4")
    assert s.hello.get("connected"), s.hello
    assert s.send() == {"ok": True, "acked": 1000}
    ev = reload(e, L.DEFAULT_ALLOW)
    r = s.send()
    assert not r.get("ok"), r
    assert server_bytes(rec, STATIC) == 1000
    revoked = [x for x in e.events("deny") if x.get("reason") == "revoked"]
    assert len(revoked) == 1 and revoked[0]["dst"] == STATIC, revoked
    assert ev.get("revoked") == 1, ev
    s.close()


def test_reload_after_restart_judges_by_address(gwlab):
    """egressd restarted: it has no record of the open connections. A reload
    judges them by their address: bound only to the removed name -> cut;
    bound to a name still allowed -> kept."""
    e = gwlab.start_egressd(allow=ALLOW)
    rec = start_server(gwlab)
    cut, keep = open_pair(gwlab, "4")
    assert e.stop() == 0
    e.start(apply=False)
    # allowed connections kept flowing while egressd was away (ct mark fast path)
    assert keep.send() == {"ok": True, "acked": 2000}
    for name in ("mirror.example.net", "updates.example.com"):
        p = gwlab.dig("+short", name, "A")
        assert p.stdout.split() == [addr_of(name, "4")], p.stdout + p.stderr
    ev = reload(e, ALLOW_AFTER)
    r = cut.send()
    assert not r.get("ok"), r
    assert server_bytes(rec, addr_of("mirror.example.net", "4")) == 1000
    assert keep.send() == {"ok": True, "acked": 3000}
    revoked = [x for x in e.events("deny") if x.get("reason") == "revoked"]
    assert len(revoked) == 1, revoked
    assert revoked[0]["dst"] == addr_of("mirror.example.net", "4"), revoked
    assert ev.get("revoked") == 1, ev
    cut.close()
    keep.close()


def test_reload_audit_logs_only(gwlab):
    """enforce = no: the would-be revocation is logged (enforced: false), nothing is cut."""
    e = gwlab.start_egressd(allow=ALLOW, enforce=False)
    rec = start_server(gwlab)
    cut, keep = open_pair(gwlab, "4")
    ev = reload(e, ALLOW_AFTER)
    assert cut.send() == {"ok": True, "acked": 2000}
    assert server_bytes(rec, addr_of("mirror.example.net", "4")) == 2000
    revoked = [x for x in e.events("deny") if x.get("reason") == "revoked"]
    assert len(revoked) == 1 and revoked[0]["enforced"] is False, revoked
    assert ev.get("revoked") == 1, ev
    # logged once: a second reload says nothing more about it
    ev = reload(e, ALLOW_AFTER)
    assert ev.get("revoked") == 0, ev
    assert keep.send() == {"ok": True, "acked": 2000}
    cut.close()
    keep.close()
