"""Controlled load on a node: CPU-burner tasks as a Swarm service (the node's own scheduler
shares CPU between containers, so burners compete with the recipe's containers the way
neighbour stacks do), and `isolate --under-load` built on it.
"""
from __future__ import annotations

import os
import time

STRESS_STACK = "redfix-stress"
BURNER = ["sh", "-c", "trap 'exit 0' TERM; while :; do :; done"]


def default_level() -> int:
    return 8 * (os.cpu_count() or 1)


def start_stressors(client, replicas: int, image: str = "redfix-lab/base:1", timeout: float = 60) -> dict:
    """Start `replicas` CPU burners; returns the load description recorded in the bundle."""
    stop_stressors(client)
    if replicas <= 0:
        return {"cpu_burners": 0}
    import docker
    client.services.create(
        image, command=BURNER, name=f"{STRESS_STACK}_burn",
        labels={"com.docker.stack.namespace": STRESS_STACK, "redfix.lab": "1"},
        container_labels={"com.docker.stack.namespace": STRESS_STACK},
        mode=docker.types.ServiceMode("replicated", replicas=replicas),
        stop_grace_period=1_000_000_000)
    deadline = time.time() + timeout
    running = 0
    while time.time() < deadline:
        svc = client.services.get(f"{STRESS_STACK}_burn")
        running = sum(1 for t in svc.tasks() if t["Status"]["State"] == "running")
        if running >= replicas:
            break
        time.sleep(1)
    return {"cpu_burners": replicas, "running": running, "cores": os.cpu_count(),
            "per_core": round(replicas / (os.cpu_count() or 1), 2)}


def stop_stressors(client, timeout: float = 60) -> None:
    for s in client.services.list(filters={"label": f"com.docker.stack.namespace={STRESS_STACK}"}):
        s.remove()
    deadline = time.time() + timeout
    flt = {"label": f"com.docker.stack.namespace={STRESS_STACK}"}
    while time.time() < deadline and client.containers.list(all=True, filters=flt, sparse=True):
        time.sleep(1)


def isolate_under_load(case, bundle, node, runs: int | None = None, level: int | None = None, progress=print,
                       env_extra: dict | None = None):
    """Rerun the case beside `level` CPU burners: 'passes alone' becomes 'fails again under load'."""
    from .isolate import isolate
    client = node.docker()
    level = default_level() if level is None else level
    progress(f"[{case.case}] starting {level} CPU burners on node {node.name}")
    load = start_stressors(client, level)
    try:
        return isolate(case, bundle, node, runs=runs or 2, mode="under-load", load=load, stop_rule="fixed",
                       progress=progress, env_extra=env_extra)
    finally:
        stop_stressors(client)
        progress(f"[{case.case}] stressors removed")
