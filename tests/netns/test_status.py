"""Issue 13: `egressd status`, the one-screen view of the metrics endpoint.

--once prints plain text (rates from two scrapes, counters, top deny reasons)
and fails naming the address when the endpoint is unreachable; the live view
runs in a terminal (tmux, inside egressd's namespace), redraws, and quits on q.
"""
import os
import re
import shutil

import pytest

import lab as L
from exfil import common as X


def start(lab):
    e = lab.write_conf()
    X.with_metrics(e)
    return e.start()


def traffic(lab):
    """One allowed flow, one ip_not_allowed and one name_not_allowed deny."""
    r = lab.dnsq(L.RESOLVER4, "updates.example.com/A")
    assert r.get("rcode") == "NOERROR", r
    p = lab.curl("https://updates.example.com/file", "--resolve",
                 "updates.example.com:443:203.0.113.10")
    assert p.returncode == 0, p.stderr
    r = X.connburst(lab, L.ATTACKER4, 443, 1)
    assert r["refused"] == 1, r
    r = lab.dnsq(L.RESOLVER4, "cdn-a.example.org/A")
    assert r.get("rcode") == "NOERROR", r
    p = lab.curl("https://cdn-b.example.org/file", "--resolve",
                 "cdn-b.example.org:443:203.0.113.30", timeout=5)
    assert p.returncode != 0, p.stdout
    L.wait_for(lambda: X.Metrics(lab).get("egressd_flows_total", decision="deny",
                                          reason="name_not_allowed") == 1, 5, "deny counted")


def status(lab, *args, timeout=15):
    return lab.ns_run(lab.fw, [L.egressd_bin(), "status"] + list(args), timeout=timeout)


def test_once(anylab):
    e = start(anylab)
    traffic(anylab)
    p = status(anylab, "-c", e.conf, "--once", "--interval", "0.3")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "http://127.0.0.1:%d/metrics" % X.METRICS_PORT in out, out
    assert re.search(r"^  allowed  \d+\.\d/s +total 1$", out, re.M), out
    assert re.search(r"^  denied   \d+\.\d/s +total 2$", out, re.M), out
    assert re.search(r"^  ip_not_allowed +1$", out, re.M), out
    assert re.search(r"^  name_not_allowed +1$", out, re.M), out
    assert re.search(r"^DNS .* allow 2  deny 0  fail 0$", out, re.M), out
    assert re.search(r"^QUEUE +dropped 0", out, re.M), out
    assert re.search(r"^BINDINGS [1-9]\d*$", out, re.M), out
    m = re.search(r"^WORKERS  (\d+)$", out, re.M)
    assert m and int(m.group(1)) >= 1, out
    assert re.search(r"^  worker 0 +\d+\.\d/s +packets [1-9]\d*$", out, re.M), out
    # Denied names come from the tail of the event log named in the config.
    assert "TOP DENIED NAMES (last 256 KiB of %s)" % e.log in out, out
    assert re.search(r"^  cdn-b\.example\.org +1$", out, re.M), out
    assert re.search(r"^  %s +1$" % re.escape(L.ATTACKER4), out, re.M), out
    assert "\033" not in out  # plain text for scripts
    # --url does the same without a config.
    p = status(anylab, "--url", "http://127.0.0.1:%d/metrics" % X.METRICS_PORT, "--once",
               "--interval", "0.1")
    assert p.returncode == 0 and "total 2" in p.stdout, p.stdout + p.stderr


def test_once_unreachable(anylab):
    e = start(anylab)
    p = status(anylab, "--url", "http://127.0.0.1:9/metrics", "--once")
    assert p.returncode == 1, p.stdout
    assert "cannot scrape http://127.0.0.1:9/metrics" in p.stderr, p.stderr
    assert p.stdout == ""
    # From another namespace, the config's loopback address answers nobody.
    p = anylab.ns_run(anylab.net, [L.egressd_bin(), "status", "-c", e.conf, "--once"])
    assert p.returncode == 1, p.stdout
    assert "127.0.0.1:%d" % X.METRICS_PORT in p.stderr, p.stderr
    # Metrics off in the config: a clear message, not a scrape of a default.
    off = os.path.join(anylab.dir, "nometrics.conf")
    with open(e.conf) as f:
        text = f.read()
    with open(off, "w") as f:
        f.write(re.sub(r"(?m)^\[metrics\]\nlisten = .*$", "[metrics]\nlisten =", text))
    p = status(anylab, "-c", off, "--once")
    assert p.returncode == 1 and "metrics are off" in p.stderr, p.stderr
    p = status(anylab, "--interval", "0", "--once")
    assert p.returncode == 2, p.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed (tests/deps.sh)")
def test_live_in_tmux(anylab):
    e = start(anylab)
    sock = "egressd-status-%d" % os.getpid()
    tmux = ["tmux", "-L", sock]
    session = "st"
    cmd = "%s status -c %s --interval 0.3; echo EXITED-$?; sleep 30" % (L.egressd_bin(), e.conf)
    p = anylab.ns_run(anylab.fw, tmux + ["new-session", "-d", "-s", session, "-x", "100",
                                         "-y", "40", cmd])
    assert p.returncode == 0, p.stderr

    def screen(target=session):
        return L.run(tmux + ["capture-pane", "-p", "-t", target], check=False).stdout
    try:
        L.wait_for(lambda: "TOP DENY REASONS" in screen(), 5, "the status screen", interval=0.1)
        traffic(anylab)
        L.wait_for(lambda: re.search(r"denied +\d+\.\d/s +total 2", screen()), 5,
                   "the redraw with the denies", interval=0.1)
        s = screen()
        print(s)  # the view, for the record (pytest -s)
        for h in ("FLOWS", "TOP DENY REASONS", "DNS", "QUEUE", "BINDINGS", "WORKERS",
                  "q: quit"):
            assert h in s, s
        assert re.search(r"allowed +\d+\.\d/s +total 1", s), s
        assert re.search(r"name_not_allowed +1", s), s
        assert re.search(r"worker 0 +\d+\.\d/s +packets [1-9]", s), s
        assert max(len(ln) for ln in s.splitlines()) <= 100
        L.run(tmux + ["send-keys", "-t", session, "q"], check=False)
        L.wait_for(lambda: "EXITED-0" in screen(), 5, "status to exit on q", interval=0.1)
        # The alternate screen is gone: the shell's screen is back.
        assert "TOP DENY REASONS" not in screen()
        # Ctrl-C quits too, and restores the terminal.
        p = anylab.ns_run(anylab.fw, tmux + ["new-window", "-t", session, "-n", "two", cmd])
        assert p.returncode == 0, p.stderr
        two = session + ":two"
        L.wait_for(lambda: "TOP DENY REASONS" in screen(two), 5, "the second screen",
                   interval=0.1)
        L.run(tmux + ["send-keys", "-t", two, "C-c"], check=False)
        L.wait_for(lambda: "EXITED-0" in screen(two), 5, "status to exit on Ctrl-C",
                   interval=0.1)
        assert "TOP DENY REASONS" not in screen(two)
    finally:
        L.run(tmux + ["kill-server"], check=False)
