"""Isolation runner: run a case's harness alone, N times in sequence.

Side effects live here (and in nodes.py); analysis does not. Each run gets its
own folder in the bundle (log, results.json, JUnit), the node is checked quiet
before every run, and the bundle is saved after every run.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from . import ccci
from .bundle import Bundle, RunRecord, load_bundle
from .nodes import Node
from .lab import HARNESS_DIR, lab_home
from .gate import expand
from .params import Case
from .results import HarnessResult, TierResult, find_run_folder, read_harness_result, reproduced
from .safety import Redactor
from .stats import stop_decision


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def template_values(case: Case, run_dir: Path, index: int, ref: str | None = None) -> dict[str, str]:
    return {"recipe": case.recipe, "ref": ref or case.ref, "run_dir": str(Path(run_dir).resolve()), "python": sys.executable,
            "case": case.case, "lab_home": str(lab_home()), "harness_dir": str(HARNESS_DIR), "run_index": str(index)}


def case_redactor(case: Case, env: dict[str, str] | None = None) -> Redactor:
    """The one redactor of a case: the built-in detector, the secret-looking values of this
    node's environment and of the case's env (expanded when given), the case's `redact:` regexes."""
    return Redactor(env={**case.harness.env, **(env or {})}, patterns=getattr(case, "redact", []) or [])


def public_case(case: Case, red: Redactor | None = None) -> dict:
    """The case as stored in a bundle: env values whose names look secret masked, argv and
    pre steps redacted as argv (`--password V`, `mysql -pPW`), every other string redacted."""
    red = red or case_redactor(case)
    d = case.to_dict()
    h = d["harness"]
    h["env"] = red.env(h["env"])
    h["argv"] = red.argv(h["argv"])
    h["pre"] = [red.argv(a) for a in h["pre"]]
    return red.obj(d)


# ---- staging: the harness writes outside outputs/, files come in redacted -----------------
def stage_root() -> Path:
    return Path(os.environ.get("REDFIX_STAGE_DIR") or tempfile.gettempdir()) / f"redfix-stage-{os.getuid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_stage(index: int) -> Path:
    """A private (0700) folder outside outputs/ for one run: the harness's {run_dir} and, on
    nodes that cannot redact while streaming, the raw log. Folders left by a redfix that died
    (SIGKILL) are removed here."""
    root = stage_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    for d in root.iterdir():
        pid = d.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
    st = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-run{index:03d}-", dir=root))
    (st / "run").mkdir()
    (st / "raw").mkdir()
    return st


def _interrupt_reason(e: BaseException) -> str:
    sig = getattr(e, "signal_name", None)
    return f"interrupted by {sig}" if sig else f"interrupted ({type(e).__name__})"


def open_bundle(case: Case, out_dir: str | os.PathLike, node: Node, fresh: bool = False) -> Bundle:
    path = Path(out_dir)
    if (path / "bundle.json").exists() and not fresh:
        b = load_bundle(path)
        if b.case.get("case") != case.case:
            raise ValueError(f"{path}: holds case {b.case.get('case')!r}, not {case.case!r}")
        b.redactor = case_redactor(case)
        return b
    if fresh and path.exists():
        shutil.rmtree(path)
    red = case_redactor(case)
    b = Bundle(path=path, case=public_case(case, red), node=red.obj(node.facts()), created=now_iso())
    b.redactor = red
    b.save()
    return b


def run_once(case: Case, bundle: Bundle, node: Node, *, mode: str = "isolated", ref: str | None = None,
             load: dict | None = None, timeout_s: float | None = None, env_extra: dict | None = None,
             variant: dict | None = None) -> RunRecord:
    """One harness run. The harness's {run_dir} is a private staging folder outside outputs/;
    its files come into the bundle's run folder through the redactor, and its output is
    redacted while it streams (or, on nodes that cannot, staged and redacted on the way in).
    When redfix is interrupted (SIGINT/SIGTERM) the harness tree is stopped by node.run, what
    the run left is still brought in redacted, the run is recorded as 'interrupted' (it proves
    nothing either way) and the interruption goes on."""
    stage = new_stage(len(bundle.runs) + 1)
    try:
        return _run_staged(case, bundle, node, stage, mode=mode, ref=ref, load=load, timeout_s=timeout_s,
                           env_extra=env_extra, variant=variant)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _run_staged(case: Case, bundle: Bundle, node: Node, stage: Path, *, mode: str, ref: str | None,
                load: dict | None, timeout_s: float | None, env_extra: dict | None,
                variant: dict | None = None) -> RunRecord:
    index = len(bundle.runs) + 1
    rd = bundle.run_dir(index).resolve()     # the harness may run elsewhere (cwd, ssh): absolute paths only
    srun = stage / "run"
    vals = template_values(case, srun, index, ref)
    h = case.harness
    env = {k: expand(v, vals) for k, v in h.env.items()}
    env.update(env_extra or {})
    red = case_redactor(case, env)
    bundle.redactor = bundle.redactor or case_redactor(case)
    streams = bool(getattr(node, "streams_redacted", False))
    kw = {"redact": red} if streams else {}
    logdir = rd if streams else stage / "raw"
    started = now_iso()
    log = rd / "harness.log"
    error = ""
    interrupted: BaseException | None = None
    proc_status, code = "error", None
    runs_dir = expand(h.runs_dir, vals).rstrip("/") if getattr(h, "runs_dir", None) else None
    before = node.glob(f"{runs_dir}/*") if runs_dir else []
    t0 = time.monotonic()
    try:
        # pre steps (e.g. git checkout -f <ref>) log to pre-N.log
        pre_status = None
        for i, argv in enumerate(h.pre):
            pr = node.run([expand(a, vals) for a in argv], log_path=logdir / f"pre-{i}.log", env_set=env,
                          env_unset=h.unset, cwd=expand(h.cwd, vals) if h.cwd else None, timeout_s=120, **kw)
            if pr.status != "exited" or pr.exit_code != 0:
                pre_status = f"pre step {i} failed (exit {pr.exit_code}, {pr.status})"
                break
        if pre_status:
            proc_status, code = "error", None
            error = pre_status
            (logdir / "harness.log").write_bytes(b"")
        else:
            pr = node.run([expand(a, vals) for a in h.argv], log_path=logdir / "harness.log", env_set=env,
                          env_unset=h.unset, cwd=expand(h.cwd, vals) if h.cwd else None,
                          timeout_s=timeout_s or case.timeout_s, **kw)
            proc_status, code = pr.status, pr.exit_code
    except KeyboardInterrupt as e:           # SIGINT, or SIGTERM turned into errors.Interrupted by the CLI
        interrupted = e
        proc_status, code = "interrupted", None
        error = _interrupt_reason(e)
    wall = time.monotonic() - t0
    if not streams:
        for f in sorted((stage / "raw").glob("*.log")):
            red.file(f, rd / f.name)
    red.tree(srun, rd)

    def here(p: str | None) -> str | None:      # a staged path -> its redacted copy in the run folder
        if p and (p == str(srun) or p.startswith(str(srun) + os.sep)):
            return str(rd / os.path.relpath(p, srun))
        return p
    artifacts = []
    # where this run's outputs are: the run folder it created under runs_dir (cc-ci), else the
    # case's results_json / junit_glob paths; either way they come in through the redactor. On a
    # local node a staged path means its redacted copy in the run folder; on another node the
    # paths are the node's own. An interrupted run on another node is not fetched from.
    unreadable = ""
    rj_src = expand(h.results_json, vals) if h.results_json else None
    junit_pat = expand(h.junit_glob, vals) if h.junit_glob else None
    if node.is_local:
        rj_src, junit_pat = here(rj_src), here(junit_pat)
    fetch = interrupted is None or node.is_local
    if fetch and runs_dir and proc_status != "error":
        folder, why = find_run_folder(before, node.glob(f"{runs_dir}/*"), case.recipe,
                                      lambda f: _recipe_of(node, f, case.recipe))
        if folder:
            rj_src, junit_pat = f"{folder}/{ccci.RESULTS_JSON}", f"{folder}/{ccci.JUNIT_GLOB}"
            (rd / "run-folder.txt").write_text(red.text(folder) + "\n")
        else:
            unreadable = f"run folder not found under {runs_dir}: {why}"
    junits = _fetch(node, node.glob(junit_pat) if junit_pat and fetch else [], rd, red)
    if fetch and runs_dir and not unreadable and rj_src:   # the service logs a harness saved in its run folder (the lab's do)
        _fetch_services(node, str(Path(rj_src).parent), rd, red)
    rj = None
    if rj_src and fetch:
        got = _fetch(node, [rj_src], rd, red, name="results.json")
        rj = got[0] if got else None
    if not log.exists():
        log.write_bytes(b"")
    if interrupted is not None or proc_status == "error":
        result = HarnessResult(source="exit_code", tiers=[TierResult(name="run", status="unver", detail=error)])
    else:
        result = read_harness_result(rj, junits, code, proc_status, log_text=_step_lines(log),
                                     recipe=case.recipe, unreadable=unreadable)
    for p in sorted(rd.iterdir()):
        if p.is_file():
            artifacts.append(bundle.rel(p))
    if interrupted is not None:
        outcome = "interrupted"
    elif proc_status == "timeout":
        outcome = "timeout"
    elif proc_status == "error":
        outcome = "error"
    elif result.source == "unreadable":
        outcome = "inconclusive"
    else:
        outcome = "pass" if result.passed and (code == 0 or result.source != "exit_code") else "fail"
    rec = RunRecord(index=index, mode=mode, started=started, wall_s=round(wall, 3), exit_code=code,
                    proc_status=proc_status, outcome=outcome, result=result, log=bundle.rel(log),
                    artifacts=artifacts, ref=ref or case.ref, load=load or {}, error=error,
                    variant=red.obj(variant or {}))
    bundle.add_run(rec)
    if interrupted is not None:
        raise interrupted
    return rec


def _fetch(node: Node, paths: list[str], rd: Path, red: Redactor, name: str | None = None) -> list[str]:
    """Copy harness outputs (local or on the node) into the run folder through the redactor; a file
    already there (a redacted copy from the stage) is kept; the missing are skipped."""
    out = []
    for src in paths:
        dst = rd / (name or Path(src).name)
        if Path(src).resolve() == dst.resolve() and node.is_local:
            if dst.is_file():
                out.append(str(dst))
            continue
        try:
            dst.write_bytes(red.bytes(node.read_file(src)))
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        out.append(str(dst))
    return out


def _fetch_services(node: Node, folder: str, rd: Path, red: Redactor) -> None:
    code, out = node.capture(["find", f"{folder}/services", "-type", "f", "-size", "-64M"], timeout_s=60)
    for src in out.decode("utf-8", "replace").splitlines() if code == 0 else []:
        rel = Path(src).relative_to(folder)
        if ".." in rel.parts:
            continue
        (rd / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            (rd / rel).write_bytes(red.bytes(node.read_file(src)))
        except (FileNotFoundError, PermissionError):
            pass


def _recipe_of(node: Node, folder: str, recipe: str) -> str | None:
    """Which recipe a cc-ci run folder belongs to: its results.json's recipe, else its per-run
    abra/recipes/<recipe> clone; None when it says nothing (still being written)."""
    import json
    try:
        return str(json.loads(node.read_file(f"{folder}/{ccci.RESULTS_JSON}")).get("recipe") or "") or None
    except (FileNotFoundError, ValueError, AttributeError):
        pass
    if node.file_exists(f"{folder}/{ccci.PER_RUN_ABRA_DIR}/recipes/{recipe}"):
        return recipe
    return None


def _step_lines(path: Path) -> str:
    """The log lines orchestrator steps report on (WC5 promote), streamed: bounded memory."""
    keep = []
    with open(path, "rb") as f:
        for line in f:
            if b"WC5" in line and len(keep) < 1000:
                keep.append(line[:4000].decode("utf-8", "replace").rstrip("\n"))
    return "\n".join(keep)


def runner(case: Case, bundle: Bundle, node: Node, *, mode: str = "under-load", ref: str | None = None,
           env_extra: dict | None = None) -> Callable[[dict], RunRecord]:
    """run_fn for load.escalate: one run (node checked quiet first) recording the load it ran beside."""
    def run(load: dict) -> RunRecord:
        node.ensure_quiet(case.node.busy)
        return run_once(case, bundle, node, mode=mode, ref=ref, load=load, env_extra=env_extra)
    return run


def isolate(case: Case, bundle: Bundle, node: Node, *, runs: int | None = None, mode: str = "isolated",
            ref: str | None = None, load: dict | None = None, stop_rule: str | None = None,
            after_run: Callable[[Bundle, RunRecord], None] | None = None,
            progress: Callable[[str], None] = print, env_extra: dict | None = None,
            stop: Callable[[Bundle], tuple[bool, str]] | None = None, variant: dict | None = None) -> list[RunRecord]:
    """Run the harness alone up to `runs` times (default case.runs.max), stopping early when
    the stop rule allows (`stop(bundle) -> (stop, why)` when the caller gives one: the pipeline's
    posterior rule; else stats.stop_decision). Must be called with node.lock() held."""
    max_runs = runs if runs is not None else case.runs.max
    rule = stop_rule or (case.runs.stop_rule if runs is None else "fixed")
    tier = case.sweep_failure.tier
    done: list[RunRecord] = []
    for i in range(max_runs):
        node.ensure_quiet(case.node.busy)
        progress(f"[{case.case}] {mode} run {i + 1}/{max_runs} ...")
        rec = run_once(case, bundle, node, mode=mode, ref=ref, load=load, env_extra=env_extra, variant=variant)
        failed = [t.name for t in rec.result.tiers if t.status in ("fail", "timeout", "unver")]
        progress(f"[{case.case}] run {rec.index}: {rec.outcome} in {rec.wall_s:.1f}s"
                 + (f" (failed: {', '.join(failed)})" if failed else ""))
        done.append(rec)
        if after_run:
            after_run(bundle, rec)
        if i + 1 >= max_runs:
            break
        if stop is not None and rule != "fixed":
            halt, why = stop(bundle)
        else:
            halt, why = stop_decision(reproduced(bundle.runs, tier, mode), rule,
                                      case.runs.min if runs is None else max_runs, max_runs)
        if halt:
            progress(f"[{case.case}] stopping: {why}")
            break
    return done


def investigate(case_path, out_dir, **kw) -> dict:
    """The whole investigation of one case (pipeline.investigate; kept for callers of this name)."""
    from .pipeline import investigate as _inv
    return _inv(case_path, out_dir, **kw)


def investigate_or_replay(*a, **kw):
    """What a notebook calls (pipeline.investigate_or_replay; kept for callers of this name)."""
    from .pipeline import investigate_or_replay as _ior
    return _ior(*a, **kw)
