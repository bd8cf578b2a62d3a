"""Input validation (recipe names, git refs) and secret redaction.

Everything a params file gives that ends up in an argv element or a path goes
through here first; commands are argv lists, never shell strings.
"""
from __future__ import annotations

import re
from typing import IO, Iterable

RECIPE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]{0,199}$")
CASE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def recipe_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if not RECIPE_RE.fullmatch(name) or ".." in name:
        return (f"invalid recipe name {name!r}: lower-case letters, digits, '.', '_', '-' only, "
                "starting with a letter or digit")
    return None


def ref_problem(ref: object) -> str | None:
    """Git ref check (a subset of git-check-ref-format plus shell-safety)."""
    if not isinstance(ref, str) or not ref:
        return "must be a non-empty string"
    if ref.startswith("-"):
        return f"invalid ref {ref!r}: must not start with '-'"
    if not REF_RE.fullmatch(ref):
        return f"invalid ref {ref!r}: allowed characters are letters, digits, '.', '_', '+', '/', '-'"
    if ".." in ref or "//" in ref or ref.endswith("/") or ref.endswith(".lock") or ref.endswith("."):
        return f"invalid ref {ref!r}: '..', '//', trailing '/', '.' or '.lock' are not allowed"
    return None


def ssh_host_problem(host: object) -> str | None:
    from .gate import host_problem       # one host check for case files, --node and --nodes
    return host_problem(host)


def case_problem(case: object) -> str | None:
    if not isinstance(case, str) or not CASE_RE.fullmatch(case) or ".." in case:
        return f"invalid case id {case!r}: letters, digits, '.', '_', '-' only"
    return None


SECRET_NAME_RE = re.compile(r"(PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH)", re.I)
# key=value / key: value forms where the key looks secret
INLINE_SECRET_RE = re.compile(
    r"(?i)\b([A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)[A-Za-z0-9_.-]*)"
    r"(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',;]+)")
BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
URL_CRED_RE = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")
REDACTED = "***REDACTED***"


def secret_values(env: dict[str, str]) -> list[str]:
    """Values of env vars whose names look secret (long enough to be worth masking)."""
    return sorted({v for k, v in env.items() if SECRET_NAME_RE.search(k) and v and len(v) >= 4},
                  key=len, reverse=True)


def redact_line(line: str, values: Iterable[str] = ()) -> str:
    for v in values:
        if v in line:
            line = line.replace(v, REDACTED)
    line = INLINE_SECRET_RE.sub(lambda m: m.group(1) + m.group(2) + REDACTED, line)
    line = BEARER_RE.sub(lambda m: m.group(1) + " " + REDACTED, line)
    line = URL_CRED_RE.sub(lambda m: m.group(1) + REDACTED + "@", line)
    return line


def redact_stream(src: IO[bytes], dst: IO[bytes], values: Iterable[str] = ()) -> int:
    """Copy src to dst line by line with secrets masked; bounded memory. Returns bytes written."""
    vals = list(values)
    n = 0
    for raw in src:
        # cap pathological lines so memory stays bounded
        text = raw[:65536].decode("utf-8", "replace")
        out = redact_line(text, vals).encode("utf-8")
        dst.write(out)
        n += len(out)
    return n
