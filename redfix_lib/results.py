"""Read a harness run's outcome: results.json (cc-ci schema 2) + the JUnit files' assertion text
+ orchestrator steps from the log (warm promotion) > JUnit XML alone > exit code. A run whose
folder cannot be found is 'unreadable' (inconclusive, with the reason), never a pass.

Pure functions of files on disk; no engine, no subprocess. The cc-ci facts used here live in
ccci.py (see docs/cc-ci.md).
"""
from __future__ import annotations

import glob
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, asdict

from . import ccci

STATUSES = ("pass", "fail", "skip", "unver", "timeout")


@dataclass
class TestResult:
    name: str
    status: str
    ms: int = 0
    message: str = ""
    classname: str = ""


@dataclass
class TierResult:
    name: str
    status: str
    tests: list[TestResult] = field(default_factory=list)
    detail: str = ""


@dataclass
class HarnessResult:
    source: str                      # results.json | junit | exit_code | unreadable
    tiers: list[TierResult] = field(default_factory=list)
    flags: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "HarnessResult":
        tiers = [TierResult(name=t["name"], status=t["status"], detail=t.get("detail", ""),
                            tests=[TestResult(**x) for x in t.get("tests", [])]) for t in d.get("tiers", [])]
        return cls(source=d["source"], tiers=tiers, flags=d.get("flags", {}), meta=d.get("meta", {}))

    def failed_tiers(self) -> list[str]:
        return [t.name for t in self.tiers if t.status in ("fail", "timeout", "unver")]

    def failed_tests(self) -> list[TestResult]:
        return [x for t in self.tiers for x in t.tests if x.status == "fail"]

    @property
    def passed(self) -> bool:
        return bool(self.tiers) and all(t.status in ("pass", "skip") for t in self.tiers)


def _norm_status(s: str) -> str:
    s = (s or "").lower()
    return {"passed": "pass", "ok": "pass", "success": "pass", "failed": "fail", "failure": "fail",
            "error": "fail", "skipped": "skip", "unverified": "unver"}.get(s, s if s in STATUSES else "unver")


def parse_results_json(path: str) -> HarnessResult:
    """cc-ci results.json (schema 2, older schema 1 too). The synthetic lint stage is kept in
    meta['lint'], not as a tier: lint is a level rung and never changes the run's verdict."""
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    if not isinstance(d, dict) or not isinstance(d.get("stages", []), list):
        raise ValueError("not a results.json object with a stages list")
    tiers = []
    for st in d.get("stages", []):
        name = str(st.get("name", ""))
        if name == ccci.LINT_STAGE:
            continue
        tests = [TestResult(name=str(t.get("name", "")), status=_norm_status(t.get("status", "")),
                            ms=int(t.get("ms") or 0), message=str(t.get("message", ""))[:2000])
                 for t in st.get("tests", [])]
        tiers.append(TierResult(name=name, status=_norm_status(st.get("status", "")),
                                tests=tests, detail=str(st.get("detail", ""))[:2000]))
    meta = {k: d.get(k) for k in ccci.RESULTS_META_KEYS if k in d}
    for k in ccci.RESULTS_BLOCK_KEYS[:-1]:          # rungs, lint, skips, customization
        meta[k] = d.get(k, {}) or {}
    return HarnessResult(source="results.json", tiers=tiers, flags=d.get("flags", {}) or {}, meta=meta)


def add_junit_messages(result: HarnessResult, junit_files: list[str]) -> None:
    """results.json carries no per-test message: the assertion text comes from the JUnit files
    (matched by test name, the tier's file first)."""
    by_tier: dict[str, dict[str, TestResult]] = {}
    anywhere: dict[str, TestResult] = {}
    for jf in junit_files:
        try:
            tr = parse_junit(jf)
        except (ET.ParseError, OSError, ValueError):
            continue
        by_tier[tr.name] = {t.name: t for t in tr.tests}
        for t in tr.tests:
            anywhere.setdefault(t.name, t)
    for tier in result.tiers:
        for t in tier.tests:
            j = by_tier.get(tier.name, {}).get(t.name) or anywhere.get(t.name)
            if j and not t.message:
                t.message, t.classname = j.message, t.classname or j.classname


def orchestrator_steps(log_text: str, recipe: str | None = None) -> list[TierResult]:
    """Orchestrator steps that report only in the log: warm promotion (WC5). A failure line makes
    the step 'fail' with the logged reason; another WC5 promote line means it ran ('pass')."""
    failed, ran = [], False
    for line in log_text.splitlines():
        m = ccci.PROMOTE_FAILED_RE.search(line)
        if m:
            if not recipe or not m.group("recipe") or m.group("recipe") == recipe:
                failed.append(m.group("reason").strip()[:2000])
        elif ccci.PROMOTE_LINE_RE.search(line):
            ran = True
    if failed:
        return [TierResult(name="promote", status="fail", detail=failed[-1],
                           tests=[TestResult(name="WC5 promote", status="fail", message=failed[-1])])]
    if ran:
        return [TierResult(name="promote", status="pass", detail="WC5 promote logged without a failure",
                           tests=[TestResult(name="WC5 promote", status="pass")])]
    return []


def _tier_from_filename(path: str) -> str:
    base = os.path.basename(path)
    stem = base.rsplit(".", 1)[0]
    for pre in ("junit-", "junit_", "TEST-"):
        if stem.startswith(pre):
            stem = stem[len(pre):]
    return stem


def parse_junit(path: str) -> TierResult:
    root = ET.parse(path).getroot()
    tests: list[TestResult] = []
    for tc in root.iter("testcase"):
        status, msg = "pass", ""
        for child in tc:
            if child.tag in ("failure", "error"):
                status = "fail"
                msg = (child.get("message") or "") + ("\n" + child.text if child.text else "")
                break
            if child.tag == "skipped":
                status = "skip"
                msg = child.get("message") or ""
        ms = int(round(float(tc.get("time") or 0) * 1000))
        tests.append(TestResult(name=tc.get("name", ""), classname=tc.get("classname", ""), status=status,
                                ms=ms, message=msg.strip()[:2000]))
    if any(t.status == "fail" for t in tests):
        st = "fail"
    elif tests and all(t.status == "skip" for t in tests):
        st = "skip"
    elif tests:
        st = "pass"
    else:
        # a suite with errors but no testcases (collection error)
        errs = sum(int(s.get("errors") or 0) + int(s.get("failures") or 0) for s in root.iter("testsuite"))
        st = "fail" if errs else "unver"
    return TierResult(name=_tier_from_filename(path), status=st, tests=tests)


def read_harness_result(results_json: str | None, junit_files: list[str], exit_code: int | None,
                        proc_status: str, log_text: str = "", recipe: str | None = None,
                        unreadable: str = "") -> HarnessResult:
    """Outcome of one run, in order of preference. A timed-out run's missing tiers are 'timeout'.
    `unreadable` names why the run's outcome cannot be read (e.g. its run folder was not found):
    the run is then inconclusive, never a pass."""
    if unreadable:
        return HarnessResult(source="unreadable", tiers=[TierResult(name="run", status="unver", detail=unreadable)],
                             meta={"exit": ccci.exit_meaning(exit_code)})
    steps = orchestrator_steps(log_text, recipe) if log_text else []
    bad = ""
    if results_json and os.path.isfile(results_json):
        try:
            r = parse_results_json(results_json)
            add_junit_messages(r, junit_files)
            r.tiers.extend(s for s in steps if s.name not in {t.name for t in r.tiers})
            if proc_status == "timeout":
                r.tiers.append(TierResult(name="run", status="timeout", detail="harness killed after timeout"))
            elif exit_code not in (0, None) and r.passed:
                # exit status is authoritative: a non-zero exit with every stage green is a failure
                r.tiers.append(TierResult(name="run", status="fail", detail=ccci.exit_meaning(exit_code)))
            return r
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            bad = f"unreadable results.json: {e}"
    tiers = []
    for jf in junit_files:
        try:
            tiers.append(parse_junit(jf))
        except ET.ParseError as e:
            tiers.append(TierResult(name=_tier_from_filename(jf), status="unver", detail=f"unreadable JUnit: {e}"))
    if tiers:
        tiers.extend(steps)
        if proc_status == "timeout":
            tiers.append(TierResult(name="run", status="timeout", detail="harness killed after timeout"))
        elif exit_code not in (0, None) and all(t.status in ("pass", "skip") for t in tiers):
            tiers.append(TierResult(name="run", status="fail", detail=ccci.exit_meaning(exit_code)))
        return HarnessResult(source="junit", tiers=tiers, meta={"note": bad} if bad else {})
    if proc_status == "timeout":
        st = "timeout"
    else:
        st = "pass" if exit_code == 0 else "fail"
    return HarnessResult(source="exit_code", tiers=[TierResult(name="run", status=st,
                                                               detail=f"exit code {exit_code} ({ccci.exit_meaning(exit_code)})"
                                                               + (f"; {bad}" if bad else ""))] + steps)


def find_run_folder(before: list[str], after: list[str], recipe: str, recipe_of) -> tuple[str | None, str]:
    """The run folder this run created under the runs dir: the entries that appeared during the
    run (`after` minus `before`), narrowed to this recipe by `recipe_of(folder)` (the recipe its
    results.json or per-run abra/recipes/ names, or None when it says nothing). Returns
    (folder, "") or (None, why not)."""
    new = sorted(set(after) - set(before))
    if not new:
        return None, f"no new run folder appeared under the runs dir during the run ({len(after)} existing)"
    mine = [f for f in new if recipe_of(f) in (recipe, None)]
    named = [f for f in mine if recipe_of(f) == recipe]
    pick = named or mine
    if len(pick) == 1:
        return pick[0], ""
    if not pick:
        return None, f"{len(new)} new run folder(s) appeared, none for recipe {recipe!r}: {', '.join(new[:5])}"
    return None, f"{len(pick)} new run folders could be this run's, cannot tell which: {', '.join(pick[:5])}"


def junit_files_for(pattern: str | None) -> list[str]:
    if not pattern:
        return []
    return sorted(glob.glob(pattern))


def reproduction(outcome: str, result: "HarnessResult", tier: str) -> str:
    """Did this run reproduce the failure of `tier`? 'fail' (the tier failed or timed out), 'pass'
    (the tier passed, or the whole run passed with the tier absent), or 'inconclusive' (the tier never
    really ran: skipped, unver / missing, e.g. an earlier tier broke or the harness crashed)."""
    st = {t.name: t.status for t in result.tiers}
    if result.source == "unreadable" or outcome == "inconclusive":
        return "inconclusive"
    if tier in ccci.ORCHESTRATOR_STEPS and tier not in st:
        return "inconclusive"        # the step never ran (or never logged): a missing step is not a pass
    if not tier or set(st) <= {"run"}:        # no per-tier results (exit code only): the run is the tier
        return "pass" if outcome == "pass" else ("fail" if outcome in ("fail", "timeout") else "inconclusive")
    if st.get(tier) in ("fail", "timeout"):
        return "fail"
    if st.get(tier) == "skip":
        return "inconclusive"        # the tier did not run here (e.g. an upgrade with no earlier release): no answer
    if st.get(tier) == "pass" or outcome == "pass":
        return "pass"
    if outcome == "timeout" or st.get("run") == "timeout":
        return "fail" if tier not in st else "inconclusive"
    return "inconclusive"


def reproduced(runs, tier: str, mode: str) -> list[bool]:
    """The conclusive runs of `mode`, in order: True where the run reproduced the failure of `tier`.
    The one sequence both the runner's stop rule and the classifier's SPRT read (a run that never
    reached the tier proves nothing either way)."""
    seq = [reproduction(r.outcome, r.result, tier) for r in runs if r.mode == mode]
    return [v == "fail" for v in seq if v != "inconclusive"]
