#!/usr/bin/python3
"""The attacker's collection host: accepts TCP (443, 80) and UDP (443).

Records every connection and every byte it receives, per connection, to a
JSON file: {"connections": [{"proto", "local", "peer", "bytes", "head"}],
"total_bytes": N}. A plain HTTP request is answered 200 so that, without
egressd, an exfiltration would look successful. Runs until SIGTERM.
"""
import argparse
import json
import os
import signal
import socket
import threading
import time

lock = threading.Lock()
conns = []


def save(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"connections": conns, "total_bytes": sum(c["bytes"] for c in conns)}, f)
    os.replace(tmp, path)


def tcp_conn(conn, peer, local, path):
    rec = {"proto": "tcp", "local": "%s:%d" % local[:2], "peer": peer[0], "bytes": 0, "head": ""}
    with lock:
        conns.append(rec)
        save(path)
    conn.settimeout(1.0)
    deadline = time.monotonic() + 15
    answered = False
    buf = b""
    try:
        while time.monotonic() < deadline:
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            buf += data
            with lock:
                rec["bytes"] += len(data)
                rec["head"] = buf[:512].decode("latin-1")
                save(path)
            if not answered and b"\r\n\r\n" in buf and buf[:4] in (b"GET ", b"POST", b"PUT "):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                answered = True
    except OSError:
        pass
    finally:
        conn.close()


def serve_tcp(sock, path):
    while True:
        conn, peer = sock.accept()
        threading.Thread(target=tcp_conn, args=(conn, peer, sock.getsockname(), path),
                         daemon=True).start()


def serve_udp(sock, path):
    local = sock.getsockname()
    while True:
        data, peer = sock.recvfrom(65536)
        with lock:
            conns.append({"proto": "udp", "local": "%s:%d" % local[:2], "peer": peer[0],
                          "bytes": len(data), "head": data[:512].decode("latin-1")})
            save(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--tcp", action="append", type=int, default=[])
    ap.add_argument("--udp", action="append", type=int, default=[])
    args = ap.parse_args()
    threads = []
    for addr in args.listen:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        for port in args.tcp:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.listen(64)
            threads.append(threading.Thread(target=serve_tcp, args=(s, args.record), daemon=True))
        for port in args.udp:
            u = socket.socket(fam, socket.SOCK_DGRAM)
            u.bind((addr, port))
            threads.append(threading.Thread(target=serve_udp, args=(u, args.record), daemon=True))
    with lock:
        save(args.record)  # the file's existence says "ready"
    for t in threads:
        t.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
