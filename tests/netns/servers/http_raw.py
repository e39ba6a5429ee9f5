#!/usr/bin/env python3
"""Send raw bytes on one TCP connection to port 80, piece by piece.

--send X (repeatable): bytes (Python escapes, e.g. 'GET / HTTP/1.1\\r\\n'),
each piece in its own send() with TCP_NODELAY and a short pause, so each is
its own segment. --zeros N: that many zero bytes as a piece, in 64 KiB sends.
Reads until the server closes or --timeout. Prints JSON: {"statuses":
[status of each reply seen], "reset": bool, "error": "..."}.
"""
import argparse
import codecs
import json
import re
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--family", choices=["4", "6"], default="4")
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("--zeros", type=int, action="append", default=[])
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=3)
    a = ap.parse_args()
    fam = socket.AF_INET6 if a.family == "6" else socket.AF_INET
    out = {"statuses": [], "reset": False, "error": None}
    got = b""
    try:
        addr = socket.getaddrinfo(a.name, 80, fam, socket.SOCK_STREAM)[0][4]
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(a.timeout)
        sock.connect(addr)
        zeros = list(a.zeros)
        for piece in a.send:
            if piece == "@zeros":
                n = zeros.pop(0)
                while n > 0:
                    k = min(n, 65536)
                    sock.sendall(b"\0" * k)
                    n -= k
            else:
                sock.sendall(codecs.escape_decode(piece.encode())[0])
            time.sleep(a.pause)
        deadline = time.time() + a.timeout
        while time.time() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError as e:
        out["reset"] = True
        out["error"] = "%s: %s" % (type(e).__name__, e)
    except (OSError, ValueError) as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    out["statuses"] = [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
