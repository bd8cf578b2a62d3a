"""Logs: the harness log of every run and the service/container logs the harness saved before
teardown (services/**). Stored as they are (the files stay in the run folder); the signature scan
runs at classify time (analyze.log_items), so a stored bundle is re-judged with today's catalogue."""
from __future__ import annotations

from pathlib import Path

from ..bundle import EvidenceItem


def collect(cx, spec) -> list[EvidenceItem]:
    items = []
    kind = spec["kind"]
    for run in cx.bundle.runs:
        rd = cx.bundle.path / Path(run.log).parent
        files = [cx.bundle.path / run.log] if kind == "harness_log" else \
            sorted(p for p in rd.glob("services/**/*.log") if p.is_file())
        if kind != "harness_log" and not files:
            items.append(EvidenceItem(id=f"service_logs:run{run.index:03d}", kind="service_logs",
                                      source=f"run {run.index}", status="unavailable",
                                      summary="unavailable: the harness saved no service logs for this run"))
            continue
        for f in files:
            rel = cx.bundle.rel(f)
            name = "harness" if kind == "harness_log" else f.stem.split(".")[0]
            sub = f.parent.name if kind != "harness_log" else ""
            items.append(EvidenceItem(
                id=f"{kind}:run{run.index:03d}:{(sub + '/') if sub else ''}{name}", kind=kind,
                source=rel, status="ok", artifact=rel,
                summary=f"run {run.index} ({run.outcome}) {name}: {f.stat().st_size} bytes (scanned at classify time)",
                data={"run": run.index, "outcome": run.outcome, "mode": run.mode, "bytes": f.stat().st_size}))
    return items
