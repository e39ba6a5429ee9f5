"""Issue 9, class 7: HTTP keep-alive and pipelining.

cdn-a.example.org and cdn-b.example.org share 203.0.113.30 / 2001:db8:2::30;
only cdn-a:80 is allowed. Every request head on the connection must be
checked, not only the first: a later or pipelined request for cdn-b must
never be served, and a credential in a later request is caught as in the
first.
"""
import json
import os

import pytest

import lab as L

ALLOW = "# keep-alive lab\ncdn-a.example.org:80\n"
AKIA = "AKIAIOSFODNN7EXAMPLE"


def pipeline(lab, fam, hosts, pipelined=False, headers=(), timeout=3):
    args = [L.PY, os.path.join(L.SERVERS, "http_pipeline.py"), "--name", "cdn-a.example.org",
            "--family", fam, "--timeout", str(timeout)]
    for h in hosts:
        args += ["--host", h]
    for h in headers:
        args += ["--header", h]
    if pipelined:
        args.append("--pipeline")
    p = lab.ns_run(lab.cli, args, timeout=timeout + 8)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def served(lab, vhost):
    return [line for line in lab.nginx_access() if line.startswith(vhost + " ")]


def deny_on_30(e, fam):
    dst = "203.0.113.30" if fam == "4" else "2001:db8:2::30"
    return lambda ev: ev.get("event") == "deny" and ev.get("dst") == dst and ev.get("dport") == 80


@pytest.mark.xfail(strict=True, reason="leaks on main: only the first request head is checked")
@pytest.mark.parametrize("fam", ["4", "6"])
def test_keepalive_second_host_refused(anylab, fam):
    e = anylab.start_egressd(allow=ALLOW)
    out = pipeline(anylab, fam, ["cdn-a.example.org", "cdn-b.example.org"])
    assert out["replies"][:1] == [200], out
    assert served(anylab, "cdn-a.example.org"), anylab.nginx_access()
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    ev = e.wait_event(deny_on_30(e, fam), what="deny of the second request's Host")
    assert ev.get("reason") == "name_not_allowed", ev
    assert len(out["replies"]) == 1 and out["error"], out


@pytest.mark.xfail(strict=True, reason="leaks on main: only the first request head is checked")
@pytest.mark.parametrize("fam", ["4", "6"])
def test_pipelined_second_host_refused(anylab, fam):
    e = anylab.start_egressd(allow=ALLOW)
    out = pipeline(anylab, fam, ["cdn-a.example.org", "cdn-b.example.org"], pipelined=True)
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    ev = e.wait_event(deny_on_30(e, fam), what="deny of the pipelined request's Host")
    assert ev.get("reason") == "name_not_allowed", ev
    assert len(out["replies"]) < 2, out


@pytest.mark.xfail(strict=True, reason="leaks on main: only the first request head is checked")
@pytest.mark.parametrize("fam", ["4", "6"])
def test_keepalive_credential_in_second_request(anylab, fam):
    e = anylab.start_egressd(allow=ALLOW)
    out = pipeline(anylab, fam, ["cdn-a.example.org", "cdn-a.example.org"],
                   headers=["X-Leak: aws_access_key_id=" + AKIA])
    ev = e.wait_event(lambda x: deny_on_30(e, fam)(x)
                      and any(str(i).startswith("credential:") for i in x.get("indicators", [])),
                      what="credential flagged in the second request")
    assert AKIA not in json.dumps(ev)
    assert len(out["replies"]) <= 1, out


@pytest.mark.parametrize("fam", ["4", "6"])
def test_keepalive_allowed_requests_and_bulk(anylab, fam):
    e = anylab.start_egressd(allow=ALLOW)
    out = pipeline(anylab, fam, ["cdn-a.example.org"] * 3)
    assert out == {"replies": [200, 200, 200], "error": None}, out
    out = pipeline(anylab, fam, ["cdn-a.example.org"] * 3, pipelined=True)
    assert out == {"replies": [200, 200, 200], "error": None}, out
    p = anylab.curl("http://cdn-a.example.org/big.bin", "-%s" % fam, "-o", "/dev/null",
                    "-w", "%{size_download}", timeout=20)
    assert p.returncode == 0 and int(p.stdout) == L.BIG_SIZE, (p.stdout, p.stderr)
    assert not [x for x in e.events("deny") if x.get("dport") == 80], e.events("deny")
    anylab.assert_attacker_got_nothing()
