"""The investigation pipeline, written once: case -> node -> lock -> bundle -> runs -> evidence -> verdict.

cli.py, verify.py and the notebooks call these functions; isolate.py (the runner) and load.py (the
stressors) do not import each other — this module hands the runner to the load escalation.

Order inside the lock:
  1. probes that do not need a run (the recipe's files at refs, the test's source, harness values,
     the warm canonical): the stop rule can then count a deterministic mechanism found in the code;
  2. isolated runs, stopped by the posterior (stats.decide: the sweep's failure is one observation);
  3. when the runs pass alone: the load reproduction (load.py's escalation), then more isolated
     runs while the posterior is still undecided;
  4. probes that read the runs or the node afterwards (service logs, task history, the names the
     recipe resolves on shared networks, node left clean);
  5. the verdict (classify, pure).
Every applicable probe runs by default (plan_probes); a case file may add probes, never needs to.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from .bundle import Bundle, load_bundle
from .params import Case, load_case

PRE_KINDS = ("static_rules", "test_expectation", "harness_code", "canonical_state", "harness_settings")
WARM_TIERS = ("promote", "upgrade", "")          # tiers that touch warm state / the harness's warm machinery
URL_HOST_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://([A-Za-z0-9_-]+)(?::\d+)?(?=[/\s\"':]|$)", re.M)


@dataclass
class Session:
    case: Case
    node: object
    bundle: Bundle


@contextmanager
def session(case_path, out_dir, *, fresh: bool = False, node_host: str | None = None):
    """case -> node -> lock -> bundle: the one place these four steps are written."""
    from .isolate import open_bundle
    from .nodes import make_node
    case = load_case(case_path)
    node = make_node(case.node, node_host)
    with node.lock():
        yield Session(case, node, open_bundle(case, out_dir, node, fresh=fresh))


# ---------------------------------------------------------------- probes
def shared_names(files: dict[str, str]) -> list[tuple[str, str]]:
    """(external network, name) pairs the recipe resolves over a network other stacks share: a bare
    host name a service calls (http://app:3000 in its definition or in a config file it mounts),
    resolved on each external network that service is attached to — where another stack's service
    or alias of that name can answer."""
    import yaml
    from .rules import merged_compose
    try:
        comp = merged_compose(files)[0]
    except Exception:  # noqa: BLE001 - an unparsable compose gives no names to probe
        return []
    nets = comp.get("networks") or {}
    external = {n for n, v in nets.items() if isinstance(v, dict) and v.get("external")}
    configs = comp.get("configs") or {}
    out = set()
    for svc in (comp.get("services") or {}).values():
        svc = svc or {}
        sn = svc.get("networks") or []
        on = [n for n in (sn if isinstance(sn, list) else list(sn)) if n in external]
        if not on:
            continue
        text = yaml.safe_dump(svc)
        for c in svc.get("configs") or []:
            src = c.get("source") if isinstance(c, dict) else c
            f = (configs.get(src) or {}).get("file") if isinstance(configs.get(src), dict) else None
            text += "\n" + files.get(str(f or "").lstrip("./"), "")
        for h in URL_HOST_RE.findall(text):
            if h not in ("localhost",) and not h[0].isdigit():
                out |= {(n, h) for n in on}
    return sorted(out)


def plan_probes(case: Case, bundle: Bundle | None = None) -> tuple[list[dict], list[dict]]:
    """(before the runs, after the runs): every probe that applies to this case, from the failing
    tier, the harness and the recipe's compose files at the tag (once collected), plus the probes
    the case file names. Same kind + same parameters runs once."""
    tier = case.sweep_failure.tier
    named = [dict(p) for p in case.probes if p.get("kind") != "load"]
    st = next((p for p in named if p["kind"] == "static_rules"), {"kind": "static_rules"})
    pre = [st, {"kind": "test_expectation"}, {"kind": "harness_settings"}]
    if tier in WARM_TIERS:
        pre += [{"kind": "harness_code"}, {"kind": "canonical_state"}]
    post = [{"kind": "service_logs"}, {"kind": "task_history"}]
    from .collectors.static import tag_files
    tag = tag_files(bundle)
    for net, name in shared_names(tag.data["files"]) if tag else []:
        post += [{"kind": "network_aliases", "network": net, "name": name}, {"kind": "dns", "network": net, "name": name}]
    from .http_targets import http_targets
    if tag and http_targets(tag.data["files"], tag.data.get("env"), case)["targets"]:
        post.append({"kind": "http_route"})     # the recipe's routes asked on a live (warm) stack of it
    from .collectors.image_tools import expected
    if tag and tier in ("install", "upgrade", "promote", "") and expected(tag.data["files"], tag.data.get("env")):
        post.append({"kind": "image_tools"})    # what the healthchecks/entrypoints run, looked up in the images
    post.append({"kind": "node_clean"})
    for p in named:
        where = pre if p["kind"] in PRE_KINDS else post
        if p not in where and not (p["kind"] == "static_rules"):
            if p["kind"] == "test_expectation" and {"kind": "test_expectation"} in where:
                where[where.index({"kind": "test_expectation"})] = p     # the named test replaces the default
            else:
                where.insert(len(where) - 1 if where is post else len(where), p)
    return pre, post


def _collect(s: Session, specs: list[dict], progress, logs: bool) -> None:
    from .collectors import Context, collect
    from .isolate import template_values
    collect(Context(case=s.case, bundle=s.bundle, node=s.node, values=template_values(s.case, s.bundle.path, 0)),
            specs, progress=progress, logs=logs)


# ---------------------------------------------------------------- runs
def _outcomes(b: Bundle) -> tuple[list[bool], list[bool], bool]:
    from .classify import load_sequence
    from .results import reproduced
    tier = b.case["sweep_failure"].get("tier", "")
    return reproduced(b.runs, tier, "isolated"), load_sequence(b.runs, tier), bool(tier)


def deterministic_evidence(b: Bundle) -> bool:
    """Does the bundle's evidence (judged now) show a mechanism in the code that fails every run?"""
    from .classify import deterministic_evidence as _det
    return _det(b)


def stop_rule(case: Case, load_planned: bool) -> Callable[[Bundle], tuple[bool, str]]:
    """The isolated runs' stop rule: the same posterior the verdict reports."""
    from .stats import sequential_stop

    def stop(b: Bundle) -> tuple[bool, str]:
        iso, load, swept = _outcomes(b)
        return sequential_stop(iso, load, swept, deterministic_evidence(b), case.runs.min, case.runs.max,
                               load_planned=load_planned)
    return stop


def run_stage(s: Session, *, runs: int | None = None, under_load: bool | None = None, progress=print) -> None:
    """Isolated runs (posterior stop rule), the load reproduction when they pass alone, then isolated
    runs again while the posterior is undecided (never the same question twice: runs append)."""
    from .isolate import isolate, runner
    from .stats import decide
    case, b = s.case, s.bundle
    load_spec = next((p for p in case.probes if p["kind"] == "load"), None)
    can_load = under_load is not False and bool(case.sweep_failure.tier)
    if not any(r.mode == "isolated" for r in b.runs):
        isolate(case, b, s.node, runs=runs, progress=progress, stop=stop_rule(case, can_load))
    iso, load, swept = _outcomes(b)
    want_load = under_load if under_load is not None else (can_load and iso and not any(iso))
    if want_load and not any(r.mode == "under-load" for r in b.runs):
        spec = load_spec or {}
        extra = {"STAGES": spec["tiers"]} if spec.get("tiers") else None
        _under_load(case, b, s.node, runs=int(spec.get("runs", 2)), level=spec.get("level"), progress=progress,
                    max_rungs=spec.get("max_rungs"), run_fn=runner(case, b, s.node, env_extra=extra))
    iso, load, swept = _outcomes(b)
    value = decide(iso, load, swept, deterministic_evidence(b))[0]
    left = case.runs.max - len(iso)
    if runs is None and value == "unknown" and left > 0:
        progress(f"[{case.case}] posterior undecided after the load stage: up to {left} more isolated run(s)")
        isolate(case, b, s.node, runs=left, stop_rule=case.runs.stop_rule, progress=progress,
                stop=stop_rule(case, False))


def _under_load(case, bundle, node, *, run_fn, max_rungs=None, **kw):
    """load.isolate_under_load given the runner (load.py does not import isolate.py)."""
    import inspect
    from . import load as L
    params = inspect.signature(L.isolate_under_load).parameters
    if "run_fn" in params:
        return L.isolate_under_load(case, bundle, node, run_fn=run_fn, max_rungs=max_rungs, **kw)
    return L.isolate_under_load(case, bundle, node, **kw)      # before load.py took the runner


def contrast_stage(s: Session, progress=print) -> None:
    """The contrasts contrast.plan asks for, one isolated run each (mode 'contrast'): the node's
    harness settings at cc-ci's defaults when they change the failing tier, the nearest earlier
    release, then a bisection over the older ones while they fail too, the fix ref while the cause is
    undecided. Re-planned from the verdict after each run; never the same question twice, at most
    contrast.MAX_CONTRAST_RUNS. The recipe's files at each contrast ref are stored beside it, so the
    diff between the last passing and the first failing release is in the bundle."""
    from .classify import classify
    from .contrast import HARNESS_DEFAULTS
    while True:
        nxt = classify(s.bundle)["contrast_plan"]       # contrast.plan, as the verdict records it
        if not nxt["next"]:
            progress(f"[{s.case.case}] contrasts: {nxt['why']}")
            return
        nxt["ref"] = nxt["next"]
        progress(f"[{s.case.case}] contrast ({nxt['kind']}): one run at {nxt['ref']} — {nxt['question']}")
        contrast_run(s, nxt["ref"], env=nxt.get("env"), kind=nxt["kind"], progress=progress)
        if nxt["kind"] == HARNESS_DEFAULTS:
            continue
        stored = {e.data.get("ref") for e in s.bundle.evidence if e.kind == "static_rules" and e.status == "ok"
                  and e.data.get("recipe") == s.case.recipe}
        want = [{"kind": "static_rules", "refs": [nxt["ref"]]}] if nxt["kind"] != "fix" and nxt["ref"] not in stored else []
        _collect(s, want, progress, logs=True)


def harness_defaults_problem(case: Case, ref: str | None, where: str, field: str) -> None:
    """The harness-defaults contrast asks about the case's own ref, and never for the warm promotion
    (a green run on latest would promote): anything else is refused before it runs."""
    from .ccci import ORCHESTRATOR_STEPS
    from .errors import ParamsError
    if ref and ref != case.ref:
        raise ParamsError([(where, field, f"compares the node's settings with cc-ci's defaults at the case's ref "
                                          f"{case.ref}; got another ref {ref!r}")])
    if case.sweep_failure.tier in ORCHESTRATOR_STEPS:
        raise ParamsError([(where, field, f"the {case.sweep_failure.tier} step runs only on latest and a green run "
                                          "would promote: not run with other settings")])


def contrast_run(s: Session, ref: str, *, env: dict | None = None, kind: str = "", progress=print) -> None:
    """One contrast run at `ref`, the way cc-ci runs a PR (REF=<ref>: it never promotes), with `env`
    on top (the harness-defaults contrast: the node's settings at cc-ci's defaults), recorded as
    mode 'contrast' with what it changed (RunRecord.variant)."""
    from .contrast import HARNESS_DEFAULTS, ref_env
    from .isolate import isolate
    extra = {**(ref_env(s.case, ref, s.case.sweep_failure.tier) or {}), **(env or {})}
    variant = {"kind": kind, "env": dict(env or {})} if kind == HARNESS_DEFAULTS else None
    isolate(s.case, s.bundle, s.node, runs=1, ref=ref, mode="contrast", stop_rule="fixed", progress=progress,
            env_extra=extra or None, variant=variant)


def harness_defaults_run(s: Session, progress=print) -> None:
    """One contrast run at the case's ref with the node's harness settings at cc-ci's defaults."""
    from .contrast import DEFAULTS_ENV, HARNESS_DEFAULTS
    contrast_run(s, s.case.ref, env=DEFAULTS_ENV, kind=HARNESS_DEFAULTS, progress=progress)


# ---------------------------------------------------------------- the whole thing
def investigate(case_path, out_dir, *, runs: int | None = None, fresh: bool = False, under_load: bool | None = None,
                progress: Callable[[str], None] = print, node_host: str | None = None) -> dict:
    """One case end to end; returns the verdict (everything is in the bundle at out_dir)."""
    from .classify import write_verdict
    with session(case_path, out_dir, fresh=fresh, node_host=node_host) as s:
        pre, _ = plan_probes(s.case, s.bundle)
        _collect(s, pre, progress, logs=False)
        run_stage(s, runs=runs, under_load=under_load, progress=progress)
        _, post = plan_probes(s.case, s.bundle)
        _collect(s, post, progress, logs=True)
        if runs is None:
            contrast_stage(s, progress=progress)
    verdict = write_verdict(s.bundle.path)
    progress(f"[{s.case.case}] verdict: {verdict['reproducibility']} / {verdict['cause']} ({verdict['sub_cause']}) "
             f"confidence {verdict['confidence']['value']}")
    return verdict


def isolate_runs(case_path, out_dir, *, runs: int | None = None, fresh: bool = False, under_load: bool = False,
                 load_level: int | None = None, ref: str | None = None, harness_defaults: bool = False,
                 progress=print) -> Bundle:
    """`redfix isolate`: runs only (alone, under load, at another ref as a contrast, or with the node's
    harness settings at cc-ci's defaults as a contrast)."""
    from .errors import ParamsError
    from .isolate import isolate, runner
    from .safety import ref_problem
    if ref is not None and (why := ref_problem(ref)):
        raise ParamsError([("<command line>", "--ref", why)])
    if harness_defaults:
        harness_defaults_problem(load_case(case_path), ref, "<command line>", "--harness-defaults")
    with session(case_path, out_dir, fresh=fresh) as s:
        if under_load:
            _under_load(s.case, s.bundle, s.node, runs=runs, level=load_level, progress=progress,
                        run_fn=runner(s.case, s.bundle, s.node))
        elif harness_defaults:
            for _ in range(runs or 1):
                harness_defaults_run(s, progress=progress)
        elif ref:          # a contrast at another ref, run as cc-ci runs a PR (REF=<ref>)
            for _ in range(runs or 1):
                contrast_run(s, ref, progress=progress)
        else:
            isolate(s.case, s.bundle, s.node, runs=runs, mode="isolated", progress=progress)
    return s.bundle


def collect_evidence(case_path, out_dir, progress=print) -> Bundle:
    """`redfix collect`: every applicable probe into an existing (or new) bundle, no runs."""
    with session(case_path, out_dir) as s:
        pre, _ = plan_probes(s.case, s.bundle)
        _collect(s, pre, progress, logs=False)
        _, post = plan_probes(s.case, s.bundle)
        _collect(s, post, progress, logs=True)
    return s.bundle


def replay(bundle_dir) -> tuple[Bundle, dict, list[str]]:
    """Re-judge a stored bundle with today's analysis: (bundle, verdict, what changed)."""
    from .classify import reclassify
    verdict, changed = reclassify(bundle_dir)
    return load_bundle(bundle_dir), verdict, changed


def investigate_or_replay(case: str = "", mode: str = "replay", bundle_dir: str = ".", runs: int | None = None,
                          under_load: bool | None = None, fresh: bool = False, progress=print, node: str | None = None):
    """What a notebook calls: live -> run the investigation now; replay -> re-classify the stored
    bundle (byte-identical verdict). Returns (bundle, verdict)."""
    from .classify import write_verdict
    from .errors import ParamsError
    if mode not in ("live", "replay"):
        raise ParamsError([("<notebook parameters>", "mode", f"must be 'live' or 'replay', got {mode!r}")])
    if mode == "live":
        if not case:
            raise ParamsError([("<notebook parameters>", "case", "a case file is needed in live mode")])
        investigate(case, bundle_dir, runs=runs, fresh=fresh, under_load=under_load, progress=progress, node_host=node)
    verdict = write_verdict(bundle_dir)
    return load_bundle(bundle_dir), verdict
