#!/usr/bin/env python3
"""Reads `go test -json` output; prints each TestIntegration* test's outcome per package and
fails unless every package named on the command line ran at least one of them, and no
integration test failed or was skipped (a skip is no pass: the peers are up)."""
import json, sys
from collections import defaultdict

path, required = sys.argv[1], sys.argv[2:]
passed, skipped, failed = defaultdict(list), defaultdict(list), defaultdict(list)
for line in open(path):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    test = ev.get("Test", "")
    if not test.startswith("TestIntegration") or "/" in test:
        continue
    pkg = ev.get("Package", "").replace("github.com/vigil-ha/vigil/", "").replace("github.com/vigil-ha/vigil", ".")
    act = ev.get("Action")
    if act == "pass":
        passed[pkg].append((test, ev.get("Elapsed", 0)))
    elif act == "skip":
        skipped[pkg].append(test)
    elif act == "fail":
        failed[pkg].append(test)
ok = True
for pkg in sorted(set(passed) | set(skipped) | set(failed) | set(required)):
    print(f"{pkg}: {len(passed[pkg])} passed, {len(skipped[pkg])} skipped, {len(failed[pkg])} failed")
    for t, el in passed[pkg]:
        print(f"    PASS {t} ({el:.1f}s)")
    for t in skipped[pkg]:
        print(f"    SKIP {t}")
        ok = False
    for t in failed[pkg]:
        print(f"    FAIL {t}")
        ok = False
    if pkg in required and not passed[pkg]:
        print(f"    no integration test of {pkg} ran although its peer is up")
        ok = False
sys.exit(0 if ok else 1)
