"""Issue 10, fewer round trips: a new allowed TCP connection reaches egressd
at most twice (the SYN and the first payload). The client's bare handshake
ACK passes in the kernel (ct mark PENDING -> ACKED, nfq/ruleset.c
render_pending); every payload byte still waits for the decision.

Counted by the kernel: the sum of id_sequence in the egressd namespace's
/proc/net/netfilter/nfnetlink_queue (every packet handed to a queue), the
figure tests/bench/bench.py reports as packets per connection.
"""
import pytest

import lab as L


def queued(lab):
    p = lab.ns_run(lab.fw, ["cat", "/proc/net/netfilter/nfnetlink_queue"])
    assert p.returncode == 0, p.stderr
    return sum(int(f[7]) for f in (line.split() for line in p.stdout.splitlines())
               if len(f) >= 8)


def fam_args(fam):
    return ["-6"] if fam == "6" else ["-4"]


@pytest.mark.parametrize("fam", ["4", "6"])
def test_fresh_https_connection_queues_two_packets(anylab, fam):
    e = anylab.start_egressd()
    url = "https://updates.example.com/file"
    # the name is bound first (DNS goes to the listener, not the queue)
    p = anylab.curl(url, *fam_args(fam))
    assert p.returncode == 0, p.stderr
    for _ in range(3):
        before = queued(anylab)
        p = anylab.curl(url, *fam_args(fam))
        assert p.returncode == 0, p.stderr
        assert p.stdout == L.site_body("updates")
        n = queued(anylab) - before
        assert 1 <= n <= 2, "%d packets queued for one HTTPS connection" % n
    # identical events within 1 s are aggregated: one is enough
    assert [x for x in e.events("allow") if x.get("dport") == 443]
    anylab.assert_attacker_got_nothing()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_first_payload_still_held(anylab, fam):
    """The ACK passed in the kernel; the hello naming a tenant that is not
    allowed (cdn-b, on the address of the allowed cdn-a) is still queued,
    held and denied: nginx never serves cdn-b."""
    e = anylab.start_egressd()
    name = "cdn-a.example.org"
    addr = L.HOSTS[name][0 if fam == "4" else 1]
    p = anylab.dig("+short", name, "A" if fam == "4" else "AAAA")
    assert p.stdout.split() == [addr], p.stdout + p.stderr
    before = queued(anylab)
    host = "[%s]" % addr if fam == "6" else addr
    p = anylab.curl("https://cdn-b.example.org/file", "--resolve",
                    "cdn-b.example.org:443:%s" % host, timeout=6)
    assert p.returncode != 0, p.stdout
    assert [x for x in anylab.nginx_access() if x.startswith("cdn-b")] == []
    e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == addr,
                 what="deny of the cdn-b hello")
    # SYN and hello; the reset that follows the denial is the kernel's
    assert queued(anylab) - before <= 3
    # the allowed tenant on the same address still works
    p = anylab.curl("https://cdn-a.example.org/file", *fam_args(fam))
    assert p.returncode == 0, p.stderr
    assert p.stdout == L.site_body("cdn-a")
