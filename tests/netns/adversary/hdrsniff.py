#!/usr/bin/python3
"""A header recorder: every TCP packet addressed to a --watch address, headers included.

evasion/sniff.py records packets that carry payload; a covert channel in
headers (IPv4 options, IPv6 extension headers, TCP options) rides on SYNs and
bare ACKs, which it skips. This one runs in the fake internet's namespace on
its interface (AF_PACKET, incoming only) and records each IPv4/IPv6 TCP packet
to a watched address: {"src", "dst", "sport", "dport", "flags", "ip_hdr_len"
(IPv4 header / IPv6 header + extension chain), "tcp_hdr_len", "hex" (the IP
packet, at most 256 bytes)}. Writes JSON to --record when ready and again on
SIGTERM / SIGINT or after --max-seconds: {"ready": true, "packets": [...]}.
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


def parse(frame, watch):
    if len(frame) < 14:
        return None
    etype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if etype == 0x0800 and len(ip) >= 20:
        hl = (ip[0] & 15) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        proto = ip[9]
        dst, src = socket.inet_ntoa(ip[16:20]), socket.inet_ntoa(ip[12:16])
        ip = ip[:total]
    elif etype == 0x86DD and len(ip) >= 40:
        plen = struct.unpack("!H", ip[4:6])[0]
        proto, hl = ip[6], 40
        src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, ip[24:40])
        ip = ip[:40 + plen]
        for _ in range(16):  # the extension chain, bounded
            if proto in (0, 43, 60) and len(ip) >= hl + 2:
                proto, hl = ip[hl], hl + (ip[hl + 1] + 1) * 8
            else:
                break
    else:
        return None
    if dst not in watch or proto != 6 or len(ip) < hl + 20:
        return None
    sp, dp, _, _, doff, flags = struct.unpack("!HHIIBB", ip[hl:hl + 14])
    return {"src": src, "dst": dst, "sport": sp, "dport": dp, "flags": flags,
            "ip_hdr_len": hl, "tcp_hdr_len": (doff >> 4) * 4, "hex": ip[:256].hex()}


def save(path, packets):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"ready": True, "packets": packets}, f)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--watch", action="append", required=True)
    ap.add_argument("--max-seconds", type=float, default=60)
    args = ap.parse_args()
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
        while r:
            frame, addr = s.recvfrom(65535)
            if addr[2] != PACKET_OUTGOING:
                rec = parse(frame, watch)
                if rec:
                    rec["t"] = time.time()
                    packets.append(rec)
            r, _, _ = select.select([s], [], [], 0)
    save(args.record, packets)


if __name__ == "__main__":
    main()
