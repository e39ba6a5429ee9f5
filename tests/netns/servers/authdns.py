#!/usr/bin/python3
"""The attacker's authoritative DNS server for attacker.example (UDP + TCP 53).

Records every query it receives (qname, qtype, transport, peer) to a JSON
file, so tests can prove that no query for a denied name ever left the
gateway. Answers A/AAAA with the attacker's exfiltration host, TXT with a
token. Runs until SIGTERM.
"""
import argparse
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsmsg  # noqa: E402

lock = threading.Lock()
queries = []


def save(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"queries": queries}, f)
    os.replace(tmp, path)


def answer(msg, a4, a6):
    try:
        q = dnsmsg.parse(msg)
    except dnsmsg.BadMessage:
        return None, None
    if not q["questions"]:
        return q, None
    qn = q["questions"][0]
    if not qn["name"].lower().endswith("attacker.example"):
        return q, dnsmsg.build_answer(msg, 5, [])
    if qn["type"] == "A":
        rrs = [(1, ipaddress.IPv4Address(a4).packed)]
    elif qn["type"] == "AAAA":
        rrs = [(28, ipaddress.IPv6Address(a6).packed)]
    elif qn["type"] == "TXT":
        rrs = [(16, b"\x08exfil-ok")]
    else:
        rrs = []
    return q, dnsmsg.build_answer(msg, 0, rrs)


def record(path, q, proto, peer):
    with lock:
        for qn in (q["questions"] if q else [{"name": None, "type": None}]):
            queries.append({"qname": qn["name"], "qtype": qn["type"], "proto": proto,
                            "peer": peer[0]})
        save(path)


def serve_udp(sock, args):
    while True:
        msg, peer = sock.recvfrom(4096)
        q, resp = answer(msg, args.a, args.aaaa)
        record(args.record, q, "udp", peer)
        if resp:
            sock.sendto(resp, peer)


def serve_tcp_conn(conn, peer, args):
    conn.settimeout(5)
    try:
        while True:
            hdr = conn.recv(2, socket.MSG_WAITALL)
            if len(hdr) < 2:
                return
            n = struct.unpack("!H", hdr)[0]
            msg = conn.recv(n, socket.MSG_WAITALL)
            q, resp = answer(msg, args.a, args.aaaa)
            record(args.record, q, "tcp", peer)
            if resp:
                conn.sendall(struct.pack("!H", len(resp)) + resp)
    except OSError:
        pass
    finally:
        conn.close()


def serve_tcp(sock, args):
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn, peer, args), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--a", default="203.0.113.66")
    ap.add_argument("--aaaa", default="2001:db8:2::66")
    args = ap.parse_args()
    threads = []
    for addr in args.listen:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((addr, 53))
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, 53))
        t.listen(16)
        threads.append(threading.Thread(target=serve_udp, args=(u, args), daemon=True))
        threads.append(threading.Thread(target=serve_tcp, args=(t, args), daemon=True))
    with lock:
        save(args.record)  # the file's existence says "ready"
    for t in threads:
        t.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
