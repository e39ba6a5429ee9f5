"""A failover pair (issue 11, SPEC "pair / fleet"): two egressd gateways with
keepalived and conntrackd from packaging/ha/ (halab.py). The master dies
mid-download; the downloads finish through the backup, the addresses move
in < 3 s, a connection made with the DNS answer the client cached from the
master works on the backup (unknown_ip = verify), forged SNI and denied
names stay denied, the attacker records nothing. The health hook: egressd
stopped on the master moves the addresses."""
import hashlib
import os
import shutil
import subprocess
import threading
import time

import pytest

import lab as labmod
from halab import PKG, VIP_IN, HaLab
from lab import wait_for

pytestmark = pytest.mark.skipif(not (shutil.which("keepalived") and shutil.which("conntrackd")),
                                reason="needs keepalived and conntrackd (tests/deps.sh)")

FILE = "https://updates.example.com/file"
BIG = "https://updates.example.com/big.bin"
CACHED = "updates.example.com:443:203.0.113.10"   # the answer the client cached
DOWNLOADS = 4


@pytest.fixture
def ha(tmp_path, ca):
    lab = HaLab(tmp_path, ca).up()
    yield lab
    lab.close()
    reports = lab.sanitizer_reports()
    assert not reports, "sanitizer report(s) from egressd:\n" + "\n".join(reports)
    problems = lab.daemon_problems()
    assert not problems, "\n".join(problems)


def curl_bg(lab, url, out, *extra, timeout=40):
    args = ["ip", "netns", "exec", lab.cli, "curl", "-sS", "--noproxy", "*", "--cacert",
            lab.ca["ca"], "--max-time", str(timeout), "-o", out, "-w", "%{http_code}"]
    return subprocess.Popen(args + list(extra) + [url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def big_digest():
    return hashlib.sha256(bytes(range(256)) * (labmod.BIG_SIZE // 256)).hexdigest()


# egressd's ct marks with the default mask (nfq/marks.h): ALLOW for HTTPS,
# INSPECT for plain HTTP (the client's payload is still queued)
MARKS = {"https": (443, 0x01000000), "http": (80, 0x05000000)}


def allowed_in_cache(gw, which="-e", scheme="https"):
    """conntrackd's external (-e) or internal (-i) cache of gw holds
    connections to 203.0.113.10 on scheme's port with scheme's verdict mark."""
    port, mark = MARKS[scheme]
    out = gw.ct(which).stdout
    return [line for line in out.splitlines() if "dst=203.0.113.10" in line
            and ("dport=%d " % port) in (line + " ") and "mark=%d" % mark in line]


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_failover_keeps_download_and_policy(ha, scheme):
    a, b = ha.start_pair(unknown_ip="verify")

    # The client resolves through the pair (a answers and binds) and caches it.
    d = ha.dig("@" + VIP_IN, "+short", "updates.example.com", "A")
    assert d.stdout.split() == ["203.0.113.10"], d.stdout + d.stderr
    assert ha.curl(FILE).stdout == labmod.site_body("updates")

    # Four large downloads run through a; a's conntrackd replicated them to
    # b's external cache with their ALLOW mark.
    outs = ["%s/big.%d.out" % (ha.dir, i) for i in range(DOWNLOADS)]
    big = BIG.replace("https:", scheme + ":")
    dls = [curl_bg(ha, big, out) for out in outs]
    wait_for(lambda: len(allowed_in_cache(b, "-e", scheme)) >= DOWNLOADS, 5, "b's external cache to hold "
             "the downloads with the ALLOW mark", interval=0.1)
    time.sleep(1.0)
    for dl in dls:
        assert dl.poll() is None, "a download ended before the failover: %s" % (dl.communicate(),)

    # Failover: kill -9 a's egressd, take a's links down.
    t0 = time.monotonic()
    a.egressd.kill9()
    a.links("down")
    moved = {}

    def watch():
        try:
            wait_for(b.holds_vips, 10, "b to hold both addresses", interval=0.01)
            moved["t"] = time.monotonic() - t0
        except TimeoutError as e:
            moved["err"] = str(e)
    w = threading.Thread(target=watch)
    w.start()
    # The first new connection (cached answer: no DNS) accepted after the
    # failover. With unknown_ip = deny on the pair it never comes (checked:
    # b has no binding for the answer a gave; the issue's "denied until the
    # client re-resolves").
    first = None
    deadline = t0 + 15
    while time.monotonic() < deadline:
        # short attempts: a SYN lost in the switch-over would wait for its
        # 1 s retransmission and blur the figure
        p = ha.curl(FILE, "--resolve", CACHED, "--connect-timeout", "0.25", timeout=3)
        if p.returncode == 0 and p.stdout == labmod.site_body("updates"):
            first = time.monotonic() - t0
            break
        time.sleep(0.05)
    w.join()
    assert "t" in moved, moved.get("err")
    print("\n[ha] failover: addresses on b after %.3f s; first new connection accepted after "
          "%.3f s" % (moved["t"], first if first is not None else -1))
    assert moved["t"] < 3.0, "the addresses took %.3f s to move" % moved["t"]
    assert first is not None, "no new connection with the cached answer within 15 s"
    assert not a.holds_any_vip()

    # b's kernel table got the running downloads from the commit, marks
    # included (conntrackd -i: the internal cache, resynced from the kernel, -R).
    assert len(allowed_in_cache(b, "-i", scheme)) >= DOWNLOADS, "b's table lacks the marks"

    # The downloads complete through b (state from conntrackd), intact.
    lost = []
    for dl, out in zip(dls, outs):
        stdout, stderr = dl.communicate(timeout=45)
        with open(out, "rb") as f:
            ok = hashlib.sha256(f.read()).hexdigest() == big_digest()
        if dl.returncode != 0 or stdout != "200" or not ok:
            lost.append((dl.returncode, stdout, stderr, ok))
    t_done = time.monotonic() - t0
    print("[ha] allowed connections lost in the failover: %d of %d %s downloads (all ended "
          "%.3f s after it)" % (len(lost), DOWNLOADS, scheme, t_done))
    assert not lost, lost

    # b decided the cached-answer connection itself, by verifying the SNI.
    allows = [e for e in b.egressd.events("allow") if e.get("sni") == "updates.example.com"
              or e.get("name") == "updates.example.com"]
    assert allows, "b logged no allow for the cached-answer connection:\n%s" % b.egressd.events()

    # Policy on b is the pair's policy: forged SNI and denied names denied.
    p = ha.curl(FILE, "--resolve", "updates.example.com:443:%s" % labmod.ATTACKER4, timeout=5)
    assert p.returncode != 0, "forged SNI to the attacker passed on b: %s" % p.stdout
    p = ha.curl("https://updates.examp1e.com/", "--resolve",
                "updates.examp1e.com:443:%s" % labmod.ATTACKER4, timeout=5)
    assert p.returncode != 0, "a denied name passed on b"
    d = ha.dig("@" + VIP_IN, "updates.examp1e.com", "A")
    assert "REFUSED" in d.stdout, d.stdout
    # A fresh resolution through b works too.
    assert ha.curl("https://mirror.example.net/file").stdout == labmod.site_body("mirror")

    # Fail back: a comes back (links, egressd) as backup (nopreempt); the
    # operator restarts keepalived on b and a takes the addresses again.
    a.links("up")
    a.egressd.start()
    time.sleep(2.5)  # a's track script: rise 2 at 1 s
    assert not a.holds_any_vip(), "a preempted b (nopreempt)"
    t1 = time.monotonic()
    b.stop_keepalived()
    wait_for(a.holds_vips, 5, "a to take the addresses back", interval=0.01)
    print("[ha] fail back: addresses on a after %.3f s" % (time.monotonic() - t1))
    assert ha.curl(FILE, "--resolve", CACHED).stdout == labmod.site_body("updates")
    ha.assert_attacker_got_nothing()


def test_health_hook_egressd_stopped_moves_addresses(ha):
    a, b = ha.start_pair()
    assert ha.curl(FILE).stdout == labmod.site_body("updates")
    t0 = time.monotonic()
    a.egressd.stop()  # SIGTERM: a clean stop, keepalived and the links stay up
    wait_for(b.holds_vips, 5, "b to take the addresses when a's egressd stopped",
             interval=0.02)
    took = time.monotonic() - t0
    wait_for(lambda: not a.holds_any_vip(), 2, "a to drop the addresses", interval=0.02)
    print("\n[ha] health hook: egressd stopped on a, addresses on b after %.3f s" % took)
    assert ha.curl(FILE, "--resolve", CACHED).stdout == labmod.site_body("updates")
    ha.assert_attacker_got_nothing()


@pytest.mark.parametrize("env", ["gateway-a.env", "gateway-b.env"])
def test_packaged_configs_parse_as_shipped(ha, env):
    """packaging/ha renders as shipped (TRACK_PROCESS=yes, /etc paths) and
    keepalived accepts it (-t) in a gateway namespace that has the
    interfaces; the lab itself runs with TRACK_PROCESS=no (no proc
    connector in a network namespace)."""
    out = "%s/shipped-%s" % (ha.dir, env)
    # as shipped but for LIBDIR (the scripts are not installed here)
    with open(os.path.join(PKG, env)) as f:
        text = f.read().replace("LIBDIR=/usr/lib/egressd/ha", "LIBDIR=" + PKG)
    with open(out + ".env", "w") as f:
        f.write(text)
    labmod.run([os.path.join(PKG, "render.sh"), out + ".env", out])
    text = open(out + "/keepalived.conf").read()
    assert "vrrp_track_process egressd_proc" in text and "@" not in text
    p = ha.ns_run(ha.gws["a"].ns, ["keepalived", "-t", "-f", out + "/keepalived.conf"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Ignoring" not in p.stderr and "not found" not in p.stderr, p.stderr
