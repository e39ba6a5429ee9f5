#!/usr/bin/python3
"""A UDP server for the QUIC tests: records every datagram, answers each.

Listens on every --listen address at --port; writes
{"datagrams": [{"local", "peer", "len", "sha256", "head"}], "total_bytes": N}
to --record (atomically; the file's existence says "ready") and sends a
short reply to the datagram's source, so a client can see the path back.
Runs until SIGTERM.
"""
import argparse
import hashlib
import json
import os
import selectors
import signal
import socket


def save(path, grams):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"datagrams": grams, "total_bytes": sum(g["len"] for g in grams)}, f)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", required=True)
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--port", type=int, default=443)
    args = ap.parse_args()
    sel = selectors.DefaultSelector()
    for addr in args.listen:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((addr, args.port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    grams = []
    save(args.record, grams)
    rd, wr = os.pipe()
    os.set_blocking(wr, False)
    signal.set_wakeup_fd(wr)
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    os.set_blocking(rd, False)
    sel.register(rd, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj == rd:
                return
            s = key.fileobj
            try:
                data, peer = s.recvfrom(65536)
            except BlockingIOError:
                continue
            local = s.getsockname()
            grams.append({"local": "%s:%d" % local[:2], "peer": peer[0], "len": len(data),
                          "sha256": hashlib.sha256(data).hexdigest(),
                          "head": data[:32].hex()})
            save(args.record, grams)
            try:
                s.sendto(b"recorded %d" % len(data), peer)
            except OSError:
                pass


if __name__ == "__main__":
    main()
