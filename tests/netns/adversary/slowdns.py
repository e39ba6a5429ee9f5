#!/usr/bin/python3
"""A slow upstream resolver: answers every query after --delay seconds.

Models a recursive resolver on a cache miss (a random name under a CDN
wildcard takes it tens to hundreds of milliseconds to resolve), which is the
window an answer forger floods into. --host NAME=ADDR (A or AAAA by the
address) answers those names; anything else gets NXDOMAIN. The question is
echoed byte for byte (case preserved, as real resolvers do). --drop SUFFIX:
queries for names under SUFFIX are never answered (an upstream that lost
them). Runs at most --max-seconds. Stdlib only.
"""
import argparse
import ipaddress
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "servers"))
import dnsmsg  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--delay", type=float, default=0.7)
    ap.add_argument("--host", action="append", default=[])
    ap.add_argument("--max-seconds", type=float, default=60)
    ap.add_argument("--drop", action="append", default=[])
    a = ap.parse_args()
    hosts = {}
    for h in a.host:
        name, addr = h.split("=")
        ip = ipaddress.ip_address(addr)
        hosts.setdefault(name.lower(), {})[28 if ip.version == 6 else 1] = ip.packed
    socks = []
    for addr in a.listen:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((addr, 53))
        socks.append(s)
    lock = threading.Lock()
    drop = [dnsmsg.encode_name(x.lower()) for x in a.drop]

    def answer(s, q, peer):
        try:
            p = dnsmsg.parse(q)
            qn = p["questions"][0]
            qt = dnsmsg.TYPES.get(qn["type"], qn["type"])
            rd = hosts.get(qn["name"].lower(), {})
            if rd:
                msg = dnsmsg.build_answer(q, 0, [(qt, rd[qt])] if qt in rd else [])
            else:
                msg = dnsmsg.build_answer(q, 3, [])
        except (dnsmsg.BadMessage, IndexError, KeyError):
            return
        with lock:
            s.sendto(msg, peer)

    def serve(s):
        while True:
            q, peer = s.recvfrom(4096)
            if drop and any(d in q.lower() for d in drop):
                continue
            threading.Timer(a.delay, answer, (s, q, peer)).start()

    for s in socks:
        threading.Thread(target=serve, args=(s,), daemon=True).start()
    print("ready", flush=True)
    time.sleep(a.max_seconds)
    os._exit(0)


if __name__ == "__main__":
    main()
