"""Case params: one YAML file per investigation case, validated on load.

Every problem is collected (file, field, reason) and raised together as a
ParamsError, so a malformed file prints one line per problem and nothing runs.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, asdict, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ParamsError
from .gate import (CASE_MAX_BYTES, YAML_MAX_DEPTH, docker_host_problem, fpath, host_problem, json_problems,
                   load_yaml_file, schema_problems, template_problem, type_name, validator_for)

TIERS = ("install", "upgrade", "backup", "restore", "custom", "promote")
PLACEHOLDERS = {"recipe", "ref", "run_dir", "python", "case", "lab_home", "harness_dir", "run_index"}
STOP_RULES = ("fixed", "sprt")
PROBE_KINDS = {
    "service_logs", "task_history", "network_aliases", "dns", "http", "http_route", "static_rules",
    "test_expectation", "harness_code", "canonical_state", "harness_settings", "image_tools", "node_clean",
    "load",
}
BUSY_KINDS = {"process", "stack", "lock_file", "lock_held", "entries"}


@dataclass
class SweepFailure:
    tier: str = ""
    tests: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class NodeSpec:
    kind: str = "local"          # local | ssh
    name: str = "local"
    host: str | None = None      # ssh: host alias from ~/.ssh/config (overridable by --node)
    docker_host: str | None = None
    busy: list[dict] = field(default_factory=list)


@dataclass
class HarnessSpec:
    argv: list[str] = field(default_factory=list)
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)
    results_json: str | None = None
    junit_glob: str | None = None
    runs_dir: str | None = None      # the harness writes each run into <runs_dir>/<run_id>/ (cc-ci); redfix finds it
    tests_dir: str | None = None     # the recipe's overlay tests on the node (cc-ci: <harness>/tests/<recipe>/)
    pre: list[list[str]] = field(default_factory=list)   # argv commands run before each run (e.g. git checkout)


@dataclass
class RunsPolicy:
    max: int = 5
    min: int = 1
    stop_rule: str = "sprt"


@dataclass
class Case:
    case: str
    recipe: str
    ref: str
    source: str = ""
    sweep_failure: SweepFailure = field(default_factory=SweepFailure)
    node: NodeSpec = field(default_factory=NodeSpec)
    harness: HarnessSpec = field(default_factory=HarnessSpec)
    runs: RunsPolicy = field(default_factory=RunsPolicy)
    timeout_s: float = 900.0
    probes: list[dict] = field(default_factory=list)
    lab: dict[str, Any] = field(default_factory=dict)     # lab-only facts (expected verdict, fix ref)
    description: str = ""
    redact: list[str] = field(default_factory=list)      # extra secret regexes (safety.Redactor)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Case":
        d = dict(d)
        d["sweep_failure"] = _make(SweepFailure, d.get("sweep_failure"))
        d["node"] = _make(NodeSpec, d.get("node"))
        d["harness"] = _make(HarnessSpec, d.get("harness"))
        d["runs"] = _make(RunsPolicy, d.get("runs"))
        return _make(cls, d)


SCHEMA_PATH = Path(__file__).resolve().parent.parent / "params" / "case.schema.json"


@lru_cache(maxsize=1)
def _validator():
    """The case schema: params/case.schema.json is the one place the file format is defined."""
    return validator_for(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _schema_problems(data: dict) -> list[tuple[tuple, str]]:
    return schema_problems(_validator(), data)


def _order(data: dict):
    """Sort key: document order of the path's components (required-but-missing go last)."""
    def key(item):
        parts, _ = item
        out, node = [], data
        for p in parts:
            if isinstance(node, dict):
                ks = list(node)
                out.append(ks.index(p) if p in ks else len(ks))
                node = node.get(p) if p in node else None
            elif isinstance(node, list) and isinstance(p, int):
                out.append(p)
                node = node[p] if p < len(node) else None
            else:
                out.append(0)
                node = None
        return out
    return key


def _get(d: dict, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def _semantic_problems(data: dict) -> list[tuple[tuple, str]]:
    """What a JSON schema cannot say: placeholders, regexes, host names, runs.min <= runs.max."""
    out: list[tuple[tuple, str]] = []
    for fld, reason in json_problems(data, max_depth=YAML_MAX_DEPTH):
        out.append((("<value>",) if fld == "<top>" else tuple([fld]), reason))
    h = data.get("harness") if isinstance(data.get("harness"), dict) else {}
    temps: list[tuple[tuple, Any]] = []
    if isinstance(h.get("argv"), list):
        temps += [(("harness", "argv", i), a) for i, a in enumerate(h["argv"])]
    for i, c in enumerate(h.get("pre") if isinstance(h.get("pre"), list) else []):
        if isinstance(c, list):
            temps += [(("harness", "pre", i, j), a) for j, a in enumerate(c)]
    if isinstance(h.get("env"), dict):
        temps += [(("harness", "env", k), v) for k, v in h["env"].items() if isinstance(k, str)]
    temps += [(("harness", k), h.get(k)) for k in ("cwd", "results_json", "junit_glob", "runs_dir", "tests_dir")]
    for parts, t in temps:
        if isinstance(t, str) and (p := template_problem(t, PLACEHOLDERS)):
            out.append((parts, p))
    busy = _get(data, "node", "busy", default=[])
    for i, b in enumerate(busy if isinstance(busy, list) else []):
        if isinstance(b, dict) and len(b) == 1:
            k, v = next(iter(b.items()))
            if k in ("process", "stack") and isinstance(v, str):
                try:
                    re.compile(v)
                except (re.error, RecursionError, OverflowError) as e:
                    out.append((("node", "busy", i, k), f"bad regex: {e}"))
    host = _get(data, "node", "host")
    if isinstance(host, str) and (p := host_problem(host)):
        out.append((("node", "host"), p))
    dh = _get(data, "node", "docker_host")
    if isinstance(dh, str) and (p := docker_host_problem(dh)):
        out.append((("node", "docker_host"), p))
    red = data.get("redact")
    for i, rx in enumerate(red if isinstance(red, list) else []):
        if isinstance(rx, str):
            try:
                if re.compile(rx).fullmatch(""):
                    out.append((("redact", i), f"regex {rx!r} matches the empty string"))
            except (re.error, RecursionError, OverflowError) as e:
                out.append((("redact", i), f"bad regex: {e}"))
    rmax, rmin = _get(data, "runs", "max", default=5), _get(data, "runs", "min", default=1)
    if type(rmax) is int and type(rmin) is int and 1 <= rmax and 0 <= rmin and rmin > rmax:
        out.append((("runs", "min"), f"must be between 0 and runs.max ({rmax}), got {rmin}"))
    return out


def _make(cls, d: dict | None):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (d or {}).items() if k in names})


def parse_case(data: Any, path: str) -> Case:
    """Validate one case's data (schema + semantic checks); every problem of the file at once."""
    if not isinstance(data, dict):
        raise ParamsError([(path, "<top>", f"must be a YAML mapping of case fields, got {type_name(data)}")])
    sem = _semantic_problems(data)
    precise = {parts for parts, _ in sem}       # a semantic check says it better than the schema's pattern
    probs = [x for x in _schema_problems(data) if x[0] not in precise] + sem
    if probs:
        seen, lines = set(), []
        for parts, reason in sorted(probs, key=_order(data)):
            line = (path, fpath(parts), reason)
            if line not in seen:
                seen.add(line)
                lines.append(line)
        raise ParamsError(lines)
    d = {k: v for k, v in data.items() if k != "$schema"}
    return Case(case=d["case"], recipe=d["recipe"], ref=d["ref"], source=path,
                sweep_failure=_make(SweepFailure, d.get("sweep_failure")), node=_make(NodeSpec, d.get("node")),
                harness=_make(HarnessSpec, d.get("harness")), runs=_make(RunsPolicy, d.get("runs")),
                timeout_s=float(d.get("timeout_s", 900.0)), probes=list(d.get("probes", [])),
                lab=dict(d.get("lab", {})), description=d.get("description", ""),
                redact=list(d.get("redact", [])))


def load_case(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Case:
    """Read a case file through the gate (regular file, size cap, UTF-8, safe YAML) and validate it.
    A symlinked case file must point inside `root` (default: the folder holding it)."""
    p = str(path)
    return parse_case(load_yaml_file(p, CASE_MAX_BYTES, root), p)


def find_case_files(paths: list[str]) -> list[tuple[Path, Path | None]]:
    """(file, symlink root) per case file: a folder's *.yaml/*.yml (whatever their type: the gate
    refuses a FIFO or a folder named x.yaml instead of skipping it), or a file named directly."""
    out: list[tuple[Path, Path | None]] = []
    for p in paths:
        pp = Path(p)
        if pp.is_dir() and not pp.is_symlink():
            found = sorted({x for pat in ("*.yaml", "*.yml") for x in pp.rglob(pat)})
            out.extend((x, pp) for x in found if not x.is_dir() or x.is_symlink())
        else:
            out.append((pp, None))
    return out


def load_cases(paths: list[str], extra=None) -> list[Case]:
    """Load every case; collect all problems of all files before raising. `extra(case)` may add
    problems of a loaded case (e.g. the CLI's local program/cwd checks)."""
    problems: list[tuple[str, str, str]] = []
    cases: list[Case] = []
    files = find_case_files(paths)
    if not files:
        raise ParamsError([(",".join(paths) or "<none>", "<path>", "no case files (*.yaml, *.yml) found")])
    seen: dict[str, str] = {}
    for f, root in files:
        try:
            c = load_case(f, root)
        except ParamsError as e:
            problems.extend(e.problems)
            continue
        if c.case in seen:
            problems.append((str(f), "case", f"duplicate case id {c.case!r} (also in {seen[c.case]})"))
        seen[c.case] = str(f)
        cases.append(c)
        if extra:
            problems.extend(extra(c))
    if problems:
        raise ParamsError(problems)
    return cases
