"""Issue 9, class 10: `egressd run` CMD reaching the calling namespace itself.

CMD's only route is the veth to the calling namespace. What egressd filters
is what the calling namespace forwards; a packet to one of the calling
namespace's own addresses is not forwarded but delivered locally (input
hook), and egressd's gateway table (forward hook) never saw it. So CMD could
talk to any service of the calling namespace bound to 0.0.0.0, [::], its LAN
address or the veth's own address: a local database, an agent, a proxy that
goes anywhere.

Here the calling namespace is the host lab's `hst` (eth0 203.0.113.1,
2001:db8:2::1). Listeners there (TCP and UDP) on 203.0.113.1, 0.0.0.0, [::]
and 2001:db8:2::1 record every byte they get. CMD (root in its namespace)
sends to every local address of the calling namespace: eth0's, the veth's,
the veth's IPv6 link-local, the /30's broadcast, ff02::1, and eth0's IPv6
address through a route it adds itself. The listeners must get nothing;
DNS to egressd and an allowed fetch still work in the same run (positive
control), and a datagram the calling namespace sends to its own listener
proves the recorder records.
"""
import json
import os
import re
import time

import lab as L

RUN_NET = "192.0.2.0"
MARK = "EGRESSD-RUN-ESCAPE"
PORTS = {"eth0-v4": 7101, "any-v4": 7102, "any-v6": 7103, "eth0-v6": 7104}

# The calling namespace's listeners: TCP and UDP on each (address, port);
# every byte received is appended to the record (one JSON object per line).
LISTENER = r"""
import json, os, select, socket, sys
rec, ready = sys.argv[1], sys.argv[2]
binds = [("eth0-v4", socket.AF_INET, "203.0.113.1", %(eth0-v4)d),
         ("any-v4", socket.AF_INET, "0.0.0.0", %(any-v4)d),
         ("any-v6", socket.AF_INET6, "::", %(any-v6)d),
         ("eth0-v6", socket.AF_INET6, "2001:db8:2::1", %(eth0-v6)d)]
socks = {}
for name, fam, addr, port in binds:
    for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(fam, typ)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        if typ == socket.SOCK_STREAM:
            s.listen(16)
        socks[s] = (name, "tcp" if typ == socket.SOCK_STREAM else "udp")
open(ready, "w").close()
conns = {}
def note(name, proto, peer, data):
    with open(rec, "a") as f:
        f.write(json.dumps({"listener": name, "proto": proto, "peer": str(peer),
                            "bytes": len(data), "data": data[:64].decode("latin-1")}) + "\n")
while True:
    r, _, _ = select.select(list(socks) + list(conns), [], [], 1)
    for s in r:
        if s in socks:
            name, proto = socks[s]
            if proto == "tcp":
                c, peer = s.accept()
                conns[c] = (name, peer)
                note(name, "tcp-accept", peer, b"")
            else:
                data, peer = s.recvfrom(65536)
                note(name, "udp", peer, data)
        else:
            name, peer = conns[s]
            data = s.recv(65536)
            if data:
                note(name, "tcp", peer, data)
            else:
                del conns[s]
                s.close()
""" % PORTS

# CMD: waits for the host side's link-local address (the test reads it from
# the calling namespace), then sends to every local address of the calling
# namespace, TCP and UDP, v4 and v6. Prints one line per attempt.
SENDER = r"""
import os, socket, subprocess, sys, time
slot_file, ll_file, mark = sys.argv[1], sys.argv[2], sys.argv[3].encode()
ports = {%(ports)s}
dev = [l.split(":")[1].strip().split("@")[0] for l in
       subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.splitlines()
       if ": egr" in l][0]
n = int(dev[3:-1])
host4, bcast4 = "192.0.2.%%d" %% (4 * n + 1), "192.0.2.%%d" %% (4 * n + 3)
with open(slot_file + ".tmp", "w") as f:
    f.write(dev)
os.rename(slot_file + ".tmp", slot_file)
deadline = time.monotonic() + 5
while not os.path.exists(ll_file) and time.monotonic() < deadline:
    time.sleep(0.05)
ll = open(ll_file).read().strip()
# Our own link-local address must have left DAD (tentative) to be a source.
deadline = time.monotonic() + 5
while time.monotonic() < deadline and subprocess.run(
        ["ip", "-6", "addr", "show", "dev", dev, "tentative"],
        capture_output=True, text=True).stdout.strip():
    time.sleep(0.1)
# A route to the calling namespace's global IPv6 address (the source is our
# link-local one, which the calling namespace answers on the veth).
subprocess.run(["ip", "-6", "route", "add", "2001:db8:2::/64", "via", ll, "dev", dev])
scope = socket.if_nametoindex(dev)
v4 = [("203.0.113.1", p) for p in ports.values()] + [(host4, p) for p in ports.values()]
v6 = [(ll, p, scope) for p in ports.values()] + [("2001:db8:2::1", p, 0) for p in ports.values()]
for dst in v4 + v6:
    fam = socket.AF_INET if len(dst) == 2 else socket.AF_INET6
    sa = dst if fam == socket.AF_INET else (dst[0], dst[1], 0, dst[2])
    try:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(1.5)
        s.connect(sa)
        s.sendall(mark + b" tcp " + repr(dst).encode())
        s.close()
        print("tcp", dst, "connected")
    except OSError as e:
        print("tcp", dst, "failed", e)
    try:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.sendto(mark + b" udp " + repr(dst).encode(), sa)
        s.close()
        print("udp", dst, "sent")
    except OSError as e:
        print("udp", dst, "failed", e)
# Broadcast of the /30 and IPv6 all-nodes: every listener on 0.0.0.0 / [::].
for p in ports.values():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.sendto(mark + b" bcast", (bcast4, p))
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.sendto(mark + b" ff02::1", ("ff02::1", p, 0, scope))
        print("mcast", p, "sent")
    except OSError as e:
        print("mcast", p, "failed", e)
sys.stdout.flush()
""" % {"ports": ", ".join("%r: %d" % kv for kv in PORTS.items())}


def run_env():
    env = dict(os.environ)
    for k in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND", "EGRESSD_USER"):
        env.pop(k, None)
    env["EGRESSD_RUN_NET"] = RUN_NET
    env["EGRESSD_PRESET_DIR"] = os.path.join(L.REPO, "config", "presets")
    return env


def wait_for(path, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "timed out waiting for " + path
        time.sleep(0.05)


def records(path):
    try:
        with open(path) as f:
            return [json.loads(x) for x in f if x.strip()]
    except FileNotFoundError:
        return []


def start_listener(lab):
    rec = os.path.join(lab.dir, "hst-listeners.jsonl")
    ready = rec + ".ready"
    lab.spawn(lab.hst, [L.PY, "-c", LISTENER, rec, ready],
              stderr=os.path.join(lab.dir, "hst-listeners.stderr"))
    wait_for(ready, 5)
    return rec


def host_link_local(lab, dev):
    out = L.run(["ip", "-n", lab.hst, "-6", "-o", "addr", "show", "dev", dev,
                 "scope", "link"]).stdout
    m = re.search(r"inet6 (fe80::[0-9a-f:]+)/", out)
    assert m, "no link-local address on %s:\n%s" % (dev, out)
    return m.group(1)


def test_cmd_cannot_reach_listeners_of_the_calling_namespace(hostlab):
    lab = hostlab
    assert lab.egressd is None
    rec = start_listener(lab)
    # Positive control of the recorder: the calling namespace reaches itself.
    p = lab.ns_run(lab.hst, [L.PY, "-c",
                             "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                             "s.sendto(b'control', ('203.0.113.1', %d))" % PORTS["eth0-v4"]])
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 3
    while not [r for r in records(rec) if r["data"] == "control"]:
        assert time.monotonic() < deadline, "the listener records nothing: %s" % records(rec)
        time.sleep(0.05)

    slot_file = os.path.join(lab.dir, "run-slot")
    ll_file = os.path.join(lab.dir, "run-ll")
    log = os.path.join(lab.dir, "run.jsonl")
    curl = ("curl -sS --noproxy '*' --cacert %s --max-time 5 https://updates.example.com/file"
            % lab.ca["ca"])
    script = ("%s -c \"$SENDER\" %s %s %s; echo A=$(dig +time=2 +tries=1 +short "
              "updates.example.com A); echo BODY=$(%s)" %
              (L.PY, slot_file, ll_file, MARK, curl))
    env = run_env()
    env["SENDER"] = SENDER
    out = os.path.join(lab.dir, "run.stdout")
    err = os.path.join(lab.dir, "run.stderr")
    lab.stderr_files.append(err)
    proc = lab.spawn(lab.hst, [L.egressd_bin(), "run", "--allow", "updates.example.com",
                               "--log", log, "--", "sh", "-c", script],
                     stdout=out, stderr=err, env=env)
    wait_for(slot_file, 10)
    dev = open(slot_file).read().strip()
    host_dev = dev[:-1] + "h"
    with open(ll_file + ".tmp", "w") as f:
        f.write(host_link_local(lab, host_dev))
    os.rename(ll_file + ".tmp", ll_file)
    rc = proc.wait(60)
    stdout = open(out).read()
    ctx = "exit %s\nstdout:\n%s\nstderr:\n%s" % (rc, stdout, open(err).read())
    assert rc == 0, ctx
    # Every attempt was made.
    assert len(re.findall(r"^tcp ", stdout, re.M)) == 4 * len(PORTS), ctx
    assert len(re.findall(r"^mcast \d+ sent", stdout, re.M)) == len(PORTS), ctx
    # Positive controls: DNS through egressd and the allowed fetch.
    assert re.search(r"^A=203\.0\.113\.10$", stdout, re.M), ctx
    assert re.search(r"^BODY=%s$" % re.escape(L.site_body("updates").strip()), stdout, re.M), ctx
    time.sleep(0.5)
    got = [r for r in records(rec) if r["data"] != "control"]
    assert got == [], "CMD reached listeners of the calling namespace:\n%s\n%s" % (
        "\n".join(json.dumps(r) for r in got), ctx)
    assert not re.search(r"^tcp .* connected$", stdout, re.M), ctx
    lab.assert_attacker_got_nothing()
