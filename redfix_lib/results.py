"""Read a harness run's outcome: results.json (cc-ci schema) > JUnit XML > exit code.

Pure functions of files on disk; no engine, no subprocess.
"""
from __future__ import annotations

import glob
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, asdict

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
    source: str                      # results.json | junit | exit_code
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
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    tiers = []
    for st in d.get("stages", []):
        tests = [TestResult(name=str(t.get("name", "")), status=_norm_status(t.get("status", "")),
                            ms=int(t.get("ms") or 0), message=str(t.get("message", ""))[:2000])
                 for t in st.get("tests", [])]
        tiers.append(TierResult(name=str(st.get("name", "")), status=_norm_status(st.get("status", "")),
                                tests=tests, detail=str(st.get("detail", ""))[:2000]))
    meta = {k: d.get(k) for k in ("recipe", "version", "pr", "ref", "run_id", "finished", "level") if k in d}
    meta["skips"] = d.get("skips", {})
    return HarnessResult(source="results.json", tiers=tiers, flags=d.get("flags", {}) or {}, meta=meta)


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
                        proc_status: str) -> HarnessResult:
    """Outcome of one run, in order of preference. A timed-out run's missing tiers are 'timeout'."""
    if results_json and os.path.isfile(results_json):
        try:
            r = parse_results_json(results_json)
            if proc_status == "timeout":
                r.tiers.append(TierResult(name="run", status="timeout", detail="harness killed after timeout"))
            return r
        except (ValueError, KeyError, TypeError) as e:
            bad = f"unreadable results.json: {e}"
        else:
            bad = ""
    else:
        bad = ""
    tiers = []
    for jf in junit_files:
        try:
            tiers.append(parse_junit(jf))
        except ET.ParseError as e:
            tiers.append(TierResult(name=_tier_from_filename(jf), status="unver", detail=f"unreadable JUnit: {e}"))
    if tiers:
        if proc_status == "timeout":
            tiers.append(TierResult(name="run", status="timeout", detail="harness killed after timeout"))
        return HarnessResult(source="junit", tiers=tiers, meta={"note": bad} if bad else {})
    if proc_status == "timeout":
        st = "timeout"
    else:
        st = "pass" if exit_code == 0 else "fail"
    return HarnessResult(source="exit_code", tiers=[TierResult(name="run", status=st,
                                                               detail=f"exit code {exit_code}" + (f"; {bad}" if bad else ""))])


def junit_files_for(pattern: str | None) -> list[str]:
    if not pattern:
        return []
    return sorted(glob.glob(pattern))


def reproduction(outcome: str, result: "HarnessResult", tier: str) -> str:
    """Did this run reproduce the failure of `tier`? 'fail' (the tier failed or timed out), 'pass'
    (the tier passed, or the whole run passed), or 'inconclusive' (the tier never really ran:
    unver / missing, e.g. an earlier tier broke or the harness crashed)."""
    st = {t.name: t.status for t in result.tiers}
    if not tier or set(st) <= {"run"}:        # no per-tier results (exit code only): the run is the tier
        return "pass" if outcome == "pass" else ("fail" if outcome in ("fail", "timeout") else "inconclusive")
    if st.get(tier) in ("fail", "timeout"):
        return "fail"
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
