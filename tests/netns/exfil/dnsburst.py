#!/usr/bin/python3
"""A DNS-tunnelling client: many distinct random names under one parent, over UDP.

  dnsburst.py --server ADDR --parent attacker.example --count 500 [--rate 200]
              [--label-len 12] [--qtype A] [--seed N] [--timeout 1.0]

Sends the queries one after the other, never faster than --rate per second,
waits up to --timeout for each answer, and prints one JSON object:
{"names": [...in send order...], "rcodes": {"REFUSED": 500}, "unanswered": 0,
 "elapsed": 2.6}. Bounded: at most 5000 queries, and the whole run stops at
--deadline seconds (the names not sent are reported as "not_sent").
"""
import argparse
import json
import os
import random
import socket
import string
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "servers"))
import dnsmsg  # noqa: E402

MAX_COUNT = 5000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--parent", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--label-len", type=int, default=12)
    ap.add_argument("--qtype", default="A")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--deadline", type=float, default=60.0)
    args = ap.parse_args()
    if not 0 < args.count <= MAX_COUNT or args.rate <= 0:
        ap.error("--count must be 1..%d and --rate positive" % MAX_COUNT)
    rnd = random.Random(args.seed)
    alphabet = string.ascii_lowercase + string.digits
    names, seen = [], set()
    while len(names) < args.count:
        label = "".join(rnd.choice(alphabet) for _ in range(args.label_len))
        if label not in seen:
            seen.add(label)
            names.append("%s.%s" % (label, args.parent))

    fam = socket.AF_INET6 if ":" in args.server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((args.server, args.port))
    rcodes, unanswered, sent = {}, 0, 0
    interval = 1.0 / args.rate
    t0 = time.monotonic()
    stop = t0 + args.deadline
    for i, name in enumerate(names):
        now = time.monotonic()
        if now >= stop:
            break
        due = t0 + i * interval  # never faster than --rate
        if due > now:
            time.sleep(due - now)
        qid = rnd.randrange(65536)
        s.send(dnsmsg.build_query(qid, [(name, args.qtype, "IN")]))
        sent += 1
        end = time.monotonic() + args.timeout
        got = None
        while got is None:
            left = end - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                resp = s.recv(65535)
            except socket.timeout:
                break
            except OSError:
                break
            if len(resp) >= 12 and struct.unpack("!H", resp[:2])[0] == qid:
                got = resp[3] & 0x0F
        if got is None:
            unanswered += 1
        else:
            rc = dnsmsg.RCODES.get(got, str(got))
            rcodes[rc] = rcodes.get(rc, 0) + 1
    print(json.dumps({"names": names[:sent], "not_sent": len(names) - sent, "rcodes": rcodes,
                      "unanswered": unanswered, "elapsed": time.monotonic() - t0}))


if __name__ == "__main__":
    main()
