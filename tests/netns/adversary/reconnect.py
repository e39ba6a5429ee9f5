#!/usr/bin/python3
"""Issue 9, class 1: a new connection on the same 4-tuple.

Connects from a fixed source port to the address of --allowed with that SNI,
fetches /file, closes with RST (SO_LINGER 0), then reconnects from the same
port to the same address within a second with the SNI --denied. Needs no
privilege. Prints {"first": body|error, "second": body|error}.
"""
import argparse
import json
import socket
import ssl
import struct
import sys
import time


def fetch(fam, addr, port, sport, sni, cafile, rst, timeout):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(timeout)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", sport))
    try:
        s.connect((addr, port))
        ctx = ssl.create_default_context(cafile=cafile)
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.sendall(b"GET /file HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n" %
                  sni.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = t.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(body) < n:
            chunk = t.recv(4096)
            if not chunk:
                break
            body += chunk
        result = body.decode(errors="replace")
        if rst:
            t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.close()
        return result
    except (OSError, ssl.SSLError) as e:
        s.close()
        return "error: %s" % e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--allowed", required=True)
    ap.add_argument("--denied", required=True)
    ap.add_argument("--fam", choices=["4", "6"], default="4")
    ap.add_argument("--sport", type=int, default=41234)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--timeout", type=float, default=4)
    a = ap.parse_args()
    fam = socket.AF_INET6 if a.fam == "6" else socket.AF_INET
    addr = socket.getaddrinfo(a.allowed, 443, fam, socket.SOCK_STREAM)[0][4][0]
    out = {"addr": addr}
    out["first"] = fetch(fam, addr, 443, a.sport, a.allowed, a.cafile, True, a.timeout)
    time.sleep(0.3)
    out["second"] = fetch(fam, addr, 443, a.sport, a.denied, a.cafile, False, a.timeout)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
