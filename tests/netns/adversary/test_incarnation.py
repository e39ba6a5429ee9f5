"""Issue 9, class 1: a decision belongs to one connection incarnation.

An unprivileged client fetches from an allowed name, closes with RST, and
reconnects from the same source port to the same (shared CDN) address with a
denied SNI. conntrack makes a fresh unmarked entry; the engine must read the
new hello instead of re-issuing the old ALLOW.
"""
import json
import os
import shutil

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
