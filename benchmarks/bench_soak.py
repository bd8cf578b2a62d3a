"""Soak: N lab-style investigations (default 50) on the lab engine — passing, failing, timed out,
and killed (SIGTERM / SIGINT to redfix mid-run) — each deploying a real Swarm stack (service,
volume, overlay network, config, secret) plus a setsid'd helper and a double-forked daemon
(benchmarks/soak_harness.py); after every investigation and at the end it counts what is left on
the node beyond the lab's own: soak stacks, services, containers, volumes, networks, configs,
secrets, and processes. Prints the figures.

    REDFIX_LAB_HOME=/var/lib/redfix-lab-<you> .venv/bin/redfix lab up
    .venv/bin/python benchmarks/bench_soak.py [-n 50] [--lock /tmp/redfix-engine.lock]

With --lock, each chunk of --chunk investigations (default 10, a few minutes) holds that flock (the
engine lock shared with other users of the engine) and releases it in between, so a long soak
does not starve them; the "before" and final checks hold it too.
"""
import argparse
import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HARNESS = ROOT / "benchmarks" / "soak_harness.py"
PLAN = ["fail", "pass", "timeout", "sigterm", "fail", "sigint", "pass", "timeout", "sigterm", "fail"]
PROC_MARKS = (b"soak-helper", b"soak-daemon", b"soak_harness.py")


@contextmanager
def engine_lock(path):
    if not path:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def leftovers(client) -> dict[str, list[str]]:
    """Objects of soak stacks still on the engine, and soak processes still alive."""
    def soak(labels):
        return (labels or {}).get("com.docker.stack.namespace", "").startswith("soak-")
    left = {
        "stacks": sorted({s.attrs["Spec"]["Labels"]["com.docker.stack.namespace"] for s in client.services.list()
                          if soak(s.attrs["Spec"].get("Labels"))}),
        "services": sorted(s.name for s in client.services.list() if soak(s.attrs["Spec"].get("Labels"))),
        "containers": sorted(c.name for c in client.containers.list(all=True) if soak(c.labels)),
        "volumes": sorted(v.name for v in client.volumes.list() if soak(v.attrs.get("Labels"))),
        "networks": sorted(n.name for n in client.networks.list() if soak(n.attrs.get("Labels"))),
        "configs": sorted(c.name for c in client.configs.list() if soak(c.attrs["Spec"].get("Labels"))),
        "secrets": sorted(c.name for c in client.secrets.list() if soak(c.attrs["Spec"].get("Labels"))),
    }
    procs = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read()
            st = open(f"/proc/{d}/stat", "rb").read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if st != b"Z" and any(m in cmd for m in PROC_MARKS):
            text = cmd.replace(b"\0", b" ").decode(errors="replace")[:100]
            procs.append(f"{d} {text}")
    left["processes"] = procs
    return left


def write_case(d: Path, i: int, kind: str) -> Path:
    mode = {"pass": "pass", "fail": "fail"}.get(kind, "hang")
    p = d / f"soak-{i:03d}.yaml"
    p.write_text(textwrap.dedent(f"""\
        case: soak-{i:03d}
        recipe: soak
        ref: "1.0.0"
        node:
          busy:
            - stack: '^soak-'
            - process: 'soak_harness\\.py'
        harness:
          argv: ["{sys.executable}", "{HARNESS}", "{mode}", "{{run_dir}}"]
        runs: {{max: 1, min: 1, stop_rule: fixed}}
        timeout_s: {12 if kind == "timeout" else 300}
        probes:
          - {{kind: node_clean, stack: '^soak-'}}
        """))
    return p


def one(d: Path, i: int, kind: str, env: dict) -> dict:
    case = write_case(d, i, kind)
    out = d / "out" / f"soak-{i:03d}"
    argv = [sys.executable, "-m", "redfix_lib.cli", "investigate", str(case), "--out", str(out)]
    t0 = time.monotonic()
    if kind in ("sigterm", "sigint"):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        log = out / "runs" / "001" / "harness.log"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            if log.exists() and " running" in log.read_text(errors="replace"):
                break
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM if kind == "sigterm" else signal.SIGINT)
        _, err = p.communicate(timeout=300)
        rc = p.returncode
    else:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        rc, err = r.returncode, r.stderr
    wall = time.monotonic() - t0
    outcome = "?"
    try:
        from redfix_lib.bundle import load_bundle
        b = load_bundle(out)
        outcome = b.runs[-1].outcome if b.runs else "no run"
    except Exception as e:  # noqa: BLE001
        outcome = f"bundle unreadable: {type(e).__name__}"
    return {"i": i, "kind": kind, "rc": rc, "outcome": outcome, "wall_s": round(wall, 1),
            "err": (err.strip().splitlines() or [""])[-1][:160]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--lock", default=None, help="flock held around each investigation (the shared engine lock)")
    ap.add_argument("--chunk", type=int, default=10, help="investigations per lock hold")
    ap.add_argument("--keep", default=None, help="keep the bundles in this folder")
    a = ap.parse_args()
    import docker
    client = docker.from_env(timeout=60)
    client.images.get(os.environ.get("SOAK_IMAGE", "redfix-lab/base:1"))   # lab up first
    d = Path(a.keep or tempfile.mkdtemp(prefix="redfix-soak-"))
    d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "REDFIX_LOCK_DIR": str(d / "locks"), "REDFIX_STAGE_DIR": str(d / "stage")}
    rows, dirty_after = [], []
    wall = 0.0
    for start in range(0, a.n, max(1, a.chunk)):
        with engine_lock(a.lock):
            if start == 0:
                before = leftovers(client)
                if any(before.values()):
                    print(f"soak objects already on the node before the soak: {before}")
            t0 = time.monotonic()
            for i in range(start, min(a.n, start + max(1, a.chunk))):
                kind = PLAN[i % len(PLAN)]
                row = one(d, i, kind, env)
                left = leftovers(client)
                n_left = sum(len(v) for v in left.values())
                row["left"] = n_left
                if n_left:
                    dirty_after.append((i, kind, left))
                rows.append(row)
                print(f"[soak {i + 1:2d}/{a.n}] {kind:8s} exit {row['rc']:>3} outcome {row['outcome']:11s} "
                      f"{row['wall_s']:5.1f}s left {n_left}" + (f"  ({row['err']})" if row["rc"] else ""), flush=True)
            if i + 1 >= a.n:
                final = leftovers(client)
            wall += time.monotonic() - t0
    stage_left = [p for p in (d / "stage").rglob("*") if p.is_file()] if (d / "stage").exists() else []
    print()
    print(f"soak: {a.n} investigations in {wall:.0f} s of engine time ({wall / a.n:.1f} s each): "
          + ", ".join(f"{k} {v}" for k, v in sorted(Counter(r["kind"] for r in rows).items())))
    print("exit codes: " + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(r["rc"] for r in rows).items())))
    print("outcomes: " + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(r["outcome"] for r in rows).items())))
    print(f"investigations that left something behind: {len(dirty_after)}")
    for i, kind, left in dirty_after[:10]:
        print(f"  #{i} {kind}: {{{', '.join(f'{k}: {v}' for k, v in left.items() if v)}}}")
    print("left on the node at the end (beyond the lab's own): "
          + ", ".join(f"{k} {len(v)}" for k, v in final.items()) + f"; staged raw files {len(stage_left)}")
    print(f"TOTAL left after the soak: {sum(len(v) for v in final.values()) + len(stage_left)} "
          f"(processes left: {len(final['processes'])})")


if __name__ == "__main__":
    main()
