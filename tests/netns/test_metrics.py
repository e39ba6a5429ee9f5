"""Issue 5: the Prometheus endpoint ([metrics] listen = 127.0.0.1:9469).

It answers inside egressd's namespace, its counters follow the traffic, and
nobody else can reach it: not the protected clients (gateway), not the fake
internet, not a non-loopback address of the host.
"""
import re

import pytest

import lab as L
from exfil import common as X

FAMILIES = {
    "egressd_build_info": "gauge",
    "egressd_packets_total": "counter",
    "egressd_flows_total": "counter",
    "egressd_dns_queries_total": "counter",
    "egressd_queue_dropped_total": "counter",
    "egressd_bindings": "gauge",
    "egressd_flows_tracked": "gauge",
}
REASONS = ["ip_not_allowed", "port_not_allowed", "name_not_allowed", "sni_ip_mismatch",
           "no_name", "protocol_not_allowed", "ech", "incomplete", "malformed"]


def start(lab, **kw):
    e = lab.write_conf(**kw)
    X.with_metrics(e)
    return e.start()


def deny_flows(m):
    return sum(v for (name, labels), v in m.samples.items()
               if name == "egressd_flows_total" and ("decision", "deny") in labels)


def wait_metric(lab, want, timeout=5, **sel):
    """Poll until every (name, labels) -> value in want holds; the last scrape."""
    last = {}

    def ok():
        m = X.Metrics(lab, **sel)
        last["m"] = m
        return all(pred(m.get(name, **labels)) for (name, labels), pred in want)
    try:
        L.wait_for(ok, timeout, "metrics", interval=0.1)
    except TimeoutError:
        m = last.get("m")
        raise AssertionError("metrics never reached the expected values:\n%s"
                             % (m.text if m else "(no scrape)"))
    return last["m"]


def test_endpoint_answers(anylab):
    start(anylab)
    m = X.Metrics(anylab)
    assert m.status.split()[1] == "200", m.status
    assert "content-type: text/plain; version=0.0.4" in m.headers, m.headers
    for name, kind in FAMILIES.items():
        assert "# TYPE %s %s\n" % (name, kind) in m.text, name
        assert re.search(r"^# HELP %s \S" % name, m.text, re.M), name
    version = L.run([L.egressd_bin(), "--version"]).stdout.split()[-1]
    assert m.get("egressd_build_info", version=version) == 1
    for v in ("pass", "allow", "deny", "drop"):
        assert m.get("egressd_packets_total", verdict=v) == 0
    for r in REASONS:
        assert m.get("egressd_flows_total", decision="deny", reason=r) == 0
    assert m.get("egressd_flows_total", decision="allow", reason="") == 0
    for d in ("allow", "deny"):
        assert m.get("egressd_dns_queries_total", decision=d) == 0
    assert m.get("egressd_queue_dropped_total") == 0
    assert m.get("egressd_bindings") == 0
    # Other paths and methods are refused.
    p = anylab.ns_run(anylab.fw, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "http://127.0.0.1:%d/" % X.METRICS_PORT])
    assert p.stdout == "404", p.stdout
    p = anylab.ns_run(anylab.fw, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X",
                                  "POST", "-d", "x", "http://127.0.0.1:%d/metrics" % X.METRICS_PORT])
    assert p.stdout in ("405", "501"), p.stdout


def test_counters_follow_traffic(anylab):
    start(anylab)
    m0 = X.Metrics(anylab)
    assert m0.get("egressd_bindings") == 0

    # One allowed query: +1 allowed, and the answer's address is bound.
    r = anylab.dnsq(L.RESOLVER4, "updates.example.com/A")
    assert r.get("rcode") == "NOERROR", r
    m1 = wait_metric(anylab, [
        (("egressd_dns_queries_total", {"decision": "allow"}), lambda v: v == 1),
        (("egressd_bindings", {}), lambda v: v >= 1)])
    b1 = m1.get("egressd_bindings")
    r = anylab.dnsq(L.RESOLVER4, "updates.example.com/AAAA")
    assert r.get("rcode") == "NOERROR", r
    wait_metric(anylab, [
        (("egressd_dns_queries_total", {"decision": "allow"}), lambda v: v == 2),
        (("egressd_bindings", {}), lambda v: v > b1)])

    # One denied query: +1 denied.
    r = anylab.dnsq(L.RESOLVER4, "x.attacker.example/A")
    assert r.get("rcode") == "REFUSED", r
    wait_metric(anylab, [(("egressd_dns_queries_total", {"decision": "deny"}), lambda v: v == 1)])

    # One allowed HTTPS flow (address already bound: no DNS needed).
    p = anylab.curl("https://updates.example.com/file", "--resolve",
                    "updates.example.com:443:203.0.113.10")
    assert p.returncode == 0, p.stderr
    m2 = wait_metric(anylab, [
        (("egressd_flows_total", {"decision": "allow", "reason": ""}), lambda v: v == 1),
        (("egressd_flows_tracked", {}), lambda v: v >= 1)])
    assert m2.get("egressd_packets_total", verdict="allow") >= 1
    assert m2.get("egressd_packets_total", verdict="deny") == 0

    # One denied connection (unbound address) and one denied name on a bound address.
    r = X.connburst(anylab, L.ATTACKER4, 443, 1)
    assert r["refused"] == 1, r
    r = anylab.dnsq(L.RESOLVER4, "cdn-a.example.org/A")  # binds 203.0.113.30 to cdn-a
    assert r.get("rcode") == "NOERROR", r
    p = anylab.curl("https://cdn-b.example.org/file", "--resolve",
                    "cdn-b.example.org:443:203.0.113.30", timeout=5)
    assert p.returncode != 0, p.stdout
    m3 = wait_metric(anylab, [
        (("egressd_flows_total", {"decision": "deny", "reason": "ip_not_allowed"}),
         lambda v: v == 1),
        (("egressd_flows_total", {"decision": "deny", "reason": "name_not_allowed"}),
         lambda v: v == 1),
        (("egressd_dns_queries_total", {"decision": "allow"}), lambda v: v == 3)])
    assert m3.get("egressd_packets_total", verdict="deny") >= 1
    assert m3.get("egressd_flows_total", decision="allow", reason="") == 1
    assert m3.get("egressd_queue_dropped_total") == 0
    anylab.assert_attacker_got_nothing()


CONTROL_PORT = 9470


def route_loopback_to(lab, ns, dev, src, via, target_ns, target_dev):
    """Make ns send 127.0.0.1 to target_ns's loopback (policy route via
    target_ns, route_localnet on both ends, as kube-proxy sets it), and listen
    on target_ns's 127.0.0.1:CONTROL_PORT: the control proves the probe can
    reach that loopback, so a refused scrape means something."""
    lab.sysctl(target_ns, "net.ipv4.conf.all.route_localnet=1",
               "net.ipv4.conf.%s.route_localnet=1" % target_dev)
    lab.sysctl(ns, "net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf.%s.route_localnet=1" % dev)
    lab.ip_batch(ns, ["route add 127.0.0.1/32 via %s dev %s src %s table 100" % (via, dev, src),
                      "rule add pref 10 to 127.0.0.1/32 lookup 100",
                      "rule del pref 0", "rule add pref 20 lookup local"])
    ctl = lab.spawn(target_ns, [L.PY, "-m", "http.server", "--bind", "127.0.0.1",
                                str(CONTROL_PORT)])
    L.wait_for(lambda: ":%d" % CONTROL_PORT in lab.ns_run(target_ns, ["ss", "-Hltn"]).stdout,
               5, "the control listener")
    p = X.scrape(lab, ns=ns, addr="127.0.0.1", port=CONTROL_PORT, timeout=4)
    assert p.returncode == 0 and " 404 " in p.stdout.splitlines()[0], \
        "control: %s cannot reach %s's loopback: %s%s" % (ns, target_ns, p.stdout, p.stderr)
    return ctl


def test_not_reachable_from_clients(gwlab):
    start(gwlab)
    assert X.scrape(gwlab).returncode == 0, "the scrape in egressd's namespace must work"
    ss = gwlab.ns_run(gwlab.gw, ["ss", "-Hltn"]).stdout
    listeners = [ln.split()[3] for ln in ss.splitlines() if ln.split()[3].endswith(":9469")]
    assert listeners == ["127.0.0.1%lo:9469"], ss  # bound to lo: see route_loopback_to
    for ns, addr in ((gwlab.cli, "198.51.100.1"), (gwlab.cli, "2001:db8:1::1"),
                     (gwlab.net, "203.0.113.1")):
        p = X.scrape(gwlab, ns=ns, addr=addr, timeout=4)
        assert p.returncode != 0, "metrics reachable at %s from %s:\n%s" % (addr, ns, p.stdout)
        assert "egressd_" not in p.stdout
    # A client that routes 127.0.0.1 to the gateway reaches its loopback
    # (control); the metrics listener there must still refuse it.
    route_loopback_to(gwlab, gwlab.cli, "eth0", "198.51.100.10", "198.51.100.1", gwlab.gw,
                      "inside0")
    p = X.scrape(gwlab, ns=gwlab.cli, addr="127.0.0.1", timeout=4)
    assert p.returncode != 0, "metrics reachable at the gateway's 127.0.0.1:\n" + p.stdout
    assert "egressd_" not in p.stdout
    assert X.scrape(gwlab).returncode == 0, "the scrape in egressd's namespace must still work"


def test_listens_on_loopback_only_in_host_mode(hostlab):
    start(hostlab)
    assert X.scrape(hostlab).returncode == 0
    ss = hostlab.ns_run(hostlab.hst, ["ss", "-Hltn"]).stdout
    listeners = [ln.split()[3] for ln in ss.splitlines() if ln.split()[3].endswith(":9469")]
    assert listeners == ["127.0.0.1%lo:9469"], ss  # bound to lo: see route_loopback_to
    for ns, addr in ((hostlab.hst, "203.0.113.1"), (hostlab.net, "203.0.113.1")):
        p = X.scrape(hostlab, ns=ns, addr=addr, timeout=4)
        assert p.returncode != 0, "metrics reachable at %s from %s" % (addr, ns)
        assert "egressd_" not in p.stdout
    # The fake internet routing 127.0.0.1 to the host (control: it reaches
    # the host's loopback) still cannot scrape.
    route_loopback_to(hostlab, hostlab.net, "eth0", "203.0.113.2", "203.0.113.1", hostlab.hst,
                      "eth0")
    p = X.scrape(hostlab, ns=hostlab.net, addr="127.0.0.1", timeout=4)
    assert p.returncode != 0, "metrics reachable at the host's 127.0.0.1:\n" + p.stdout
    assert "egressd_" not in p.stdout


@pytest.mark.parametrize("enforce", [True, False], ids=["enforcing", "audit"])
def test_denials_counted_in_both_modes(gwlab, enforce):
    """Audit mode counts would-be denials as flows, but no packet is denied."""
    start(gwlab, enforce=enforce)
    r = X.connburst(gwlab, L.ATTACKER4, 80, 3, send="GET / HTTP/1.0\r\n\r\n")
    assert (r["connected"] if not enforce else r["refused"]) == 3, r
    # Enforcing denies at the SYN (ip_not_allowed); audit decides at the payload (no Host:
    # no_name). Either way three flows are counted as denials.
    L.wait_for(lambda: deny_flows(X.Metrics(gwlab)) >= 3, 5, "3 denied flows in the metrics")
    m = X.Metrics(gwlab)
    assert deny_flows(m) == 3, m.text
    if enforce:
        assert m.get("egressd_packets_total", verdict="deny") >= 3
    else:
        assert m.get("egressd_packets_total", verdict="deny") == 0
        assert m.get("egressd_packets_total", verdict="drop") == 0
