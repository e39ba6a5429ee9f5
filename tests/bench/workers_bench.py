#!/usr/bin/python3
"""Workers (issue 10): new HTTPS connections/s through the gateway lab with
[queue] threads = 1 and = 2, interleaved rounds, and egressd's CPU per thread.

Flows come from SOURCES client addresses to two servers, so the kernel's
address hash spreads them over both queues. Each round: PARALLEL curl loops
(one TLS handshake + tiny GET per connection) for --seconds. Prints the
median conns/s per setting, the ratio 2/1, and the CPU seconds of each
egressd thread (utime + stime from /proc/PID/task) per connection.
Bounded in time (rounds x seconds x 2). Not a CI test; root only.

  sudo /usr/bin/python3 tests/bench/workers_bench.py --egressd build/proxy/egressd
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETNS = os.path.join(os.path.dirname(HERE), "netns")
sys.path.insert(0, NETNS)
import lab as L  # noqa: E402

SOURCES = ["198.51.100.%d" % i for i in range(11, 19)]
NAMES = ["updates.example.com", "mirror.example.net"]


def thread_cpu(pid):
    """{thread name + tid: seconds} of utime + stime."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        out["%s/%s" % (name, tid)] = (int(f[11]) + int(f[12])) / tick
    return out


def round_(lab, seconds, parallel):
    script = """
end=$(( $(date +%%s) + %d ))
n=0
while [ $(date +%%s) -lt $end ]; do
  curl -s -o /dev/null --noproxy '*' --cacert %s --interface $1 -4 \
    --resolve $2:443:$3 https://$2/file && n=$((n+1))
done
echo $n
""" % (seconds, lab.ca["ca"])
    procs = []
    for i in range(parallel):
        src = SOURCES[i % len(SOURCES)]
        name = NAMES[i % len(NAMES)]
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", lab.cli, "sh", "-c", script, "sh", src, name,
             L.HOSTS[name][0]], stdout=subprocess.PIPE, text=True))
    t0 = time.monotonic()
    total = sum(int(p.communicate(timeout=seconds + 30)[0].strip() or 0) for p in procs)
    return total / (time.monotonic() - t0), total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--egressd", default=os.path.join(L.REPO, "build", "proxy", "egressd"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--parallel", type=int, default=8)
    a = ap.parse_args()
    os.environ["EGRESSD_BIN"] = os.path.abspath(a.egressd)
    ca = L.make_ca(tempfile.mkdtemp(prefix="egwb-ca"))
    res = {1: [], 2: []}
    cpu = {1: {}, 2: {}}
    conns = {1: 0, 2: 0}
    for r in range(a.rounds):
        for threads in ((1, 2) if r % 2 == 0 else (2, 1)):
            lab = L.Lab(tempfile.mkdtemp(prefix="egwb"), ca, mode="gateway").up()
            try:
                os.environ["EGRESSD_LAB_THREADS"] = str(threads)
                e = lab.write_conf(level="deny")
                e.start()
                lab.ip_batch(lab.cli, ["addr add %s/24 dev eth0" % s for s in SOURCES])
                for n in NAMES:  # bind the names (DNS through egressd)
                    lab.curl("https://%s/file" % n, "-4")
                c0 = thread_cpu(e.proc.pid)
                rate, n = round_(lab, a.seconds, a.parallel)
                c1 = thread_cpu(e.proc.pid)
                res[threads].append(rate)
                conns[threads] += n
                for k, v in c1.items():
                    name = re.sub(r"/\d+$", "", k)  # egressd (main), egressd-w0, -dns, -log
                    cpu[threads][name] = cpu[threads].get(name, 0) + v - c0.get(k, 0)
            finally:
                lab.close()
    for t in (1, 2):
        med = statistics.median(res[t])
        print("threads = %d: %.0f conns/s median (range %.0f..%.0f), %d conns" %
              (t, med, min(res[t]), max(res[t]), conns[t]))
        for k, v in sorted(cpu[t].items()):
            if v > 0:
                print("    %-24s %.3f s  %.1f us/conn" % (k, v, v / max(conns[t], 1) * 1e6))
    print("ratio 2/1: %.2f" % (statistics.median(res[2]) / statistics.median(res[1])))


if __name__ == "__main__":
    main()
