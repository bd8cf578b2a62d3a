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
    mode: str                 # "isolated" | "under-load" | "fix" | "contrast" (another ref, pipeline.contrast_stage)
    started: str
    wall_s: float
    exit_code: int | None
    proc_status: str          # exited | timeout | error | interrupted
    outcome: str              # pass | fail | timeout | error | inconclusive (the run's outcome could not be read) | interrupted (redfix was stopped mid-run)
    result: HarnessResult
    log: str                  # path relative to bundle dir
    artifacts: list[str] = field(default_factory=list)
    ref: str = ""
    load: dict = field(default_factory=dict)
    error: str = ""
    # what a contrast run changed besides the ref: {"kind": "harness-defaults", "env": {...}}
    # (contrast.py); empty for every other run, and then not written (older bundles read the same)
    variant: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["result"] = self.result.to_dict()
        if not d["variant"]:
            del d["variant"]
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
    # the case's safety.Redactor (set by isolate.open_bundle); never stored
    redactor: object = field(default=None, repr=False, compare=False)

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

    def redact(self, o):
        """The last redaction before storage (idempotent: stored text is redacted already)."""
        from .safety import default_redactor
        return (self.redactor or default_redactor()).obj(o)

    def save(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.json_path, self.redact(self.to_dict()))


def atomic_write_json(path: str | os.PathLike, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _umask() -> int:
    """The process umask, read without changing it (os.umask() would, for a moment, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Temp file + fsync + rename. The file gets the mode a plain open() would give (0666 minus
    the umask: 0644 usually), not mkstemp's private 0600: reports are meant to be read and served."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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


def _keys(*classes) -> dict:
    """Keys a stored object may have: the dataclass's own fields (a field added to the dataclass
    is accepted here without a second edit)."""
    from dataclasses import fields as _f
    return {"propertyNames": {"enum": sorted({f.name for c in classes for f in _f(c)})}}


def _bundle_schema() -> dict:
    from .results import STATUSES, HarnessResult, TestResult, TierResult
    s, n, o = {"type": "string"}, {"type": "number", "minimum": 0}, {"type": "object"}
    test = {"type": "object", "required": ["name", "status"], **_keys(TestResult),
            "properties": {"name": s, "status": {"enum": list(STATUSES)}, "ms": {"type": "integer"},
                           "message": s, "classname": s}}
    tier = {"type": "object", "required": ["name", "status"], **_keys(TierResult),
            "properties": {"name": s, "status": {"enum": list(STATUSES)}, "detail": s,
                           "tests": {"type": "array", "items": test}}}
    result = {"type": "object", "required": ["source"], **_keys(HarnessResult),
              "properties": {"source": {"enum": ["results.json", "junit", "exit_code", "unreadable"]},
                             "tiers": {"type": "array", "items": tier}, "flags": o, "meta": o}}
    run = {"type": "object", **_keys(RunRecord),
           "required": ["index", "mode", "started", "wall_s", "exit_code", "proc_status", "outcome", "result", "log"],
           "properties": {"index": {"type": "integer", "minimum": 1, "maximum": 100000},
                          "mode": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}$"}, "started": s, "wall_s": n,
                          "exit_code": {"type": ["integer", "null"]},
                          "proc_status": {"enum": ["exited", "timeout", "error", "interrupted"]},
                          "outcome": {"enum": ["pass", "fail", "timeout", "error", "inconclusive", "interrupted"]}, "result": result,
                          "log": s, "artifacts": {"type": "array", "items": s}, "ref": s, "load": o, "error": s,
                          "variant": o}}
    ev = {"type": "object", **_keys(EvidenceItem), "required": ["id", "kind", "source", "status", "summary"],
          "properties": {"id": s, "kind": s, "source": s, "status": {"enum": ["ok", "unavailable"]}, "summary": s,
                         "excerpt": s, "artifact": s, "data": o}}
    case = {"type": "object", "required": ["case"],
            "properties": {"case": {"type": "string", "pattern": "^(?!.*\\.\\.)[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                                    "patternErrorMessage": "invalid case id"},
                           "sweep_failure": {"type": "object", "properties": {"tier": s,
                                                                              "tests": {"type": "array", "items": s}}},
                           "lab": o}}
    return {"type": "object", "required": ["schema_version", "case", "runs"],
            "propertyNames": {"enum": ["schema_version", "redfix_version", "created", "case", "node", "runs",
                                       "evidence", "notes"]},
            "properties": {"schema_version": {"type": "integer"}, "redfix_version": s, "created": s, "case": case,
                           "node": o, "runs": {"type": "array", "items": run},
                           "evidence": {"type": "array", "items": ev}, "notes": {"type": "array", "items": s}}}


_VALIDATOR = None


def _path_problem(root: Path, rel: str, kind: str = "file") -> str | None:
    """A path stored in bundle.json: relative, inside the bundle (symlinks too), an existing regular file."""
    if not rel:
        return "is empty"
    if "\0" in rel or "\\" in rel:
        return "contains a NUL byte or a backslash"
    pp = Path(rel)
    if pp.is_absolute() or ".." in pp.parts:
        return f"{rel!r} escapes the bundle: paths are relative to the bundle folder, without '..'"
    full = root / pp
    real = os.path.realpath(full)
    if os.path.commonpath([real, os.path.realpath(root)]) != os.path.realpath(root):
        return f"{rel!r} is a symlink out of the bundle ({real}): refused"
    try:
        st = os.stat(full)
    except OSError:
        return f"{rel!r} is missing from the bundle"
    import stat as _st
    if not _st.S_ISREG(st.st_mode):
        return f"{rel!r} is not a regular file"
    return None


def bundle_problems(root: Path, d) -> list[tuple[str, str]]:
    """Schema and cross-checks of a parsed bundle.json: (field, reason) per problem."""
    global _VALIDATOR
    from .gate import schema_problems, fpath, validator_for
    if not isinstance(d, dict):
        return [("<top>", "must be a JSON object")]
    if d.get("schema_version") != SCHEMA_VERSION:
        return [("schema_version", f"{d.get('schema_version')!r} not supported (expected {SCHEMA_VERSION})")]
    if _VALIDATOR is None:
        _VALIDATOR = validator_for(_bundle_schema())
    out = [(fpath(p), r) for p, r in schema_problems(_VALIDATOR, d)]
    if out:
        return out
    seen: dict[int, int] = {}
    for i, r in enumerate(d.get("runs", [])):
        if r["index"] in seen:
            out.append((f"runs[{i}].index", f"duplicate run index {r['index']} (also runs[{seen[r['index']]}])"))
        seen.setdefault(r["index"], i)
        if p := _path_problem(root, r["log"]):
            out.append((f"runs[{i}].log", p))
        for j, a in enumerate(r.get("artifacts", [])):
            if p := _path_problem(root, a):
                out.append((f"runs[{i}].artifacts[{j}]", p))
    for i, e in enumerate(d.get("evidence", [])):
        if e.get("artifact") and (p := _path_problem(root, e["artifact"])):
            out.append((f"evidence[{i}].artifact", p))
    return out


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Read a stored bundle through the gate: a folder holding a regular bundle.json (size cap,
    UTF-8, no duplicate keys, no NaN), valid against the bundle schema, every log/artifact path
    inside the bundle and present. Anything else is a ParamsError (exit 2), never a traceback."""
    from .errors import ParamsError
    from .gate import BUNDLE_MAX_BYTES, load_json_file
    p = Path(path)
    if p.name == "bundle.json" and not p.is_dir():
        p = p.parent
    if not p.exists():
        raise ParamsError([(str(p / "bundle.json"), "<bundle>", "no such bundle: its folder does not exist")])
    if not p.is_dir():
        raise ParamsError([(str(p), "<bundle>", "is not a bundle folder (give the folder holding bundle.json)")])
    jp = p / "bundle.json"
    if not os.path.lexists(jp):
        raise ParamsError([(str(p), "<bundle>", "no bundle.json in this folder: not a redfix bundle")])
    d = load_json_file(jp, BUNDLE_MAX_BYTES, root=p, what="bundle.json")
    probs = bundle_problems(p, d)
    if probs:
        raise ParamsError([(str(jp), f, r) for f, r in probs])
    return Bundle(path=p, case=d["case"], node=d.get("node", {}),
                  runs=[RunRecord.from_dict(r) for r in d.get("runs", [])],
                  evidence=[EvidenceItem(**e) for e in d.get("evidence", [])],
                  notes=d.get("notes", []), redfix_version=d.get("redfix_version", ""),
                  schema_version=d["schema_version"], created=d.get("created", ""))
