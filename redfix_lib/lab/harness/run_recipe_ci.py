"""The lab harness entry point (cf. cc-ci runner/run_recipe_ci.py).

Env: RECIPE (required), REF (default: latest tag), CCCI_RESULTS_DIR (default
<lab_home>/runs/<run_id>), REDFIX_LAB_HOME, WARM_CANONICAL=0 to skip promote,
CCCI_TIERS (comma list) to run a subset. Writes junit-<tier>.xml per tier and
results.json in cc-ci's schema; one teardown; exit 0 only when every tier passed.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import yaml

from redfix_lib.lab import RECIPES_SRC, lab_home
from redfix_lib.collectors.static import version_key
from redfix_lib.lab.harness import lifecycle
from redfix_lib.lab.harness.canonical import BASE_DOMAIN, stack_name
from redfix_lib.safety import recipe_problem, ref_problem

HERE = Path(__file__).parent
TIERS = ["install", "upgrade", "backup", "restore", "custom", "promote"]


def log(msg: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def tier_tests(recipe: str, tier: str) -> list[str]:
    files = [str(HERE / "generic" / f"test_{tier}.py")] if (HERE / "generic" / f"test_{tier}.py").exists() else []
    tdir = RECIPES_SRC / recipe / "tests"
    if tier == "custom":
        files += sorted(str(p) for p in (tdir / "custom").glob("test_*.py"))
    else:
        files += sorted(str(p) for p in tdir.glob(f"test_{tier}*.py"))
    return files


def run_tier(tier: str, files: list[str], results: Path, state: Path) -> dict:
    junit = results / f"junit-{tier}.xml"
    env = {**os.environ, "CI_STATE": str(state), "PYTHONDONTWRITEBYTECODE": "1"}
    log(f"tier {tier}: pytest {' '.join(Path(f).name for f in files)}")
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "--import-mode=importlib", "-p", "no:cacheprovider", "-p",
                        "redfix_lib.lab.harness.plugin", "--rootdir", str(results), "-o", "junit_family=xunit1",
                        f"--junitxml={junit}", *files], env=env, cwd=str(results))
    from redfix_lib.results import parse_junit
    ms = int((time.time() - t0) * 1000)
    if junit.exists():
        tr = parse_junit(str(junit))
        status = tr.status
        tests = [{"name": t.name, "status": t.status, "ms": t.ms, "message": t.message[:500]} for t in tr.tests]
    else:
        status, tests = "unver", []
    if r.returncode not in (0, 1) and status == "pass":
        status = "unver"
    log(f"tier {tier}: {status} ({ms} ms)")
    return {"name": tier, "status": status, "tests": tests, "ms": ms}


def main() -> int:
    recipe = os.environ.get("RECIPE", "")
    if p := recipe_problem(recipe):
        print(f"RECIPE: {p}", file=sys.stderr)
        return 2
    home = lab_home()
    repo = home / "recipes" / recipe
    if not (repo / ".git").exists():
        print(f"no lab recipe repository at {repo}: run `redfix lab up`", file=sys.stderr)
        return 2
    meta = yaml.safe_load((RECIPES_SRC / recipe / "meta.yaml").read_text())
    tags = sorted(git(repo, "tag").split(), key=version_key)
    ref = os.environ.get("REF") or tags[-1]
    if p := ref_problem(ref):
        print(f"REF: {p}", file=sys.stderr)
        return 2
    git(repo, "checkout", "-f", "--quiet", ref)
    head_is_tag = ref in tags
    if head_is_tag:
        prev = [t for t in tags if version_key(t) < version_key(ref)]
    else:
        prev = tags[:]
    prev_ref = prev[-1] if prev else ""
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    domain = f"{recipe[:4]}-{secrets.token_hex(3)}.{BASE_DOMAIN}"
    stack = stack_name(domain)
    results = Path(os.environ.get("CCCI_RESULTS_DIR") or home / "runs" / run_id)
    results.mkdir(parents=True, exist_ok=True)
    work = home / "work" / run_id
    state_path = results / "state.json"
    compose_text = (repo / "compose.yml").read_text()
    state = {"recipe": recipe, "recipe_dir": str(repo), "head_ref": ref, "head_is_tag": head_is_tag,
             "prev_ref": prev_ref, "stack": stack, "domain": domain, "run_id": run_id,
             "results_dir": str(results), "work_dir": str(work), "lab_home": str(home),
             "snapshots_dir": str(home / "snapshots" / stack), "secrets_file": str(home / "secrets" / f"{stack}.json"),
             "meta": meta}
    state_path.write_text(json.dumps(state, indent=1, sort_keys=True))
    log(f"recipe {recipe} ref {ref} (base {prev_ref or '-'}) domain {domain} stack {stack}")

    wanted = [t.strip() for t in os.environ.get("CCCI_TIERS", "").split(",") if t.strip()] or TIERS
    has_backup = "backupbot.backup" in compose_text
    warm = (meta.get("warm") or {}).get("enrolled") and os.environ.get("WARM_CANONICAL", "1") != "0"
    stages, skips_int, skips_unint = [], {}, []
    broken = None
    for tier in TIERS:
        if tier not in wanted:
            continue
        if tier in ("backup", "restore") and not has_backup:
            skips_int[tier] = "compose has no backupbot.backup label"
            stages.append({"name": tier, "status": "skip", "tests": []})
            continue
        if tier == "promote" and not warm:
            skips_int[tier] = "recipe not enrolled warm (WARM_CANONICAL off)"
            stages.append({"name": tier, "status": "skip", "tests": []})
            continue
        files = tier_tests(recipe, tier)
        if tier == "custom" and not files:
            skips_int[tier] = "no custom tests"
            stages.append({"name": tier, "status": "skip", "tests": []})
            continue
        if broken and tier != "promote":
            skips_unint.append(tier)
            stages.append({"name": tier, "status": "unver", "tests": [], "detail": f"not run: {broken}"})
            continue
        st = run_tier(tier, files, results, state_path)
        stages.append(st)
        if tier == "install" and st["status"] != "pass":
            broken = "install failed"
        if tier == "backup" and st["status"] != "pass":
            broken = None  # restore still reports its own failure (no snapshot)
        if tier == "promote":
            pass

    c = lifecycle.client()
    lifecycle.dump_logs(c, stack, results / "services" / "cold")
    clean = lifecycle.teardown(c, [stack])
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(home / "snapshots" / stack, ignore_errors=True)
    sf = home / "secrets" / f"{stack}.json"
    if sf.exists():
        sf.unlink()
    order = ["install", "upgrade", "backup_restore", "functional", "lint"]
    by = {s["name"]: s["status"] for s in stages}
    rung = {"install": by.get("install"), "upgrade": by.get("upgrade"),
            "backup_restore": "fail" if "fail" in (by.get("backup"), by.get("restore")) else
            ("skip" if by.get("backup") == "skip" else by.get("restore")),
            "functional": by.get("custom"), "lint": "skip"}
    level = 0
    for i, r in enumerate(order, 1):
        if rung[r] in ("pass", "skip"):
            level = i
        else:
            break
    res = {"recipe": recipe, "version": ref, "pr": None, "ref": ref, "run_id": run_id,
           "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stages": stages,
           "level": level, "rungs": rung, "lint": {"status": "skip", "detail": "no lint in the lab", "rules_failed": []},
           "skips": {"intentional": skips_int, "unintentional": skips_unint},
           "flags": {"clean_teardown": clean, "no_secret_leak": True}, "domain": domain, "stack": stack,
           "screenshot": None, "summary_card": None}
    (results / "results.json").write_text(json.dumps(res, indent=1))
    ok = all(s["status"] in ("pass", "skip") for s in stages)
    log(f"done: {'GREEN' if ok else 'RED'} level {level} clean_teardown={clean}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
