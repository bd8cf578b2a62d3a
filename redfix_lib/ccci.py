"""cc-ci's published contract: every fact about the real CI node that redfix relies on, in one place.

Each constant names its source in cc-ci's repository (git.autonomic.zone/recipe-maintainers/cc-ci,
file @ commit); docs/cc-ci.md explains each one and what a user changes when their node differs.
params/cc-ci/*.yaml are written against these values, readers (results.py, isolate.py) use them,
and tests/test_params.py checks that the cc-ci cases agree with this module. Pure data + pure
helpers: no I/O here.
"""
from __future__ import annotations

import re

# ---- where a run's artifacts land ------------------------------------------------------------
# runner/harness/results.py @ 17c8d29 (RUNS_DIR_DEFAULT, "overridable for tests") and the P3
# per-run ABRA_DIR commit 17ebdf3 (setup_run_abra_dir: <runs_dir>/<run-id>/abra).
RUNS_DIR_ENV = "CCCI_RUNS_DIR"
RUNS_DIR_DEFAULT = "/var/lib/cc-ci-runs"
# run_id: the Drone build number for CI builds ("753"), a name for named runs ("m2rr-..."),
# manual-<pid> for a manual run (17ebdf3 "Manual runs get manual-<pid> isolation";
# machine-docs/JOURNAL-dash.md @ 4777ba8 "run ids are MIXED numeric (753,556) and names").
MANUAL_RUN_ID_RE = re.compile(r"^manual-(?P<pid>\d+)$")
RESULTS_JSON = "results.json"
JUNIT_GLOB = "*.xml"            # each tier is its own pytest --junitxml run (results.py @ 52e5d21)
PER_RUN_ABRA_DIR = "abra"       # <runs_dir>/<run_id>/abra (17ebdf3)

# ---- results.json -------------------------------------------------------------------------
# runner/harness/results.py @ 17c8d29 / 3d8d286 (phase lvl5, "schema 2"): { recipe, version, pr,
# ref, run_id, finished, stages:[{name,status,tests:[{name,status,ms}]}], level, rungs,
# lint:{status,detail,rules_failed}, skips:{intentional:{rung:reason}, unintentional:[rung]},
# flags:{clean_teardown,no_secret_leak}, screenshot, summary_card } + "customization"
# (docs/recipe-customization.md @ 8e8985b §7). No per-test message: assertion text is only in
# the JUnit files and the log. Writing results.json never changes the exit status (R7).
RESULTS_SCHEMA = 2
RESULTS_META_KEYS = ("schema", "recipe", "version", "pr", "ref", "run_id", "finished", "level")
RESULTS_BLOCK_KEYS = ("rungs", "lint", "skips", "customization", "flags")
# level.py @ 3d8d286: five rungs, four statuses.
RUNGS = ("install", "upgrade", "backup_restore", "functional", "lint")
RUNG_STATUSES = ("pass", "fail", "skip", "unver")
LINT_STAGE = "lint"             # the synthetic lint stage results.json carries (3d8d286)
TIERS = ("install", "upgrade", "backup", "restore", "custom")   # docs/testing.md; one deploy/teardown

# ---- exit status (authoritative pass/fail) -------------------------------------------------
# runner/harness/lifetime.py @ 369f4f4 (b492f99): SIGTERM -> teardown -> 143; signal.alarm(3600)
# -> teardown -> 142; orphaned at start (ppid == 1 after PR_SET_PDEATHSIG) -> refuses to run.
EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_DEADLINE = 142
EXIT_TERM = 143
DEADLINE_S = 3600
EXIT_MEANING = {EXIT_PASS: "pass", EXIT_FAIL: "a tier failed", EXIT_DEADLINE: "60-minute harness deadline "
                "(SIGALRM, after teardown)", EXIT_TERM: "terminated (SIGTERM, after teardown)"}

# ---- warm promotion: an orchestrator step, not a pytest tier --------------------------------
# machine-docs/DECISIONS.md @ cf5999c (WC5): enrolled (recipe_meta.WARM_CANONICAL) + green + cold
# (not --quick) + on latest (REF empty) -> after the per-run teardown the orchestrator promotes;
# promote is non-fatal (exit status stays 0 when it fails: machine-docs/BUILDER-INBOX.md @ ba28a88,
# "WC5 promote failed: abra app deploy warm-bluesky-pds… failed (1)").
ORCHESTRATOR_STEPS = ("promote",)
PROMOTE_FAILED_RE = re.compile(r"WC5 promote failed(?: for (?P<recipe>[\w.+-]+))?: (?P<reason>.+)$")
PROMOTE_LINE_RE = re.compile(r"WC5\b.*\bpromot(?!.*\b(?:skip|not attempted|not enrolled))")   # the step ran
WARM_DIR = "/var/lib/ci-warm"                        # /var/lib/ci-warm/<recipe>/canonical.json (REVIEW-canon @ c8d4528)
CANONICAL_JSON = "canonical.json"

# ---- concurrency ---------------------------------------------------------------------------
# docs/concurrency.md @ 369f4f4 (restructure, bb5eb3d): every run holds an exclusive flock on its
# app domain, /run/lock/cc-ci-app-<domain>.lock (CCCI_APP_LOCK_DIR overrides the dir), for its whole
# lifetime; same-recipe runs are parallel (per-run ABRA_DIR); DRONE_RUNNER_CAPACITY=2 is the single
# knob. The older model (e8e52cf): /run/cc-ci-active/<domain> registry + /run/lock/cc-ci-recipe-<r>.lock,
# deleted by the restructure — probed too, so a node on either model reads busy.
RUNNER_CAPACITY = 2
APP_LOCK_DIR_ENV = "CCCI_APP_LOCK_DIR"
APP_LOCK_GLOB = "/run/lock/cc-ci-app-*.lock"
ACTIVE_REGISTRY_GLOB = "/run/cc-ci-active/*"          # pre-restructure registry (e8e52cf)
RECIPE_LOCK_GLOB = "/run/lock/cc-ci-recipe-*.lock"    # pre-restructure per-recipe lock (e8e52cf)
HARNESS_PROCESS_RE = r"run_recipe_ci\.py"
SWEEP_PROCESS_RE = r"nightly_sweep"

# ---- the invocation (seed's isolation harness, machine-docs/STATUS-redfix.md @ f8ba0c3) -------
HARNESS_CWD = "/etc/cc-ci"
HARNESS_ARGV = ("cc-ci-run", "runner/run_recipe_ci.py")   # python only inside the cc-ci-run Nix env
STAGED_CHECKOUT = "/root/.abra/recipes/{recipe}"          # CCCI_SKIP_FETCH=1 copies it into the run (17ebdf3)
SKIP_FETCH_ENV = "CCCI_SKIP_FETCH"
UNSET_FOR_COLD_LATEST = ("REF", "CCCI_QUICK", "MODE", "VERSION")
QUICK_ENV = "CCCI_QUICK"
# per-recipe customisation in the harness repo: tests/<recipe>/recipe_meta.py and overlay tests
# such as tests/<recipe>/test_upgrade.py (docs/recipe-customization.md @ 8e8985b)
TESTS_DIR = HARNESS_CWD + "/tests/{recipe}"


def busy_probes() -> list[dict]:
    """The busy probes that match a cc-ci node: a harness or sweep in flight in either runner
    slot (any recipe), a held app-domain lock, the older registry / recipe locks."""
    return [{"process": HARNESS_PROCESS_RE}, {"process": SWEEP_PROCESS_RE},
            {"lock_held": APP_LOCK_GLOB}, {"lock_held": RECIPE_LOCK_GLOB}, {"entries": ACTIVE_REGISTRY_GLOB}]


def runs_dir(env: dict | None = None) -> str:
    return (env or {}).get(RUNS_DIR_ENV) or RUNS_DIR_DEFAULT


def exit_meaning(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        return f"killed by signal {-code}"
    return EXIT_MEANING.get(code, f"exit {code}")


# ---- the node's harness configuration: settings.toml -----------------------------------------
# runner/harness/settings.py (commit cd19c1b, machine-docs/STATUS-settings.md @ 706583b): a server
# settings file read by the harness at run start — `$CCCI_SETTINGS` else /etc/cc-ci/settings.toml;
# absent / unreadable / malformed -> a WARN and every key at its default (never a crash); unknown
# table/key -> warn and ignore; a known key of the wrong type -> TypeError. One table so far:
# [upgrade] skip_canonicals_for_upgrade (bool, default false; cc-ci's own server keeps the file
# absent): when true `resolve_upgrade_base` skips the warm canonical (last green) and takes the
# no-canonical fallback — the newest release tag older than the head, else main's tip, else skip.
# Scope: the upgrade base only (promotion and --quick untouched).
SETTINGS_ENV = "CCCI_SETTINGS"
SETTINGS_PATH = "/etc/cc-ci/settings.toml"
# table -> key -> (type, default, tiers whose behaviour the key changes). The upgrade base is what the
# run's single deploy installs when an upgrade tier follows (docs/testing.md: "deploy ONCE (base
# version...)"), so the base choice changes INSTALL as well as UPGRADE.
SETTINGS_SCHEMA = {"upgrade": {"skip_canonicals_for_upgrade": (bool, False, ("install", "upgrade"))}}
# a settings file every cc-ci loader reads as "all defaults" and that exists on every node: an
# empty file (no WARN, unlike an absent path, and no path that might one day exist)
SETTINGS_ALL_DEFAULTS = "/dev/null"


def toml_value(v) -> str:
    """A settings value as the file spells it (true, "yes", 1)."""
    import json
    try:
        return json.dumps(v)
    except TypeError:
        return repr(v)


def settings_path(env: dict | None = None) -> str:
    """Where the harness reads its settings, given the env it runs with."""
    return (env or {}).get(SETTINGS_ENV) or SETTINGS_PATH


def read_settings(text: str | None) -> dict:
    """cc-ci's loader, as a pure reading of the file's text (None: absent): {'values': every known
    key with its effective value, 'non_default': [{table, key, value, default, tiers}], 'problems':
    [...] (what cc-ci warns about and ignores, or refuses), 'fatal': [keys of the wrong type: cc-ci
    raises at start, so every tier fails], 'parsed': bool}."""
    import tomllib
    values = {t: {k: spec[1] for k, spec in keys.items()} for t, keys in SETTINGS_SCHEMA.items()}
    out = {"values": values, "non_default": [], "problems": [], "fatal": [], "parsed": False}
    if text is None:
        out["problems"].append("absent: every key at its default")
        return out
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        out["problems"].append(f"malformed ({e}): cc-ci warns and uses every default")
        return out
    out["parsed"] = True
    for table, body in doc.items():
        if not isinstance(body, dict):
            out["problems"].append(f"{table} is not a table ({type(body).__name__} at the top level): ignored")
            continue
        if table not in SETTINGS_SCHEMA:
            out["problems"].append(f"unknown table [{table}]: ignored")
            continue
        for key, val in body.items():
            spec = SETTINGS_SCHEMA[table].get(key)
            if spec is None:
                out["problems"].append(f"unknown key {table}.{key}: ignored")
            elif type(val) is not spec[0]:
                why = (f"{table}.{key} = {toml_value(val)} is not {spec[0].__name__}: cc-ci raises TypeError "
                       "(every run fails at start)")
                out["problems"].append(why)
                # a run that raises at start fails whatever tier the failure was seen in (or none)
                out["fatal"].append({"table": table, "key": key, "value": val, "why": why,
                                     "tiers": list(TIERS) + list(ORCHESTRATOR_STEPS) + [""]})
            else:
                values[table][key] = val
                if val != spec[1]:
                    out["non_default"].append({"table": table, "key": key, "value": val, "default": spec[1],
                                               "tiers": list(spec[2])})
    return out
