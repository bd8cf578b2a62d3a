"""HTTP targets a recipe publishes, derived from its compose files (pure: text in, targets out).

Where a running stack of the recipe can be asked over HTTP, and why each place is worth asking:

- Traefik routers in `deploy.labels` (Swarm provider) and `labels` (Docker provider), list or
  mapping form: `traefik.http.routers.<r>.rule` gives the Host header(s) (`Host`, `HostHeader`,
  several hosts, `Host(a) || Host(b)`) and the path (`Path`/`PathPrefix`; a `stripprefix`
  middleware of the router means the app itself sees `/`); the port is the router's service's
  `traefik.http.services.<s>.loadbalancer.server.port` (`.service=<s>`, or the container's only
  service). `HostRegexp`/`PathRegexp` name no concrete host/path: ignored, with the reason.
- Healthchecks that fetch a URL (`curl -f http://localhost:3000/health`, `wget -q --spider
  http://127.0.0.1:8080/x`; `CMD`, `CMD-SHELL` and string forms): the service's own port and path.
- URLs a service's environment names on another service of the recipe (`ASK_URL=http://app:3000/x`):
  the callee's port and path, asked both as the caller writes the name (from the caller's
  container: a bare name on a shared network may reach another stack) and by the stack's own name.
- URLs and paths named in the sweep failure's message (`/xrpc/_health -> 000`, `GET /api 502`,
  `http://app:3000/x`): a bare path is asked on each place above that gives a port.

Values are interpolated from the stack's env (`.env.sample`, abra.sh exports, the case's env) as
abra would deploy the default stack (`compose.recipe_stacks`); a variable with no value is recorded
under `unresolved` and never guessed (the collector may read the value a live stack was deployed with).
A path that looks like an action (`/reconfigure`, `/remove`, a webhook) is never asked as written:
a called URL is asked at `/` (reachability), a message path is listed under `ignored`.
"""
from __future__ import annotations

import re
from typing import Any

from . import compose as C

ROUTER_RE = re.compile(r"^traefik\.http\.routers\.([^.]+)\.(rule|service|middlewares)$")
LB_PORT_RE = re.compile(r"^traefik\.http\.services\.([^.]+)\.loadbalancer\.server\.port$")
STRIP_RE = re.compile(r"^traefik\.http\.middlewares\.([^.]+)\.stripprefix\.prefixes$")
CALL_RE = re.compile(r"\b(HostRegexp|HostHeader|Host|PathRegexp|PathPrefix|Path)\s*\(([^()]*)\)")
ARG_RE = re.compile(r"`([^`]*)`|\"([^\"]*)\"|'([^']*)'")
URL_RE = re.compile(r"\b(https?)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?(/[^\s'\"|;&)<>`]*)?")
LOCAL = {"localhost", "127.0.0.1", "0.0.0.0", "[::1]", "::1"}
# a path in the failure message is an HTTP path when an answer or a method is beside it
MSG_PATH_RE = re.compile(
    r"(?:\b(?:GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS)\s+(?P<a>/[\w.~%/-]*)"
    r"|(?<![\w.:/])(?P<b>/[\w.~%-]+(?:/[\w.~%-]*)*)\s*(?:->|=>|returned|answered|status|:)\s*(?:HTTP\s*)?(?:status\s*)?\d{3}\b)")
MAX_HOSTS = 4
# a URL a service calls may be an action (a webhook, `/reconfigure`, `/remove`): asking it on a live
# stack could change it, so such a path is asked at `/` only (reachability), never as written
ACTION_RE = re.compile(r"(?i)(^|[/_.-])(add|create|delete|remove|reconfigure|reload|reset|restart|shutdown|stop|kill|"
                       r"purge|drop|update|upload|write|push|hooks?|webhooks?|notify|send|trigger|run|exec|apply|"
                       r"deploy|install|migrate|backup|restore)($|[/_.-])")


def _message(case: Any) -> str:
    if case is None:
        return ""
    if isinstance(case, str):
        return case
    sf = case.get("sweep_failure") if isinstance(case, dict) else getattr(case, "sweep_failure", None)
    if isinstance(sf, dict):
        return str(sf.get("message") or "")
    return str(getattr(sf, "message", "") or "")


def _missing(raw: str, env: dict) -> list[str]:
    """Variables of `raw` that interpolation cannot fill (no value, no default)."""
    out = []
    for name, op, _arg in C.references(raw):
        if op in (":-", "-", ":+", "+"):
            continue
        val = env.get(name)
        if name in C.KEEP or val is None or (val == "" and op == ":?"):
            out.append(name)
    return out


def _raw_labels(files: dict, names: list[str]) -> dict:
    """service -> (place, key) -> raw value, the last compose file of the stack that sets it."""
    out: dict = {}
    for n in names:
        doc, _ = C.parse_yaml(files.get(n, ""))
        for s, svc in ((doc or {}).get("services") or {}).items() if isinstance(doc, dict) else ():
            if not isinstance(svc, dict):
                continue
            d = out.setdefault(s, {})
            for place, v in (("labels", svc.get("labels")), ("deploy.labels", (svc.get("deploy") or {}).get("labels")
                                                             if isinstance(svc.get("deploy"), dict) else None)):
                if isinstance(v, (dict, list)):
                    for k, x in C.labels_dict(v).items():
                        d[(place, k)] = x
    return out


def parse_rule(rule: str) -> dict:
    """Hosts, paths and what was ignored in a Traefik rule (v2/v3 syntax)."""
    hosts, paths, ignored = [], [], []
    for fn, args in CALL_RE.findall(rule):
        vals = [next(g for g in m if g is not None) for m in ARG_RE.findall(args)]
        vals = [v for v in vals if v is not None]
        if fn in ("HostRegexp", "PathRegexp"):
            ignored.append(f"{fn}({args.strip()}): a pattern names no concrete {'host' if fn.startswith('Host') else 'path'}")
        elif fn in ("Host", "HostHeader"):
            for v in vals:
                for h in v.split(","):          # `Host(\`${DOMAIN}\`${EXTRA_DOMAINS})` with EXTRA_DOMAINS=",`b`"
                    h = h.strip().strip("`'\" ")
                    if h and h not in hosts:
                        hosts.append(h)
        else:
            paths += [v for v in vals if v and v not in paths]
    return {"hosts": hosts, "paths": paths, "ignored": ignored}


def routes_from_labels(labels: dict[str, str]) -> list[dict]:
    """Traefik routers of one container/service: router, rule, hosts, paths, port, strip prefixes."""
    routers: dict[str, dict] = {}
    ports, strips = {}, {}
    for k, v in labels.items():
        m = ROUTER_RE.match(k)
        if m:
            routers.setdefault(m.group(1), {})[m.group(2)] = v
        m = LB_PORT_RE.match(k)
        if m:
            ports[m.group(1)] = v
        m = STRIP_RE.match(k)
        if m:
            strips[m.group(1)] = [p.strip() for p in v.split(",") if p.strip()]
    out = []
    for r, d in sorted(routers.items()):
        if "rule" not in d:
            continue
        svc = d.get("service") or (next(iter(ports)) if len(ports) == 1 else None)
        port_raw = ports.get(svc) if svc else None
        mws = [x.strip().split("@")[0] for x in d.get("middlewares", "").split(",") if x.strip()]
        pr = parse_rule(d["rule"])
        out.append({"router": r, "rule": d["rule"], **pr, "calls": bool(CALL_RE.search(d["rule"])), "lb_service": svc, "port": port_raw,
                    "strip": sorted({p for mw in mws for p in strips.get(mw, [])}),
                    "why_no_port": "" if port_raw else (
                        f"router {r} names service {svc!r}, which has no loadbalancer.server.port label" if svc else
                        f"no loadbalancer.server.port label ({len(ports)} traefik service(s) on the container): "
                        "Traefik takes the image's single exposed port, which the compose files do not say")})
    return out


def _port(v: Any) -> int | None:
    try:
        p = int(str(v).strip())
    except (TypeError, ValueError):
        return None
    return p if 0 < p < 65536 else None


def _healthcheck_text(svc: dict) -> str:
    hc = svc.get("healthcheck")
    test = hc.get("test") if isinstance(hc, dict) else None
    if isinstance(test, list):
        if test and test[0] in ("CMD", "CMD-SHELL"):
            test = test[1:]
        return " ".join(str(x) for x in test)
    return str(test or "")


def _urls(text: str):
    for scheme, host, port, path in URL_RE.findall(text):
        yield scheme, host, (_port(port) if port else (443 if scheme == "https" else 80)), path or "/"


class _Acc:
    def __init__(self):
        self.targets: dict[tuple, dict] = {}
        self.stack: list[str] = []          # the compose files of the stack being read

    def add(self, service, port, path, host=None, why="", scheme="http", name=None, from_service=None,
            unresolved=(), stack=None):
        key = (service, port, path or "/", host, scheme, name, from_service, tuple(stack or self.stack))
        t = self.targets.get(key)
        if t is None:
            t = self.targets[key] = {"service": service, "port": port, "path": path or "/", "host": host,
                                     "scheme": scheme, "name": name, "from_service": from_service,
                                     "stack": list(stack or self.stack), "why": [], "unresolved": []}
        if why and why not in t["why"]:
            t["why"].append(why)
        t["unresolved"] = sorted(set(t["unresolved"]) | set(unresolved))
        return t


def _value(raw: str, env: dict) -> tuple[str, list[str]]:
    """(interpolated value, variables with no value): a value that misses a variable is not used."""
    miss = _missing(raw, env)
    return ("" if miss else C.interpolate(raw, env, errors=[])), miss


def _routes(res: dict, acc: "_Acc", p, s: str, place: str, labels: dict, rs: dict, senv: dict) -> None:
    """Targets of one service's Traefik routers; the rule is parsed before interpolation, so a host
    whose variable has no value is recorded as unresolved while the others stay usable."""
    rawvals = {k: rs.get((place, k), v) for k, v in labels.items()}
    for r in routes_from_labels(rawvals):
        rk = f"traefik.http.routers.{r['router']}.rule"
        file = p.label_origin.get(s, {}).get(("deploy" if place == "deploy.labels" else "labels", rk), "")
        why = f"{place} {rk}={r['rule']}" + (f" ({file})" if file else "")
        pk = f"traefik.http.services.{r['lb_service']}.loadbalancer.server.port"
        res["ignored"] += [{"service": s, "why": f"{why}: {i}"} for i in r["ignored"]]
        if r["port"] is None:
            res["unresolved"].append({"service": s, "what": "port", "vars": [], "why": f"{why}: {r['why_no_port']}"})
            continue
        pv, pmiss = _value(r["port"], senv)
        port = _port(pv)
        if port is None:
            res["unresolved"].append({"service": s, "what": "port", "vars": pmiss,
                                      "why": f"{place} {pk}={r['port']!r}: " + (f"no value for {', '.join(pmiss)}"
                                                                                 if pmiss else "not a port")})
            continue
        hosts, unres = [], []
        rv, rmiss = _value(r["rule"], senv)
        if not rmiss:        # every variable has a value: the rule as deployed (a variable may add hosts)
            r = {**r, **{k: v for k, v in parse_rule(rv).items() if k != "ignored"}}
        for h in r["hosts"]:
            hv, miss = _value(h, senv)
            if miss:
                unres += miss
                res["unresolved"].append({"service": s, "what": "host", "vars": miss,
                                          "why": f"{why}: host {h} has no value for {', '.join(miss)} (not guessed)"})
            elif hv and hv not in hosts:
                hosts.append(hv)
        inside = {n for x in r["hosts"] + r["paths"] for n, _o, _a in C.references(x)}
        rest = [n for n in _missing(r["rule"], senv) if n not in inside]
        if rest:         # `${EXTRA_DOMAINS}` beside the hosts, or the whole rule in one variable
            unres += rest
            res["unresolved"].append({"service": s, "what": "host" if r["calls"] else "rule", "vars": sorted(set(rest)),
                                      "why": f"{why}: no value for {', '.join(sorted(set(rest)))}"
                                             + (" (hosts it would add are not known)" if r["calls"] else
                                                " (the rule itself is unknown: host and path not guessed)")})
        paths = []
        for x in r["paths"] or ["/"]:
            xv, miss = _value(x, senv)
            if miss:
                unres += miss
                res["unresolved"].append({"service": s, "what": "path", "vars": miss, "why": f"{why}: path {x} not known"})
            elif xv not in paths:
                paths.append(xv)
        strips = []
        for x in r["strip"]:
            xv, miss = _value(x, senv)
            strips += [xv] if xv and not miss else []
        for path in paths:
            direct = path
            for sp in strips:
                if path == sp or path.startswith(sp.rstrip("/") + "/"):
                    direct = "/" + path[len(sp.rstrip("/")):].lstrip("/")
            pw = [why, f"{place} {pk}={r['port']}"] + ([f"stripprefix {', '.join(strips)}: the app sees {direct}"]
                                                      if direct != path else [])
            for h in (hosts[:MAX_HOSTS] or [None]):
                for w in pw:
                    acc.add(s, port, direct, h, w, unresolved=unres)


def _stack_targets(res: dict, acc: "_Acc", p, files: dict, stack) -> None:
    senv = stack.env
    raw = _raw_labels(files, stack.files)
    svcs = p.services
    for s, svc in sorted(svcs.items()):
        for place, labels in (("deploy.labels", C.deploy_labels(svc)), ("labels", svc.get("labels") or {})):
            if isinstance(labels, dict) and labels:
                _routes(res, acc, p, s, place, labels, raw.get(s, {}), senv)
        text = _healthcheck_text(svc)
        for scheme, host, port, path in _urls(text):
            if host in LOCAL or host == s:
                acc.add(s, port, path, None, f"healthcheck {text.strip()[:200]} ({p.where(s, 'healthcheck')})",
                        scheme=scheme)
        envv = svc.get("environment") or {}
        for k, v in (envv.items() if isinstance(envv, dict) else ()):
            for scheme, host, port, path in _urls(str(v or "")):
                if host in svcs and host != s:
                    w = f"services.{s}.environment {k}={v} ({p.where(s, 'environment')})"
                    if ACTION_RE.search(path):
                        path, w = "/", w + f" (its path {path} looks like an action: asked at / only)"
                    acc.add(host, port, path, None, w, scheme=scheme)
                    acc.add(host, port, path, None, w + f", asked from {s}'s container by the name {host!r}",
                            scheme=scheme, name=host, from_service=s)


def http_targets(files: dict[str, str], env: dict[str, str] | None = None, case: Any = None) -> dict:
    """{"targets": [...], "unresolved": [...], "ignored": [...], "stack": [[compose files]]} for the
    default stack abra would deploy from `files` (the recipe at a ref; a tree of plain stack files: each). Each target: service, port,
    path, host (Host header or None), scheme, name (the host name to use in the URL when the caller
    writes one, else None: the probe uses the stack's own service name), from_service (ask from that
    service's container), why (label / healthcheck / environment / message lines), unresolved vars."""
    res: dict = {"targets": [], "unresolved": [], "ignored": [], "stack": []}
    try:
        st = C.stacks(files, env)
    except Exception as e:  # noqa: BLE001 - a tree that cannot be read has no targets
        res["unresolved"].append({"what": "compose", "why": f"{type(e).__name__}: {e}"})
        return res
    if not st:
        return res
    acc = _Acc()
    svcs: dict = {}
    # a recipe deploys its default stack; a tree of plain stack files deploys any of them
    for stack in (st[:1] if C.is_recipe(files) else [x for x in st if len(x.files) == 1 or x.why == "override file"]):
        p = C.load_project(files, stack.files, stack.env)
        res["stack"].append(list(stack.files))
        acc.stack = list(stack.files)
        svcs.update(p.services)
        _stack_targets(res, acc, p, files, stack)
    # the failure message: URLs and paths it names
    msg = _message(case)
    entries = [t for t in acc.targets.values() if t["from_service"] is None]
    for line in msg.splitlines():
        for scheme, host, port, path in _urls(line):
            if ACTION_RE.search(path):
                res["ignored"].append({"service": "", "why": f"failure message names {path}: looks like an action, "
                                       "not asked on a live stack"})
                continue
            if host in svcs:
                acc.add(host, port, path, None, f"failure message: {line.strip()[:200]}", scheme=scheme)
            else:
                for t in entries:
                    if t["host"] == host:
                        acc.add(t["service"], t["port"], path, host, f"failure message: {line.strip()[:200]}",
                                stack=t["stack"])
        for m in MSG_PATH_RE.finditer(line):
            path = m.group("a") or m.group("b")
            if any(path in u[3] for u in _urls(line)):
                continue                                   # part of a URL handled above
            if ACTION_RE.search(path):
                res["ignored"].append({"service": "", "why": f"failure message names {path}: looks like an action, "
                                       "not asked on a live stack"})
                continue
            seen = set()
            for t in entries:
                k = (t["service"], t["port"], t["host"], t["scheme"], tuple(t["stack"]))
                if k not in seen:
                    seen.add(k)
                    acc.add(t["service"], t["port"], path, t["host"], f"failure message: {line.strip()[:200]}",
                            scheme=t["scheme"], unresolved=t["unresolved"], stack=t["stack"])
            if not entries:
                res["unresolved"].append({"what": "port", "vars": [], "why": f"failure message names {path} but "
                                          "no router, healthcheck or URL of the recipe gives a service and port"})
    res["targets"] = sorted(acc.targets.values(), key=lambda t: (t["service"], t["port"], t["path"], t["host"] or "",
                                                                  t["from_service"] or ""))
    return res
