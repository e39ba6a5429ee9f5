#!/usr/bin/python3
"""One DNS query of any type, the outcome as JSON (for the DNS-binding tests).

  query.py --server ADDR --name NAME [--type A|AAAA|HTTPS|SVCB|N] [--tcp]
           [--edns SIZE] [--timeout S]
prints {"rcode": "NOERROR", "tc": false, "ancount": 1, "answers": [...],
"elapsed_ms": 3.2} or {"error": "timeout", "elapsed_ms": ...}. Unlike
servers/dnsq.py it takes numeric types (HTTPS = 65, SVCB = 64), reports the
TC bit and can add an EDNS OPT record:

  OPT RR (RFC 6891 6.1.2): name 0 | type 41 | class = UDP size | ttl 0 | rdlen 0
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "servers"))
import dnsmsg  # noqa: E402

TYPES = dict(dnsmsg.TYPES, HTTPS=65, SVCB=64)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--name", required=True)
    ap.add_argument("--type", default="A")
    ap.add_argument("--tcp", action="store_true")
    ap.add_argument("--edns", type=int, default=0, help="advertised UDP size; 0: no OPT")
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    qtype = int(args.type) if args.type.isdigit() else TYPES[args.type.upper()]
    qid = random.randrange(65536)
    msg = dnsmsg.build_query(qid, [(args.name, qtype, "IN")])
    if args.edns:
        msg = msg[:10] + struct.pack("!H", 1) + msg[12:]
        msg += b"\0" + struct.pack("!HHIH", 41, args.edns, 0, 0)
    fam = socket.AF_INET6 if ":" in args.server else socket.AF_INET
    out = {}
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    try:
        if args.tcp:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(args.timeout)
            s.connect((args.server, args.port))
            s.sendall(struct.pack("!H", len(msg)) + msg)
            resp = recv_exact(s, struct.unpack("!H", recv_exact(s, 2))[0])
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.sendto(msg, (args.server, args.port))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout()
                s.settimeout(left)
                resp, _ = s.recvfrom(65535)
                if len(resp) >= 2 and struct.unpack("!H", resp[:2])[0] == qid:
                    break
        out["elapsed_ms"] = (time.monotonic() - t0) * 1000
        p = dnsmsg.parse(resp)
        names = {v: k for k, v in TYPES.items()}
        answers = [dict(a, type=names.get(a["type"], a["type"]) if isinstance(a["type"], int)
                        else a["type"]) for a in p["answers"]]
        out.update(rcode=p["rcode_name"], tc=p["tc"], ancount=len(answers), answers=answers,
                   size=len(resp))
    except socket.timeout:
        out.update(error="timeout", elapsed_ms=(time.monotonic() - t0) * 1000)
    except (OSError, ConnectionError, dnsmsg.BadMessage) as e:
        out.update(error="%s: %s" % (type(e).__name__, e),
                   elapsed_ms=(time.monotonic() - t0) * 1000)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
