#!/usr/bin/env python3
"""A harness that leaks planted secrets through every channel a real one could: its log, the
results.json and JUnit failure messages, saved service logs and tasks.json, and (as `pre`) a
pre-step log. Secrets come from tests/test_secrets.py via argv and env. MODE RUN_DIR [hang]."""
import json
import os
import sys
import time

S = json.loads(os.environ["LEAK_PLAN"])       # name -> text that carries the planted secret
mode, run_dir = sys.argv[1], sys.argv[2]
os.makedirs(run_dir, exist_ok=True)

if mode == "pre":
    print(S["pre_log"], flush=True)
    sys.exit(0)

for k, line in S.items():
    if k.startswith("log_"):
        print(line, flush=True)
print(f"argv seen: {' '.join(sys.argv[3:])}", flush=True)

svc = os.path.join(run_dir, "services", "cold")
os.makedirs(svc, exist_ok=True)
with open(os.path.join(svc, "app.abc123def456.log"), "w") as f:
    f.write("\n".join(v for k, v in S.items() if k.startswith("svc_")) + "\nERROR: read-only file system\n")
with open(os.path.join(svc, "tasks.json"), "w") as f:
    json.dump([{"service": "app", "state": "failed", "exit_code": 1, "err": S["task_err"],
                "env": S["task_env"]}], f)
res = {"recipe": os.environ.get("RECIPE"), "version": os.environ.get("REF"), "run_id": "r1",
       "stages": [{"name": "install", "status": "pass", "tests": [{"name": "test_serves", "status": "pass", "ms": 5}]},
                  {"name": "restore", "status": "fail", "detail": S["results_detail"], "tests": [
                      {"name": "test_restore_returns_state", "status": "fail", "ms": 40,
                       "message": S["results_message"]}]}],
       "flags": {"clean_teardown": True}, "level": 1}
with open(os.path.join(run_dir, "junit-restore.xml"), "w") as f:
    from xml.sax.saxutils import quoteattr, escape
    f.write(f'<testsuite><testcase classname="t" name="test_restore_returns_state" time="0.1">'
            f'<failure message={quoteattr(S["junit_message"])}>{escape(S["junit_text"])}</failure></testcase></testsuite>')
if mode == "hang":
    print("now hanging", flush=True)
    time.sleep(600)
with open(os.path.join(run_dir, "results.json"), "w") as f:
    json.dump(res, f)
sys.exit(1)
