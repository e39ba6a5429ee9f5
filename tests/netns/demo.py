#!/usr/bin/python3
"""`./lab demo`: a compromised scanner behind egressd (gateway mode).

The scanner may fetch its vulnerability database from mirror.example.net
and nothing else. It then tries to send a (fake) cloud key out four ways.
Exit 0 when the download worked, every exfiltration was denied and logged,
and the attacker received 0 bytes and 0 DNS queries; 1 otherwise.
"""
import collections
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L  # noqa: E402

TTY = sys.stdout.isatty()
COLORS = {"allow": "32", "dns_allow": "36", "deny": "31", "dns_deny": "35", "ready": "1",
          "error": "33"}
ALLOW = """\
# The scanner's vulnerability-DB mirror: the one endpoint it needs.
mirror.example.net
"""
DB = json.dumps({"schema": 2, "vulnerabilities": [{"id": "CVE-2026-0001", "pkg": "libdemo"}]})
EXFIL_STEPS = ["https-post-lookalike", "http-post-ip", "dns-labels", "forged-sni"]


def c(code, text):
    return "\033[%sm%s\033[0m" % (code, text) if TTY else text


def show_event(ev):
    kind = ev.get("event", "?")
    text = json.dumps(ev, indent=2, ensure_ascii=False)
    print(c(COLORS.get(kind, "0"), text))


def main():
    workdir = tempfile.mkdtemp(prefix="egressd-demo.")
    ok = True
    lab = None
    try:
        print(c("1", "Setting up: client -> gateway (egressd) -> fake internet ..."))
        ca = L.make_ca(os.path.join(workdir, "ca"))
        lab = L.Lab(os.path.join(workdir, "lab"), ca, "gateway")
        os.makedirs(lab.dir)
        lab.up()
        with open(os.path.join(lab.dir, "www", "mirror", "db.json"), "w") as f:
            f.write(DB)
        e = lab.write_conf(allow=ALLOW, level="all")
        e.start(backend="auto")
        print("egressd is running in namespace %s; allowlist:\n%s" % (lab.gw, ALLOW))

        print(c("1", "Running the compromised scanner in the client namespace ..."))
        out = os.path.join(lab.dir, "scanner")
        os.makedirs(out)
        p = lab.ns_run(lab.cli, ["bash", os.path.join(L.HERE, "demo_scanner.sh"), ca["ca"], out],
                       timeout=60)
        steps = {}
        for line in p.stdout.splitlines():
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[0] == "STEP":
                steps[parts[1]] = parts[2]
                mark = c("32", "ok     ") if parts[2] == "ok" else c("31", "blocked")
                print("  %-22s %s %s" % (parts[1], mark, parts[3] if len(parts) > 3 else ""))
        if p.returncode != 0:
            print(p.stderr)

        # Every exfiltration leaves a deny line; wait for them (bounded).
        def logged():
            evs = e.events()
            denies = [x for x in evs if x.get("event") in ("deny", "dns_deny")]
            return len(denies) >= len(EXFIL_STEPS)
        try:
            L.wait_for(logged, 3, "deny events")
        except TimeoutError:
            pass
        e.stop()
        events = [x for x in e.events() if x.get("event") != "ready"]

        print(c("1", "\nEvents logged by egressd (%s):" % e.log))
        for ev in events:
            show_event(ev)

        rec = lab.attacker_records()
        dnsq = lab.attacker_dns_queries()
        allowed = [x for x in events if x.get("event") in ("allow", "dns_allow")]
        denied = [x for x in events if x.get("event") in ("deny", "dns_deny")]
        reasons = collections.Counter(x.get("reason", x.get("event")) for x in denied)
        indicators = collections.Counter(i for x in denied for i in x.get("indicators", []))

        with open(os.path.join(out, "db.json")) as f:
            db_ok = steps.get("update-db") == "ok" and f.read() == DB
        exfil_blocked = all(steps.get(s) == "blocked" for s in EXFIL_STEPS)
        lookalike_logged = any(x.get("qname", "").rstrip(".") == "mirror.examp1e.net"
                               for x in denied)
        labels_logged = any("attacker.example" in x.get("qname", "") for x in denied)
        ip_logged = any(x.get("dst") == L.ATTACKER4 and x.get("dport") == 80 for x in denied)
        sni_logged = any(x.get("dst") == L.ATTACKER4 and x.get("dport") == 443 for x in denied)

        print(c("1", "\n================ summary ================"))
        print("database download (mirror.example.net): %s"
              % (c("32", "ok") if db_ok else c("31", "FAILED")))
        for s in EXFIL_STEPS:
            print("exfiltration %-22s %s" % (s + ":", c("32", "denied") if steps.get(s) == "blocked"
                                              else c("31", "GOT THROUGH")))
        print("flows/queries allowed: %d, denied: %d" % (len(allowed), len(denied)))
        print("deny reasons: %s" % (", ".join("%s=%d" % kv for kv in sorted(reasons.items()))
                                    or "none"))
        print("indicators:   %s" % (", ".join("%s=%d" % kv for kv in sorted(indicators.items()))
                                    or "none"))
        print("attacker received: %d bytes over %d connections, %d DNS queries"
              % (rec["total_bytes"], len(rec["connections"]), len(dnsq)))
        checks = {
            "database downloaded": db_ok,
            "every exfiltration failed": exfil_blocked,
            "look-alike DNS query logged": lookalike_logged,
            "DNS-label exfiltration logged": labels_logged,
            "HTTP POST to the address logged": ip_logged,
            "forged SNI connection logged": sni_logged,
            "attacker received 0 bytes": rec["total_bytes"] == 0,
            "attacker's DNS got 0 queries": not dnsq,
        }
        for name, good in checks.items():
            print("  [%s] %s" % (c("32", "x") if good else c("31", " "), name))
        ok = all(checks.values())
        print(c("1;32" if ok else "1;31", "\nOUTCOME: %s" % (
            "the key never left: egressd stopped every exfiltration" if ok
            else "NOT as expected (see above)")))
    except Exception as ex:  # report, clean up, fail
        print(c("31", "demo failed: %s: %s" % (type(ex).__name__, ex)))
        if lab and lab.egressd:
            print(lab.egressd.tail())
        ok = False
    finally:
        if lab:
            lab.close()
    return 0 if ok else 1


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("demo: run as root (network namespaces)", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
