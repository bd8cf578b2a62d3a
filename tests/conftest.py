import os
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "harnesses" / "fake_harness.py"
REQUIRE_ENGINE = os.environ.get("REDFIX_REQUIRE_ENGINE") == "1"


@pytest.fixture(autouse=True)
def _isolated_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("REDFIX_LOCK_DIR", str(tmp_path / "locks"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (REDFIX_REQUIRE_ENGINE=1) a skipped test is a failed one: a green run never hides a
    test that did not run, whatever the reason (engine, sshd, a missing fixture folder)."""
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_ENGINE and rep.skipped and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        rep.longrepr = f"REDFIX_REQUIRE_ENGINE=1 turns this skip into a failure: {reason}"


@pytest.fixture(autouse=True)
def _cwd_unchanged():
    """No code under test may leave the process in another directory (papermill's cwd= did, from
    the node pool's threads, and every later relative path broke)."""
    before = os.getcwd()
    yield
    after = os.getcwd()
    if after != before:
        os.chdir(before)
        pytest.fail(f"the test left the process in {after} (was {before})")


def write_case(tmp_path, mode, arg="", name="fake", extra="", timeout=30, policy="{max: 3, stop_rule: fixed}"):
    p = tmp_path / f"{name}.yaml"
    p.write_text(textwrap.dedent(f"""\
        case: {name}
        recipe: fakerecipe
        ref: "1.0.0+1.2.3"
        sweep_failure: {{tier: restore, tests: [test_restore_returns_state], message: boom}}
        harness:
          argv: ["{sys.executable}", "{HARNESS}", "{mode}", "{{run_dir}}", "{arg}"]
          env: {{RECIPE: "{{recipe}}", REF: "{{ref}}", RUN_INDEX: "{{run_index}}", DB_PASSWORD: "hunter2-very-secret"}}
          unset: [UNSET_ME]
          results_json: "{{run_dir}}/results.json"
          junit_glob: "{{run_dir}}/junit-*.xml"
        runs: {policy}
        timeout_s: {timeout}
        """) + extra)
    return p


def engine_available() -> str | None:
    try:
        import docker
        docker.from_env(timeout=5).ping()
        return None
    except Exception as e:  # noqa: BLE001
        return f"no Docker engine reachable: {e}"


@pytest.fixture(scope="session")
def engine():
    why = engine_available()
    if why:
        pytest.skip(why)             # a failure in CI: see pytest_runtest_makereport
    import docker
    return docker.from_env(timeout=120)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on a loopback port with a generated key pair and known_hosts
    (see sshd_helper.py). Hosts: redfix-test (good), redfix-badkey, redfix-unknownhost, redfix-down."""
    import shutil
    from sshd_helper import start_sshd
    if not os.path.exists(shutil.which("sshd") or "/usr/sbin/sshd") or not shutil.which("ssh"):
        pytest.skip("openssh-server/client are not installed")   # a failure in CI
    srv = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield srv
    srv["stop"]()
