"""Harness-code probe: evaluate a named function or value of the harness ON THE NODE (a fixed
python snippet; names and arguments are argv, never code) and compare with another value."""
from __future__ import annotations

import json
import re

from ..bundle import EvidenceItem

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
SNIPPET = r"""
import importlib, json, os, sys
hdir, call, arg, against = sys.argv[1:5]
sys.path.insert(0, os.path.dirname(hdir.rstrip('/')))
pkg = os.path.basename(hdir.rstrip('/'))
def get(dotted):
    mod, name = dotted.split('.', 1)
    m = importlib.import_module(pkg + '.' + mod)
    return getattr(m, name), m.__file__
fn, f1 = get(call)
val = fn(arg) if callable(fn) else fn
other, f2 = get(against)
print(json.dumps({'value': val, 'against': other, 'files': [f1, f2]}, default=str))
"""


# discovery (the default probe): every naming function of the harness's modules called with the
# recipe, and every module-level table of strings; collisions are judged at classify time
DISCOVER = r"""
import importlib, inspect, json, os, pkgutil, re, sys
hdir, arg = sys.argv[1:3]
sys.path.insert(0, os.path.dirname(hdir.rstrip('/')))
pkg = os.path.basename(hdir.rstrip('/'))
NAMING = re.compile(r'domain|name|stack|host|url|prefix|volume|network', re.I)
funcs, tables, files = {}, {}, []
for m in sorted(pkgutil.iter_modules([hdir]), key=lambda m: m.name):
    if m.ispkg or m.name.startswith(('run', 'test', 'conftest', 'plugin', '_')):
        continue
    try:
        mod = importlib.import_module(pkg + '.' + m.name)
    except Exception:
        continue
    files.append(mod.__file__)
    for n, v in sorted(vars(mod).items()):
        if inspect.isfunction(v) and v.__module__ == mod.__name__ and NAMING.search(n) and not n.startswith('_'):
            ps = [p for p in inspect.signature(v).parameters.values() if p.default is p.empty]
            if len(ps) == 1:
                try:
                    r = v(arg)
                except Exception:
                    continue
                if isinstance(r, str):
                    funcs[m.name + '.' + n] = r
        elif n.isupper() and isinstance(v, dict) and 0 < len(v) <= 1000 and all(isinstance(x, str) for x in v.values()):
            try:
                own = re.search(r'^' + n + r'\s*[:=]', inspect.getsource(mod), re.M)
            except (OSError, TypeError):
                own = True
            if own:          # defined here, not imported
                tables[m.name + '.' + n] = {str(k): x for k, x in v.items()}
print(json.dumps({'functions': funcs, 'tables': tables, 'files': files}))
"""


def discover(cx, spec) -> list[EvidenceItem]:
    arg = str(spec.get("arg", cx.case.recipe))
    py = spec.get("python", "python3") if cx.node.__class__.__name__ != "LocalNode" else __import__("sys").executable
    code, out = cx.node.capture([py, "-c", DISCOVER, cx.harness_dir, arg], timeout_s=60)
    if code != 0:
        raise RuntimeError(f"harness code discovery exited {code}")
    d = json.loads(out.decode())
    return [EvidenceItem(
        id=f"harness_code:discover({arg})", kind="harness_code", source=", ".join(d["files"]), status="ok",
        summary=f"{len(d['functions'])} naming value(s) for {arg!r}, {len(d['tables'])} table(s) (judged at classify time)",
        excerpt="\n".join(f"{k}({arg!r}) -> {v!r}" for k, v in sorted(d["functions"].items()))[:2000],
        data={"arg": arg, "functions": d["functions"], "tables": d["tables"]})]


def collect(cx, spec) -> list[EvidenceItem]:
    if not spec.get("call"):
        return discover(cx, spec)
    call, against, arg = spec["call"], spec["against"], str(spec.get("arg", cx.case.recipe))
    for n in (call, against):
        if not NAME_RE.match(n):
            raise ValueError(f"harness_code: {n!r} must be module.name")
    py = spec.get("python", "python3") if cx.node.__class__.__name__ != "LocalNode" else __import__("sys").executable
    code, out = cx.node.capture([py, "-c", SNIPPET, cx.harness_dir, call, arg, against], timeout_s=60)
    if code != 0:
        raise RuntimeError(f"harness code probe exited {code}")
    d = json.loads(out.decode())
    val, other = d["value"], d["against"]
    # raw facts only: whether the value collides with the table is judged at classify time
    # (analyze.harness_item), so a stored bundle is re-judged by today's code
    return [EvidenceItem(
        id=f"harness_code:{call}({arg})~{against}", kind="harness_code", source=", ".join(d["files"]), status="ok",
        summary=f"{call}({arg!r}) = {val!r}; {against} read (compared at classify time)",
        excerpt=f"{call}({arg!r}) -> {val!r}\n{against} -> {json.dumps(other, sort_keys=True)}",
        data={"call": call, "arg": arg, "value": val, "against": against, "against_value": other})]
