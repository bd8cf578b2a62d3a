"""Compose files as recipes write them: ${VAR:-default} interpolation, list or mapping labels,
overlays (compose.yml + compose.<x>.yml). Pure functions over text."""
from __future__ import annotations

import re
from typing import Any

import yaml

VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(text: str, env: dict[str, str] | None = None, keep: set[str] = frozenset()) -> str:
    """Substitute variables: env value, else the default, else empty. Names in `keep`
    (e.g. STACK_NAME) stay literal so labels like coop-cloud.${STACK_NAME}.version survive."""
    env = env or {}

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        if name in keep:
            return m.group(0)
        op, default = m.group(2), m.group(3) or ""
        val = env.get(name)
        if op in (":-", "-"):
            return val if val not in (None, "") or (op == "-" and val is not None) else default
        if op in (":+", "+"):
            return default if val else ""
        return val or ""
    return VAR_RE.sub(sub, text)


def variables(text: str) -> dict[str, str | None]:
    """Every variable a compose text uses, with its default (None when it has none)."""
    out: dict[str, str | None] = {}
    for m in VAR_RE.finditer(text):
        name = m.group(1) or m.group(4)
        if not name:
            continue
        d = m.group(3) if m.group(2) in (":-", "-") else None
        if out.get(name) is None:
            out[name] = d
    return out


def labels_dict(v: Any) -> dict[str, str]:
    if isinstance(v, dict):
        return {str(k): "" if x is None else str(x) for k, x in v.items()}
    out = {}
    for item in v or []:
        k, _, x = str(item).partition("=")
        out[k] = x
    return out


def load(text: str, env: dict[str, str] | None = None) -> dict:
    d = yaml.safe_load(interpolate(text, env, keep={"STACK_NAME"})) or {}
    for svc in (d.get("services") or {}).values():
        if not isinstance(svc, dict):
            continue
        if "labels" in svc:
            svc["labels"] = labels_dict(svc["labels"])
        dep = svc.get("deploy") or {}
        if "labels" in dep:
            dep["labels"] = labels_dict(dep["labels"])
    return d


def merge(base: dict, over: dict) -> dict:
    """Overlay merge, compose-style: mappings merge recursively, the overlay wins otherwise."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def service_networks(svc: dict) -> list[str]:
    n = svc.get("networks") or []
    return list(n.keys()) if isinstance(n, dict) else list(n)


def service_volumes(svc: dict) -> list[str]:
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            src = v.split(":", 1)[0]
        elif isinstance(v, dict):
            src = v.get("source", "")
        else:
            continue
        if src and not src.startswith(("/", ".", "~")):
            out.append(src)
    return out


def deploy_labels(svc: dict) -> dict[str, str]:
    return (svc.get("deploy") or {}).get("labels") or {}
