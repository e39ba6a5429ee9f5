"""The failover-pair lab: two egressd gateways between the client and the
fake internet, each with keepalived and conntrackd, configured from
packaging/ha/ (rendered by packaging/ha/render.sh per gateway).

  cli   eth0 (a bridge) 198.51.100.10/24, default route + DNS 198.51.100.1 (VIP)
         |  ports a-in, b-in
  gwa   inside0 198.51.100.2   sync0 192.0.2.1 ---- sync0 192.0.2.2   gwb inside0 198.51.100.3
        outside0 203.0.113.4                                            outside0 203.0.113.5
         |  ports a-out, b-out
  net   eth0 (a bridge) with the fake internet's addresses (lab.py),
        default route 203.0.113.1 (VIP)

Namespaces, daemons and files follow lab.Lab's rules: all killed and
deleted on close(), nothing in the root namespace.
"""
import os
import signal
import subprocess
import time

import lab as labmod
from lab import LabError, run, wait_for

PKG = os.path.join(labmod.REPO, "packaging", "ha")
VIP_IN, VIP_OUT = "198.51.100.1", "203.0.113.1"

GATEWAYS = {
    # name: (env file, inside address, outside address, sync address, peer's)
    "a": ("gateway-a.env", "198.51.100.2", "203.0.113.4", "192.0.2.1", "192.0.2.2"),
    "b": ("gateway-b.env", "198.51.100.3", "203.0.113.5", "192.0.2.2", "192.0.2.1"),
}


class GwEgressd(labmod.Egressd):
    """An egressd of one gateway namespace (lab.Egressd runs in lab.fw)."""

    def __init__(self, lab, gw, conf, log):
        super().__init__(lab, conf, log)
        self.gw = gw

    def cmd(self, *args, timeout=10):
        p = self.lab.ns_run(self.gw.ns, [labmod.egressd_bin()] + list(args), timeout=timeout)
        self.lab.note_stderr("egressd(%s) %s" % (self.gw.name, " ".join(args)), p.stderr)
        return p

    def start(self, backend="xt", apply=True, timeout=8):
        if apply:
            p = self.apply(backend)
            if p.returncode != 0:
                raise LabError("egressd(%s) rules --apply failed (%d): %s%s"
                               % (self.gw.name, p.returncode, p.stdout, p.stderr))
        self.runs += 1
        n_ready = len(self.events("ready"))
        base = os.path.join(self.gw.dir, "egressd.%d" % self.runs)
        self.stderr_path = base + ".stderr"
        self.lab.stderr_files.append(self.stderr_path)
        self.proc = self.lab.spawn(self.gw.ns, [labmod.egressd_bin(), "-c", self.conf],
                                   stdout=base + ".stdout", stderr=self.stderr_path)
        self.lab.daemon_runs.append(labmod.DaemonRun(self, self.proc, self.stderr_path))

        def ready():
            if self.proc.poll() is not None:
                raise LabError("egressd(%s) exited with %s before ready:\n%s"
                               % (self.gw.name, self.proc.returncode, self.tail()))
            return len(self.events("ready")) > n_ready
        wait_for(ready, timeout, "egressd(%s) ready" % self.gw.name)
        return self


class Gateway:
    def __init__(self, lab, name):
        self.lab, self.name = lab, name
        (self.env, self.inside, self.outside, self.sync, self.peer) = GATEWAYS[name]
        self.ns = "%s-gw%s" % (lab.id, name)
        self.dir = os.path.join(lab.dir, "gw" + name)
        self.keepalived = self.conntrackd = None
        self.egressd = None

    # -- configuration, from packaging/ha --------------------------------
    def render(self):
        os.makedirs(self.dir, exist_ok=True)
        values = {"LIBDIR": PKG, "RUNDIR": self.dir, "TRACK_PROCESS": "no",
                  "EGRESSD_CONF": os.path.join(self.dir, "egressd.conf"),
                  "CONNTRACKD_CONF": os.path.join(self.dir, "conntrackd.conf")}
        env = os.path.join(self.dir, "gateway.env")
        with open(os.path.join(PKG, self.env)) as src, open(env, "w") as out:
            for line in src:
                k = line.split("=", 1)[0]
                if k in values:
                    line = "%s=%s\n" % (k, values.pop(k))
                out.write(line)
            for k, v in values.items():
                out.write("%s=%s\n" % (k, v))
        run([os.path.join(PKG, "render.sh"), env, self.dir])
        self.conntrackd_conf = os.path.join(self.dir, "conntrackd.conf")
        self.keepalived_conf = os.path.join(self.dir, "keepalived.conf")

    def write_egressd_conf(self, unknown_ip="verify", extra="", listen=VIP_IN):
        """The pair's egressd.conf: the same on both boxes but for the event log.
        listen None: the default (the box's own first inside address, a fleet)."""
        d = self.lab.dir
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "egressd.conf")
        log = os.path.join(self.dir, "events.log")
        text = ("[egressd]\nmode = gateway\nenforce = yes\nallow = %s/allow.d/*.list\n\n"
                "[gateway]\ninside = inside0\n\n[queue]\nnum = 0\nthreads = 1\n\n"
                "[dns]\n%supstream = %s\ndeny = refused\n\n"
                "[tls]\nunknown_ip = %s\nech = deny\n\n[quic]\npolicy = deny\n\n"
                "[log]\nfile = %s\nlevel = all\n\n[metrics]\nlisten =\n%s"
                % (d, "listen = %s:53\n" % listen if listen else "", labmod.RESOLVER4, unknown_ip,
                   log, extra))
        with open(conf, "w") as f:
            f.write(text)
        self.egressd = GwEgressd(self.lab, self, conf, log)
        return self.egressd

    # -- daemons ----------------------------------------------------------
    def start_conntrackd(self):
        self.conntrackd = self.lab.spawn(self.ns, ["conntrackd", "-C", self.conntrackd_conf],
                                         stderr=os.path.join(self.dir, "conntrackd.stderr"))

        def up():
            if self.conntrackd.poll() is not None:
                raise LabError("conntrackd(%s) exited (%s): %s" % (
                    self.name, self.conntrackd.returncode, self.tail("conntrackd.log")))
            return self.ct("-s").returncode == 0
        wait_for(up, 5, "conntrackd(%s) to answer" % self.name, interval=0.1)

    def start_keepalived(self):
        self.keepalived = self.lab.spawn(
            self.ns, ["keepalived", "-n", "-l", "-D", "-P", "-f", self.keepalived_conf,
                      "-p", os.path.join(self.dir, "keepalived.pid"),
                      "-r", os.path.join(self.dir, "vrrp.pid")],
            stderr=os.path.join(self.dir, "keepalived.stderr"),
            stdout=os.path.join(self.dir, "keepalived.stdout"))

    def stop_keepalived(self):
        if self.keepalived and self.keepalived.poll() is None:
            self.keepalived.send_signal(signal.SIGTERM)
            try:
                self.keepalived.wait(5)
            except subprocess.TimeoutExpired:
                self.keepalived.kill()
                self.keepalived.wait(2)

    def ct(self, *args, timeout=5):
        return self.lab.ns_run(self.ns, ["conntrackd", "-C", self.conntrackd_conf] + list(args),
                               timeout=timeout)

    def tail(self, name, n=30):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def addrs(self):
        out = run(["ip", "-n", self.ns, "-4", "-o", "addr", "show"], check=False).stdout
        return {line.split()[3].split("/")[0] for line in out.splitlines()}

    def holds_vips(self):
        a = self.addrs()
        return VIP_IN in a and VIP_OUT in a

    def holds_any_vip(self):
        a = self.addrs()
        return VIP_IN in a or VIP_OUT in a

    def links(self, state):
        self.lab.ip_batch(self.ns, ["link set %s %s" % (i, state)
                                    for i in ("inside0", "outside0", "sync0")])


class HaLab(labmod.Lab):
    """lab.Lab with two gateways (a, b) instead of one."""

    def __init__(self, workdir, ca):
        super().__init__(workdir, ca, mode="gateway")
        self.gw = None
        self.gws = {n: Gateway(self, n) for n in GATEWAYS}
        self.fw = self.gws["a"].ns

    def _up(self):
        self._ns_add(self.net)
        self._ns_add(self.cli, resolver=VIP_IN)
        for g in self.gws.values():
            self._ns_add(g.ns)
        a, b = self.gws["a"], self.gws["b"]
        self.ip_batch(self.cli, ["link add eth0 type bridge", "link set eth0 up",
                                 "addr add 198.51.100.10/24 dev eth0"])
        self.ip_batch(self.net, ["link add eth0 type bridge", "link set eth0 up"])
        for g in (a, b):
            self.ip_batch(g.ns, [
                "link add inside0 type veth peer name %s-in netns %s" % (g.name, self.cli),
                "link add outside0 type veth peer name %s-out netns %s" % (g.name, self.net),
                "addr add %s/24 dev inside0" % g.inside,
                "addr add %s/24 dev outside0" % g.outside,
                "link set inside0 up", "link set outside0 up"])
            self.ip_batch(self.cli, ["link set %s-in master eth0" % g.name,
                                     "link set %s-in up" % g.name])
            self.ip_batch(self.net, ["link set %s-out master eth0" % g.name,
                                     "link set %s-out up" % g.name])
            # packaging/ha/sysctl.d/90-egressd-ha.conf
            self.sysctl(g.ns, "net.ipv4.ip_forward=1", "net.ipv4.ip_nonlocal_bind=1",
                        "net.netfilter.nf_conntrack_tcp_loose=0")
        self.ip_batch(a.ns, ["link add sync0 type veth peer name sync0 netns " + b.ns,
                             "addr add %s/30 dev sync0" % a.sync, "link set sync0 up"])
        self.ip_batch(b.ns, ["addr add %s/30 dev sync0" % b.sync, "link set sync0 up"])
        self.ip_batch(self.cli, ["route add default via " + VIP_IN])
        net = ["addr add %s/24 dev eth0" % x for x in labmod.NET_ADDRS4]
        # IPv6 stays inside net (the pair's recipe is IPv4): nginx listens there
        net += ["addr add %s/64 dev eth0 nodad" % x for x in labmod.NET_ADDRS6]
        net += ["route add default via " + VIP_OUT]
        self.ip_batch(self.net, net)
        os.makedirs(os.path.join(self.dir, "allow.d"), exist_ok=True)
        with open(os.path.join(self.dir, "allow.d", "lab.list"), "w") as f:
            f.write(labmod.DEFAULT_ALLOW)
        self._start_servers()

    def start_pair(self, unknown_ip="verify"):
        """egressd + conntrackd + keepalived on both; a becomes master first."""
        for g in self.gws.values():
            g.render()
            g.write_egressd_conf(unknown_ip=unknown_ip).start()
            g.start_conntrackd()
        a, b = self.gws["a"], self.gws["b"]
        a.start_keepalived()
        wait_for(a.holds_vips, 8, "gateway a to become master", interval=0.05)
        b.start_keepalived()
        time.sleep(1.0)  # b's first adverts seen, b settled as backup
        assert not b.holds_any_vip(), "gateway b took an address while a is master"
        return a, b

    def close(self):
        for g in self.gws.values():
            g.stop_keepalived()
        super().close()

    def start_fleet(self, unknown_ip="verify"):
        """Both gateways side by side behind an ECMP default route of the
        client with L4 hashing (fib_multipath_hash_policy = 1); each runs
        its own egressd with the same configuration and masquerades to its
        own outside address, so a flow's replies come back through the
        gateway that carried it. No keepalived, no conntrackd."""
        nat = ("table ip labnat {\n"
               "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
               "    oifname \"outside0\" ip saddr 198.51.100.0/24 masquerade\n  }\n}\n")
        for g in self.gws.values():
            g.write_egressd_conf(unknown_ip=unknown_ip, listen=None).start()
            p = self.ns_run(g.ns, ["nft", "-f", "-"], input=nat)
            if p.returncode != 0:
                raise LabError("fleet masquerade on %s: %s" % (g.name, p.stderr))
        self.sysctl(self.cli, "net.ipv4.fib_multipath_hash_policy=1")
        self.ip_batch(self.cli, ["route replace default nexthop via %s nexthop via %s"
                                 % (self.gws["a"].inside, self.gws["b"].inside)])
        return self.gws["a"], self.gws["b"]
