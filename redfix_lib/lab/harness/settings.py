"""The node's harness settings (cf. cc-ci runner/harness/settings.py, commit cd19c1b): a TOML file
at `$CCCI_SETTINGS` else /etc/cc-ci/settings.toml. `_SCHEMA` is the single source of defaults and
validation. Graceful on an absent, unreadable or malformed file (a WARN, every key at its default);
an unknown table or key is warned about and ignored; a known key of the wrong type raises TypeError.
The lab node keeps its file under the lab home and points CCCI_SETTINGS at it (docs/lab.md)."""
from __future__ import annotations

import os
import tomllib

DEFAULT_PATH = "/etc/cc-ci/settings.toml"
_SCHEMA = {"upgrade": {"skip_canonicals_for_upgrade": (bool, False)}}


def path() -> str:
    return os.environ.get("CCCI_SETTINGS") or DEFAULT_PATH


def load(p: str | None = None) -> dict:
    p = p or path()
    out = {t: {k: d for k, (_, d) in keys.items()} for t, keys in _SCHEMA.items()}
    try:
        with open(p, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        print(f"WARN settings: {p} absent: using defaults", flush=True)
        return out
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"WARN settings: {p} unreadable ({e}): using defaults", flush=True)
        return out
    for table, body in doc.items():
        if table not in _SCHEMA or not isinstance(body, dict):
            print(f"WARN settings: unknown table [{table}] in {p}: ignored", flush=True)
            continue
        for key, val in body.items():
            if key not in _SCHEMA[table]:
                print(f"WARN settings: unknown key {table}.{key} in {p}: ignored", flush=True)
                continue
            typ = _SCHEMA[table][key][0]
            if type(val) is not typ:
                raise TypeError(f"settings {p}: {table}.{key} must be {typ.__name__}, got {type(val).__name__}")
            out[table][key] = val
    return out
