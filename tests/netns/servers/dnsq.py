#!/usr/bin/python3
"""Send one crafted DNS query and print the outcome as JSON.

  dnsq.py --server 203.0.113.53 --q NAME[/TYPE[/CLASS]] [--q ...] [--tcp] [--timeout S]
prints {"rcode": "REFUSED", "answers": [...], "elapsed_ms": 3.2} or
{"error": "timeout", "elapsed_ms": ...}. The time covers send to answer only.
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsmsg  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--q", action="append", required=True)
    ap.add_argument("--tcp", action="store_true")
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    questions = []
    for q in args.q:
        parts = q.split("/")
        questions.append((parts[0], parts[1] if len(parts) > 1 else "A",
                          parts[2] if len(parts) > 2 else "IN"))
    qid = random.randrange(65536)
    msg = dnsmsg.build_query(qid, questions)
    fam = socket.AF_INET6 if ":" in args.server else socket.AF_INET
    out = {}
    t0 = time.monotonic()
    try:
        if args.tcp:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(args.timeout)
            s.connect((args.server, args.port))
            s.sendall(struct.pack("!H", len(msg)) + msg)
            hdr = s.recv(2, socket.MSG_WAITALL)
            if len(hdr) < 2:
                raise ConnectionError("closed")
            resp = s.recv(struct.unpack("!H", hdr)[0], socket.MSG_WAITALL)
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(args.timeout)
            s.sendto(msg, (args.server, args.port))
            deadline = t0 + args.timeout
            while True:
                resp, _ = s.recvfrom(65535)
                if len(resp) >= 2 and struct.unpack("!H", resp[:2])[0] == qid:
                    break
                if time.monotonic() > deadline:
                    raise socket.timeout()
        out["elapsed_ms"] = (time.monotonic() - t0) * 1000
        p = dnsmsg.parse(resp)
        if p["id"] != qid:
            out["error"] = "id mismatch"
        out.update(rcode=p["rcode_name"], answers=p["answers"], questions=p["questions"])
    except socket.timeout:
        out.update(error="timeout", elapsed_ms=(time.monotonic() - t0) * 1000)
    except (OSError, ConnectionError, dnsmsg.BadMessage) as e:
        out.update(error="%s: %s" % (type(e).__name__, e),
                   elapsed_ms=(time.monotonic() - t0) * 1000)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
