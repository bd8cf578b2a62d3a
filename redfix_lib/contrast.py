"""Contrast runs: the same harness with one thing changed, read as evidence that localises a failure.

The operator's strongest move, made generic. Pure (no node, no I/O): `plan` says which contrast is
worth the next run, or why none is; `outcomes`, `walk` and `in_run` read the runs a bundle holds.
pipeline.contrast_stage runs what `plan` asks for (one isolated run each, mode 'contrast'), and
classify cites what these functions read.

Contrasts:
  * releases — the recipe at other tags with the same harness and tests. The nearest earlier tag
    first; when it fails too, a bisection over the older tags finds where the failure began (the
    first failing tag), so the diff between the last passing and the first failing release holds
    the change. Failing at every release back to the oldest rules out a recent recipe change.
  * fix — the fix branch when the case names one and the cause is still undecided.
  * harness defaults — the same ref with the node's harness settings reduced to cc-ci's defaults
    (CCCI_SETTINGS pointing at an empty file), when the node's settings file sets a value that
    changes the failing tier (or one cc-ci refuses). Run first: it is one run and it decides
    whether the node's configuration is the difference at all; when it passes, no release
    contrast is run (releases under the node's settings answer another question).
  * cold vs warm, inside every run (no cost): a run whose warm step (an orchestrator step such as
    the warm promotion) failed while its cold tiers passed shows the recipe deploys cold at this
    ref; what fails needs the warm state or the warm machinery.
A contrast runs only for a failure that reproduces alone on every isolated run (one run at another
ref cannot tell a change from chance in an intermittent one), never when the verdict is already a
proof, never twice for the same ref, at most MAX_CONTRAST_RUNS per investigation. A release
contrast runs the way cc-ci runs a PR (the ref staged, REF=<ref>: it never promotes); a failing
orchestrator step (the warm promotion runs only on latest) gets no release contrast.
"""
from __future__ import annotations

import re

from . import ccci
from .bundle import Bundle
from .results import reproduction

MAX_CONTRAST_RUNS = 3
HARNESS_DEFAULTS = "harness-defaults"
DEFAULTS_ENV = {ccci.SETTINGS_ENV: ccci.SETTINGS_ALL_DEFAULTS}     # the node's settings at cc-ci's defaults


def version_key(tag: str):
    """Release order of a tag: numeric parts compare as numbers, text parts as text (never an int
    against a str, so `1.0.0-rc1` beside `1.0.0+x` sorts instead of raising)."""
    return [(0, int(x), "") if x.isdigit() else (1, 0, x) for x in re.split(r"[.+-]", tag)]


def outcomes(b: Bundle, tier: str) -> dict[str, dict]:
    """ref -> {runs, failed, verdict} of the contrast runs (mode 'contrast') on the failing tier."""
    out = {}
    plain = [r for r in b.runs if r.mode == "contrast" and not r.variant]
    for ref in sorted({r.ref for r in plain}):
        out[ref] = _reading([reproduction(r.outcome, r.result, tier) for r in plain if r.ref == ref])
    return out


def _reading(seq: list[str]) -> dict:
    seq = [x for x in seq if x != "inconclusive"]
    return {"runs": len(seq), "failed": seq.count("fail"),
            "verdict": ("passes" if seq and "fail" not in seq else "fails too" if seq and "pass" not in seq
                        else "mixed" if seq else "inconclusive")}


def settings_deviation(b: Bundle, tier: str) -> tuple[dict | None, list[dict]]:
    """(the node's settings item as judged now, the values in it that change `tier` — a non-default
    value of a key that acts on the tier, or a key cc-ci refuses at start)."""
    e = next((e for e in b.evidence if e.kind == "harness_settings" and e.status == "ok"), None)
    if e is None:
        return None, []
    r = e.data if "non_default" in e.data else ccci.read_settings(e.data.get("text") if e.data.get("present") else None)
    dev = [d for d in (r.get("non_default") or []) + (r.get("fatal") or []) if tier in d.get("tiers", [])]
    return e, dev


def _defaults_runs(b: Bundle) -> list:
    """The harness-defaults contrast runs at the case's own ref (the question is about that ref)."""
    return [r for r in b.runs if r.mode == "contrast" and (r.variant or {}).get("kind") == HARNESS_DEFAULTS
            and r.ref == b.case["ref"]]


def defaults_outcome(b: Bundle, tier: str) -> dict | None:
    """The harness-defaults contrast: its runs on the tier, or None when none ran."""
    runs = _defaults_runs(b)
    if not runs:
        return None
    e, dev = settings_deviation(b, tier)
    return {"id": f"runs:contrast@{HARNESS_DEFAULTS}", "ref": runs[0].ref, "label": HARNESS_DEFAULTS,
            **_reading([reproduction(r.outcome, r.result, tier) for r in runs]),
            "env": dict(runs[0].variant.get("env") or {}), "settings_evidence": e.id if e else None,
            "settings_path": e.source if e else None,
            "settings": [f"{d['table']}.{d['key']} = {ccci.toml_value(d['value'])}" for d in dev],
            "against": b.case["ref"]}


def releases(b: Bundle) -> list[str]:
    """The recipe's tags, oldest first: the list the static collector stored with the tag's files,
    plus every tag whose files are stored (the previous tag, contrast refs)."""
    out = set()
    for e in b.evidence:
        if e.kind == "static_rules" and e.status == "ok" and e.data.get("recipe") == b.case["recipe"]:
            out |= set(e.data.get("tags") or [])
            if e.data.get("is_tag") and e.data.get("ref"):
                out.add(e.data["ref"])
    return sorted(out, key=version_key)


def walk(tags: list[str], case_ref: str, known: dict[str, dict]) -> dict:
    """Where the failure began among the releases, from what the contrast runs showed.

    {'next': the tag to run next or None, 'step': 'previous-tag' | 'bisect' | None,
     'last_pass': tag or None, 'first_fail': tag (the case ref when nothing older failed),
     'state': 'untested' | 'walking' | 'began-at' | 'every-release' | 'undecided' | 'no-releases'}"""
    order = [t for t in tags if t != case_ref and version_key(t) < version_key(case_ref)] \
        if case_ref in tags else list(tags)
    if not order:
        return {"next": None, "step": None, "last_pass": None, "first_fail": case_ref, "state": "no-releases"}
    verdict = {t: (known.get(t) or {}).get("verdict") for t in order}
    fails = [k for k, t in enumerate(order) if verdict[t] == "fails too"]
    hi = min(fails) if fails else len(order)           # len(order) stands for the case ref itself
    passes = [k for k, t in enumerate(order[:hi]) if verdict[t] == "passes"]
    lo = max(passes) if passes else -1
    first_fail = order[hi] if hi < len(order) else case_ref
    last_pass = order[lo] if lo >= 0 else None
    if hi - lo <= 1:
        return {"next": None, "step": None, "last_pass": last_pass, "first_fail": first_fail,
                "state": "began-at" if last_pass else "every-release"}
    if hi == len(order) and verdict[order[-1]] is None:
        nxt, step = order[-1], "previous-tag"
    else:
        nxt, step = order[(lo + hi) // 2], "bisect"
    if verdict.get(nxt) is not None:                   # mixed / inconclusive there: the walk cannot go on
        return {"next": None, "step": None, "last_pass": last_pass, "first_fail": first_fail, "state": "undecided"}
    tested = any(verdict[t] for t in order)
    return {"next": nxt, "step": step, "last_pass": last_pass, "first_fail": first_fail,
            "state": "walking" if tested else "untested"}


def in_run(b: Bundle, tier: str) -> dict | None:
    """Cold vs warm inside the runs: for a failing orchestrator step (the warm promotion), in how many
    of the failing runs every cold tier passed. None for a pytest tier."""
    if tier not in ccci.ORCHESTRATOR_STEPS:
        return None
    failing = [r for r in b.runs if r.mode in ("isolated", "under-load")
               and reproduction(r.outcome, r.result, tier) == "fail"]
    if not failing:
        return None
    cold_ok, tiers = 0, set()
    for r in failing:
        cold = [t for t in r.result.tiers if t.name != tier and t.name not in ccci.ORCHESTRATOR_STEPS
                and t.name not in ("run", "lint")]
        tiers |= {t.name for t in cold}
        if cold and all(t.status in ("pass", "skip") for t in cold):
            cold_ok += 1
    return {"id": "runs:cold-vs-warm", "step": tier, "failing_runs": len(failing), "cold_passed": cold_ok,
            "cold_tiers": sorted(tiers),
            "reading": (f"cold passes, warm fails: every cold tier ({', '.join(sorted(tiers))}) passed in "
                        f"{cold_ok}/{len(failing)} run(s) whose {tier} step failed — the recipe deploys cold at "
                        "this ref; the failure needs the warm state or the warm machinery"
                        if cold_ok == len(failing) and tiers else
                        f"cold tiers failed too in {len(failing) - cold_ok}/{len(failing)} run(s): "
                        "not a warm-only failure")}


def ref_env(case, ref: str, tier: str) -> dict | None:
    """Extra env for a run at another ref: on a node that runs latest with REF unset (cc-ci), the
    ref staged and REF=<ref>, as a PR run gets it (a PR run never promotes); an orchestrator step
    runs only on latest, so its fix is run staged with REF unset (what an operator does)."""
    if "REF" in case.harness.unset and tier not in ccci.ORCHESTRATOR_STEPS:
        return {"REF": ref}
    return None


def plan(b: Bundle, verdict: dict) -> tuple[dict | None, str]:
    """The next contrast worth one run — {'ref', 'kind', 'question'[, 'env']} — or None and why none is."""
    tier = b.case["sweep_failure"].get("tier", "")
    runs = [r for r in b.runs if r.mode == "contrast"]
    iso = verdict["runs"]["isolated"]
    if len(runs) >= MAX_CONTRAST_RUNS:
        return None, f"budget spent: {len(runs)} contrast run(s) (at most {MAX_CONTRAST_RUNS})"
    if not iso["failed"]:
        return None, "the failure does not reproduce alone: a contrast cannot localise it"
    if iso["failed"] != iso["runs"] or verdict["reproducibility"] not in ("deterministic", "unknown"):
        return None, (f"not deterministic ({verdict['reproducibility']}, {iso['failed']}/{iso['runs']} isolated): "
                      "one run at another ref cannot tell a change from chance")
    if verdict["cause"] != "unknown" and str(verdict.get("cause_reasoning", "")).startswith("proof:"):
        return None, f"decided by proof ({verdict['cause_reasoning']}): no contrast can change the verdict"
    e, dev = settings_deviation(b, tier)
    d = defaults_outcome(b, tier)
    tries = len(_defaults_runs(b))
    if dev and tier in ccci.ORCHESTRATOR_STEPS:
        dev = []             # a green run on latest would promote: the warm step is never run with other settings
    if dev and (d is None or (d["verdict"] == "inconclusive" and tries < 2)):     # unanswered: ask once more
        what = ", ".join(f"{x['table']}.{x['key']} = {ccci.toml_value(x['value'])}" for x in dev)
        return {"ref": b.case["ref"], "kind": HARNESS_DEFAULTS,
                "env": dict(DEFAULTS_ENV),
                "question": (f"does {tier} pass at {b.case['ref']} with cc-ci's default settings? (the node's "
                             f"{e.source} sets {what}; if so the node's configuration is the difference)")}, ""
    if d and d["verdict"] == "passes":
        return None, (f"localised: {tier} passes at {b.case['ref']} with cc-ci's default settings and fails with the "
                      f"node's ({', '.join(d['settings']) or 'its settings file'}): the node's configuration is the "
                      "difference; a release contrast under it would answer another question")
    known = outcomes(b, tier)
    w = walk(releases(b), b.case["ref"], known)
    if tier in ccci.ORCHESTRATOR_STEPS:
        w = {**w, "next": None, "state": "orchestrator-step"}
    if w["next"]:
        q = (f"does {w['next']} pass {tier or 'the run'}? (if so the change since it is the cause)"
             if w["step"] == "previous-tag" else
             f"bisect: between {w['last_pass'] or 'the oldest release'} and {w['first_fail']}, does {w['next']} pass?")
        return {"ref": w["next"], "kind": w["step"], "question": q}, ""
    lab = b.case.get("lab") or {}
    fix = lab.get("fix_ref") if (lab.get("fix") or {}).get("kind", "recipe") == "recipe" else None
    if fix and fix not in known and verdict["cause"] == "unknown":
        from .safety import ref_problem
        if not ref_problem(fix):
            return {"ref": fix, "kind": "fix", "question": f"does the fix ref {fix} pass?"}, ""
    why = {"began-at": f"the walk is done: the failure began at {w['first_fail']} ({w['last_pass']} passes)",
           "every-release": f"the walk is done: it fails at every release tested back to {w['first_fail']}",
           "no-releases": "no earlier release to contrast with",
           "undecided": "a contrast ref gave mixed or inconclusive runs: the walk stops there",
           "orchestrator-step": (f"{tier} runs only on the latest release (REF unset): another release cannot "
                                 "exercise it, and must not re-seed the warm canonical; the contrast is cold vs warm "
                                 "inside each run")}.get(w["state"], "nothing left")
    return None, why
