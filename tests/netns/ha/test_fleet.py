"""An active-active fleet (issue 11, SPEC "pair / fleet"): two egressd
gateways side by side behind the client's ECMP default route with L4
hashing (halab.HaLab.start_fleet). 200 fresh connections to an allowed name
spread over both and all succeed; the DNS answer came from gateway a only,
so every flow b carried is one whose DNS b never saw (unknown_ip = verify
binds it on b after checking the SNI). A forged SNI is denied on both, the
attacker records nothing."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import lab as labmod
from halab import HaLab
from lab import wait_for

pytestmark = pytest.mark.skipif(not shutil.which("nft"), reason="needs nft")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def fleet(tmp_path, ca):
    lab = HaLab(tmp_path, ca).up()
    yield lab
    lab.close()
    reports = lab.sanitizer_reports()
    assert not reports, "sanitizer report(s) from egressd:\n" + "\n".join(reports)
    problems = lab.daemon_problems()
    assert not problems, "\n".join(problems)


def conns(lab, addr, name, n, expect, timeout=5):
    p = lab.ns_run(lab.cli, [labmod.PY, os.path.join(HERE, "conns.py"), "--addr", addr,
                             "--name", name, "--expect", expect, "--cafile", lab.ca["ca"],
                             "-n", str(n), "--timeout", str(timeout)], timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def allowed(gw, name):
    """Connections gw allowed to name (repeats are folded into one line's
    "count": the first line, then the number of further ones)."""
    return sum(e.get("count", 1) for e in gw.egressd.events("allow") if e.get("name") == name)


def test_fleet_ecmp_spreads_and_binds_everywhere(fleet):
    a, b = fleet.start_fleet()
    # The client asks gateway a (its own address: a's DNS listener) only.
    d = fleet.dig("@" + a.inside, "+short", "updates.example.com", "A")
    assert d.stdout.split() == ["203.0.113.10"], d.stdout + d.stderr
    assert not b.egressd.events("dns"), "b answered DNS: %s" % b.egressd.events("dns")

    r = conns(fleet, "203.0.113.10", "updates.example.com", 200,
              labmod.site_body("updates"))
    # egressd folds repeated allows into a "count" line written a little later
    def counted():
        n = allowed(a, "updates.example.com"), allowed(b, "updates.example.com")
        return n if sum(n) >= 200 else None
    try:
        na, nb = wait_for(counted, 10, "200 allows in the two event logs", interval=0.2)
    except TimeoutError:
        na, nb = allowed(a, "updates.example.com"), allowed(b, "updates.example.com")
    print("\n[fleet] 200 connections: %d ok; gateway a allowed %d, gateway b %d"
          % (r["ok"], na, nb))
    assert r["ok"] == 200, r["failed"][:10]
    assert na > 0 and nb > 0, "ECMP put every flow on one gateway (a %d, b %d)" % (na, nb)
    assert na + nb == 200, (na, nb)

    # Reload on all boxes (the operator's tool pushed the same config, then
    # SIGHUP on each) while 1000 more connections run: none is dropped.
    n_reload = [len(g.egressd.events("reload")) for g in (a, b)]
    p = subprocess.Popen(["ip", "netns", "exec", fleet.cli, labmod.PY,
                          os.path.join(HERE, "conns.py"), "--addr", "203.0.113.10", "--name",
                          "updates.example.com", "--expect", labmod.site_body("updates"),
                          "--cafile", fleet.ca["ca"], "-n", "1000", "--workers", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    for g in (a, b):
        g.egressd.proc.send_signal(signal.SIGHUP)
    for g, n in zip((a, b), n_reload):
        g.egressd.wait_event(lambda e: e.get("event") == "reload"
                             and len(g.egressd.events("reload")) > n, 5, "reload on " + g.name)
    assert p.poll() is None, "the connections ended before both reloads"
    out, err = p.communicate(timeout=120)
    r = json.loads(out)
    print("[fleet] reload on both during 1000 connections: %d ok" % r["ok"])
    assert r["ok"] == 1000, r["failed"][:10]

    # Connection rate in the lab, fleet against one gateway (the lab's two
    # shared cores carry client, servers and both gateways: indicative only).
    t = time.monotonic()
    r = conns(fleet, "203.0.113.10", "updates.example.com", 200, labmod.site_body("updates"))
    fleet_s = time.monotonic() - t
    fleet.ip_batch(fleet.cli, ["route replace default via " + a.inside])
    t = time.monotonic()
    r1 = conns(fleet, "203.0.113.10", "updates.example.com", 200, labmod.site_body("updates"))
    one_s = time.monotonic() - t
    print("[fleet] 200 HTTPS connections: %.2f s through the fleet (%.0f/s), %.2f s through "
          "one gateway (%.0f/s)" % (fleet_s, 200 / fleet_s, one_s, 200 / one_s))
    assert r["ok"] == 200 and r1["ok"] == 200
    fleet.ip_batch(fleet.cli, ["route replace default nexthop via %s nexthop via %s"
                               % (a.inside, b.inside)])

    # A forged SNI (allowed name, attacker's address) is denied on whichever
    # gateway the flow hashes to.
    r = conns(fleet, labmod.ATTACKER4, "updates.example.com", 20, "x", timeout=3)
    assert r["ok"] == 0
    fleet.assert_attacker_got_nothing()
