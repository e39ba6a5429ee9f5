"""The egressd network-namespace lab.

Every test gets its own namespaces, named eg<pid>-<n>-<role>, removed on
exit whatever happens (Lab.close(), pytest finalizers, and an atexit hook
that removes anything left with this process's prefix). Nothing here
touches the root namespace's netfilter; only documentation addresses are
used.

Gateway mode                               Host mode
  cli  eth0 198.51.100.10/24                 hst  eth0 203.0.113.1/24
       eth0 2001:db8:1::10/64                     eth0 2001:db8:2::1/64
        |                                     |   (egressd + the clients)
  gw   inside0  198.51.100.1/24 ::1           net  (same as on the left)
       outside0 203.0.113.1/24 2001:db8:2::1
        |
  net  eth0 203.0.113.2/24 2001:db8:2::2/64, and the servers:
       .10 / ::10  nginx updates.example.com (+ cname target), HTTP + HTTPS
       .11 / ::11  nginx mirror.example.net
       .20         nginx static (an address range entry, no name)
       .30 / ::30  nginx cdn-a.example.org AND cdn-b.example.org (shared)
       .53 / ::53  dnsmasq, the upstream resolver
       .66 / ::66  attacker: records every byte (tcp 80/443, udp 443)
       .67         attacker.example's authoritative DNS: records every query
"""
import atexit
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVERS = os.path.join(HERE, "servers")
PY = "/usr/bin/python3"
PREFIX = "eg%d" % os.getpid()
_seq = itertools.count(1)


def egressd_bin():
    return os.environ.get("EGRESSD_BIN", os.path.join(REPO, "build", "proxy", "egressd"))


# Names and addresses of the fake internet (A, AAAA).
HOSTS = {
    "updates.example.com": ("203.0.113.10", "2001:db8:2::10"),
    "updates-alias.example.net": ("203.0.113.10", "2001:db8:2::10"),
    "mirror.example.net": ("203.0.113.11", "2001:db8:2::11"),
    "static.example.com": ("203.0.113.20", None),
    "cdn-a.example.org": ("203.0.113.30", "2001:db8:2::30"),
    "cdn-b.example.org": ("203.0.113.30", "2001:db8:2::30"),
    "updates.examp1e.com": ("203.0.113.66", "2001:db8:2::66"),  # look-alikes -> attacker
    "mirror.examp1e.net": ("203.0.113.66", "2001:db8:2::66"),
    # anyone can create a storage account: this one is the attacker's (issue 9 class 8)
    "evilstorage.blob.core.windows.net": ("203.0.113.66", "2001:db8:2::66"),
}
CNAMES = {"cname.example.com": "updates-alias.example.net"}
ATTACKER4, ATTACKER6 = "203.0.113.66", "2001:db8:2::66"
ATTACKER_DNS = "203.0.113.67"
RESOLVER4, RESOLVER6 = "203.0.113.53", "2001:db8:2::53"
NET_ADDRS4 = ["203.0.113.2", "203.0.113.10", "203.0.113.11", "203.0.113.20", "203.0.113.30",
              RESOLVER4, ATTACKER4, ATTACKER_DNS]
NET_ADDRS6 = ["2001:db8:2::2", "2001:db8:2::10", "2001:db8:2::11", "2001:db8:2::30",
              RESOLVER6, ATTACKER6]

# The default allowlist of the tests; line numbers matter (rule = FILE:LINE).
DEFAULT_ALLOW = """\
# egressd lab allowlist
updates.example.com:80,443
mirror.example.net:80,443
cname.example.com
cdn-a.example.org
203.0.113.20/32:443
"""
ALLOW_LINE = {"updates.example.com": 2, "mirror.example.net": 3, "cname.example.com": 4,
              "cdn-a.example.org": 5, "203.0.113.20/32:443": 6}

SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer|"
                          r"ERROR: ThreadSanitizer")


class LabError(Exception):
    pass


def run(args, timeout=10, check=True, input=None, env=None):
    """Run a command with a timeout; CompletedProcess with .elapsed (s)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(args, input=input, capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        p = subprocess.CompletedProcess(args, -9, out, err + "\n[lab] timed out after %ss" % timeout)
        p.timed_out = True
    else:
        p.timed_out = False
    p.elapsed = time.monotonic() - t0
    if check and p.returncode != 0:
        raise LabError("%s failed (%s): %s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def lab_threads():
    """[queue] threads the lab writes: EGRESSD_LAB_THREADS (default 1)."""
    v = os.environ.get("EGRESSD_LAB_THREADS", "1").strip() or "1"
    if v != "auto" and not v.isdigit():
        raise LabError("EGRESSD_LAB_THREADS=%r: auto or a number" % v)
    return v


def wait_for(cond, timeout, what, interval=0.02):
    """Poll cond() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def ns_delete(name):
    """Kill what runs in namespace `name` (all started by this lab), then delete it."""
    pids = run(["ip", "netns", "pids", name], check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    run(["ip", "netns", "del", name], check=False)
    shutil.rmtree("/etc/netns/" + name, ignore_errors=True)


def _list_ns():
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cleanup_prefix(prefix=PREFIX):
    for name in _list_ns():
        if name.startswith(prefix + "-"):
            ns_delete(name)


def reap_stale():
    """Remove namespaces left by earlier lab processes that no longer exist."""
    names = set(_list_ns())
    try:
        names |= set(os.listdir("/etc/netns"))
    except FileNotFoundError:
        pass
    for name in sorted(names):
        m = re.match(r"eg(\d+)-", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            ns_delete(name)


atexit.register(cleanup_prefix)


def make_ca(d):
    """A throwaway CA and one server certificate for every lab name (made at run time)."""
    os.makedirs(d, exist_ok=True)
    names = sorted(set(HOSTS) | set(CNAMES))
    names = [n for n in names if "examp1e" not in n]
    sans = ",".join(["DNS:" + n for n in names] + ["IP:203.0.113.20", "IP:203.0.113.10"])
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % sans)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", "-x509"] + key + ["-keyout", d + "/ca.key", "-out", d + "/ca.pem",
        "-days", "2", "-subj", "/CN=egressd lab CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign"])
    run(["openssl", "req"] + key + ["-keyout", d + "/server.key", "-out", d + "/server.csr",
        "-subj", "/CN=updates.example.com"])
    run(["openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem",
         "-CAkey", d + "/ca.key", "-CAcreateserial", "-out", d + "/server.pem", "-days", "2",
         "-extfile", ext])
    return {"ca": d + "/ca.pem", "cert": d + "/server.pem", "key": d + "/server.key"}


NGINX_CONF = """\
worker_processes 1;
daemon off;
user root;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  default_type application/octet-stream;
  client_body_temp_path {d}/body;
  log_format lab '$server_name sni=$ssl_server_name host=$host "$request" $status $bytes_sent';
  access_log {d}/access.log lab;
  ssl_certificate {cert};
  ssl_certificate_key {key};
  server {{
    listen 203.0.113.10:443 ssl; listen [2001:db8:2::10]:443 ssl;
    listen 203.0.113.10:80; listen [2001:db8:2::10]:80;
    server_name updates.example.com cname.example.com updates-alias.example.net;
    root {d}/www/updates;
    location = /big.bin {{ limit_rate 256k; }}
  }}
  server {{
    listen 203.0.113.11:443 ssl; listen [2001:db8:2::11]:443 ssl;
    listen 203.0.113.11:80; listen [2001:db8:2::11]:80;
    server_name mirror.example.net;
    root {d}/www/mirror;
  }}
  server {{
    listen 203.0.113.20:443 ssl; listen 203.0.113.20:80;
    server_name static.example.com;
    root {d}/www/static;
  }}
  server {{
    listen 203.0.113.30:443 ssl; listen [2001:db8:2::30]:443 ssl;
    server_name cdn-a.example.org;
    root {d}/www/cdn-a;
  }}
  server {{
    listen 203.0.113.30:443 ssl; listen [2001:db8:2::30]:443 ssl;
    server_name cdn-b.example.org;
    root {d}/www/cdn-b;
  }}
  server {{
    listen 203.0.113.30:80; listen [2001:db8:2::30]:80;
    server_name cdn-a.example.org;
    root {d}/www/cdn-a;
    location = /big.bin {{ }}
  }}
  server {{
    listen 203.0.113.30:80; listen [2001:db8:2::30]:80;
    server_name cdn-b.example.org;
    root {d}/www/cdn-b;
  }}
}}
"""
SITES = {"updates": "updates.example.com", "mirror": "mirror.example.net",
         "static": "static.example.com", "cdn-a": "cdn-a.example.org",
         "cdn-b": "cdn-b.example.org"}
BIG_SIZE = 1536 * 1024  # 6 s at nginx's limit_rate 256k


def site_body(site):
    return "hello from %s\n" % SITES[site]


@contextlib.contextmanager
def sniffing(lab, *addrs, icmp=False):
    """Record every payload packet / fragment to addrs arriving in the fake
    internet (evasion/sniff.py; icmp: ICMP bodies count as payload). Yields a
    dict filled on exit; rec["path"] is the live record while it runs."""
    path = os.path.join(lab.dir, "sniff.%d.json" % len(lab.procs))
    args = [PY, os.path.join(HERE, "evasion", "sniff.py"), "--record", path, "--iface", "eth0",
            "--max-seconds", "60"] + (["--icmp"] if icmp else [])
    for a in addrs:
        args += ["--watch", a]
    proc = lab.spawn(lab.net, args, stderr=path + ".stderr")

    def ready():
        if proc.poll() is not None:
            raise LabError("sniff.py exited (%s): %s" % (proc.returncode,
                                                         open(path + ".stderr").read()))
        return os.path.exists(path)
    wait_for(ready, 5, "the sniffer to start")
    rec = {"path": path}
    try:
        yield rec
    finally:
        proc.terminate()
        proc.wait(5)
        with open(path) as f:
            rec.update(json.load(f))


class Egressd:
    """One egressd configuration in a namespace: rules, daemon, events."""

    def __init__(self, lab, conf, log):
        self.lab, self.conf, self.log = lab, conf, log
        self.proc = None
        self.runs = 0

    def cmd(self, *args, timeout=10):
        """Run `egressd ARGS` in the filter namespace; stderr kept for the sanitizer check."""
        p = self.lab.ns_run(self.lab.fw, [egressd_bin()] + list(args), timeout=timeout)
        self.lab.note_stderr("egressd " + " ".join(args), p.stderr)
        return p

    def apply(self, backend="xt"):
        return self.cmd("rules", "-c", self.conf, "--apply", "--backend", backend)

    def delete(self):
        return self.cmd("rules", "-c", self.conf, "--delete")

    def start(self, backend="xt", apply=True, timeout=8):
        if apply:
            p = self.apply(backend)
            if p.returncode != 0:
                raise LabError("egressd rules --apply --backend %s failed (%d): %s%s"
                               % (backend, p.returncode, p.stdout, p.stderr))
        self.runs += 1
        n_ready = len(self.events("ready"))
        d = self.lab.dir
        self.stderr_path = os.path.join(d, "egressd.%d.stderr" % self.runs)
        self.lab.stderr_files.append(self.stderr_path)
        self.proc = self.lab.spawn(self.lab.fw, [egressd_bin(), "-c", self.conf],
                                   stdout=os.path.join(d, "egressd.%d.stdout" % self.runs),
                                   stderr=self.stderr_path)
        self.lab.daemon_runs.append(DaemonRun(self, self.proc, self.stderr_path))

        def ready():
            if self.proc.poll() is not None:
                raise LabError("egressd exited with %s before ready:\n%s"
                               % (self.proc.returncode, self.tail()))
            return len(self.events("ready")) > n_ready
        wait_for(ready, timeout, 'egressd {"event":"ready"} in ' + self.log)
        return self

    def tail(self, n=40):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def events(self, kind=None):
        """Parsed JSON lines of the event log (lines that are not JSON are skipped)."""
        out = []
        try:
            with open(self.log, errors="replace") as f:
                for line in f:
                    line = line.strip()
                    if not line.endswith("}"):
                        continue
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if kind is None or ev.get("event") == kind:
                        out.append(ev)
        except FileNotFoundError:
            pass
        return out

    def wait_event(self, pred, timeout=3, what="event"):
        def found():
            for ev in self.events():
                if pred(ev):
                    return ev
            return None
        try:
            return wait_for(found, timeout, what)
        except TimeoutError:
            raise AssertionError("no %s in the event log within %ss; events:\n%s"
                                 % (what, timeout, "\n".join(json.dumps(e) for e in self.events())))

    def stop(self, sig=signal.SIGTERM, timeout=5, expect_status=0):
        """A test's deliberate stop: the exit is expected (teardown does not call
        it a death). Teardown still fails the test if the daemon hung, or if its
        status is not expect_status (0 for SIGTERM/SIGINT; None: any status;
        kill9 expects -9). A daemon already gone was not stopped by the test."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        run = self._run()
        if run is not None:
            run.expected = True
            run.expect_status = -sig if sig == signal.SIGKILL else expect_status
        return self._signal(sig, timeout)

    def _signal(self, sig, timeout):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            run = self._run()
            if run is not None:
                run.hung = "did not exit within %ss of signal %d" % (timeout, sig)
            self.proc.kill()
            self.proc.wait(5)
            raise LabError("egressd did not exit within %ss of signal %d" % (timeout, sig))

    def expect_exit(self, status=None):
        """The test makes the daemon exit on its own (status None: any)."""
        run = self._run()
        if run is not None:
            run.expected, run.expect_status = True, status

    def _run(self):
        for r in reversed(self.lab.daemon_runs):
            if r.proc is self.proc:
                return r
        return None

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class DaemonRun:
    """One egressd daemon process started by Egressd.start(), judged at teardown."""

    def __init__(self, egressd, proc, stderr_path):
        self.egressd, self.proc, self.stderr_path = egressd, proc, stderr_path
        self.expected = False      # the test stopped it (stop/kill9/expect_exit)
        self.expect_status = 0
        self.hung = None           # why, if it ignored a signal
        self.died = None           # its status, if it was gone before teardown stopped it
        self.status = None         # its exit status

    def shutdown(self, timeout=5):
        """Teardown: SIGTERM if it still runs; remember how it ended."""
        if self.status is not None:
            return
        if self.proc.poll() is not None:
            if not self.expected:
                self.died = self.proc.returncode
        elif self.hung is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.hung = "did not exit within %ss of SIGTERM at teardown" % timeout
                self.proc.kill()
                self.proc.wait(5)
        self.status = self.proc.returncode

    def problem(self):
        """None, or what went wrong with this daemon."""
        if self.hung:
            return "egressd hung on shutdown: " + self.hung
        if self.died is not None:
            return "egressd died during the test (exit status %s)" % self.died
        want = self.expect_status if self.expected else 0
        if want is not None and self.status != want:
            return "egressd exited with status %s on SIGTERM (expected %s)" % (self.status, want)
        return None

    def tail(self, n=40):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Lab:
    def __init__(self, workdir, ca, mode="gateway"):
        assert mode in ("gateway", "host")
        self.dir = str(workdir)
        self.ca = ca
        self.mode = mode
        self.id = "%s-%d" % (PREFIX, next(_seq))
        self.namespaces = []
        self.procs = []
        self.stderr_files = []
        self.stderr_notes = []
        self.egressd = None
        self.daemon_runs = []
        if mode == "gateway":
            self.cli, self.gw, self.net = (self.id + "-cli", self.id + "-gw", self.id + "-net")
            self.fw = self.gw
        else:
            self.hst, self.net = self.id + "-hst", self.id + "-net"
            self.cli = self.fw = self.hst
        self.attacker_record = os.path.join(self.dir, "attacker.json")
        self.authdns_record = os.path.join(self.dir, "attacker-dns.json")

    # -- namespaces ------------------------------------------------------
    def _ns_add(self, name, resolver=RESOLVER4):
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        os.makedirs("/etc/netns/" + name, exist_ok=True)
        with open("/etc/netns/%s/resolv.conf" % name, "w") as f:
            f.write("nameserver %s\noptions timeout:2 attempts:1\n" % resolver)
        with open("/etc/netns/%s/hosts" % name, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n")
        self.sysctl(name, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.default.accept_ra=0")
        self.ip_batch(name, ["link set lo up"])

    def sysctl(self, ns, *settings):
        run(["ip", "netns", "exec", ns, "sysctl", "-qw"] + list(settings))

    def ip_batch(self, ns, lines):
        run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")

    def up(self):
        try:
            self._up()
        except BaseException:
            self.close()
            raise
        return self

    def _up(self):
        self._ns_add(self.net)
        if self.mode == "gateway":
            self._ns_add(self.gw)
            self._ns_add(self.cli)
            self.ip_batch(self.gw, [
                "link add inside0 type veth peer name eth0 netns " + self.cli,
                "link add outside0 type veth peer name eth0 netns " + self.net,
                "addr add 198.51.100.1/24 dev inside0",
                "addr add 2001:db8:1::1/64 dev inside0 nodad",
                "addr add 203.0.113.1/24 dev outside0",
                "addr add 2001:db8:2::1/64 dev outside0 nodad",
                "link set inside0 up", "link set outside0 up"])
            self.sysctl(self.gw, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
            self.ip_batch(self.cli, [
                "addr add 198.51.100.10/24 dev eth0",
                "addr add 2001:db8:1::10/64 dev eth0 nodad",
                "link set eth0 up",
                "route add default via 198.51.100.1",
                "route add default via 2001:db8:1::1"])
        else:
            self._ns_add(self.hst)
            self.ip_batch(self.hst, [
                "link add eth0 type veth peer name eth0 netns " + self.net,
                "addr add 203.0.113.1/24 dev eth0",
                "addr add 2001:db8:2::1/64 dev eth0 nodad",
                "link set eth0 up",
                "route add default via 203.0.113.2",
                "route add default via 2001:db8:2::2"])
        net = ["addr add %s/24 dev eth0" % a for a in NET_ADDRS4]
        net += ["addr add %s/64 dev eth0 nodad" % a for a in NET_ADDRS6]
        net += ["link set eth0 up", "route add default via 203.0.113.1",
                "route add default via 2001:db8:2::1"]
        self.ip_batch(self.net, net)
        self._start_servers()

    # -- processes -------------------------------------------------------
    def spawn(self, ns, args, stdout=None, stderr=None, env=None):
        out = open(stdout or os.devnull, "ab")
        err = open(stderr or os.devnull, "ab")
        try:
            p = subprocess.Popen(["ip", "netns", "exec", ns] + list(args), stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=err, env=env)
        finally:
            out.close()
            err.close()
        self.procs.append(p)
        return p

    def ns_run(self, ns, args, timeout=10, input=None, env=None):
        return run(["ip", "netns", "exec", ns] + list(args), timeout=timeout, check=False,
                   input=input, env=env)

    def note_stderr(self, what, text):
        if text:
            self.stderr_notes.append((what, text))

    def _start_servers(self):
        d = self.dir
        for site in SITES:
            os.makedirs(os.path.join(d, "www", site), exist_ok=True)
            with open(os.path.join(d, "www", site, "file"), "w") as f:
                f.write(site_body(site))
        with open(os.path.join(d, "www", "updates", "big.bin"), "wb") as f:
            f.write(bytes(range(256)) * (BIG_SIZE // 256))
        with open(os.path.join(d, "www", "cdn-a", "big.bin"), "wb") as f:
            f.write(bytes(range(256)) * (BIG_SIZE // 256))
        os.makedirs(os.path.join(d, "body"), exist_ok=True)
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(d=d, cert=self.ca["cert"], key=self.ca["key"]))
        self.nginx = self.spawn(self.net, ["nginx", "-c", os.path.join(d, "nginx.conf")],
                                stderr=os.path.join(d, "nginx.stderr"))

        dm = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
              "--no-hosts", "--bind-interfaces", "--user=root", "--group=root",
              "--listen-address=%s,%s" % (RESOLVER4, RESOLVER6),
              "--pid-file=" + os.path.join(d, "dnsmasq.pid"),
              "--log-queries", "--log-facility=" + os.path.join(d, "dnsmasq.log"),
              "--server=/attacker.example/" + ATTACKER_DNS, "--local-ttl=60"]
        for name, (a4, a6) in HOSTS.items():
            dm.append("--host-record=" + ",".join(x for x in (name, a4, a6) if x))
        for name, target in CNAMES.items():
            dm.append("--cname=%s,%s" % (name, target))
        self.dnsmasq = self.spawn(self.net, dm, stderr=os.path.join(d, "dnsmasq.stderr"))

        self.attacker = self.spawn(self.net, [PY, os.path.join(SERVERS, "attacker.py"),
                                   "--record", self.attacker_record, "--listen", ATTACKER4,
                                   "--listen", ATTACKER6, "--tcp", "443", "--tcp", "80",
                                   "--udp", "443"], stderr=os.path.join(d, "attacker.stderr"))
        self.authdns = self.spawn(self.net, [PY, os.path.join(SERVERS, "authdns.py"),
                                  "--record", self.authdns_record, "--listen", ATTACKER_DNS],
                                  stderr=os.path.join(d, "authdns.stderr"))

        def listening():
            for p, name in ((self.nginx, "nginx"), (self.dnsmasq, "dnsmasq"),
                            (self.attacker, "attacker"), (self.authdns, "authdns")):
                if p.poll() is not None:
                    raise LabError("%s exited early (%s): see %s/%s.stderr"
                                   % (name, p.returncode, d, name))
            ss = run(["ip", "netns", "exec", self.net, "ss", "-Hlntu"], check=False).stdout
            need = ["203.0.113.10:443", "[2001:db8:2::30]:443", "203.0.113.53:53",
                    "203.0.113.66:443", "203.0.113.67:53"]
            return all(n in ss for n in need) and os.path.exists(self.attacker_record) \
                and os.path.exists(self.authdns_record)
        wait_for(listening, 8, "the fake internet's servers to listen")

    # -- egressd ---------------------------------------------------------
    def write_conf(self, allow=DEFAULT_ALLOW, enforce=True, unknown_ip="deny", level="all",
                   extra="", name="egressd.conf"):
        d = self.dir
        os.makedirs(os.path.join(d, "allow.d"), exist_ok=True)
        with open(os.path.join(d, "allow.d", "lab.list"), "w") as f:
            f.write(allow)
        conf = os.path.join(d, name)
        log = os.path.join(d, "events.log")
        text = "[egressd]\nmode = %s\nenforce = %s\nallow = %s/allow.d/*.list\n\n" % (
            self.mode, "yes" if enforce else "no", d)
        if self.mode == "gateway":
            text += "[gateway]\ninside = inside0\n\n"
        # EGRESSD_LAB_THREADS=2 (or auto) runs the suite with worker threads
        text += "[queue]\nnum = 0\nthreads = %s\n\n" % lab_threads()
        text += "[dns]\nupstream = %s\ndeny = refused\n\n" % RESOLVER4
        text += "[tls]\nunknown_ip = %s\nech = deny\n\n[quic]\npolicy = deny\n\n" % unknown_ip
        text += "[log]\nfile = %s\nlevel = %s\n\n[metrics]\nlisten =\n" % (log, level)
        text += extra
        with open(conf, "w") as f:
            f.write(text)
        self.egressd = Egressd(self, conf, log)
        return self.egressd

    def start_egressd(self, backend="xt", **kw):
        e = self.write_conf(**kw)
        return e.start(backend=backend)

    # -- clients ---------------------------------------------------------
    def curl(self, url, *extra, timeout=10):
        """curl in the client namespace; CompletedProcess (.returncode, .stdout, .elapsed)."""
        args = ["curl", "-sS", "--noproxy", "*", "--cacert", self.ca["ca"], "--max-time",
                str(timeout - 1)] + list(extra) + [url]
        return self.ns_run(self.cli, args, timeout=timeout)

    def dig(self, *args, timeout=6):
        return self.ns_run(self.cli, ["dig", "+time=2", "+tries=1"] + list(args), timeout=timeout)

    def dnsq(self, server, *questions, tcp=False, timeout=3):
        args = [PY, os.path.join(SERVERS, "dnsq.py"), "--server", server,
                "--timeout", str(timeout)]
        for q in questions:
            args += ["--q", q]
        if tcp:
            args.append("--tcp")
        p = self.ns_run(self.cli, args, timeout=timeout + 5)
        if p.returncode != 0:
            raise LabError("dnsq failed: " + p.stderr)
        return json.loads(p.stdout)

    def split_hello(self, sni, addr=None, pieces=5, timeout=4):
        args = [PY, os.path.join(SERVERS, "split_hello.py"), "--sni", sni, "--cafile",
                self.ca["ca"], "--pieces", str(pieces), "--timeout", str(timeout)]
        if addr:
            args += ["--addr", addr]
        p = self.ns_run(self.cli, args, timeout=timeout + 5)
        if p.returncode != 0:
            raise LabError("split_hello failed: " + p.stderr)
        return json.loads(p.stdout)

    # -- records ---------------------------------------------------------
    def attacker_records(self):
        with open(self.attacker_record) as f:
            return json.load(f)

    def attacker_dns_queries(self):
        with open(self.authdns_record) as f:
            return json.load(f)["queries"]

    def nginx_access(self):
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def sanitizer_reports(self):
        found = []
        for path in self.stderr_files:
            try:
                with open(path, errors="replace") as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            if SANITIZER_RE.search(text):
                found.append("%s:\n%s" % (path, text[-4000:]))
        for what, text in self.stderr_notes:
            if SANITIZER_RE.search(text):
                found.append("%s:\n%s" % (what, text[-4000:]))
        return found

    def assert_attacker_got_nothing(self):
        rec = self.attacker_records()
        assert rec["total_bytes"] == 0, "the attacker received payload: %s" % json.dumps(rec)
        q = self.attacker_dns_queries()
        assert q == [], "the attacker's DNS server received queries: %s" % json.dumps(q)

    # -- teardown --------------------------------------------------------
    def close(self):
        for r in self.daemon_runs:
            r.shutdown(timeout=5)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 3
        for p in reversed(self.procs):
            try:
                p.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(2)
        for name in reversed(self.namespaces):
            ns_delete(name)
        self.namespaces = []

    def daemon_problems(self):
        """After close(): one report per egressd daemon that died during the
        test, exited non-zero on SIGTERM or hung on shutdown, with its log tail."""
        out = []
        for r in self.daemon_runs:
            why = r.problem()
            if why:
                try:
                    with open(r.egressd.log, errors="replace") as f:
                        events = "".join(f.readlines()[-10:])
                except OSError:
                    events = ""
                out.append("%s\n--- %s (tail):\n%s--- %s (tail):\n%s"
                           % (why, r.stderr_path, r.tail(), r.egressd.log, events))
        return out
    # -- containers behind a host-mode client (issue 9, class 5) ---------
    CONTAINER_NETS = {
        # kind: (host-side address/len, container address, v6 host/len, v6 container)
        "bridge": ("198.51.100.1/28", "198.51.100.2", "2001:db8:3::1/64", "2001:db8:3::2"),
        "veth": ("198.51.100.17/28", "198.51.100.18", "2001:db8:4::1/64", "2001:db8:4::2"),
    }

    def add_container(self, kind="bridge", n=0):
        """A network namespace behind the host-mode namespace, IPv4 and IPv6.

        kind "bridge": as Docker and podman build it: a bridge (labbr0) holding
        the host's address, the container's veth a port of it, the container's
        default route via the bridge, masquerade on the host's eth0.
        kind "veth": as a nested `unshare -n` plus a veth does: a routed
        point-to-point veth (labve0), masquerade likewise.
        The container's resolv.conf names the fake internet's resolver, as
        Docker copies a host's non-loopback nameservers. n > 0 (bridge only):
        one more container on the same bridge (the host side made by n = 0),
        at the next address. Returns (namespace, IPv4 address, IPv6 address)."""
        assert self.mode == "host" and (n == 0 or kind == "bridge")
        h4, c4, h6, c6 = self.CONTAINER_NETS[kind]
        c4 = c4[:-1] + str(int(c4[-1]) + n)
        c6 = c6[:-1] + str(int(c6[-1]) + n)
        ns = "%s-%s%s" % (self.id, "ctr" if kind == "bridge" else "nest", n or "")
        self._ns_add(ns)
        if kind == "bridge":
            self.ip_batch(self.hst, ([] if n else [
                "link add labbr0 type bridge",
                "link set labbr0 up",
                "addr add %s dev labbr0" % h4,
                "addr add %s dev labbr0 nodad" % h6]) + [
                "link add labvc%d type veth peer name eth0 netns %s" % (n, ns),
                "link set labvc%d master labbr0" % n,
                "link set labvc%d up" % n])
        else:
            self.ip_batch(self.hst, [
                "link add labve0 type veth peer name eth0 netns " + ns,
                "addr add %s dev labve0" % h4,
                "addr add %s dev labve0 nodad" % h6,
                "link set labve0 up"])
        self.ip_batch(ns, [
            "addr add %s/%s dev eth0" % (c4, h4.split("/")[1]),
            "addr add %s/%s dev eth0 nodad" % (c6, h6.split("/")[1]),
            "link set eth0 up",
            "route add default via " + h4.split("/")[0],
            "route add default via " + h6.split("/")[0]])
        if n:
            return ns, c4, c6
        self.sysctl(self.hst, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
        net4 = "198.51.100.0/28" if kind == "bridge" else "198.51.100.16/28"
        net6 = "2001:db8:3::/64" if kind == "bridge" else "2001:db8:4::/64"
        table = "labnat_" + kind
        nat = ("table inet %s {\n"
               "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
               "    oifname \"eth0\" ip saddr %s masquerade\n"
               "    oifname \"eth0\" ip6 saddr %s masquerade\n"
               "  }\n}\n" % (table, net4, net6))
        p = self.ns_run(self.hst, ["nft", "-f", "-"], input=nat)
        if p.returncode != 0:
            raise LabError("container masquerade: " + p.stderr)
        return ns, c4, c6
