"""The lab harness entry point: a stand-in for cc-ci's runner/run_recipe_ci.py, true to its
published contract (docs/cc-ci.md). It imports nothing from redfix outside this harness package.

Env (as on cc-ci): RECIPE (required); REF (empty = the staged checkout as it is, i.e. latest);
STAGES (comma list of tiers, default all); CCCI_SKIP_FETCH=1 (copy the staged checkout
<lab_home>/recipes/<recipe> into the run's own ABRA_DIR instead of fetching); CCCI_QUICK (not
mirrored: refused); CCCI_RUNS_DIR (default <lab_home>/cc-ci-runs); DRONE_BUILD_NUMBER (the run
id; else manual-<pid>); CCCI_APP_LOCK_DIR, CCCI_ACTIVE_DIR; CCCI_DEADLINE_S (default 3600).

Per run: lifetime guards first (parent-death signal + orphan refusal, SIGTERM -> teardown -> 143,
deadline -> teardown -> 142); the run folder <runs_dir>/<run_id>/ with abra/recipes/<recipe>;
an exclusive flock on the app domain and an active-run registry entry; tiers install (one deploy: the upgrade
base when an upgrade tier will run and a base exists, else the head) -> upgrade (the head
redeployed over it) -> backup -> restore (only with backupbot.backup) -> custom, each its own
pytest run writing junit-<tier>.xml; one teardown; results.json schema 2 (synthetic lint stage, rungs, lint, skips,
customization; no per-test message). Then, as an orchestrator step after the teardown of a green
cold run on latest (REF empty) of an enrolled recipe: warm promotion, reported only in the log
(`WC5 ...`, `!! WC5 promote failed for <r>: ...`) and in canonical.json. Exit 0 only when every
tier passed; the promote step never changes it.
"""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RECIPES_SRC = HERE.parent / "recipes"            # the lab's "tests/<recipe>/" tree (cf. cc-ci tests/<recipe>/)
TIERS = ["install", "upgrade", "backup", "restore", "custom"]
RUNGS = ["install", "upgrade", "backup_restore", "functional", "lint"]
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]{0,199}$")
EXIT_REFUSED, EXIT_DEADLINE, EXIT_TERM = 3, 142, 143

_teardown_started = False


def log(msg: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def lab_home() -> Path:
    return Path(os.environ.get("REDFIX_LAB_HOME", "/var/lib/redfix-lab"))


def version_key(tag: str):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", tag)]


def resolve_upgrade_base(head: str, head_is_tag: bool, tags: list[str], canonical: str | None,
                         skip_canonicals: bool) -> tuple[str, str]:
    """(base ref, how it was chosen), as cc-ci's resolve_upgrade_base (commit cd19c1b): the warm
    canonical (last green) unless settings say skip_canonicals_for_upgrade — stepping back to the
    newest older release when the canonical is the head itself —, else the newest release tag
    older than the head; '' when there is none (the upgrade tier skips)."""
    older = [t for t in tags if version_key(t) < version_key(head)] if head_is_tag else tags[:]
    if canonical and not skip_canonicals:
        if canonical == head:
            if older:
                return older[-1], f"canonical {canonical} is the head: newest older release tag"
        elif canonical in tags and (not head_is_tag or version_key(canonical) < version_key(head)):
            return canonical, "warm canonical (last green)"
    why = ("settings: skip_canonicals_for_upgrade = true" if canonical and skip_canonicals else
           "no usable canonical")
    if older:
        return older[-1], f"newest release tag older than the head ({why})"
    return "", f"no earlier release ({why})"


def git(repo: Path, *args: str, check: bool = True) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=check, capture_output=True, text=True).stdout.strip()


# ---- lifetime guards (cf. cc-ci runner/harness/lifetime.py) -----------------------------------
def install_lifetime_guards(deadline_s: int) -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)   # PR_SET_PDEATHSIG
    except OSError:
        pass
    if os.getppid() == 1:          # the parent died before the prctl took effect, or we were orphaned
        print("!! harness started orphaned (parent pid 1): refusing to run", flush=True)
        sys.exit(EXIT_REFUSED)

    def on_term(signum, frame):
        if _teardown_started:
            log(f"signal {signum} during teardown: ignored, teardown continues")
            return
        log("SIGTERM: tearing down, exit 143")
        raise SystemExit(EXIT_TERM)

    def on_alarm(signum, frame):
        if _teardown_started:
            log("deadline during teardown: ignored")
            return
        print(f"!! harness deadline of {deadline_s}s reached: tearing down, exit 142", flush=True)
        raise SystemExit(EXIT_DEADLINE)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(deadline_s)


def begin_teardown() -> None:
    global _teardown_started
    _teardown_started = True


# ---- tiers --------------------------------------------------------------------------------
def tier_tests(recipe: str, tier: str) -> list[str]:
    files = [str(HERE / "generic" / f"test_{tier}.py")] if (HERE / "generic" / f"test_{tier}.py").exists() else []
    tdir = RECIPES_SRC / recipe / "tests"
    if tier == "custom":
        files += sorted(str(p) for p in (tdir / "custom").glob("test_*.py"))
    else:
        files += sorted(str(p) for p in tdir.glob(f"test_{tier}*.py"))
    return files


def junit_stage(path: Path) -> tuple[str, list[dict]]:
    """Stage status and per-test rows (name, status, ms: no message, as in cc-ci's results.json)."""
    root = ET.parse(path).getroot()
    tests = []
    for tc in root.iter("testcase"):
        st = "pass"
        for child in tc:
            if child.tag in ("failure", "error"):
                st = "fail"
                break
            if child.tag == "skipped":
                st = "skip"
        tests.append({"name": tc.get("name", ""), "status": st, "ms": int(round(float(tc.get("time") or 0) * 1000))})
    if any(t["status"] == "fail" for t in tests):
        return "fail", tests
    if tests and all(t["status"] == "skip" for t in tests):
        return "skip", tests
    if tests:
        return "pass", tests
    errs = sum(int(s.get("errors") or 0) + int(s.get("failures") or 0) for s in root.iter("testsuite"))
    return ("fail" if errs else "unver"), tests


def run_tier(tier: str, files: list[str], folder: Path, state: Path) -> dict:
    junit = folder / f"junit-{tier}.xml"
    env = {**os.environ, "CI_STATE": str(state), "PYTHONDONTWRITEBYTECODE": "1"}
    log(f"tier {tier}: pytest {' '.join(Path(f).name for f in files)}")
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "--import-mode=importlib", "-p", "no:cacheprovider",
                        "-p", "redfix_lib.lab.harness.plugin", "--rootdir", str(folder), "-o", "junit_family=xunit1",
                        f"--junitxml={junit}", *files], env=env, cwd=str(folder))
    ms = int((time.time() - t0) * 1000)
    try:
        status, tests = junit_stage(junit)
    except (OSError, ET.ParseError):
        status, tests = "unver", []
    if r.returncode not in (0, 1) and status == "pass":
        status = "unver"
    log(f"tier {tier}: {status} ({ms} ms)")
    return {"name": tier, "status": status, "tests": tests, "ms": ms}


# ---- per-run recipe tree, locks, registry (cf. cc-ci P2/P3 restructure) -------------------------
def setup_run_recipe(recipe: str, staged: Path, abra_dir: Path, skip_fetch: bool) -> Path:
    dest = abra_dir / "recipes" / recipe
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if skip_fetch:       # copy the staged checkout as it is: the operator's pre-step checkout decides
        shutil.copytree(staged, dest, symlinks=True)
    else:                # "fetch": a fresh clone, at the latest release tag
        subprocess.run(["git", "clone", "--quiet", str(staged), str(dest)], check=True)
        tags = sorted(git(dest, "tag").split(), key=version_key)
        if tags:
            git(dest, "checkout", "-f", "--quiet", tags[-1])
    return dest


def acquire_app_lock(domain: str) -> int:
    d = Path(os.environ.get("CCCI_APP_LOCK_DIR") or lab_home() / "lock")
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / f"cc-ci-app-{domain}.lock", os.O_RDWR | os.O_CREAT, 0o644)   # non-inheritable (PEP 446)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def registry_path(domain: str) -> Path:
    return Path(os.environ.get("CCCI_ACTIVE_DIR") or lab_home() / "cc-ci-active") / domain


def rungs_and_level(stages: list[dict], lint_status: str) -> tuple[dict, int]:
    by = {s["name"]: s["status"] for s in stages}
    br = "fail" if "fail" in (by.get("backup"), by.get("restore")) else \
        ("skip" if by.get("backup") == "skip" else by.get("restore"))
    rung = {"install": by.get("install") or "unver", "upgrade": by.get("upgrade") or "unver",
            "backup_restore": br or "unver", "functional": by.get("custom") or "unver", "lint": lint_status}
    level = 0
    for i, r in enumerate(RUNGS, 1):
        if rung[r] == "pass":
            level = i
        elif rung[r] != "skip":
            break
    return rung, level


def main() -> int:
    deadline = int(os.environ.get("CCCI_DEADLINE_S") or 3600)
    install_lifetime_guards(deadline)
    recipe = os.environ.get("RECIPE", "")
    if not NAME_RE.match(recipe) or ".." in recipe:
        print(f"RECIPE: invalid recipe name {recipe!r}", file=sys.stderr)
        return 2
    if os.environ.get("CCCI_QUICK"):
        print("CCCI_QUICK: the --quick lane is not mirrored by the lab", file=sys.stderr)
        return 2
    home = lab_home()
    staged = home / "recipes" / recipe
    if not (staged / ".git").exists():
        print(f"no staged recipe checkout at {staged}: run `redfix lab up`", file=sys.stderr)
        return 2
    meta = yaml.safe_load((RECIPES_SRC / recipe / "meta.yaml").read_text())
    run_id = os.environ.get("DRONE_BUILD_NUMBER") or f"manual-{os.getpid()}"
    if not NAME_RE.match(run_id):
        print(f"run id {run_id!r} is not a folder name", file=sys.stderr)
        return 2
    folder = Path(os.environ.get("CCCI_RUNS_DIR") or home / "cc-ci-runs") / run_id
    folder.mkdir(parents=True, exist_ok=True)
    abra_dir = folder / "abra"
    repo = setup_run_recipe(recipe, staged, abra_dir, os.environ.get("CCCI_SKIP_FETCH") == "1")
    os.environ["ABRA_DIR"] = str(abra_dir)
    ref_env = os.environ.get("REF", "")
    if ref_env:
        if not REF_RE.match(ref_env) or ".." in ref_env:
            print(f"REF: invalid ref {ref_env!r}", file=sys.stderr)
            return 2
        git(repo, "checkout", "-f", "--quiet", ref_env)
    tags = sorted(git(repo, "tag").split(), key=version_key)
    exact = git(repo, "describe", "--tags", "--exact-match", "HEAD", check=False)
    head = ref_env or exact or git(repo, "rev-parse", "HEAD")
    head_is_tag = head in tags
    from redfix_lib.lab.harness import settings as node_settings
    conf = node_settings.load()
    canon_file = home / "ci-warm" / recipe / "canonical.json"
    try:
        canonical = json.loads(canon_file.read_text()).get("version")
    except (OSError, ValueError):
        canonical = None
    prev_ref, base_how = resolve_upgrade_base(head, head_is_tag, tags, canonical,
                                              conf["upgrade"]["skip_canonicals_for_upgrade"])
    base_domain = "lab.redfix.test"
    domain = f"{recipe[:4]}-{secrets.token_hex(3)}.{base_domain}"
    stack = domain.replace(".", "_")
    lock_fd = acquire_app_lock(domain)
    reg = registry_path(domain)
    reg.parent.mkdir(parents=True, exist_ok=True)
    reg.write_text(json.dumps({"pid": os.getpid(), "run_id": run_id, "recipe": recipe}))
    work = home / "work" / f"{run_id}-{stack}"
    state_path = folder / "state.json"
    compose_text = (repo / "compose.yml").read_text()
    wanted = [t.strip() for t in os.environ.get("STAGES", "").split(",") if t.strip()] or TIERS
    # cc-ci deploys ONCE (docs/testing.md): the base version when an upgrade tier will run and a base
    # exists — INSTALL asserts on it and UPGRADE chaos-redeploys the head over it —, else the head
    install_ref = prev_ref if ("upgrade" in wanted and prev_ref) else head
    state = {"recipe": recipe, "recipe_dir": str(repo), "head_ref": head, "head_is_tag": head_is_tag,
             "prev_ref": prev_ref, "install_ref": install_ref, "stack": stack, "domain": domain, "run_id": run_id,
             "results_dir": str(folder), "work_dir": str(work), "lab_home": str(home),
             "snapshots_dir": str(home / "snapshots" / stack), "secrets_file": str(home / "secrets" / f"{stack}.json"),
             "meta": meta}
    state_path.write_text(json.dumps(state, indent=1, sort_keys=True))
    log(f"run {run_id}: recipe {recipe} head {head} (upgrade base {prev_ref or '-'}: {base_how}) domain {domain} "
        f"stack {stack}; ABRA_DIR {abra_dir}")

    log(f"deploy once: {recipe}@{install_ref} ({'the upgrade base' if install_ref != head else 'the head'})")
    has_backup = "backupbot.backup" in compose_text
    stages, skips_int, skips_unint = [], {}, []
    overlays = []
    clean = False
    try:
        broken = None
        for tier in TIERS:
            if tier not in wanted:
                continue
            if tier in ("backup", "restore") and not has_backup:
                skips_int[tier] = "compose has no backupbot.backup label"
                stages.append({"name": tier, "status": "skip", "tests": []})
                continue
            if tier == "upgrade" and not prev_ref:          # cc-ci: no base to upgrade from -> the tier is skipped
                skips_int[tier] = f"no upgrade base: {base_how}"
                stages.append({"name": tier, "status": "skip", "tests": []})
                log(f"tier upgrade: skip ({base_how})")
                continue
            files = tier_tests(recipe, tier)
            overlays += [str(Path(f).relative_to(RECIPES_SRC)) for f in files if Path(f).is_relative_to(RECIPES_SRC)]
            if tier == "custom" and not files:
                skips_int[tier] = "no custom tests"
                stages.append({"name": tier, "status": "skip", "tests": []})
                continue
            if broken:
                skips_unint.append(tier)
                stages.append({"name": tier, "status": "unver", "tests": []})
                continue
            st = run_tier(tier, files, folder, state_path)
            stages.append(st)
            if tier == "install" and st["status"] != "pass":
                broken = "install failed"
    finally:
        begin_teardown()
        signal.alarm(0)
        from redfix_lib.lab.harness import lifecycle
        c = lifecycle.client()
        lifecycle.dump_logs(c, stack, folder / "services" / "cold")
        clean = lifecycle.teardown(c, [stack])
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(home / "snapshots" / stack, ignore_errors=True)
        sf = home / "secrets" / f"{stack}.json"
        if sf.exists():
            sf.unlink()
        reg.unlink(missing_ok=True)
        os.close(lock_fd)
        lint = {"status": "unver", "detail": "abra recipe lint: abra is not installed in the lab", "rules_failed": []}
        rung, level = rungs_and_level(stages, lint["status"])
        res = {"schema": 2, "recipe": recipe, "version": head, "pr": None, "ref": ref_env, "run_id": run_id,
               "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "stages": stages + [{"name": "lint", "status": lint["status"], "tests": []}],
               "level": level, "rungs": rung, "lint": lint,
               "skips": {"intentional": skips_int, "unintentional": skips_unint},
               "customization": {"overlays": overlays, "stages": wanted},
               "flags": {"clean_teardown": clean, "no_secret_leak": True}, "screenshot": None, "summary_card": None}
        (folder / "results.json").write_text(json.dumps(res, indent=1))
    ok = bool(stages) and all(s["status"] in ("pass", "skip") for s in stages)
    log(f"done: {'GREEN' if ok else 'RED'} level {level} clean_teardown={clean}")
    # orchestrator step, after the teardown: promote-on-green-cold (WC5), never changes the exit status
    enrolled = bool((meta.get("warm") or {}).get("enrolled"))
    on_latest = not ref_env and (not head_is_tag or head == tags[-1])     # an older tag staged is not "latest"
    if ok and enrolled and on_latest:
        log(f"WC5 promote-on-green-cold: {recipe} enrolled, green cold run on latest ({head})")
        try:
            from redfix_lib.lab.harness import ctx as ctx_mod, promote
            promote.promote(ctx_mod.Ctx(str(state_path)))
        except Exception as e:  # noqa: BLE001 - promote is non-fatal, as on cc-ci
            print(f"!! WC5 promote failed for {recipe}: {type(e).__name__}: {e}", flush=True)
    elif ok:
        log(f"promote step not attempted ({'not enrolled' if not enrolled else 'not a run on latest'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
