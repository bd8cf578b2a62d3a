"""Input validation (recipe names, git refs) and secret redaction.

Everything a params file gives that ends up in an argv element or a path goes
through here first; commands are argv lists, never shell strings.
"""
from __future__ import annotations

import os
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


# ---------------------------------------------------------------------------------------------
# Secret redaction: ONE pass (the Redactor) over everything that leaves the node or the harness
# before it is stored — streamed logs, ingested run files, results/JUnit messages, evidence,
# the stored case, sweep reports. Every rule keeps the shape of the text (key names, schemes,
# users, flags) and replaces only the secret with REDACTED, so redaction is idempotent: a
# stored bundle redacted again is byte-identical.

REDACTED = "***REDACTED***"
_R = REDACTED
MAX_LINE = 1 << 20          # longer lines are cut (bounded memory); the cut is marked

# names whose values are secrets (env vars, JSON/YAML keys, flags)
SECRET_NAME_RE = re.compile(r"(PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION)", re.I)
_KEYWORD = (r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
            r"private[_-]?key|secret[_-]?key|auth[_-]?key|client[_-]?secret|credentials?|"
            r"session[_-]?id|cookie)")
_A = re.ASCII
_I = re.ASCII | re.IGNORECASE
# values that are part of the text's shape, never secrets
_NOT_SECRET = {"", _R, "null", "none", "true", "false", "yes", "no", "0", "1", "***", "<redacted>", "[redacted]"}

PEM_BEGIN_RE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----", _A)
PEM_END_RE = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----", _A)
PEM_ONE_LINE_RE = re.compile(PEM_BEGIN_RE.pattern + r".*?" + PEM_END_RE.pattern, _A)

# well-known token shapes, replaced whole wherever they appear
TOKEN_RES = [re.compile(p, _A) for p in (
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b",       # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,255}\b",                                            # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",                                          # GitHub fine-grained
    r"\bglpat-[A-Za-z0-9_-]{20,}\b",                                                 # GitLab
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",                                            # Slack
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b",                              # Stripe
    r"\bAIza[0-9A-Za-z_-]{35}\b",                                                    # Google API keys
    r"\bnpm_[A-Za-z0-9]{36}\b",                                                      # npm
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b",             # JWT
)]
# Authorization: Bearer|Basic|token|Digest X  (headers, curl -H, JSON/YAML header maps)
AUTH_HEADER_RE = re.compile(
    r"(\b(?:proxy-)?authorization\\?[\"']?\s*[:=]\s*\\?[\"']?\s*(?:(?:bearer|basic|token|digest|negotiate|apikey|"
    r"key|sso-key|otp)\s+)?)([^\s\"'\\,;]+(?:\s+[^\s\"'\\,;=]+=[^\s\"'\\]+)*)", _I)
# a bare "Bearer X" / "Basic X" (the credential looks like one: long, or with digits)
BEARER_RE = re.compile(r"(\b(?:bearer|basic)\s+)((?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{8,}=*|"
                       r"[A-Za-z0-9._~+/-]{20,}=*)", _I)
# scheme://user:password@host (also scheme://:password@host)
URL_CRED_RE = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@\"'<>]*:)([^@\s/\"'<>]+)(@)", _A)
# --password V, --password=V, --api-key V, --token V, -p=V style flags
FLAG_RE = re.compile(
    r"((?<![\w-])--?(?:db-|client-|auth-|access-|secret-|api-|private-|bearer-|admin-|root-|user-)?"
    r"(?:password|passwd|pass|pwd|passphrase|token|api-?key|apikey|secret|secret-key|access-key|"
    r"private-key|client-secret|auth-token|credentials?)(?![\w-]))(=|\s+)((?!--)[^\s\"']+|\"[^\"]*\"|'[^']*')", _I)
# mysql -pPW / mysqldump -u root -pPW (the password glued to -p)
MYSQL_RE = re.compile(r"(\b(?:mysql\w*|mariadb[\w-]*)\b[^\n|;&]*?\s-p)([^\s\"']+)", _A)
# curl -u user:PW / --user user:PW / --proxy-user user:PW (the password after the colon)
CURL_USER_RE = re.compile(r"(\bcurl\b[^\n|;&]*?\s(?:-u|--user|--proxy-user|-U)(?:\s+|=)[\"']?[^\s:\"']*:)([^\s\"']+)", _A)
# KEY=value / key: value / "key": "value" / key => value where the key names a secret
_QVAL = r"(?:\\\"(?:[^\\]|\\(?!\"))*?\\\"|\"(?:[^\"\\]|\\.)*\"|'[^'\n]*')"
_UNQ = r"(?![\[{(<])[^\s\"',;&)}\]]+"       # an unquoted value (never a JSON/YAML list or mapping)
ASSIGN_RE = re.compile(
    r"((?<![A-Za-z0-9])[A-Za-z0-9_.-]*" + _KEYWORD + r"[A-Za-z0-9_.-]*\\?[\"']?\s*(?:=>|[:=])[ \t]*)"
    r"(" + _QVAL + r"|" + _UNQ + r")", _I)
# SOME_KEY=value in environment style (upper-case names with KEY/AUTH/... inside)
ENV_ASSIGN_RE = re.compile(
    r"((?<![A-Za-z0-9_])[A-Z][A-Z0-9_]*(?:KEY|AUTH|CREDENTIALS?|PRIVATE|COOKIE|SESSION)[A-Z0-9_]*[ \t]*=[ \t]*)"
    r"(" + _QVAL + r"|" + _UNQ + r")", _A)
# YAML `password: a multi word value` (a key at the start of a line): the rest of the line
YAML_LINE_RE = re.compile(
    r"(^[ \t]*(?:-[ \t]+)?[\"']?[A-Za-z0-9_.-]*" + _KEYWORD + r"[A-Za-z0-9_.-]*[\"']?[ \t]*:[ \t]+)"
    r"((?![\"'|>&*!{\[])[^\n#]*?)([ \t]+#[^\n]*)?$", _I | re.MULTILINE)
# long mixed-case alphanumeric runs (generic API keys / bearer tokens), kept only when random-looking
ENTROPY_RE = re.compile(r"(?<![A-Za-z0-9_+=-])[A-Za-z0-9_+=-]{32,}(?![A-Za-z0-9_+=-])", _A)

_TRIGGER = re.compile(
    r"pass|pwd|secret|token|key|auth|credential|cookie|session|private|BEGIN|-----END|AKIA|ASIA|AGPA|AIDA|"
    r"AROA|ANPA|ANVA|AIPA|ABIA|ACCA|gh[pousr]_|github_pat_|glpat-|xox|_live_|_test_|AIza|npm_|eyJ|"
    r"bearer|basic|://[^/\s]*@|mysql|mariadb|curl", _I)


def _entropy(s: str) -> float:
    from collections import Counter
    from math import log2
    n = len(s)
    return -sum(c / n * log2(c / n) for c in Counter(s).values())


_MIXED_RE = re.compile(r"(?=[^a-z]*[a-z])(?=[^A-Z]*[A-Z])(?=\D*\d)", _A)


def _looks_random(tok: str) -> bool:
    """A generic token: upper, lower and digits mixed, high entropy; never a hex digest, a
    path-ish word, or a snake_case identifier."""
    core = tok.strip("=")
    if len(core) < 32 or not _MIXED_RE.match(core):
        return False
    if re.fullmatch(r"[A-Za-z]+(?:[_-][A-Za-z0-9]+)+", core) and _entropy(core) < 4.3:
        return False               # identifiers like Some_Long_Test_Name_v2
    return _entropy(core) >= 4.0


_PATH_RE = re.compile(r"(?:/|\./|~/)[\w./@+-]*", _A)


_VAR_REF_RE = re.compile(r"\$(?:\{[A-Za-z_]|\(|[A-Za-z_][A-Za-z0-9_]*$)")   # ${VAR...}, $(cmd), $VAR


def _keep_shape(m: re.Match) -> str:
    v = m.group(2)
    core = v.strip("\"'\\").strip()
    if core.lower() in _NOT_SECRET or _PATH_RE.fullmatch(core):
        return m.group(0)          # empty, null/true/false, a file path (DB_PASSWORD_FILE=/run/secrets/db)
    if _VAR_REF_RE.match(core):
        return m.group(0)          # a variable reference (JWT_SECRET=${JWT_SECRET:-}), not a value
    if (m.group(1).rstrip().endswith(":") and not re.search(r"[\"']", m.group(1))
            and re.search(r"[A-Za-z0-9][ \t]+$", m.string[:m.start()]) and re.fullmatch(r"[A-Za-z]{1,11}", core)):
        return m.group(0)          # prose ("a JWT secret: generate one"): a plain short word after "key:" mid-sentence
    for q in ('\\"', '"', "'"):
        if len(v) >= 2 * len(q) and v.startswith(q) and v.endswith(q):
            return m.group(1) + q + _R + q
    if '"' in m.group(1):          # a JSON key with a bare value (number): stay valid JSON
        return m.group(1) + '"' + _R + '"'
    return m.group(1) + _R


class Redactor:
    """The one redaction pass. Built from the secret-looking values of the node's environment
    and the case's env (names like *PASSWORD*, *SECRET*, *TOKEN*, *KEY*), extra literal values,
    and the case's own `redact:` regexes; the built-in detector covers private keys, cloud and
    forge tokens, auth headers, credential URLs, password/token flags, mysql -pPW, secret
    assignments and JSON/YAML fields, and random-looking long tokens."""

    def __init__(self, env: dict[str, str] | None = None, values: Iterable[str] = (),
                 patterns: Iterable[str] = (), node_env: bool = True):
        vals = set(v for v in values if isinstance(v, str) and v.strip().lower() not in _NOT_SECRET and len(v) >= 4)
        vals |= set(secret_values(env or {}))
        if node_env:
            vals |= set(secret_values(dict(os.environ)))
        self.values = sorted(vals, key=len, reverse=True)
        self._values_re = re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None
        self.patterns = [re.compile(p) for p in patterns]

    # ---- text -------------------------------------------------------------------------------
    def line(self, line: str, _state: list | None = None) -> str:
        """One line (or a short text); _state carries 'inside a PEM block' across lines."""
        state = _state if _state is not None else [False]
        if state[0]:
            m = PEM_END_RE.search(line)
            if not m:
                return _R + ("\n" if line.endswith("\n") else "")
            state[0] = False
            line = _R + line[m.end():]
        if self._values_re is not None:
            line = self._values_re.sub(_R, line)
        for rx in self.patterns:
            line = rx.sub(_R, line)
        if not _TRIGGER.search(line):
            if ENTROPY_RE.search(line):
                line = ENTROPY_RE.sub(lambda m: _R if _looks_random(m.group(0)) else m.group(0), line)
            return line
        if "PRIVATE KEY" in line:
            line = PEM_ONE_LINE_RE.sub(_R, line)
            m = PEM_BEGIN_RE.search(line)
            if m:                                   # a block that goes on over the next lines
                state[0] = True
                line = line[:m.start()] + _R + ("\n" if line.endswith("\n") else "")
        for rx in TOKEN_RES:
            line = rx.sub(_R, line)
        line = AUTH_HEADER_RE.sub(lambda m: m.group(1) + (_R if m.group(2) != _R else m.group(2)), line)
        line = BEARER_RE.sub(lambda m: m.group(1) + _R, line)
        line = URL_CRED_RE.sub(lambda m: m.group(1) + _R + m.group(3), line)
        line = FLAG_RE.sub(lambda m: m.group(1) + m.group(2) + (_R if m.group(3).strip("\"'") != _R else m.group(3)), line)
        line = MYSQL_RE.sub(lambda m: m.group(1) + _R, line)
        line = CURL_USER_RE.sub(lambda m: m.group(1) + (_R if not m.group(2).startswith(_R) else m.group(2)), line)
        line = YAML_LINE_RE.sub(lambda m: m.group(1) + (_R if m.group(2).strip().lower() not in _NOT_SECRET
                                                        else m.group(2)) + (m.group(3) or ""), line)
        line = ASSIGN_RE.sub(_keep_shape, line)
        line = ENV_ASSIGN_RE.sub(_keep_shape, line)
        line = ENTROPY_RE.sub(lambda m: _R if _looks_random(m.group(0)) else m.group(0), line)
        return line

    def text(self, text: str) -> str:
        state = [False]
        return "".join(self.line(ln, state) for ln in text.splitlines(keepends=True))

    def bytes(self, data: bytes) -> bytes:
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    # ---- structures -------------------------------------------------------------------------
    def obj(self, o):
        """A JSON-like structure: every string redacted, values under secret-looking keys masked."""
        if isinstance(o, str):
            return self.text(o)
        if isinstance(o, dict):
            return {k: (_R if isinstance(k, str) and _secret_key(k) and _maskable(v) else self.obj(v))
                    for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [self.obj(v) for v in o]
        return o

    def argv(self, argv: list[str]) -> list[str]:
        """An argv list: `--password V` (two elements), `-pPW` after mysql, then each element."""
        out = [self.text(a) for a in argv]
        mysql = any(re.match(r"(mysql\w*|mariadb[\w-]*)$", os.path.basename(a)) for a in argv)
        for i, a in enumerate(argv):
            if i + 1 < len(out) and FLAG_RE.fullmatch(a + " x"):
                out[i + 1] = _R
            elif mysql and re.fullmatch(r"-p\S+", a):
                out[i] = "-p" + _R
        return out

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return {k: (_R if _secret_key(k) and _maskable(v) else self.text(v)) for k, v in env.items()}

    # ---- streams and files ------------------------------------------------------------------
    def stream(self, src: IO[bytes], dst: IO[bytes], flush: bool = False) -> int:
        """Copy src to dst line by line with secrets masked; bounded memory (lines over MAX_LINE
        bytes are cut and the cut is marked). Returns bytes written."""
        state = [False]
        n = 0
        while True:
            raw = src.readline(MAX_LINE)
            if not raw:
                break
            if len(raw) == MAX_LINE and not raw.endswith(b"\n"):
                dropped = 0
                while True:               # drop the rest of an over-long line
                    more = src.readline(MAX_LINE)
                    dropped += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                raw += f" [redfix: {dropped} more bytes of this line dropped]\n".encode()
            out = self.line(raw.decode("utf-8", "surrogateescape"), state).encode("utf-8", "surrogateescape")
            dst.write(out)
            if flush:
                dst.flush()
            n += len(out)
        return n

    def file(self, src: str | os.PathLike, dst: str | os.PathLike) -> int:
        """Copy one file through the redactor (dst is created readable: 0666 & ~umask)."""
        with open(src, "rb") as s, open(dst, "wb") as d:
            return self.stream(s, d)

    def tree(self, src: str | os.PathLike, dst: str | os.PathLike) -> list[str]:
        """Every regular file under src copied redacted to the same place under dst (symlinks
        and special files are skipped); returns the files written."""
        from pathlib import Path
        src, dst = Path(src), Path(dst)
        written = []
        for p in sorted(src.rglob("*")):
            if p.is_symlink() or not p.is_file():
                continue
            t = dst / p.relative_to(src)
            t.parent.mkdir(parents=True, exist_ok=True)
            self.file(p, t)
            written.append(str(t))
        return written


def _maskable(v) -> bool:
    """A value under a secret-looking key that is worth masking (not empty/null/bool, not a path)."""
    return isinstance(v, str) and v.strip().lower() not in _NOT_SECRET and not _PATH_RE.fullmatch(v.strip())


def _secret_key(k: str) -> bool:
    return bool(re.search(_KEYWORD, k, re.I) or re.fullmatch(r"[A-Z][A-Z0-9_]*", k) and SECRET_NAME_RE.search(k))


def secret_values(env: dict[str, str]) -> list[str]:
    """Values of env vars whose names look secret (long enough to be worth masking)."""
    return sorted({v for k, v in env.items() if isinstance(v, str) and SECRET_NAME_RE.search(k) and v
                   and len(v) >= 4 and v.strip().lower() not in _NOT_SECRET and not _harmless_value(v)},
                  key=len, reverse=True)


def _harmless_value(v: str) -> bool:
    """Values of secret-named variables that are not secrets and would mask common text:
    paths (SSH_AUTH_SOCK), small numbers, plain words."""
    return v.startswith("/") or v.isdigit() or bool(re.fullmatch(r"[a-z]{1,5}", v))


_DEFAULT: Redactor | None = None


def default_redactor() -> Redactor:
    """The built-in detector plus this process's environment (for writers that have no case)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Redactor()
    return _DEFAULT


def redact_line(line: str, values: Iterable[str] = ()) -> str:
    return Redactor(values=values, node_env=False).line(line)


def redact_text(text: str, redactor: Redactor | None = None) -> str:
    return (redactor or default_redactor()).text(text)


def redact_stream(src: IO[bytes], dst: IO[bytes], values: Iterable[str] = ()) -> int:
    return Redactor(values=values).stream(src, dst)


_NB_TEXT = ("text/plain", "text/markdown", "text/html", "text/latex", "application/json")


def redact_notebook(path, red: Redactor | None = None) -> bool:
    """Redact an executed notebook's outputs in place (streams, text/html/markdown data, error
    values and tracebacks); images are left as they are. True when something changed."""
    import json
    from pathlib import Path
    p = Path(path)
    if not p.is_file():
        return False
    red = red or default_redactor()
    nb = json.loads(p.read_text(encoding="utf-8"))

    def txt(v):
        if isinstance(v, list):
            return [red.text(x) if isinstance(x, str) else x for x in v]
        return red.text(v) if isinstance(v, str) else red.obj(v)
    before = json.dumps(nb, sort_keys=True)
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            if "text" in out:
                out["text"] = txt(out["text"])
            for k in ("evalue",):
                if isinstance(out.get(k), str):
                    out[k] = red.text(out[k])
            if isinstance(out.get("traceback"), list):
                out["traceback"] = txt(out["traceback"])
            for mime in _NB_TEXT:
                if mime in (out.get("data") or {}):
                    out["data"][mime] = txt(out["data"][mime])
    if json.dumps(nb, sort_keys=True) == before:
        return False
    from .bundle import atomic_write_text
    atomic_write_text(p, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True
