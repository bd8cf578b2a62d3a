import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redfix_lib.bundle import load_bundle
from redfix_lib.errors import NodeBusy
from redfix_lib.isolate import isolate, open_bundle
from redfix_lib.nodes import LocalNode
from redfix_lib.params import load_case
from conftest import write_case


def _run(tmp_path, mode, arg="", runs=None, **kw):
    case = load_case(write_case(tmp_path, mode, arg, **kw))
    node = LocalNode("t-" + tmp_path.name)
    with node.lock():
        b = open_bundle(case, tmp_path / "bundle", node)
        isolate(case, b, node, runs=runs, progress=lambda m: None)
    return case, load_bundle(tmp_path / "bundle")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return st != "Z"


def test_pass_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("UNSET_ME", "should-vanish")
    case, b = _run(tmp_path, "pass", runs=2)
    assert [r.outcome for r in b.runs] == ["pass", "pass"]
    log = (b.path / b.runs[0].log).read_text()
    assert "RECIPE=fakerecipe REF=1.0.0+1.2.3" in log
    assert "UNSET_ME=<unset>" in log


def test_secrets_never_reach_bundle(tmp_path):
    case, b = _run(tmp_path, "pass", runs=1)
    text = "".join(p.read_text(errors="replace") for p in b.path.rglob("*") if p.is_file())
    assert "hunter2-very-secret" not in text
    assert "DB_PASSWORD=***REDACTED***" in (b.path / b.runs[0].log).read_text()


def test_deterministic_fail_exit_code_source(tmp_path):
    case, b = _run(tmp_path, "fail", runs=3)
    assert [r.outcome for r in b.runs] == ["fail"] * 3
    assert b.runs[0].result.source == "exit_code"
    assert b.runs[0].exit_code == 1


def test_hang_records_timeout_and_leaves_no_process(tmp_path):
    case, b = _run(tmp_path, "hang", runs=1, timeout=2)
    r = b.runs[0]
    assert r.outcome == "timeout" and r.proc_status == "timeout"
    assert r.wall_s < 15
    child = int((b.path / "runs/001/child.pid").read_text())
    time.sleep(0.2)
    assert not _alive(child)
    assert "killed after timeout" in (b.path / r.log).read_text()


def test_orphan_grandchild_killed_after_normal_exit(tmp_path):
    case, b = _run(tmp_path, "orphan", runs=1)
    child = int((b.path / "runs/001/child.pid").read_text())
    time.sleep(0.2)
    assert not _alive(child)


def test_results_json_preferred(tmp_path):
    case, b = _run(tmp_path, "results", runs=1)
    r = b.runs[0].result
    assert r.source == "results.json"
    assert [(t.name, t.status) for t in r.tiers] == [("install", "pass"), ("upgrade", "fail"), ("backup", "skip")]
    assert r.failed_tests()[0].name == "test_head_runs_official_image"
    assert r.flags["clean_teardown"] is True


def test_junit_when_no_results_json(tmp_path):
    case, b = _run(tmp_path, "junit", runs=1)
    r = b.runs[0].result
    assert r.source == "junit"
    assert {t.name: t.status for t in r.tiers} == {"install": "pass", "restore": "fail"}
    f = r.failed_tests()[0]
    assert f.name == "test_restore_returns_state" and f.ms == 1500 and "ci_marker" in f.message


def test_loud_harness_bounded(tmp_path):
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    case, b = _run(tmp_path, "loud", "50", runs=1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert (b.path / b.runs[0].log).stat().st_size > 50 * 1024 * 1024
    assert after - before < 40 * 1024  # KiB: the 50 MiB log never sat in our memory


def test_stop_rule_stops_on_first_isolated_pass(tmp_path):
    case, b = _run(tmp_path, "pass", runs=None, policy="{max: 10, min: 1, stop_rule: sprt}")
    assert len(b.runs) == 1


def test_sprt_deterministic_after_five(tmp_path):
    case, b = _run(tmp_path, "fail", runs=None, policy="{max: 10, min: 1, stop_rule: sprt}")
    assert len(b.runs) == 5


def test_flaky_seeded(tmp_path):
    case, b = _run(tmp_path, "flaky", "0.5,7", runs=8)
    outs = [r.outcome for r in b.runs]
    assert "pass" in outs and "fail" in outs


def test_lock_refuses_second_investigation(tmp_path):
    n1, n2 = LocalNode("shared"), LocalNode("shared")
    with n1.lock():
        with pytest.raises(NodeBusy, match="locked by another"):
            with n2.lock():
                pass
    with n2.lock():
        pass


def test_busy_probe_lock_file_and_process(tmp_path):
    lock = tmp_path / "sweep.lock"
    node = LocalNode("b")
    assert node.busy_reasons([{"lock_file": str(lock)}]) == []
    lock.write_text("x")
    assert "exists" in node.busy_reasons([{"lock_file": str(lock)}])[0]
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "run_recipe_ci_marker"])
    try:
        time.sleep(0.2)
        assert node.busy_reasons([{"process": r"run_recipe_ci_marker"}])
    finally:
        p.kill()
        p.wait()
    assert node.busy_reasons([{"process": r"run_recipe_ci_marker"}]) == []


def test_cli_isolate_refuses_busy_node_exit_3(tmp_path):
    lock = tmp_path / "inflight.lock"
    lock.write_text("sweep")
    p = write_case(tmp_path, "pass", extra=f"node:\n  name: busynode\n  busy:\n    - lock_file: {lock}\n")
    r = subprocess.run([sys.executable, "-m", "redfix_lib.cli", "isolate", str(p), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env={**os.environ, "REDFIX_LOCK_DIR": str(tmp_path)})
    assert r.returncode == 3, r.stderr
    assert "busy" in r.stderr and "inflight.lock" in r.stderr
    assert load_bundle(tmp_path / "o").runs == []


def test_cli_isolate_hang_timeout(tmp_path):
    p = write_case(tmp_path, "hang", timeout=1)
    r = subprocess.run([sys.executable, "-m", "redfix_lib.cli", "isolate", str(p), "--runs", "1",
                        "--out", str(tmp_path / "o")], capture_output=True, text=True,
                       env={**os.environ, "REDFIX_LOCK_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    b = load_bundle(tmp_path / "o")
    assert b.runs[0].outcome == "timeout"
    assert not _alive(int((tmp_path / "o/runs/001/child.pid").read_text()))


def test_bundle_roundtrip_and_crash_safety(tmp_path):
    case, b = _run(tmp_path, "results", runs=2)
    again = load_bundle(b.path)
    assert again.to_dict() == b.to_dict()
    # a later, appended investigation keeps earlier runs
    node = LocalNode("t2")
    with node.lock():
        b2 = open_bundle(case, b.path, node)
        assert len(b2.runs) == 2
    assert not list(b.path.glob(".bundle.json.*"))
