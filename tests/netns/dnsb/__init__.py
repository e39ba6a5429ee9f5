"""Helpers for test_dns_binding.py: extra upstream resolvers in the fake
internet and config knobs the lab's write_conf() does not expose.

Everything started here is a process of the lab (Lab.spawn), so Lab.close()
stops it, and every address is added to the `net` namespace, which
Lab.close() deletes. Only documentation addresses are used:

  203.0.113.54 / 2001:db8:2::54   Upstream: a dnsmasq of our own (short TTLs,
                                  many records, HTTPS/SVCB records)
  203.0.113.99                    Sink: reads DNS queries, never answers
"""
import json
import os
import re

import lab as L

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM4, UPSTREAM6 = "203.0.113.54", "2001:db8:2::54"
SINK4 = "203.0.113.99"
METRICS = "127.0.0.1:9469"

# HTTPS / SVCB rdata (RFC 9460 2.2): priority(2) = 1, target "." (0), one
# SvcParam alpn(1) = "h2": key(2) len(2) | len(1) "h2". Hex for dnsmasq --dns-rr.
SVCB_RDATA_HEX = "0001" + "00" + "0001" + "0003" + "02" + "6832"


def _net_addr(lab, addr):
    plen = 64 if ":" in addr else 24
    extra = " nodad" if ":" in addr else ""
    lab.ip_batch(lab.net, ["addr add %s/%d dev eth0%s" % (addr, plen, extra)])


def _listening(lab, proc, what, needles, files=()):
    def ready():
        if proc.poll() is not None:
            raise L.LabError("%s exited early (%s)" % (what, proc.returncode))
        ss = L.run(["ip", "netns", "exec", lab.net, "ss", "-Hlntu"], check=False).stdout
        return all(n in ss for n in needles) and all(os.path.exists(f) for f in files)
    L.wait_for(ready, 8, what + " to listen")


class Upstream:
    """A dnsmasq in `net` on 203.0.113.54 (and 2001:db8:2::54).

    records: {name: [address, ...]} (A and AAAA by the address's family);
    rrs: [(name, rrtype, hex rdata)] (dnsmasq --dns-rr); ttl: the TTL of
    every answer (dnsmasq --local-ttl)."""

    def __init__(self, lab, records, rrs=(), ttl=60, v6=False, tag="upstream"):
        self.lab = lab
        self.addr4 = UPSTREAM4
        self.addr6 = UPSTREAM6 if v6 else None
        self.log = os.path.join(lab.dir, tag + ".log")
        _net_addr(lab, self.addr4)
        listen = [self.addr4]
        if self.addr6:
            _net_addr(lab, self.addr6)
            listen.append(self.addr6)
        dm = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
              "--no-hosts", "--bind-interfaces", "--user=root", "--group=root",
              "--listen-address=" + ",".join(listen),
              "--pid-file=" + os.path.join(lab.dir, tag + ".pid"),
              "--log-queries", "--log-facility=" + self.log, "--local-ttl=%d" % ttl]
        for name, addrs in records.items():
            for a in addrs:
                dm.append("--host-record=%s,%s" % (name, a))
        for name, rrtype, hexdata in rrs:
            dm.append("--dns-rr=%s,%d,%s" % (name, rrtype, hexdata))
        self.proc = lab.spawn(lab.net, dm, stderr=os.path.join(lab.dir, tag + ".stderr"))
        _listening(lab, self.proc, "dnsmasq " + tag,
                   ["%s:53" % a if ":" not in a else "[%s]:53" % a for a in listen])

    def queries(self):
        """The query lines dnsmasq logged: 'query[A] NAME from ADDR'."""
        try:
            with open(self.log, errors="replace") as f:
                return [line.split(": ", 1)[-1].strip() for line in f if "query[" in line]
        except FileNotFoundError:
            return []


class Sink:
    """A DNS server on 203.0.113.99 that reads every query and never answers."""

    def __init__(self, lab, addr=SINK4):
        self.lab, self.addr = lab, addr
        self.record = os.path.join(lab.dir, "sink.json")
        _net_addr(lab, addr)
        self.proc = lab.spawn(lab.net, [L.PY, os.path.join(HERE, "sink.py"), "--record",
                                        self.record, "--listen", addr],
                              stderr=os.path.join(lab.dir, "sink.stderr"))
        _listening(lab, self.proc, "the DNS sink", ["%s:53" % addr], [self.record])

    def seen(self):
        with open(self.record) as f:
            return json.load(f)


def _sub1(pattern, repl, text, what):
    new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    assert n == 1, "lab.write_conf() changed shape: no %s line in\n%s" % (what, text)
    return new


def write_conf(lab, upstream=None, grace=None, ech=None, metrics=False, **kw):
    """lab.write_conf(**kw), then set [dns] upstream / grace, [tls] ech and
    [metrics] listen in the file it wrote (keys may appear only once)."""
    e = lab.write_conf(**kw)
    with open(e.conf) as f:
        text = f.read()
    if upstream is not None:
        text = _sub1(r"^upstream = .*$", "upstream = " + upstream, text, "[dns] upstream")
    if grace is not None:
        text = _sub1(r"^(deny = .*)$", r"\1\ngrace = %d" % grace, text, "[dns] deny")
    if ech is not None:
        text = _sub1(r"^ech = .*$", "ech = " + ech, text, "[tls] ech")
    if metrics:
        text = _sub1(r"^(\[metrics\]\n)listen =.*$", r"\1listen = " + METRICS, text,
                     "[metrics] listen")
    with open(e.conf, "w") as f:
        f.write(text)
    return e


def metric(lab, name):
    """The value of an unlabelled metric of the running egressd, or None."""
    p = lab.ns_run(lab.fw, ["curl", "-sS", "--noproxy", "*", "--max-time", "2",
                            "http://%s/metrics" % METRICS], timeout=4)
    if p.returncode != 0:
        return None
    m = re.search(r"^%s (\d+(?:\.\d+)?)$" % re.escape(name), p.stdout, re.M)
    return float(m.group(1)) if m else None


def query(lab, server, name, qtype="A", tcp=False, edns=0, timeout=3):
    """query.py in the client namespace; its JSON outcome."""
    args = [L.PY, os.path.join(HERE, "query.py"), "--server", server, "--name", name,
            "--type", str(qtype), "--timeout", str(timeout)]
    if tcp:
        args.append("--tcp")
    if edns:
        args += ["--edns", str(edns)]
    p = lab.ns_run(lab.cli, args, timeout=timeout + 5)
    if p.returncode != 0:
        raise L.LabError("query.py failed: " + p.stderr)
    return json.loads(p.stdout)
