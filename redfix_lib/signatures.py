"""Signature catalogue (signatures.yaml) and a bounded-memory log scan.

Pure: (text | byte stream | file, catalogue) -> matches; no engine, no clock, no subprocess.

The catalogue is organised by failure FAMILY (image, data, startup, readiness, dirty-node, git,
host, swarm, secrets-config, deploy, warm, harness, test, compose). Each entry names the classes a line is
consistent with and a confidence: `decisive` (the line alone decides its one class) or `hint`
(it cannot; `decided_by` names the evidence that would). explain_hits never answers a confident
class from hint lines.

Lines that are printed source code are not events: pytest traceback source lines (`>   ...`,
indented statements), Python traceback source lines (after `File "...", line N`), `set -x`
echoes (`+ cmd`), shell prompts and comments. pytest's `E   ...` lines are the exception text and
do count.

Bounded memory on any input shape: the stream is read in BLOCK-sized pieces, only the first
MAX_LINE bytes of a line are matched (the rest of an over-long line is skipped without being
kept), and at most `max_bytes` are read (MAX_BYTES by default), so a 200 MB single-line file or
an endless stream (/dev/zero) costs a few MiB and ends. The literal prefilter (one Aho-Corasick
pass over the lower-cased block, ahocorasick-rs; a bytes.find loop when it is missing) keeps the
regexes to the few lines holding a literal. No subprocess: nothing can outlive the caller.
"""
from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Iterable

import yaml

try:        # Aho-Corasick in Rust: all literals in one pass (~40x the per-literal bytes.find loop)
    import ahocorasick_rs
except ImportError:             # pragma: no cover - the pure fallback gives the same matches
    ahocorasick_rs = None

CATALOGUE = Path(__file__).with_name("signatures.yaml")
BLOCK = 1 << 20                 # bytes read at a time
MAX_LINE = 64 << 10             # bytes of one line that are matched; the rest is skipped
MAX_BYTES = 512 << 20           # default cap on the bytes read from one input
MAX_HITS_PER_SIG = 20
CLASSES = ("recipe", "test", "harness", "load", "infrastructure", "warm")
CONFIDENCES = ("decisive", "hint")
FAMILIES = ("image", "deploy", "swarm", "warm", "data", "startup", "exception", "readiness", "dirty-node",
            "secrets-config", "git", "host", "harness", "test", "compose")
_FIELDS = {"id", "family", "regex", "literals", "classes", "confidence", "decided_by", "lead", "sub_cause",
           "precedence", "explanation", "fix_hint", "examples", "counter_examples"}


@dataclass(frozen=True)
class Signature:
    id: str
    regex: str
    family: str
    classes: tuple
    confidence: str
    decided_by: str
    lead: str
    sub_cause: str
    precedence: int
    explanation: str
    fix_hint: str
    examples: tuple = ()
    counter_examples: tuple = ()
    literals: tuple = ()

    @property
    def cause(self) -> str:
        """The class the classifier may corroborate with other kinds of evidence ("unknown": a
        symptom that proposes no cause). A signature alone is never more than a hint there."""
        return self.lead

    @property
    def decisive(self) -> bool:
        return self.confidence == "decisive"


@dataclass
class Catalogue:
    version: int
    signatures: list[Signature]
    singles: dict = field(repr=False, default_factory=dict)
    literals: tuple = ()       # every distinct literal (bytes), for the prefilter
    by_literal: dict = field(repr=False, default_factory=dict)   # literal -> tuple of signature indexes
    automaton: object = field(repr=False, default=None)          # Aho-Corasick over `literals`
    by_index: tuple = field(repr=False, default=())              # literal index -> signature indexes


def _bad(path, sid, why):
    return ValueError(f"{path}: signatures: {sid}: {why}")


@lru_cache(maxsize=4)
def load_catalogue(path: str = str(CATALOGUE)) -> Catalogue:
    d = yaml.safe_load(Path(path).read_text())
    sigs = []
    for e in d["signatures"]:
        sid = e.get("id", "?")
        extra = set(e) - _FIELDS
        if extra:
            raise _bad(path, sid, f"unknown field(s) {sorted(extra)}")
        classes = tuple(e.get("classes") or ())
        if not classes or any(c not in CLASSES for c in classes):
            raise _bad(path, sid, f"classes must be a non-empty list of {CLASSES}")
        conf = e.get("confidence")
        if conf not in CONFIDENCES:
            raise _bad(path, sid, f"confidence must be one of {CONFIDENCES}")
        if conf == "decisive" and len(classes) != 1:
            raise _bad(path, sid, "a decisive signature names exactly one class")
        if conf == "hint" and not e.get("decided_by"):
            raise _bad(path, sid, "a hint needs decided_by (the evidence that would decide)")
        if e.get("family") not in FAMILIES:
            raise _bad(path, sid, f"family must be one of {FAMILIES}")
        lead = e.get("lead", classes[0])
        if lead not in classes + ("unknown",):
            raise _bad(path, sid, "lead must be one of its classes or unknown")
        lits = tuple(x.lower() for x in e.get("literals", ()))
        if not lits:
            raise _bad(path, sid, "needs at least one literal")
        sigs.append(Signature(id=sid, regex=e["regex"], family=e["family"], classes=classes, confidence=conf,
                              decided_by=e.get("decided_by", ""), lead=lead, sub_cause=e["sub_cause"],
                              precedence=int(e["precedence"]), explanation=e["explanation"],
                              fix_hint=e["fix_hint"], examples=tuple(e.get("examples", ())),
                              counter_examples=tuple(e.get("counter_examples", ())), literals=lits))
    ids = [s.id for s in sigs]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: signatures: duplicate ids")
    singles = {s.id: re.compile(s.regex.encode(), re.IGNORECASE) for s in sigs}
    by_lit: dict[bytes, list[int]] = {}
    for i, s in enumerate(sigs):
        for x in s.literals:
            by_lit.setdefault(x.encode(), []).append(i)
    lits = tuple(sorted(by_lit))
    automaton = ahocorasick_rs.BytesAhoCorasick(list(lits)) if ahocorasick_rs else None
    return Catalogue(version=int(d.get("version", 1)), signatures=sigs, singles=singles, literals=lits,
                     by_literal={k: tuple(v) for k, v in by_lit.items()}, automaton=automaton,
                     by_index=tuple(tuple(by_lit[x]) for x in lits))


@dataclass
class Hit:
    signature: str
    line_no: int
    line: str


class Hits(list):
    """The hits of one scan, with what the scan covered."""
    bytes_scanned: int = 0
    truncated: bool = False          # stopped at max_bytes before the end of the input
    long_lines: int = 0              # lines longer than MAX_LINE (only their head was matched)
    source_lines_skipped: int = 0    # candidate lines skipped as printed source code


# ------------------------------------------------------------------ printed source code
_PREFIX = re.compile(
    rb"^(?:\xef\xbb\xbf)?"
    rb"(?:\[?\d{4}-\d\d-\d\d[T ][\d:.,]+(?:Z|[+-]\d\d:?\d\d)?\]?\s+)?"     # timestamp
    rb"(?:[\w.@/-]+\s+\|\s?)?")                                             # compose/service prefix "app_1  | "
_SRC_MARK = re.compile(rb"^(?:>(?:\s{2,}|$)|\++\s|\[command\]|\$\s|#\s|//\s)")
_PY_FRAME = re.compile(rb'^\s*File "[^"]+", line \d+')
_CODE = re.compile(
    rb"^(?:\s{4,}|\t+)(?:raise\b|assert\b|print\(|echo\s|printf\s|log(?:ger|ging)?\.\w+\(|throw\s|die\s|"
    rb"(?:pytest|self)\.fail\(|sys\.exit\(|def\s|class\s|(?:el)?if\s.*:\s*$|except\b|with\s.*:\s*$|"
    rb"[A-Za-z_][\w.\[\]'\"]*\s*(?:,\s*[A-Za-z_]\w*\s*)*[+|]?=\s*[frb]?[\"'\[(]|[\w.]+\(.*[\"'])")


def is_source_line(line: bytes, prev: bytes = b"") -> bool:
    """True when the line is printed source code (a traceback's source, a `set -x` echo, a
    prompt or comment), not an event that happened."""
    rest = line[_PREFIX.match(line).end():]
    if _SRC_MARK.match(rest) or _CODE.match(rest):
        return True
    if prev:
        prest = prev[_PREFIX.match(prev).end():]
        if _PY_FRAME.match(prest):
            return True
    return False


# ------------------------------------------------------------------ the scan
def _candidates(buf: bytes, low: bytes, cat: Catalogue) -> dict:
    """line start -> set of signature indexes whose literal occurs on that line."""
    out: dict[int, set] = {}
    if cat.automaton is not None:      # one Aho-Corasick pass over the block for all literals
        idx_of = cat.by_index
        ls = le = -1
        cur: set = set()
        for k, start, _end in cat.automaton.find_matches_as_indexes(low, overlapping=True):
            if not ls <= start < le:
                ls = buf.rfind(b"\n", 0, start) + 1
                le = buf.find(b"\n", start)
                le = len(buf) if le < 0 else le
                cur = out.setdefault(ls, set())
            cur.update(idx_of[k])
        return out
    for lit in cat.literals:            # fallback without the library: one bytes.find pass per literal
        i = low.find(lit)
        if i < 0:
            continue
        idx = cat.by_literal[lit]
        while i >= 0:
            ls = buf.rfind(b"\n", 0, i) + 1
            out.setdefault(ls, set()).update(idx)
            nl = buf.find(b"\n", i)
            if nl < 0:
                break
            i = low.find(lit, nl + 1)      # one hit per line per literal is enough
    return out


class _Scanner:
    def __init__(self, cat: Catalogue):
        self.cat = cat
        self.hits = Hits()
        self.per: dict[str, int] = {}
        self.prev_last = b""       # last complete line of the previous piece (for traceback frames)

    def piece(self, buf: bytes, first_line_no: int) -> None:
        """Match the complete lines in buf (it holds whole lines, each possibly longer than MAX_LINE)."""
        cat = self.cat
        low = buf.lower()
        cands = _candidates(buf, low, cat)
        pos, line_no = 0, first_line_no
        for ls in sorted(cands):
            le = buf.find(b"\n", ls)
            le = len(buf) if le < 0 else le
            line = buf[ls:min(le, ls + MAX_LINE)]
            todo = [cat.signatures[i] for i in sorted(cands[ls])
                    if self.per.get(cat.signatures[i].id, 0) < MAX_HITS_PER_SIG]
            matched = [s for s in todo if cat.singles[s.id].search(line)]
            if not matched:
                continue
            if ls > 0:
                ps = buf.rfind(b"\n", 0, ls - 1) + 1
                prev = buf[ps:min(ls - 1, ps + MAX_LINE)]
            else:
                prev = self.prev_last
            if is_source_line(line, prev):
                self.hits.source_lines_skipped += 1
                continue
            line_no += buf.count(b"\n", pos, ls)
            pos = ls
            text = line[:500].decode("utf-8", "replace").rstrip("\r")
            for s in matched:
                self.per[s.id] = self.per.get(s.id, 0) + 1
                self.hits.append(Hit(s.id, line_no, text))
        end = len(buf) - 1 if buf.endswith(b"\n") else len(buf)
        ps = buf.rfind(b"\n", 0, end) + 1
        self.prev_last = buf[ps:min(end, ps + MAX_LINE)]


def scan(stream: IO[bytes], cat: Catalogue | None = None, max_bytes: int = MAX_BYTES) -> Hits:
    """Every event line matching a signature (at most MAX_HITS_PER_SIG kept per signature); a line
    matching several signatures is reported for each. Reads at most max_bytes; memory stays
    O(BLOCK + MAX_LINE) whatever the line lengths."""
    cat = cat or load_catalogue()
    sc = _Scanner(cat)
    hits = sc.hits
    total = 0
    line_base = 0            # complete lines before `carry`
    carry = b""              # the start of an unfinished line (at most MAX_LINE bytes)
    skipping = False         # inside an over-long line whose head was already matched
    while True:
        want = min(BLOCK, max_bytes - total)
        chunk = stream.read(want) if want > 0 else b""
        if not chunk:
            hits.truncated = want <= 0 and bool(stream.read(1))
            break
        total += len(chunk)
        if skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                continue
            line_base += 1
            skipping = False
            chunk = chunk[nl + 1:]
        buf = carry + chunk
        cut = buf.rfind(b"\n") + 1
        if cut:
            sc.piece(buf[:cut], line_base + 1)
            line_base += buf.count(b"\n", 0, cut)
            buf = buf[cut:]
        if len(buf) > MAX_LINE:          # an unfinished line already longer than MAX_LINE: match its head now
            hits.long_lines += 1
            sc.piece(buf[:MAX_LINE], line_base + 1)
            carry, skipping = b"", True
        else:
            carry = buf
    if carry and not skipping:
        sc.piece(carry, line_base + 1)
    hits.bytes_scanned = total
    return hits


def scan_text(text: str, cat: Catalogue | None = None) -> Hits:
    return scan(io.BytesIO(text.encode("utf-8", "replace")), cat)


def scan_file(path: str, cat: Catalogue | None = None, max_bytes: int = MAX_BYTES) -> Hits:
    """scan() of a regular file. Anything else is refused with ValueError before a byte is read:
    a FIFO would block, a device never end (opened non-blocking, so checking cannot hang)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path}: not a regular file")
        f = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    with f:
        return scan(f, cat, max_bytes)


# ------------------------------------------------------------------ explanation
def explain_hits(hits: Iterable[Hit], cat: Catalogue | None = None) -> dict:
    """Matches (highest precedence first), the class when a decisive line decides it, otherwise
    the hints with the evidence that would decide."""
    cat = cat or load_catalogue()
    by_id = {s.id: s for s in cat.signatures}
    hits = [h for h in hits if h.signature in by_id]
    hits.sort(key=lambda h: (-by_id[h.signature].precedence, h.line_no, h.signature))
    matches = []
    for h in hits:
        s = by_id[h.signature]
        matches.append({"signature": s.id, "family": s.family, "line": h.line_no, "text": h.line,
                        "confidence": s.confidence, "classes": list(s.classes), "decided_by": s.decided_by,
                        # the class other evidence may corroborate; a hint's lead is not a verdict
                        "lead_class": s.lead, "sub_cause": s.sub_cause, "precedence": s.precedence})
    decisive = [m for m in matches if m["confidence"] == "decisive"]
    dclasses = sorted({m["classes"][0] for m in decisive})
    hints, seen = [], set()
    for m in matches:
        if m["confidence"] == "hint" and m["signature"] not in seen:
            seen.add(m["signature"])
            s = by_id[m["signature"]]
            hints.append({"signature": s.id, "family": s.family, "classes": list(s.classes),
                          "decided_by": s.decided_by, "line": m["line"], "sub_cause": s.sub_cause,
                          "explanation": s.explanation, "fix_hint": s.fix_hint})
    if len(dclasses) == 1:
        top = decisive[0]
        verdict = {"class": dclasses[0], "confidence": "decisive", "family": top["family"],
                   "signature": top["signature"], "sub_cause": top["sub_cause"], "line": top["line"],
                   "why": by_id[top["signature"]].explanation}
    elif matches:
        top = matches[0]
        why = (f"decisive lines disagree ({', '.join(dclasses)})" if dclasses else
               "no line alone decides the class; see hints[].decided_by")
        verdict = {"class": None, "confidence": "hint", "family": top["family"], "signature": top["signature"],
                   "sub_cause": top["sub_cause"], "line": top["line"], "why": why}
    else:
        verdict = {"class": None, "confidence": "none", "family": None, "signature": None, "sub_cause": None,
                   "line": None, "why": "no signature matched"}
    deciding = []
    for h in hints:
        if h["decided_by"] not in deciding:
            deciding.append(h["decided_by"])
    out = {"catalogue_version": cat.version, "verdict": verdict, "family": verdict["family"],
           "matches": matches, "hints": hints,
           "deciding_evidence": deciding,
           # compact form kept for bundle readers: cause is a class only when a line decides it
           "cause_hint": {"cause": verdict["class"] or "unknown", "sub_cause": verdict["sub_cause"],
                          "signature": verdict["signature"]}}
    return out


def _coverage(hits) -> dict:
    return {"bytes_scanned": getattr(hits, "bytes_scanned", None), "truncated": getattr(hits, "truncated", False),
            "long_lines": getattr(hits, "long_lines", 0),
            "source_lines_skipped": getattr(hits, "source_lines_skipped", 0)}


def explain_text(text: str, cat: Catalogue | None = None) -> dict:
    hits = scan_text(text, cat)
    out = explain_hits(hits, cat)
    out["scan"] = _coverage(hits)
    return out


def explain_file(path: str, cat: Catalogue | None = None, max_bytes: int = MAX_BYTES) -> dict:
    hits = scan_file(path, cat, max_bytes)
    out = explain_hits(hits, cat)
    out["file"] = str(path)
    out["scan"] = _coverage(hits)
    return out
