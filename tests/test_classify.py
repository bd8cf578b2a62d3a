"""Classifier table tests on bundles (synthetic ones built here, and real lab bundles stored
under tests/bundles/), and byte-identical replay."""
import json
import shutil
from pathlib import Path

import pytest

from redfix_lib.bundle import Bundle, EvidenceItem, RunRecord, load_bundle
from redfix_lib.classify import classify, fisher_one_sided, verdict_json, write_verdict
from redfix_lib.results import HarnessResult, TierResult
from redfix_lib.results import TestResult as TResult
from redfix_lib.stats import consecutive_failures_needed, sprt, stop_decision, wilson

STORED = Path(__file__).resolve().parent.parent / "outputs" / "example"


def mk_run(i, fail, tier="restore", mode="isolated", msg="boom"):
    st = "fail" if fail else "pass"
    tiers = [TierResult("install", "pass"),
             TierResult(tier, st, [TResult("test_x", st, 10, msg if fail else "")])]
    return RunRecord(index=i, mode=mode, started="", wall_s=1.0, exit_code=int(fail), proc_status="exited",
                     outcome=st, result=HarnessResult("results.json", tiers), log=f"runs/{i:03d}/harness.log")


def mk_bundle(tmp_path, outcomes, tier="restore", evidence=(), load=()):
    """Runs with their harness logs on disk (the raw facts the classifier scans): a log line given
    with sig_ev(run, ...) is written into that run's harness.log."""
    case = {"case": "t", "recipe": "r", "ref": "1.0.0", "source": "params/t.yaml",
            "sweep_failure": {"tier": tier, "tests": ["test_x"], "message": ""}, "lab": {}}
    runs = [mk_run(i + 1, f, tier) for i, f in enumerate(outcomes)]
    runs += [mk_run(len(runs) + j + 1, f, tier, "under-load") for j, f in enumerate(load)]
    lines = {e[1]: e[2] for e in evidence if isinstance(e, tuple)}
    for r in runs:
        p = tmp_path / r.log
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(("failing line\n" if r.outcome == "fail" else "ok\n") + lines.get(r.index, "") + "\n")
    return Bundle(path=tmp_path, case=case, runs=runs, evidence=[e for e in evidence if not isinstance(e, tuple)])


def sig_ev(run, sig, cause_text):
    """A log line of run `run` (written into its harness.log by mk_bundle)."""
    return ("log", run, cause_text)


RULE_R03 = EvidenceItem(id="static_rules:r@tag", kind="static_rules", source="repo@1.0.0", status="ok", summary="",
                        data={"label": "tag", "ref": "1.0.0", "findings": [
                            {"rule": "R03", "severity": "error", "service": "db", "message": "no restore post-hook",
                             "title": "t", "id": "rule:R03:db", "file": "compose.yml"}]})
MARKER = 'ERROR:  relation "ci_marker" does not exist'


def test_stats_basics():
    assert consecutive_failures_needed() == 5
    assert sprt([True] * 4).decision == "continue" and sprt([True] * 5).decision == "deterministic"
    assert sprt([True, False]).decision == "flaky" and sprt([False]).decision == "flaky"
    lo, hi = wilson(0, 5)
    assert lo == 0 and 0.4 < hi < 0.45
    assert stop_decision([True] * 3, "sprt", 1, 10) == (False, stop_decision([True] * 3, "sprt", 1, 10)[1])
    assert stop_decision([False], "sprt", 2, 10)[0] is False      # min runs first
    assert abs(fisher_one_sided(0, 2, 4, 4) - 1 / 15) < 1e-9


CASES = [
    # (isolated outcomes, under-load outcomes, evidence, expected reproducibility, cause, sub_cause)
    ([True] * 5, [], [RULE_R03] + [sig_ev(i, "x", MARKER) for i in range(1, 6)], "deterministic", "recipe", "missing-restore-hook"),
    # the sweep's failure + 3 isolated failures + a rule (a mechanism in the code): posterior 0.97
    ([True] * 3, [], [RULE_R03] + [sig_ev(i, "x", MARKER) for i in range(1, 4)], "deterministic", "recipe", "missing-restore-hook"),
    # without the rule 3 failures leave it at 0.94: undecided
    ([True] * 3, [], [sig_ev(i, "x", MARKER) for i in range(1, 4)], "unknown", "unknown", None),
    ([True] * 2, [], [RULE_R03] + [sig_ev(i, "x", MARKER) for i in range(1, 3)], "unknown", "unknown", None),
    ([True] * 5, [], [sig_ev(i, "x", MARKER) for i in range(1, 6)], "deterministic", "unknown", None),   # one kind only
    ([True] * 5, [], [RULE_R03], "deterministic", "unknown", None),                                      # rule alone
    ([True, False], [], [RULE_R03, sig_ev(1, "x", MARKER)], "intermittent", "recipe", "missing-restore-hook"),
    ([False, False], [], [], "unknown", "unknown", None),          # 2 passes: a 50% flake does that 1 time in 4
    ([False] * 5, [], [], "not-reproduced", "unknown", None),
    ([False, False], [True, True, True], [sig_ev(3, "x", "handshake did not complete within 4s")], "load-only", "load", "cpu-contention-timeout"),
    ([False, False], [False, False], [], "unknown", "unknown", None),
    ([False] * 4, [False, False], [], "not-reproduced", "unknown", None),
    # contradictory: recipe (rule + signature) vs infrastructure (two signatures kinds? no: signature+... ) -> see below
]


@pytest.mark.parametrize("iso,load,ev,rep,cause,sub", CASES)
def test_table(tmp_path, iso, load, ev, rep, cause, sub):
    v = classify(mk_bundle(tmp_path, iso, evidence=ev, load=load, tier="custom" if load else "restore")
                 if load else mk_bundle(tmp_path, iso, evidence=ev))
    assert (v["reproducibility"], v["cause"], v["sub_cause"]) == (rep, cause, sub), v["cause_reasoning"]
    if cause != "unknown":
        assert v["evidence_cited"] and v["confidence"]["value"] >= 0.8
    else:
        assert v["confidence"]["value"] == 0.0


def test_one_isolated_pass_is_never_deterministic(tmp_path):
    v = classify(mk_bundle(tmp_path, [True, True, True, True, False, True]))
    assert v["reproducibility"] == "intermittent"
    assert v["runs"]["isolated"]["ci95"][0] > 0.3


def test_contradictory_strong_causes_give_unknown(tmp_path):
    stale = EvidenceItem(id="test_expectation:test_restore.py", kind="test_expectation", source="t", status="ok",
                         summary="asserts x found in NO release tag nor main",
                         data={"stale": True, "asserted": {"images": ["a/b:1"], "removed_services": []},
                               "only_in_unreleased": []})
    v = classify(mk_bundle(tmp_path, [True] * 5, evidence=[RULE_R03, sig_ev(1, "x", MARKER), stale]))
    assert v["cause"] == "unknown" and "contradictory" in v["cause_reasoning"]
    assert {c["cause"] for c in v["candidates"]} == {"recipe", "test"}


def test_replay_is_byte_identical(tmp_path):
    b = mk_bundle(tmp_path, [True] * 5, evidence=[RULE_R03, sig_ev(1, "x", MARKER)])
    b.save()
    write_verdict(tmp_path)
    first = (tmp_path / "verdict.json").read_bytes()
    write_verdict(tmp_path)
    assert (tmp_path / "verdict.json").read_bytes() == first
    assert verdict_json(load_bundle(tmp_path)).encode() == first


@pytest.mark.parametrize("case", sorted(p.name for p in STORED.iterdir() if (p / "bundle.json").exists()) if STORED.is_dir() else [])
def test_stored_lab_bundles(tmp_path, case):
    """Real bundles from lab investigations: replay gives the stored verdict byte for byte and
    the lab recipe's expected verdict."""
    src = STORED / case
    dst = tmp_path / case
    shutil.copytree(src, dst)
    stored = (src / "verdict.json").read_bytes()
    write_verdict(dst)
    assert (dst / "verdict.json").read_bytes() == stored
    v = json.loads(stored)
    from redfix_lib.lab.recipes import load_meta
    exp = load_meta(v["recipe"])["expected"]
    assert (v["reproducibility"], v["cause"], v["sub_cause"]) == (exp["reproducibility"], exp["cause"], exp["sub_cause"])


def test_runs_that_never_reached_the_tier_are_inconclusive(tmp_path):
    b = mk_bundle(tmp_path, [True] * 5, evidence=[RULE_R03, sig_ev(1, "x", MARKER)])
    for r in b.runs[:3]:                          # install broke: restore never ran
        r.result.tiers = [TierResult("install", "fail"), TierResult("restore", "unver")]
    v = classify(b)
    assert v["runs"]["inconclusive"] == [1, 2, 3]
    assert v["runs"]["isolated"]["runs"] == 2 and v["reproducibility"] == "unknown"
    for r in b.runs:
        r.result.tiers = [TierResult("install", "unver"), TierResult("restore", "unver")]
    v = classify(b)
    assert v["reproducibility"] == "unknown" and "never reached" in v["confidence"]["how"]
