"""Issue 9, class 1: a decision belongs to one connection incarnation.

An unprivileged client fetches from an allowed name, closes with RST, and
reconnects from the same source port to the same (shared CDN) address with a
denied SNI. conntrack makes a fresh unmarked entry; the engine must read the
new hello instead of re-issuing the old ALLOW.
"""
import json
import os

import pytest

import lab as L

HERE = os.path.dirname(os.path.abspath(__file__))


def reconnect(lab, fam, sport):
    p = lab.ns_run(lab.cli, [L.PY, os.path.join(HERE, "reconnect.py"), "--allowed",
                             "cdn-a.example.org", "--denied", "cdn-b.example.org", "--fam", fam,
                             "--sport", str(sport), "--cafile", lab.ca["ca"]], timeout=20)
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
