"""Issue 13, journald-native logging, with the real daemon.

No journald runs in the lab, so a stand-in takes its place: a datagram
socket bound by this test, bind-mounted at /run/systemd/journal/socket in a
private mount namespace of egressd only (tmpfs over /run/systemd there; the
host's /run is untouched). egressd runs with `[log] file = -`, its stdout a
file and JOURNAL_STREAM naming that file's device:inode, as systemd does for
StandardOutput=journal. The entries must carry the EGRESSD_* fields and the
JSON line as MESSAGE; and without a matching JOURNAL_STREAM (every other
test) the plain lines go to stdout.
"""
import os
import re
import socket

import lab as L


def parse_native(data):
    """journald's native protocol as sd_journal_sendv writes short values: KEY=value\\n."""
    out = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_journal_entries_with_fields(gwlab):
    e = gwlab.write_conf(extra="")
    with open(e.conf) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^file = .*$", "file = -", text)
    assert n == 1
    text = text.replace("level = all\n", "level = all\nhost = gw-j.example\n", 1)
    with open(e.conf, "w") as f:
        f.write(text)
    d = gwlab.dir
    jdir = os.path.join(d, "journal")
    os.makedirs(jdir, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(jdir, "socket"))
    os.chmod(os.path.join(jdir, "socket"), 0o666)
    sock.settimeout(0.5)
    out = os.path.join(d, "egressd.journal.stdout")
    open(out, "w").close()
    st = os.stat(out)
    p = gwlab.ns_run(gwlab.fw, [L.egressd_bin(), "rules", "-c", e.conf, "--apply", "--backend", "xt"])
    assert p.returncode == 0, p.stderr
    wrap = ("mount --make-rprivate / && mount -t tmpfs tmpfs /run/systemd && "
            "mkdir /run/systemd/journal && mount --bind %s /run/systemd/journal && "
            "exec \"$@\"" % jdir)
    env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    gwlab.stderr_files.append(os.path.join(d, "egressd.journal.stderr"))  # sanitizer check
    proc = gwlab.spawn(gwlab.fw, ["unshare", "-m", "sh", "-c", wrap, "sh",
                                  L.egressd_bin(), "-c", e.conf],
                       stdout=out, stderr=os.path.join(d, "egressd.journal.stderr"), env=env)
    entries = []

    def got(pred):
        while True:
            try:
                entries.append(parse_native(sock.recv(65536)))
            except socket.timeout:
                break
        return any(pred(x) for x in entries)

    try:
        L.wait_for(lambda: got(lambda x: x.get("EGRESSD_EVENT") == "ready") or
                   proc.poll() is not None, 10, "the ready entry")
        assert proc.poll() is None, open(os.path.join(d, "egressd.journal.stderr")).read()
        r = gwlab.curl("https://203.0.113.66/", "-4", "-k", timeout=4)
        assert r.returncode != 0
        L.wait_for(lambda: got(lambda x: x.get("EGRESSD_EVENT") == "deny"), 8, "a deny entry")
        deny = [x for x in entries if x.get("EGRESSD_EVENT") == "deny"][-1]
        assert deny["EGRESSD_DST"] == "203.0.113.66", deny
        assert deny["EGRESSD_DPORT"] == "443", deny
        assert deny["EGRESSD_REASON"] == "ip_not_allowed", deny
        assert deny["EGRESSD_HOST"] == "gw-j.example", deny
        assert deny["SYSLOG_IDENTIFIER"] == "egressd"
        assert deny["PRIORITY"] in ("2", "3", "4", "5"), deny
        assert '"event":"deny"' in deny["MESSAGE"] and '"host":"gw-j.example"' in deny["MESSAGE"]
        # the lines went to the journal, not to stdout
        assert "\"event\":\"deny\"" not in open(out).read()
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except Exception:
            proc.kill()
        sock.close()
    gwlab.assert_attacker_got_nothing()
