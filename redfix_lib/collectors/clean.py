"""Node left clean: cold-run stacks, their volumes/networks/configs/secrets, harness processes."""
from __future__ import annotations

import re

from ..bundle import EvidenceItem

COLD_STACK = r"^[a-z0-9]{1,4}-[0-9a-f]{6}_"


def collect(cx, spec) -> list[EvidenceItem]:
    rx = re.compile(spec.get("stack", COLD_STACK))
    client = cx.node.docker()
    left: dict[str, list[str]] = {}

    def ns(labels):
        return (labels or {}).get("com.docker.stack.namespace", "")
    left["stacks"] = sorted({n for s in client.services.list() if rx.search(n := ns(s.attrs["Spec"].get("Labels")))})
    left["volumes"] = sorted(v.name for v in client.volumes.list() if rx.search(ns(v.attrs.get("Labels"))))
    left["networks"] = sorted(n.name for n in client.networks.list() if rx.search(ns(n.attrs.get("Labels"))))
    left["configs"] = sorted(c.name for c in client.configs.list() if rx.search(ns(c.attrs["Spec"].get("Labels"))))
    left["secrets"] = sorted(c.name for c in client.secrets.list() if rx.search(ns(c.attrs["Spec"].get("Labels"))))
    procs = []
    for p in cx.case.node.busy:
        if "process" in p:
            prx = re.compile(p["process"])
            procs += [f"{pid} {cmd[:120]}" for pid, cmd in cx.node.process_cmdlines() if prx.search(cmd)]
    left["processes"] = procs
    n = sum(len(v) for v in left.values())
    return [EvidenceItem(id="node_clean:after", kind="node_clean", source=cx.node.name, status="ok",
                         summary="node left clean" if n == 0 else f"node NOT clean: {n} leftover object(s): "
                         + "; ".join(f"{k}: {', '.join(v)}" for k, v in left.items() if v),
                         data={"clean": n == 0, "left": left})]
