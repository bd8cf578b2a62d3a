"""Evidence collectors: side effects against a node, each writing EvidenceItems into the bundle.

Each collector is a small module with `collect(cx, spec) -> list[EvidenceItem]`. A collector
that cannot do its job returns an item with status 'unavailable' and the reason; it never
fails the investigation. Analysis of the items lives in classify.py (pure).
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from ..bundle import Bundle, EvidenceItem
from ..safety import default_redactor

KINDS = {
    "service_logs": "logs", "task_history": "tasks", "network_aliases": "network", "dns": "network",
    "http": "http", "http_route": "http_route", "static_rules": "static", "test_expectation": "expectations",
    "harness_code": "harness_code", "canonical_state": "warm", "harness_settings": "settings", "image_tools": "image_tools",
    "node_clean": "clean",
    "load": None,
}


@dataclass
class Context:
    case: object          # params.Case
    bundle: Bundle
    node: object          # nodes.Node
    values: dict = field(default_factory=dict)   # template values (lab_home, harness_dir, recipe, ref...)

    @property
    def recipe_repo(self) -> str:
        return self.case.lab.get("repo") or f"{self.values['lab_home']}/recipes/{self.case.recipe}"

    @property
    def harness_dir(self) -> str:
        return self.case.lab.get("harness_dir") or self.values["harness_dir"]

    def artifact(self, name: str) -> Path:
        return self.bundle.evidence_dir() / name


def unavailable(kind: str, source: str, why: str) -> EvidenceItem:
    return EvidenceItem(id=f"{kind}:{source}", kind=kind, source=source, status="unavailable",
                        summary=f"unavailable: {why}")


def _redact_artifacts(cx: Context, items: list[EvidenceItem]) -> None:
    """Files a collector wrote into evidence/ (command output, DNS answers) pass the bundle's
    redactor before the items are stored; excerpts and data are redacted by Bundle.save."""
    ev = cx.bundle.evidence_dir().resolve()
    for it in items:
        p = (cx.bundle.path / it.artifact).resolve() if it.artifact else None
        if p and p.is_file() and ev in p.parents:
            raw = p.read_bytes()
            red = (cx.bundle.redactor or default_redactor()).bytes(raw)
            if red != raw:
                p.write_bytes(red)


def collect(cx: Context, specs: list[dict], progress=print, logs: bool = True) -> list[EvidenceItem]:
    """Run the given probes (plus the harness logs' inventory unless logs=False) and store the items.
    Items are raw facts; analysis.derive judges them at classify time."""
    items: list[EvidenceItem] = []
    for spec in ([{"kind": "harness_log"}] if logs else []) + list(specs):
        kind = spec["kind"]
        mod = "logs" if kind == "harness_log" else KINDS.get(kind)
        if not mod:
            continue
        try:
            got = import_module(f"{__name__}.{mod}").collect(cx, spec)
        except Exception as e:  # noqa: BLE001 - a collector never fails the investigation
            got = [unavailable(kind, spec.get("name") or kind, f"{type(e).__name__}: {e}")]
            (cx.bundle.evidence_dir() / f"error-{kind}.txt").write_text(cx.bundle.redact(traceback.format_exc()))
        _redact_artifacts(cx, got)
        for it in got:
            cx.bundle.add_evidence(it)
            items.append(it)
        progress(f"[{cx.case.case}] evidence {kind}: " + "; ".join(i.summary[:100] for i in got[:3]))
    return items
