"""HTTP answers of the recipe's published routes on a live stack of the recipe left on the node
(on cc-ci the warm canonical `warm-<recipe>…` stays deployed; in the lab the warm/live-warm stacks).

The targets come from the recipe's compose files at the tag (`http_targets`: Traefik routers,
load-balancer ports, healthchecks, URLs a service calls, paths in the failure message). Each is
asked from inside the stack's network:
`wget -S -O- -T 5 [--header Host: h] http://<stack>_<service>:<port><path>` exec'd in a running
container of the stack (`curl -sS -i` when the image has no wget; for a URL a service calls, in the
caller's container with the name as the caller writes it), else from a throw-away container of an
image already on the node on an attachable network of the service (no registry is needed). Stored raw: the command, the
status line(s) wget printed, the first bytes, the time, which container. No live stack ->
`unavailable` with the reason. Judgement lives in analyze.http_route_item."""
from __future__ import annotations

import re
import time

from ..bundle import EvidenceItem
from ..http_targets import http_targets, routes_from_labels
from .network import running

# `timeout` bounds the exec (exec_run has no timeout); no `wget -T`: Debian's static busybox wget
# crashes (SIGSEGV, exit 139) with it. Without `timeout` in the image, plain wget, then curl.
WGET = ("timeout", "10", "wget", "-S", "-O-")
WGET_BARE = ("wget", "-S", "-O-")
CURL = ("curl", "-sS", "-i", "-m", "5")      # images without wget often have curl
CONNECT_FAIL_RE = re.compile(r"can't connect|No route to host|Connection refused|timed out|Network is unreachable|"
                             r"Failed to connect|Could not resolve|bad address", re.I)
STATUS_RE = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})")
TOOL_MISSING_RE = re.compile(r"executable file not found|exec: \"?wget\"?: |wget: not found|No such file or directory", re.I)
PROBE_IMAGE_RE = re.compile(r"busybox|alpine|redfix-lab/base")
HEAD = 600                 # first characters of an answer kept in the item (the artifact keeps 4 KiB)
MAX_TARGETS, MAX_STACKS = 12, 2
STACK_LABEL = "com.docker.stack.namespace"


def _recipe_files(cx):
    from .static import tag_files
    tag = tag_files(cx.bundle)
    return (tag.data["files"], tag.data.get("env")) if tag else (None, None)


def live_stacks(client, recipe: str, services: set[str], named: str | None = None) -> dict[str, dict]:
    """stack -> {short service name: docker Service}: stacks on the node whose name carries the
    recipe's name (`warm-<recipe>_…`) and that run one of its services; warm stacks first."""
    by_ns: dict[str, dict] = {}
    for s in client.services.list():
        spec = s.attrs["Spec"]
        ns = (spec.get("Labels") or {}).get(STACK_LABEL, "")
        if ns:
            name = spec["Name"]
            by_ns.setdefault(ns, {})[name[len(ns) + 1:] if name.startswith(ns + "_") else name] = s
    if named:
        return {named: by_ns[named]} if named in by_ns else {}
    pat = re.compile(rf"(^|[-_.]){re.escape(recipe)}([-_.]|$)")
    live = [ns for ns, svcs in by_ns.items() if pat.search(ns) and set(svcs) & services]
    return {ns: by_ns[ns] for ns in sorted(live, key=lambda n: (not n.startswith("warm"), n))}


def live_host(service, t: dict) -> str | None:
    """The Host header the live service was deployed with for this target's route (its labels hold
    the interpolated rule; the compose default, e.g. .env.sample's example domain, is never live)."""
    spec = service.attrs["Spec"]
    labels = {**((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Labels", {}),
              **(spec.get("Labels") or {})}
    for r in routes_from_labels(labels):
        if str(r["port"]) == str(t["port"]) and r["hosts"] and all("$" not in h for h in r["hosts"]):
            return r["hosts"][0]
    return None


def _answer(out: bytes, code: int | None, ms: int) -> dict:
    text = (out or b"").decode("utf-8", "replace")
    statuses = [int(x) for x in STATUS_RE.findall(text)]
    errors = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("wget:")]
    return {"exit_code": code, "status": statuses[-1] if statuses else 0, "statuses": statuses,
            "errors": errors[:3], "ms": ms, "head": text[:HEAD], "raw": text[:4096]}


def _exec(container, argv: list[str]) -> dict:
    t0 = time.monotonic()
    r = container.exec_run(argv)
    return _answer(r.output, r.exit_code, int((time.monotonic() - t0) * 1000))


def _throwaway(client, image: str, network: str, argv: list[str]) -> dict:
    t0 = time.monotonic()
    c = client.containers.run(image, argv[1:], entrypoint=[argv[0]], network=network, detach=True,
                              labels={"redfix.probe": "http_route"})
    try:
        code = c.wait(timeout=30).get("StatusCode")
        out = c.logs(stdout=True, stderr=True)
    finally:
        c.remove(force=True)
    return _answer(out, code, int((time.monotonic() - t0) * 1000))


def probe_image(client, spec_image: str | None = None) -> str | None:
    """An image already on the node with wget (busybox-based first), never pulled."""
    if spec_image:
        return spec_image
    tags = sorted({t for im in client.images.list() for t in (im.tags or [])})
    return next((t for t in tags if PROBE_IMAGE_RE.search(t)), None)


def ask(client, ns: str, svcs: dict, t: dict, image: str | None) -> dict:
    """One target on one live stack: the answer and where it was asked from."""
    live = live_host(svcs[t["service"]], t) if t["service"] in svcs and not t.get("from_service") else None
    host = live or t.get("host")
    host_from = "live service labels" if live else ("compose" if host else "")
    name = t.get("name") or f"{ns}_{t['service']}"       # the stack's own name unless the caller writes one
    url = f"{t['scheme']}://{name}:{t['port']}{t['path']}"
    argv = [*WGET, *(["--header", f"Host: {host}"] if host else []), url]
    rec = {"stack": ns, "service": t["service"], "port": t["port"], "path": t["path"], "url": url,
           "host_header": host, "host_from": host_from, "why": t["why"], "argv": argv,
           "from_service": t.get("from_service"), "tried": []}
    order = [t["from_service"]] if t.get("from_service") else \
        [t["service"]] + sorted(s for s in svcs if s != t["service"])
    hdr = ["--header", f"Host: {host}"] if host else []

    def cmds(u):
        return ([*WGET, *hdr, u], [*WGET_BARE, *hdr, u], [*CURL, *(["-H", f"Host: {host}"] if host else []), u])
    for s in order:
        for c in running(client, f"{ns}_{s}")[:1]:
            for cmd in cmds(url):
                a = _exec(c, cmd)
                if a["exit_code"] in (126, 127) or (not a["statuses"] and TOOL_MISSING_RE.search(a["raw"])):
                    tool = cmd[2] if cmd[0] == "timeout" else cmd[0]
                    rec["tried"].append(f"{c.name}: no {tool}{' under timeout' if cmd[0] == 'timeout' else ''} "
                                        f"({a['head'][:120].strip()})")
                    continue
                out = {**rec, **a, "argv": cmd, "via": {"container": c.name, "service": f"{ns}_{s}"}}
                if not a["statuses"] and not t.get("name") and CONNECT_FAIL_RE.search(a["raw"]):
                    # the service's virtual IP did not answer: ask its tasks' own addresses (DNS
                    # round robin, tasks.<service>) — the app answering there puts the fault in the
                    # VIP / routing mesh, not in the app
                    turl = f"{t['scheme']}://tasks.{name}:{t['port']}{t['path']}"
                    b = _exec(c, [*cmd[:-1], turl])
                    out.update({k: b[k] for k in ("status", "statuses", "errors", "exit_code", "ms", "head")})
                    out["vip"] = {"url": url, **{k: a[k] for k in ("status", "errors", "exit_code", "ms")}}
                    out["tasks_url"] = turl
                    out["raw"] = a["raw"] + f"\n# tasks.{name}:\n" + b["raw"]
                return out
    if t.get("from_service"):
        return {**rec, "status": None, "via": None,
                "unavailable": f"no running container of {ns}_{t['from_service']} with wget or curl to ask from"}
    svc = svcs.get(t["service"])
    nets = [n.get("Target") for n in (svc.attrs["Spec"].get("TaskTemplate", {}).get("Networks") or [])] if svc else []
    image = probe_image(client, image)
    for nid in nets:
        try:
            net = client.networks.get(nid)
        except Exception:  # noqa: BLE001 - a network gone since is skipped
            continue
        if not net.attrs.get("Attachable"):
            rec["tried"].append(f"network {net.name}: not attachable")
            continue
        if not image:
            break
        a = _throwaway(client, image, net.name, [*WGET_BARE, *hdr, url])   # bounded by wait(timeout)
        return {**rec, **a, "argv": [*WGET_BARE, *hdr, url], "via": {"probe_image": image, "network": net.name}}
    return {**rec, "status": None, "via": None, "unavailable": (
        "no running container of the stack with wget or curl, and " + (
            "no busybox/alpine image on the node to run wget from (name one: probe image:)" if not image
            else "no attachable network of the service to attach a probe container to"))}


def collect(cx, spec) -> list[EvidenceItem]:
    files, env = _recipe_files(cx)
    if spec.get("targets"):
        derived = {"targets": spec["targets"], "unresolved": [], "ignored": []}
    elif files is None:
        return [EvidenceItem(id="http_route:targets", kind="http_route", source="recipe files at the tag",
                             status="unavailable",
                             summary="unavailable: no recipe files at the tag in the bundle (static_rules) to derive routes from")]
    else:
        derived = http_targets(files, env, cx.case)
    targets = derived["targets"][:MAX_TARGETS]
    base = {"targets": targets, "unresolved": derived["unresolved"], "ignored": derived.get("ignored", [])}
    if not targets:
        return [EvidenceItem(id="http_route:targets", kind="http_route", source="recipe files at the tag",
                             status="unavailable", data=base,
                             summary="unavailable: the compose files publish no HTTP route this probe can derive"
                                     + (f" ({len(derived['unresolved'])} unresolved)" if derived["unresolved"] else ""))]
    client = cx.node.docker()
    stacks = live_stacks(client, cx.case.recipe, {t["service"] for t in targets}, spec.get("stack"))
    if not stacks:
        return [EvidenceItem(id="http_route:live", kind="http_route", source="node", status="unavailable", data=base,
                             summary=f"unavailable: no live stack of {cx.case.recipe} on the node to ask "
                                     f"({len(targets)} derived target(s) kept)")]
    items = []
    for ns, svcs in list(stacks.items())[:MAX_STACKS]:
        answers = []
        for t in targets:
            try:
                answers.append(ask(client, ns, svcs, t, spec.get("image")))
            except Exception as e:  # noqa: BLE001 - one target that cannot be asked does not lose the others
                answers.append({"stack": ns, "service": t["service"], "port": t["port"], "path": t["path"],
                                "why": t["why"], "from_service": t.get("from_service"), "argv": [], "status": None,
                                "via": None, "unavailable": f"{type(e).__name__}: {e}"[:300]})
        art = cx.artifact(f"http-route-{ns}.txt")
        art.write_text("\n\n".join(
            f"$ {' '.join(a['argv'])}\n# via {a.get('via')} in {a.get('ms', '-')} ms, exit {a.get('exit_code')}\n"
            + (a.get("raw") or a.get("unavailable", "")) for a in answers))
        for a in answers:
            a.pop("raw", None)
        items.append(EvidenceItem(
            id=f"http_route:{ns}", kind="http_route", source=f"stack {ns}", status="ok", artifact=cx.bundle.rel(art),
            summary=f"{ns}: " + "; ".join(
                f"{a['service']}:{a['port']}{a['path']}"
                + (f" (as {a['from_service']} asks)" if a.get("from_service") else "")
                + f" -> {a['status'] if a.get('status') is not None else 'not asked'}" for a in answers)[:600],
            excerpt="\n".join(f"{a.get('url', a['path'])} -> {a.get('status')} {a.get('errors') or ''}" for a in answers)[:1200],
            data={**base, "stack": ns, "answers": answers}))
    return items
