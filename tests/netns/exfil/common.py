"""Helpers of the issue-5 lab tests: fake secrets, leak search, metrics, bursts.

Imported by test_indicators.py, test_audit_learn.py and test_metrics.py
(tests/netns is on sys.path, so `from exfil import common`). Nothing here
changes the lab: it reads its files and runs clients in its namespaces.
"""
import base64
import glob
import json
import os
import re

import lab as L

HERE = os.path.dirname(os.path.abspath(__file__))

# AWS's documented example key pair: the shapes of real keys, valid nowhere.
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# ghp_ + 36 alphanumerics: the shape of a classic GitHub personal token.
GITHUB_TOKEN = "ghp_" + "Qx7RmT2vLw9KpZ4nYc8HsJ3fBd6GaE1uVo5i"
assert len(GITHUB_TOKEN) == 40

METRICS_PORT = 9469
LEAK_WINDOW = 8


def mask(secret):
    """The masked form doc/indicators.md allows: <= 4 chars, <= 1/4 each side."""
    show = min(4, len(secret) // 4)
    return secret[:show] + "\u2026" + secret[len(secret) - show:]


def b32_label(secret):
    """The secret as one DNS label: base32, unpadded, lower case (<= 63 chars)."""
    label = base64.b32encode(secret.encode()).decode().rstrip("=").lower()
    assert len(label) <= 63, label
    return label


def leak_hits(text, secret, window=LEAK_WINDOW):
    """Every `window`-character piece of secret found in text (case-insensitive).

    The masked form shows at most 4 characters at each end, separated by an
    ellipsis, so no honest log line contains `window` consecutive characters
    of the secret. JSON may escape "/" as "\\/": both spellings are searched.
    """
    low = text.lower()
    hits = set()
    s = secret.lower()
    for i in range(0, max(1, len(s) - window + 1)):
        piece = s[i:i + window]
        if piece in low or piece.replace("/", "\\/") in low:
            hits.add(piece)
    return sorted(hits)


def daemon_outputs(lab):
    """Everything egressd wrote in this lab: event log, stdout, stderr ({path: text})."""
    out = {}
    paths = [lab.egressd.log] if lab.egressd else []
    paths += sorted(glob.glob(os.path.join(lab.dir, "egressd.*.stdout")))
    paths += sorted(glob.glob(os.path.join(lab.dir, "egressd.*.stderr")))
    for p in paths:
        try:
            with open(p, errors="replace") as f:
                out[p] = f.read()
        except FileNotFoundError:
            pass
    return out


def assert_no_leak(lab, secrets, extra=None):
    """No piece of any secret in egressd's outputs (and in extra texts, e.g. metrics)."""
    texts = daemon_outputs(lab)
    texts.update(extra or {})
    assert any(texts.values()), "nothing to search: no egressd output found"
    found = []
    for what, secret in secrets.items():
        for where, text in texts.items():
            hits = leak_hits(text, secret)
            if hits:
                found.append("%s in %s: %s" % (what, where, hits[:5]))
    assert not found, "secret material in egressd's output:\n" + "\n".join(found)


# -- configuration ---------------------------------------------------------

def with_metrics(egressd, listen="127.0.0.1:%d" % METRICS_PORT):
    """Turn on [metrics] in a conf written by Lab.write_conf (which leaves it empty)."""
    with open(egressd.conf) as f:
        text = f.read()
    assert "[metrics]\nlisten =\n" in text, "lab.write_conf changed its [metrics] section"
    text = text.replace("[metrics]\nlisten =\n", "[metrics]\nlisten = %s\n" % listen)
    with open(egressd.conf, "w") as f:
        f.write(text)
    return egressd


# -- metrics ---------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(lab, ns=None, addr="127.0.0.1", port=METRICS_PORT, timeout=5):
    """GET /metrics with curl in namespace ns (default: egressd's); CompletedProcess."""
    host = "[%s]" % addr if ":" in addr else addr
    return lab.ns_run(ns or lab.fw, ["curl", "-sS", "--noproxy", "*", "--max-time",
                                     str(timeout - 1), "-D", "-",
                                     "http://%s:%d/metrics" % (host, port)], timeout=timeout)


def parse_metrics(text):
    """Prometheus text -> {(name, ((label, value), ...)): float}; HELP/TYPE skipped."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = tuple(sorted(LABEL_RE.findall(m.group(3) or "")))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


class Metrics:
    """One scrape: headers, body, parsed samples."""

    def __init__(self, lab, **kw):
        p = scrape(lab, **kw)
        assert p.returncode == 0, "metrics scrape failed (%d): %s" % (p.returncode, p.stderr)
        head, _, body = p.stdout.replace("\r\n", "\n").partition("\n\n")
        self.status = head.splitlines()[0] if head else ""
        self.headers = head.lower()
        self.text = body
        self.samples = parse_metrics(body)

    def get(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        assert key in self.samples, "no sample %s%s in:\n%s" % (name, labels, self.text)
        return self.samples[key]


# -- clients ---------------------------------------------------------------

def dnsburst(lab, parent, count, rate=200, server=L.RESOLVER4, seed=None, label_len=12,
             qtype="A", timeout=1.0):
    args = [L.PY, os.path.join(HERE, "dnsburst.py"), "--server", server, "--parent", parent,
            "--count", str(count), "--rate", str(rate), "--label-len", str(label_len),
            "--qtype", qtype, "--timeout", str(timeout),
            "--deadline", str(count / rate + 20)]
    if seed is not None:
        args += ["--seed", str(seed)]
    p = lab.ns_run(lab.cli, args, timeout=count / rate + count * timeout + 30)
    assert p.returncode == 0, "dnsburst failed: %s" % p.stderr
    return json.loads(p.stdout)


def connburst(lab, addr, port, count, send=None, timeout=2.0):
    args = [L.PY, os.path.join(HERE, "connburst.py"), "--addr", addr, "--port", str(port),
            "--count", str(count), "--timeout", str(timeout)]
    if send is not None:
        args += ["--send", send]
    p = lab.ns_run(lab.cli, args, timeout=count * timeout + 10)
    assert p.returncode == 0, "connburst failed: %s" % p.stderr
    return json.loads(p.stdout)


def events_dump(egressd):
    return "\n".join(json.dumps(e) for e in egressd.events())
