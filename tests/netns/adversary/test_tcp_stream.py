"""Issue 9, class 2: what egressd decides on must be what the server reads.

ISN rewind + stale decoy: after a real handshake the client sends a SYN with
an earlier sequence and, at that old sequence, a hello naming an allowed
tenant of a shared address; the server drops both as old data. The real
hello (another tenant) follows. Before the fix the engine re-based its stream
on the SYN, allowed the decoy, and the real hello reached nginx.
"""
import json
import os

import pytest

import lab as L

HERE = os.path.dirname(os.path.abspath(__file__))


def rewind(lab, dst, sni, decoy, timeout=4.0, mode="rewind"):
    args = [L.PY, os.path.join(HERE, "isn_rewind.py"), "--dst", dst, "--port", "443", "--sni",
            sni, "--decoy", decoy, "--cafile", lab.ca["ca"], "--timeout", str(timeout),
            "--mode", mode]
    p = lab.ns_run(lab.cli, args, timeout=timeout + 10)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        raise L.LabError("isn_rewind.py printed no JSON (%s): %s%s" % (p.returncode, p.stdout,
                                                                      p.stderr))
    assert r["result"] != "error", r
    return r


@pytest.mark.parametrize("mode", ["rewind", "badsum"])
@pytest.mark.parametrize("fam", ["4", "6"])
def test_isn_rewind_stale_decoy(anylab, fam, mode):
    """rewind: decoy at an earlier ISN; badsum: decoy at the real ISN, bad checksum."""
    e = anylab.start_egressd()
    name = "cdn-a.example.org"
    addr = L.HOSTS[name][0 if fam == "4" else 1]
    p = anylab.dig("+short", name, "A" if fam == "4" else "AAAA")
    assert p.stdout.split() == [addr], p.stdout + p.stderr
    r = rewind(anylab, addr, "cdn-b.example.org", name, mode=mode)
    assert r.get("injected") and r["synack"], r
    assert r.get("body") != L.site_body("cdn-b"), r
    served = [x for x in anylab.nginx_access() if x.startswith("cdn-b")]
    assert served == [], served
    e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == addr,
                 what="deny event for the rewound flow")
    assert e.running()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_rawtcp_control_allowed(anylab, fam):
    """Positive control: the same crafted client without the rewind fetches cdn-a."""
    e = anylab.start_egressd()
    name = "cdn-a.example.org"
    addr = L.HOSTS[name][0 if fam == "4" else 1]
    anylab.dig("+short", name, "A" if fam == "4" else "AAAA")
    args = [L.PY, os.path.join(HERE, "..", "evasion", "rawtcp.py"), "--dst", addr, "--sni", name,
            "--cafile", anylab.ca["ca"], "--timeout", "4"]
    p = anylab.ns_run(anylab.cli, args, timeout=15)
    r = json.loads(p.stdout)
    assert r["result"] == "ok" and r["body"] == L.site_body("cdn-a"), r
    assert e.running()
