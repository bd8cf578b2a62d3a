"""Issue #4's acceptance: every lab case gets its expected verdict, unattended, on the real
engine (isolation runs with the stop rule, load reproduction where it passes alone, evidence,
classification) — and replaying the bundle gives the same verdict.json byte for byte."""
from pathlib import Path

import pytest

from redfix_lib.classify import write_verdict
from redfix_lib.isolate import investigate
from redfix_lib.lab import engine as lab_engine
from redfix_lib.lab.recipes import load_meta
from redfix_lib.params import load_case

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted(p.name for p in (ROOT / "params" / "lab").glob("*.yaml"))
pytestmark = [pytest.mark.engine, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(engine):
    lab_engine.lab_up()


@pytest.mark.parametrize("case_file", CASES)
def test_lab_case_verdict(lab, tmp_path, case_file):
    path = ROOT / "params" / "lab" / case_file
    case = load_case(path)
    out = tmp_path / case.case
    v = investigate(path, out, fresh=True, progress=lambda m: None)
    exp = load_meta(case.recipe)["expected"]
    assert (v["reproducibility"], v["cause"], v["sub_cause"]) == (exp["reproducibility"], exp["cause"], exp["sub_cause"]), \
        v["cause_reasoning"]
    assert v["failing_tier"] == exp["tier"] and set(exp["tests"]) <= set(v["failing_tests"])
    assert v["confidence"]["value"] >= 0.8 and v["evidence_cited"]
    assert v["cold_verify"] and all(s["how"] and s["expect"] for s in v["cold_verify"])
    assert v["node_clean"]["clean"] is True
    before = (out / "verdict.json").read_bytes()
    write_verdict(out)
    assert (out / "verdict.json").read_bytes() == before
