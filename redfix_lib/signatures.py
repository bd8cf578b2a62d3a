"""Signature catalogue (signatures.yaml) and a streaming, bounded-memory log scan.

Pure: takes bytes, returns matches. The scan reads fixed-size blocks, lower-cases each
block once and finds every signature's literal substrings with bytes.find (memmem speed,
no per-line Python loop); only the few lines holding a literal are tested against the
regexes, and line numbers are computed only for those lines.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Iterable

import yaml

CATALOGUE = Path(__file__).with_name("signatures.yaml")
BLOCK = 4 << 20
MAX_HITS_PER_SIG = 20
CAUSES = ("recipe", "test", "harness", "warm-machinery", "load", "infrastructure", "unknown")


@dataclass(frozen=True)
class Signature:
    id: str
    regex: str
    cause: str
    sub_cause: str
    precedence: int
    explanation: str
    fix_hint: str
    examples: tuple = ()
    counter_examples: tuple = ()
    literals: tuple = ()


@dataclass
class Catalogue:
    version: int
    signatures: list[Signature]
    singles: dict = field(repr=False, default_factory=dict)
    literals: tuple = ()       # every distinct literal (bytes), for the prefilter


@lru_cache(maxsize=4)
def load_catalogue(path: str = str(CATALOGUE)) -> Catalogue:
    d = yaml.safe_load(Path(path).read_text())
    sigs = []
    for e in d["signatures"]:
        if e["cause"] not in CAUSES:
            raise ValueError(f"{path}: signature {e['id']}: unknown cause {e['cause']!r}")
        sigs.append(Signature(id=e["id"], regex=e["regex"], cause=e["cause"], sub_cause=e["sub_cause"],
                              precedence=int(e["precedence"]), explanation=e["explanation"],
                              fix_hint=e["fix_hint"], examples=tuple(e.get("examples", ())),
                              counter_examples=tuple(e.get("counter_examples", ())),
                              literals=tuple(x.lower() for x in e.get("literals", ()))))
        if not sigs[-1].literals:
            raise ValueError(f"{path}: signature {e['id']}: needs at least one literal")
    singles = {s.id: re.compile(s.regex.encode()) for s in sigs}
    lits = tuple(sorted({x.encode() for s in sigs for x in s.literals}))
    return Catalogue(version=int(d.get("version", 1)), signatures=sigs, singles=singles, literals=lits)


@dataclass
class Hit:
    signature: str
    line_no: int
    line: str


def _candidate_line_starts(buf: bytes, low: bytes, literals: tuple) -> list[int]:
    starts = set()
    for lit in literals:
        i = low.find(lit)
        while i >= 0:
            ls = buf.rfind(b"\n", 0, i) + 1
            starts.add(ls)
            nl = buf.find(b"\n", i)
            if nl < 0:
                break
            i = low.find(lit, nl + 1)      # one hit per line per literal is enough
    return sorted(starts)


def scan(stream: IO[bytes], cat: Catalogue | None = None) -> list[Hit]:
    """Every line matching any signature (at most MAX_HITS_PER_SIG kept per signature).
    A line matching several signatures is reported for each of them."""
    cat = cat or load_catalogue()
    hits: list[Hit] = []
    per: dict[str, int] = {}
    line_base = 0          # lines before the current block
    carry = b""
    while True:
        chunk = stream.read(BLOCK)
        buf = carry + chunk
        if not buf:
            break
        if chunk:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:                       # no newline yet: keep reading (bounded)
                carry = buf if len(buf) < (1 << 20) else b""
                continue
            buf, carry = buf[:cut], buf[cut:]
        else:
            carry = b""
        low = buf.lower()
        pos_counted, lines_counted = 0, line_base
        for ls in _candidate_line_starts(buf, low, cat.literals):
            le = buf.find(b"\n", ls)
            le = len(buf) if le < 0 else le
            line = buf[ls:le]
            matched = [s for s in cat.signatures
                       if per.get(s.id, 0) < MAX_HITS_PER_SIG and cat.singles[s.id].search(line)]
            if not matched:
                continue
            lines_counted += buf.count(b"\n", pos_counted, ls)
            pos_counted = ls
            text = line[:500].decode("utf-8", "replace")
            for s in matched:
                per[s.id] = per.get(s.id, 0) + 1
                hits.append(Hit(s.id, lines_counted + 1, text))
        line_base += buf.count(b"\n")
        if not chunk:
            break
    return hits


def explain_hits(hits: Iterable[Hit], cat: Catalogue | None = None) -> dict:
    cat = cat or load_catalogue()
    by_id = {s.id: s for s in cat.signatures}
    hits = sorted(hits, key=lambda h: (-by_id[h.signature].precedence, h.line_no, h.signature))
    matches = [{"signature": h.signature, "line": h.line_no, "text": h.line,
                "cause": by_id[h.signature].cause, "sub_cause": by_id[h.signature].sub_cause,
                "precedence": by_id[h.signature].precedence} for h in hits]
    hint = {"cause": "unknown", "sub_cause": None, "signature": None}
    for m in matches:
        if m["cause"] != "unknown":
            hint = {"cause": m["cause"], "sub_cause": m["sub_cause"], "signature": m["signature"]}
            break
    else:
        if matches:
            hint = {"cause": "unknown", "sub_cause": matches[0]["sub_cause"], "signature": matches[0]["signature"]}
    return {"catalogue_version": cat.version, "matches": matches, "cause_hint": hint}


def scan_file(path: str, cat: Catalogue | None = None) -> list[Hit]:
    """scan() for a file on disk. Where grep exists, it does the literal prefilter (fixed strings,
    streaming, in C) and Python tests only the lines it prints; same result as scan()."""
    cat = cat or load_catalogue()
    grep = shutil.which("grep")
    if not grep:
        with open(path, "rb") as f:
            return scan(f, cat)
    with tempfile.NamedTemporaryFile("wb", suffix=".lits") as lf:
        lf.write(b"\n".join(cat.literals) + b"\n")
        lf.flush()
        proc = subprocess.Popen([grep, "-a", "-n", "-i", "-F", "-f", lf.name, "--", str(path)],
                                stdout=subprocess.PIPE, env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "")})
        hits: list[Hit] = []
        per: dict[str, int] = {}
        for raw in proc.stdout:
            num, _, line = raw.rstrip(b"\n").partition(b":")
            line = line[:65536]
            for s in cat.signatures:
                if per.get(s.id, 0) < MAX_HITS_PER_SIG and cat.singles[s.id].search(line):
                    per[s.id] = per.get(s.id, 0) + 1
                    hits.append(Hit(s.id, int(num), line[:500].decode("utf-8", "replace")))
        proc.wait()
        if proc.returncode not in (0, 1):
            with open(path, "rb") as f:
                return scan(f, cat)
    return hits


def explain_file(path: str) -> dict:
    out = explain_hits(scan_file(path))
    out["file"] = str(path)
    return out
