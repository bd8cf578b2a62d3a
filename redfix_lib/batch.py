"""`redfix batch`: the investigation notebook once per case with papermill's Python API into
outputs/<date>/<case>.ipynb beside the case's bundle and verdict.json; resumable; one failing
case never stops the others; then the summary notebook writes STATUS.md + STATUS.html."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .bundle import atomic_write_json
from .errors import EXIT_OK
from .params import load_cases

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
CASE_TIMEOUT_S = 3600


def _status_of(exc: BaseException) -> str:
    name = type(exc).__name__
    if "Timeout" in name:
        return "timeout"
    if "DeadKernel" in name or "kernel died" in str(exc).lower():
        return "dead-kernel"
    if name == "PapermillExecutionError":
        return "notebook-error"
    return "error"


def kernel_config():
    """The kernel manager provisions CurveZMQ keys when the kernelspec declares support
    (ipykernel does): the kernel's sockets are encrypted, and ipykernel no longer warns
    "Kernel is running over TCP without encryption" on every notebook of a batch."""
    import zmq
    from traitlets.config import Config
    c = Config()
    if zmq.has("curve"):
        c.KernelManager.transport_encryption = "auto"
    return c


def run_notebook(nb_in: Path, nb_out: Path, params: dict, cwd: Path, timeout: float | None = None,
                 progress_bar: bool | dict = False) -> None:
    """Execute one notebook whose kernel starts in `cwd`. papermill's own `cwd=` does a process-wide
    os.chdir, which races when the node pool runs cases in threads (one thread's restore leaves the
    process in another's folder), so the kernel's folder goes through nbclient's resources instead
    and the process never changes directory. `progress_bar`: papermill's own (tqdm, per cell, on
    stderr), or a dict of tqdm options (e.g. its description)."""
    import papermill as pm
    pm.execute_notebook(str(Path(nb_in).resolve()), str(Path(nb_out).resolve()), parameters=params,
                        kernel_name="python3", progress_bar=progress_bar, log_output=False, report_mode=False,
                        execution_timeout=timeout, config=kernel_config(),
                        resources={"metadata": {"path": str(Path(cwd).resolve())}})


def _run_case(c, day: Path, live: bool, force: bool, node: str | None, bar: bool = False) -> dict:
    nb_out = day / f"{c.case}.ipynb"
    t0 = time.monotonic()
    entry = {"case": c.case, "source": c.source, "notebook": nb_out.name, "bundle": c.case}
    if node:
        entry["node"] = node
    # relative to the kernel's folder (the date folder): the executed notebook names no checkout path
    params = {"case": os.path.relpath(Path(c.source).resolve(), Path(day).resolve()), "mode": "live" if live else "replay",
              "bundle_dir": c.case, "fresh": bool(force)}
    if node:
        params["node"] = node
    try:
        run_notebook(NB_DIR / "investigate.ipynb", nb_out, params, cwd=day, timeout=CASE_TIMEOUT_S,
                     progress_bar={"desc": c.case, "unit": "cell", "leave": False} if bar else False)
        entry["status"] = "ok"
    except Exception as e:  # noqa: BLE001 - one failing case does not stop the others
        entry["status"] = "node-unreachable" if getattr(e, "ename", "") == "NodeUnreachable" else _status_of(e)
        entry["error"] = f"{getattr(e, 'ename', type(e).__name__)}: " + \
            (str(getattr(e, "evalue", "") or e).strip().splitlines() or [""])[-1][:300]
    from .isolate import case_redactor
    from .safety import redact_notebook
    red = case_redactor(c)
    redact_notebook(nb_out, red)             # an exception's text in a cell output, like every output
    entry = red.obj(entry)
    entry["wall_s"] = round(time.monotonic() - t0, 1)
    vf = day / c.case / "verdict.json"
    if vf.exists() and entry["status"] == "ok":
        v = json.loads(vf.read_text())
        entry["verdict"] = {k: v[k] for k in ("reproducibility", "cause", "sub_cause")}
    return entry


def _pool(cases, day, live, force, nodes, progress, record):
    """One case per node at a time, never two on one node; an unreachable node takes no more."""
    import queue
    import threading
    todo: "queue.Queue" = queue.Queue()
    for c in cases:
        todo.put(c)
    lock = threading.Lock()

    def worker(node):
        while True:
            try:
                c = todo.get_nowait()
            except queue.Empty:
                return
            progress(f"[batch] {c.case} on node {node} ...")
            entry = _run_case(c, day, live, force, node)
            with lock:
                record(c, entry)
            progress(f"[batch] {c.case} on {node}: {entry['status']} in {entry['wall_s']}s")
            if entry["status"] == "node-unreachable":
                progress(f"[batch] node {node} is unreachable: it takes no more cases")
                return
    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while not todo.empty():
        c = todo.get_nowait()
        record(c, {"case": c.case, "source": c.source, "status": "not-run", "error": "no reachable node left"})


def check_inputs(cases, day: Path, live: bool) -> None:
    """Every stored bundle the batch would resume or replay is valid (exit 2 otherwise); live:
    local programs/cwd exist (exit 2) and an engine answers where a local case needs one (exit 4)."""
    from .bundle import load_bundle
    from .errors import ParamsError
    problems = []
    for c in cases:
        if (day / c.case / "bundle.json").exists() or (day / c.case).is_file():
            try:
                load_bundle(day / c.case)
            except ParamsError as e:
                problems.extend(e.problems)
    if live:
        from .gate import local_run_problems
        from .isolate import template_values
        for c in cases:
            problems.extend(local_run_problems(c, template_values(c, Path("."), 1)))
    if problems:
        raise ParamsError(problems)
    if live:
        from .gate import require_engine
        from .nodes import make_node
        need = [c for c in cases if c.node.kind == "local" and (any("stack" in b for b in c.node.busy)
                                                                 or any(p.get("kind") == "load" for p in c.probes))]
        if need:
            require_engine(make_node(need[0].node), f"case {need[0].case} (stack busy probe / load probe)")


def run_batch(params_paths: list[str], date: str | None = None, force: bool = False, out_root: str = "outputs",
              live: bool = True, sweep: str | None = None, progress=print, nodes: list[str] | None = None,
              progress_bar: bool | None = None) -> int:
    """progress_bar: papermill's per-cell bar for each case (sequential runs only: bars from the
    node pool's threads would interleave); None = when stderr is a terminal."""
    import sys
    bar = (sys.stderr.isatty() if progress_bar is None else progress_bar) and not nodes
    from .gate import load_manifest, load_sweep
    cases = load_cases(params_paths)       # validates everything before anything runs
    if sweep:
        rep = load_sweep(sweep)
        failed = {n for n, e in rep["recipes"].items() if e["status"] != "pass"}
        cases = [c for c in cases if c.recipe in failed]
        progress(f"[batch] sweep {sweep}: {len(failed)} failure(s) -> {len(cases)} case(s)")
    date = date or time.strftime("%Y-%m-%d", time.gmtime())
    day = Path(out_root) / date
    man_path = day / "manifest.json"
    manifest = load_manifest(man_path) or {"date": date, "cases": {}}
    check_inputs(cases, day, live)         # broken stored bundles, missing programs, no engine: before anything
    day.mkdir(parents=True, exist_ok=True)
    from .versions import versions
    manifest["versions"] = versions()

    def record(c, entry):
        manifest["cases"][c.case] = entry
        atomic_write_json(man_path, manifest)

    pending = []
    for i, c in enumerate(cases, 1):
        prev = manifest["cases"].get(c.case, {})
        if not force and prev.get("status") == "ok" and (day / c.case / "verdict.json").exists() \
                and (day / f"{c.case}.ipynb").exists():
            progress(f"[batch {i}/{len(cases)}] {c.case}: done already (skip; --force to rerun)")
        else:
            pending.append(c)
    if nodes:
        _pool(pending, day, live, force, nodes, progress, record)
    else:
        for i, c in enumerate(pending, 1):
            progress(f"[batch {i}/{len(pending)}] {c.case}: running {'live' if live else 'replay'} ...")
            entry = _run_case(c, day, live, force, None, bar)
            record(c, entry)
            progress(f"[batch {i}/{len(pending)}] {c.case}: {entry['status']} in {entry['wall_s']}s"
                     + (f" -> {entry['verdict']}" if "verdict" in entry else f" ({entry.get('error', '')})"))
    progress("[batch] summary ...")
    try:
        run_notebook(NB_DIR / "summary.ipynb", day / "summary.ipynb", {"outputs_dir": "."}, cwd=day, timeout=600)
        manifest["summary"] = "ok"
    except Exception as e:  # noqa: BLE001
        manifest["summary"] = f"{_status_of(e)}: {type(e).__name__}"
    atomic_write_json(man_path, manifest)
    progress(f"[batch] STATUS.md: {day / 'STATUS.md'}\n[batch] STATUS.html: {day / 'STATUS.html'}\n"
             f"[batch] notebooks: {day}/*.ipynb  manifest: {man_path}")
    bad = [k for k, e in manifest["cases"].items() if e.get("status") != "ok"]
    return EXIT_OK if not bad and manifest["summary"] == "ok" else 1
