"""Deploy, converge, inspect and tear down lab stacks with the docker CLI/SDK."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path


def client():
    import docker
    return docker.from_env(timeout=120)


def export_ref(recipe_dir: Path, ref: str, dest: Path) -> Path:
    """The recipe's files at a ref (git archive), without touching the checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    arch = subprocess.run(["git", "-C", str(recipe_dir), "archive", "--format=tar", ref],
                          check=True, capture_output=True).stdout
    import io
    with tarfile.open(fileobj=io.BytesIO(arch)) as t:
        t.extractall(dest, filter="data")
    return dest


def node_env() -> dict[str, str]:
    """The node's own deploy settings: KEY=VALUE lines in <lab home>/node.env (written by `lab up`'s
    calibration, e.g. HANDSHAKE_WORK); the process environment and the run's env override them."""
    f = Path(os.environ.get("REDFIX_LAB_HOME") or "/var/lib/redfix-lab") / "node.env"
    try:
        lines = f.read_text().splitlines()
    except OSError:
        return {}
    return dict(ln.split("=", 1) for ln in lines if "=" in ln and not ln.lstrip().startswith("#"))


def deploy(stack: str, compose_dir: Path, env: dict[str, str]) -> None:
    files = os.environ.get("COMPOSE_FILE") or "compose.yml"
    args = ["docker", "stack", "deploy", "--prune", "--resolve-image", "never"]
    for f in files.split(":"):
        args += ["-c", f]
    r = subprocess.run(args + [stack], cwd=compose_dir, env={**node_env(), **os.environ, **env}, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"docker stack deploy {stack} failed: {r.stderr.strip()[-800:]}")


def services(c, stack: str):
    return c.services.list(filters={"label": f"com.docker.stack.namespace={stack}"})


def tasks(c, stack: str) -> list[dict]:
    out = []
    for s in services(c, stack):
        for t in s.tasks():
            st = t.get("Status", {})
            out.append({"service": s.name, "slot": t.get("Slot"), "state": st.get("State"),
                        "desired": t.get("DesiredState"), "err": st.get("Err", ""),
                        "exit_code": (st.get("ContainerStatus") or {}).get("ExitCode"),
                        "timestamp": st.get("Timestamp", ""), "image": t["Spec"]["ContainerSpec"]["Image"]})
    return out


CRASH_LOOP_TASKS = 3


def wait_converged(c, stack: str, timeout: float = 60, settle: float = 3) -> tuple[bool, str]:
    """Every service has its replicas running, each task up for `settle` seconds, on the
    current spec. Returns (ok, detail)."""
    deadline = time.time() + timeout
    detail = ""
    stable_since = None
    while time.time() < deadline:
        ok, bad = True, []
        for s in services(c, stack):
            s.reload()
            want = s.attrs["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 1)
            ts = [t for t in s.tasks() if t.get("DesiredState") == "running"]
            spec = s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
            # running on the current spec (no need to wait out the update monitor period)
            running = [t for t in ts if t["Status"]["State"] == "running"
                       and t["Spec"]["ContainerSpec"].get("Image") == spec.get("Image")
                       and t["Spec"]["ContainerSpec"].get("Args") == spec.get("Args")
                       and t["Spec"]["ContainerSpec"].get("Env") == spec.get("Env")]
            failed = [t for t in s.tasks(filters={"desired-state": "shutdown"}) if t["Status"]["State"] in ("failed", "rejected")
                      and t["Spec"]["ContainerSpec"].get("Image") == spec.get("Image") and _age(t["Status"].get("Timestamp", "")) < timeout]
            if len(failed) >= CRASH_LOOP_TASKS and not running:
                return False, (f"crash loop: {s.name} has {len(failed)} failed tasks on the current spec "
                               f"({failed[0]['Status'].get('Err', '')})")
            upd = (s.attrs.get("UpdateStatus") or {}).get("State", "")
            if len(running) < want or upd == "rollback_started":
                ok = False
                last = (failed[0]["Status"].get("Err") if failed else "") or (ts[0]["Status"]["State"] if ts else "no task")
                bad.append(f"{s.name}: {len(running)}/{want} running ({last})")
        if ok:
            stable_since = stable_since or time.time()
            if time.time() - stable_since >= settle:
                # a crash loop shows as new failed tasks during the settle window
                recent = [t for t in tasks(c, stack) if t["state"] in ("failed",) and t["desired"] == "shutdown"
                          and _age(t["timestamp"]) < settle + 1]
                if recent:
                    ok = False
                    bad.append(f"{recent[0]['service']}: task failed during settle ({recent[0]['err']})")
                    stable_since = None
                else:
                    return True, "converged"
        else:
            stable_since = None
        detail = "; ".join(bad)
        time.sleep(1)
    return False, f"not converged after {timeout:g}s: {detail}"


def _age(ts: str) -> float:
    from datetime import datetime, timezone
    try:
        t = datetime.fromisoformat(ts.replace("Z", "+00:00")[:26] + "+00:00") if "." in ts else \
            datetime.fromisoformat(ts.replace("Z", "+00:00"))
        return (datetime.now(timezone.utc) - t).total_seconds()
    except ValueError:
        return 1e9


def running_container(c, stack: str, service: str):
    flt = {"label": [f"com.docker.swarm.service.name={stack}_{service}"], "status": "running"}
    cs = c.containers.list(filters=flt)
    return cs[0] if cs else None


def exec_in(c, stack: str, service: str, argv: list[str], timeout: float | None = None) -> tuple[int, str]:
    cont = running_container(c, stack, service)
    if cont is None:
        return 125, f"no running container for {stack}_{service}"
    if timeout:
        argv = ["timeout", str(int(timeout)), *argv]
    r = cont.exec_run(argv, demux=False)
    return r.exit_code, (r.output or b"").decode("utf-8", "replace")


def host_port(c, stack: str, service: str, target: int) -> int | None:
    cont = running_container(c, stack, service)
    if cont is None:
        return None
    cont.reload()
    ports = (cont.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for b in ports.get(f"{target}/tcp") or []:
        if b.get("HostPort"):
            return int(b["HostPort"])
    return None


def dump_logs(c, stack: str, dest: Path) -> list[str]:
    """Logs of every container (running or exited) of the stack, before teardown."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for cont in c.containers.list(all=True, filters={"label": f"com.docker.stack.namespace={stack}"}, sparse=True):
        svc = (cont.attrs.get("Labels") or {}).get("com.docker.swarm.service.name", cont.id[:12])
        f = dest / f"{svc}.{cont.id[:12]}.log"
        try:
            f.write_bytes(cont.logs(timestamps=True, tail=2000))
            out.append(str(f))
        except Exception:  # noqa: BLE001
            pass
    (dest / "tasks.json").write_text(json.dumps(tasks(c, stack), indent=1, sort_keys=True))
    return out


def teardown(c, stacks: list[str], keep_volumes: bool = False, timeout: float = 120) -> bool:
    """stack rm, wait for containers/networks to go, remove volumes. True when nothing is left."""
    if not stacks:
        return True
    subprocess.run(["docker", "stack", "rm", *stacks], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    clean = True
    for ns in stacks:
        flt = {"label": f"com.docker.stack.namespace={ns}"}
        t0 = time.time()
        while time.time() < deadline:
            busy = c.containers.list(all=True, filters=flt, sparse=True) or c.services.list(filters=flt)
            nets = c.networks.list(filters=flt)
            if not (busy or nets):
                break
            if nets and not busy and time.time() - t0 > 10:
                # the engine sometimes keeps a stack's overlay network after `stack rm` (a stale
                # endpoint in its network DB) until it is removed by name: remove it
                for n in nets:
                    try:
                        n.remove()
                    except Exception:  # noqa: BLE001 - still in use for a moment: next round
                        pass
            time.sleep(1)
        if keep_volumes:
            continue
        for v in c.volumes.list(filters=flt):
            for _ in range(15):
                try:
                    v.remove(force=True)
                    break
                except Exception:  # noqa: BLE001 - still in use for a moment
                    time.sleep(1)
        left = (c.containers.list(all=True, filters=flt, sparse=True) + c.networks.list(filters=flt)
                + c.services.list(filters=flt) + c.volumes.list(filters=flt))
        clean = clean and not left
    return clean
