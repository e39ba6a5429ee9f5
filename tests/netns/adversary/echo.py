#!/usr/bin/python3
"""A tiny echo server and client for the host-mode reply tests (issue 9, class 1).

server: --listen ADDR --port P --proto udp|tcp; answers b"pong:" + what it
got, to every datagram / on every connection, until killed (each socket
operation bounded by 5 s); writes --ready FILE when listening.
client: --connect ADDR --port P --proto udp|tcp [--bind ADDR] [--sport S]; sends b"ping",
waits --wait seconds for the answer; prints {"answer": "..." | null}.
"""
import argparse
import json
import socket


def fam(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(a):
    st = socket.SOCK_DGRAM if a.proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(fam(a.listen), st)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.listen, a.port))
    if a.proto == "tcp":
        s.listen(8)
    open(a.ready, "w").close()
    while True:
        if a.proto == "udp":
            data, peer = s.recvfrom(2048)
            s.sendto(b"pong:" + data, peer)
            continue
        c, _ = s.accept()
        c.settimeout(5)
        try:
            c.sendall(b"pong:" + c.recv(2048))
        except OSError:
            pass
        c.close()


def client(a):
    st = socket.SOCK_DGRAM if a.proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(fam(a.connect), st)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.bind or a.sport:
        s.bind((a.bind or ("::" if ":" in a.connect else "0.0.0.0"), a.sport))
    s.settimeout(a.wait)
    answer = None
    try:
        s.connect((a.connect, a.port))
        s.send(b"ping")
        answer = s.recv(2048).decode(errors="replace") or None
    except OSError:
        pass
    print(json.dumps({"answer": answer}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen")
    ap.add_argument("--connect")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--sport", type=int, default=0)
    ap.add_argument("--bind", default="", help="client: source address")
    ap.add_argument("--wait", type=float, default=1.0)
    ap.add_argument("--ready", default="/dev/null")
    a = ap.parse_args()
    if a.listen:
        serve(a)
    else:
        client(a)


if __name__ == "__main__":
    main()
