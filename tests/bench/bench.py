#!/usr/bin/python3
"""egressd end-to-end benchmark on the gateway lab (root only; not part of CI).

Same lab, same workload, twice per round:
  A  no filter: the gateway namespace only forwards (no netfilter rules at all)
  B  egressd:   `egressd rules --apply --backend xt` + the daemon
Workloads, each bounded in count and time:
  bulk   curl -o /dev/null of a sparse file (default 1 GiB) from nginx over HTTPS, MB/s
  conns  new HTTPS connections per second: full TLS handshake + tiny GET, no
         session resumption, by an allowed name (python ssl clients, one per core)
  dns    sequential UDP lookups of an allowed name to the resolver address: in A
         they reach dnsmasq directly, in B they are redirected to egressd, which
         forwards them; latency p50/p99 in microseconds
Prints a table with the ratios B/A (and the added DNS latency), egressd's RSS,
its CPU use per workload and the packets it was queued; --json PATH writes the
same as JSON. Timings are not pass/fail; --check exits 1 when a target is missed.

  sudo EGRESSD_BIN=/work/build/proxy/egressd /usr/bin/python3 tests/bench/bench.py [--json out.json]

Internal worker modes, run by the benchmark inside the client namespace:
  bench.py _conns ...   bench.py _dns ...
"""
import argparse
import json
import os
import random
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
TARGETS = {"bulk": 0.97, "conns": 0.80}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# Workers (run inside the client namespace; print one JSON object)
# ---------------------------------------------------------------------------

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
            "first_error": first_error}


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
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args(argv)
    # Resolve once, through the namespace's resolver (egressd in phase B):
    # the binding lives for the answer's TTL (60 s), longer than a run.
    addr = socket.getaddrinfo(args.name, args.port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    if args.warmup:  # untimed: nginx and the client warm up
        w = argparse.Namespace(**vars(args))
        w.max, w.seconds = args.warmup, args.timeout * 2
        conns_loop(w, addr)
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
           "elapsed": elapsed, "per_s": ok / elapsed if elapsed > 0 else 0.0,
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
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=1.0)
    args = ap.parse_args(argv)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((args.server, 53))
    lat = []
    ok = errors = 0
    first_error = None
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
    out = {"ok": ok, "errors": errors, "elapsed": time.monotonic() - t0, "first_error": first_error}
    if lat:
        out.update(p50_us=pct(lat, 50), p99_us=pct(lat, 99), mean_us=statistics.mean(lat))
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------------------
# Probes: egressd's CPU and memory, the machine's CPU, the queue counters
# ---------------------------------------------------------------------------

def proc_ticks(pid):
    """utime + stime of pid in clock ticks (None if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])  # fields 14 and 15
    except (OSError, IndexError, ValueError):
        return None


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


class Probe:
    """CPU of egressd and of the machine, and egressd's queue counter, over one workload."""

    def __init__(self, bench):
        self.b = bench

    def __enter__(self):
        self.t0 = time.monotonic()
        self.sys0 = system_cpu()
        self.pid = self.b.egressd_pid()
        self.tk0 = proc_ticks(self.pid) if self.pid else None
        self.q0 = self.b.queued_packets()
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t0
        tot, idle = system_cpu()
        dt = tot - self.sys0[0]
        self.result = {"wall_s": round(wall, 3),
                       "machine_cpu_busy_pct": round(100.0 * (dt - (idle - self.sys0[1])) / dt, 1)
                       if dt > 0 else None}
        if self.tk0 is not None:
            tk1 = proc_ticks(self.pid)
            if tk1 is not None and wall > 0:
                self.result["egressd_cpu_pct"] = round(100.0 * (tk1 - self.tk0) / CLK_TCK / wall, 1)
        q1 = self.b.queued_packets()
        if self.q0 is not None and q1 is not None:
            self.result["queued_packets"] = q1 - self.q0
        return False


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args, lab):
        self.args, self.lab = args, lab
        self.e = None

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
    def start_filter(self):
        lab = self.lab
        self.e = lab.write_conf(level=self.args.log_level)
        self.e.start(backend="xt")
        pid = self.e.proc.pid
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read().strip()
        if comm != "egressd":
            raise SystemExit("bench: pid %d is %r, not egressd" % (pid, comm))
        # The DNS redirect is in place: a look-alike is refused by egressd.
        r = lab.dnsq(L.RESOLVER4, DENIED + "/A")
        if r.get("rcode") != "REFUSED":
            raise SystemExit("bench: egressd did not refuse %s: %s" % (DENIED, r))

    def stop_filter(self):
        mem = proc_mem_kib(self.e.proc.pid)
        rc = self.e.stop()
        p = self.e.delete()
        if p.returncode != 0:
            raise SystemExit("bench: egressd rules --delete failed: " + p.stdout + p.stderr)
        self.e = None
        if rc not in (0, None):
            raise SystemExit("bench: egressd exited with %s" % rc)
        return mem

    def assert_no_rules(self):
        p = self.lab.ns_run(self.lab.fw, ["nft", "list", "tables"])
        if p.returncode != 0 or p.stdout.strip():
            raise SystemExit("bench: phase A wants no rules in the gateway, found: %r%s"
                             % (p.stdout, p.stderr))

    # -- workloads -------------------------------------------------------
    def bulk(self):
        a = self.args
        runs = []
        url = "https://%s/bulk.bin" % NAME
        for _ in range(a.bulk_runs):
            with Probe(self) as pr:
                p = self.lab.curl(url, "-o", "/dev/null", "-w",
                                  "%{http_code} %{size_download} %{time_total} %{time_appconnect}",
                                  timeout=a.bulk_timeout)
            f = p.stdout.split()
            if p.returncode != 0 or len(f) != 4 or f[0] != "200" or int(f[1]) != self.bulk_size:
                raise SystemExit("bench: bulk download failed (%s): %s %s"
                                 % (p.returncode, p.stdout, p.stderr))
            size, total, appconnect = int(f[1]), float(f[2]), float(f[3])
            run = {"bytes": size, "seconds": total, "mb_s": size / total / 1e6,
                   "tls_setup_s": appconnect}
            run.update(pr.result)
            runs.append(run)
        return {"mb_s": statistics.median(r["mb_s"] for r in runs), "runs": runs}

    def conns(self):
        a = self.args
        with Probe(self) as pr:
            p = self.lab.ns_run(self.lab.cli, [L.PY, os.path.abspath(__file__), "_conns",
                                "--name", NAME, "--cafile", self.lab.ca["ca"],
                                "--seconds", str(a.conns_seconds), "--max", str(a.conns_max),
                                "--procs", str(a.conns_procs)],
                                timeout=a.conns_seconds + 30)
        try:
            r = json.loads(p.stdout)
        except ValueError:
            raise SystemExit("bench: connection client failed (%s): %s %s"
                             % (p.returncode, p.stdout, p.stderr))
        if "error" in r or r["ok"] == 0 or r["addr"] != ADDR:
            raise SystemExit("bench: connection client: %s" % json.dumps(r))
        r.update(pr.result)
        if "queued_packets" in r:
            r["queued_per_conn"] = round(r["queued_packets"] / max(1, r["ok"] + r["errors"]), 2)
        return r

    def dns(self):
        a = self.args
        with Probe(self) as pr:
            p = self.lab.ns_run(self.lab.cli, [L.PY, os.path.abspath(__file__), "_dns",
                                "--server", L.RESOLVER4, "--name", NAME,
                                "--count", str(a.dns_count), "--seconds", str(a.dns_seconds)],
                                timeout=a.dns_seconds + 20)
        try:
            r = json.loads(p.stdout)
        except ValueError:
            raise SystemExit("bench: DNS client failed (%s): %s %s"
                             % (p.returncode, p.stdout, p.stderr))
        if r["ok"] == 0:
            raise SystemExit("bench: DNS client: %s" % json.dumps(r))
        r.update(pr.result)
        return r

    def workloads(self):
        out = {}
        sel = self.args.only
        if "bulk" in sel:
            out["bulk"] = self.bulk()
        if "conns" in sel:
            out["conns"] = self.conns()
        if "dns" in sel:
            out["dns"] = self.dns()
        return out

    def run(self):
        a = self.args
        lab = self.lab
        # A large sparse file next to the lab's small ones: reads cost no disk.
        self.bulk_size = a.bulk_mib << 20
        path = os.path.join(lab.dir, "www", "updates", "bulk.bin")
        with open(path, "wb") as f:
            f.truncate(self.bulk_size)
        if "bulk" in a.only:  # into the page cache before the first timed download
            with open(path, "rb", buffering=0) as f:
                buf = bytearray(1 << 20)
                while f.readinto(buf):
                    pass
        # Many short connections from one address: widen the ephemeral range.
        lab.sysctl(lab.cli, "net.ipv4.ip_local_port_range=1024 65000")
        rounds = []
        for i in range(a.rounds):
            rnd = {}
            # A B, then B A, ...: neither phase always runs first.
            order = ("baseline", "egressd") if i % 2 == 0 else ("egressd", "baseline")
            for phase in order:
                log("round %d/%d, %s" % (i + 1, a.rounds, phase))
                if phase == "baseline":
                    self.assert_no_rules()
                    rnd[phase] = self.workloads()
                else:
                    self.start_filter()
                    try:
                        rnd[phase] = self.workloads()
                    finally:
                        rnd[phase]["egressd_mem_kib"] = self.stop_filter()
            rounds.append(rnd)
        return rounds


def log(msg):
    print("[bench] " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------

def med(rounds, phase, *path):
    vals = []
    for r in rounds:
        v = r[phase]
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if v is not None:
            vals.append(v)
    return statistics.median(vals) if vals else None


def summarize(rounds, args):
    s = {}
    for w, key in (("bulk", "mb_s"), ("conns", "per_s")):
        if w in args.only:
            a, b = med(rounds, "baseline", w, key), med(rounds, "egressd", w, key)
            s[w] = {"baseline": a, "egressd": b, "ratio": b / a if a else None,
                    "target": TARGETS[w]}
            s[w]["met"] = s[w]["ratio"] is not None and s[w]["ratio"] >= TARGETS[w]
    if "dns" in args.only:
        for p in ("p50_us", "p99_us"):
            a, b = med(rounds, "baseline", "dns", p), med(rounds, "egressd", "dns", p)
            s["dns_" + p] = {"baseline": a, "egressd": b, "added_us": b - a}
    rss = [r["egressd"]["egressd_mem_kib"].get("VmRSS") for r in rounds]
    hwm = [r["egressd"]["egressd_mem_kib"].get("VmHWM") for r in rounds]
    s["egressd_rss_kib"] = max((x for x in rss if x), default=None)
    s["egressd_hwm_kib"] = max((x for x in hwm if x), default=None)
    cpu = {}
    for w in args.only:
        if w == "bulk":
            vals = [x.get("egressd_cpu_pct") for r in rounds for x in r["egressd"]["bulk"]["runs"]]
            vals = [v for v in vals if v is not None]
            cpu[w] = statistics.median(vals) if vals else None
        else:
            cpu[w] = med(rounds, "egressd", w, "egressd_cpu_pct")
    s["egressd_cpu_pct"] = cpu
    return s


def table(s, rounds, args):
    lines = []
    fmt = "%-26s %12s %12s %10s  %s"
    lines.append(fmt % ("workload (median of %d)" % len(rounds), "no filter", "egressd",
                        "B/A", "target"))
    if "bulk" in s:
        x = s["bulk"]
        lines.append(fmt % ("bulk HTTPS MB/s", "%.1f" % x["baseline"], "%.1f" % x["egressd"],
                            "%.3f" % x["ratio"], ">= %.2f %s" % (x["target"],
                                                                  "ok" if x["met"] else "MISSED")))
    if "conns" in s:
        x = s["conns"]
        lines.append(fmt % ("new HTTPS conns/s", "%.0f" % x["baseline"], "%.0f" % x["egressd"],
                            "%.3f" % x["ratio"], ">= %.2f %s" % (x["target"],
                                                                  "ok" if x["met"] else "MISSED")))
        for p in ("p50_us", "p99_us"):
            a, b = med(rounds, "baseline", "conns", p), med(rounds, "egressd", "conns", p)
            if a and b:
                lines.append(fmt % ("  per conn %s µs" % p[:3], "%.0f" % a, "%.0f" % b,
                                    "%+.0f" % (b - a), ""))
    for p in ("p50_us", "p99_us"):
        k = "dns_" + p
        if k in s:
            x = s[k]
            lines.append(fmt % ("DNS lookup %s µs" % p[:3], "%.0f" % x["baseline"],
                                "%.0f" % x["egressd"], "%+.0f" % x["added_us"], "added latency"))
    lines.append("")
    if s.get("egressd_rss_kib"):
        lines.append("egressd memory: VmRSS %.1f MiB at stop, VmHWM %.1f MiB"
                     % (s["egressd_rss_kib"] / 1024.0, s["egressd_hwm_kib"] / 1024.0))
    cpu = ", ".join("%s %s%%" % (w, v) for w, v in s["egressd_cpu_pct"].items() if v is not None)
    if cpu:
        lines.append("egressd CPU (%% of one core, over each workload): %s" % cpu)
    q = []
    for w in ("bulk", "conns", "dns"):
        if w in args.only:
            r = rounds[-1]["egressd"][w]
            v = r["runs"][-1].get("queued_packets") if w == "bulk" else r.get("queued_packets")
            if v is not None:
                q.append("%s %d" % (w, v))
    if q:
        lines.append("packets queued to egressd (last round; bulk: one download): " + ", ".join(q))
    busy = []
    for w in ("bulk", "conns", "dns"):
        if w in args.only:
            for ph in ("baseline", "egressd"):
                r = rounds[-1][ph][w]
                v = r["runs"][-1] if w == "bulk" else r
                busy.append("%s/%s %s%%" % (w, "A" if ph == "baseline" else "B",
                                            v.get("machine_cpu_busy_pct")))
    lines.append("machine CPU busy (%d cores, last round): %s" % (os.cpu_count(), ", ".join(busy)))
    errs = []
    for r in rounds:
        for ph in ("baseline", "egressd"):
            for w in ("conns", "dns"):
                if w in r[ph] and r[ph][w].get("errors"):
                    errs.append("%s %s: %d errors (first: %s)" % (ph, w, r[ph][w]["errors"],
                                                                   r[ph][w].get("first_error")))
    for e in errs:
        lines.append("WARNING " + e)
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
    ap.add_argument("--rounds", type=int, default=1, help="A/B rounds, medians reported (1)")
    ap.add_argument("--only", default="bulk,conns,dns", help="workloads (bulk,conns,dns)")
    ap.add_argument("--bulk-mib", type=int, default=1024, help="bulk file size (1024 MiB)")
    ap.add_argument("--bulk-runs", type=int, default=3, help="downloads per phase (3)")
    ap.add_argument("--bulk-timeout", type=int, default=120)
    ap.add_argument("--conns-seconds", type=float, default=10.0)
    ap.add_argument("--conns-max", type=int, default=3000)
    ap.add_argument("--conns-procs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--dns-count", type=int, default=2000)
    ap.add_argument("--dns-seconds", type=float, default=30.0)
    ap.add_argument("--log-level", choices=("deny", "all"), default="deny",
                    help="egressd's [log] level (the daemon's default: deny)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    args.only = [w for w in args.only.split(",") if w]
    bad = [w for w in args.only if w not in ("bulk", "conns", "dns")]
    if bad or not args.only:
        ap.error("--only: unknown workload(s) %s" % bad)
    for n, lo, hi in (("rounds", 1, 20), ("bulk_mib", 1, 8192), ("bulk_runs", 1, 20),
                      ("conns_max", 1, 20000), ("conns_procs", 1, 16), ("dns_count", 1, 100000)):
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
    # SIGTERM/SIGINT: unwind through the finally below (namespaces deleted).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="egressd-bench-")
    lab = None
    try:
        ca = L.make_ca(os.path.join(work, "ca"))
        os.makedirs(os.path.join(work, "lab"))
        lab = L.Lab(os.path.join(work, "lab"), ca, mode="gateway").up()
        rounds = Bench(args, lab).run()
    finally:
        if lab is not None:
            lab.close()
        L.cleanup_prefix()
        if not args.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("work directory kept: " + work)
    s = summarize(rounds, args)
    print(table(s, rounds, args))
    if args.json:
        meta = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "kernel": os.uname().release, "cpus": os.cpu_count(), "binary": binfo,
                "args": {k: v for k, v in vars(args).items() if k not in ("json",)}}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "summary": s, "rounds": rounds}, f, indent=1)
            f.write("\n")
    missed = [w for w in ("bulk", "conns") if w in s and not s[w]["met"]]
    return 1 if args.check and missed else 0


L = None

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
