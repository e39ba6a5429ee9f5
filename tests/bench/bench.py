#!/usr/bin/python3
"""egressd end-to-end benchmark on the gateway lab (root only; not part of CI).

One lab (tests/netns/lab.py, gateway mode), one egressd, the same workload in
two phases, interleaved in slices (A B, B A, A B, ...):
  A  no filter: egressd's rules deleted, the gateway namespace only forwards
     (no netfilter rule at all; the daemon stays up, idle: nothing reaches it)
  B  egressd:   `egressd rules --apply --backend xt`, DNS redirected to egressd
Workloads, each bounded in count and time:
  bulk   curl -o /dev/null of a sparse file (default 1 GiB) from nginx over HTTPS, MB/s
  http   the same file over plain HTTP (port 80): egressd inspects every request
         head of such a connection, so the client's segments stay queued, MB/s
  conns  new HTTPS connections per second: full TLS handshake (no resumption) +
         tiny GET, by an allowed name, one python ssl client per core
  dns    sequential UDP lookups of an allowed name to the resolver's address: in A
         dnsmasq answers directly, in B egressd answers (redirected, forwarded)
Prints a table with the ratios B/A and the added DNS latency (p50, p99), the
lab's CPU time per unit of work, egressd's CPU and RSS and the packets it was
queued; --json PATH writes all of it. Timings are not pass/fail; --check exits
1 when a target (bulk >= 0.97, http >= 0.90, conns >= 0.80) is missed. See README.md.

  sudo /usr/bin/python3 tests/bench/bench.py --egressd build/proxy/egressd [--json out.json]

Internal worker modes, run by the benchmark inside the client namespace:
  bench.py _conns ...   bench.py _dns ...
"""
import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import ssl
import statistics
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NETNS = os.path.join(REPO, "tests", "netns")
sys.path.insert(0, NETNS)
sys.path.insert(0, os.path.join(NETNS, "servers"))

NAME = "updates.example.com"     # allowed on 80,443 by lab.DEFAULT_ALLOW
ADDR = "203.0.113.10"
DENIED = "updates.examp1e.com"   # a look-alike: REFUSED by egressd
TARGETS = {"bulk": 0.97, "http": 0.90, "conns": 0.80}


# ---------------------------------------------------------------------------
# Workers (run inside the client namespace; print one JSON object)
# ---------------------------------------------------------------------------

def self_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def conns_loop(args, addr):
    """Sequential new connections until args.max or args.seconds; a result dict."""
    ctx = ssl.create_default_context(cafile=args.cafile)
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
           % (args.path, args.name)).encode()
    cpu0 = self_cpu_s()
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    ok = errors = 0
    lat = []
    first_error = None
    while ok + errors < args.max and time.monotonic() < deadline:
        c0 = time.perf_counter_ns()
        try:
            with socket.create_connection((addr, args.port), timeout=args.timeout) as raw:
                with ctx.wrap_socket(raw, server_hostname=args.name) as s:
                    s.sendall(req)
                    resp = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        resp += chunk
            if not resp.startswith(b"HTTP/1.1 200"):
                raise ValueError("bad response: %r" % resp[:40])
            ok += 1
            lat.append((time.perf_counter_ns() - c0) // 1000)
        except (OSError, ValueError) as e:
            errors += 1
            if first_error is None:
                first_error = "%s: %s" % (type(e).__name__, e)
    return {"ok": ok, "errors": errors, "elapsed": time.monotonic() - t0, "lat_us": lat,
            "cpu_s": self_cpu_s() - cpu0, "first_error": first_error}


def worker_conns(argv):
    ap = argparse.ArgumentParser(prog="bench.py _conns")
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--path", default="/file")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--max", type=int, required=True)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args(argv)
    # Resolve once, through the namespace's resolver (egressd in phase B):
    # the binding lives for the answer's TTL (60 s), longer than a run.
    addr = socket.getaddrinfo(args.name, args.port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    warm, cpu = 0, 0.0
    if args.warmup:  # untimed: nginx and the client warm up
        w = argparse.Namespace(**vars(args))
        w.max, w.seconds = args.warmup, args.timeout * 2
        x = conns_loop(w, addr)
        warm, cpu = x["ok"] + x["errors"], x["cpu_s"]
    per_child = max(1, args.max // args.procs)
    go_r, go_w = os.pipe()
    kids = []
    for _ in range(args.procs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(go_w)
            try:
                a = argparse.Namespace(**vars(args))
                a.max = per_child
                os.read(go_r, 1)  # start barrier
                os.write(w, json.dumps(conns_loop(a, addr)).encode())
                os.close(w)
            finally:
                os._exit(0)
        os.close(w)
        kids.append((pid, r))
    os.close(go_r)
    os.write(go_w, b"g" * args.procs)
    os.close(go_w)
    results = []
    for pid, r in kids:
        data = b""
        while True:
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        if data:
            results.append(json.loads(data))
    if len(results) != args.procs:
        print(json.dumps({"error": "%d of %d clients reported" % (len(results), args.procs)}))
        return 1
    lat = [x for r in results for x in r["lat_us"]]
    ok = sum(r["ok"] for r in results)
    elapsed = max(r["elapsed"] for r in results)
    out = {"addr": addr, "ok": ok, "errors": sum(r["errors"] for r in results),
           "elapsed": elapsed, "per_s": ok / elapsed if elapsed > 0 else 0.0, "lat_us": lat,
           "attempts": warm + sum(r["ok"] + r["errors"] for r in results),
           "cpu_s": cpu + sum(r["cpu_s"] for r in results),
           "first_error": next((r["first_error"] for r in results if r["first_error"]), None)}
    if lat:
        out.update(p50_us=pct(lat, 50), p99_us=pct(lat, 99))
    print(json.dumps(out))
    return 0


def worker_dns(argv):
    import dnsmsg
    ap = argparse.ArgumentParser(prog="bench.py _dns")
    ap.add_argument("--server", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=1.0)
    args = ap.parse_args(argv)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((args.server, 53))
    lat = []
    ok = errors = 0
    first_error = None
    cpu0 = self_cpu_s()
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    i = 0
    while i < args.count + args.warmup and time.monotonic() < deadline:
        i += 1
        qid = random.randrange(65536)
        msg = dnsmsg.build_query(qid, [(args.name, "A", "IN")])
        c0 = time.perf_counter_ns()
        try:
            s.settimeout(args.timeout)
            s.send(msg)
            end = time.monotonic() + args.timeout
            while True:
                resp = s.recv(4096)
                if len(resp) >= 12 and struct.unpack("!H", resp[:2])[0] == qid:
                    break
                if time.monotonic() > end:
                    raise socket.timeout("no answer with our id")
            us = (time.perf_counter_ns() - c0) // 1000
            rcode = resp[3] & 0x0F
            ancount = struct.unpack("!H", resp[6:8])[0]
            if rcode != 0 or ancount == 0:
                raise ValueError("rcode %d, %d answers" % (rcode, ancount))
        except (OSError, ValueError) as e:
            errors += 1
            if first_error is None:
                first_error = "%s: %s" % (type(e).__name__, e)
            continue
        if i > args.warmup:
            ok += 1
            lat.append(us)
    out = {"ok": ok, "errors": errors, "elapsed": time.monotonic() - t0, "lat_us": lat,
           "attempts": i, "cpu_s": self_cpu_s() - cpu0, "first_error": first_error}
    if lat:
        out.update(p50_us=pct(lat, 50), p99_us=pct(lat, 99), mean_us=statistics.mean(lat))
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------
# Probes: egressd's CPU and memory, the machine's CPU, the queue counters
# ---------------------------------------------------------------------------

def proc_cpu_s(pid):
    """CPU time of all threads of pid, in seconds, to the nanosecond (None if gone).

    /proc/PID/task/TID/schedstat starts with the time on CPU in ns; /proc/PID/stat
    would give the same in 10 ms steps, too coarse for a short DNS slice."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass  # a thread that just exited
    return total / 1e9


def proc_mem_kib(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def system_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v), idle


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rusage_children_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Probe:
    """Over one workload: egressd's CPU, the machine's CPU, egressd's queue
    counter, and the lab's CPU time: the clients (curl, the workers: our
    reaped children), nginx, dnsmasq and egressd. This kernel charges softirq
    time (forwarding, netfilter, veth) to the task it interrupts, so the
    lab's CPU time per unit of work holds up better than throughput when
    other work shares the machine."""

    def __init__(self, bench):
        self.b = bench

    def _lab_cpu(self):
        return {pid: proc_cpu_s(pid) for pid in self.pids}

    def __enter__(self):
        self.q0 = self.b.queued_packets()
        lab = self.b.lab
        self.egressd = self.b.egressd_pid()
        self.pids = [lab.nginx.pid, lab.dnsmasq.pid] + children(lab.nginx.pid)
        if self.egressd:
            self.pids.append(self.egressd)
        self.ru0 = rusage_children_s()
        self.cpu0 = self._lab_cpu()
        self.sys0 = system_cpu()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t0
        tot, idle = system_cpu()
        cpu1 = self._lab_cpu()
        ru1 = rusage_children_s()
        dt = tot - self.sys0[0]
        r = self.result = {"wall_s": round(wall, 4),
                           "machine_cpu_busy_pct": round(100.0 * (dt - (idle - self.sys0[1])) / dt, 1)
                           if dt > 0 else None}
        servers = sum(cpu1[p] - self.cpu0[p] for p in self.pids
                      if cpu1[p] is not None and self.cpu0[p] is not None)
        r["servers_cpu_s"] = servers
        r["clients_cpu_s"] = ru1 - self.ru0
        r["lab_cpu_s"] = r["servers_cpu_s"] + r["clients_cpu_s"]
        if self.egressd and cpu1[self.egressd] is not None and wall > 0:
            e = cpu1[self.egressd] - self.cpu0[self.egressd]
            r["egressd_cpu_s"] = e
        q1 = self.b.queued_packets()
        if self.q0 is not None and q1 is not None:
            r["queued_packets"] = q1 - self.q0
        return False


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------

class Bench:
    """One lab, one egressd; phases switched by applying / deleting its rules.

    Each workload's budget is cut into slices run A B, B A, A B, ...: a
    neighbour's load on this shared machine lands on both phases alike.
    In phase A the daemon stays up, idle (nothing reaches it: no queue rule,
    no DNS redirect); its CPU is measured there too, to show it."""

    def __init__(self, args, lab):
        self.args, self.lab = args, lab
        self.e = None
        self.applied = False

    def egressd_pid(self):
        if self.e is None or not self.e.running():
            return None
        return self.e.proc.pid  # `ip netns exec` execs egressd: same pid

    def queued_packets(self):
        """Sum of id_sequence over the gateway's queues (packets handed to egressd)."""
        p = self.lab.ns_run(self.lab.fw, ["cat", "/proc/net/netfilter/nfnetlink_queue"])
        if p.returncode != 0:
            return None
        total = 0
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) >= 8:
                total += int(f[7])
        return total

    # -- phases ----------------------------------------------------------
    def start(self):
        lab = self.lab
        self.e = lab.write_conf(level=self.args.log_level)
        self.e.start(backend="xt")
        self.applied = True
        pid = self.e.proc.pid
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read().strip()
        if comm != "egressd":
            raise BenchError("pid %d is %r, not egressd" % (pid, comm))

    def phase(self, name):
        if name == "baseline":
            if self.applied:
                p = self.e.delete()
                if p.returncode != 0:
                    raise BenchError("egressd rules --delete failed: " + p.stdout + p.stderr)
                self.applied = False
            p = self.lab.ns_run(self.lab.fw, ["nft", "list", "tables"])
            if p.returncode != 0 or p.stdout.strip():
                raise BenchError("phase A wants no rules in the gateway, found: %r%s"
                                 % (p.stdout, p.stderr))
        else:
            if not self.applied:
                p = self.e.apply("xt")
                if p.returncode != 0:
                    raise BenchError("egressd rules --apply failed: " + p.stdout + p.stderr)
                self.applied = True
            if not self.e.running():
                raise BenchError("egressd exited (%s):\n%s" % (self.e.proc.returncode,
                                                               self.e.tail()))
            # The DNS redirect is in place: a look-alike is refused by egressd.
            r = self.lab.dnsq(L.RESOLVER4, DENIED + "/A")
            if r.get("rcode") != "REFUSED":
                raise BenchError("egressd did not refuse %s: %s" % (DENIED, r))

    def stop(self):
        mem = proc_mem_kib(self.e.proc.pid)
        rc = self.e.stop()
        if self.applied:
            self.e.delete()
            self.applied = False
        if rc not in (0, None):
            raise BenchError("egressd exited with %s" % rc)
        return mem

    # -- one slice of each workload ------------------------------------
    def bulk(self, scheme="https"):
        a = self.args
        with Probe(self) as pr:
            p = self.lab.curl("%s://%s/bulk.bin" % (scheme, NAME), "-o", "/dev/null", "-w",
                              "%{http_code} %{size_download} %{time_total} %{time_appconnect}",
                              timeout=a.bulk_timeout)
        f = p.stdout.split()
        if p.returncode != 0 or len(f) != 4 or f[0] != "200" or int(f[1]) != self.bulk_size:
            raise BenchError("bulk download failed (%s): %s %s"
                             % (p.returncode, p.stdout, p.stderr))
        size, total = int(f[1]), float(f[2])
        r = {"bytes": size, "seconds": total, "mb_s": size / total / 1e6,
             "tls_setup_s": float(f[3])}
        r.update(pr.result)
        return r

    def http(self):
        return self.bulk("http")

    def worker(self, args, timeout):
        with Probe(self) as pr:
            p = self.lab.ns_run(self.lab.cli, [L.PY, os.path.abspath(__file__)] + args,
                                timeout=timeout)
        try:
            r = json.loads(p.stdout)
        except ValueError:
            raise BenchError("%s client failed (%s): %s %s"
                             % (args[0], p.returncode, p.stdout, p.stderr))
        if "error" in r or r["ok"] == 0:
            raise BenchError("%s client: %s" % (args[0], json.dumps(r)[:2000]))
        r.update(pr.result)
        # The client's CPU as the worker measured it: its loop, not its start-up.
        r["clients_cpu_s"] = r.pop("cpu_s")
        r["lab_cpu_s"] = r["servers_cpu_s"] + r["clients_cpu_s"]
        return r

    def conns(self):
        a = self.args
        secs = a.conns_seconds / a.slices
        r = self.worker(["_conns", "--name", NAME, "--cafile", self.lab.ca["ca"],
                         "--seconds", "%.3f" % secs, "--max", str(max(1, a.conns_max // a.slices)),
                         "--procs", str(a.conns_procs)], timeout=secs + 30)
        if r["addr"] != ADDR:
            raise BenchError("%s resolved to %s" % (NAME, r["addr"]))
        return r

    def dns(self):
        a = self.args
        secs = a.dns_seconds / a.slices
        return self.worker(["_dns", "--server", L.RESOLVER4, "--name", NAME,
                            "--count", str(max(1, a.dns_count // a.slices)),
                            "--seconds", "%.3f" % secs], timeout=secs + 20)

    def run(self):
        a = self.args
        lab = self.lab
        # A large sparse file next to the lab's small ones: reads cost no disk.
        self.bulk_size = a.bulk_mib << 20
        path = os.path.join(lab.dir, "www", "updates", "bulk.bin")
        with open(path, "wb") as f:
            f.truncate(self.bulk_size)
        if "bulk" in a.only or "http" in a.only:  # into the page cache before the first timed download
            with open(path, "rb", buffering=0) as f:
                buf = bytearray(1 << 20)
                while f.readinto(buf):
                    pass
        # Many short connections from one address: widen the ephemeral range.
        lab.sysctl(lab.cli, "net.ipv4.ip_local_port_range=1024 65000")
        res = {w: {"baseline": [], "egressd": []} for w in a.only}
        self.start()
        try:
            for w in a.only:
                n = a.bulk_runs if w in ("bulk", "http") else a.slices
                for i in range(n):
                    order = ("baseline", "egressd") if i % 2 == 0 else ("egressd", "baseline")
                    for ph in order:
                        log("%s %d/%d %s" % (w, i + 1, n, ph))
                        self.phase(ph)
                        res[w][ph].append(getattr(self, w)())
        finally:
            mem = self.stop()
        return res, mem


class BenchError(Exception):
    pass


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------

def _egressd_cpu(w, slices):
    """egressd's CPU over the slices: per unit of work, and % of one core while timed."""
    cpu = sum(x.get("egressd_cpu_s", 0.0) for x in slices)
    if w in ("bulk", "http"):
        per = cpu / sum(x["bytes"] for x in slices) * 1e9
        busy = cpu / sum(x["seconds"] for x in slices)
        return {"ms_per_gb": per * 1e3, "pct_of_core": round(100 * busy, 1)}
    per = cpu / sum(x["attempts"] for x in slices)
    timed = sum(x["ok"] + x["errors"] for x in slices)
    busy = per * timed / sum(x["elapsed"] for x in slices)
    return {"us_per_op": per * 1e6, "pct_of_core": round(100 * busy, 1)}


def _pool(slices):
    """Totals over the slices of a worker workload; latencies pooled."""
    lat = [x for s in slices for x in s.get("lat_us", [])]
    ok = sum(s["ok"] for s in slices)
    out = {"ok": ok, "errors": sum(s["errors"] for s in slices),
           "elapsed": sum(s["elapsed"] for s in slices),
           "queued_packets": sum(s.get("queued_packets", 0) for s in slices),
           "first_error": next((s["first_error"] for s in slices if s.get("first_error")), None)}
    if lat:
        out.update(p50_us=pct(lat, 50), p99_us=pct(lat, 99))
    return out


def _cpu_per(slices, unit):
    n = sum(x[unit] for x in slices)
    return sum(x["lab_cpu_s"] for x in slices) / n if n else None


def summarize(res, mem, args):
    s = {"egressd_mem_kib": mem}
    # The lab's CPU time per unit of work, A/B: 1.0 = egressd costs nothing.
    for w, unit, scale, label in (("bulk", "bytes", 1e12, "lab CPU ms per GB"),
                                  ("http", "bytes", 1e12, "lab CPU ms per GB (HTTP)"),
                                  ("conns", "attempts", 1e6, "lab CPU µs per connection"),
                                  ("dns", "attempts", 1e6, "lab CPU µs per lookup")):
        if w in res:
            a, b = _cpu_per(res[w]["baseline"], unit), _cpu_per(res[w]["egressd"], unit)
            s.setdefault("lab_cpu", {})[w] = {
                "unit": label, "baseline": a * scale if a else None,
                "egressd": b * scale if b else None, "efficiency": a / b if a and b else None}
    s["egressd_cpu"] = {w: {ph: _egressd_cpu(w, res[w][ph]) for ph in res[w]} for w in res}
    pair = {}
    for w in ("bulk", "http"):
        if w not in res:
            continue
        a = [x["mb_s"] for x in res[w]["baseline"]]
        b = [x["mb_s"] for x in res[w]["egressd"]]
        s[w] = {"unit": "MB/s (median of downloads)", "baseline": statistics.median(a),
                "egressd": statistics.median(b),
                "queued_packets_per_download": statistics.median(
                    x.get("queued_packets", 0) for x in res[w]["egressd"])}
        pair[w] = [y / x for x, y in zip(a, b)]
    if "conns" in res:
        pa, pb = _pool(res["conns"]["baseline"]), _pool(res["conns"]["egressd"])
        s["conns"] = {"unit": "connections/s (total ok / total time)",
                      "baseline": pa["ok"] / pa["elapsed"], "egressd": pb["ok"] / pb["elapsed"],
                      "pooled": {"baseline": pa, "egressd": pb},
                      "queued_packets_per_conn": pb["queued_packets"] / max(1, pb["ok"]
                                                                             + pb["errors"])}
        pair["conns"] = [y["per_s"] / x["per_s"]
                         for x, y in zip(res["conns"]["baseline"], res["conns"]["egressd"])]
    for w in ("bulk", "http", "conns"):
        if w in s:
            x = s[w]
            x["ratio"] = x["egressd"] / x["baseline"]
            x["target"] = TARGETS[w]
            x["met"] = x["ratio"] >= TARGETS[w]
            x["slice_ratio_min"], x["slice_ratio_max"] = min(pair[w]), max(pair[w])
    if "dns" in res:
        pa, pb = _pool(res["dns"]["baseline"]), _pool(res["dns"]["egressd"])
        s["dns"] = {"unit": "µs per lookup", "pooled": {"baseline": pa, "egressd": pb}}
        for p in ("p50_us", "p99_us"):
            s["dns"][p] = {"baseline": pa[p], "egressd": pb[p], "added_us": pb[p] - pa[p]}
    return s


def table(s):
    lines = []
    fmt = "%-24s %11s %11s %9s  %s"
    lines.append(fmt % ("workload", "no filter", "egressd", "B/A", "target (B/A range over slices)"))
    for w, label, f in (("bulk", "bulk HTTPS MB/s", "%.1f"), ("http", "bulk HTTP MB/s", "%.1f"),
                        ("conns", "new HTTPS conns/s", "%.0f")):
        if w in s:
            x = s[w]
            lines.append(fmt % (label, f % x["baseline"], f % x["egressd"], "%.3f" % x["ratio"],
                                ">= %.2f %s (%.2f..%.2f)" % (x["target"],
                                                             "ok" if x["met"] else "MISSED",
                                                             x["slice_ratio_min"],
                                                             x["slice_ratio_max"])))
    if "conns" in s:
        pa, pb = s["conns"]["pooled"]["baseline"], s["conns"]["pooled"]["egressd"]
        for p in ("p50_us", "p99_us"):
            lines.append(fmt % ("  per conn %s µs" % p[:3], pa[p], pb[p], "%+d" % (pb[p] - pa[p]),
                                ""))
    if "dns" in s:
        for p in ("p50_us", "p99_us"):
            x = s["dns"][p]
            lines.append(fmt % ("DNS lookup %s µs" % p[:3], x["baseline"], x["egressd"],
                                "%+d" % x["added_us"], "added latency"))
    for w, x in s.get("lab_cpu", {}).items():
        if x["efficiency"]:
            lines.append(fmt % (x["unit"], "%.1f" % x["baseline"], "%.1f" % x["egressd"],
                                "%.3f" % x["efficiency"], "A/B: CPU efficiency"))
    lines.append("")
    m = s.get("egressd_mem_kib") or {}
    if m.get("VmRSS"):
        lines.append("egressd memory at the end: VmRSS %.1f MiB, VmHWM (peak) %.1f MiB"
                     % (m["VmRSS"] / 1024.0, m.get("VmHWM", 0) / 1024.0))
    cpu, q = [], []
    for w, x in s["egressd_cpu"].items():
        b, a = x["egressd"], x["baseline"]
        if w in ("bulk", "http"):
            cpu.append("%s %.1f ms/GB, %.1f%% (A: %.1f%%)"
                       % (w, b["ms_per_gb"], b["pct_of_core"], a["pct_of_core"]))
        else:
            cpu.append("%s %.0f µs/%s, %.1f%% (A: %.1f%%)"
                       % (w, b["us_per_op"], "conn" if w == "conns" else "lookup",
                          b["pct_of_core"], a["pct_of_core"]))
    for w in ("bulk", "http"):
        if w in s:
            q.append("%s %g per download" % (w, s[w]["queued_packets_per_download"]))
    if "conns" in s:
        q.append("conns %.2f per connection" % s["conns"]["queued_packets_per_conn"])
    if "dns" in s:
        q.append("dns %d (answered by the listener, not queued)"
                 % s["dns"]["pooled"]["egressd"]["queued_packets"])
    if cpu:
        lines.append("egressd CPU (of one core while timed): %s" % "; ".join(cpu))
    if q:
        lines.append("packets queued to egressd: " + ", ".join(q))
    for w in ("conns", "dns"):
        for ph in ("baseline", "egressd"):
            if w in s and s[w]["pooled"][ph]["errors"]:
                x = s[w]["pooled"][ph]
                lines.append("WARNING %s %s: %d errors (first: %s)"
                             % (ph, w, x["errors"], x["first_error"]))
    return "\n".join(lines)


def binary_info(path):
    info = {"path": path}
    try:
        with open(path, "rb") as f:
            data = f.read()
        info["asan"] = b"__asan_init" in data
        info["ubsan"] = b"__ubsan_handle" in data
    except OSError as e:
        raise SystemExit("bench: cannot read %s: %s" % (path, e))
    return info


def main(argv):
    if argv and argv[0] == "_conns":
        return worker_conns(argv[1:])
    if argv and argv[0] == "_dns":
        return worker_dns(argv[1:])
    ap = argparse.ArgumentParser(description="egressd vs no filter on the gateway lab")
    ap.add_argument("--egressd", help="the binary (default: $EGRESSD_BIN, else build/proxy/egressd)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--only", default="bulk,http,conns,dns",
                    help="workloads (bulk,http,conns,dns)")
    ap.add_argument("--slices", type=int, default=5,
                    help="conns and dns budgets are cut into this many A/B slices (5)")
    ap.add_argument("--bulk-mib", type=int, default=1024, help="bulk file size (1024 MiB)")
    ap.add_argument("--bulk-runs", type=int, default=3, help="downloads per phase (3)")
    ap.add_argument("--bulk-timeout", type=int, default=120, help="per download (120 s)")
    ap.add_argument("--conns-seconds", type=float, default=10.0, help="per phase (10 s)")
    ap.add_argument("--conns-max", type=int, default=3000, help="per phase (3000)")
    ap.add_argument("--conns-procs", type=int, default=os.cpu_count() or 2,
                    help="parallel clients (one per core)")
    ap.add_argument("--dns-count", type=int, default=2000, help="per phase (2000)")
    ap.add_argument("--dns-seconds", type=float, default=30.0, help="per phase (30 s)")
    ap.add_argument("--log-level", choices=("deny", "all"), default="deny",
                    help="egressd's [log] level (the daemon's default: deny)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    args.only = [w for w in args.only.split(",") if w]
    bad = [w for w in args.only if w not in ("bulk", "http", "conns", "dns")]
    if bad or not args.only:
        ap.error("--only: unknown workload(s) %s" % bad)
    for n, lo, hi in (("slices", 1, 50), ("bulk_mib", 1, 8192), ("bulk_runs", 1, 20),
                      ("bulk_timeout", 1, 600), ("conns_max", 1, 20000), ("conns_procs", 1, 16),
                      ("dns_count", 1, 100000)):
        if not lo <= getattr(args, n) <= hi:
            ap.error("--%s must be in %d..%d" % (n.replace("_", "-"), lo, hi))
    if not 0 < args.conns_seconds <= 120 or not 0 < args.dns_seconds <= 300:
        ap.error("--conns-seconds must be in (0, 120], --dns-seconds in (0, 300]")
    if os.geteuid() != 0:
        raise SystemExit("bench: needs root (network namespaces)")
    if args.egressd:
        os.environ["EGRESSD_BIN"] = os.path.abspath(args.egressd)

    global L
    import lab as L
    binfo = binary_info(L.egressd_bin())
    if binfo["asan"] or binfo["ubsan"]:
        log("WARNING: %s is a sanitizer build; numbers will not be representative" % binfo["path"])
    L.reap_stale()
    load0 = os.getloadavg()
    # SIGTERM unwinds through the finally below like SIGINT: namespaces deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="egressd-bench-")
    lab = None
    try:
        ca = L.make_ca(os.path.join(work, "ca"))
        os.makedirs(os.path.join(work, "lab"))
        lab = L.Lab(os.path.join(work, "lab"), ca, mode="gateway").up()
        res, mem = Bench(args, lab).run()
    except (BenchError, L.LabError, TimeoutError) as e:
        raise SystemExit("bench: %s" % e)
    finally:
        if lab is not None:
            lab.close()
        L.cleanup_prefix()
        if args.keep:
            log("work directory kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    s = summarize(res, mem, args)
    print(table(s))
    print("machine: %d cores, load average %.2f before, %.2f after (other work skews the numbers)"
          % (os.cpu_count(), load0[0], os.getloadavg()[0]))
    if args.json:
        for w in res.values():  # the pooled percentiles are in the summary
            for slices in w.values():
                for x in slices:
                    x.pop("lat_us", None)
        meta = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "kernel": os.uname().release, "cpus": os.cpu_count(), "binary": binfo,
                "loadavg_before": load0, "loadavg_after": os.getloadavg(),
                "args": {k: v for k, v in vars(args).items() if k != "json"}}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "summary": s, "slices": res}, f, indent=1)
            f.write("\n")
    missed = [w for w in ("bulk", "http", "conns") if w in s and not s[w]["met"]]
    return 1 if args.check and missed else 0


L = None

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
