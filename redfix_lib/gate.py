"""The input gate: every file or value a user hands redfix passes through here before anything runs.

Files (case files, bundle.json, sweep.json, manifest.json, logs given to explain-log) are opened
only when they are regular files within a size cap (a FIFO, a device or a folder is refused from
its stat, never opened for a blocking read), read as strict UTF-8, and parsed without alias
expansion, duplicate keys or unbounded nesting. Values that end up in argv, env, paths or host
names are checked with full-match patterns. Every refusal is a ParamsError, i.e. one
`file: field: reason` line per problem, exit 2, nothing run.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import string
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import EngineUnavailable, NodeUnreachable, ParamsError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CASE_MAX_BYTES = 256 * KiB          # shipped case files are ~2 KiB
SWEEP_MAX_BYTES = 16 * MiB
MANIFEST_MAX_BYTES = 16 * MiB
BUNDLE_MAX_BYTES = 64 * MiB         # stored bundle.json files are < 100 KiB
LOG_MAX_BYTES = int(os.environ.get("REDFIX_MAX_LOG_BYTES", 4 * GiB))
YAML_MAX_DEPTH = 16                 # a case file is 4 levels deep; lab: / probes: get some room
JSON_MAX_DEPTH = 64


def refuse(file: str | os.PathLike, fld: str, reason: str) -> ParamsError:
    return ParamsError([(str(file), fld, reason)])


def fpath(parts: tuple | list) -> str:
    """('harness', 'env', 'X') -> harness.env.X ; ('probes', 0, 'kind') -> probes[0].kind"""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top>"


def show(value: Any, limit: int = 60) -> str:
    """A value quoted for a message: repr, cut short (never a whole file echoed back)."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "…"


# ---- files -----------------------------------------------------------------------------------

_KINDS = [(stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")]


def _kind(mode: int) -> str | None:
    return next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def check_regular(path: str | os.PathLike, fld: str = "<file>", max_bytes: int | None = None,
                  root: str | os.PathLike | None = None, what: str = "file") -> os.stat_result:
    """stat() checks only (nothing opened): exists, regular file, under the size cap, and when it
    is a symlink its target stays inside `root` (default: the folder holding the link)."""
    p = str(path)
    if "\0" in p:
        raise refuse(p.replace("\0", "\\0"), fld, "path contains a NUL byte")
    try:
        lst = os.lstat(p)
    except FileNotFoundError:
        raise refuse(p, fld, f"no such {what}") from None
    except OSError as e:
        raise refuse(p, fld, f"cannot read: {e.strerror or e}") from None
    if stat.S_ISLNK(lst.st_mode):
        real = os.path.realpath(p)
        base = os.path.realpath(root) if root is not None else os.path.realpath(os.path.dirname(os.path.abspath(p)))
        if not _inside(real, base):
            raise refuse(p, fld, f"is a symlink to {real}, outside {base}: refused (copy the file instead)")
    try:
        st = os.stat(p)
    except OSError as e:
        raise refuse(p, fld, f"cannot read: {e.strerror or e} (dangling symlink?)") from None
    k = _kind(st.st_mode)
    if k:
        raise refuse(p, fld, f"is {k}, not a regular {what}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise refuse(p, fld, f"too large: {st.st_size} bytes (limit {max_bytes})")
    return st


def read_regular(path: str | os.PathLike, fld: str = "<file>", max_bytes: int = CASE_MAX_BYTES,
                 root: str | os.PathLike | None = None, what: str = "file") -> bytes:
    """check_regular() then read, opened non-blocking and re-checked on the open descriptor (a file
    swapped for a FIFO between stat and open is still refused), never more than max_bytes + 1."""
    st = check_regular(path, fld, max_bytes, root, what)
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise refuse(p, fld, f"cannot read: {e.strerror or e}") from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise refuse(p, fld, "changed while being opened: refused")
        chunks, n = [], 0
        while n <= max_bytes:
            b = os.read(fd, min(1 << 20, max_bytes + 1 - n))
            if not b:
                break
            chunks.append(b)
            n += len(b)
    except OSError as e:
        raise refuse(p, fld, f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if n > max_bytes:
        raise refuse(p, fld, f"too large: more than {max_bytes} bytes")
    return b"".join(chunks)


_BOMS = [(b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
         (b"\xfe\xff", "UTF-16")]


def decode_utf8(data: bytes, path: str | os.PathLike, fld: str = "<file>") -> str:
    """Strict UTF-8 (a UTF-8 BOM is dropped); UTF-16/32 and binary files get a clear refusal."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise refuse(path, fld, f"is {name} encoded: save it as UTF-8")
    nul = data.find(b"\0")
    if nul >= 0:
        guess = "UTF-16 text or binary" if data[1::2].count(0) + data[0::2].count(0) > len(data) // 4 else "binary"
        line = data.count(b"\n", 0, nul) + 1
        raise refuse(path, fld, f"looks like {guess} (NUL byte at line {line}): only UTF-8 text is read")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise refuse(path, fld, f"is not UTF-8: invalid byte 0x{data[e.start]:02x} at line {line} "
                                f"(save it as UTF-8)") from None
    return text[1:] if text.startswith("\ufeff") else text


# ---- YAML ------------------------------------------------------------------------------------

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")}


class _YamlRefusal(Exception):
    def __init__(self, fld: str, reason: str):
        super().__init__(reason)
        self.fld, self.reason = fld, reason


def _line(mark) -> str:
    return f"line {mark.line + 1}" if mark is not None else "<yaml>"


class _GateLoader(yaml.SafeLoader):
    """SafeLoader that composes at most YAML_MAX_DEPTH levels and refuses anchors and aliases
    (the alias bomb needs them; a case file never does), before any object is built."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        ev = self.peek_event()
        if isinstance(ev, yaml.AliasEvent):
            raise _YamlRefusal(_line(ev.start_mark), f"YAML alias *{ev.anchor} refused: anchors and aliases are "
                                                     "not allowed in redfix files (write the value out)")
        if getattr(ev, "anchor", None):
            raise _YamlRefusal(_line(ev.start_mark), f"YAML anchor &{ev.anchor} refused: anchors and aliases are "
                                                     "not allowed in redfix files (write the value out)")
        self._depth += 1
        try:
            if self._depth > YAML_MAX_DEPTH:
                raise _YamlRefusal(_line(ev.start_mark), f"nested deeper than {YAML_MAX_DEPTH} levels: refused")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _build(loader: _GateLoader, node, parts: tuple) -> Any:
    """Node tree -> plain Python, refusing duplicate keys, non-string keys and non-core tags."""
    if node.tag not in _ALLOWED_TAGS:
        raise _YamlRefusal(fpath(parts), f"YAML tag {show(node.tag)} refused ({_line(node.start_mark)})")
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        first: dict = {}
        for kn, vn in node.value:
            if not isinstance(kn, yaml.ScalarNode):
                raise _YamlRefusal(fpath(parts), f"a mapping key must be a plain string ({_line(kn.start_mark)})")
            key = _build(loader, kn, parts)
            if not isinstance(key, str):
                raise _YamlRefusal(fpath(parts + (kn.value if _NAME_OK.fullmatch(kn.value) else "<key>",)),
                                   f"key is read as {type(key).__name__} by YAML: quote it ({_line(kn.start_mark)})")
            if key in out:
                raise _YamlRefusal(fpath(parts + (key,)), f"duplicate key ({_line(first[key])} and "
                                                          f"{_line(kn.start_mark)}): each key once")
            first[key] = kn.start_mark
            out[key] = _build(loader, vn, parts + (key,))
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, v, parts + (i,)) for i, v in enumerate(node.value)]
    if node.tag == _CORE + "timestamp":
        return node.value            # a date stays the text that was written (JSON has no dates)
    try:
        v = loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, yaml.YAMLError) as e:
        raise _YamlRefusal(fpath(parts), f"unreadable value ({_line(node.start_mark)}): {str(e)[:80]}") from None
    if isinstance(v, str) and "\0" in v:
        raise _YamlRefusal(fpath(parts), "contains a NUL byte")
    return v


def parse_yaml(text: str, path: str | os.PathLike) -> Any:
    loader = None
    try:
        loader = _GateLoader(text)
        node = loader.get_single_node()
        return None if node is None else _build(loader, node, ())
    except _YamlRefusal as e:
        raise refuse(path, e.fld, e.reason) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        raise refuse(path, f"line {line}", f"character #x{e.character:04x} is not allowed in YAML") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise refuse(path, _line(mark), f"invalid YAML: {getattr(e, 'problem', None) or str(e)[:120]}") from None
    except RecursionError:
        raise refuse(path, "<yaml>", "nested too deeply: refused") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_file(path: str | os.PathLike, max_bytes: int = CASE_MAX_BYTES, root=None) -> Any:
    return parse_yaml(decode_utf8(read_regular(path, "<file>", max_bytes, root), path), path)


# ---- JSON ------------------------------------------------------------------------------------

class _DupDict(dict):
    dups: list


def _pairs(pairs):
    d: dict = {}
    dups = []
    for k, v in pairs:
        if k in d:
            dups.append(k)
        d[k] = v
    if dups:
        d = _DupDict(d)
        d.dups = dups
    return d


def json_problems(data: Any, max_depth: int = JSON_MAX_DEPTH) -> list[tuple[str, str]]:
    """Non-finite numbers, duplicate keys, NUL in strings and nesting depth, with their paths
    (iterative: a hostile depth cannot exhaust the stack here)."""
    out: list[tuple[str, str]] = []
    stack = [(data, (), 0)]
    while stack and len(out) < 50:
        v, parts, depth = stack.pop()
        if depth > max_depth:
            out.append((fpath(parts), f"nested deeper than {max_depth} levels"))
            continue
        if isinstance(v, float) and not math.isfinite(v):
            out.append((fpath(parts), f"{v} is not allowed (NaN/Infinity are not JSON numbers)"))
        elif isinstance(v, str) and "\0" in v:
            out.append((fpath(parts), "contains a NUL byte"))
        elif isinstance(v, dict):
            for k in getattr(v, "dups", []):
                out.append((fpath(parts + (k,)), "duplicate key"))
            stack.extend((x, parts + (k,), depth + 1) for k, x in reversed(list(v.items())))
        elif isinstance(v, list):
            stack.extend((x, parts + (i,), depth + 1) for i, x in reversed(list(enumerate(v))))
    return out


def load_json_file(path: str | os.PathLike, max_bytes: int, root=None, what: str = "file") -> Any:
    text = decode_utf8(read_regular(path, "<file>", max_bytes, root, what), path)
    try:
        data = json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as e:
        raise refuse(path, f"line {e.lineno}", f"invalid JSON: {e.msg}") from None
    except RecursionError:
        raise refuse(path, "<top>", "nested too deeply: refused") from None
    probs = json_problems(data)
    if probs:
        raise ParamsError([(str(path), f, r) for f, r in probs])
    return data


# ---- schemas ---------------------------------------------------------------------------------

_NAME_OK = re.compile(r"[A-Za-z0-9_.$-]{1,64}")
_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null",
               dict: "mapping", list: "list"}


@lru_cache(maxsize=256)
def _ecma(patrn: str) -> "re.Pattern":
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", patrn))


class SchemaError:
    """One schema violation (the fields jsonschema's ValidationError has, for the subset used)."""

    __slots__ = ("absolute_path", "validator", "validator_value", "instance", "schema", "schema_path", "message")

    def __init__(self, path, kw, value, instance, schema, spath, message=""):
        self.absolute_path, self.validator, self.validator_value = path, kw, value
        self.instance, self.schema, self.schema_path, self.message = instance, schema, spath, message


_JSON_TYPES = {"object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
               "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
               "null": lambda v: v is None,
               "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
               "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}


class MiniValidator:
    """The subset of JSON Schema draft 7 that redfix's schemas use (type, enum, const, pattern,
    properties, required, additionalProperties, propertyNames, min/max(Length|Items|Properties),
    minimum/maximum/exclusive*, items, $ref to #/definitions, allOf, if/then). Written here because
    importing the jsonschema package costs ~2 s per command (its format checkers build a grammar);
    tests check the shipped schema against jsonschema's draft-7 meta-schema. `pattern` follows
    ECMA-262 as editors do: `$` is the end of the string (Python's `$` also accepts a trailing
    newline: a case id 'x\\n' would pass and name a folder ending in a newline)."""

    def __init__(self, schema: dict):
        self.root = schema

    def _resolve(self, ref: str) -> dict:
        node: Any = self.root
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node

    def is_valid(self, v, sch) -> bool:
        return next(iter(self._errors(v, sch, (), ())), None) is None

    def iter_errors(self, data):
        yield from self._errors(data, self.root, (), ())

    def _errors(self, v, sch, path, spath):
        if sch is True or sch == {}:
            return
        if sch is False:
            yield SchemaError(path, "false", False, v, sch, spath, "not allowed")
            return
        if "$ref" in sch:
            yield from self._errors(v, self._resolve(sch["$ref"]), path, spath + ("$ref",))
            return
        E = lambda kw, msg="": SchemaError(path, kw, sch[kw], v, sch, spath + (kw,), msg)  # noqa: E731
        t = sch.get("type")
        if t is not None:
            ts = t if isinstance(t, list) else [t]
            if not any(_JSON_TYPES[x](v) for x in ts):
                yield E("type", f"must be {t}")
                return
        if "enum" in sch and not any(v == x and type(v) is type(x) for x in sch["enum"]):
            yield E("enum")
        if "const" in sch and not (v == sch["const"] and type(v) is type(sch["const"])):
            yield E("const")
        if isinstance(v, str):
            if "pattern" in sch and not _ecma(sch["pattern"]).search(v):
                yield E("pattern")
            if "maxLength" in sch and len(v) > sch["maxLength"]:
                yield E("maxLength")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if "minimum" in sch and v < sch["minimum"]:
                yield E("minimum")
            if "maximum" in sch and v > sch["maximum"]:
                yield E("maximum")
            if "exclusiveMinimum" in sch and v <= sch["exclusiveMinimum"]:
                yield E("exclusiveMinimum")
            if "exclusiveMaximum" in sch and v >= sch["exclusiveMaximum"]:
                yield E("exclusiveMaximum")
        if isinstance(v, list):
            if "minItems" in sch and len(v) < sch["minItems"]:
                yield E("minItems")
            if "maxItems" in sch and len(v) > sch["maxItems"]:
                yield E("maxItems")
            if "items" in sch:
                for i, x in enumerate(v):
                    yield from self._errors(x, sch["items"], path + (i,), spath + ("items",))
        if isinstance(v, dict):
            if "required" in sch and any(k not in v for k in sch["required"]):
                yield E("required")
            if "minProperties" in sch and len(v) < sch["minProperties"]:
                yield E("minProperties")
            if "maxProperties" in sch and len(v) > sch["maxProperties"]:
                yield E("maxProperties")
            props = sch.get("properties", {})
            if "propertyNames" in sch:
                for k in v:
                    yield from self._errors(k, sch["propertyNames"], path, spath + ("propertyNames",))
            for k, x in v.items():
                if k in props:
                    yield from self._errors(x, props[k], path + (k,), spath + ("properties", k))
            ap = sch.get("additionalProperties", True)
            extra = [k for k in v if k not in props]
            if ap is False and extra:
                yield E("additionalProperties")
            elif isinstance(ap, dict):
                for k in extra:
                    yield from self._errors(v[k], ap, path + (k,), spath + ("additionalProperties",))
        for i, sub in enumerate(sch.get("allOf", [])):
            yield from self._errors(v, sub, path, spath + ("allOf", i))
        if "if" in sch and "then" in sch and self.is_valid(v, sch["if"]):
            yield from self._errors(v, sch["then"], path, spath + ("then",))


def validator_for(schema: dict) -> MiniValidator:
    return MiniValidator(schema)


def type_name(v: Any) -> str:
    return _TYPE_NAMES.get(type(v), type(v).__name__)


def _key(k: Any, i: int) -> str:
    """A key as a field name only when it looks like one (a hostile file's lines are not echoed)."""
    return k if isinstance(k, str) and _NAME_OK.fullmatch(k) else f"<key #{i + 1}>"


def schema_problems(validator, data: Any) -> list[tuple[tuple, str]]:
    """jsonschema errors -> (path parts, reason) in the words of a file's author."""
    out: list[tuple[tuple, str]] = []
    for e in validator.iter_errors(data):
        parts = tuple(e.absolute_path)
        v, kw, sch = e.instance, e.validator, e.schema
        if "propertyNames" in e.schema_path:
            # a key of a mapping: the key is the instance, the path is the mapping's
            if kw == "enum":
                out.append((parts + (_key(v, 0),), f"unknown field (allowed: {', '.join(e.validator_value)})"))
            elif parts[-1:] == ("env",):
                out.append((parts + (_key(v, 0),), f"invalid environment variable name {show(v)}: letters, digits "
                                                   "and '_', not starting with a digit"))
            else:
                out.append((parts + (_key(v, 0),), f"invalid name {show(v)}"))
        elif kw == "additionalProperties":
            allowed = sorted(sch.get("properties", {}))
            for i, k in enumerate(v):
                if k not in sch.get("properties", {}):
                    out.append((parts + (_key(k, i),), "unknown field" + (f" (allowed: {', '.join(allowed)})"
                                                                          if allowed else "")))
        elif kw == "required":
            for k in e.validator_value:
                if isinstance(v, dict) and k not in v:
                    out.append((parts + (k,), "is required"))
        elif kw == "type":
            want = e.validator_value
            if want == "string" and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append((parts, f"must be a string (quote it: YAML read {show(v)} as a number)"))
            elif want == "string" and isinstance(v, bool):
                out.append((parts, f"must be a string (quote it: YAML read {show(v)} as a boolean)"))
            elif want == "array" and isinstance(v, str) and parts and parts[-1] in ("argv",) or \
                    (want == "array" and isinstance(v, str) and len(parts) >= 2 and parts[-2] == "pre"):
                out.append((parts, "must be an argv list of strings, not a shell string"))
            else:
                names = {"object": "a mapping", "array": "a list", "integer": "an integer", "number": "a number",
                         "string": "a string", "boolean": "true or false", "null": "null"}
                w = " or ".join(names.get(x, str(x)) for x in (want if isinstance(want, list) else [want]))
                out.append((parts, f"must be {w}, got {type_name(v)}"))
        elif kw == "enum":
            out.append((parts, f"must be one of {', '.join(map(str, e.validator_value))}, got {show(v)}"))
        elif kw == "pattern":
            out.append((parts, f"{sch.get('patternErrorMessage', 'invalid value')} (got {show(v)})"))
        elif kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            lo = sch.get("minimum", sch.get("exclusiveMinimum"))
            hi = sch.get("maximum", sch.get("exclusiveMaximum"))
            lo_s = f"> {lo}" if "exclusiveMinimum" in sch else f">= {lo}"
            out.append((parts, f"must be {lo_s} and <= {hi}, got {show(v)}"))
        elif kw == "minItems":
            out.append((parts, "must not be empty" if e.validator_value == 1 else
                        f"needs at least {e.validator_value} items"))
        elif kw == "maxItems":
            out.append((parts, f"too many items ({len(v)}; limit {e.validator_value})"))
        elif kw in ("minProperties", "maxProperties") and len(parts) >= 2 and parts[-2] == "busy":
            out.append((parts, "must be exactly one of {process: REGEX}, {stack: REGEX}, {lock_file: PATH}"))
        elif kw == "maxLength":
            out.append((parts, f"too long ({len(v)} characters; limit {e.validator_value})"))
        elif kw in ("minProperties", "maxProperties"):
            out.append((parts, f"{kw}: {e.validator_value}"))
        elif kw == "const":
            out.append((parts, f"must be {show(e.validator_value)}, got {show(v)}"))
        else:
            out.append((parts, (e.message or f"not allowed ({kw})")[:200]))
    return out



# ---- values ----------------------------------------------------------------------------------

def template_problem(s: str, allowed: set[str] | frozenset[str]) -> str | None:
    """Only `{name}` from the known set; no format spec, conversion, index or attribute."""
    try:
        parts = list(string.Formatter().parse(s))
    except ValueError as e:
        return f"bad template {show(s)}: {e} (write a literal brace as {{{{ or }}}})"
    for _lit, name, spec, conv in parts:
        if name is None:
            continue
        if conv or spec:
            return (f"placeholder {{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}} refused: "
                    f"only plain {{name}} is allowed, no conversion or format spec")
        if name not in allowed:
            return f"unknown placeholder {{{show(name, 40)[1:-1]}}} (allowed: {', '.join(sorted(allowed))})"
    return None


def expand(template: str, values: dict[str, str]) -> str:
    """Fill the {placeholders} of a template the gate accepted (never str.format: no spec runs)."""
    out = []
    for lit, name, _spec, _conv in string.Formatter().parse(template):
        out.append(lit)
        if name is not None:
            out.append(values[name])
    return "".join(out)


_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})"
_USER = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}"
_IPV6 = r"\[[0-9A-Fa-f:.]{2,45}\]"
HOST_RE = re.compile(rf"(?:(?P<user>{_USER})@)?(?P<host>{_NAME}|{_IPV6})(?::(?P<port>[0-9]{{1,5}}))?")
DOCKER_HOST_RE = {
    "unix": re.compile(r"unix://(/[^\s\0]{1,1024})"),
    "ssh": re.compile(rf"ssh://(?:{_USER}@)?(?:{_NAME}|{_IPV6})(?::[0-9]{{1,5}})?"),
    "tcp": re.compile(rf"tcp://(?:{_NAME}|{_IPV6})(?::[0-9]{{1,5}})?/?"),
}


def _port_ok(s: str) -> bool:
    m = re.search(r":([0-9]{1,5})/?$", s)
    return m is None or 1 <= int(m.group(1)) <= 65535


def host_problem(host: object) -> str | None:
    """An ssh destination: an ~/.ssh/config alias or [user@]host[:port]; never an option."""
    if not isinstance(host, str) or not host:
        return "must be a non-empty string"
    if host.startswith("-") or "@-" in host:
        return f"invalid ssh host {show(host)}: must not start with '-' (it would be read as an ssh option)"
    m = HOST_RE.fullmatch(host)
    if not m or (m.group("port") and not 1 <= int(m.group("port")) <= 65535):
        return (f"invalid ssh host {show(host)}: an ~/.ssh/config alias or [user@]host[:port] "
                "(letters, digits, '.', '_', '-'), no options, spaces or shell characters")
    return None


def docker_host_problem(url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return "must be a non-empty string"
    scheme = url.split("://", 1)[0] if "://" in url else ""
    rx = DOCKER_HOST_RE.get(scheme)
    if rx is None:
        return f"invalid docker_host {show(url)}: must start with unix://, ssh:// or tcp://"
    if not rx.fullmatch(url) or not _port_ok(url) or url[len(scheme) + 3:].startswith("-"):
        return {"unix": f"invalid docker_host {show(url)}: unix:// needs an absolute socket path",
                "ssh": f"invalid docker_host {show(url)}: ssh://[user@]host[:port], no options",
                "tcp": f"invalid docker_host {show(url)}: tcp://host[:port]"}[scheme]
    return None


# ---- before anything runs ----------------------------------------------------------------------

def _program_problem(prog: str, cwd: str | None, path_env: str | None) -> str | None:
    if "/" in prog:
        p = Path(prog) if os.path.isabs(prog) else Path(cwd or os.getcwd()) / prog
        if not p.exists():
            return f"program {prog} does not exist"
        if not p.is_file() or not os.access(p, os.X_OK):
            return f"program {prog} is not an executable file"
        return None
    if not shutil.which(prog, path=path_env):
        return f"program {show(prog)} is not on PATH"
    return None


def local_run_problems(case, values: dict[str, str]) -> list[tuple[str, str, str]]:
    """For a local node: the harness's program, the pre steps' programs and the cwd exist. Values
    that depend on the run folder ({run_dir}) are only known at run time and are skipped."""
    if case.node.kind != "local":
        return []
    h = case.harness
    out = []
    cwd = None
    if h.cwd and "{run_dir}" not in h.cwd:
        cwd = expand(h.cwd, values)
        if not os.path.isdir(cwd):
            out.append((case.source, "harness.cwd", f"folder {cwd} does not exist"))
            cwd = None
    env_path = os.environ.get("PATH")
    if "PATH" in h.unset:
        env_path = ""
    if "PATH" in h.env:
        env_path = expand(h.env["PATH"], values)
    for fld, argv in [("harness.argv[0]", h.argv)] + [(f"harness.pre[{i}][0]", a) for i, a in enumerate(h.pre)]:
        if argv and "{run_dir}" not in argv[0]:
            if p := _program_problem(expand(argv[0], values), cwd, env_path):
                out.append((case.source, fld, p))
    return out


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[-1][:200] if msg else ''}"


def require_ssh(node) -> None:
    if not shutil.which("ssh"):
        raise NodeUnreachable(f"node {node.name!r} is an ssh node and no ssh client is installed (exit 4, nothing ran)")
    node.capture(["true"], timeout_s=30)         # NodeUnreachable (exit 4) with ssh's own reason


def require_engine(node, why: str) -> None:
    try:
        node.docker().ping()
    except Exception as e:  # noqa: BLE001 - any failure to reach it means: no engine
        raise EngineUnavailable(f"{why} needs a Docker engine on node {node.name!r} and none answers "
                                f"({_short(e)}); nothing ran") from None


def preflight(case, node, *, under_load: bool = False, load_probe: bool = True) -> None:
    """Everything checkable before a run starts: local programs/cwd (exit 2), the ssh connection
    (exit 4), and the engine when a stack busy probe, --under-load or a load probe needs one (exit 4)."""
    from .isolate import template_values
    probs = local_run_problems(case, template_values(case, Path("."), 1))
    if probs:
        raise ParamsError(probs)
    if case.node.kind == "ssh":
        require_ssh(node)
    needs = []
    if under_load:
        needs.append("--under-load")
    if load_probe and any(p.get("kind") == "load" for p in case.probes):
        needs.append("the case's load probe")
    if any("stack" in b for b in case.node.busy):
        needs.append("the case's `stack` busy probe")
    if needs:
        require_engine(node, " and ".join(needs))


def check_log(path: str | os.PathLike, fld: str = "<log>") -> None:
    """explain-log's input, before the scan starts: an existing regular file (not a folder, FIFO or
    device such as /dev/zero), under LOG_MAX_BYTES, that is text (not UTF-16, not binary)."""
    check_regular(path, fld, LOG_MAX_BYTES, what="log file")
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise refuse(p, fld, f"cannot read: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise refuse(p, fld, "changed while being opened: refused")
        head = os.read(fd, 64 * KiB)
    finally:
        os.close(fd)
    for bom, name in _BOMS:
        if head.startswith(bom):
            raise refuse(p, fld, f"is {name} encoded: convert it to UTF-8 first")
    if head and head.count(0) > len(head) // 10:
        raise refuse(p, fld, "looks binary (NUL bytes in its first 64 KiB), not a log")


SWEEP_SCHEMA = {
    "type": "object", "required": ["recipes"],
    "properties": {"recipes": {"type": "object", "maxProperties": 10000,
                               "propertyNames": {"pattern": "^(?!.*\\.\\.)[a-z0-9][a-z0-9._-]{0,62}$"},
                               "additionalProperties": {"type": "object", "required": ["status"],
                                                        "properties": {"status": {"type": "string"}}}}}}


def load_sweep(path: str | os.PathLike, fld: str = "--sweep") -> dict:
    """A sweep.json for `batch --sweep`: refused cleanly when missing, special, too large or not a
    sweep report ({"recipes": {name: {"status": ...}}})."""
    if not os.path.lexists(path):
        raise refuse("<command line>", fld, f"no such sweep file: {path}")
    data = load_json_file(path, SWEEP_MAX_BYTES, what="sweep file")
    probs = schema_problems(validator_for(SWEEP_SCHEMA), data)
    if probs:
        raise ParamsError([(str(path), fpath(p), r) for p, r in probs])
    return data


MANIFEST_SCHEMA = {"type": "object", "required": ["cases"],
                   "properties": {"date": {"type": "string"},
                                  "cases": {"type": "object", "additionalProperties": {"type": "object"}}}}


def load_manifest(path: str | os.PathLike) -> dict | None:
    if not os.path.lexists(path):
        return None
    data = load_json_file(path, MANIFEST_MAX_BYTES, what="manifest")
    probs = schema_problems(validator_for(MANIFEST_SCHEMA), data)
    if probs:
        raise ParamsError([(str(path), fpath(p), r) for p, r in probs])
    return data
