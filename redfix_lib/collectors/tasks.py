"""Swarm task history (docker service ps --no-trunc style) from the tasks.json the harness
saved before teardown: states, exit codes, restarts (failed tasks per service), errors."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..bundle import EvidenceItem


def collect(cx, spec) -> list[EvidenceItem]:
    items = []
    for run in cx.bundle.runs:
        rd = cx.bundle.path / Path(run.log).parent
        for tj in sorted(rd.glob("services/*/tasks.json")):
            tasks = json.loads(tj.read_text())
            failed = Counter(t["service"] for t in tasks if t["state"] in ("failed", "rejected"))
            errs = sorted({f"{t['service']}: {t['err']}" for t in tasks if t.get("err")})
            phase = tj.parent.name
            items.append(EvidenceItem(
                id=f"task_history:run{run.index:03d}:{phase}", kind="task_history", source=cx.bundle.rel(tj),
                status="ok", artifact=cx.bundle.rel(tj), excerpt="\n".join(errs[:8]),
                summary=(f"run {run.index} {phase}: {len(tasks)} tasks, "
                         + (", ".join(f"{s} failed {n}x" for s, n in sorted(failed.items())) or "no failed task")),
                data={"run": run.index, "phase": phase, "failed_per_service": dict(sorted(failed.items())),
                      "crash_loop": any(n >= 3 for n in failed.values()),
                      "exit_codes": sorted({t["exit_code"] for t in tasks if t.get("exit_code")})}))
    if not items:
        items.append(EvidenceItem(id="task_history:none", kind="task_history", source="runs", status="unavailable",
                                  summary="unavailable: no tasks.json in any run"))
    return items
