#!/usr/bin/env python3
"""Send several HTTP/1.1 requests over one TCP connection (keep-alive or pipelined).

--host H (repeatable): one GET per Host header, in order. --pipeline: all
request heads in one send(); otherwise each is sent after the previous reply.
--header 'K: V' adds a header to every request after the first. Prints JSON:
{"replies": [status...], "error": "..."}; the connection's name is --name.
"""
import argparse
import json
import socket


def read_reply(sock, buf):
    """Read one reply (head + Content-Length body); return (status, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a reply head")
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a reply body")
        buf += chunk
    return status, buf[length:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True, help="name to connect to (resolved through DNS)")
    ap.add_argument("--family", choices=["4", "6"], default="4")
    ap.add_argument("--host", action="append", required=True)
    ap.add_argument("--path", default="/file")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--pipeline", action="store_true")
    ap.add_argument("--timeout", type=float, default=3)
    a = ap.parse_args()
    fam = socket.AF_INET6 if a.family == "6" else socket.AF_INET
    out = {"replies": [], "error": None}
    try:
        addr = socket.getaddrinfo(a.name, 80, fam, socket.SOCK_STREAM)[0][4]
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.settimeout(a.timeout)
        sock.connect(addr)
        reqs = []
        for i, host in enumerate(a.host):
            extra = "".join(h + "\r\n" for h in a.header) if i else ""
            reqs.append(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: lab\r\n%s\r\n"
                         % (a.path, host, extra)).encode())
        buf = b""
        if a.pipeline:
            sock.sendall(b"".join(reqs))
            for _ in reqs:
                status, buf = read_reply(sock, buf)
                out["replies"].append(status)
        else:
            for r in reqs:
                sock.sendall(r)
                status, buf = read_reply(sock, buf)
                out["replies"].append(status)
        sock.close()
    except (OSError, ValueError, ConnectionError) as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
