"""Nodes: where a harness runs. LocalNode now; SshNode shares the contract.

Contract of Node.run: the command is an argv list started as its own process
group with env set/unset, stdout+stderr streamed straight into a log file
(bounded memory however much it prints), and on timeout the whole group is
killed and the run is reported as 'timeout'. Node.lock() is an exclusive
per-node lock; Node.busy_reasons() evaluates the configured busy probes.
"""
from __future__ import annotations

import fcntl
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import NodeBusy

KILL_GRACE_S = 3.0


@dataclass
class ProcResult:
    exit_code: int | None
    status: str            # "exited" | "timeout"
    wall_s: float
    log_path: str
    log_bytes: int


def lock_dir() -> Path:
    d = Path(os.environ.get("REDFIX_LOCK_DIR", "/tmp/redfix-locks"))
    d.mkdir(parents=True, exist_ok=True)
    return d


class Node:
    """Abstract node. Subclasses implement run/read_file/docker/facts."""

    name: str = "node"

    def run(self, argv: list[str], *, log_path: str | os.PathLike, env_set: dict[str, str] | None = None,
            env_unset: list[str] | None = None, cwd: str | None = None,
            timeout_s: float | None = None) -> ProcResult:
        raise NotImplementedError

    def read_file(self, path: str) -> bytes:
        raise NotImplementedError

    def capture(self, argv: list[str], timeout_s: float = 60, max_bytes: int = 8 << 20) -> tuple[int, bytes]:
        """Run a short command, return (exit code, stdout) (bounded); for probes, not harness runs."""
        raise NotImplementedError

    def docker(self):
        raise NotImplementedError

    def facts(self) -> dict:
        raise NotImplementedError

    def process_cmdlines(self) -> list[tuple[int, str]]:
        raise NotImplementedError

    def file_exists(self, path: str) -> bool:
        raise NotImplementedError

    # ---- lock ---------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive per-node lock: two investigations never share a node."""
        path = lock_dir() / f"node-{self.name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = Path(path).read_text(errors="replace").strip() or "unknown"
                raise NodeBusy(f"node {self.name!r} is locked by another redfix investigation "
                               f"({holder}); lock file {path}")
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}".encode())
            yield
        finally:
            os.close(fd)   # releases the flock

    # ---- busy probes ----------------------------------------------------
    def busy_reasons(self, probes: list[dict]) -> list[str]:
        reasons: list[str] = []
        for p in probes:
            (kind, value), = p.items()
            if kind == "process":
                rx = re.compile(value)
                for pid, cmd in self.process_cmdlines():
                    if rx.search(cmd):
                        reasons.append(f"process {pid} matches {value!r}: {cmd[:160]}")
                        break
            elif kind == "lock_file":
                if self.file_exists(value):
                    reasons.append(f"lock file {value} exists")
            elif kind == "stack":
                rx = re.compile(value)
                try:
                    for s in self.stacks():
                        if rx.search(s):
                            reasons.append(f"stack {s!r} is deployed (matches {value!r})")
                            break
                except Exception as e:  # engine down: cannot prove quiet
                    reasons.append(f"cannot list stacks to check {value!r}: {e}")
        return reasons

    def stacks(self) -> list[str]:
        client = self.docker()
        names = {s.attrs["Spec"]["Labels"].get("com.docker.stack.namespace")
                 for s in client.services.list()}
        return sorted(n for n in names if n)

    def ensure_quiet(self, probes: list[dict]) -> None:
        reasons = self.busy_reasons(probes)
        if reasons:
            raise NodeBusy(f"node {self.name!r} is busy, refusing to start: " + "; ".join(reasons))


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


class LocalNode(Node):
    def __init__(self, name: str = "local", docker_host: str | None = None):
        self.name = name
        self.docker_host = docker_host
        self._client = None

    def run(self, argv, *, log_path, env_set=None, env_unset=None, cwd=None, timeout_s=None) -> ProcResult:
        env = dict(os.environ)
        for k in env_unset or []:
            env.pop(k, None)
        env.update(env_set or {})
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        status = "exited"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=cwd, start_new_session=True)
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                status = "timeout"
                _kill_group(proc.pid, proc)
                code = proc.returncode
            finally:
                # leave no process behind: grandchildren stay in the group after the leader exits
                _kill_group(proc.pid, None)
        wall = time.monotonic() - t0
        if status == "timeout":
            with open(log_path, "ab") as log:
                log.write(f"\n[redfix] run killed after timeout of {timeout_s:g}s\n".encode())
        return ProcResult(exit_code=code, status=status, wall_s=wall, log_path=str(log_path),
                          log_bytes=os.path.getsize(log_path))

    def read_file(self, path: str) -> bytes:
        return Path(os.path.expanduser(path)).read_bytes()

    def capture(self, argv, timeout_s=60, max_bytes=8 << 20):
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)
        return r.returncode, r.stdout[:max_bytes]

    def file_exists(self, path: str) -> bool:
        return os.path.exists(path)

    def process_cmdlines(self) -> list[tuple[int, str]]:
        skip = _ancestors()
        out = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) in skip:
                continue
            try:
                raw = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                out.append((int(d.name), raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()))
        return out

    def docker(self):
        if self._client is None:
            import docker
            if self.docker_host:
                self._client = docker.DockerClient(base_url=self.docker_host, timeout=120)
            else:
                self._client = docker.from_env(timeout=120)
        return self._client

    def facts(self) -> dict:
        f = {"node": self.name, "kind": "local", "hostname": socket.gethostname(),
             "platform": platform.platform(), "python": sys.version.split()[0]}
        try:
            v = self.docker().version()
            f["docker_version"] = v.get("Version")
            f["docker_api"] = v.get("ApiVersion")
        except Exception as e:
            f["docker_version"] = f"unavailable: {type(e).__name__}"
        return f


def _kill_group(pgid: int, proc: subprocess.Popen | None) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        if proc is None:
            return
    if proc is not None:
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc is not None:
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass


def make_node(spec, override_host: str | None = None) -> Node:
    """Build the node a case names. SSH nodes arrive with their own issue."""
    if spec.kind == "local":
        return LocalNode(spec.name, spec.docker_host)
    from .errors import RedfixError
    raise RedfixError(f"node kind {spec.kind!r} is not available in this version (only 'local')")
