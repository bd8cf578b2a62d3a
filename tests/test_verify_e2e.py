"""Issue #5: `redfix verify` on each lab fix ref shows the previously failing test green, with no
new failure (recipe branches checked out by the harness; harness fixes given as env; the load
case verified beside the same load)."""
from pathlib import Path

import pytest

from redfix_lib.lab import engine as lab_engine
from redfix_lib.params import load_case
from redfix_lib.verify import verify_fix

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted(p.name for p in (ROOT / "params" / "lab").glob("*.yaml"))
pytestmark = [pytest.mark.engine, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(engine):
    lab_engine.lab_up()


@pytest.mark.parametrize("case_file", CASES)
def test_fix_ref_turns_the_failing_test_green(lab, tmp_path, case_file):
    # the stored investigation is the "before": its verdict (e.g. load-only) decides how the fix is run
    before = ROOT / "outputs" / "example" / f"lab-{case_file.removesuffix('.yaml')}"
    row = verify_fix(str(ROOT / "params" / "lab" / case_file), runs=1, out=str(tmp_path / "fix"),
                     before=str(before), progress=lambda m: None)
    assert row["status"] == "verified", row
    assert row["now_passing"] == row["previously_failing"] and row["previously_failing"]
    assert row["new_failures"] == [] and row["outcomes"] == ["pass"]
    assert (tmp_path / "fix" / "fix.json").exists()
    case = load_case(ROOT / "params" / "lab" / case_file)
    if (case.lab.get("fix") or {}).get("kind") == "harness" and case.sweep_failure.tier != "promote":
        # a harness fix for a pytest tier runs as a PR run (REF=<ref>): a green run never promotes
        assert row["env"].get("REF") == case.ref, row["env"]
