"""Case params: one YAML file per investigation case, validated on load.

Every problem is collected (file, field, reason) and raised together as a
ParamsError, so a malformed file prints one line per problem and nothing runs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Any

import yaml

from .errors import ParamsError
from .safety import ENV_NAME_RE, case_problem, recipe_problem, ref_problem

TIERS = ("install", "upgrade", "backup", "restore", "custom", "promote")
PLACEHOLDERS = {"recipe", "ref", "run_dir", "python", "case", "lab_home", "harness_dir", "run_index"}
STOP_RULES = ("fixed", "sprt")
PROBE_KINDS = {
    "service_logs", "task_history", "network_aliases", "dns", "http", "static_rules",
    "test_expectation", "harness_code", "canonical_state", "node_clean", "load",
}
BUSY_KINDS = {"process", "stack", "lock_file"}


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Case":
        d = dict(d)
        d["sweep_failure"] = SweepFailure(**d.get("sweep_failure", {}))
        d["node"] = NodeSpec(**d.get("node", {}))
        d["harness"] = HarnessSpec(**d.get("harness", {}))
        d["runs"] = RunsPolicy(**d.get("runs", {}))
        return cls(**d)


class _Checker:
    def __init__(self, path: str):
        self.path = path
        self.problems: list[tuple[str, str, str]] = []

    def bad(self, fld: str, reason: str) -> None:
        self.problems.append((self.path, fld, reason))

    def typed(self, d: dict, key: str, typ, fld: str, required=False, default=None):
        if key not in d or d[key] is None:
            if required:
                self.bad(fld, "is required")
            return default
        v = d[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if typ is str and isinstance(v, (int, float)) and not isinstance(v, bool):
            self.bad(fld, f"must be a string (quote it: YAML read {v!r} as a number)")
            return default
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            self.bad(fld, f"must be {getattr(typ, '__name__', typ)}, got {type(v).__name__}")
            return default
        return v

    def unknown(self, d: dict, allowed: set, prefix: str) -> None:
        for k in d:
            if k not in allowed:
                self.bad(f"{prefix}{k}", f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _check_template(ck: _Checker, s: str, fld: str) -> None:
    import string
    try:
        names = [n for _, n, _, _ in string.Formatter().parse(s) if n is not None]
    except ValueError as e:
        ck.bad(fld, f"bad template {s!r}: {e}")
        return
    for n in names:
        if n not in PLACEHOLDERS:
            ck.bad(fld, f"unknown placeholder {{{n}}} (allowed: {', '.join(sorted(PLACEHOLDERS))})")


def _argv(ck: _Checker, v: Any, fld: str) -> list[str]:
    if isinstance(v, str):
        ck.bad(fld, "must be an argv list of strings, not a shell string")
        return []
    if not isinstance(v, list) or not v or not all(isinstance(a, str) for a in v):
        ck.bad(fld, "must be a non-empty list of strings")
        return []
    for i, a in enumerate(v):
        _check_template(ck, a, f"{fld}[{i}]")
    return list(v)


def parse_case(data: Any, path: str) -> Case:
    ck = _Checker(path)
    if not isinstance(data, dict):
        raise ParamsError([(path, "<top>", "must be a YAML mapping")])
    ck.unknown(data, {"case", "recipe", "ref", "sweep_failure", "node", "harness", "runs",
                      "timeout_s", "probes", "lab", "description"}, "")
    case = ck.typed(data, "case", str, "case", required=True, default="")
    if case and (p := case_problem(case)):
        ck.bad("case", p)
    recipe = ck.typed(data, "recipe", str, "recipe", required=True, default="")
    if recipe and (p := recipe_problem(recipe)):
        ck.bad("recipe", p)
    ref = ck.typed(data, "ref", str, "ref", required=True, default="")
    if ref and (p := ref_problem(ref)):
        ck.bad("ref", p)

    sf = ck.typed(data, "sweep_failure", dict, "sweep_failure", default={}) or {}
    ck.unknown(sf, {"tier", "tests", "message"}, "sweep_failure.")
    tier = ck.typed(sf, "tier", str, "sweep_failure.tier", default="")
    if tier and tier not in TIERS:
        ck.bad("sweep_failure.tier", f"unknown tier {tier!r} (one of {', '.join(TIERS)})")
    tests = ck.typed(sf, "tests", list, "sweep_failure.tests", default=[]) or []
    if not all(isinstance(t, str) for t in tests):
        ck.bad("sweep_failure.tests", "must be a list of strings")
        tests = []
    sweep = SweepFailure(tier=tier or "", tests=tests,
                         message=ck.typed(sf, "message", str, "sweep_failure.message", default="") or "")

    nd = ck.typed(data, "node", dict, "node", default={}) or {}
    ck.unknown(nd, {"kind", "name", "host", "docker_host", "busy"}, "node.")
    kind = ck.typed(nd, "kind", str, "node.kind", default="local")
    if kind not in ("local", "ssh"):
        ck.bad("node.kind", f"must be 'local' or 'ssh', got {kind!r}")
    busy = ck.typed(nd, "busy", list, "node.busy", default=[]) or []
    for i, b in enumerate(busy):
        if not isinstance(b, dict) or len(b) != 1 or next(iter(b)) not in BUSY_KINDS \
                or not isinstance(next(iter(b.values())), str):
            ck.bad(f"node.busy[{i}]", "must be one of {process: REGEX}, {stack: REGEX}, {lock_file: PATH}")
        else:
            k, v = next(iter(b.items()))
            if k in ("process", "stack"):
                import re
                try:
                    re.compile(v)
                except re.error as e:
                    ck.bad(f"node.busy[{i}].{k}", f"bad regex: {e}")
    node = NodeSpec(kind=kind or "local", name=ck.typed(nd, "name", str, "node.name", default="local") or "local",
                    host=ck.typed(nd, "host", str, "node.host"),
                    docker_host=ck.typed(nd, "docker_host", str, "node.docker_host"), busy=busy)
    if node.name and (p := case_problem(node.name)):
        ck.bad("node.name", p)

    hd = ck.typed(data, "harness", dict, "harness", required=True, default={}) or {}
    ck.unknown(hd, {"argv", "cwd", "env", "unset", "results_json", "junit_glob", "pre"}, "harness.")
    argv = _argv(ck, hd.get("argv"), "harness.argv") if "argv" in hd else (ck.bad("harness.argv", "is required") or [])
    pre = []
    for i, c in enumerate(ck.typed(hd, "pre", list, "harness.pre", default=[]) or []):
        pre.append(_argv(ck, c, f"harness.pre[{i}]"))
    env = ck.typed(hd, "env", dict, "harness.env", default={}) or {}
    for k, v in env.items():
        if not isinstance(k, str) or not ENV_NAME_RE.match(k):
            ck.bad(f"harness.env.{k}", "invalid environment variable name")
        elif not isinstance(v, str):
            ck.bad(f"harness.env.{k}", f"must be a string (quote it), got {type(v).__name__}")
        else:
            _check_template(ck, v, f"harness.env.{k}")
    unset = ck.typed(hd, "unset", list, "harness.unset", default=[]) or []
    for i, k in enumerate(unset):
        if not isinstance(k, str) or not ENV_NAME_RE.match(k):
            ck.bad(f"harness.unset[{i}]", "invalid environment variable name")
    for key in ("cwd", "results_json", "junit_glob"):
        v = ck.typed(hd, key, str, f"harness.{key}")
        if v:
            _check_template(ck, v, f"harness.{key}")
    harness = HarnessSpec(argv=argv, cwd=hd.get("cwd"), env={k: v for k, v in env.items() if isinstance(v, str)},
                          unset=[u for u in unset if isinstance(u, str)],
                          results_json=hd.get("results_json"), junit_glob=hd.get("junit_glob"), pre=pre)

    rd = ck.typed(data, "runs", dict, "runs", default={}) or {}
    ck.unknown(rd, {"max", "min", "stop_rule"}, "runs.")
    rmax = ck.typed(rd, "max", int, "runs.max", default=5)
    rmin = ck.typed(rd, "min", int, "runs.min", default=1)
    if rmax is not None and not (1 <= rmax <= 200):
        ck.bad("runs.max", f"must be between 1 and 200, got {rmax}")
    if rmin is not None and rmax is not None and not (0 <= rmin <= rmax):
        ck.bad("runs.min", f"must be between 0 and runs.max ({rmax}), got {rmin}")
    rule = ck.typed(rd, "stop_rule", str, "runs.stop_rule", default="sprt")
    if rule not in STOP_RULES:
        ck.bad("runs.stop_rule", f"must be one of {', '.join(STOP_RULES)}, got {rule!r}")
    runs = RunsPolicy(max=rmax or 5, min=rmin if rmin is not None else 1, stop_rule=rule or "sprt")

    timeout = ck.typed(data, "timeout_s", float, "timeout_s", default=900.0)
    if timeout is not None and not (0 < timeout <= 6 * 3600):
        ck.bad("timeout_s", f"must be > 0 and at most 21600, got {timeout}")

    probes = ck.typed(data, "probes", list, "probes", default=[]) or []
    for i, p in enumerate(probes):
        if not isinstance(p, dict) or not isinstance(p.get("kind"), str):
            ck.bad(f"probes[{i}]", "must be a mapping with a 'kind'")
        elif p["kind"] not in PROBE_KINDS:
            ck.bad(f"probes[{i}].kind", f"unknown probe {p['kind']!r} (one of {', '.join(sorted(PROBE_KINDS))})")
    lab = ck.typed(data, "lab", dict, "lab", default={}) or {}
    desc = ck.typed(data, "description", str, "description", default="") or ""

    if ck.problems:
        raise ParamsError(ck.problems)
    return Case(case=case, recipe=recipe, ref=ref, source=path, sweep_failure=sweep, node=node,
                harness=harness, runs=runs, timeout_s=timeout or 900.0, probes=probes, lab=lab,
                description=desc)


def load_case(path: str | os.PathLike) -> Case:
    p = str(path)
    try:
        text = Path(p).read_text(encoding="utf-8")
    except OSError as e:
        raise ParamsError([(p, "<file>", f"cannot read: {e.strerror or e}")])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "<yaml>"
        raise ParamsError([(p, where, f"invalid YAML: {getattr(e, 'problem', e)}")])
    return parse_case(data, p)


def find_case_files(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        pp = Path(p)
        if pp.is_dir():
            out.extend(sorted(x for x in pp.rglob("*.yaml") if x.is_file()))
            out.extend(sorted(x for x in pp.rglob("*.yml") if x.is_file()))
        else:
            out.append(pp)
    return out


def load_cases(paths: list[str]) -> list[Case]:
    """Load every case; collect all problems of all files before raising."""
    problems: list[tuple[str, str, str]] = []
    cases: list[Case] = []
    files = find_case_files(paths)
    if not files:
        raise ParamsError([(",".join(paths) or "<none>", "<path>", "no case files found")])
    seen: dict[str, str] = {}
    for f in files:
        try:
            c = load_case(f)
        except ParamsError as e:
            problems.extend(e.problems)
            continue
        if c.case in seen:
            problems.append((str(f), "case", f"duplicate case id {c.case!r} (also in {seen[c.case]})"))
        seen[c.case] = str(f)
        cases.append(c)
    if problems:
        raise ParamsError(problems)
    return cases


def expand(template: str, values: dict[str, str]) -> str:
    """Fill {placeholders} of one argv element; values were validated before."""
    return template.format(**values)
