#!/usr/bin/env python3
"""A real subprocess harness for tests. Behaviour from argv: MODE RUN_DIR [ARG].

pass | fail | flaky P SEED | hang | loud MB | results | junit | orphan
"""
import json
import os
import random
import subprocess
import sys
import time

mode, run_dir = sys.argv[1], sys.argv[2]
arg = sys.argv[3] if len(sys.argv) > 3 else ""
os.makedirs(run_dir, exist_ok=True)
print(f"fake harness mode={mode} RECIPE={os.environ.get('RECIPE')} REF={os.environ.get('REF')} "
      f"UNSET_ME={os.environ.get('UNSET_ME', '<unset>')}", flush=True)
print(f"connecting with DB_PASSWORD={os.environ.get('DB_PASSWORD', '')}", flush=True)

if mode == "pass":
    sys.exit(0)
if mode == "fail":
    print("AssertionError: relation \"ci_marker\" does not exist", flush=True)
    sys.exit(1)
if mode == "flaky":
    p, seed = float(arg.split(",")[0]), int(arg.split(",")[1]) + int(os.environ.get("RUN_INDEX", "0"))
    failed = random.Random(seed).random() < p
    print("handshake timed out" if failed else "handshake ok", flush=True)
    sys.exit(1 if failed else 0)
if mode in ("hang", "orphan"):
    # a child in the same group that would outlive us
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.path.join(run_dir, "child.pid"), "w") as f:
        f.write(str(child.pid))
    if mode == "orphan":
        sys.exit(0)
    time.sleep(600)
if mode == "loud":
    line = ("x" * 99 + "\n").encode()
    out = sys.stdout.buffer
    for _ in range(int(float(arg) * 1024 * 1024 / 100)):
        out.write(line)
    out.flush()
    sys.exit(0)
if mode == "results":
    res = {"recipe": os.environ.get("RECIPE"), "version": os.environ.get("REF"), "run_id": "r1",
           "stages": [
               {"name": "install", "status": "pass", "tests": [{"name": "test_serves", "status": "pass", "ms": 120}]},
               {"name": "upgrade", "status": "fail", "tests": [
                   {"name": "test_head_runs_official_image", "status": "fail", "ms": 40,
                    "message": "assert 'bitnamilegacy/discourse:3.5.0' == 'discourse/discourse:3.5.3'"}]},
               {"name": "backup", "status": "skip", "tests": []}],
           "flags": {"clean_teardown": True, "no_secret_leak": True}, "level": 1}
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(res, f)
    sys.exit(1)
if mode == "junit":
    xml = """<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="2" failures="1">
<testcase classname="t.test_restore" name="test_restore_returns_state" time="1.5"><failure message="marker missing">relation "ci_marker" does not exist</failure></testcase>
<testcase classname="t.test_restore" name="test_snapshot_listed" time="0.2"/></testsuite></testsuites>"""
    with open(os.path.join(run_dir, "junit-restore.xml"), "w") as f:
        f.write(xml)
    with open(os.path.join(run_dir, "junit-install.xml"), "w") as f:
        f.write('<testsuite><testcase classname="t" name="test_install" time="0.1"/></testsuite>')
    sys.exit(1)
print(f"unknown mode {mode}", file=sys.stderr)
sys.exit(2)
