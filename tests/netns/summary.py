#!/usr/bin/python3
"""Sum meson's and pytest's results: the last line printed is `N passed, M failed`.

  summary.py [--meson testlog.json]... [--junit junit.xml]... [--plain LOG]...
             [--failed-step NAME]...
--plain reads a script's log whose last `N passed, M failed` line counts.
A step that could not produce results (a build that failed) counts as one failure.
Exit 1 if anything failed.
"""
import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET

PASS = {"OK", "EXPECTEDFAIL"}
FAIL = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"}


def meson(path, counts, failures):
    if not os.path.exists(path):
        counts["failed"] += 1
        failures.append("%s: missing (meson test did not run)" % path)
        return
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            t = json.loads(line)
            r = t.get("result")
            if r in PASS:
                counts["passed"] += 1
            elif r == "SKIP":
                counts["skipped"] += 1
            else:
                counts["failed"] += 1
                failures.append("meson %s: %s" % (t.get("name"), r))


def junit(path, counts, failures):
    if not os.path.exists(path):
        counts["failed"] += 1
        failures.append("%s: missing (pytest did not run)" % path)
        return
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        counts["failed"] += 1
        failures.append("%s: unreadable (%s)" % (path, e))
        return
    for tc in root.iter("testcase"):
        tags = {child.tag for child in tc}
        name = "%s::%s" % (tc.get("classname"), tc.get("name"))
        if tags & {"failure", "error"}:
            counts["failed"] += 1
            failures.append("pytest " + name)
        elif "skipped" in tags:
            counts["skipped"] += 1
            sk = tc.find("skipped")
            counts["skips"].append("%s: %s" % (name, sk.get("message", "")))
        else:
            counts["passed"] += 1


def plain(path, counts, failures):
    import re
    found = None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"^(?:\S+:\s+)?(\d+) passed, (\d+) failed", line.strip())
                if m:
                    found = (int(m.group(1)), int(m.group(2)))
                elif line.startswith("not ok - "):
                    failures.append("%s: %s" % (os.path.basename(path), line[9:].strip()))
    except OSError:
        pass
    if found is None:
        counts["failed"] += 1
        failures.append("%s: no `N passed, M failed` line" % path)
        return
    counts["passed"] += found[0]
    counts["failed"] += found[1]
    if found[1] and not any(f.startswith(os.path.basename(path)) for f in failures):
        failures.append("%s: %d failed" % (path, found[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meson", action="append", default=[])
    ap.add_argument("--junit", action="append", default=[])
    ap.add_argument("--plain", action="append", default=[])
    ap.add_argument("--failed-step", action="append", default=[])
    a = ap.parse_args()
    counts = {"passed": 0, "failed": 0, "skipped": 0, "skips": []}
    failures = []
    for step in a.failed_step:
        counts["failed"] += 1
        failures.append("step failed: " + step)
    for p in a.meson:
        meson(p, counts, failures)
    for p in a.junit:
        junit(p, counts, failures)
    for p in a.plain:
        plain(p, counts, failures)
    for s in counts["skips"]:
        print("skipped: " + s)
    for f in failures:
        print("FAILED: " + f)
    if counts["skipped"]:
        print("%d skipped" % counts["skipped"])
    print("%d passed, %d failed" % (counts["passed"], counts["failed"]))
    sys.stdout.flush()
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
