"""Issue #4's acceptance: every lab case gets its expected verdict, unattended, on the real
engine (isolation runs with the stop rule, load reproduction where it passes alone, evidence,
classification) — and replaying the bundle gives the same verdict.json byte for byte.

Issue #9: every case is investigated through an SSH node (the loopback sshd) against the lab
harness that mirrors cc-ci's contract (run folders by run id, schema-2 results.json, JUnit text,
WC5 promote lines), exactly as a real cc-ci node is reached — the same six verdicts, no extra
live runs (the local node's run path is covered by the runner and batch tests)."""
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


def through_ssh(src: Path, host: str, dest: Path) -> Path:
    """The lab case with its node swapped for the SSH node `host`."""
    text = src.read_text()
    local = "node:\n  kind: local\n  name: local\n"
    assert local in text
    dest.write_text(text.replace(local, f"node:\n  kind: ssh\n  name: ssh-{host}\n  host: {host}\n"))
    return dest


@pytest.mark.parametrize("case_file", CASES)
def test_lab_case_verdict(lab, sshd, tmp_path, case_file):
    path = through_ssh(ROOT / "params" / "lab" / case_file, sshd["host"], tmp_path / case_file)
    case = load_case(path)
    out = tmp_path / case.case
    v = investigate(path, out, fresh=True, progress=lambda m: None)
    from redfix_lib.bundle import load_bundle
    b = load_bundle(out)
    assert b.node["kind"] == "ssh" and b.runs
    assert all((out / f"runs/{r.index:03d}/run-folder.txt").exists() for r in b.runs)   # found by its run folder
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
