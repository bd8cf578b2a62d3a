"""Start a real sshd on a loopback port for tests and benchmarks: generated host and client
keys, an ssh config with test host aliases, and a PATH wrapper so that `ssh` (and docker's
ssh transport) read that config, as they would a user's ~/.ssh/config."""
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def start_sshd(d: Path) -> dict:
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
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

    def stop():
        os.environ["PATH"] = old_path
        proc.terminate()
        proc.wait(timeout=10)
    return {"host": "redfix-test", "dir": d, "port": port, "stop": stop}
