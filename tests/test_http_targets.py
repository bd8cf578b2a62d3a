"""HTTP targets derived from compose files (pure) and the http_route collector on a fake docker client.

1. http_targets on the real trees in <project root>/../shared/real-recipes: a handful of targets
   checked by hand against the files (each assertion says what in the file gives it), the
   invariants on every tree (no guessed host, ports are ports), and on the lab recipes.
2. The forms one by one: labels in both places and both shapes, several hosts, Host && PathPrefix
   with stripprefix, HostRegexp ignored, healthcheck forms, unresolved variables, message paths.
3. The collector against a small fake of the docker SDK objects it uses (no engine): a live stack
   found by name, wget exec'd in its container, the answer stored raw; wget missing -> a throw-away
   container from an image on the node; no live stack -> unavailable.
4. The analysis: hints only, never a confident verdict on their own.
"""
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from redfix_lib.http_targets import http_targets, parse_rule
from redfix_lib.params import load_case

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / ".." / "shared" / "real-recipes"
LAB = ROOT / "redfix_lib" / "lab" / "recipes"


def real(rel: str) -> dict[str, str]:
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is missing (CI lays shared/ beside the clone; in a worktree: ln -s /work/shared ../shared)")
    d = REAL / rel
    return {p.relative_to(d).as_posix(): p.read_text(errors="replace") for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != "SOURCE.txt"}


def real_trees() -> list[str]:
    if not REAL.is_dir():
        return []
    out = []
    for d in sorted(REAL.iterdir()):
        out += [d.name] if (d / "SOURCE.txt").exists() else [f"{d.name}/{s.name}" for s in sorted(d.iterdir()) if s.is_dir()]
    return out


def find(res, **kw):
    return [t for t in res["targets"] if all(t.get(k) == v for k, v in kw.items())]


def key(t):
    return (t["service"], t["port"], t["path"], t["host"])


# ============================== 1. real trees, checked by hand ================================
def test_foodsharing_host_and_pathprefix_with_stripprefix_and_wget_healthcheck():
    # compose.yml: deploy.labels (list form) rule=Host(`${DOMAIN}`) && PathPrefix(`/fss-cms`), port 8787,
    # middleware <stack>-sp strips /fss-cms -> the app itself serves `/`; DOMAIN=foodsharing.se in
    # .env.sample; healthcheck ["CMD", "wget", "-qO-", "http://localhost:8787/api/health"].
    res = http_targets(real("foodsharing-cms"))
    assert sorted(key(t) for t in res["targets"]) == [("app", 8787, "/", "foodsharing.se"),
                                                      ("app", 8787, "/api/health", None)]
    routed = find(res, path="/")[0]
    assert any("PathPrefix(`/fss-cms`)" in w for w in routed["why"])
    assert any("stripprefix /fss-cms: the app sees /" in w for w in routed["why"])
    assert find(res, path="/api/health")[0]["why"][0].startswith("healthcheck wget -qO- http://localhost:8787/api/health")
    assert res["unresolved"] == [] and res["stack"] == [["compose.yml"]]


def test_gaseous_extra_domains_unset_is_recorded_not_guessed():
    # Host(`${DOMAIN}`${EXTRA_DOMAINS}): DOMAIN=gaseous.example.com in .env.sample, EXTRA_DOMAINS only
    # commented there -> the hosts it would add are unknown; the DOMAIN host stays usable; port 80.
    res = http_targets(real("gaseous"))
    assert [key(t) for t in res["targets"]] == [("app", 80, "/", "gaseous.example.com")]
    assert res["targets"][0]["unresolved"] == ["EXTRA_DOMAINS"]
    assert [(u["what"], u["vars"]) for u in res["unresolved"]] == [("host", ["EXTRA_DOMAINS"])]
    # the app's env given (as a case's env would): the extra host is read, nothing unresolved
    res = http_targets(real("gaseous"), {"EXTRA_DOMAINS": ", `www.g.test`", "DOMAIN": "g.test"})
    assert sorted(t["host"] for t in res["targets"]) == ["g.test", "www.g.test"] and res["unresolved"] == []


def test_coop_inlets_hostregexp_ignored_and_no_lb_port_unresolved():
    # rule=Host(`${DOMAIN}`) || HostRegexp(`{subdomain:[a-z1-9-]+}.${DOMAIN}`) and no
    # loadbalancer.server.port label: Traefik would take the image's exposed port, which the files do not say.
    res = http_targets(real("coop-inlets"))
    assert res["targets"] == []
    assert [u["what"] for u in res["unresolved"]] == ["port"] and "image's single exposed port" in res["unresolved"][0]["why"]


def test_go_ssb_room_hostregexp_ignored_with_reason_host_kept():
    res = http_targets(real("go-ssb-room-2021/2.0.3-HEAD"))
    assert [key(t) for t in res["targets"]] == [("app", 3000, "/", "go-ssb-room.example.com")]
    assert len(res["ignored"]) == 1 and "HostRegexp" in res["ignored"][0]["why"] and "no concrete host" in res["ignored"][0]["why"]


def test_nodex_next_whole_rule_in_one_unset_variable():
    # rule=${ROUTER_RULE} (deploy.sh computes it; .env.sample is under deploy/, not read by abra):
    # host and path unknown (not guessed), the port (80) is still a target; the healthcheck is
    # CMD-SHELL "wget -q -O /dev/null http://127.0.0.1/ || exit 1" -> 80 and /.
    res = http_targets(real("nodex-next"))
    assert [key(t) for t in res["targets"]] == [("app", 80, "/", None)]
    assert {w.split(" ", 1)[0] for w in res["targets"][0]["why"]} == {"deploy.labels", "healthcheck"}
    assert [(u["what"], u["vars"]) for u in res["unresolved"]] == [("rule", ["ROUTER_RULE"])]


def test_bore_router_service_links_pick_each_port():
    # ten routers, each `.service=${STACK_NAME}-N` with loadbalancer.server.port=N, Host(`N.${DOMAIN}`)
    res = http_targets(real("bore"))
    assert sorted((t["port"], t["host"]) for t in res["targets"]) == [(n, f"{n}.bore.example.com") for n in range(1, 11)]


def test_traefik_dashboard_router_to_api_internal_has_no_port():
    res = http_targets(real("traefik-2021/v2.4.8"))
    assert res["targets"] == [] and "'api@internal'" in res["unresolved"][0]["why"]


def test_swarmprom_env_url_callee_and_caddy_healthcheck():
    # docker-compose.yml (plain stack): unsee's ALERTMANAGER_URIS=default:http://alertmanager:9093
    # -> alertmanager:9093 asked both by the stack's name and from unsee's container by `alertmanager`;
    # caddy's healthcheck ["CMD", "curl", "-f", "http://localhost:3000"] -> caddy:3000 /.
    res = http_targets(real("swarmprom-v1.8"))
    assert sorted((t["service"], t["port"], t["path"], t["from_service"] or "") for t in res["targets"]) == [
        ("alertmanager", 9093, "/", ""), ("alertmanager", 9093, "/", "unsee"), ("caddy", 3000, "/", "")]
    assert find(res, from_service="unsee")[0]["name"] == "alertmanager"


def test_dogvscat_or_of_hosts_and_required_variable_without_value():
    res = http_targets(real("dogvscat"))
    # stack-menu.yml: rule=Host(`www.dogvs.cat`) || Host(`dogvs.cat`), port 80 -> both hosts
    assert sorted(t["host"] for t in find(res, service="menu")) == ["dogvs.cat", "www.dogvs.cat"]
    assert find(res, service="menu")[0]["stack"] == ["stack-menu.yml"]
    # dockerswarm-rocks docs/portainer.yml: Host(`${DOMAIN?Variable not set}`), no .env -> host None, DOMAIN recorded
    res = http_targets(real("dockerswarm-rocks"))
    p = find(res, service="portainer")
    assert [key(t) for t in p] == [("portainer", 9000, "/", None)] and p[0]["unresolved"] == ["DOMAIN"]


@pytest.mark.parametrize("rel", real_trees() or ["<missing ../shared>"])
def test_every_real_tree_no_guessed_value(rel):
    if rel.startswith("<"):
        pytest.skip("../shared is missing")
    res = http_targets(real(rel))
    for t in res["targets"]:
        assert isinstance(t["port"], int) and 0 < t["port"] < 65536
        assert t["path"].startswith("/") and "$" not in t["path"]
        assert t["host"] is None or (t["host"] and "$" not in t["host"] and "`" not in t["host"])
        assert t["why"] and t["service"]
    for u in res["unresolved"]:
        assert u["why"]


def test_real_trees_totals():
    trees = real_trees()
    if not trees:
        pytest.skip("../shared is missing")
    got = {rel: http_targets(real(rel)) for rel in trees}
    with_targets = sorted(r for r, v in got.items() if v["targets"])
    # trees with no HTTP route the files can tell: atsea, prometheus-swarm (no Traefik labels, no
    # healthcheck fetching a URL), coop-inlets (no LB port), traefik-2021* (the dashboard router points
    # at api@internal)
    assert set(trees) - set(with_targets) == {"atsea", "coop-inlets", "prometheus-swarm", "traefik-2021-head",
                                              "traefik-2021/v2.4.8"}
    # portainer-compose traefik/docker-compose.yml: container `labels:` (Docker provider), two routers
    # each with its own service -> 9000 (Host portainer.yourdomain.com) and 8000 (edge.yourdomain.com)
    assert sorted(key(t) for t in got["portainer-compose"]["targets"]) == [
        ("portainer", 8000, "/", "edge.yourdomain.com"), ("portainer", 9000, "/", "portainer.yourdomain.com")]
    # voting-app docker-compose.yml: vote's healthcheck ["CMD", "curl", "-f", "http://localhost"] -> port 80, /
    assert [key(t) for t in got["voting-app"]["targets"]] == [("vote", 80, "/", None)]
    print(f"{len(with_targets)}/{len(trees)} real trees give targets, "
          f"{sum(len(v['targets']) for v in got.values())} targets, "
          f"{sum(len(v['unresolved']) for v in got.values())} unresolved, {sum(len(v['ignored']) for v in got.values())} ignored")


# ============================== 1b. the lab recipes ===========================================
def lab_tree(recipe, ref):
    d = LAB / recipe / "versions" / ref
    return {p.relative_to(d).as_posix(): p.read_text() for p in d.rglob("*") if p.is_file()}


def test_lab_bluesky_message_path_on_the_port_caddy_calls():
    case = load_case(ROOT / "params" / "lab" / "bluesky-pds.yaml")
    res = http_targets(lab_tree(case.recipe, case.ref), None, case)
    # caddy's ASK_URL=http://app:3000/tls-check names app:3000; the failure 'warm promote /xrpc/_health -> 000'
    # names /xrpc/_health, asked on that service and port
    assert sorted((t["service"], t["port"], t["path"], t["from_service"] or "") for t in res["targets"]) == [
        ("app", 3000, "/tls-check", ""), ("app", 3000, "/tls-check", "caddy"), ("app", 3000, "/xrpc/_health", "")]
    assert find(res, path="/xrpc/_health")[0]["why"] == ["failure message: warm promote /xrpc/_health -> 000"]


@pytest.mark.parametrize("case_file", ["discourse.yaml", "gitea.yaml", "keycloak.yaml", "mattermost-lts.yaml", "mumble.yaml"])
def test_lab_recipes_without_http_routes(case_file):
    case = load_case(ROOT / "params" / "lab" / case_file)
    assert http_targets(lab_tree(case.recipe, case.ref), None, case)["targets"] == []


# ============================== 2. the forms ==================================================
FORMS = """
version: "3.8"
services:
  app:
    image: x/app:1
    labels:
      traefik.http.routers.web.rule: "Host(`a.test`, `b.test`) && Path(`/login`)"
      traefik.http.services.web.loadbalancer.server.port: "${APP_PORT:-8080}"
    healthcheck:
      test: ["CMD-SHELL", "wget -q --spider http://127.0.0.1:8080/healthz || exit 1"]
  api:
    image: x/api:1
    healthcheck:
      test: curl -fsS http://localhost:3000/health
    deploy:
      labels:
        - traefik.http.routers.api.rule=HostRegexp(`{any:.+}`)
        - traefik.http.services.api.loadbalancer.server.port=3000
  db:
    image: postgres:16
    healthcheck:
      test: ["CMD", "pg_isready"]
    environment:
      - DUMP=http://example.org/x
"""


def test_forms_labels_mapping_several_hosts_default_healthchecks():
    res = http_targets({"compose.yml": FORMS})
    assert sorted(key(t) for t in res["targets"]) == [
        ("api", 3000, "/", None),                            # the router: HostRegexp names no host, any host routes
        ("api", 3000, "/health", None),                      # string-form healthcheck (curl)
        ("app", 8080, "/healthz", None),                     # CMD-SHELL wget --spider 127.0.0.1
        ("app", 8080, "/login", "a.test"), ("app", 8080, "/login", "b.test")]   # mapping labels, ${APP_PORT:-8080}
    assert [i["service"] for i in res["ignored"]] == ["api"] and "HostRegexp" in res["ignored"][0]["why"]
    # db: pg_isready fetches no URL; an env URL to a host that is no service of the stack is no target
    assert not find(res, service="db")


def test_overlay_adds_a_router_and_env_wins():
    over = ('services:\n  app:\n    deploy:\n      labels:\n'
            '        - traefik.http.routers.two.rule=Host(`${DOMAIN}`)\n'
            '        - traefik.http.routers.two.service=two\n'
            '        - traefik.http.services.two.loadbalancer.server.port=9000\n')
    files = {"compose.yml": FORMS, "compose.two.yml": over,
             ".env.sample": "DOMAIN=x.example.com\nCOMPOSE_FILE=compose.yml\nCOMPOSE_FILE=\"$COMPOSE_FILE:compose.two.yml\"\n"}
    res = http_targets(files)
    assert find(res, port=9000)[0]["host"] == "x.example.com" and "(compose.two.yml)" in find(res, port=9000)[0]["why"][0]
    assert find(http_targets(files, {"DOMAIN": "live.test"}), port=9000)[0]["host"] == "live.test"


def test_message_paths_and_urls_not_file_paths():
    case = {"sweep_failure": {"message": "GET /api/v1/ping 502 Bad Gateway\n"
                                         "  File \"/app/index.js\", line 3\n"
                                         "health http://app:8080/ready returned 000\n"
                                         "copy /var/lib/data failed"}}
    res = http_targets({"compose.yml": FORMS}, None, case)
    msg = [t for t in res["targets"] if any(w.startswith("failure message") for w in t["why"])]
    assert sorted({t["path"] for t in msg}) == ["/api/v1/ping", "/ready"]
    assert find(res, path="/ready") == [t for t in msg if t["path"] == "/ready"]
    assert {(t["service"], t["port"]) for t in find(res, path="/ready")} == {("app", 8080)}
    # a bare path is asked on every place that gives a port
    assert {(t["service"], t["port"], t["host"]) for t in find(res, path="/api/v1/ping")} == {
        ("api", 3000, None), ("app", 8080, None), ("app", 8080, "a.test"), ("app", 8080, "b.test")}


def test_parse_rule():
    r = parse_rule("Host(`a`) || (HostHeader(`b`) && PathPrefix(`/p`, `/q`)) || HostRegexp(`{x:.+}`)")
    assert (r["hosts"], r["paths"], len(r["ignored"])) == (["a", "b"], ["/p", "/q"], 1)


def test_unreadable_tree_gives_no_targets():
    assert http_targets({"compose.yml": "services: [\n"})["targets"] == []
    assert http_targets({})["targets"] == []


# ============================== 3. the collector on a fake docker client ======================
class FakeExec:
    def __init__(self, code, out):
        self.exit_code, self.output = code, out


class FakeContainer:
    def __init__(self, name, answers):
        self.name, self.answers, self.calls = name, answers, []

    def exec_run(self, argv):
        self.calls.append(argv)
        code, out = self.answers(argv)
        return FakeExec(code, out)


class FakeService:
    def __init__(self, name, ns, labels=None, nets=()):
        self.attrs = {"Spec": {"Name": name, "Labels": {"com.docker.stack.namespace": ns, **(labels or {})},
                               "TaskTemplate": {"Networks": [{"Target": n} for n in nets]}}}


class FakeClient:
    def __init__(self, services, containers, images=(), networks=None, run_out=b""):
        self.services = SimpleNamespace(list=lambda: services)
        self._containers, self.ran = containers, []
        self.containers = SimpleNamespace(list=self._list, run=self._run)
        self.images = SimpleNamespace(list=lambda: [SimpleNamespace(tags=[t]) for t in images])
        self.networks = SimpleNamespace(get=lambda n: (networks or {})[n])
        self.run_out = run_out

    def _list(self, filters):
        svc = filters["label"].split("=", 1)[1]
        return self._containers.get(svc, [])

    def _run(self, image, command, entrypoint, network, detach, labels):
        self.ran.append((image, entrypoint, command, network, labels))
        out = self.run_out
        return SimpleNamespace(wait=lambda timeout: {"StatusCode": 0}, logs=lambda stdout, stderr: out,
                               remove=lambda force: None)


OK = b'Connecting to app (10.0.1.5:3000)\n  HTTP/1.1 200 OK\n  Content-Type: application/json\n\n{"version":"v0.4.219"}'
REFUSED = b"Connecting to app (10.0.9.9:3000)\nwget: server returned error: HTTP/1.1 404 Not Found\n"


def ctx(tmp_path, client, case_file="bluesky-pds.yaml"):
    from redfix_lib.bundle import Bundle, EvidenceItem
    from redfix_lib.collectors import Context
    case = load_case(ROOT / "params" / "lab" / case_file)
    b = Bundle(path=tmp_path / "b", case=case.to_dict(), runs=[])
    b.evidence.append(EvidenceItem(id="static_rules:x@tag", kind="static_rules", source="r@t", status="ok", summary="files",
                                   data={"recipe": case.recipe, "ref": case.ref, "label": "tag", "is_tag": True,
                                         "files": lab_tree(case.recipe, case.ref)}))
    b.save()
    return Context(case=case, bundle=b, node=SimpleNamespace(docker=lambda: client), values={})


def test_collector_asks_each_target_in_the_live_warm_stack(tmp_path):
    from redfix_lib.collectors import collect
    ns = "warm-bluesky-pds_lab_redfix_test"
    caddy = FakeContainer("caddy.1", lambda argv: (1, REFUSED) if "http://app:3000/tls-check" in argv else (0, OK))
    app = FakeContainer("app.1", lambda argv: (0, OK))
    client = FakeClient([FakeService(f"{ns}_app", ns), FakeService(f"{ns}_caddy", ns),
                         FakeService("other_app", "other_lab_redfix_test")],
                        {f"{ns}_app": [app], f"{ns}_caddy": [caddy]})
    cx = ctx(tmp_path, client)
    items = collect(cx, [{"kind": "http_route"}], progress=lambda m: None, logs=False)
    it = items[-1]
    assert it.status == "ok" and it.id == f"http_route:{ns}"
    by = {(a["path"], a["from_service"]): a for a in it.data["answers"]}
    assert by[("/xrpc/_health", None)]["status"] == 200 and by[("/xrpc/_health", None)]["via"]["container"] == "app.1"
    assert by[("/xrpc/_health", None)]["argv"] == ["timeout", "10", "wget", "-S", "-O-", f"http://{ns}_app:3000/xrpc/_health"]
    # the URL caddy calls, asked from caddy's container by the name caddy writes
    assert by[("/tls-check", "caddy")]["argv"][-1] == "http://app:3000/tls-check"
    assert by[("/tls-check", "caddy")]["status"] == 404 and by[("/tls-check", "caddy")]["via"]["container"] == "caddy.1"
    assert by[("/tls-check", None)]["status"] == 200
    assert '{"version":"v0.4.219"}' in by[("/xrpc/_health", None)]["head"]
    raw = (cx.bundle.path / it.artifact).read_text()
    assert "$ timeout 10 wget -S -O- http://app:3000/tls-check" in raw and "404 Not Found" in raw
    # the analysis: hints, never a cause
    from redfix_lib.analyze import http_route_item
    j = http_route_item(it, "promote")
    kinds = {h["kind"] for h in j.data["hints"]}
    assert kinds == {"route-answers-direct", "caller-name-differs"}


def test_collector_falls_back_to_a_throwaway_container_and_reads_the_live_host(tmp_path):
    from redfix_lib.collectors import collect
    ns = "warm-bluesky-pds_lab_redfix_test"
    nowget = FakeContainer("app.1", lambda argv: (126, b'OCI runtime exec failed: exec: "wget": executable file not found in $PATH'))
    net = SimpleNamespace(name="proxy", attrs={"Attachable": True})
    live = {"traefik.http.routers.x.rule": "Host(`warm-bluesky-pds.ci.test`)",
            "traefik.http.services.x.loadbalancer.server.port": "3000"}
    client = FakeClient([FakeService(f"{ns}_app", ns, labels=live, nets=["n1"])], {f"{ns}_app": [nowget]},
                        images=["postgres:16", "busybox:1.36"], networks={"n1": net},
                        run_out=b"  HTTP/1.1 503 Service Unavailable\nwget: server returned error: HTTP/1.1 503 Service Unavailable\n")
    cx = ctx(tmp_path, client)
    it = collect(cx, [{"kind": "http_route"}], progress=lambda m: None, logs=False)[-1]
    a = next(a for a in it.data["answers"] if a["path"] == "/xrpc/_health")
    assert a["status"] == 503 and a["via"] == {"probe_image": "busybox:1.36", "network": "proxy"}
    assert a["tried"] and "no wget" in a["tried"][0]
    assert client.ran[0][1] == ["wget"] and client.ran[0][4] == {"redfix.probe": "http_route"}
    # the Host header is the one the live service was deployed with (the compose files leave it unset here)
    assert a["host_header"] == "warm-bluesky-pds.ci.test" and a["host_from"] == "live service labels"
    assert ["--header", "Host: warm-bluesky-pds.ci.test", f"http://{ns}_app:3000/xrpc/_health"] in [r[2][-3:] for r in client.ran]
    c = next(a for a in it.data["answers"] if a["from_service"] == "caddy")
    assert c["status"] is None and "no running container of" in c["unavailable"]
    from redfix_lib.analyze import http_route_item
    h = http_route_item(it, "promote").data["hints"]
    assert h[0]["kind"] == "route-fails-live" and "corroborates a warm-step failure" in h[0]["note"]


def test_live_host_from_the_deployed_labels():
    from redfix_lib.collectors.http_route import live_host
    svc = FakeService("s_app", "s", labels={"traefik.http.routers.s.rule": "Host(`live.ci.test`)",
                                            "traefik.http.services.s.loadbalancer.server.port": "8080"})
    assert live_host(svc, {"port": 8080}) == "live.ci.test" and live_host(svc, {"port": 80}) is None


def test_no_live_stack_is_unavailable_with_targets_kept(tmp_path):
    from redfix_lib.collectors import collect
    client = FakeClient([FakeService("other_app", "other_lab_redfix_test")], {})
    it = collect(ctx(tmp_path, client), [{"kind": "http_route"}], progress=lambda m: None, logs=False)[-1]
    assert it.status == "unavailable" and "no live stack of bluesky-pds" in it.summary
    assert len(it.data["targets"]) == 3


def test_live_stacks_match_the_recipe_name_not_a_prefix():
    from redfix_lib.collectors.http_route import live_stacks
    client = FakeClient([FakeService("warm-gitea_x_app", "warm-gitea_x"), FakeService("warm-gitea2_x_app", "warm-gitea2_x"),
                         FakeService("gitea-abc_x_app", "gitea-abc_x"), FakeService("warm-gitea_x_db", "warm-gitea_x")], {})
    assert list(live_stacks(client, "gitea", {"app"})) == ["warm-gitea_x", "gitea-abc_x"]
    assert list(live_stacks(client, "gitea", {"web"})) == []


# ============================== 4. plan + classify ============================================
def test_plan_probes_adds_http_route_only_when_targets_exist(tmp_path):
    from redfix_lib.pipeline import plan_probes
    for case_file, want in (("bluesky-pds.yaml", True), ("gitea.yaml", False)):
        cx = ctx(tmp_path / case_file, None, case_file)
        _, post = plan_probes(cx.case, cx.bundle)
        assert ({"kind": "http_route"} in post) == want
        assert post[-1] == {"kind": "node_clean"}


def test_http_route_hints_never_change_a_stored_verdict(tmp_path):
    """A stored bundle with an http_route item added (the app answers the path the failure names,
    and the caller's name reaches something else) keeps its verdict; the hint is cited only where
    the verdict is undecided."""
    from redfix_lib.bundle import EvidenceItem, load_bundle
    from redfix_lib.classify import classify
    src = ROOT / "outputs" / "example" / "lab-bluesky-pds"
    dst = tmp_path / "b"
    shutil.copytree(src, dst)
    before = classify(load_bundle(dst))
    b = load_bundle(dst)
    ans = [{"stack": "warm-bluesky-pds_x", "service": "app", "port": 3000, "path": "/xrpc/_health",
            "url": "http://warm-bluesky-pds_x_app:3000/xrpc/_health", "why": ["failure message: x"],
            "from_service": None, "status": 200}]
    b.evidence.append(EvidenceItem(id="http_route:warm-bluesky-pds_x", kind="http_route", source="stack", status="ok", summary="x",
                                   data={"stack": "warm-bluesky-pds_x", "answers": ans, "targets": []}))
    b.save()
    after = classify(load_bundle(dst))
    for k in ("reproducibility", "cause", "sub_cause", "confidence"):
        assert after[k] == before[k]


def test_collector_uses_curl_when_the_image_has_no_wget_and_keeps_going_on_errors(tmp_path):
    from redfix_lib.collectors import collect
    ns = "warm-bluesky-pds_lab_redfix_test"

    def answers(argv):
        if "wget" in argv[:3]:        # `timeout 10 wget …` and bare `wget …`: no wget in the image
            return 127, b"OCI runtime exec failed: exec: \"wget\": executable file not found in $PATH"
        if argv[-1].endswith("/tls-check"):
            raise RuntimeError("exec broke")
        return 0, b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n"
    app = FakeContainer("app.1", answers)
    client = FakeClient([FakeService(f"{ns}_app", ns)], {f"{ns}_app": [app]})
    it = collect(ctx(tmp_path, client), [{"kind": "http_route"}], progress=lambda m: None, logs=False)[-1]
    by = {(a["path"], a["from_service"]): a for a in it.data["answers"]}
    h = by[("/xrpc/_health", None)]
    assert h["status"] == 502 and h["argv"] == ["curl", "-sS", "-i", "-m", "5", f"http://{ns}_app:3000/xrpc/_health"]
    assert "RuntimeError: exec broke" in by[("/tls-check", None)]["unavailable"]


def test_an_undecided_verdict_lists_the_route_hint_with_its_evidence(tmp_path):
    """With only the run logs and a live-stack answer (the failing path answers 000 on the warm stack
    too), the verdict stays unknown at confidence 0 and lists the answer as a hint citing the item."""
    from redfix_lib.bundle import EvidenceItem, load_bundle
    from redfix_lib.classify import classify
    dst = tmp_path / "b"
    shutil.copytree(ROOT / "outputs" / "example" / "lab-bluesky-pds", dst)
    b = load_bundle(dst)
    ans = [{"stack": "warm-bluesky-pds_x", "service": "app", "port": 3000, "path": "/xrpc/_health", "url": "u",
            "why": ["failure message: warm promote /xrpc/_health -> 000"], "from_service": None, "status": 0}]
    b.evidence = [EvidenceItem(id="http_route:warm-bluesky-pds_x", kind="http_route", source="stack", status="ok",
                               summary="x", data={"stack": "warm-bluesky-pds_x", "answers": ans, "targets": []})]
    b.save()
    v = classify(load_bundle(dst))
    assert (v["cause"], v["confidence"]["value"]) == ("unknown", 0.0)
    h = [h for h in v["undecided"]["hints"] if h["kinds"] == ["http_route"]]
    assert len(h) == 1 and h[0]["sub_cause"] == "route-fails-live" and h[0]["evidence"] == ["http_route:warm-bluesky-pds_x"]
    assert "corroborates a warm-step failure" in h[0]["notes"][0]


def test_action_paths_are_never_asked_as_written():
    # dogvscat old-stack-proxy.yml: swarm-listener calls DF_NOTIFY_CREATE_SERVICE_URL=
    # http://proxy:8080/v1/docker-flow-proxy/reconfigure and .../remove: GETs that change the proxy.
    # Asked at / only (reachability); the proxy's own healthcheck path /v1/docker-flow-proxy/ping stays.
    res = http_targets(real("dogvscat"))
    assert sorted({t["path"] for t in find(res, service="proxy")}) == ["/", "/v1/docker-flow-proxy/ping"]
    assert all("looks like an action" in w for t in find(res, service="proxy", path="/") for w in t["why"])
    case = {"sweep_failure": {"message": "POST /api/v1/users/delete -> 500\nGET /api/v1/ping -> 502"}}
    res = http_targets({"compose.yml": FORMS}, None, case)
    assert {t["path"] for t in res["targets"] if any(w.startswith("failure") for w in t["why"])} == {"/api/v1/ping"}
    assert any("/api/v1/users/delete" in i["why"] for i in res["ignored"])


def test_a_silent_vip_is_asked_again_at_the_task_addresses(tmp_path):
    """The service's virtual IP gives no route (a node whose IPVS / routing mesh is broken — this
    lab's machine has no ip_vs) while tasks.<service> answers: the answer is the app's, the VIP's
    failure is kept, and the analysis says where the fault is."""
    from redfix_lib.analyze import http_route_item
    from redfix_lib.collectors import collect
    ns = "warm-bluesky-pds_lab_redfix_test"

    def answers(argv):
        if f"http://{ns}_app:3000/" in argv[-1]:
            return 1, b"Connecting to x (10.0.1.6:3000)\nwget: can't connect to remote host (10.0.1.6): No route to host\n"
        return 0, b"  HTTP/1.1 200 OK\r\n\r\nok"
    client = FakeClient([FakeService(f"{ns}_app", ns)], {f"{ns}_app": [FakeContainer("app.1", answers)]})
    it = collect(ctx(tmp_path, client), [{"kind": "http_route"}], progress=lambda m: None, logs=False)[-1]
    a = next(a for a in it.data["answers"] if a["path"] == "/xrpc/_health" and not a["from_service"])
    assert a["status"] == 200 and a["tasks_url"] == f"http://tasks.{ns}_app:3000/xrpc/_health"
    assert a["vip"]["status"] == 0 and "No route to host" in a["vip"]["errors"][0]
    hints = http_route_item(it, "promote").data["hints"]
    assert any(h["kind"] == "vip-silent-tasks-answer" for h in hints)
    assert not any(h["kind"] == "route-fails-live" and h["target"].endswith("/xrpc/_health") for h in hints)
