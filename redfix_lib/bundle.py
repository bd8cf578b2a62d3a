"""Evidence bundle: one folder per investigation, bundle.json + artifacts.

The bundle is the only writer of bundle.json; it is rewritten atomically
(temp file + fsync + rename) after every run and every evidence item, so a
crash loses at most the step in progress. load_bundle() gives back the same
objects, which is what lets the classifier replay a stored investigation.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, asdict
from pathlib import Path

from . import __version__
from .results import HarnessResult

SCHEMA_VERSION = 1


@dataclass
class RunRecord:
    index: int
    mode: str                 # "isolated" | "under-load" | "fix"
    started: str
    wall_s: float
    exit_code: int | None
    proc_status: str          # exited | timeout | error
    outcome: str              # pass | fail | timeout | error
    result: HarnessResult
    log: str                  # path relative to bundle dir
    artifacts: list[str] = field(default_factory=list)
    ref: str = ""
    load: dict = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["result"] = self.result.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        d = dict(d)
        d["result"] = HarnessResult.from_dict(d["result"])
        return cls(**d)


@dataclass
class EvidenceItem:
    id: str                  # stable: <kind>:<source>[:<detail>]
    kind: str
    source: str
    status: str              # ok | unavailable
    summary: str
    excerpt: str = ""
    artifact: str = ""
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Bundle:
    path: Path
    case: dict
    node: dict = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)
    evidence: list[EvidenceItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    redfix_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    created: str = ""

    # ---- paths ----------------------------------------------------------
    @property
    def json_path(self) -> Path:
        return self.path / "bundle.json"

    def run_dir(self, index: int) -> Path:
        d = self.path / "runs" / f"{index:03d}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def evidence_dir(self) -> Path:
        d = self.path / "evidence"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def rel(self, p: str | os.PathLike) -> str:
        return os.path.relpath(p, self.path)

    # ---- mutation -------------------------------------------------------
    def add_run(self, run: RunRecord) -> None:
        self.runs.append(run)
        self.save()

    def add_evidence(self, item: EvidenceItem) -> None:
        self.evidence = [e for e in self.evidence if e.id != item.id] + [item]
        self.save()

    def to_dict(self) -> dict:
        return {
            "schema_version": self.schema_version,
            "redfix_version": self.redfix_version,
            "created": self.created,
            "case": self.case,
            "node": self.node,
            "runs": [r.to_dict() for r in self.runs],
            "evidence": [e.to_dict() for e in self.evidence],
            "notes": self.notes,
        }

    def save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.json_path, self.to_dict())


def atomic_write_json(path: str | os.PathLike, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_bundle(path: str | os.PathLike) -> Bundle:
    p = Path(path)
    if p.is_file():
        p = p.parent
    with open(p / "bundle.json", encoding="utf-8") as f:
        d = json.load(f)
    if d.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{p / 'bundle.json'}: schema_version {d.get('schema_version')} not supported "
                         f"(expected {SCHEMA_VERSION})")
    return Bundle(path=p, case=d["case"], node=d.get("node", {}),
                  runs=[RunRecord.from_dict(r) for r in d.get("runs", [])],
                  evidence=[EvidenceItem(**e) for e in d.get("evidence", [])],
                  notes=d.get("notes", []), redfix_version=d.get("redfix_version", ""),
                  schema_version=d["schema_version"], created=d.get("created", ""))
