"""Nodes: where a harness runs. LocalNode now; SshNode shares the contract.

Contract of Node.run: the command is an argv list started as its own process
group with env set/unset, stdout+stderr streamed straight into a log file
(bounded memory however much it prints; LocalNode redacts it on the way,
`streams_redacted`), and on timeout the whole group is killed and the run is
reported as 'timeout'. LocalNode also stops every descendant that left the group
(it is their child subreaper; a marker in their environment) on timeout, at the
end of the run and when redfix is interrupted (status 'interrupted'), giving the
harness REDFIX_KILL_GRACE_S (default 30) between SIGTERM and SIGKILL. Node.lock() is an exclusive
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
from typing import Callable, Iterator

from .errors import NodeBusy

KILL_GRACE_S = 3.0


@dataclass
class ProcResult:
    exit_code: int | None
    status: str            # "exited" | "timeout"
    wall_s: float
    log_path: str
    log_bytes: int
    signal: int | None = None   # set when the process died by a signal (exit_code is then -signal)


def lock_dir() -> Path:
    d = Path(os.environ.get("REDFIX_LOCK_DIR", "/tmp/redfix-locks"))
    d.mkdir(parents=True, exist_ok=True)
    return d


class Node:
    """Abstract node. Subclasses implement run/read_file/docker/facts."""

    name: str = "node"
    # True when run() takes `redact=` and redacts the log while it streams; otherwise the caller
    # points log_path outside outputs/ and redacts the file on the way in
    streams_redacted: bool = False

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

    def glob(self, pattern: str) -> list[str]:
        raise NotImplementedError

    @property
    def is_local(self) -> bool:
        return isinstance(self, LocalNode)

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
            elif kind == "entries":           # e.g. cc-ci's older active-run registry /run/cc-ci-active/*
                found = self.glob(value)
                if found:
                    reasons.append(f"{len(found)} entr{'y' if len(found) == 1 else 'ies'} match {value}: "
                                   + ", ".join(os.path.basename(f) for f in found[:4]))
            elif kind == "lock_held":         # e.g. cc-ci's per-app-domain flocks: held = a live run
                for f in self.glob(value):
                    code, _ = self.capture(["flock", "-n", "-E", "75", f, "true"], timeout_s=30)
                    if code == 75:
                        reasons.append(f"lock {f} is held (a run is in flight)")
                        break
            elif kind == "stack":
                rx = re.compile(value)
                try:
                    for s in self.stacks():
                        if rx.search(s):
                            reasons.append(f"stack {s!r} is deployed (matches {value!r})")
                            break
                except Exception as e:  # noqa: BLE001 - engine down: no engine (exit 4), not "busy" (exit 3)
                    from .errors import EngineUnavailable
                    raise EngineUnavailable(f"node {self.name!r}: the `stack` busy probe {value!r} needs a Docker "
                                            f"engine and none answers ({type(e).__name__}); nothing ran") from None
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
    # the log is redacted while it streams (Node.run's `redact`): nothing unredacted touches disk
    streams_redacted = True

    def __init__(self, name: str = "local", docker_host: str | None = None):
        self.name = name
        self.docker_host = docker_host
        self._client = None

    def run(self, argv, *, log_path, env_set=None, env_unset=None, cwd=None, timeout_s=None,
            redact=None) -> ProcResult:
        """`redact`: a safety.Redactor; the output is piped through it into log_path line by line.
        Every descendant is stopped when the run ends, times out or is interrupted — also those
        that left the process group (setsid, double fork): redfix is their child subreaper and
        they carry the run's marker in their environment."""
        env = dict(os.environ)
        for k in env_unset or []:
            env.pop(k, None)
        env.update(env_set or {})
        marker = f"{os.getpid()}-{time.monotonic_ns()}"
        env[RUN_MARKER] = marker
        make_subreaper()
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        status = "exited"
        code = None
        with open(log_path, "wb") as log:
            before = _children(os.getpid())
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE if redact else log, stderr=subprocess.STDOUT,
                                    env=env, cwd=cwd, start_new_session=True, preexec_fn=_parent_death_term)
            pump = None
            if redact is not None:
                import threading
                pump = threading.Thread(target=_pump, args=(redact, proc.stdout, log), daemon=True)
                pump.start()
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                status = "timeout"
                stop_tree(proc, marker, before, grace=kill_grace())
                code = proc.returncode
            except BaseException:
                # interrupted (SIGINT/SIGTERM in redfix): the harness gets its SIGTERM and grace
                status = "interrupted"
                stop_tree(proc, marker, before, grace=kill_grace())
                raise
            finally:
                # leave no process behind: grandchildren in the group, and those that left it
                stop_tree(proc, marker, before, grace=END_GRACE_S)
                if pump is not None:
                    pump.join(timeout=10)
                    if proc.stdout:
                        proc.stdout.close()
                if status == "timeout":
                    log.write(f"\n[redfix] run killed after timeout of {timeout_s:g}s\n".encode())
                elif status == "interrupted":
                    log.write(b"\n[redfix] run interrupted: redfix was stopped by a signal\n")
        wall = time.monotonic() - t0
        return ProcResult(exit_code=code, status=status, wall_s=wall, log_path=str(log_path),
                          log_bytes=os.path.getsize(log_path))

    def read_file(self, path: str) -> bytes:
        return Path(os.path.expanduser(path)).read_bytes()

    def capture(self, argv, timeout_s=60, max_bytes=8 << 20):
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)
        return r.returncode, r.stdout[:max_bytes]

    def file_exists(self, path: str) -> bool:
        return os.path.exists(path)

    def glob(self, pattern: str) -> list[str]:
        import glob as _g
        return sorted(_g.glob(pattern))

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


# ---- every descendant of a run, found and stopped -------------------------------------------
RUN_MARKER = "REDFIX_RUN_MARKER"
END_GRACE_S = 2.0
_PR_SET_CHILD_SUBREAPER = 36
_subreaper = False


def kill_grace() -> float:
    """Seconds a harness gets between SIGTERM and SIGKILL (cc-ci's harness tears its stacks
    down on SIGTERM before it exits 143)."""
    try:
        return max(0.0, float(os.environ.get("REDFIX_KILL_GRACE_S", "30")))
    except ValueError:
        return 30.0


def make_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux prctl): a grandchild that
    double-forks or whose parent exits is re-parented here instead of to init, so it can be
    found, stopped and reaped. Idempotent; False where unsupported."""
    global _subreaper
    if _subreaper:
        return True
    if not sys.platform.startswith("linux"):
        return False
    _subreaper = _prctl_subreaper(1)
    return _subreaper


def _prctl_subreaper(on: int) -> bool:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, on, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def spawn_daemon(argv: list[str], log_path: str) -> int:
    """Start a service that must outlive redfix (the lab's dockerd) so that it is NOT a descendant:
    an intermediate shell starts it in the background and exits while this process is, for that
    moment, not a child subreaper, so the service is re-parented to init (or to the caller's own
    subreaper) and `stop_descendants` at the end of the command never stops it. Returns its pid."""
    global _subreaper
    was = _subreaper
    if was:
        _prctl_subreaper(0)
    env = {k: v for k, v in os.environ.items() if k != RUN_MARKER}
    env["REDFIX_DAEMON_LOG"] = log_path
    try:
        out = subprocess.run(["sh", "-c", '"$@" </dev/null >>"$REDFIX_DAEMON_LOG" 2>&1 & echo $!', "sh", *argv],
                             env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                             start_new_session=True, check=True).stdout
    finally:
        if was:
            _subreaper = _prctl_subreaper(1)
    return int(out.strip())


_PR_SET_PDEATHSIG = 1


def _parent_death_term() -> None:
    """In the harness (between fork and exec): SIGTERM it when redfix dies without a chance to
    clean up (SIGKILL, OOM), so it still tears down. Its escaped descendants are then only
    found by the next run's busy probes."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, state) for every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                rest = f.read().rsplit(b")", 1)[1].split()
            out[int(d)] = (int(rest[1]), int(rest[2]), rest[0].decode())
        except (OSError, IndexError, ValueError):
            continue
    return out


def _children(pid: int) -> set[int]:
    return {p for p, (pp, _, _) in _proc_table().items() if pp == pid}


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def run_processes(root: int, marker: str | None = None, exclude: set[int] | frozenset = frozenset()) -> set[int]:
    """Live processes of a run: the tree under `root`, its process group, our own re-parented
    orphans that were not our children before the run (`exclude`), and anything carrying the
    run's marker in its environment; zombies and this process excluded."""
    table = _proc_table()
    me = os.getpid()
    kids: dict[int, list[int]] = {}
    for p, (pp, _, _) in table.items():
        kids.setdefault(pp, []).append(p)
    found: set[int] = set()
    todo = [root] + [p for p in kids.get(me, []) if p not in exclude and p != root]
    while todo:
        p = todo.pop()
        if p in found or p == me:
            continue
        found.add(p)
        todo.extend(kids.get(p, []))
    found |= {p for p, (_, pg, _) in table.items() if pg == root}
    if marker:
        mk = f"{RUN_MARKER}={marker}".encode()
        found |= {p for p in table if p not in found and p != me and _has_marker(p, mk)}
    return {p for p in found if p in table and table[p][2] != "Z" and p != me}


def _reap(pids) -> None:
    for p in pids:
        try:
            os.waitpid(p, os.WNOHANG)
        except (ChildProcessError, OSError):
            pass


def _signal_all(pids, sig) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_tree(proc: subprocess.Popen, marker: str | None, exclude: set[int], grace: float) -> int:
    """SIGTERM the run's processes, give the leader `grace` seconds to exit (its own teardown;
    once it is gone the rest get END_GRACE_S), then SIGKILL whatever of the run is left, again
    until nothing remains, and reap what was re-parented to us. Returns how many were signalled."""
    exclude = set(exclude)
    own = {proc.pid}           # the leader is Popen's to reap (its exit status), never ours

    def alive() -> set[int]:
        left = run_processes(proc.pid, marker, exclude)
        if proc.poll() is None:
            left.add(proc.pid)
        return left
    procs = alive()
    total = set(procs)
    if procs:
        _signal_all(procs, signal.SIGTERM)
        deadline = time.monotonic() + grace
        leader_gone = None
        while time.monotonic() < deadline:
            _reap(total - own)
            if proc.poll() is not None:
                if not alive():
                    break
                leader_gone = leader_gone or time.monotonic()
                if time.monotonic() - leader_gone > END_GRACE_S:
                    break
            time.sleep(0.05)
        total |= _kill_left(alive, lambda k: _reap((total | k) - own))
        try:
            proc.wait(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    # orphans of the run that ended on their own were re-parented to us: reap the zombies
    me = os.getpid()
    _reap((total - own) | {p for p, (pp, _, st) in _proc_table().items()
                   if pp == me and st == "Z" and p not in exclude and p != proc.pid})
    return len(total)


def _pump(redact, src, log) -> None:
    """Harness output -> redactor -> log file, line by line (the reader thread of LocalNode.run)."""
    try:
        redact.stream(src, log, flush=True)
    except (OSError, ValueError):
        pass


def make_node(spec, override_host: str | None = None) -> Node:
    """Build the node a case names. For ssh nodes the host comes from --node / REDFIX_NODE
    (an alias of the user's ~/.ssh/config) before the case file's value."""
    if spec.kind == "local":
        return LocalNode(spec.name, spec.docker_host)
    host = override_host or os.environ.get("REDFIX_NODE") or spec.host
    if not host:
        from .errors import ParamsError
        raise ParamsError([("<node>", "node.host", "an ssh node needs a host: pass --node HOST (an alias from "
                                                   "~/.ssh/config) or set REDFIX_NODE")])
    opts = os.environ.get("REDFIX_SSH_OPTS", "").split() if os.environ.get("REDFIX_SSH_OPTS") else []
    return SshNode(spec.name if not override_host else override_host, host, spec.docker_host, opts)


# The remote side of SshNode.run, a POSIX sh script (no python needed on the node).
# sshd runs the command as a session and process-group leader, so `setsid` would fork and
# return at once (exit 0, the harness orphaned). Instead this shell, already the group leader,
# records its pgid, starts the harness as its child, and then execs `cat` on a fifo: `cat` never
# reaps, so when the harness ends it stays a zombie whose raw wait status the kernel shows in
# /proc/<pid>/stat (field 52). A watcher (same group) copies that status to a file, releases
# `cat`, and kills whatever the harness left in the group. The harness's parent is this shell
# (never pid 1), and its exit status or death by a signal is known exactly.
_REMOTE_WRAPPER = r"""t=$1; shift
echo $$ > "$t.pgid"
mkfifo "$t.fifo" || exit 125
"$@" </dev/null &
c=$!
echo $c > "$t.child"
(
  while :; do
    s=$(cat /proc/$c/stat 2>/dev/null) || { s=; break; }
    s=${s##*") "}
    case $s in Z*) break;; esac
    sleep 0.1
  done
  set -- $s
  if [ $# -ge 50 ]; then shift 49; echo "$1" > "$t.status.tmp" && mv "$t.status.tmp" "$t.status"; fi
  echo done > "$t.fifo"
  sleep 0.2
  kill -KILL -- -$(cat "$t.pgid") 2>/dev/null
) </dev/null &
exec cat "$t.fifo" >/dev/null
"""


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def decode_wait_status(raw: int) -> tuple[int, int | None]:
    """(exit_code, signal) from a raw waitpid status: exit_code is -signal for a death by signal,
    the way subprocess reports it locally."""
    sig = raw & 0x7F
    if sig:
        return -sig, sig
    return (raw >> 8) & 0xFF, None


class SshNode(Node):
    """A node reached through the system OpenSSH client (honours ~/.ssh/config, host keys and the
    agent; BatchMode=yes so it never prompts). Same contract as LocalNode: the remote command runs
    in its own process group (the ssh session's, see _REMOTE_WRAPPER), env set/unset, output
    streamed to a local log file, its exit status or signal reported exactly, and the REMOTE group
    is killed on timeout and after every run (its pgid is kept in a remote file)."""

    def __init__(self, name: str, host: str, docker_host: str | None = None, ssh_opts: list[str] | None = None,
                 connect_timeout: int = 10):
        from .safety import ssh_host_problem
        if p := ssh_host_problem(host):
            from .errors import ParamsError
            raise ParamsError([("<node>", "host", p)])
        self.name, self.host = name, host
        self.docker_host = docker_host
        self.ssh_opts = list(ssh_opts or [])
        self.connect_timeout = connect_timeout
        self._client = None

    def ssh_argv(self) -> list[str]:
        return ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "ServerAliveInterval=15", *self.ssh_opts, self.host, "--"]

    @staticmethod
    def _remote(argv: list[str]) -> str:
        import shlex
        return " ".join(shlex.quote(a) for a in argv)

    def _check_ssh(self, code: int, err: bytes) -> None:
        if code == 255:
            from .errors import NodeUnreachable
            msg = err.decode("utf-8", "replace").strip().splitlines()
            raise NodeUnreachable(f"ssh to {self.host!r} failed: {msg[-1] if msg else 'exit 255'}")

    def capture(self, argv, timeout_s=60, max_bytes=8 << 20):
        try:
            r = subprocess.run(self.ssh_argv() + [self._remote(argv)], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            from .errors import NodeUnreachable
            raise NodeUnreachable(f"ssh to {self.host!r}: no answer within {timeout_s:g}s") from None
        self._check_ssh(r.returncode, r.stderr)
        return r.returncode, r.stdout[:max_bytes]

    def run(self, argv, *, log_path, env_set=None, env_unset=None, cwd=None, timeout_s=None) -> ProcResult:
        import secrets as _s
        base = f"/tmp/redfix-{_s.token_hex(6)}"
        envpart = ["env"] + [x for k in (env_unset or []) for x in ("-u", k)] + [f"{k}={v}" for k, v in (env_set or {}).items()]
        remote = (f"cd {self._remote([cwd])} && " if cwd else "") + \
            "exec " + self._remote(["sh", "-c", _REMOTE_WRAPPER, "redfix", base, *envpart, *argv])
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        status = "exited"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(self.ssh_argv() + [remote], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                status = "timeout"
                self._kill_remote(base, "TERM")
                time.sleep(KILL_GRACE_S)
                self._kill_remote(base, "KILL")
                _kill_group(proc.pid, proc)
                code = proc.returncode
        raw = self._finish_remote(base)          # reads the wait status, kills the group, removes files
        wall = time.monotonic() - t0
        sig = None
        if status == "timeout":
            code = None
            with open(log_path, "ab") as log:
                log.write(f"\n[redfix] run killed after timeout of {timeout_s:g}s (remote process group on {self.host})\n".encode())
        elif raw is not None:
            code, sig = decode_wait_status(raw)
            if sig:
                with open(log_path, "ab") as log:
                    log.write(f"\n[redfix] remote process killed by signal {sig} ({_signame(sig)})\n".encode())
        else:
            with open(log_path, "rb") as f:
                tail = f.read()[-400:].decode("utf-8", "replace").strip().splitlines()
            from .errors import NodeUnreachable
            if code == 255:
                raise NodeUnreachable(f"ssh to {self.host!r} failed: {tail[-1] if tail else 'exit 255'}")
            raise NodeUnreachable(f"ssh to {self.host!r}: the remote command's exit status could not be "
                                  f"read (ssh exit {code}): {tail[-1] if tail else 'no output'}")
        return ProcResult(exit_code=code, status=status, wall_s=wall, log_path=str(log_path),
                          log_bytes=os.path.getsize(log_path), signal=sig)

    def _finish_remote(self, base: str) -> int | None:
        """After a run: the harness's raw wait status (None when none was recorded), with the remote
        group killed and the run's files removed."""
        script = (f"cat {base}.status 2>/dev/null; p=$(cat {base}.pgid 2>/dev/null) && "
                  f"kill -KILL -- -$p 2>/dev/null; rm -f {base}.pgid {base}.child {base}.fifo {base}.status "
                  f"{base}.status.tmp; true")
        try:
            r = subprocess.run(self.ssh_argv() + [script], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            return None
        out = r.stdout.decode("ascii", "replace").strip()
        return int(out) if out.isdigit() else None

    def _kill_remote(self, base: str, sig: str) -> None:
        script = f"p=$(cat {base}.pgid 2>/dev/null) && kill -{sig} -- -$p 2>/dev/null; true"
        try:
            subprocess.run(self.ssh_argv() + [script], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def read_file(self, path: str) -> bytes:
        code, out = self.capture(["cat", "--", path])
        if code != 0:
            raise FileNotFoundError(path)
        return out

    def file_exists(self, path: str) -> bool:
        return self.capture(["test", "-e", path])[0] == 0

    def glob(self, pattern: str) -> list[str]:
        import fnmatch
        d, pat = os.path.split(pattern)
        code, out = self.capture(["ls", "-1", "--", d or "."])
        return sorted(os.path.join(d, n) for n in out.decode("utf-8", "replace").split("\n") if n and fnmatch.fnmatch(n, pat))

    def process_cmdlines(self) -> list[tuple[int, str]]:
        code, out = self.capture(["ps", "-eo", "pid=,args="])
        rows = []
        for line in out.decode("utf-8", "replace").splitlines():
            pid, _, cmd = line.strip().partition(" ")
            if pid.isdigit() and "ps -eo pid=,args=" not in cmd:
                rows.append((int(pid), cmd.strip()))
        return rows

    def docker_url(self) -> str:
        """ssh://user@alias:port with user and port resolved by `ssh -G` from the user's config:
        the docker SDK passes -p explicitly (22 by default), which would override a configured Port."""
        if self.docker_host:
            return self.docker_host
        r = subprocess.run(["ssh", *self.ssh_opts, "-G", self.host], capture_output=True, text=True, timeout=30)
        conf = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
        return f"ssh://{conf.get('user', 'root')}@{self.host}:{conf.get('port', '22')}"

    def docker(self):
        if self._client is None:
            import docker
            self._client = docker.DockerClient(base_url=self.docker_url(), use_ssh_client=True, timeout=120)
        return self._client

    def facts(self) -> dict:
        f = {"node": self.name, "kind": "ssh", "host": self.host}
        try:
            f["hostname"] = self.capture(["hostname"])[1].decode().strip()
            v = self.docker().version()
            f["docker_version"] = v.get("Version")
        except Exception as e:  # noqa: BLE001
            f["docker_version"] = f"unavailable: {type(e).__name__}: {e}"
        return f


def descendants() -> set[int]:
    """Every live process below this one."""
    me = os.getpid()
    table = _proc_table()
    kids: dict[int, list[int]] = {}
    for p, (pp, _, _) in table.items():
        kids.setdefault(pp, []).append(p)
    found, todo = set(), list(kids.get(me, []))
    while todo:
        p = todo.pop()
        if p not in found:
            found.add(p)
            todo.extend(kids.get(p, []))
    return {p for p in found if table[p][2] != "Z"}


def _kill_left(alive: Callable[[], set[int]], reap: Callable[[set[int]], None]) -> set[int]:
    """SIGKILL what `alive()` still returns, calling `reap(killed so far)` between rounds (at most 100
    rounds: a process that forks faster than it is killed cannot hold redfix forever). Returns every
    pid it killed."""
    killed: set[int] = set()
    for _ in range(100):
        left = alive()
        if not left:
            break
        killed |= left
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.02)
        reap(killed)
    return killed


def stop_descendants(grace: float = END_GRACE_S, keep: set[int] | frozenset = frozenset()) -> int:
    """Stop every process still below this one (children and orphans re-parented to it as child
    subreaper) except `keep` (what was there before): SIGTERM, `grace` seconds, SIGKILL, reap.
    What a command calls on its way out."""
    me = os.getpid()

    def below() -> set[int]:
        return descendants() - set(keep)

    procs = below()
    total = set(procs)
    if procs:
        _signal_all(procs, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and below():
            _reap(total)
            time.sleep(0.05)
        total |= _kill_left(below, lambda k: _reap(total | k))
    _reap(total | {p for p, (pp, _, st) in _proc_table().items() if pp == me and st == "Z" and p not in keep})
    return len(total)
