"""No secret reaches outputs/: planted secrets of every form go through every channel a harness
has (log, pre-step log, results.json and JUnit messages, service logs, tasks.json, the case's env
and argv, the node's environment), through a whole investigation, a live batch (notebooks,
STATUS.md/html, manifest) and interrupted runs (SIGTERM, SIGINT); then every file written under
the output folder is searched for every planted secret."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from redfix_lib.bundle import atomic_write_text, load_bundle
from redfix_lib.safety import REDACTED, Redactor

ROOT = Path(__file__).resolve().parent.parent
LEAKY = ROOT / "tests" / "harnesses" / "leaky_harness.py"

PEM_BODY = "MIIEowIBAAKCAQEAplantedPEMbodyLine0001xyzABCDEFG"
# secret -> the text that carries it, by channel (log_* harness log, svc_* service log, ...)
PLAN = {
    "log_pem": f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\nplantedPEMsecondLine0002\n-----END RSA PRIVATE KEY-----",
    "log_aws": "aws configured with AKIAQ3PLANTEDAWS0001 for backups",
    "log_aws_secret": "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYPLANTED14",
    "log_ghp": "cloning with ghp_PlantedGithubToken0123456789abcdefXY",
    "log_bearer": "curl -H 'Authorization: Bearer Zq8wX2rT9pL4mN7vB1cK6hJ3gF5dS0aQ' https://api.example.org",
    "log_token_hdr": "> Authorization: token tok3nPlantedValue42",
    "log_basic": "Authorization: Basic YmFzaWN1c2VyOkJhc2ljUGxhbnRlZFB3MjE=",
    "log_url": "git clone https://deploy:UrlPassw0rdPlanted@git.example.org/r.git",
    "log_pw_eq": "abra app deploy --password=FlagEqPlanted22 x",
    "log_apikey": "uploading --api-key ApiKeyFlagPlanted23 --verbose",
    "log_tokflag": "cli login --token TokFlagPlanted24",
    "log_mysql": "running: mysql -u root -pMysqlPlantedPw9 app < dump.sql",
    "log_env": "export PASSWORD=EnvStylePw10planted",
    "log_node_env": "using credential NodeEnvTok12planted for the registry",
    "log_case_env": "connecting to db as app/CaseEnvDbPw13planted",
    "log_user_rx": "internal ticket corp-tkn-20261128 attached",
    "log_jwt": "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.PlantedJwtSig25abc",
    "log_gh_env": "pushing as ghp_NodeEnvGithubTok0123456789abcdefZZ",
    "log_stripe": "billing key sk_live_PlantedStripe0000001",
    "svc_yaml": "  api_key: yamlApiKeyPlanted11",
    "svc_json": '{"level":"info","password": "correct horse battery staple", "user":"bob"}',
    "svc_pem": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaPlantedSvcPemBody26\n-----END OPENSSH PRIVATE KEY-----",
    "pre_log": "git fetch https://x-access-token:PreStepTok16planted@github.com/o/r",
    "task_err": "starting container failed: secret SECRET_KEY=TaskErrSecret27planted rejected",
    "task_env": ["POSTGRES_PASSWORD=TaskEnvPw15planted", "HOME=/root"],
    "results_message": 'login failed for {"password": "json multi word pw 28"} token=ResMsgTok29planted',
    "results_detail": "secret: ResultsSecret18planted",
    "junit_message": "auth failed with token=JunitTok17planted",
    "junit_text": "Traceback: requests to https://admin:JunitUrlPw30@app/ failed; "
                  "session cookie Yt5Rk9Wm2Qp7Lx3Nv8Bz4Hc6Jd1Fg0Sa",
}
# everything that must never reach outputs/
SECRETS = [
    PEM_BODY, "plantedPEMsecondLine0002", "AKIAQ3PLANTEDAWS0001", "wJalrXUtnFEMIK7MDENGbPxRfiCYPLANTED14",
    "ghp_PlantedGithubToken0123456789abcdefXY", "Zq8wX2rT9pL4mN7vB1cK6hJ3gF5dS0aQ", "tok3nPlantedValue42",
    "YmFzaWN1c2VyOkJhc2ljUGxhbnRlZFB3MjE=", "UrlPassw0rdPlanted", "FlagEqPlanted22", "ApiKeyFlagPlanted23",
    "TokFlagPlanted24", "MysqlPlantedPw9", "EnvStylePw10planted", "NodeEnvTok12planted", "CaseEnvDbPw13planted",
    "corp-tkn-20261128", "PlantedJwtSig25abc", "ghp_NodeEnvGithubTok0123456789abcdefZZ",
    "sk_live_PlantedStripe0000001", "yamlApiKeyPlanted11", "correct horse battery staple",
    "b3BlbnNzaPlantedSvcPemBody26", "PreStepTok16planted", "TaskErrSecret27planted", "TaskEnvPw15planted",
    "json multi word pw 28", "ResMsgTok29planted", "ResultsSecret18planted", "JunitTok17planted",
    "JunitUrlPw30", "Yt5Rk9Wm2Qp7Lx3Nv8Bz4Hc6Jd1Fg0Sa",
    # in the case file itself (argv, env, messages)
    "ArgvFlagPw88", "ArgvUrlSecret77", "CaseEnvDbPw13planted", "sk_live_CaseEnvStripe000031", "SweepMsgTok19planted",
    "DescMysqlPw20", "CwdSecretPw31",
]


def _case(d: Path, name: str, mode: str, extra: str = "") -> Path:
    p = d / f"{name}.yaml"
    p.write_text(textwrap.dedent(f"""\
        case: {name}
        recipe: leaky
        ref: "1.0.0"
        description: "restore as in: mysql -uroot -pDescMysqlPw20 app"
        sweep_failure: {{tier: restore, tests: [test_restore_returns_state], message: "cli --token SweepMsgTok19planted"}}
        harness:
          argv: ["{sys.executable}", "{LEAKY}", "{mode}", "{{run_dir}}", "--password", "ArgvFlagPw88",
                 "https://ciuser:ArgvUrlSecret77@registry.example.org/v2"]
          pre: [["{sys.executable}", "{LEAKY}", "pre", "{{run_dir}}"]]
          env: {{RECIPE: "{{recipe}}", REF: "{{ref}}", DB_PASSWORD: "CaseEnvDbPw13planted",
                 STRIPE_KEY: "sk_live_CaseEnvStripe000031", REPO: "https://ciuser:ArgvUrlSecret77@registry.example.org"}}
          results_json: "{{run_dir}}/results.json"
          junit_glob: "{{run_dir}}/junit-*.xml"
        runs: {{max: 1, min: 1, stop_rule: fixed}}
        timeout_s: 120
        redact: ['corp-tkn-[0-9]{{8}}']
        probes:
          - {{kind: service_logs}}
          - {{kind: task_history}}
        """) + extra)
    return p


def _env(tmp_path: Path) -> dict:
    return {**os.environ, "LEAK_PLAN": json.dumps(PLAN), "CI_DEPLOY_TOKEN": "NodeEnvTok12planted",
            "MY_GH": "ghp_NodeEnvGithubTok0123456789abcdefZZ", "REDFIX_LOCK_DIR": str(tmp_path / "locks"),
            "REDFIX_STAGE_DIR": str(tmp_path / "stage"), "REDFIX_KILL_GRACE_S": "5"}


def _redfix(*args, env, **kw):
    return subprocess.run([sys.executable, "-m", "redfix_lib.cli", *args], capture_output=True, text=True,
                          env=env, timeout=600, **kw)


def _interrupt(case: Path, out: Path, sig: int, env: dict) -> subprocess.CompletedProcess:
    p = subprocess.Popen([sys.executable, "-m", "redfix_lib.cli", "investigate", str(case), "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = out / "runs" / "001" / "harness.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:       # the log streams: wait until the harness hangs
        if log.exists() and "now hanging" in log.read_text(errors="replace"):
            break
        time.sleep(0.1)
    else:
        p.kill()
        pytest.fail("the leaky harness never reached its hang")
    p.send_signal(sig)
    out_, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(p.args, p.returncode, out_, err)


def _grep_all(root: Path) -> tuple[int, dict[str, list[str]]]:
    files = [p for p in root.rglob("*") if p.is_file()]
    leaks: dict[str, list[str]] = {}
    for f in files:
        data = f.read_bytes()
        for s in SECRETS:
            if s.encode() in data:
                leaks.setdefault(s, []).append(str(f.relative_to(root)))
    return len(files), leaks


def test_planted_secrets_never_reach_any_output(tmp_path):
    env = _env(tmp_path)
    out = tmp_path / "out"
    params = tmp_path / "params"
    params.mkdir()
    # 1. a whole investigation from the command line
    r = _redfix("investigate", str(_case(tmp_path, "leak-investigate", "fail")), "--out",
                str(out / "2026-11-28" / "leak-investigate"), env=env)
    assert r.returncode == 0, r.stderr
    # 2. a live batch: notebooks, verdicts, STATUS.md/html, manifest
    _case(params, "leak-batch", "fail")
    # its evidence summary quotes a path with a credential (the canonical_state probe's)
    (params / "leak-batch.yaml").write_text((params / "leak-batch.yaml").read_text() +
                                            '  - {kind: canonical_state, path: '
                                            '"/nonexistent/https://u:CwdSecretPw31@host/canonical.json"}\n')
    r = _redfix("batch", str(params), "--out-root", str(out), "--date", "2026-11-28", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    man = json.loads((out / "2026-11-28" / "manifest.json").read_text())
    assert man["cases"]["leak-batch"]["status"] == "ok" and man["summary"] == "ok"
    # 3. interrupted runs: SIGTERM and SIGINT while the harness is running
    interrupted = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        b = out / "2026-11-28" / f"leak-{sig.name.lower()}"
        interrupted[sig] = (_interrupt(_case(tmp_path, f"leak-{sig.name.lower()}", "hang"), b, sig, env), b)

    day = out / "2026-11-28"
    for f in ("leak-investigate/verdict.json", "leak-batch/verdict.json", "leak-batch.ipynb", "STATUS.md",
              "STATUS.html", "manifest.json", "leak-investigate/runs/001/harness.log",
              "leak-investigate/runs/001/pre-0.log", "leak-investigate/runs/001/results.json",
              "leak-investigate/runs/001/junit-restore.xml", "leak-investigate/runs/001/services/cold/tasks.json",
              "leak-investigate/runs/001/services/cold/app.abc123def456.log", "leak-sigterm/runs/001/harness.log"):
        assert (day / f).is_file(), f
    n_files, leaks = _grep_all(out)
    print(f"secrets planted: {len(SECRETS)}, leaked: {len(leaks)}, files searched: {n_files}")
    assert len(set(SECRETS)) >= 23
    assert leaks == {}
    # the redaction kept the evidence around the secrets
    log = (day / "leak-investigate/runs/001/harness.log").read_text()
    assert REDACTED in log and "cloning with ***REDACTED***" in log and "--password=***REDACTED***" in log
    ev = {e.id: e for e in load_bundle(day / "leak-batch").evidence}
    assert f"https://u:{REDACTED}@host" in ev["canonical_state:leaky"].summary
    assert "ERROR: read-only file system" in (day / "leak-investigate/runs/001/services/cold/app.abc123def456.log").read_text()
    b = load_bundle(day / "leak-investigate")
    assert b.runs[0].result.source == "results.json" and b.runs[0].outcome == "fail"
    assert b.case["harness"]["env"]["DB_PASSWORD"] == REDACTED and b.case["harness"]["argv"][-2] == REDACTED
    assert not list(out.rglob("*.raw.log"))
    # the interrupted runs: clear message, signal exit status, consistent bundle, nothing staged left
    for sig, (r, bdir) in interrupted.items():
        assert r.returncode == 128 + sig, r.stderr
        assert f"interrupted by {sig.name}" in r.stderr and "Traceback" not in r.stderr
        ib = load_bundle(bdir)
        assert [x.outcome for x in ib.runs] == ["interrupted"]
        assert ib.runs[0].result.tiers[0].status == "unver"
        assert "now hanging" in (bdir / ib.runs[0].log).read_text()
    # nothing staged is left behind (the private staging folders are removed after every run, a crash included)
    assert [str(p) for p in (tmp_path / "stage").glob("redfix-stage-*/*")] == []


@pytest.mark.parametrize("text,secret", [
    ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPlantedEcKey\n-----END EC PRIVATE KEY-----", "MHcCAQEEIPlantedEcKey"),
    ('{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEvPlantedInJson\\n-----END PRIVATE KEY-----\\n"}', "MIIEvPlantedInJson"),
    ("id=ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"),
    ("proxy-authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ('headers: {"Authorization": "Bearer abc123.def456"}', "abc123.def456"),
    ("redis://:redisPw55@redis:6379/0", "redisPw55"),
    ("postgres://app:pg%40pw@db/app", "pg%40pw"),
    ("--db-password 'quoted pw 1'", "quoted pw 1"),
    ("--secret=s3cr3tval", "s3cr3tval"),
    ("mysqldump --user=root -pDumpPw1 app", "DumpPw1"),
    ("curl -fsS -u admin:CurlPw9x https://app/api", "CurlPw9x"),
    ("login failed, user admin password: hunter2", "hunter2"),
    ("curl --user 'bot:Quoted9Pw' https://app", "Quoted9Pw"),
    ("MYSQL_ROOT_PASSWORD: rootpw-1", "rootpw-1"),
    ('{"client_secret":"two words"}', "two words"),
    ("  db_password: 'yaml quoted pw'", "yaml quoted pw"),
    ("APP_KEY=base64:Zm9vYmFyYmF6cXV4", "Zm9vYmFyYmF6cXV4"),
    ("token: Qm9Zx7Lw2Kv9Tr4Ys8Hn3Jd6Fp1Bc5Ng0", "Qm9Zx7Lw2Kv9Tr4Ys8Hn3Jd6Fp1Bc5Ng0"),
    ("xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl"),
])
def test_detector_forms(text, secret):
    r = Redactor(node_env=False)
    out = r.text(text)
    assert secret not in out and REDACTED in out
    assert r.text(out) == out                   # idempotent: re-redacting stored text changes nothing


@pytest.mark.parametrize("text", [
    "gitea | failed to save JWT secret to app.ini: open /data/gitea/conf/app.ini: read-only file system",
    "image sha256:3f1e0c6b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b pulled",
    "test_head_runs_official_image_and_no_sidekiq_container FAILED",
    'relation "ci_marker" does not exist',
    "[harness 12:00:01] tier install: pass (1200 ms)",
    "token expired for user bob",
    "docker run -u 1000:1000 app",
    "      - JWT_SECRET=${JWT_SECRET:-}",
    'echo "JWT_SECRET = $(head -c 32 /dev/urandom | sha256sum)"',
    "  # existing installation without an oauth2 JWT secret: generate one and save it to app.ini",
    "keycloak canonical domain warm-keycloak.lab.redfix.test refused",
])
def test_detector_leaves_evidence_alone(text):
    assert Redactor(node_env=False).text(text) == text


def test_values_from_env_argv_and_user_patterns():
    r = Redactor(env={"API_TOKEN": "plain-value-1", "HOME": "/root"}, patterns=[r"ACME-\d{4}"], node_env=False)
    assert r.text("x plain-value-1 y ACME-1234 /root") == f"x {REDACTED} y {REDACTED} /root"
    assert r.argv(["mysql", "-uroot", "-pPw1", "--password", "pw 2", "--api-key=k3"]) == \
        ["mysql", "-uroot", f"-p{REDACTED}", "--password", REDACTED, f"--api-key={REDACTED}"]
    assert r.env({"DB_PASSWORD": "x1", "URL": "https://u:p4ss@h/"}) == {"DB_PASSWORD": REDACTED,
                                                                       "URL": f"https://u:{REDACTED}@h/"}


def test_stream_bounded_and_pem_across_lines():
    import io
    r = Redactor(node_env=False)
    src = io.BytesIO(b"a\n-----BEGIN RSA PRIVATE KEY-----\nbody1\nbody2\n-----END RSA PRIVATE KEY-----\nafter\n"
                     + b"y" * (3 << 20) + b"\ntail password=pw9\n")
    dst = io.BytesIO()
    r.stream(src, dst)
    out = dst.getvalue()
    assert b"body1" not in out and b"body2" not in out and b"after\n" in out and b"pw9" not in out
    assert b"more bytes of this line dropped" in out and len(out) < (2 << 20)


def test_reports_are_readable_by_others(tmp_path):
    """Reports meant for people (STATUS.md/html, verdict.json, sweep.md, bundle.json) are written
    0666 & ~umask (0644), not mkstemp's 0600; folders 0755."""
    old = os.umask(0o022)
    try:
        d = tmp_path / "out" / "2026-11-28"
        for name in ("STATUS.md", "STATUS.html", "case/verdict.json", "sweep/sweep.md"):
            atomic_write_text(d / name, "x\n")
            assert (d / name).stat().st_mode & 0o777 == 0o644, name
            assert (d / name).parent.stat().st_mode & 0o777 == 0o755
    finally:
        os.umask(old)


def test_batch_outputs_are_0644(tmp_path):
    """The real writers through a replayed batch: every file 0644, every folder 0755."""
    import shutil
    from redfix_lib.batch import run_batch
    ex = ROOT / "outputs" / "example"
    cases = sorted(p.name for p in ex.iterdir() if (p / "bundle.json").exists())[:1]
    if not cases:
        pytest.skip("no stored example bundles")
    day = tmp_path / "out" / "2026-11-28"
    day.mkdir(parents=True)
    for c in cases:
        shutil.copytree(ex / c, day / c)
    old = os.umask(0o022)
    try:
        params = tmp_path / "params"
        params.mkdir()
        for c in cases:
            src = next(p for p in (ROOT / "params" / "lab").glob("*.yaml") if f"case: {c}\n" in p.read_text())
            shutil.copy(src, params / src.name)
        assert run_batch([str(params)], date=day.name, out_root=str(day.parent), live=False,
                         progress=lambda m: None) == 0
    finally:
        os.umask(old)
    for name in ("STATUS.md", "STATUS.html", "manifest.json", f"{cases[0]}.ipynb", f"{cases[0]}/verdict.json"):
        assert (day / name).stat().st_mode & 0o777 == 0o644, name
    assert day.stat().st_mode & 0o777 == 0o755


def test_sweep_messages_redacted(tmp_path):
    """The sweep report's rows (sweep.json, sweep.md) carry failure messages (JUnit assertion text,
    the WC5 promote failure from the log): redacted."""
    from redfix_lib.lab.sweep import format_report, sweep_entry
    rd = tmp_path / "gitea"
    rd.mkdir()
    (rd / "results.json").write_text(json.dumps({"schema": 2, "recipe": "gitea", "ref": "1.0", "stages": [
        {"name": "lint", "status": "fail"},
        {"name": "install", "status": "fail", "tests": [{"name": "t", "status": "fail"}]}]}))
    (rd / "junit-install.xml").write_text(
        '<testsuite><testcase name="t"><failure message="git clone https://u:SweepUrlPw1@h/r --token SweepTok2">'
        "trace</failure></testcase></testsuite>")
    (rd / "harness.log").write_text("!! WC5 promote failed for gitea: push https://bot:SweepPromotePw3@h/r (1)\n")
    e = sweep_entry(rd, {"exit_code": 1}, Redactor(node_env=False))
    md = format_report({"started": "x", "wall_s": 1, "load": 0, "recipes": {"gitea": e}})
    for text in (json.dumps(e), md):
        assert "SweepUrlPw1" not in text and "SweepTok2" not in text and "SweepPromotePw3" not in text
    assert "https://u:***REDACTED***@h/r" in md
    assert e["failed_tiers"] == ["install", "promote"] and "lint" not in e["tiers"]
    assert "https://bot:***REDACTED***@h/r" in e["failures"][-1]["message"]
    (rd / "harness.log").unlink()              # no log (the harness never started): no promote step, still a row
    assert sweep_entry(rd, {"exit_code": 1}, Redactor(node_env=False))["failed_tiers"] == ["install"]


def test_redaction_keeps_json_valid_and_stored_lab_evidence_intact():
    """Redacting results.json/tasks.json must leave them parseable; the stored lab bundles (real
    harness logs, service logs, results) hold no secret, so redaction changes none of their lines."""
    r = Redactor(node_env=False)
    doc = '{"secret_version": 3, "secrets": [], "token": {"a": 1}, "password": 12345, "api_key": "k y", "x": null}'
    out = json.loads(r.text(doc))
    assert out == {"secret_version": REDACTED, "secrets": [], "token": {"a": 1}, "password": REDACTED,
                   "api_key": REDACTED, "x": None}
    files = [p for p in (ROOT / "outputs" / "example").rglob("*") if p.suffix in (".log", ".json", ".xml")]
    assert len(files) > 50
    changed = [(p.name, ln) for p in files for ln in p.read_text(errors="replace").splitlines(keepends=True)
               if r.line(ln) != ln]
    assert changed == []


def test_executed_notebook_outputs_redacted(tmp_path):
    """An exception's text in an executed notebook (error value, traceback, streams, text/html)
    is redacted in place; images are left alone."""
    import nbformat
    from redfix_lib.safety import redact_notebook
    nb = nbformat.v4.new_notebook()
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="cloning https://u:NbStreamPw1@h/r\n"),
        nbformat.v4.new_output("error", ename="FileNotFoundError", evalue="no /x/https://u:NbErrPw2@h",
                               traceback=["Traceback", "  --password NbTbPw3"]),
        nbformat.v4.new_output("display_data", data={"text/html": "<td>token=NbHtmlTok4</td>", "image/png": png})])]
    p = tmp_path / "c.ipynb"
    nbformat.write(nb, str(p))
    assert redact_notebook(p, Redactor(node_env=False)) is True
    text = p.read_text()
    for s in ("NbStreamPw1", "NbErrPw2", "NbTbPw3", "NbHtmlTok4"):
        assert s not in text
    assert png in text
    nbformat.validate(nbformat.read(str(p), as_version=4))
    assert redact_notebook(p, Redactor(node_env=False)) is False       # idempotent


RUNS_DIR_HARNESS = '''
import json, os, sys
rd = os.path.join(os.environ["CCCI_RUNS_DIR"], os.environ.get("DRONE_BUILD_NUMBER") or f"manual-{os.getpid()}")
os.makedirs(os.path.join(rd, "services", "cold"), exist_ok=True)
tok = os.environ["DEPLOY_TOKEN"]
with open(os.path.join(rd, "junit-install.xml"), "w") as f:
    f.write('<testsuite><testcase name="test_serves"><failure message="git push https://admin:RunFolderJunitPw41@h/r">'
            f'token {tok}</failure></testcase></testsuite>')
with open(os.path.join(rd, "results.json"), "w") as f:
    json.dump({"schema": 2, "recipe": os.environ["RECIPE"], "ref": "", "lint": {"detail": f"--token {tok}"},
               "stages": [{"name": "install", "status": "fail", "tests": [{"name": "test_serves", "status": "fail"}]}]}, f)
with open(os.path.join(rd, "services", "cold", "app.log"), "w") as f:
    f.write(f"boot DB_PASSWORD=RunFolderSvcPw42 token={tok}\\n")
print(f"deploying with {tok}", flush=True)
sys.exit(1)
'''


def test_run_folder_under_runs_dir_comes_in_redacted(tmp_path, monkeypatch):
    """A cc-ci-style harness writes its run folder under harness.runs_dir (outside the stage):
    what redfix fetches from there (results.json, JUnit, saved service logs) passes the redactor."""
    from redfix_lib.isolate import isolate, open_bundle
    from redfix_lib.nodes import make_node
    from redfix_lib.params import load_case
    monkeypatch.setenv("REDFIX_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("REDFIX_STAGE_DIR", str(tmp_path / "stage"))
    (tmp_path / "h.py").write_text(RUNS_DIR_HARNESS)
    runs = tmp_path / "runs"
    runs.mkdir()
    p = tmp_path / "c.yaml"
    p.write_text(textwrap.dedent(f"""\
        case: runsdir
        recipe: gitea
        ref: "1.0.0"
        sweep_failure: {{tier: install, tests: [test_serves]}}
        harness:
          argv: ["{sys.executable}", "{tmp_path / 'h.py'}"]
          env: {{RECIPE: "{{recipe}}", CCCI_RUNS_DIR: "{runs}", DEPLOY_TOKEN: "RunFolderTok40xyz"}}
          runs_dir: "{runs}"
        runs: {{max: 1, min: 1, stop_rule: fixed}}
        timeout_s: 60
        """))
    case = load_case(p)
    node = make_node(case.node)
    with node.lock():
        b = open_bundle(case, tmp_path / "bundle", node)
        isolate(case, b, node, runs=1, progress=lambda m: None)
    b = load_bundle(tmp_path / "bundle")
    r = b.runs[0]
    rd = b.path / "runs" / "001"
    assert r.result.source == "results.json" and r.outcome == "fail"
    assert (rd / "junit-install.xml").exists() and (rd / "services" / "cold" / "app.log").exists()
    assert r.result.failed_tests()[0].message.startswith("git push https://admin:***REDACTED***@h/r")
    for f in (p for p in b.path.rglob("*") if p.is_file()):
        data = f.read_bytes()
        for s in ("RunFolderTok40xyz", "RunFolderJunitPw41", "RunFolderSvcPw42"):
            assert s.encode() not in data, (s, f)
    json.loads((rd / "results.json").read_text())          # still valid JSON after redaction
    assert not list((tmp_path / "stage").glob("*/*")), "the stage is removed after the run"
