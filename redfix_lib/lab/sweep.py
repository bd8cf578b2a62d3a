"""`redfix lab sweep`: every lab recipe's full CI at once on the one node, like cc-ci's nightly
canon sweep (optionally beside CPU burners), and the sweep report investigations start from."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..bundle import atomic_write_json, atomic_write_text
from ..errors import RedfixError
from ..isolate import new_stage
from ..load import default_level, start_stressors, stop_stressors
from ..nodes import RUN_MARKER, _children, kill_grace, make_subreaper, stop_tree
from ..safety import Redactor
from . import BASE_IMAGE, lab_home, settings_file
from .recipes import list_recipes, load_meta

RECIPE_TIMEOUT_S = 1500


def run_sweep(stress: int | None = None, recipes: list[str] | None = None, out: str | None = None) -> dict:
    from .engine import _client, engine_reachable
    if engine_reachable() is not None:
        raise RedfixError("no Docker engine reachable: run `redfix lab up` first")
    names = recipes or list_recipes()
    missing = [n for n in names if not (lab_home() / "recipes" / n / ".git").exists()]
    if missing:
        raise RedfixError(f"lab recipes not built: {', '.join(missing)} (run `redfix lab up`)")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    out_dir = Path(out) if out else Path("outputs") / day / "sweep"
    out_dir.mkdir(parents=True, exist_ok=True)
    client = _client()
    level = default_level() if stress is None else stress
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.monotonic()
    print(f"[sweep] {len(names)} recipes concurrently, {level} CPU burners", flush=True)
    load = start_stressors(client, level, BASE_IMAGE)
    procs = {}
    # each harness writes into a private staging folder outside outputs/ (its log redacted while
    # it streams); its files come into the sweep folder through the redactor
    red = Redactor()
    stage = new_stage(0)
    make_subreaper()
    walls = {}
    try:
        for n in names:
            rd = (out_dir / n).resolve()
            if rd.exists():
                shutil.rmtree(rd)
            rd.mkdir(parents=True)
            # as cc-ci's nightly sweep (run_on_tag): stage the latest tag, then a cold run on latest;
            # a named run (run id = the recipe) so its folder is <stage>/run/<recipe>, copied into
            # <out>/<recipe> through the redactor when it ends
            staged = lab_home() / "recipes" / n
            tags = subprocess.run(["git", "-C", str(staged), "tag"], capture_output=True, text=True).stdout.split()
            latest = sorted(tags, key=lambda t: [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", t)])[-1]
            subprocess.run(["git", "-C", str(staged), "checkout", "-f", "--quiet", latest], check=True)
            env = {k: v for k, v in os.environ.items() if k not in ("REF", "CCCI_QUICK", "MODE", "VERSION", "STAGES")}
            env.update({"RECIPE": n, "CCCI_SKIP_FETCH": "1", "CCCI_RUNS_DIR": str(stage / "run"),
                        "CCCI_SETTINGS": str(settings_file()),
                        "DRONE_BUILD_NUMBER": n, RUN_MARKER: f"sweep-{os.getpid()}-{n}"})
            log = open(rd / "harness.log", "wb")
            p = subprocess.Popen([sys.executable, "-m", "redfix_lib.lab.harness.run_recipe_ci"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            pump = threading.Thread(target=red.stream, args=(p.stdout, log), kwargs={"flush": True}, daemon=True)
            pump.start()
            procs[n] = (p, log, time.monotonic(), pump)
        for n, (p, log, ts, pump) in procs.items():
            try:
                p.wait(timeout=max(1, RECIPE_TIMEOUT_S - (time.monotonic() - ts)))
            except subprocess.TimeoutExpired:     # this recipe only: the others are still running
                stop_tree(p, f"sweep-{os.getpid()}-{n}", _children(os.getpid()) - {p.pid}, grace=kill_grace())
            walls[n] = round(time.monotonic() - ts, 1)
    finally:
        for n, (p, log, ts, pump) in procs.items():     # also when the sweep is interrupted
            stop_tree(p, f"sweep-{os.getpid()}-{n}", _children(os.getpid()) - {p.pid},
                      grace=kill_grace() if p.poll() is None else 2.0)
            pump.join(timeout=10)
            log.close()
            # the per-run recipe clone (abra/) is a copy of the staged checkout, not evidence
            shutil.rmtree(stage / "run" / n / "abra", ignore_errors=True)
            red.tree(stage / "run" / n, (out_dir / n).resolve())
        shutil.rmtree(stage, ignore_errors=True)
        stop_stressors(client)
    wall = round(time.monotonic() - t0, 1)
    rep = {"started": started, "wall_s": wall, "load": load, "recipes": {}, "path": str(out_dir / "sweep.json")}
    for n in names:
        rd = out_dir / n
        entry = {"exit_code": procs[n][0].returncode, "wall_s": walls.get(n), "dir": str(rd),
                 "seed": load_meta(n).get("seed", n), "mechanism": load_meta(n).get("mechanism", "")}
        rep["recipes"][n] = sweep_entry(rd, entry, red)
    from ..versions import versions
    rep["versions"] = versions()
    atomic_write_json(out_dir / "sweep.json", rep)
    atomic_write_text(out_dir / "sweep.md", format_report(rep) + "\n")
    return rep


def sweep_entry(rd: Path, entry: dict, red: Redactor) -> dict:
    """One recipe's row of the sweep report from its (redacted) results.json; every message and
    error passes the redactor before it is stored (sweep.json, sweep.md)."""
    try:
        res = json.loads((rd / "results.json").read_text())
        entry["status"] = "pass" if all(s["status"] in ("pass", "skip") for s in res["stages"]
                                        if s["name"] != "lint") else "fail"
        entry["ref"] = res.get("ref")
        entry["tiers"] = {s["name"]: s["status"] for s in res["stages"] if s["name"] != "lint"}
        from ..results import parse_junit
        msgs = {}
        for jf in sorted(rd.glob("junit-*.xml")):      # results.json has no per-test message
            try:
                msgs.update({t.name: t.message for t in parse_junit(str(jf)).tests})
            except Exception:  # noqa: BLE001
                pass
        entry["failures"] = [{"tier": s["name"], "test": t["name"], "message": msgs.get(t["name"], "")[:400]}
                             for s in res["stages"] if s["name"] != "lint"
                             for t in s.get("tests", []) if t["status"] == "fail"]
        from ..results import orchestrator_steps
        log = rd / "harness.log"
        steps = orchestrator_steps(log.read_text(errors="replace"), rd.name) if log.is_file() else []
        promote_fail = [t.detail for t in steps if t.status == "fail"]
        if promote_fail:
            entry["failures"].append({"tier": "promote", "test": "WC5 promote", "message": promote_fail[-1][:400]})
            entry["status"] = "fail"
        if steps:                       # warm promotion: an orchestrator step, read from the log
            entry["tiers"]["promote"] = steps[0].status
        entry["failed_tiers"] = [s["name"] for s in res["stages"] if s["name"] != "lint"
                                 and s["status"] in ("fail", "unver", "timeout")] + (["promote"] if promote_fail else [])
        entry["clean_teardown"] = res.get("flags", {}).get("clean_teardown")
    except (OSError, ValueError, KeyError) as e:
        entry.update(status="unver", failures=[], failed_tiers=["run"], error=f"no results.json: {e}")
    return red.obj(entry)


def format_report(rep: dict) -> str:
    lines = [f"# Lab canon sweep {rep['started']} — wall {rep['wall_s']}s, load {rep['load']}", "",
             "| recipe | status | failed tier | failed tests | message | wall s |", "|---|---|---|---|---|---|"]
    for n, e in sorted(rep["recipes"].items()):
        fails = e.get("failures") or []
        msg = (fails[0]["message"].splitlines() or [""])[0][:120] if fails else e.get("error", "")
        lines.append(f"| {n} | {e['status']} | {', '.join(e.get('failed_tiers', []))} | "
                     f"{', '.join(f['test'] for f in fails)} | {msg.replace('|', '/')} | {e.get('wall_s')} |")
    return "\n".join(lines)
