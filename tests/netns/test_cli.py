"""`egressd check` and `egressd match` on the shipped presets and broken input.

These commands touch no netfilter state; they still run in a throwaway
namespace, never in the root one.
"""
import glob
import os
import uuid

import pytest

import lab as L

PRESETS = sorted(glob.glob(os.path.join(L.REPO, "config", "presets", "*.list")))


@pytest.fixture
def bare(tmp_path):
    name = "%s-%s-bare" % (L.PREFIX, uuid.uuid4().hex[:6])
    L.run(["ip", "netns", "add", name])
    notes = []

    def egressd(*args, env=None):
        e = dict(os.environ)
        e["EGRESSD_PRESET_DIR"] = os.path.join(L.REPO, "config", "presets")
        e.update(env or {})
        p = L.run(["ip", "netns", "exec", name, L.egressd_bin()] + list(args), check=False,
                  timeout=10, env=e)
        notes.append(p.stderr)
        return p
    yield egressd
    L.ns_delete(name)
    bad = [n for n in notes if L.SANITIZER_RE.search(n)]
    assert not bad, "sanitizer report(s):\n" + "\n".join(bad)


def write(tmp_path, allow_files, mode="host"):
    d = tmp_path / "allow.d"
    d.mkdir(exist_ok=True)
    for fname, text in allow_files.items():
        (d / fname).write_text(text)
    conf = tmp_path / "egressd.conf"
    conf.write_text("[egressd]\nmode = %s\nallow = %s/*.list\n\n[dns]\nupstream = 203.0.113.53\n"
                    "\n[log]\nfile = -\n" % (mode, d))
    return str(conf)


def test_presets_are_shipped():
    names = [os.path.basename(p)[:-5] for p in PRESETS]
    assert "trivy" in names, names


@pytest.mark.parametrize("preset", [os.path.basename(p)[:-5] for p in PRESETS] or ["none"])
def test_check_preset(bare, tmp_path, preset):
    conf = tmp_path / "egressd.conf"
    conf.write_text("[egressd]\nmode = host\nallow = preset:%s\n\n[dns]\nupstream = 203.0.113.53\n"
                    % preset)
    p = bare("check", "-c", str(conf))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip(), "check printed no summary"
    assert ": error:" not in p.stdout + p.stderr


def test_check_lab_allowlist(bare, tmp_path):
    conf = write(tmp_path, {"lab.list": L.DEFAULT_ALLOW})
    p = bare("check", "-c", conf)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip()


def test_check_broken_allowlist_names_file_and_line(bare, tmp_path):
    text = ("# CI runner\nupdates.example.com\nmirror.example.net:80,443\n\n"
            "*.cdn.example.com\n203.0.113.0/24:443\ndeb.debian.org:44x\n")
    conf = write(tmp_path, {"ci.list": text})
    p = bare("check", "-c", conf)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert 'ci.list:7: ' in p.stderr, p.stderr
    assert 'bad port "44x"' in p.stderr, p.stderr
    # The daemon refuses the same config and applies nothing.
    p = bare("-c", conf)
    assert p.returncode != 0
    assert "ci.list:7" in p.stderr


@pytest.mark.parametrize("line", ["[2001:db8::/129]:443", "bad..name", "*.:443", "x.example:0",
                                  "203.0.113.0/33"])
def test_check_rejects_bad_entries(bare, tmp_path, line):
    conf = write(tmp_path, {"bad.list": "# header\n" + line + "\n"})
    p = bare("check", "-c", conf)
    assert p.returncode == 1, (line, p.stdout, p.stderr)
    assert "bad.list:2" in p.stderr, p.stderr


@pytest.mark.parametrize("wild,suffix", [
    ("*.github.io", "the public suffix \"github.io\""),
    ("*.blob.core.windows.net", "the multi-tenant suffix \"blob.core.windows.net\""),
    ("*.core.windows.net:443", "the multi-tenant suffix \"blob.core.windows.net\""),
])
def test_check_refuses_public_suffix_wildcard(bare, tmp_path, wild, suffix):
    conf = write(tmp_path, {"ci.list": "exact.example.com\n" + wild + "  # shared storage\n"})
    p = bare("check", "-c", conf)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "ci.list:2: wildcard \"%s\" covers %s" % (wild, suffix) in p.stderr, p.stderr
    assert "\"%s shared\"" % wild in p.stderr, p.stderr   # says how to opt in
    # marked shared: accepted, and both commands say so
    conf = write(tmp_path, {"ci.list": "exact.example.com\n" + wild + " shared\n"})
    p = bare("check", "-c", conf)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "warnings: 0" in p.stdout, p.stdout
    assert "shared:   1 wildcard(s) marked shared" in p.stdout, p.stdout
    p = bare("match", "-c", conf, "tenant." + wild.split(":")[0][2:])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ci.list:2 (%s shared)" % wild in p.stdout, p.stdout
    assert "anyone can register" in p.stdout, p.stdout


def test_check_local_multitenant_list(bare, tmp_path):
    mt = tmp_path / "mt.list"
    mt.write_text("apps.example.net   # our PaaS\n")
    conf = write(tmp_path, {"ci.list": "*.apps.example.net\n"})
    assert bare("check", "-c", conf).returncode == 0
    p = bare("check", "-c", conf, env={"EGRESSD_MULTITENANT": str(mt)})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "ci.list:1: wildcard \"*.apps.example.net\" covers the multi-tenant suffix " \
        "\"apps.example.net\" (listed locally)" in p.stderr, p.stderr
    mt.write_text("two words\n")
    p = bare("check", "-c", conf, env={"EGRESSD_MULTITENANT": str(mt)})
    assert p.returncode == 1 and "%s:1: bad multi-tenant suffix" % mt in p.stderr, p.stderr


def test_check_runner_list(bare, tmp_path):
    with open(os.path.join(L.REPO, "packaging", "github-action", "runner.list")) as f:
        conf = write(tmp_path, {"runner.list": f.read()})
    p = bare("check", "-c", conf)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "warning" not in (p.stdout + p.stderr).replace("warnings: 0", ""), p.stdout + p.stderr
    for denied in ("evilstorage.blob.core.windows.net", "productionresultssa22.blob.core.windows.net"):
        p = bare("match", "-c", conf, denied)
        assert p.returncode == 1, p.stdout


def test_match(bare, tmp_path):
    conf = write(tmp_path, {"lab.list": L.DEFAULT_ALLOW})
    p = bare("match", "-c", conf, "updates.example.com")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "lab.list:%d" % L.ALLOW_LINE["updates.example.com"] in p.stdout
    p = bare("match", "-c", conf, "UPDATES.example.com.:80")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "lab.list:%d" % L.ALLOW_LINE["updates.example.com"] in p.stdout
    p = bare("match", "-c", conf, "203.0.113.20:443")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "lab.list:%d" % L.ALLOW_LINE["203.0.113.20/32:443"] in p.stdout
    for denied in ("cdn-b.example.org", "updates.example.com:8080", "203.0.113.20:80",
                   "updates.examp1e.com", "203.0.113.66:443"):
        p = bare("match", "-c", conf, denied)
        assert p.returncode != 0, "%s said allowed: %s" % (denied, p.stdout)


def test_match_preset_trivy(bare, tmp_path):
    conf = tmp_path / "egressd.conf"
    conf.write_text("[egressd]\nmode = host\nallow = preset:trivy\n")
    p = bare("match", "-c", str(conf), "ghcr.io:443")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "trivy.list:" in p.stdout
    p = bare("match", "-c", str(conf), "api.github.com")
    assert p.returncode != 0, p.stdout
