"""Isolation runner: run a case's harness alone, N times in sequence.

Side effects live here (and in nodes.py); analysis does not. Each run gets its
own folder in the bundle (log, results.json, JUnit), the node is checked quiet
before every run, and the bundle is saved after every run.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from .bundle import Bundle, RunRecord, load_bundle
from .nodes import Node, make_node
from .lab import HARNESS_DIR, lab_home
from .params import Case, expand, load_case
from .results import HarnessResult, TierResult, junit_files_for, read_harness_result, reproduced
from .safety import REDACTED, redact_stream, secret_values
from .stats import stop_decision


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def template_values(case: Case, run_dir: Path, index: int, ref: str | None = None) -> dict[str, str]:
    return {"recipe": case.recipe, "ref": ref or case.ref, "run_dir": str(Path(run_dir).resolve()), "python": sys.executable,
            "case": case.case, "lab_home": str(lab_home()), "harness_dir": str(HARNESS_DIR), "run_index": str(index)}


def public_case(case: Case) -> dict:
    """The case as stored in a bundle: env values whose names look secret are masked."""
    d = case.to_dict()
    d["harness"]["env"] = {k: (REDACTED if v in secret_values({k: v}) else v)
                           for k, v in d["harness"]["env"].items()}
    return d


def open_bundle(case: Case, out_dir: str | os.PathLike, node: Node, fresh: bool = False) -> Bundle:
    path = Path(out_dir)
    if (path / "bundle.json").exists() and not fresh:
        b = load_bundle(path)
        if b.case.get("case") != case.case:
            raise ValueError(f"{path}: holds case {b.case.get('case')!r}, not {case.case!r}")
        return b
    if fresh and path.exists():
        shutil.rmtree(path)
    b = Bundle(path=path, case=public_case(case), node=node.facts(), created=now_iso())
    b.save()
    return b


def run_once(case: Case, bundle: Bundle, node: Node, *, mode: str = "isolated", ref: str | None = None,
             load: dict | None = None, timeout_s: float | None = None, env_extra: dict | None = None) -> RunRecord:
    index = len(bundle.runs) + 1
    rd = bundle.run_dir(index).resolve()     # the harness may run elsewhere (cwd, ssh): absolute paths only
    vals = template_values(case, rd, index, ref)
    h = case.harness
    env = {k: expand(v, vals) for k, v in h.env.items()}
    env.update(env_extra or {})
    secrets = secret_values(env)
    started = now_iso()
    raw_log = rd / "harness.raw.log"
    log = rd / "harness.log"
    error = ""
    t0 = time.monotonic()
    # pre steps (e.g. git checkout -f <ref>) append to the same log
    pre_status = None
    for i, argv in enumerate(h.pre):
        pr = node.run([expand(a, vals) for a in argv], log_path=rd / f"pre-{i}.log", env_set=env,
                      env_unset=h.unset, cwd=expand(h.cwd, vals) if h.cwd else None, timeout_s=120)
        if pr.status != "exited" or pr.exit_code != 0:
            pre_status = f"pre step {i} failed (exit {pr.exit_code}, {pr.status})"
            break
    if pre_status:
        proc_status, code = "error", None
        error = pre_status
        raw_log.write_bytes(b"")
    else:
        pr = node.run([expand(a, vals) for a in h.argv], log_path=raw_log, env_set=env, env_unset=h.unset,
                      cwd=expand(h.cwd, vals) if h.cwd else None, timeout_s=timeout_s or case.timeout_s)
        proc_status, code = pr.status, pr.exit_code
    wall = time.monotonic() - t0
    with open(raw_log, "rb") as src, open(log, "wb") as dst:
        redact_stream(src, dst, secrets)
    raw_log.unlink()
    artifacts = []
    rj = expand(h.results_json, vals) if h.results_json else None
    if node.is_local:
        junits = junit_files_for(expand(h.junit_glob, vals) if h.junit_glob else None)
    else:   # harness outputs live on the node: fetch them into the run folder
        junits = []
        for remote in (node.glob(expand(h.junit_glob, vals)) if h.junit_glob else []):
            (rd / Path(remote).name).write_bytes(node.read_file(remote))
            junits.append(str(rd / Path(remote).name))
        if rj:
            try:
                (rd / "results.json").write_bytes(node.read_file(rj))
                rj = str(rd / "results.json")
            except FileNotFoundError:
                rj = None
    # keep copies of harness outputs that live outside the run folder
    if rj and os.path.isfile(rj) and Path(rj).resolve().parent != rd:
        shutil.copy2(rj, rd / "results.json")
        rj = str(rd / "results.json")
    kept = []
    for j in junits:
        if Path(j).resolve().parent != rd:
            shutil.copy2(j, rd / Path(j).name)
            j = str(rd / Path(j).name)
        kept.append(j)
    if proc_status == "error":
        result = HarnessResult(source="exit_code", tiers=[TierResult(name="run", status="unver", detail=error)])
    else:
        result = read_harness_result(rj, kept, code, proc_status)
    for p in sorted(rd.iterdir()):
        if p.is_file():
            artifacts.append(bundle.rel(p))
    if proc_status == "timeout":
        outcome = "timeout"
    elif proc_status == "error":
        outcome = "error"
    else:
        outcome = "pass" if result.passed and (code == 0 or result.source != "exit_code") else "fail"
    rec = RunRecord(index=index, mode=mode, started=started, wall_s=round(wall, 3), exit_code=code,
                    proc_status=proc_status, outcome=outcome, result=result, log=bundle.rel(log),
                    artifacts=artifacts, ref=ref or case.ref, load=load or {}, error=error)
    bundle.add_run(rec)
    return rec


def isolate(case: Case, bundle: Bundle, node: Node, *, runs: int | None = None, mode: str = "isolated",
            ref: str | None = None, load: dict | None = None, stop_rule: str | None = None,
            after_run: Callable[[Bundle, RunRecord], None] | None = None,
            progress: Callable[[str], None] = print, env_extra: dict | None = None) -> list[RunRecord]:
    """Run the harness alone up to `runs` times (default case.runs.max), stopping early when
    the stop rule allows. Must be called with node.lock() held."""
    max_runs = runs or case.runs.max
    rule = stop_rule or (case.runs.stop_rule if runs is None else "fixed")
    tier = case.sweep_failure.tier
    done: list[RunRecord] = []
    for i in range(max_runs):
        node.ensure_quiet(case.node.busy)
        progress(f"[{case.case}] {mode} run {i + 1}/{max_runs} ...")
        rec = run_once(case, bundle, node, mode=mode, ref=ref, load=load, env_extra=env_extra)
        failed = [t.name for t in rec.result.tiers if t.status in ("fail", "timeout", "unver")]
        progress(f"[{case.case}] run {rec.index}: {rec.outcome} in {rec.wall_s:.1f}s"
                 + (f" (failed: {', '.join(failed)})" if failed else ""))
        done.append(rec)
        if after_run:
            after_run(bundle, rec)
        stop, why = stop_decision(reproduced(bundle.runs, tier, mode), rule,
                                  case.runs.min if runs is None else max_runs, max_runs)
        if stop:
            progress(f"[{case.case}] stopping: {why}")
            break
    return done


def investigate(case_path, out_dir, *, runs: int | None = None, fresh: bool = False, under_load: bool | None = None,
                progress: Callable[[str], None] = print, node_host: str | None = None) -> dict:
    """The whole investigation of one case: isolation runs (stop rule), a load reproduction when
    the failure passed alone and the case names a load probe, evidence collection, verdict.
    Returns the verdict; everything is in the bundle at out_dir."""
    from .classify import write_verdict
    from .collectors import Context, collect
    from .load import isolate_under_load
    case = load_case(case_path)
    node = make_node(case.node, node_host)
    with node.lock():
        bundle = open_bundle(case, out_dir, node, fresh=fresh)
        if not bundle.runs:
            isolate(case, bundle, node, runs=runs, progress=progress)
        load_spec = next((p for p in case.probes if p["kind"] == "load"), None)
        iso_passed = any(r.outcome == "pass" for r in bundle.runs if r.mode == "isolated")
        want_load = under_load if under_load is not None else (load_spec is not None and iso_passed)
        if want_load and not any(r.mode == "under-load" for r in bundle.runs):
            spec = load_spec or {}
            extra = {"CCCI_TIERS": spec["tiers"]} if spec.get("tiers") else None
            isolate_under_load(case, bundle, node, runs=int(spec.get("runs", 2)), level=spec.get("level"),
                               progress=progress, env_extra=extra)
        vals = template_values(case, bundle.path, 0)
        collect(Context(case=case, bundle=bundle, node=node, values=vals), case.probes, progress=progress)
    verdict = write_verdict(bundle.path)
    progress(f"[{case.case}] verdict: {verdict['reproducibility']} / {verdict['cause']} ({verdict['sub_cause']}) "
             f"confidence {verdict['confidence']['value']}")
    return verdict


def investigate_or_replay(case: str = "", mode: str = "replay", bundle_dir: str = ".", runs: int | None = None,
                          under_load: bool | None = None, fresh: bool = False, progress=print, node: str | None = None):
    """What a notebook calls: live -> run the investigation now; replay -> re-classify the stored
    bundle (byte-identical verdict). Returns (bundle, verdict)."""
    from .classify import write_verdict
    if mode not in ("live", "replay"):
        from .errors import ParamsError
        raise ParamsError([("<notebook parameters>", "mode", f"must be 'live' or 'replay', got {mode!r}")])
    if mode == "live":
        if not case:
            from .errors import ParamsError
            raise ParamsError([("<notebook parameters>", "case", "a case file is needed in live mode")])
        investigate(case, bundle_dir, runs=runs, fresh=fresh, under_load=under_load, progress=progress, node_host=node)
    verdict = write_verdict(bundle_dir)
    return load_bundle(bundle_dir), verdict
