"""Compose files as abra and `docker compose config` read them. Pure functions over text.

- `.env.sample` parsed like abra's env reader (godotenv): `export` prefix, quotes, inline
  ` # comments`, `$VAR` / `${VAR}` expanded from earlier lines, so
  `COMPOSE_FILE="$COMPOSE_FILE:compose.x.yml"` accumulates in file order.
- COMPOSE_FILE: `:`-separated, in that order (never alphabetical), paths may sit in subfolders
  (`postgres/compose.postgres.tune.yml`); unset means `compose.yml`.
- Optional overlays: a commented `#COMPOSE_FILE=...` line is how a recipe offers a feature (the
  user uncomments it, with the commented settings of its paragraph). `recipe_stacks` evaluates each
  such line as its own stack, marked `optional` (it only matters when an app's env enables it).
- Interpolation after YAML parsing, on values only (compose-go): `${VAR}`, `${VAR:-d}`, `${VAR-d}`,
  `${VAR:?err}`, `${VAR?err}`, `${VAR:+x}`, `${VAR+x}`, `$VAR`, `$$`, nested defaults; malformed
  `${...}` and missing required variables are load errors. `${STACK_NAME}` stays literal.
- Merge (compose spec "merge and override"): mappings merge recursively; `environment`, `labels`
  (service and deploy), `networks`, `depends_on` merge as mappings in list or map form; `ports`,
  `volumes`, `secrets`, `configs`, `devices` merge by their unique key (target, or ip/target/
  published/protocol for ports) and append otherwise; `command`, `entrypoint`, `healthcheck.test`
  are replaced; other sequences append; `!reset` removes, `!override` replaces; `extends` resolved.
- Duplicate mapping keys are load errors (compose-go refuses them; PyYAML would keep the last).
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

KEEP = frozenset({"STACK_NAME"})
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ASSIGN_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
COMMENTED_ASSIGN_RE = re.compile(r"^\s*#+\s*((?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=.*)$")
OVERLAY_RE = re.compile(r"(^|/)compose\.[A-Za-z0-9_.-]+\.ya?ml$")
BY_KEY = {"ports", "volumes", "secrets", "configs", "devices"}
AS_MAP = {"environment", "labels", "networks", "depends_on", "sysctls", "extra_hosts"}
REPLACE = {"command", "entrypoint"}


class InterpolationError(ValueError):
    pass


# --- interpolation ---------------------------------------------------------------------------
def _closing(s: str, i: int) -> int:
    """Index of the `}` closing the `${` whose body starts at i (nested ${...} allowed)."""
    depth = 1
    while i < len(s):
        if s.startswith("$$", i):
            i += 2
            continue
        if s.startswith("${", i):
            depth += 1
            i += 2
            continue
        if s[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def interpolate(text: str, env: dict[str, str] | None = None, keep: frozenset = KEEP,
                errors: list[str] | None = None) -> str:
    """Substitute variables as compose does. Names in `keep` stay literal. Malformed references
    and missing required variables are appended to `errors` (raised when errors is None)."""
    env = env or {}
    out, i = [], 0

    def fail(msg):
        if errors is None:
            raise InterpolationError(msg)
        errors.append(msg)

    while i < len(text):
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if text.startswith("$$", j):
            out.append("$")
            i = j + 2
            continue
        if text.startswith("${", j):
            end = _closing(text, j + 2)
            body = text[j + 2:end] if end >= 0 else text[j + 2:]
            m = NAME_RE.match(body)
            if end < 0 or not m:
                fail(f"invalid interpolation format: {text[j:(end + 1) if end >= 0 else None]!r}")
                out.append(text[j:end + 1] if end >= 0 else text[j:])
                i = end + 1 if end >= 0 else len(text)
                continue
            name, rest = m.group(0), body[m.end():]
            op = next((o for o in (":-", ":?", ":+", "-", "?", "+") if rest.startswith(o)), None)
            if rest and op is None:
                fail(f"invalid interpolation format: {text[j:end + 1]!r}")
                out.append(text[j:end + 1])
                i = end + 1
                continue
            arg = rest[len(op):] if op else ""
            i = end + 1
            if name in keep:
                out.append(text[j:end + 1])
                continue
            val = env.get(name)
            if op in (":-", "-"):
                use_default = val is None or (op == ":-" and val == "")
                out.append(interpolate(arg, env, keep, errors) if use_default else val)
            elif op in (":?", "?"):
                if val is None or (op == ":?" and val == ""):
                    fail(f"required variable {name} is missing a value" + (f": {arg}" if arg else ""))
                out.append(val or "")
            elif op in (":+", "+"):
                present = val is not None and (op == "+" or val != "")
                out.append(interpolate(arg, env, keep, errors) if present else "")
            else:
                out.append(val or "")
            continue
        m = NAME_RE.match(text, j + 1)
        if m:
            name = m.group(0)
            out.append(text[j:m.end()] if name in keep else env.get(name) or "")
            i = m.end()
        else:
            out.append("$")
            i = j + 1
    return "".join(out)


def references(text: str) -> list[tuple[str, str | None, str | None]]:
    """(name, operator, argument) of every well-formed variable reference, in order."""
    out, i = [], 0
    while True:
        j = text.find("$", i)
        if j < 0:
            return out
        if text.startswith("$$", j):
            i = j + 2
        elif text.startswith("${", j):
            end = _closing(text, j + 2)
            if end < 0:
                return out
            body = text[j + 2:end]
            m = NAME_RE.match(body)
            if m:
                rest = body[m.end():]
                op = next((o for o in (":-", ":?", ":+", "-", "?", "+") if rest.startswith(o)), None)
                out.append((m.group(0), op, rest[len(op):] if op else None))
            i = end + 1
        else:
            m = NAME_RE.match(text, j + 1)
            if m:
                out.append((m.group(0), None, None))
            i = j + 1


# --- .env files ------------------------------------------------------------------------------
def _env_value(raw: str, env: dict[str, str]) -> str:
    raw = raw.strip()
    if raw.startswith("'"):
        end = raw.find("'", 1)
        return raw[1:end] if end > 0 else raw[1:]
    if raw.startswith('"'):
        i, buf = 1, []
        while i < len(raw) and raw[i] != '"':
            if raw[i] == "\\" and i + 1 < len(raw):
                buf.append({"n": "\n", "t": "\t"}.get(raw[i + 1], raw[i + 1]))
                i += 2
                continue
            buf.append(raw[i])
            i += 1
        return interpolate("".join(buf), env, keep=frozenset(), errors=[])
    raw = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
    return interpolate(raw, env, keep=frozenset(), errors=[])


def parse_env(text: str) -> dict[str, str]:
    """Active assignments of an env file, later lines seeing earlier values (accumulation)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        m = ASSIGN_RE.match(line)
        if m and not line.lstrip().startswith("#"):
            env[m.group(1)] = _env_value(m.group(2), env)
    return env


def _is_compose_file_line(line: str) -> bool:
    m = COMMENTED_ASSIGN_RE.match(line)
    return bool(m) and re.match(r"(?:export\s+)?COMPOSE_FILE\s*=", m.group(1)) is not None


def optional_envs(text: str) -> list[tuple[str, dict[str, str]]]:
    """For each commented COMPOSE_FILE line: (that line, the env with it uncommented together with
    the commented COMPOSE_FILE lines before it and the commented settings of its paragraph)."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if not _is_compose_file_line(line):
            continue
        a = i
        while a > 0 and lines[a - 1].strip():
            a -= 1
        b = i
        while b + 1 < len(lines) and lines[b + 1].strip():
            b += 1
        new = list(lines)
        for k in range(a, b + 1):
            m = COMMENTED_ASSIGN_RE.match(lines[k])
            if not m:
                continue
            if _is_compose_file_line(lines[k]) and k > i:
                continue
            new[k] = m.group(1)
        out.append((line.strip(), parse_env("\n".join(new))))
    return out


def compose_file_list(env: dict[str, str]) -> list[str]:
    raw = env.get("COMPOSE_FILE") or "compose.yml"
    return [posixpath.normpath(p.strip()) for p in raw.split(":") if p.strip()]


def abra_exports(text: str) -> dict[str, str]:
    """`export NAME=value` lines of abra.sh (abra adds them to the app's env)."""
    out = {}
    for m in re.finditer(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$", text, re.M):
        out[m.group(1)] = _env_value(m.group(2), out)
    return out


# --- YAML ------------------------------------------------------------------------------------
class _Reset:
    def __repr__(self):
        return "!reset"


RESET = _Reset()


@dataclass
class Override:
    value: Any


class _Loader(yaml.SafeLoader):
    dups: list

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for k, _ in node.value:
                if k.tag == "tag:yaml.org,2002:merge" or not isinstance(k, yaml.ScalarNode):
                    continue
                if k.value in seen:
                    self.dups.append(f"mapping key {k.value!r} already defined (line {k.start_mark.line + 1})")
                seen.add(k.value)
        return super().construct_mapping(node, deep)


_Loader.add_constructor("!reset", lambda loader, node: RESET)
_Loader.add_constructor("!override", lambda loader, node: Override(
    loader.construct_mapping(node, True) if isinstance(node, yaml.MappingNode) else
    loader.construct_sequence(node, True) if isinstance(node, yaml.SequenceNode) else loader.construct_scalar(node)))


def parse_yaml(text: str) -> tuple[Any, list[str]]:
    loader = _Loader(text)
    loader.dups = []
    try:
        return loader.get_single_data(), loader.dups
    except yaml.YAMLError as e:
        return None, [f"YAML error: {str(e).splitlines()[0]}" + (f" (line {e.problem_mark.line + 1})"
                                                                  if getattr(e, "problem_mark", None) else "")]
    finally:
        loader.dispose()


def _interp_tree(v: Any, env: dict, errors: list[str], path: str) -> Any:
    if isinstance(v, str):
        errs: list[str] = []
        out = interpolate(v, env, errors=errs)
        errors.extend(f"{path}: {e}" for e in errs)
        return out
    if isinstance(v, dict):
        return {k: v2 if str(k).startswith("x-") else _interp_tree(v2, env, errors, f"{path}.{k}")
                for k, v2 in v.items()}
    if isinstance(v, list):
        return [_interp_tree(x, env, errors, f"{path}[]") for x in v]
    if isinstance(v, Override):
        return Override(_interp_tree(v.value, env, errors, path))
    return v


# --- normalisation -----------------------------------------------------------------------------
def labels_dict(v: Any) -> dict[str, str]:
    if isinstance(v, dict):
        return {str(k): "" if x is None else str(x) for k, x in v.items()}
    out = {}
    for item in v or []:
        k, _, x = str(item).partition("=")
        out[k.strip()] = x
    return out


def env_dict(v: Any) -> dict[str, str | None]:
    if isinstance(v, dict):
        return {str(k): None if x is None else str(x) for k, x in v.items()}
    out: dict[str, str | None] = {}
    for item in v or []:
        k, eq, x = str(item).partition("=")
        out[k.strip()] = x if eq else None
    return out


def _list_to_map(v: Any) -> dict:
    if isinstance(v, dict):
        return dict(v)
    return {str(x): None for x in v or []}


def _normalise_service(svc: dict, env: dict | None = None) -> dict:
    svc = dict(svc)
    for k in ("labels",):
        if k in svc and not isinstance(svc[k], (_Reset, Override)):
            svc[k] = labels_dict(svc[k])
    if "environment" in svc and not isinstance(svc["environment"], (_Reset, Override)):
        # a bare `- NAME` takes its value from the app's env (compose semantics)
        svc["environment"] = {k: (env or {}).get(k) if v is None else v for k, v in env_dict(svc["environment"]).items()}
    for k in ("networks", "depends_on"):
        if k in svc and not isinstance(svc[k], (_Reset, Override)):
            svc[k] = _list_to_map(svc[k])
    dep = svc.get("deploy")
    if isinstance(dep, dict) and "labels" in dep and not isinstance(dep["labels"], (_Reset, Override)):
        svc["deploy"] = dict(dep, labels=labels_dict(dep["labels"]))
    return svc


def _port_key(p: Any) -> Any:
    if isinstance(p, dict):
        return ("port", str(p.get("host_ip", "")), str(p.get("target", "")), str(p.get("published", "")),
                str(p.get("protocol", "tcp")))
    s = str(p)
    s, _, proto = s.partition("/")
    parts = s.rsplit(":", 2)
    target = parts[-1]
    published = parts[-2] if len(parts) >= 2 else ""
    ip = parts[0] if len(parts) == 3 else ""
    return ("port", ip, target, published, proto or "tcp")


def mount_key(kind: str, v: Any) -> Any:
    """The compose-spec unique key of a ports/volumes/secrets/configs/devices entry."""
    if kind == "ports":
        return _port_key(v)
    if kind in ("secrets", "configs"):
        src = v.get("source") if isinstance(v, dict) else v
        tgt = v.get("target") if isinstance(v, dict) else None
        if not tgt:
            tgt = f"/run/secrets/{src}" if kind == "secrets" else f"/{src}"
        elif kind == "secrets" and not str(tgt).startswith("/"):
            tgt = f"/run/secrets/{tgt}"
        return str(tgt)
    if isinstance(v, dict):
        return str(v.get("target", v))
    parts = str(v).split(":")
    return parts[1] if len(parts) >= 2 else parts[0]


def merge(base: Any, over: Any, path: tuple = ()) -> Any:
    """Merge `over` onto `base` under compose-spec rules (path: keys from the document root)."""
    if isinstance(over, Override):
        return over.value
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is RESET:
                out.pop(k, None)
            elif k in out:
                out[k] = merge(out[k], v, path + (k,))
            else:
                out[k] = v.value if isinstance(v, Override) else v
        return out
    key = path[-1] if path else None
    in_service = len(path) == 3 and path[0] == "services"
    if isinstance(base, list) and isinstance(over, list):
        if in_service and key in REPLACE or path[-2:] == ("healthcheck", "test"):
            return over
        if in_service and key in BY_KEY:
            out = list(base)
            idx = {mount_key(key, x): i for i, x in enumerate(out)}
            for x in over:
                k = mount_key(key, x)
                if k in idx:
                    out[idx[k]] = merge(out[idx[k]], x, path + ("[]",)) if isinstance(x, dict) and isinstance(out[idx[k]], dict) else x
                else:
                    idx[k] = len(out)
                    out.append(x)
            return out
        return base + over
    return over


def service_networks(svc: dict) -> list[str]:
    return list(_list_to_map(svc.get("networks") or {}))


def service_volumes(svc: dict) -> list[str]:
    """Named volumes the service mounts (bind mounts and tmpfs left out)."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            src = parts[0] if len(parts) >= 2 else ""
        elif isinstance(v, dict):
            src = v.get("source", "") if v.get("type", "volume") == "volume" else ""
        else:
            continue
        if src and not src.startswith(("/", ".", "~", "$")):
            out.append(str(src))
    return out


def deploy_labels(svc: dict) -> dict[str, str]:
    return (svc.get("deploy") or {}).get("labels") or {}


# --- a project: compose files merged in order -----------------------------------------------------
@dataclass
class Project:
    files: list[str]
    env: dict[str, str]
    data: dict = field(default_factory=dict)
    origin: dict = field(default_factory=dict)          # service -> key -> file that last set it
    label_origin: dict = field(default_factory=dict)    # service -> (place, label) -> file
    top_origin: dict = field(default_factory=dict)      # (section, name) -> file
    raw_names: dict = field(default_factory=dict)       # (section, name) -> name before interpolation
    errors: list = field(default_factory=list)          # (file, message)
    docs: dict = field(default_factory=dict)            # file -> its own document (interpolated, normalised)

    @property
    def services(self) -> dict:
        return {k: v for k, v in (self.data.get("services") or {}).items() if isinstance(v, dict)}

    def file_of(self, service: str, key: str = "") -> str:
        o = self.origin.get(service, {})
        return o.get(key) or o.get("") or (self.files[0] if self.files else "compose.yml")

    def where(self, service: str, *path: str) -> str:
        """The last file of the stack that sets services.<service>.<path...> (for blame)."""
        for name in reversed(self.files):
            v = ((self.docs.get(name) or {}).get("services") or {}).get(service)
            for k in path:
                v = v.get(k) if isinstance(v, dict) else None
            if v is not None:
                return name
        return self.file_of(service, path[0] if path else "")


def _load_one(files: dict[str, str], name: str, env: dict, errors: list, depth: int = 0) -> tuple[dict, dict]:
    """One compose file: parsed, interpolated, normalised, extends resolved. Returns (doc, raw)."""
    if name not in files:
        errors.append((name, f"{name} does not exist"))
        return {}, {}
    raw, dups = parse_yaml(files[name])
    errors.extend((name, d) for d in dups)
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict):
        errors.append((name, "top level is not a mapping"))
        return {}, {}
    errs: list[str] = []
    doc = _interp_tree(raw, env, errs, name)
    errors.extend((name, e) for e in errs)
    svcs = doc.get("services")
    if isinstance(svcs, dict):
        doc["services"] = {k: _normalise_service(v, env) if isinstance(v, dict) else v for k, v in svcs.items()}
        for s in list(doc["services"]):
            doc["services"][s] = _extends(files, name, doc["services"], s, env, errors, depth, set())
    return doc, raw


def _extends(files, name, services, s, env, errors, depth, seen) -> Any:
    svc = services.get(s)
    if not isinstance(svc, dict) or "extends" not in svc:
        return svc
    ext = svc["extends"]
    base_name = ext if isinstance(ext, str) else (ext or {}).get("service")
    base_file = None if isinstance(ext, str) else (ext or {}).get("file")
    rest = {k: v for k, v in svc.items() if k != "extends"}
    if (base_file, base_name) in seen or depth > 8:
        errors.append((name, f"services.{s}.extends: circular reference"))
        return rest
    if base_file:
        path = posixpath.normpath(posixpath.join(posixpath.dirname(name), base_file))
        other, _ = _load_one(files, path, env, errors, depth + 1)
        pool, where = (other.get("services") or {}), path
    else:
        pool, where = services, name
    if base_name not in pool:
        errors.append((name, f"services.{s}.extends: service {base_name!r} not found in {where}"))
        return rest
    base = _extends(files, where, pool, base_name, env, errors, depth + 1, seen | {(base_file, base_name)})
    return merge(base, rest, ("services", s))


def load_project(files: dict[str, str], compose_files: list[str], env: dict[str, str] | None = None) -> Project:
    env = dict(env or {})
    p = Project(list(compose_files), env)
    errors: list = []
    for name in compose_files:
        doc, raw = _load_one(files, name, env, errors)
        p.docs[name] = doc
        for s, svc in (doc.get("services") or {}).items():
            if not isinstance(svc, dict):
                continue
            o = p.origin.setdefault(s, {})
            o.setdefault("", name)
            for k in svc:
                o[k] = name
            lo = p.label_origin.setdefault(s, {})
            for k in svc.get("labels") or {}:
                lo[("labels", k)] = name
            for k in deploy_labels(svc):
                lo[("deploy", k)] = name
        for section in ("configs", "secrets", "volumes", "networks"):
            for n, spec in (doc.get(section) or {}).items():
                p.top_origin[(section, n)] = name
                rspec = (raw.get(section) or {}).get(n)
                if isinstance(rspec, dict) and "name" in rspec:
                    p.raw_names[(section, n)] = str(rspec["name"])
        p.data = merge(p.data, {k: v for k, v in doc.items() if k != "version"})
    p.errors = errors
    return p


# --- a recipe tree: which compose files make a stack ------------------------------------------------
@dataclass
class Stack:
    files: list[str]
    env: dict[str, str]
    optional: bool = False
    why: str = ""

    @property
    def label(self) -> str:
        return ":".join(self.files)


def is_recipe(files: dict[str, str]) -> bool:
    """A Co-op Cloud recipe: compose.yml at the root (abra's layout)."""
    return "compose.yml" in files


def recipe_stacks(files: dict[str, str], env: dict[str, str] | None = None) -> list[Stack]:
    """The stacks abra would deploy from this tree: the default (COMPOSE_FILE from .env.sample, or
    from `env` — an app's env — when given), then each commented COMPOSE_FILE line (optional), then
    each overlay no COMPOSE_FILE line names (optional, on top of the default)."""
    sample = files.get(".env.sample", "")
    exports = abra_exports(files.get("abra.sh", ""))
    base = {**exports, **parse_env(sample)}
    if env:
        base.update(env)
    default = Stack(compose_file_list(base), base, False, "COMPOSE_FILE (.env.sample)" if "COMPOSE_FILE" in base else "compose.yml")
    out, seen = [default], {tuple(default.files)}
    for line, e in optional_envs(sample):
        e = {**exports, **e}
        if env:
            e = {**e, **{k: v for k, v in env.items() if k != "COMPOSE_FILE"}}
        st = Stack(compose_file_list(e), e, True, f"commented in .env.sample: {line}")
        if tuple(st.files) not in seen:
            seen.add(tuple(st.files))
            out.append(st)
    named = {f for st in out for f in st.files}
    for name in sorted(n for n in files if OVERLAY_RE.search(n) and n not in named):
        st = Stack(default.files + [name], base, True, f"{name} is named by no COMPOSE_FILE line")
        seen.add(tuple(st.files))
        out.append(st)
    return out


def plain_stacks(files: dict[str, str]) -> list[Stack]:
    """A tree of plain Swarm stack files: every YAML file with a `services` mapping is a stack;
    `X.override.yml` is applied on top of `X.yml` (the compose override convention)."""
    cands = []
    for name in sorted(files):
        if not name.endswith((".yml", ".yaml")):
            continue
        doc, _ = parse_yaml(files[name])
        if isinstance(doc, dict) and isinstance(doc.get("services"), dict):
            cands.append(name)
    out = []
    for name in cands:
        stem = re.sub(r"\.ya?ml$", "", name)
        if stem.endswith(".override"):
            continue
        over = [c for c in cands if re.sub(r"\.ya?ml$", "", c) == stem + ".override"]
        out.append(Stack([name], {}, False, "stack file"))
        for o in over:
            out.append(Stack([name, o], {}, False, "override file"))
    orphan = [c for c in cands if re.sub(r"\.ya?ml$", "", c).endswith(".override")
              and not any(c in st.files for st in out)]
    out.extend(Stack([o], {}, False, "override without base") for o in orphan)
    return out


def stacks(files: dict[str, str], env: dict[str, str] | None = None) -> list[Stack]:
    return recipe_stacks(files, env) if is_recipe(files) else plain_stacks(files)
