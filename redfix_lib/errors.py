"""Exceptions and the CLI exit codes they map to."""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_NODE_BUSY = 3
EXIT_NO_ENGINE = 4          # no Docker engine / node unreachable over ssh


class RedfixError(Exception):
    exit_code = EXIT_ERROR


class ParamsError(RedfixError):
    """Bad input: one or more problems, each naming file, field and reason."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = list(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{f}: {field}: {reason}" for f, field, reason in self.problems]


class NodeBusy(RedfixError):
    exit_code = EXIT_NODE_BUSY


class NodeUnreachable(RedfixError):
    """No ssh client, or the node does not answer over ssh: nothing can run there (exit 4, as for
    a missing engine)."""

    exit_code = EXIT_NO_ENGINE


class EngineUnavailable(RedfixError):
    exit_code = EXIT_NO_ENGINE


class Interrupted(KeyboardInterrupt):
    """redfix was stopped by a signal (SIGINT, SIGTERM, SIGHUP): raised in the main thread so every
    `finally` runs (the harness tree is stopped, the interrupted run is recorded, the bundle saved).
    A KeyboardInterrupt, so no `except Exception` swallows it. Exit status 128 + signal number."""

    def __init__(self, signum: int):
        import signal as _s
        self.signum = signum
        self.signal_name = _s.Signals(signum).name
        super().__init__(self.signal_name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
