"""Issue 9, class 7: HTTP keep-alive and pipelining.

cdn-a.example.org and cdn-b.example.org share 203.0.113.30 / 2001:db8:2::30;
only cdn-a:80 is allowed. Every request head on the connection must be
checked, not only the first: a later or pipelined request for cdn-b must
never be served, and a credential in a refused later request is flagged as
in a refused first one.
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


@pytest.mark.parametrize("fam", ["4", "6"])
def test_pipelined_second_host_refused(anylab, fam):
    e = anylab.start_egressd(allow=ALLOW)
    out = pipeline(anylab, fam, ["cdn-a.example.org", "cdn-b.example.org"], pipelined=True)
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    ev = e.wait_event(deny_on_30(e, fam), what="deny of the pipelined request's Host")
    assert ev.get("reason") == "name_not_allowed", ev
    assert len(out["replies"]) < 2, out


@pytest.mark.parametrize("fam", ["4", "6"])
def test_keepalive_credential_in_second_request(anylab, fam):
    e = anylab.start_egressd(allow=ALLOW)
    out = pipeline(anylab, fam, ["cdn-a.example.org", "cdn-b.example.org"],
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


# ---- framing attacks: what egressd reads must be what nginx reads ----

GET_A = "GET /file HTTP/1.1\\r\\nHost: cdn-a.example.org\\r\\n\\r\\n"
GET_B = "GET /file HTTP/1.1\\r\\nHost: cdn-b.example.org\\r\\n\\r\\n"
HEAD_B = "GET /file HTTP/1.1\r\nHost: cdn-b.example.org\r\n\r\n"


def raw(lab, fam, pieces, zeros=(), timeout=3):
    args = [L.PY, os.path.join(L.SERVERS, "http_raw.py"), "--name", "cdn-a.example.org",
            "--family", fam, "--timeout", str(timeout)]
    for p in pieces:
        args += ["--send", p]
    for z in zeros:
        args += ["--zeros", str(z)]
    p = lab.ns_run(lab.cli, args, timeout=timeout + 30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("fam", ["4", "6"])
def test_split_head_byte_by_byte(anylab, fam):
    """The other tenant's head in one-byte segments after an allowed request."""
    e = anylab.start_egressd(allow=ALLOW)
    pieces = [GET_A] + [c.replace("\r", "\\r").replace("\n", "\\n") for c in HEAD_B]
    out = raw(anylab, fam, pieces)
    assert out["statuses"] in ([], [200]), out  # the reset may overtake the first reply
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    ev = e.wait_event(deny_on_30(e, fam), what="deny of the split head")
    assert ev.get("reason") == "name_not_allowed" and ev.get("name") == "cdn-b.example.org", ev


@pytest.mark.parametrize("fam", ["4", "6"])
def test_body_that_looks_like_a_head(anylab, fam):
    """A Content-Length body and a chunked body carrying cdn-b heads are bodies (nginx
    agrees: it serves the next cdn-a request); a cdn-b head after them is refused."""
    e = anylab.start_egressd(allow=ALLOW)
    n = len(HEAD_B)
    post_cl = ("POST /file HTTP/1.1\\r\\nHost: cdn-a.example.org\\r\\nContent-Length: %d\\r\\n\\r\\n"
               % n) + GET_B
    post_te = ("POST /file HTTP/1.1\\r\\nHost: cdn-a.example.org\\r\\nTransfer-Encoding: chunked"
               "\\r\\n\\r\\n%x\\r\\n" % n) + GET_B + "\\r\\n0\\r\\n\\r\\n"
    out = raw(anylab, fam, [post_cl, post_te, GET_A])
    assert len(out["statuses"]) == 3 and out["statuses"][2] == 200, out
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    assert not [x for x in e.events("deny") if x.get("dport") == 80], e.events("deny")
    out = raw(anylab, fam, [post_cl, GET_B])
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    e.wait_event(deny_on_30(e, fam), what="deny of the head after the body")


@pytest.mark.parametrize("fam", ["4", "6"])
@pytest.mark.parametrize("head,detail", [
    ("POST /file HTTP/1.1\\r\\nHost: cdn-a.example.org\\r\\nContent-Length: 4\\r\\n"
     "Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n", "cl_and_te"),
    ("POST /file HTTP/1.0\\r\\nHost: cdn-a.example.org\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n"
     "0\\r\\n\\r\\n", "bad_transfer_encoding"),
    ("GET /file HTTP/1.1\\r\\nHost: cdn-a.example.org\\r\\nConnection: Upgrade\\r\\n"
     "Upgrade: websocket\\r\\n\\r\\n", "upgrade"),
    ("CONNECT cdn-b.example.org:80 HTTP/1.1\\r\\nHost: cdn-b.example.org:80\\r\\n\\r\\n", "connect"),
])
def test_ambiguous_framing_refused(anylab, fam, head, detail):
    """Framing two readers could disagree on, or a stream that stops being HTTP/1,
    after an allowed request: the connection is denied, cdn-b never served."""
    e = anylab.start_egressd(allow=ALLOW)
    out = raw(anylab, fam, [GET_A, head, GET_B])
    assert out["statuses"] in ([], [200]), out  # the reset may overtake the first reply
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    ev = e.wait_event(lambda x: deny_on_30(e, fam)(x) and x.get("detail") == detail,
                      what="deny with detail " + detail)
    assert ev["reason"] in ("malformed", "protocol_not_allowed"), ev


@pytest.mark.parametrize("fam", ["4", "6"])
def test_http10_pipelined(anylab, fam):
    """HTTP/1.0 without keep-alive, a cdn-b head pipelined behind it."""
    e = anylab.start_egressd(allow=ALLOW)
    out = raw(anylab, fam, ["GET /file HTTP/1.0\\r\\nHost: cdn-a.example.org\\r\\n\\r\\n" + GET_B])
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    e.wait_event(deny_on_30(e, fam), what="deny of the pipelined head")
    assert out["statuses"] == [], out  # the whole segment was refused: nothing served


@pytest.mark.parametrize("fam", ["4", "6"])
def test_large_upload_then_next_request(anylab, fam):
    """16 MiB of Content-Length body passes without being held, then the next head is read."""
    e = anylab.start_egressd(allow=ALLOW)
    size = 16 << 20
    head = ("POST /file HTTP/1.1\\r\\nHost: cdn-a.example.org\\r\\nContent-Length: %d\\r\\n\\r\\n"
            % size)
    out = raw(anylab, fam, [head, "@zeros", GET_B], zeros=[size], timeout=10)
    assert not served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    ev = e.wait_event(deny_on_30(e, fam), what="deny of the head after 16 MiB", timeout=10)
    assert ev.get("name") == "cdn-b.example.org", ev
    assert not [x for x in e.events("deny") if x.get("detail", "").startswith("hold")], out
