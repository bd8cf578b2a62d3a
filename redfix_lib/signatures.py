"""Signature catalogue (signatures.yaml) and a streaming, bounded-memory log scan.

Pure: takes bytes, returns matches. The scan reads fixed-size blocks, runs ONE combined
regex over each block (C speed, no per-line Python loop) and computes line numbers only
for the lines that match.
"""
from __future__ import annotations

import re
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


@dataclass
class Catalogue:
    version: int
    signatures: list[Signature]
    combined: re.Pattern = field(repr=False, default=None)
    singles: dict = field(repr=False, default_factory=dict)


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
                              counter_examples=tuple(e.get("counter_examples", ()))))
    singles = {s.id: re.compile(s.regex.encode()) for s in sigs}
    # one alternation; group names map a hit back to its signature
    parts = []
    for i, s in enumerate(sigs):
        flags, body = _split_flags(s.regex)
        parts.append(f"(?P<s{i}>{('(?' + flags + ':' + body + ')') if flags else body})")
    combined = re.compile("|".join(parts).encode())
    return Catalogue(version=int(d.get("version", 1)), signatures=sigs, combined=combined, singles=singles)


def _split_flags(rx: str) -> tuple[str, str]:
    m = re.match(r"^\(\?([aiLmsux]+)\)", rx)
    return (m.group(1), rx[m.end():]) if m else ("", rx)


@dataclass
class Hit:
    signature: str
    line_no: int
    line: str


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
        if not chunk and not carry:
            break
        buf = carry + chunk
        if chunk:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                carry = buf if len(buf) < (1 << 20) else b""   # an enormous line: drop its head
                if carry:
                    continue
                buf, carry = buf[:0], b""
            else:
                buf, carry = buf[:cut], buf[cut:]
        else:
            carry = b""
        pos_counted, lines_counted = 0, line_base
        last_line_start = -1
        for m in cat.combined.finditer(buf):
            ls = buf.rfind(b"\n", 0, m.start()) + 1
            if ls == last_line_start:
                continue           # one report per line: all signatures are checked below
            last_line_start = ls
            le = buf.find(b"\n", m.start())
            le = len(buf) if le < 0 else le
            lines_counted += buf.count(b"\n", pos_counted, ls)
            pos_counted = ls
            line = buf[ls:le]
            for s in cat.signatures:
                if per.get(s.id, 0) < MAX_HITS_PER_SIG and cat.singles[s.id].search(line):
                    per[s.id] = per.get(s.id, 0) + 1
                    hits.append(Hit(s.id, lines_counted + 1, line[:500].decode("utf-8", "replace")))
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


def explain_file(path: str) -> dict:
    with open(path, "rb") as f:
        out = explain_hits(scan(f))
    out["file"] = str(path)
    return out
