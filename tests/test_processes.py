"""Nothing outlives a run: descendants that leave the process group (setsid, setpgid, a
double-forked daemon) are found and stopped on timeout, at the end of a normal run, and when
redfix itself gets SIGTERM/SIGINT; the harness gets its SIGTERM grace for a teardown. Real
subprocesses (tests/harnesses/spawner.py)."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from redfix_lib.bundle import load_bundle
from redfix_lib.isolate import isolate, open_bundle
from redfix_lib.nodes import LocalNode
from redfix_lib.params import load_case

ROOT = Path(__file__).resolve().parent.parent
SPAWNER = ROOT / "tests" / "harnesses" / "spawner.py"


def _alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return st != "Z"


def _case(tmp_path: Path, mode: str, timeout: float = 60) -> Path:
    p = tmp_path / f"spawn-{mode}.yaml"
    p.write_text(textwrap.dedent(f"""\
        case: spawn-{mode}
        recipe: spawner
        ref: "1.0.0"
        harness:
          argv: ["{sys.executable}", "{SPAWNER}", "{mode}", "{{run_dir}}"]
        runs: {{max: 1, min: 1, stop_rule: fixed}}
        timeout_s: {timeout}
        """))
    return p


def _pids(bundle_dir: Path) -> list[int]:
    return [int(x) for x in (bundle_dir / "runs" / "001" / "pids").read_text().split()]


def _env(tmp_path, grace="5"):
    return {**os.environ, "REDFIX_LOCK_DIR": str(tmp_path / "locks"), "REDFIX_STAGE_DIR": str(tmp_path / "stage"),
            "REDFIX_KILL_GRACE_S": grace}


def _isolate(tmp_path, mode, timeout=60):
    case = load_case(_case(tmp_path, mode, timeout))
    node = LocalNode("p-" + tmp_path.name)
    with node.lock():
        b = open_bundle(case, tmp_path / "bundle", node)
        isolate(case, b, node, runs=1, progress=lambda m: None)
    return load_bundle(tmp_path / "bundle")


def test_escaped_descendants_stopped_after_a_normal_exit(tmp_path, monkeypatch):
    monkeypatch.setenv("REDFIX_STAGE_DIR", str(tmp_path / "stage"))
    b = _isolate(tmp_path, "exit")
    assert b.runs[0].outcome == "pass"
    pids = _pids(b.path)
    assert len(pids) == 4
    assert [p for p in pids if _alive(p)] == []


def test_escaped_descendants_stopped_on_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("REDFIX_STAGE_DIR", str(tmp_path / "stage"))
    monkeypatch.setenv("REDFIX_KILL_GRACE_S", "2")
    t0 = time.monotonic()
    b = _isolate(tmp_path, "ignore-term", timeout=2)
    assert b.runs[0].outcome == "timeout"
    assert time.monotonic() - t0 < 30          # SIGTERM ignored: SIGKILL after the grace
    assert [p for p in _pids(b.path) if _alive(p)] == []


def test_timeout_gives_the_harness_its_teardown_grace(tmp_path, monkeypatch):
    monkeypatch.setenv("REDFIX_STAGE_DIR", str(tmp_path / "stage"))
    monkeypatch.setenv("REDFIX_KILL_GRACE_S", "10")
    b = _isolate(tmp_path, "teardown", timeout=2)
    assert b.runs[0].outcome == "timeout" and b.runs[0].exit_code == 143
    assert (b.path / "runs/001/teardown").read_text() == "done"
    assert [p for p in _pids(b.path) if _alive(p)] == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_redfix_stops_the_whole_tree(tmp_path, sig):
    out = tmp_path / "o"
    # a first, finished run that the interruption must not lose
    r = subprocess.run([sys.executable, "-m", "redfix_lib.cli", "isolate", str(_case(tmp_path, "exit")), "--runs", "1",
                        "--out", str(out)], capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    first = _pids(out)
    case = _case(tmp_path, "teardown")
    case.write_text(case.read_text().replace("case: spawn-teardown", "case: spawn-exit"))   # same bundle
    p = subprocess.Popen([sys.executable, "-m", "redfix_lib.cli", "isolate", str(case), "--runs", "1", "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    log = out / "runs" / "002" / "harness.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and "hanging" in log.read_text()):
        assert time.monotonic() < deadline and p.poll() is None, "the harness never started"
        time.sleep(0.1)
    spawned = [int(x) for x in log.read_text().split("spawned [", 1)[1].split("]", 1)[0].split(", ")]
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and f"interrupted by {sig.name}" in lines[0], err
    b = load_bundle(out)
    assert [r.outcome for r in b.runs] == ["pass", "interrupted"]
    assert b.runs[1].error == f"interrupted by {sig.name}"
    assert (out / "runs/002/teardown").read_text() == "done"        # the harness got its SIGTERM and grace
    time.sleep(0.2)
    assert [x for x in spawned + first if _alive(x)] == []
    assert not [x for x in (tmp_path / "stage").rglob("*") if x.is_file()]


def test_signal_to_batch_mid_notebook_leaves_nothing_running(tmp_path):
    """redfix batch runs the investigation in a notebook kernel; SIGTERM to redfix stops the
    kernel and, as child subreaper, the harness tree the kernel started."""
    params = tmp_path / "params"
    params.mkdir()
    _case(params, "teardown")
    p = subprocess.Popen([sys.executable, "-m", "redfix_lib.cli", "batch", str(params), "--out-root", str(tmp_path / "out"),
                          "--date", "2026-11-28"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    log = tmp_path / "out" / "2026-11-28" / "spawn-teardown" / "runs" / "001" / "harness.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "hanging" in log.read_text()):
        assert time.monotonic() < deadline and p.poll() is None, "the harness never started"
        time.sleep(0.2)
    spawned = [int(x) for x in log.read_text().split("spawned [", 1)[1].split("]", 1)[0].split(", ")]
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "interrupted by SIGTERM" in err
    time.sleep(0.5)
    assert [x for x in spawned if _alive(x)] == []
    load_bundle(tmp_path / "out" / "2026-11-28" / "spawn-teardown")        # still loads


def test_sigkill_to_redfix_still_terminates_the_harness(tmp_path):
    """redfix killed without a chance to clean up (SIGKILL): the harness leader gets SIGTERM from
    the kernel (parent-death signal) and runs its teardown."""
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "redfix_lib.cli", "isolate", str(_case(tmp_path, "teardown")),
                          "--runs", "1", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=_env(tmp_path))
    log = out / "runs" / "001" / "harness.log"
    deadline = time.monotonic() + 60
    while not (log.exists() and "hanging" in log.read_text()):
        assert time.monotonic() < deadline and p.poll() is None, "the harness never started"
        time.sleep(0.1)
    stage = next((tmp_path / "stage").glob("redfix-stage-*/*/run"))
    p.kill()
    p.communicate(timeout=30)
    deadline = time.monotonic() + 15
    while not (stage / "teardown").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert (stage / "teardown").read_text() == "done"
    finally:        # what escaped the group has no redfix left to stop it: the test does
        for pid in [int(x) for x in (stage / "pids").read_text().split()]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_daemon_redfix_starts_outlives_the_command(tmp_path):
    """`redfix lab up` starts dockerd on a fresh machine; the command's exit stops every descendant
    it leaves, so the engine must not be one (CI once lost its just-started dockerd this way, and
    every engine test after `lab up` found no engine). A daemon from spawn_daemon is re-parented
    away from redfix and survives stop_descendants; a plain child does not."""
    code = textwrap.dedent(f"""
        import os, subprocess, sys
        from redfix_lib.nodes import make_subreaper, spawn_daemon, stop_descendants
        assert make_subreaper()
        d = spawn_daemon(["sleep", "300"], {str(tmp_path / 'd.log')!r})
        c = subprocess.Popen(["sleep", "301"]).pid
        stopped = stop_descendants(grace=1)
        print(d, c, stopped, os.getpid())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    daemon, child, stopped, redfix = (int(x) for x in out.split())
    try:
        assert Path(f"/proc/{daemon}").exists(), "the daemon was stopped with the command"
        # re-parented away from the command that started it (to init, or to the nearest subreaper
        # above it — pytest itself when an earlier test made it one)
        assert Path(f"/proc/{daemon}/stat").read_text().split()[3] != str(redfix)
        assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
        assert stopped == 1
    finally:
        try:
            os.kill(daemon, signal.SIGKILL)
        except ProcessLookupError:
            pass
