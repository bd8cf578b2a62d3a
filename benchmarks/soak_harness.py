#!/usr/bin/env python3
"""The soak benchmark's harness: one lab-style cold run per call — a Swarm stack (service,
named volume, overlay network, config, secret) deployed on the engine under a per-run name
soak-<6 hex>, a setsid'd helper process and a double-forked daemon like a real harness may
leave, then the outcome, then ONE teardown (stack rm, wait, volumes). Like cc-ci's harness, a
SIGTERM tears the stack down before it exits 143. MODE RUN_DIR: pass | fail | hang."""
import os
import secrets
import signal
import subprocess
import sys
import time

import docker

mode, run_dir = sys.argv[1], sys.argv[2]
os.makedirs(run_dir, exist_ok=True)
stack = f"soak-{secrets.token_hex(3)}"
c = docker.from_env(timeout=60)
flt = {"label": f"com.docker.stack.namespace={stack}"}
image = os.environ.get("SOAK_IMAGE", "redfix-lab/base:1")


def log(m):
    print(f"[soak {time.strftime('%H:%M:%S')}] {m}", flush=True)


def teardown():
    subprocess.run(["docker", "stack", "rm", stack], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (c.services.list(filters=flt) or c.networks.list(filters=flt)
                                      or c.containers.list(all=True, filters=flt, sparse=True)):
        time.sleep(0.5)
    for v in c.volumes.list(filters=flt):
        for _ in range(30):
            try:
                v.remove(force=True)
                break
            except docker.errors.APIError:
                time.sleep(0.5)
    log(f"teardown of {stack} done")


def on_term(signum, frame):
    log("SIGTERM: tearing down")
    teardown()
    os._exit(143)


signal.signal(signal.SIGTERM, on_term)
compose = f"""version: "3.8"
services:
  app:
    image: {image}
    command: ["sleep", "3600"]
    volumes: ["data:/data"]
    networks: [internal]
    configs: [{{source: conf, target: /etc/app.conf}}]
    secrets: [db_password]
volumes:
  data:
networks:
  internal:
    driver: overlay
configs:
  conf:
    file: ./app.conf
secrets:
  db_password:
    file: ./db_password
"""
for name, text in (("compose.yml", compose), ("app.conf", "x=1\n"), ("db_password", secrets.token_hex(8))):
    with open(os.path.join(run_dir, name), "w") as f:
        f.write(text)
log(f"deploying {stack}")
subprocess.run(["docker", "stack", "deploy", "--resolve-image", "never", "-c", "compose.yml", stack],
               cwd=run_dir, check=True, stdout=subprocess.DEVNULL)
# helpers that outlive their parent unless someone stops them
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", "soak-helper"], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(3600)", "soak-daemon"])
    os._exit(0)
os.wait()
deadline = time.time() + 60
while time.time() < deadline:
    tasks = [t for s in c.services.list(filters=flt) for t in s.tasks()]
    if any(t["Status"]["State"] == "running" for t in tasks):
        break
    time.sleep(0.5)
log(f"{stack} running")
if mode == "hang":
    log("hanging")
    time.sleep(3600)
teardown()
log("done: " + ("GREEN" if mode == "pass" else "RED"))
sys.exit(0 if mode == "pass" else 1)
