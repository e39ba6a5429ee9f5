"""Issue 10, workers: [queue] threads = 2 runs two worker threads.

The kernel spreads flows over the queues by address hash (source and
destination address, protocol), so flows from several client addresses to
several servers land on both queues. Both workers must decide flows (their
per-worker packet counters move), and a reload under traffic must switch
every worker to the new policy before the reload event is logged: no worker
keeps deciding with the old one, and no flow is decided by a policy that is
neither.
"""
import os
import re
import signal
import threading
import time

import lab as L
from exfil import common as X

SOURCES = ["198.51.100.%d" % i for i in range(11, 19)]
# fixed: this test is about two workers, whatever EGRESSD_LAB_THREADS says
THREADS = 2


def start(lab, allow=L.DEFAULT_ALLOW, **kw):
    e = lab.write_conf(allow=allow, **kw)
    with open(e.conf) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^threads = \S+$", "threads = %d" % THREADS, text)
    assert n == 1, "lab.write_conf changed its [queue] section"
    with open(e.conf, "w") as f:
        f.write(text)
    X.with_metrics(e)
    e.start()
    ready = e.events("ready")[-1]
    assert ready.get("queues") == [0, 1], ready
    # more client addresses: more address pairs for the kernel's hash
    lab.ip_batch(lab.cli, ["addr add %s/24 dev eth0" % a for a in SOURCES])
    return e


def curl_from(lab, src, name, timeout=6, dns=True):
    """HTTPS from src. dns=False: no lookup (curl --resolve), so the worker
    decides on the SNI and the bindings earlier lookups left."""
    extra = [] if dns else ["--resolve", "%s:443:%s" % (name, L.HOSTS[name][0])]
    return lab.curl("https://%s/file" % name, "-4", "--interface", src, *extra, timeout=timeout)


def worker_packets(lab):
    m = X.Metrics(lab)
    return [m.get("egressd_worker_packets_total", worker=str(i)) for i in range(THREADS)]


def test_two_workers_both_decide(gwlab):
    e = start(gwlab)
    for src in SOURCES:
        for name in ("updates.example.com", "mirror.example.net"):
            p = curl_from(gwlab, src, name)
            assert p.returncode == 0, (src, name, p.stderr, e.tail())
            assert p.stdout == L.site_body(name.split(".")[0])
    p = gwlab.curl("https://203.0.113.66/", "-4", "-k", timeout=4)
    assert p.returncode != 0
    per = worker_packets(gwlab)
    assert all(n > 0 for n in per), "a worker decided nothing: %s" % per
    m = X.Metrics(gwlab)
    total = sum(v for (name, _), v in m.samples.items() if name == "egressd_packets_total")
    assert total == sum(per), (total, per)  # the aggregate is the workers' sum
    assert m.get("egressd_log_dropped_total") == 0
    allows = [x for x in e.events("allow") if x.get("dport") == 443]
    assert len({x["src"] for x in allows}) == len(SOURCES), allows
    gwlab.assert_attacker_got_nothing()


# Policy k allows exactly one of the two names; the other is denied. A third
# name (cdn-a) is allowed by neither: it must never get through.
POLICIES = [
    "updates.example.com:443\n",
    "# policy B\nmirror.example.net:443\n",
]
ALLOWED = [("updates.example.com", "mirror.example.net"),
           ("mirror.example.net", "updates.example.com")]


def reload(e, allow):
    with open(os.path.join(e.lab.dir, "allow.d", "lab.list"), "w") as f:
        f.write(allow)
    n = len(e.events("reload"))
    e.proc.send_signal(signal.SIGHUP)
    L.wait_for(lambda: len(e.events("reload")) > n or not e.running(), 8, "the reload event")
    assert e.running(), e.tail()


def test_reload_under_traffic_switches_every_worker(gwlab):
    e = start(gwlab, allow=POLICIES[0])
    stop = threading.Event()
    got_through = []  # (src, name) that were never allowed by any policy
    rounds = [0]

    def traffic():
        i = 0
        while not stop.is_set():
            src = SOURCES[i % len(SOURCES)]
            name = ("updates.example.com", "mirror.example.net", "cdn-a.example.org")[i % 3]
            p = curl_from(gwlab, src, name, timeout=4, dns=False)
            if p.returncode == 0 and name == "cdn-a.example.org":
                got_through.append((src, name))
            i += 1
            rounds[0] = i

    bg = threading.Thread(target=traffic, daemon=True)
    bg.start()
    try:
        deadline = time.monotonic() + 60
        for gen in range(1, 7):
            assert time.monotonic() < deadline, "the lab is too slow for this test"
            k = gen % 2
            reload(e, POLICIES[k])
            # the reload event is logged after every worker switched: from
            # now on each source (both queues) meets policy k. The name the
            # old policy allowed is still bound to its address (DNS answered
            # it a moment ago), so only the worker's policy can deny it.
            ok, no = ALLOWED[k]
            n_deny = len(e.events("deny"))
            for src in SOURCES:
                p = curl_from(gwlab, src, ok)
                assert p.returncode == 0, (gen, src, ok, p.stderr, e.tail())
                p = curl_from(gwlab, src, no, timeout=4, dns=False)
                assert p.returncode != 0, (gen, src, no, "allowed by the old policy")
            # denied by the worker (at the SYN: the address is bound only to
            # a name the new policy does not allow), from every source
            def denied_srcs():
                return {x["src"] for x in e.events("deny")[n_deny:]
                        if x.get("dst") == L.HOSTS[no][0] and x.get("dport") == 443}
            try:  # the log writer thread may be a moment behind the verdict
                L.wait_for(lambda: set(SOURCES) <= denied_srcs(), 3, "the deny events")
            except TimeoutError:
                raise AssertionError((gen, sorted(denied_srcs()), e.events("deny")[n_deny:]))
    finally:
        stop.set()
        bg.join(10)
    assert rounds[0] > 0
    assert not got_through, got_through
    per = worker_packets(gwlab)
    assert all(n > 0 for n in per), per
    # every allow names a rule of the policy that held: a line of that file
    for x in e.events("allow"):
        if x.get("dport") != 443:
            continue
        line = int(str(x.get("rule", ":0")).rsplit(":", 1)[1])
        assert (x.get("name"), line) in {("updates.example.com", 1),
                                        ("mirror.example.net", 2)}, x
    assert e.running(), e.tail()
    gwlab.assert_attacker_got_nothing()


def test_threads_auto_one_queue_per_cpu(gwlab):
    """threads = auto: one queue (and worker) per online CPU, at most 16."""
    e = gwlab.write_conf()
    with open(e.conf) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^threads = \S+$", "threads = auto", text)
    assert n == 1
    with open(e.conf, "w") as f:
        f.write(text)
    e.start()
    want = min(os.sysconf("SC_NPROCESSORS_ONLN"), 16)
    assert e.events("ready")[-1].get("queues") == list(range(want))
    p = gwlab.curl("https://updates.example.com/file", "-4")
    assert p.returncode == 0, p.stderr
    gwlab.assert_attacker_got_nothing()
