"""Logs: the harness log of every run and the service/container logs the harness saved
before teardown (services/**), scanned against the signature catalogue."""
from __future__ import annotations

from pathlib import Path

from ..bundle import EvidenceItem
from ..signatures import explain_hits, scan_file


def _scan_file(path: Path):
    return explain_hits(scan_file(str(path)))


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
            ex = _scan_file(f)
            rel = cx.bundle.rel(f)
            name = "harness" if kind == "harness_log" else f.stem.split(".")[0]
            sub = f.parent.name if kind != "harness_log" else ""
            top = ex["matches"][:5]
            excerpt = "\n".join(f"L{m['line']}: {m['text']}" for m in top)
            items.append(EvidenceItem(
                id=f"{kind}:run{run.index:03d}:{(sub + '/') if sub else ''}{name}", kind=kind,
                source=rel, status="ok", artifact=rel, excerpt=excerpt,
                summary=(f"run {run.index} ({run.outcome}) {name}: "
                         + (", ".join(sorted({m['signature'] for m in ex['matches']})) or "no signature matched")),
                data={"run": run.index, "outcome": run.outcome, "mode": run.mode,
                      "signatures": sorted({m["signature"] for m in ex["matches"]}),
                      "cause_hint": ex["cause_hint"], "matches": ex["matches"][:20]}))
    return items
