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
