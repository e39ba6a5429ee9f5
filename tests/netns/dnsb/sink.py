#!/usr/bin/python3
"""A DNS server that never answers: reads every query (UDP and TCP, port 53)
and records it, so that an upstream that has gone silent can be told apart
from one that could not be reached.

  sink.py --record FILE --listen ADDR [--listen ADDR ...]
FILE: {"udp": [{"peer", "bytes"}], "tcp": [{"peer", "bytes"}]}, rewritten on
every query; its existence says "listening". Runs until SIGTERM. Each TCP
connection is held open (never answered) for at most 30 s.
"""
import argparse
import json
import os
import signal
import socket
import threading
import time

lock = threading.Lock()
seen = {"udp": [], "tcp": []}
MAX_RECORDS = 1000


def save(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(seen, f)
    os.replace(tmp, path)


def note(kind, peer, n, path):
    with lock:
        if len(seen[kind]) < MAX_RECORDS:
            seen[kind].append({"peer": peer, "bytes": n})
        save(path)


def serve_udp(sock, path):
    while True:
        data, peer = sock.recvfrom(65535)
        note("udp", peer[0], len(data), path)


def tcp_conn(conn, peer, path):
    conn.settimeout(1.0)
    deadline = time.monotonic() + 30
    total = 0
    try:
        while time.monotonic() < deadline:
            try:
                data = conn.recv(65535)
            except socket.timeout:
                continue
            if not data:
                break
            total += len(data)
            note("tcp", peer[0], len(data), path)
    except OSError:
        pass
    finally:
        conn.close()


def serve_tcp(sock, path):
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=tcp_conn, args=(conn, peer, path), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--listen", action="append", required=True)
    args = ap.parse_args()
    threads = []
    for addr in args.listen:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((addr, 53))
        threads.append(threading.Thread(target=serve_udp, args=(u, args.record), daemon=True))
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, 53))
        t.listen(16)
        threads.append(threading.Thread(target=serve_tcp, args=(t, args.record), daemon=True))
    with lock:
        save(args.record)
    for th in threads:
        th.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
