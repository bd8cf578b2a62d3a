#!/usr/bin/env python3
"""A harness whose descendants try to outlive it. MODE RUN_DIR.

Every mode first starts (a) a child that calls setsid() (its own session and group) and
(b) a double-forked daemon (setsid + second fork, the intermediate exits, so it is re-parented),
(c) a grandchild that calls setpgid(0, 0), each sleeping 600 s; their pids go to RUN_DIR/pids.
Then: exit | hang | ignore-term (hang, SIGTERM ignored) | teardown (hang; on SIGTERM write
RUN_DIR/teardown after 1 s and exit 143, like cc-ci's harness)."""
import os
import signal
import subprocess
import sys
import time

mode, run_dir = sys.argv[1], sys.argv[2]
os.makedirs(run_dir, exist_ok=True)
pids = []
SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]

# (a) a child in its own session
pids.append(subprocess.Popen(SLEEP, start_new_session=True).pid)
# (b) a double-forked daemon
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        os.write(w, f"{os.getpid()}\n".encode())
        os.close(w)
        os.execv(sys.executable, SLEEP)
    os._exit(0)
os.close(w)
pids.append(int(os.read(r, 64).decode().strip()))
os.wait()          # the intermediate
# (c) a grandchild that moves to its own process group (via an intermediate shell-like child)
mid = subprocess.Popen([sys.executable, "-c",
                        "import os, subprocess, sys, time\n"
                        "p = subprocess.Popen([sys.executable, '-c', 'import os, time; os.setpgid(0, 0); time.sleep(600)'])\n"
                        "print(p.pid, flush=True)\n"
                        "time.sleep(600)"], stdout=subprocess.PIPE, text=True)
pids.append(int(mid.stdout.readline()))
pids.append(mid.pid)
with open(os.path.join(run_dir, "pids"), "w") as f:
    f.write(" ".join(map(str, pids)))
print(f"spawned {pids}", flush=True)

if mode == "exit":
    sys.exit(0)
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "teardown":
    def down(signum, frame):
        time.sleep(1.0)
        with open(os.path.join(run_dir, "teardown"), "w") as f:
            f.write("done")
        os._exit(143)
    signal.signal(signal.SIGTERM, down)
print("hanging", flush=True)
time.sleep(600)
