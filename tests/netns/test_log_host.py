"""Issue 11, logs from many boxes: every event line names its gateway.

The `host` key is the machine's hostname by default (read at start and on
reload); `[log] host = NAME` overrides it and `host =` (empty) removes it.
"""
import os
import re
import signal
import socket

import lab as L


def set_host(e, line):
    """Put `line` (e.g. "host = gw-a.example", or None: no host key in the
    file) into [log], then SIGHUP and wait for the reload event."""
    with open(e.conf) as f:
        text = f.read()
    text = re.sub(r"(?m)^host\s*=.*\n", "", text)
    if line is not None:
        text, n = re.subn(r"(?m)^(level = \S+\n)", r"\1%s\n" % line, text)
        assert n == 1, "lab.write_conf changed its [log] section"
    with open(e.conf, "w") as f:
        f.write(text)
    n = len(e.events("reload"))
    e.proc.send_signal(signal.SIGHUP)
    L.wait_for(lambda: len(e.events("reload")) > n or not e.running(), 8, "the reload event")
    assert e.running(), e.tail()
    return e.events("reload")[-1]


def deny_one(lab, e):
    n = len(e.events("deny"))
    p = lab.curl("https://203.0.113.66/", "-4", "-k", timeout=4)
    assert p.returncode != 0
    L.wait_for(lambda: len(e.events("deny")) > n, 5, "the deny event")
    return e.events("deny")[-1]


def test_host_key_default_override_and_off(gwlab):
    e = gwlab.write_conf()
    e.start()
    me = socket.gethostname()  # ip netns exec keeps the UTS namespace
    assert me
    assert e.events("ready")[-1].get("host") == me
    assert deny_one(gwlab, e).get("host") == me

    r = set_host(e, "host = gw-a.example")
    assert r.get("host") == "gw-a.example", r
    d = deny_one(gwlab, e)
    assert d.get("host") == "gw-a.example", d
    p = gwlab.curl("https://updates.example.com/file", "-4", timeout=6)
    assert p.returncode == 0, (p.stderr, e.tail())
    assert e.events("allow")[-1].get("host") == "gw-a.example"

    r = set_host(e, "host =")
    assert "host" not in r, r
    assert "host" not in deny_one(gwlab, e)

    r = set_host(e, None)  # back to the hostname
    assert r.get("host") == me, r
    gwlab.assert_attacker_got_nothing()
