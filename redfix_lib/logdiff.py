"""Failing-vs-passing log diff: normalised lines present in failing runs and absent from
passing runs of the same case, ranked by how many failing runs show them. Pure."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

MASKS = [
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?Z?"), "<TS>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}\b"), "<T>"),
    (re.compile(r"\b\d{8}T\d{6}Z?(-[0-9a-f]+)?\b"), "<RUNID>"),
    (re.compile(r"\b[a-z0-9]{1,4}-[0-9a-f]{6}(?=[._])"), "<DOMAIN>"),
    (re.compile(r"\b[0-9a-f]{12,64}\b"), "<ID>"),
    (re.compile(r"\b[a-z0-9]{25}\b"), "<ID>"),
    (re.compile(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b"), "<ADDR>"),
    (re.compile(r"0x[0-9a-f]+"), "<HEX>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s)\b"), "<DUR>"),
    (re.compile(r"\bpid \d+|\b\d{4,}\b"), "<N>"),
]
MAX_LINES = 200_000


def normalise(line: str) -> str:
    line = line.strip()
    for rx, rep in MASKS:
        line = rx.sub(rep, line)
    return line


def line_set(path: Path) -> set[str]:
    out = set()
    with open(path, "rb") as f:
        for i, raw in enumerate(f):
            if i >= MAX_LINES:
                break
            s = normalise(raw[:2000].decode("utf-8", "replace"))
            if s:
                out.add(s)
    return out


def diff(failing: list[Path], passing: list[Path], top: int = 20) -> list[dict]:
    if not failing or not passing:
        return []          # nothing to contrast with: every line would "differ"
    seen_pass: set[str] = set()
    for p in passing:
        seen_pass |= line_set(p)
    cnt: Counter = Counter()
    for f in failing:
        cnt.update(line_set(f) - seen_pass)
    ranked = sorted(cnt.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"line": k, "failing_runs": v, "of": len(failing)} for k, v in ranked]
