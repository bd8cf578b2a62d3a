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
        if REQUIRE_ENGINE:
            pytest.fail(f"REDFIX_REQUIRE_ENGINE=1 but {why}")
        pytest.skip(why)
    import docker
    return docker.from_env(timeout=120)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on a loopback port with a generated key pair and known_hosts.
    Yields (host alias, ssh config path). `ssh`/docker-over-ssh find the alias through a PATH
    wrapper that adds `-F <config>`, exactly as a user's ~/.ssh/config would."""
    import shutil
    import socket
    import subprocess
    import time
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd_bin) or not shutil.which("ssh"):
        if REQUIRE_ENGINE:
            pytest.fail("REDFIX_REQUIRE_ENGINE=1 but openssh-server/client are not installed")
        pytest.skip("no sshd")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key", "other_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    Path("/run/sshd").mkdir(exist_ok=True)
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d / 'host_key'}
PidFile {d / 'sshd.pid'}
AuthorizedKeysFile {d / 'authorized_keys'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
AcceptEnv none
""")
    hostkey = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {hostkey[0]} {hostkey[1]}\n")
    (d / "empty_known_hosts").write_text("")
    common = f"""  HostName 127.0.0.1
  Port {port}
  User root
  IdentitiesOnly yes
  StrictHostKeyChecking yes
  LogLevel ERROR
"""
    (d / "ssh_config").write_text(
        f"Host redfix-test\n{common}  IdentityFile {d / 'client_key'}\n  UserKnownHostsFile {d / 'known_hosts'}\n\n"
        f"Host redfix-badkey\n{common}  IdentityFile {d / 'other_key'}\n  UserKnownHostsFile {d / 'known_hosts'}\n\n"
        f"Host redfix-unknownhost\n{common}  IdentityFile {d / 'client_key'}\n  UserKnownHostsFile {d / 'empty_known_hosts'}\n\n"
        f"Host redfix-down\n  HostName 127.0.0.1\n  Port 1\n  User root\n  IdentityFile {d / 'client_key'}\n"
        f"  UserKnownHostsFile {d / 'known_hosts'}\n  ConnectTimeout 3\n")
    bindir = d / "bin"
    bindir.mkdir()
    real_ssh = shutil.which("ssh")
    (bindir / "ssh").write_text(f"#!/bin/sh\nexec {real_ssh} -F {d / 'ssh_config'} \"$@\"\n")
    os.chmod(bindir / "ssh", 0o755)
    proc = subprocess.Popen([sshd_bin, "-D", "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")])
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    old_path = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}:{old_path}"
    yield {"host": "redfix-test", "dir": d, "port": port}
    os.environ["PATH"] = old_path
    proc.terminate()
    proc.wait(timeout=10)
