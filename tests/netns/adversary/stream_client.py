#!/usr/bin/python3
"""A long-lived client connection, driven line by line on stdin.

Connects to NAME:PORT (resolved through the namespace's resolver, i.e.
egressd's DNS) over TLS with that SNI (or plain TCP with --plain), prints
{"connected": true, "addr": A} (or {"connected": false, "error": E}) as one
JSON line, then for every "send N" line on stdin sends N bytes and waits up
to --ack-timeout seconds for the server's "ok TOTAL" line; prints
{"ok": true, "acked": TOTAL} or {"ok": false, "error": E}. Once the
connection failed, every later send answers {"ok": false, ...} at once.
With --udp: one connected UDP socket (one source port, one conntrack
entry), each "send N" is one datagram; a missing answer fails that send only.
"""
import argparse
import json
import socket
import ssl
import sys
import time


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--family", choices=["4", "6"], default="4")
    ap.add_argument("--cafile")
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--udp", action="store_true")
    ap.add_argument("--ack-timeout", type=float, default=3.0)
    a = ap.parse_args()
    fam = socket.AF_INET if a.family == "4" else socket.AF_INET6
    try:
        kind = socket.SOCK_DGRAM if a.udp else socket.SOCK_STREAM
        ai = socket.getaddrinfo(a.name, a.port, fam, kind)
        addr = ai[0][4]
        s = socket.socket(fam, kind)
        s.settimeout(5)
        s.connect(addr)
        if not a.plain and not a.udp:
            ctx = ssl.create_default_context(cafile=a.cafile)
            s = ctx.wrap_socket(s, server_hostname=a.name)
    except (OSError, ssl.SSLError) as e:
        out({"connected": False, "error": repr(e)})
        return
    out({"connected": True, "addr": addr[0]})
    failed = None
    buf = b""
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts[0] != "send":
            out({"ok": False, "error": "bad command %r" % line})
            continue
        if failed:
            out({"ok": False, "error": failed})
            continue
        n = int(parts[1])
        if a.udp:
            try:
                s.settimeout(a.ack_timeout)
                s.send(b"x" * n)
                ack = s.recv(4096)
                out({"ok": True, "acked": int(ack.split()[1])})
            except (OSError, ValueError, IndexError) as e:
                out({"ok": False, "error": repr(e)})
            continue
        try:
            s.settimeout(a.ack_timeout)
            s.sendall(b"x" * n)
            deadline = time.monotonic() + a.ack_timeout
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("no ack within %.1fs" % a.ack_timeout)
                s.settimeout(left)
                data = s.recv(4096)
                if not data:
                    raise ConnectionError("closed by peer")
                buf += data
            ack, buf = buf.split(b"\n", 1)
            out({"ok": True, "acked": int(ack.split()[1])})
        except (OSError, ssl.SSLError, ValueError) as e:
            failed = repr(e)
            out({"ok": False, "error": failed})
    try:
        s.close()
    except OSError:
        pass


if __name__ == "__main__":
    main()
