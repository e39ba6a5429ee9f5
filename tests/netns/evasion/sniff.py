#!/usr/bin/python3
"""The wire-level recorder: every packet that carries payload to a watched address.

Runs in the fake internet's namespace on its interface (AF_PACKET, incoming
packets only) and records each IPv4/IPv6 packet addressed to a --watch
address that carries TCP or UDP payload, or is any IP fragment (a fragment
carries payload whatever it holds). The attacker's own recorder sees only
what reaches its sockets in order; this sees every segment that crossed the
filter, in any order, duplicated or not. Writes JSON to --record when ready
({"ready": true, "packets": []}) and again on SIGTERM / SIGINT or after
--max-seconds: {"packets": [{"src", "dst", "proto", "sport", "dport",
"flags", "payload", "fragment", "head", "t" (wall clock)}], "payload_bytes": N}.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
stop = False


def on_signal(signum, frame):
    global stop
    stop = True


ICMP = False  # --icmp: ICMP/ICMPv6 messages count as payload (their body after type/code/sum)


def l4_info(proto, l4, first_fragment, rec):
    """Ports, flags and payload length of a TCP/UDP header at the start of l4."""
    if ICMP and proto in (1, 58) and len(l4) >= 4:
        rec.update(icmp_type=l4[0])
        return l4[4:]
    if proto == 6 and len(l4) >= 20:
        sp, dp, _, _, doff, flags = struct.unpack("!HHIIBB", l4[:14])
        rec.update(sport=sp, dport=dp, flags=flags, doff=doff >> 4)
        return l4[(doff >> 4) * 4:]
    if proto == 17 and len(l4) >= 8:
        sp, dp = struct.unpack("!HH", l4[:4])
        rec.update(sport=sp, dport=dp)
        return l4[8:]
    return l4 if not first_fragment else b""


def parse(frame, watch):
    if len(frame) < 14:
        return None
    etype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    rec = {"fragment": False}
    if etype == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        frag = struct.unpack("!H", ip[6:8])[0]
        proto = ip[9]
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
        body = ip[ihl:total]
        more, off = bool(frag & 0x2000), frag & 0x1FFF
        rec["fragment"] = more or off != 0
        first = off == 0
    elif etype == 0x86DD and len(ip) >= 40:
        plen = struct.unpack("!H", ip[4:6])[0]
        proto = ip[6]
        src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, ip[24:40])
        body = ip[40:40 + plen]
        first = True
        for _ in range(16):  # walk the extension chain, bounded
            if proto in (0, 43, 60) and len(body) >= 2:
                nxt, hlen = body[0], (body[1] + 1) * 8
            elif proto == 51 and len(body) >= 2:
                nxt, hlen = body[0], (body[1] + 2) * 4
            elif proto == 44 and len(body) >= 8:
                nxt, hlen = body[0], 8
                fo = struct.unpack("!H", body[2:4])[0]
                rec["fragment"] = True
                first = (fo & 0xFFF8) == 0
            else:
                break
            proto, body = nxt, body[hlen:]
    else:
        return None
    if dst not in watch:
        return None
    rec.update(src=src, dst=dst, proto=proto)
    payload = l4_info(proto, body, first, rec) if first else body
    if not payload and not rec["fragment"]:
        return None
    rec["payload"] = len(payload)
    rec["head"] = payload[:24].hex()
    return rec


def save(path, packets, ready=True):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"ready": ready, "packets": packets,
                   "payload_bytes": sum(p["payload"] for p in packets)}, f)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--watch", action="append", required=True)
    ap.add_argument("--max-seconds", type=float, default=60)
    ap.add_argument("--icmp", action="store_true")
    args = ap.parse_args()
    global ICMP
    ICMP = args.icmp
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    watch = set(args.watch)
    packets = []
    save(args.record, packets)
    end = time.monotonic() + args.max_seconds
    while not stop and time.monotonic() < end:
        try:
            r, _, _ = select.select([s], [], [], 0.1)
        except InterruptedError:
            continue
        if not r:
            continue
        frame, addr = s.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING:
            continue
        rec = parse(frame, watch)
        if rec:
            rec["t"] = time.time()
            packets.append(rec)
            save(args.record, packets)
    # drain what the kernel already queued
    while True:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            break
        frame, addr = s.recvfrom(65535)
        if addr[2] != PACKET_OUTGOING:
            rec = parse(frame, watch)
            if rec:
                rec["t"] = time.time()
                packets.append(rec)
    save(args.record, packets)


if __name__ == "__main__":
    main()
