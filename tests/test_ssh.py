"""SSH nodes against a real sshd on loopback: the local node's contract over ssh, docker over
ssh, and the failure modes (unreachable host, refused key, unknown host key, remote hang),
each a clear error that leaves the bundle intact."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redfix_lib.bundle import load_bundle
from redfix_lib.errors import NodeUnreachable
from redfix_lib.isolate import isolate, open_bundle
from redfix_lib.nodes import SshNode
from redfix_lib.params import load_case
from conftest import write_case

ROOT = Path(__file__).resolve().parent.parent


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def ssh_case(tmp_path, mode, host, **kw):
    p = write_case(tmp_path, mode, **kw)
    p.write_text(p.read_text() + f"node:\n  kind: ssh\n  name: {host}\n  host: {host}\n")
    return load_case(p)


def run_case(tmp_path, case, runs=1):
    from redfix_lib.nodes import make_node
    node = make_node(case.node)
    with node.lock():
        b = open_bundle(case, tmp_path / "bundle", node)
        isolate(case, b, node, runs=runs, progress=lambda m: None)
    return load_bundle(tmp_path / "bundle")


def test_ssh_run_env_results_and_secret_redaction(tmp_path, sshd, monkeypatch):
    b = run_case(tmp_path, ssh_case(tmp_path, "results", sshd["host"]))
    r = b.runs[0]
    assert r.result.source == "results.json" and r.result.failed_tests()[0].name == "test_head_runs_official_image"
    log = (b.path / r.log).read_text()
    assert "RECIPE=fakerecipe REF=1.0.0+1.2.3" in log and "UNSET_ME=<unset>" in log
    assert "hunter2-very-secret" not in log


def test_ssh_remote_hang_times_out_and_kills_remote_group(tmp_path, sshd):
    b = run_case(tmp_path, ssh_case(tmp_path, "hang", sshd["host"], timeout=3))
    r = b.runs[0]
    assert r.outcome == "timeout" and "remote process group" in (b.path / r.log).read_text()
    child = int((b.path / "runs/001/child.pid").read_text())
    time.sleep(0.5)
    assert not _alive(child)


@pytest.mark.parametrize("host,needle", [("redfix-down", "Connection refused"),
                                         ("redfix-badkey", "Permission denied"),
                                         ("redfix-unknownhost", "Host key verification failed")])
def test_ssh_failure_modes_are_clear_and_keep_the_bundle(tmp_path, sshd, host, needle):
    good = ssh_case(tmp_path, "pass", sshd["host"])
    b = run_case(tmp_path, good)
    assert len(b.runs) == 1
    bad = ssh_case(tmp_path, "pass", host)
    bad.case = good.case
    from redfix_lib.nodes import make_node
    node = make_node(bad.node)
    with pytest.raises(NodeUnreachable, match=needle):
        with node.lock():
            bb = open_bundle(bad, tmp_path / "bundle", node)
            isolate(bad, bb, node, runs=1, progress=lambda m: None)
    assert len(load_bundle(tmp_path / "bundle").runs) == 1      # nothing collected is lost


def test_cli_ssh_failure_exit_code(tmp_path, sshd):
    p = write_case(tmp_path, "pass")
    p.write_text(p.read_text() + "node:\n  kind: ssh\n  name: down\n  host: redfix-down\n")
    r = subprocess.run([sys.executable, "-m", "redfix_lib.cli", "isolate", str(p), "--runs", "1", "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode == 4 and "ssh to 'redfix-down' failed" in r.stderr     # exit 4: node unreachable
    assert not (tmp_path / "o").exists()                                       # refused before anything


@pytest.mark.engine
def test_docker_over_ssh_reaches_the_engine(sshd, engine):
    node = SshNode("t", sshd["host"])
    v = node.docker().version()
    assert v["Version"] == engine.version()["Version"]
    assert node.read_file("/etc/hostname") == Path("/etc/hostname").read_bytes()
    assert node.glob(str(ROOT / "params" / "lab" / "*.yaml")) == sorted(str(p) for p in (ROOT / "params" / "lab").glob("*.yaml"))


def test_ssh_host_validation():
    from redfix_lib.errors import ParamsError
    for bad in ("-oProxyCommand=x", "a b", "host;id"):
        with pytest.raises(ParamsError):
            SshNode("x", bad)


def test_batch_node_pool_drops_an_unreachable_node(tmp_path, sshd):
    """Cases run in parallel, one per node at a time; the unreachable node fails its current case
    cleanly (status node-unreachable) and takes no more; every other case runs on the good node."""
    import json
    from redfix_lib.batch import run_batch
    cases = tmp_path / "cases"
    cases.mkdir()
    for i in range(3):
        p = write_case(cases, "pass", name=f"pool{i}")
        p.write_text(p.read_text() + "node:\n  kind: ssh\n  name: pool\n  host: redfix-test\n")
    msgs = []
    rc = run_batch([str(cases)], date="2026-11-27", out_root=str(tmp_path / "out"), live=True,
                   nodes=["redfix-down", sshd["host"]], progress=msgs.append)
    man = json.loads((tmp_path / "out" / "2026-11-27" / "manifest.json").read_text())
    st = {k: (e["status"], e.get("node")) for k, e in man["cases"].items()}
    down = [k for k, (s, n) in st.items() if n == "redfix-down"]
    assert len(down) == 1 and st[down[0]][0] == "node-unreachable", st
    assert all(s == "ok" and n == sshd["host"] for k, (s, n) in st.items() if k not in down), st
    assert rc == 1 and any("takes no more" in m for m in msgs)


# ---- SshNode.run reports exactly what the remote harness did (issue 9) ----------------------
ORPHAN_REFUSING = """import os, sys, time
# like cc-ci's harness (runner/harness/lifetime.py): a harness already orphaned at start refuses
if os.getppid() == 1:
    print("orphaned at start: refusing", flush=True)
    sys.exit(3)
print(f"parent {os.getppid()} pgid {os.getpgrp()} pid {os.getpid()}", flush=True)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


def _ssh_run(sshd, tmp_path, argv, timeout_s=30, **kw):
    node = SshNode("t", sshd["host"])
    return node.run(argv, log_path=tmp_path / "run.log", timeout_s=timeout_s, **kw)


def test_ssh_exit_status_is_exact(tmp_path, sshd):
    r0 = _ssh_run(sshd, tmp_path, ["sh", "-c", "echo hello; exit 0"])
    assert (r0.status, r0.exit_code, r0.signal) == ("exited", 0, None)
    assert "hello" in (tmp_path / "run.log").read_text()
    r7 = _ssh_run(sshd, tmp_path, ["sh", "-c", "sleep 0.5; exit 7"])
    assert (r7.status, r7.exit_code, r7.signal) == ("exited", 7, None)
    r143 = _ssh_run(sshd, tmp_path, ["sh", "-c", "exit 143"])          # cc-ci's TERM exit, not a signal
    assert (r143.exit_code, r143.signal) == (143, None)


def test_ssh_death_by_signal_is_reported_as_that_signal(tmp_path, sshd):
    r = _ssh_run(sshd, tmp_path, ["sh", "-c", "kill -9 $$"])
    assert (r.status, r.exit_code, r.signal) == ("exited", -9, 9)
    assert "killed by signal 9 (SIGKILL)" in (tmp_path / "run.log").read_text()
    r = _ssh_run(sshd, tmp_path, ["sh", "-c", "kill -TERM $$"])
    assert (r.exit_code, r.signal) == (-15, 15)


def test_ssh_harness_is_not_orphaned_and_runs(tmp_path, sshd):
    h = tmp_path / "orphan_check.py"
    h.write_text(ORPHAN_REFUSING)
    r = _ssh_run(sshd, tmp_path, [sys.executable, str(h), "5"])
    log = (tmp_path / "run.log").read_text()
    assert "refusing" not in log and (r.exit_code, r.signal) == (5, None), log
    parent, pgid, pid = (int(x) for x in log.split()[1::2][:3])
    assert parent != 1 and pgid != pid          # child of the session's group leader, same group


def test_ssh_timeout_kills_the_remote_group_and_leaves_nothing(tmp_path, sshd):
    marker = f"redfix-timeout-{os.getpid()}-{time.monotonic_ns()}"
    # the harness starts a grandchild that would outlive it, then hangs
    script = f"(exec -a {marker} sleep 300) & echo $! > {tmp_path}/gc.pid; exec -a {marker} sleep 300"
    r = _ssh_run(sshd, tmp_path, ["bash", "-c", script], timeout_s=2)
    assert r.status == "timeout" and r.exit_code is None
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert left == [], left
    assert not _alive(int((tmp_path / "gc.pid").read_text()))


def test_ssh_leftover_children_are_killed_after_a_normal_run(tmp_path, sshd):
    marker = f"redfix-left-{os.getpid()}-{time.monotonic_ns()}"
    script = f"(exec -a {marker} sleep 300) >/dev/null 2>&1 & echo started; exit 4"
    t0 = time.monotonic()
    r = _ssh_run(sshd, tmp_path, ["bash", "-c", script], timeout_s=60)
    assert (r.status, r.exit_code) == ("exited", 4) and time.monotonic() - t0 < 20
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", marker], capture_output=True).stdout == b""


def test_decode_wait_status():
    from redfix_lib.nodes import decode_wait_status
    assert decode_wait_status(7 << 8) == (7, None)
    assert decode_wait_status(0) == (0, None)
    assert decode_wait_status(9) == (-9, 9)
    assert decode_wait_status(0x80 | 6) == (-6, 6)      # core dumped: still signal 6


# ---- a cc-ci-shaped run read over ssh: run folder, results.json schema 2, JUnit text, WC5 ----
CCCI_LIKE = ROOT / "tests" / "harnesses" / "ccci_like.py"


def ccci_case(tmp_path, host, mode, tier="upgrade", runs_dir=None):
    runs_dir = runs_dir or tmp_path / "runs"
    Path(runs_dir).mkdir(exist_ok=True)
    p = tmp_path / f"ccci-{mode}.yaml"
    p.write_text(f"""case: ccci-{mode}
recipe: discourse
ref: "0.8.1+3.5.0"
sweep_failure: {{tier: {tier}, tests: [test_head_runs_official_image]}}
node: {{kind: ssh, name: {host}, host: {host}}}
harness:
  argv: ["{sys.executable}", "{CCCI_LIKE}", "{mode}"]
  env: {{RECIPE: "{{recipe}}", CCCI_SKIP_FETCH: "1", CCCI_RUNS_DIR: "{runs_dir}"}}
  unset: [REF, CCCI_QUICK, MODE, VERSION]
  runs_dir: "{runs_dir}"
runs: {{max: 1, stop_rule: fixed}}
timeout_s: 60
""")
    return load_case(p)


def test_ccci_run_folder_results_and_junit_text_over_ssh(tmp_path, sshd):
    # another recipe's run folder already there, and one appearing for another recipe: never ours
    (tmp_path / "runs" / "753").mkdir(parents=True)
    b = run_case(tmp_path, ccci_case(tmp_path, sshd["host"], "upgrade-fail"))
    r = b.runs[0]
    folder = (b.path / "runs/001/run-folder.txt").read_text().strip()
    assert Path(folder).parent == tmp_path / "runs" and Path(folder).name.startswith("manual-")
    assert r.result.source == "results.json" and r.outcome == "fail" and r.exit_code == 1
    assert [t.name for t in r.result.tiers] == ["install", "upgrade", "custom"]   # lint: a rung, not a verdict
    assert r.result.meta["lint"]["rules_failed"] == ["R011"] and r.result.meta["skips"]["intentional"]
    (t,) = r.result.failed_tests()
    assert t.name == "test_head_runs_official_image" and "expected redfix-lab/discourse:3.5.3" in t.message
    assert {"results.json", "junit-upgrade.xml"} <= {Path(a).name for a in r.artifacts}


def test_ccci_promote_failure_is_read_from_the_log(tmp_path, sshd):
    b = run_case(tmp_path, ccci_case(tmp_path, sshd["host"], "promote-fail", tier="promote"))
    r = b.runs[0]
    assert r.exit_code == 0                       # promote is non-fatal: the exit status stays 0
    promote = {t.name: t for t in r.result.tiers}["promote"]
    assert promote.status == "fail" and "not healthy over HTTPS (status 0)" in promote.detail
    from redfix_lib.results import reproduction
    assert reproduction(r.outcome, r.result, "promote") == "fail"


def test_ccci_green_run_without_a_promote_line_is_inconclusive_for_promote(tmp_path, sshd):
    b = run_case(tmp_path, ccci_case(tmp_path, sshd["host"], "green", tier="promote"))
    from redfix_lib.results import reproduction
    r = b.runs[0]
    assert r.outcome == "pass" and reproduction(r.outcome, r.result, "promote") == "inconclusive"


def test_ccci_run_without_results_json_is_decided_by_exit_status(tmp_path, sshd):
    b = run_case(tmp_path, ccci_case(tmp_path, sshd["host"], "no-results"))
    r = b.runs[0]
    assert (b.path / "runs/001/run-folder.txt").exists()
    # every JUnit tier green, no results.json: the exit status (1) decides
    assert r.result.source == "junit" and r.outcome == "fail"
    assert {t.name: t.status for t in r.result.tiers} == {"install": "pass", "upgrade": "pass", "custom": "pass",
                                                          "run": "fail"}


def test_ccci_run_folder_not_found_is_inconclusive_with_the_reason(tmp_path, sshd):
    b = run_case(tmp_path, ccci_case(tmp_path, sshd["host"], "no-folder"))
    r = b.runs[0]
    assert r.exit_code == 0 and r.outcome == "inconclusive" and r.result.source == "unreadable"
    assert "run folder not found under" in r.result.tiers[0].detail
    from redfix_lib.results import reproduction
    assert reproduction(r.outcome, r.result, "upgrade") == "inconclusive"


def test_find_run_folder_picks_this_runs_folder():
    from redfix_lib.results import find_run_folder
    owner = {"/r/754": "mumble", "/r/manual-9": "discourse", "/r/manual-8": None}
    assert find_run_folder(["/r/753"], ["/r/753", "/r/754", "/r/manual-9"], "discourse", owner.get) == ("/r/manual-9", "")
    f, why = find_run_folder(["/r/753"], ["/r/753", "/r/754"], "discourse", owner.get)
    assert f is None and "none for recipe 'discourse'" in why
    f, why = find_run_folder(["/r/753"], ["/r/753"], "discourse", owner.get)
    assert f is None and "no new run folder" in why
    assert find_run_folder([], ["/r/manual-8"], "discourse", owner.get) == ("/r/manual-8", "")


def test_busy_probes_app_lock_held_and_registry(tmp_path, sshd):
    import fcntl
    node = SshNode("t", sshd["host"])
    lock = tmp_path / "cc-ci-app-gite-abc123.ci.example.lock"
    lock.write_text("")
    probes = [{"lock_held": str(tmp_path / "cc-ci-app-*.lock")}, {"entries": str(tmp_path / "active" / "*")}]
    assert node.busy_reasons(probes) == []
    with open(lock) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        assert any("is held" in x for x in node.busy_reasons(probes))
    assert node.busy_reasons(probes) == []       # released with its holder
    (tmp_path / "active").mkdir()
    (tmp_path / "active" / "gite-abc123.ci.example").write_text("4242")
    assert any("gite-abc123" in x for x in node.busy_reasons(probes))


def test_orchestrator_steps_read_from_log_lines():
    from redfix_lib.results import orchestrator_steps
    assert orchestrator_steps("[harness] promote step not attempted (not enrolled)\nWC5 promote skipped: x", "gitea") == []
    (ok,) = orchestrator_steps("[harness] WC5 promoted gitea canonical -> 3.6.0", "gitea")
    assert ok.status == "pass" and ok.tests[0].name == "WC5 promote"
    (bad,) = orchestrator_steps("== WC5 start\n!! WC5 promote failed for gitea: boom (1)\n", "gitea")
    assert bad.status == "fail" and bad.detail == "boom (1)"
    assert orchestrator_steps("!! WC5 promote failed for mumble: other recipe", "gitea") == []
    (sweep_form,) = orchestrator_steps("bluesky-pds — WC5 promote failed: abra app deploy warm-bluesky-pds… failed (1)", "x")
    assert sweep_form.status == "fail" and "failed (1)" in sweep_form.detail


@pytest.mark.parametrize("mode,tier,want", [("green", "upgrade", "REF=fix/branch"),
                                            ("green", "promote", "REF=<unset>")])
def test_verify_runs_a_branch_the_way_the_node_runs_it(tmp_path, sshd, mode, tier, want):
    """cc-ci-like cases run latest with REF unset: `redfix verify --ref BRANCH` passes REF=BRANCH as
    a PR run gets it, except for the promote step (only ever run on latest: the branch staged, REF unset)."""
    from redfix_lib.verify import verify_fix
    case = ccci_case(tmp_path, sshd["host"], mode, tier=tier)
    path = tmp_path / f"ccci-{mode}.yaml"
    row = verify_fix(str(path), fix_ref="fix/branch", runs=1, out=str(tmp_path / "fix"), progress=lambda m: None)
    log = (tmp_path / "fix" / "runs" / "001" / "harness.log").read_text()
    assert want in log and row["fix_ref"] == "fix/branch" and case.case == row["case"]
