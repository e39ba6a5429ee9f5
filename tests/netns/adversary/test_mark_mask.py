"""Issue 9, denial of service: egressd's mark bits were fixed at 0x0f000000.

A host where another user of packet marks (Calico, Cilium, kube-proxy...)
has those bits could not run egressd: either would misread or clobber the
other's marks. `[queue] mark_mask` moves them; `egressd rules --apply`
refuses while another table uses them.

- With mark_mask = 0x00f00000 and a foreign table that sets 0x0a000000 on
  every packet before egressd's chains (and counts it afterwards), allowed
  flows work, denied ones are denied, the foreign bits survive egressd's
  verdicts, and egressd's ruleset and conntrack marks use the new bits only.
- A foreign table that matches or sets bits of our mask: --apply refuses,
  naming the table, and installs nothing; --force installs.
"""
import json

import lab as L

MASK = "0x00f00000"
EXTRA = "[queue]\nmark_mask = %s\n" % MASK


def nft(lab, script):
    p = lab.ns_run(lab.fw, ["nft", "-f", "-"], input=script)
    assert p.returncode == 0, p.stderr


def tables(lab):
    return L.run(["ip", "netns", "exec", lab.fw, "nft", "list", "tables"]).stdout


def foreign_table(lab):
    """Someone else's marks in bits 0x0f000000, set before egressd's chains
    on the same hook and counted after them."""
    hook = "forward" if lab.mode == "gateway" else "output"
    nft(lab, """table inet foreign {
  chain early { type filter hook %s priority -300; policy accept;
    meta mark set meta mark | 0x0a000000
  }
  chain late { type filter hook postrouting priority 300; policy accept;
    meta mark & 0x0f000000 == 0x0a000000 counter
  }
}
""" % hook)


def foreign_counter(lab):
    out = L.run(["ip", "netns", "exec", lab.fw, "nft", "-j", "list", "chain", "inet",
                 "foreign", "late"]).stdout
    for item in json.loads(out)["nftables"]:
        for e in item.get("rule", {}).get("expr", []):
            if "counter" in e:
                return e["counter"]["packets"]
    raise AssertionError("no counter in:\n" + out)


def test_other_mask_allowed_and_denied_flows(anylab):
    lab = anylab
    foreign_table(lab)
    e = lab.write_conf(extra=EXTRA)
    p = e.apply()
    # The foreign table uses 0x0f000000, not our bits: no refusal.
    assert p.returncode == 0, p.stderr
    e.start(apply=False)
    rules = L.run(["ip", "netns", "exec", lab.fw, "nft", "list", "table", "inet",
                   "egressd"]).stdout
    assert "0x00f00000" in rules and "0x0f000000" not in rules, rules

    before = foreign_counter(lab)
    ok = lab.curl("https://updates.example.com/file")
    assert ok.returncode == 0 and ok.stdout == L.site_body("updates"), ok.stderr
    ok6 = lab.curl("https://updates.example.com/file", "-6")
    assert ok6.returncode == 0 and ok6.stdout == L.site_body("updates"), ok6.stderr
    bad = lab.curl("https://updates.examp1e.com/upload", "-d", "x=1", "--resolve",
                   "updates.examp1e.com:443:" + L.ATTACKER4, timeout=6)
    assert bad.returncode != 0, bad.stdout
    e.wait_event(lambda ev: ev.get("event") == "deny" and ev.get("dst") == L.ATTACKER4,
                 what="deny of the attacker")
    lab.assert_attacker_got_nothing()
    # The other user's bits came through egressd's verdicts untouched.
    assert foreign_counter(lab) > before
    # The allowed connection carries our ALLOW value in our bits.
    ct = L.run(["ip", "netns", "exec", lab.fw, "conntrack", "-L", "-p", "tcp", "--dport", "443",
                "-m", "0x00100000/0x00f00000"], check=False).stdout
    assert "dport=443" in ct and "mark=%d " % 0x00100000 in ct, ct


def test_apply_refuses_a_table_using_our_bits(anylab):
    lab = anylab
    hook = "forward" if lab.mode == "gateway" else "output"
    nft(lab, """table ip calico_like {
  chain c { type filter hook %s priority -150; policy accept;
    meta mark & 0x00300000 == 0x00100000 accept
    meta mark set meta mark | 0x00400000
  }
}
""" % hook)
    e = lab.write_conf(extra=EXTRA)
    p = e.apply()
    assert p.returncode == 1, p.stderr
    assert "mark_mask = 0x00f00000 is used by other nftables rules" in p.stderr, p.stderr
    assert "table ip calico_like chain c rule handle" in p.stderr, p.stderr
    assert "matches mark bits 0x00300000" in p.stderr, p.stderr
    assert "sets mark bits 0x00400000" in p.stderr, p.stderr
    assert "egressd" not in tables(lab).replace("calico_like", ""), tables(lab)
    # The default mask does not collide with that table.
    e2 = lab.write_conf(name="default.conf")
    p = e2.apply()
    assert p.returncode == 0, p.stderr
    assert e2.delete().returncode == 0
    # --force: the operator says the overlap is known.
    p = e.cmd("rules", "-c", e.conf, "--apply", "--backend", "xt", "--force")
    assert p.returncode == 0, p.stderr
    assert "--force: applying anyway" in p.stderr, p.stderr
    assert "table inet egressd" in tables(lab)
    assert e.delete().returncode == 0


def test_other_mask_keeps_inspecting_plain_http(anylab):
    """The INSPECT ct mark (plain HTTP, every request head still queued) and
    QUEUED_NEW live in the configured bits too: with mark_mask = 0x00f00000 a
    keep-alive request for another tenant of an allowed CDN address is refused
    as with the default mask (tests/netns/adversary/test_http_keepalive.py)."""
    import test_http_keepalive as K

    e = anylab.start_egressd(allow=K.ALLOW, extra=EXTRA)
    out = K.pipeline(anylab, "4", ["cdn-a.example.org", "cdn-b.example.org"])
    assert out["replies"][:1] == [200], out
    assert not K.served(anylab, "cdn-b.example.org"), anylab.nginx_access()
    ev = e.wait_event(K.deny_on_30(e, "4"), what="deny of the second request's Host")
    assert ev.get("reason") == "name_not_allowed", ev
    rules = L.run(["ip", "netns", "exec", anylab.fw, "nft", "list", "table", "inet",
                   "egressd"]).stdout
    # INSPECT = 5 and QUEUED_NEW = 6 placed in the mask's bits
    assert "== 0x00500000 ct direction reply accept" in rules, rules
    new = [ln for ln in rules.splitlines() if "ct state new meta mark set" in ln]
    assert new and all(ln.endswith("| 0x00600000") for ln in new), rules
