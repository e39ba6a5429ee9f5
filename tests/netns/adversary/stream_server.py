#!/usr/bin/python3
"""A TLS (or plain TCP) server that counts what each connection delivers.

With --udp-port it also answers UDP: every datagram is counted under its
sender's address and port and answered "ok TOTAL\n" the same way.

Every connection's received application bytes go to a JSON record,
{"connections": [{"local", "peer", "sni", "bytes"}], "total_bytes": N},
rewritten after every read, so a test can say exactly how many bytes reached
the server before and after some instant. Each read is answered with one
line "ok TOTAL\n" (TOTAL: the connection's byte count so far), which lets the
client confirm delivery. Runs until SIGTERM (or --max-seconds).
"""
import argparse
import json
import os
import signal
import socket
import ssl
import threading
import time

lock = threading.Lock()
conns = []


def save(path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"connections": conns, "total_bytes": sum(c["bytes"] for c in conns)}, f)
    os.replace(tmp, path)


def handle(raw, peer, local, ctx, path, deadline):
    rec = {"local": "%s:%d" % local[:2], "peer": peer[0], "sni": None, "bytes": 0}
    with lock:
        conns.append(rec)
        save(path)
    conn = raw
    try:
        raw.settimeout(5)
        if ctx:
            sni = []
            ctx_conn = ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
            ctx_conn.do_handshake()
            conn = ctx_conn
            sni = getattr(ctx_conn, "sni_seen", None)
            rec["sni"] = sni
        conn.settimeout(1.0)
        while time.monotonic() < deadline:
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            with lock:
                rec["bytes"] += len(data)
                save(path)
            conn.sendall(b"ok %d\n" % rec["bytes"])
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            conn.close()
        except OSError:
            pass


def serve(sock, ctx, path, deadline):
    while True:
        raw, peer = sock.accept()
        threading.Thread(target=handle, args=(raw, peer, sock.getsockname(), ctx, path, deadline),
                         daemon=True).start()


def serve_udp(sock, path):
    local = sock.getsockname()
    recs = {}
    while True:
        data, peer = sock.recvfrom(65536)
        with lock:
            rec = recs.get(peer[:2])
            if rec is None:
                rec = {"local": "%s:%d" % local[:2], "peer": peer[0], "sni": None, "bytes": 0,
                       "udp": True}
                recs[peer[:2]] = rec
                conns.append(rec)
            rec["bytes"] += len(data)
            save(path)
        sock.sendto(b"ok %d\n" % rec["bytes"], peer)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--udp-port", type=int)
    ap.add_argument("--max-seconds", type=float, default=120)
    a = ap.parse_args()
    deadline = time.monotonic() + a.max_seconds
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)

        def on_sni(sslobj, name, _ctx):
            sslobj.sni_seen = name
        ctx.sni_callback = on_sni
    for addr in a.listen:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, a.port))
        s.listen(64)
        threading.Thread(target=serve, args=(s, ctx, a.record, deadline), daemon=True).start()
        if a.udp_port:
            u = socket.socket(fam, socket.SOCK_DGRAM)
            u.bind((addr, a.udp_port))
            threading.Thread(target=serve_udp, args=(u, a.record), daemon=True).start()
    with lock:
        save(a.record)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while time.monotonic() < deadline:
        time.sleep(0.2)


if __name__ == "__main__":
    main()
