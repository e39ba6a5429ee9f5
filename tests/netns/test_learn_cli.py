"""`egressd learn` on synthetic event logs: what it keeps, merges and leaves out.

No netfilter state is touched; the binary runs in a throwaway namespace (the
`bare` fixture of test_cli.py).
"""
import json


from test_cli import bare, write  # noqa: F401  (pytest fixture)

TS = "2026-11-27T12:00:00.000000Z"


def ev(event, **kw):
    d = {"ts": TS, "event": event}
    d.update(kw)
    return json.dumps(d)


def flow(event, name, port=443, src="sni", enforced=None, **kw):
    d = dict(proto="tcp", src="198.51.100.10", sport=40000, dst="203.0.113.10", dport=port,
             name=name, name_source=src, **kw)
    if enforced is not None:
        d["enforced"] = enforced
    return ev(event, **d)


def learn(bare, tmp_path, lines):
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(lines) + "\n")
    p = bare("learn", str(log))
    assert p.returncode == 0, p.stderr
    return p.stdout


def entries(text):
    return [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]


def test_learn_names_ports_and_addresses(bare, tmp_path):
    out = learn(bare, tmp_path, [
        ev("ready", mode="gateway"),
        flow("allow", "updates.example.com", rule="a.list:1"),
        flow("allow", "updates.example.com", rule="a.list:1"),
        flow("deny", "mirror.example.net", port=80, src="http_host", enforced=False,
             reason="name_not_allowed"),
        flow("deny", "mirror.example.net", port=443, enforced=False, reason="name_not_allowed"),
        ev("deny", proto="tcp", src="198.51.100.10", sport=1, dst="203.0.113.20", dport=8443,
           reason="ip_not_allowed", enforced=False),
        ev("dns_deny", proto="udp", src="198.51.100.10", qname="only-resolved.example.org",
           qtype="A", reason="name_not_allowed", enforced=False),
    ])
    got = entries(out)
    assert "updates.example.com" in got, out
    assert "mirror.example.net:80,443" in got, out
    assert "203.0.113.20:8443" in got, out
    assert "only-resolved.example.org" in got, out
    # every entry is commented with what used it and how often
    assert "# updates.example.com: 2 flow(s)" in out, out


def test_learn_leaves_out_enforced_denials_and_credentials(bare, tmp_path):
    out = learn(bare, tmp_path, [
        flow("deny", "attacker.example", enforced=True, reason="name_not_allowed"),
        ev("dns_deny", qname="refused.example", qtype="A", reason="name_not_allowed",
           enforced=True),
        flow("deny", "collect.attacker.example", port=80, src="http_host", enforced=False,
             reason="name_not_allowed", indicators=["credential:aws_access_key"]),
        flow("allow", "ok.example.com"),
    ])
    got = entries(out)
    assert got == ["ok.example.com"], out
    assert "carried a credential" in out, out


def test_learn_suggests_a_wildcard_only_for_many_siblings(bare, tmp_path):
    lines = [flow("allow", "n%d.cdn.example.net" % i) for i in range(5)]
    lines += [flow("allow", "a%d.other.example.org" % i) for i in range(2)]
    out = learn(bare, tmp_path, lines)
    got = entries(out)
    assert "*.cdn.example.net" in got, out
    assert not any(g.endswith(".cdn.example.net") and not g.startswith("*.") for g in got), out
    assert "a0.other.example.org" in got and "a1.other.example.org" in got, out
    assert not any(g.startswith("*.other") for g in got), out


def test_learn_never_suggests_a_public_suffix_wildcard(bare, tmp_path):
    # six different projects on a shared hosting suffix: anyone can register below it
    out = learn(bare, tmp_path, [flow("allow", "p%d.github.io" % i) for i in range(6)])
    got = entries(out)
    assert not any(g.startswith("*.") for g in got), out
    assert sorted(got) == sorted("p%d.github.io" % i for i in range(6)), out


def test_learn_never_suggests_a_multitenant_wildcard(bare, tmp_path):
    # storage accounts: not in the PSL, on egressd's multi-tenant list (issue 9, class 8)
    names = ["acct%d.blob.core.windows.net" % i for i in range(6)]
    out = learn(bare, tmp_path, [flow("allow", n) for n in names])
    got = entries(out)
    assert not any(g.startswith("*.") for g in got), out
    assert sorted(got) == sorted(names), out


def test_learned_list_passes_check(bare, tmp_path):
    lines = [flow("allow", "n%d.cdn.example.net" % i) for i in range(5)]
    lines += [flow("deny", "mirror.example.net", port=80, src="http_host", enforced=False,
                   reason="name_not_allowed")]
    out = learn(bare, tmp_path, lines)
    conf = write(tmp_path, {"learned.list": out})
    p = bare("check", "-c", conf)
    assert p.returncode == 0, p.stderr
    assert "warning" not in p.stderr, p.stderr


def test_learn_bad_input(bare, tmp_path):
    p = bare("learn", str(tmp_path / "missing.jsonl"))
    assert p.returncode != 0 and "missing.jsonl" in p.stderr, p.stderr
    log = tmp_path / "junk.jsonl"
    log.write_text("not json\n" + flow("allow", "ok.example.com") + "\n")
    p = bare("learn", str(log))
    assert p.returncode == 0, p.stderr
    assert "junk.jsonl:1" in p.stderr and entries(p.stdout) == ["ok.example.com"], p
