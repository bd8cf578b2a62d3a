"""Exceptions and the CLI exit codes they map to."""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_NODE_BUSY = 3
EXIT_NO_ENGINE = 4


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
    exit_code = EXIT_ERROR


class EngineUnavailable(RedfixError):
    exit_code = EXIT_NO_ENGINE
