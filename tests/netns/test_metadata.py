"""Issue 12: the cloud metadata guard ([egressd] metadata = deny, the default).

A fake instance metadata service listens on 169.254.169.254:80 and
[fd00:ec2::254]:80 inside the lab's fake-internet namespace (the addresses
exist only there; in gateway mode the gateway namespace gets a route to them
via the fake internet). A stealer's curl for the instance credentials must
be denied and flagged `metadata` (critical in host mode) and the fake
service must see nothing; an allowlist entry that lists the address lets it
through; an allowed name pointed at the address (DNS rebinding, or a
resolver of its own) is denied at the SYN.
"""
import json
import os

import pytest

import lab as L

MD4, MD6 = "169.254.169.254", "fd00:ec2::254"
CREDS_PATH = "/latest/meta-data/iam/security-credentials/"
BODY = "fake-imds-role\n"

SERVER = r"""
import http.server, socket, sys
rec, addr = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(rec, "a") as f:
            f.write("%s %s\n" % (self.client_address[0], self.path))
        body = b"fake-imds-role\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
S((addr, 80), H).serve_forever()
"""


def fake_imds(lab):
    """Addresses and servers in the lab's namespaces only; returns the record path."""
    rec = os.path.join(lab.dir, "imds.log")
    lab.ip_batch(lab.net, ["addr add %s/32 dev eth0" % MD4,
                           "addr add %s/128 dev eth0 nodad" % MD6])
    if lab.mode == "gateway":
        lab.ip_batch(lab.gw, ["route add %s/32 via 203.0.113.2" % MD4,
                              "route add %s/128 via 2001:db8:2::2" % MD6])
    for a in (MD4, MD6):
        lab.spawn(lab.net, [L.PY, "-c", SERVER, rec, a])

    def listening():
        out = lab.ns_run(lab.net, ["ss", "-Hltn"]).stdout
        return all(("%s:80" % a) in out or ("[%s]:80" % a) in out for a in (MD4, MD6))
    L.wait_for(listening, 5, "the fake metadata service to listen")
    return rec


def imds_requests(rec):
    try:
        with open(rec) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def url(fam):
    return "http://%s%s" % ("[%s]" % MD6 if fam == "6" else MD4, CREDS_PATH)


def md_deny(dst):
    return lambda e: e.get("event") == "deny" and e.get("dst") == dst and e.get("dport") == 80


@pytest.mark.parametrize("fam", ["4", "6"])
def test_metadata_denied_and_flagged(anylab, fam):
    rec = fake_imds(anylab)
    e = anylab.start_egressd()
    p = anylab.curl(url(fam), timeout=5)
    assert p.returncode != 0 and p.elapsed < 2, (p.returncode, p.elapsed, p.stdout)
    dst = MD6 if fam == "6" else MD4
    ev = e.wait_event(md_deny(dst), what="deny of the metadata endpoint")
    assert ev.get("reason") == "ip_not_allowed", ev
    assert "metadata" in ev.get("indicators", []), ev
    want = "critical" if anylab.mode == "host" else "high"
    assert ev.get("severity") == want, ev
    assert ev.get("enforced") is True, ev
    assert imds_requests(rec) == [], "the metadata service was reached"
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_metadata_allowed_when_listed(anylab, fam):
    rec = fake_imds(anylab)
    entry = "[%s]:80" % MD6 if fam == "6" else "%s:80" % MD4
    e = anylab.start_egressd(allow=L.DEFAULT_ALLOW + entry + "\n")
    p = anylab.curl(url(fam), timeout=5)
    assert p.returncode == 0, p.stderr
    assert p.stdout == BODY
    dst = MD6 if fam == "6" else MD4
    ev = e.wait_event(lambda x: x.get("event") == "allow" and x.get("dst") == dst,
                      what="allow of the listed metadata endpoint")
    assert str(ev.get("rule", "")).endswith("lab.list:%d" % (L.DEFAULT_ALLOW.count("\n") + 1)), ev
    assert len(imds_requests(rec)) == 1
    assert not [x for x in e.events("deny") if x.get("dst") == dst], json.dumps(e.events())


def test_allowed_name_pointed_at_metadata_denied(anylab):
    """unknown_ip = verify and an allowed name pinned to 169.254.169.254 (a
    rebinding answer, or the stealer's own resolver): denied at the SYN."""
    rec = fake_imds(anylab)
    e = anylab.start_egressd(unknown_ip="verify")
    p = anylab.curl("http://updates.example.com" + CREDS_PATH, "--resolve",
                    "updates.example.com:80:%s" % MD4, timeout=5)
    assert p.returncode != 0 and p.elapsed < 2, (p.returncode, p.elapsed, p.stdout)
    ev = e.wait_event(md_deny(MD4), what="deny of the rebound name")
    assert "metadata" in ev.get("indicators", []), ev
    assert imds_requests(rec) == [], "the metadata service was reached"


def test_metadata_allow_turns_the_guard_off(anylab):
    rec = fake_imds(anylab)
    e = anylab.start_egressd(unknown_ip="verify", extra="[egressd]\nmetadata = allow\n")
    # still default-deny: a bare address with no entry is refused, but unflagged
    p = anylab.curl(url("4"), timeout=5)
    assert p.returncode != 0
    ev = e.wait_event(md_deny(MD4), what="deny of the unlisted address")
    assert "metadata" not in ev.get("indicators", []), ev
    assert imds_requests(rec) == [], "the metadata service was reached"
