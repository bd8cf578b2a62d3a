"""Fix verification (the seed's M2): run a fix ref (a recipe branch, or a harness change given
as env) in isolation and compare tier by tier, test by test with the failing runs."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .contrast import ref_env
from .bundle import atomic_write_json, load_bundle
from .isolate import isolate
from .params import load_case
from .pipeline import session
from .safety import ref_problem
from .versions import versions


def _tests(runs, tier=None) -> dict[str, str]:
    """test -> worst status across runs."""
    rank = {"fail": 3, "timeout": 3, "unver": 2, "skip": 1, "pass": 0}
    out: dict[str, str] = {}
    for r in runs:
        for t in r.result.tiers:
            if tier and t.name != tier:
                continue
            for x in t.tests:
                k = f"{t.name}::{x.name}"
                if k not in out or rank[x.status] > rank[out[k]]:
                    out[k] = x.status
    return out


def compare(before_runs, after_runs, tier: str) -> dict:
    b, a = _tests(before_runs), _tests(after_runs)
    was_failing = sorted(k for k, s in b.items() if s in ("fail", "timeout") and k.startswith(f"{tier}::"))
    now_green = sorted(k for k in was_failing if a.get(k) == "pass")
    new_failures = sorted(k for k, s in a.items() if s in ("fail", "timeout") and b.get(k) not in ("fail", "timeout"))
    still = sorted(k for k in was_failing if a.get(k) != "pass")
    return {"previously_failing": was_failing, "now_passing": now_green, "still_failing": still,
            "new_failures": new_failures,
            "tiers_before": sorted({t.name: t.status for r in before_runs for t in r.result.tiers}.items()),
            "tiers_after": sorted({t.name: t.status for r in after_runs for t in r.result.tiers}.items())}


def verify_fix(case_path: str, fix_ref: str | None = None, runs: int = 2, out: str | None = None,
               before: str | None = None, progress=print) -> dict:
    case = load_case(case_path)
    meta_fix = (case.lab or {}).get("fix_ref")
    fix_ref = fix_ref or meta_fix
    if not fix_ref:
        from .errors import ParamsError
        raise ParamsError([(str(case_path), "lab.fix_ref", "no fix ref: pass --ref REF or set lab.fix_ref")])
    # the fix is described in the case file (lab.fix): a recipe branch, or a harness change as env
    fix = dict((case.lab or {}).get("fix") or {}) if fix_ref == meta_fix else {}
    kind = fix.get("kind", "recipe")
    env_extra = dict(fix.get("env") or {}) if kind == "harness" else None
    ref = None if kind == "harness" else fix_ref
    if ref and (extra := ref_env(case, ref, case.sweep_failure.tier)):
        env_extra = {**(env_extra or {}), **extra}      # a PR/branch run the way !testme runs it
    elif kind == "harness" and (extra := ref_env(case, case.ref, case.sweep_failure.tier)):
        # a harness fix for a pytest tier runs at the case's ref as a PR run does (REF=<ref>): a green
        # run then never promotes, so verifying never moves the node's warm canonical
        env_extra = {**(env_extra or {}), **extra}
    if ref and (p := ref_problem(ref)):
        from .errors import ParamsError
        raise ParamsError([(str(case_path), "fix ref", p)])
    out_dir = Path(out or Path("outputs") / time.strftime("%Y-%m-%d", time.gmtime()) / f"{case.case}-fix")
    before_dir = Path(before) if before else out_dir.parent / case.case
    load_spec = next((p for p in case.probes if p["kind"] == "load"), None)
    found = json.loads((before_dir / "verdict.json").read_text()).get("reproducibility") \
        if (before_dir / "verdict.json").exists() else None
    if load_spec is None and found == "load-only":
        load_spec = {"kind": "load"}      # no load probe named: the stored verdict says load-only
    with session(case_path, out_dir, fresh=True) as s:
        bundle, node = s.bundle, s.node
        load = None
        if load_spec:     # a load-only failure is verified where it failed: beside the same load
            from .load import start_stressors, stop_stressors
            load = start_stressors(node.docker(), int(load_spec.get("level") or 16))
        try:
            isolate(case, bundle, node, runs=runs, mode="fix", ref=ref, env_extra=env_extra, load=load,
                    progress=progress)
        finally:
            if load_spec:
                stop_stressors(node.docker())
    bundle = load_bundle(out_dir)
    before_runs = []
    if (before_dir / "bundle.json").exists():
        before_runs = [r for r in load_bundle(before_dir).runs if r.outcome != "pass"]
    tier = case.sweep_failure.tier
    cmp = compare(before_runs, bundle.runs, tier)
    expected_green = set(cmp["previously_failing"]) or {f"{tier}::{t}" for t in case.sweep_failure.tests}
    after = _tests(bundle.runs)
    now_green = sorted(k for k in expected_green if after.get(k) == "pass")
    ok = bool(expected_green) and len(now_green) == len(expected_green) and not cmp["new_failures"] \
        and all(r.outcome == "pass" for r in bundle.runs)
    row = {"case": case.case, "recipe": case.recipe, "fix_type": f"{kind} " + ("PR/branch" if kind == "recipe" else "change"),
           "fix_ref": fix_ref, "env": env_extra or {}, "description": fix.get("description", ""),
           "runs": len(bundle.runs), "outcomes": [r.outcome for r in bundle.runs], "load": load_spec is not None,
           "previously_failing": sorted(expected_green), "now_passing": now_green,
           "new_failures": cmp["new_failures"], "tiers_after": cmp["tiers_after"],
           "status": "verified" if ok else "not verified", "bundle": str(out_dir), "versions": versions()}
    atomic_write_json(out_dir / "fix.json", row)
    return row
