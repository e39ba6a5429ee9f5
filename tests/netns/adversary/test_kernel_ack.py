"""Issue 10 against issue 9, class 9: the handshake ACK that passes in the kernel.

A new TCP connection's bare handshake ACK no longer reaches egressd: the
ruleset passes it once per connection (ct mark PENDING -> ACKED). In
`unknown_ip = verify` mode an implant may open a connection to any address and
send bare ACKs only, with data in the header fields a plain stack fills
freely (here the timestamp values). The kernel must pass one such ACK, not a
stream of them: every later one goes to the engine, which counts it against
bare_packets (32 by default, the SYN and the kernel's ACK included) and then
denies the flow. The recorder in the fake internet counts what reached it.
"""
import json
import os

import pytest

import lab as L

ADV = os.path.dirname(os.path.abspath(__file__))
BARE_PACKETS = 32  # engine_config_defaults
SENT = 60


def recorder(lab, addr):
    path = os.path.join(lab.dir, "hdrsniff.kack.%d.json" % len(lab.procs))
    proc = lab.spawn(lab.net, [L.PY, os.path.join(ADV, "hdrsniff.py"), "--record", path,
                               "--max-seconds", "60", "--watch", addr],
                     stderr=path + ".stderr")

    def ready():
        if proc.poll() is not None:
            raise L.LabError("hdrsniff.py exited: " + open(path + ".stderr").read())
        return os.path.exists(path)
    L.wait_for(ready, 5, "the header recorder to start")

    def stop():
        proc.terminate()
        proc.wait(5)
        with open(path) as f:
            return json.load(f)["packets"]
    return stop


@pytest.mark.parametrize("fam", ["4", "6"])
def test_kernel_passes_one_bare_ack_only(anylab, fam):
    e = anylab.start_egressd(unknown_ip="verify")
    dst = L.ATTACKER4 if fam == "4" else L.ATTACKER6
    stop = recorder(anylab, dst)
    try:
        p = anylab.ns_run(anylab.cli, [L.PY, os.path.join(ADV, "covert.py"), "--dst", dst,
                                       "--probe", "ack_train", "--count", str(SENT),
                                       "--marker", "00", "--timeout", "1.5"], timeout=30)
        out = json.loads(p.stdout)
    finally:
        packets = stop()
    assert out["synack"], out
    acks = [x for x in packets if x["sport"] == out["sport"] and x["flags"] == 0x10]
    # the kernel's one and the engine's: never more than bare_packets in all
    assert 1 <= len(acks) <= BARE_PACKETS, (len(acks), out)
    ev = e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == dst,
                      what="deny of the ACK train")
    assert ev.get("detail") == "bare_packets", ev
    anylab.assert_attacker_got_nothing()
