"""Every collector on real engine objects (a small stack deployed here, the lab's repos and
harness), including the 'unavailable' path."""
import json
import secrets
import time
from pathlib import Path

import pytest

from redfix_lib.bundle import Bundle, RunRecord
from redfix_lib.collectors import Context, collect
from redfix_lib.isolate import template_values
from redfix_lib.lab import engine as lab_engine, lab_home
from redfix_lib.lab.harness import lifecycle
from redfix_lib.nodes import LocalNode
from redfix_lib.params import load_case
from redfix_lib.results import HarnessResult, TierResult

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.engine

COMPOSE = """
version: "3.8"
services:
  app:
    image: redfix-lab/base:1
    stop_grace_period: 1s
    command: ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && echo 'sh: cannot create /etc/x.ini: Read-only file system' && exec httpd -f -p 80 -h /www"]
    networks: [proxy]
    ports:
      - target: 80
        mode: host
networks:
  proxy:
    external: true
"""


@pytest.fixture(scope="module")
def stack(engine, tmp_path_factory):
    lab_engine.lab_up()
    d = tmp_path_factory.mktemp("stack")
    (d / "compose.yml").write_text(COMPOSE)
    name = f"coll-{secrets.token_hex(3)}_lab_redfix_test"
    lifecycle.deploy(name, d, {"STACK_NAME": name})
    ok, detail = lifecycle.wait_converged(engine, name, 60)
    assert ok, detail
    yield name
    lifecycle.teardown(engine, [name])


def ctx_for(tmp_path, case_file, runs=()):
    case = load_case(ROOT / "params" / "lab" / case_file)
    b = Bundle(path=tmp_path / "b", case=case.to_dict(), runs=list(runs))
    b.save()
    return Context(case=case, bundle=b, node=LocalNode("t"), values=template_values(case, b.path, 0))


def by_kind(items, kind):
    return [i for i in items if i.kind == kind]


def test_network_aliases_and_dns_see_cross_stack_holders(tmp_path, stack, engine):
    cx = ctx_for(tmp_path, "bluesky-pds.yaml")
    items = collect(cx, [{"kind": "network_aliases", "network": "proxy", "name": "app"},
                         {"kind": "dns", "network": "proxy", "name": "app"}], progress=lambda m: None)
    al = by_kind(items, "network_aliases")[0]
    services = {h["service"] for h in al.data["holders"]}
    assert f"{stack}_app" in services and "warm-keycloak_lab_redfix_test_app" in services
    dns = by_kind(items, "dns")[0]
    assert dns.status == "ok" and dns.data["addresses"]
    assert set(dns.data["addresses"]) <= set(dns.data["owners"])          # every answer is an `app` holder
    assert dns.data["recipe_addresses"] == []                             # none is bluesky's
    assert (cx.bundle.path / dns.artifact).is_file()


def test_http_probe_status_and_zero(tmp_path, stack, engine):
    port = lifecycle.host_port(engine, stack, "app", 80)
    cx = ctx_for(tmp_path, "bluesky-pds.yaml")
    items = collect(cx, [{"kind": "http", "url": f"http://127.0.0.1:{port}/index.html"},
                         {"kind": "http", "url": "http://127.0.0.1:1/xrpc/_health", "tries": 2}], progress=lambda m: None)
    got = {i.source: i.data["status"] for i in by_kind(items, "http")}
    assert got[f"http://127.0.0.1:{port}/index.html"] == 200
    assert got["http://127.0.0.1:1/xrpc/_health"] == 0


def test_http_route_asks_inside_a_live_stack(tmp_path, stack, engine):
    """The http_route collector on a real stack (written without an engine at hand: its first live
    proof): wget exec'd in the stack's running container, 200 with the page's first bytes for a path
    that exists, 404 for one that does not, the Host header sent; the raw answers in the artifact."""
    cx = ctx_for(tmp_path, "bluesky-pds.yaml")
    t = {"service": "app", "port": 80, "host": "probe.lab.redfix.test", "scheme": "http", "name": None,
         "from_service": None, "why": ["test"], "unresolved": []}
    items = collect(cx, [{"kind": "http_route", "stack": stack,
                          "targets": [dict(t, path="/index.html"), dict(t, path="/nope")]}], progress=lambda m: None)
    it = by_kind(items, "http_route")[0]
    assert it.status == "ok", it.summary
    got = {a["path"]: a for a in it.data["answers"]}
    assert got["/index.html"]["status"] == 200 and "hello" in got["/index.html"]["head"]
    assert got["/index.html"]["via"]["service"] == f"{stack}_app"
    assert got["/nope"]["status"] == 404
    assert "Host: probe.lab.redfix.test" in got["/index.html"]["argv"]
    assert " 404 Not Found" in (cx.bundle.path / it.artifact).read_text()


def test_service_logs_and_task_history_from_saved_run(tmp_path, stack, engine):
    rd = tmp_path / "b" / "runs" / "001"
    lifecycle.dump_logs(engine, stack, rd / "services" / "cold")
    (rd / "harness.log").write_text("tier install: pass\n")
    run = RunRecord(index=1, mode="isolated", started="", wall_s=1, exit_code=1, proc_status="exited", outcome="fail",
                    result=HarnessResult("exit_code", [TierResult("run", "fail")]), log="runs/001/harness.log")
    cx = ctx_for(tmp_path, "gitea.yaml", runs=[run])
    items = collect(cx, [{"kind": "service_logs"}, {"kind": "task_history"}], progress=lambda m: None)
    logs = by_kind(items, "service_logs")
    assert logs and all("signatures" not in i.data and (cx.bundle.path / i.artifact).is_file() for i in logs)
    from redfix_lib.analyze import log_items      # the scan runs at classify time, on the stored files
    assert any("read-only-config-write" in i.data["signatures"] for i in log_items(cx.bundle)
               if i.kind == "service_logs")
    th = by_kind(items, "task_history")[0]
    assert th.status == "ok" and th.data["failed_per_service"] == {}


def test_node_clean_sees_leftover_stack(tmp_path, stack):
    cx = ctx_for(tmp_path, "gitea.yaml")
    it = collect(cx, [{"kind": "node_clean"}], progress=lambda m: None)[-1]
    assert it.data["clean"] is False and stack in it.data["left"]["stacks"]


def test_static_rules_expectations_harness_code_canonical(tmp_path, stack):
    cx = ctx_for(tmp_path, "mattermost-lts.yaml")
    from redfix_lib.analyze import expectation_item, harness_item, static_item
    items = collect(cx, [{"kind": "static_rules", "compare_recipe": "immich"}], progress=lambda m: None)
    raw = {i.data["label"]: i for i in by_kind(items, "static_rules")}
    assert all("findings" not in i.data and "compose.yml" in i.data["files"] for i in raw.values())
    st = {lbl: {f["rule"] for f in static_item(i, raw["previous-tag"].data["files"]).data["findings"]}
          for lbl, i in raw.items()}
    assert "R03" in st["tag"] and "R03" not in st["contrast"]
    cx = ctx_for(tmp_path / "d", "discourse.yaml")
    te = collect(cx, [{"kind": "test_expectation", "test": "tests/test_upgrade.py"}], progress=lambda m: None)[-1]
    assert "stale" not in te.data and "def test_" in te.data["test_source"]
    te = expectation_item(te, [])
    assert te.data["stale"] is True and te.data["only_in_unreleased"] == ["discourse-official-image"]
    assert (te.data["asserted"]["images"], te.data["asserted"]["removed_services"]) == \
        (["redfix-lab/discourse:3.5.3"], ["sidekiq"])
    assert collect(cx, [{"kind": "test_expectation"}], progress=lambda m: None)[-1].data["test"] == "tests/test_upgrade.py"
    cx = ctx_for(tmp_path / "k", "keycloak.yaml")
    hc = collect(cx, [{"kind": "harness_code", "call": "canonical.canonical_domain", "arg": "keycloak",
                       "against": "warm.WARM_DOMAINS"}], progress=lambda m: None)[-1]
    assert harness_item(hc).data["collides_with"] == ["keycloak"]
    disc = collect(cx, [{"kind": "harness_code"}], progress=lambda m: None)[-1]       # the default: discovery
    assert disc.data["functions"]["canonical.canonical_domain"] == "warm-keycloak.lab.redfix.test"
    assert harness_item(disc).data["collides_with"] == ["keycloak"]
    warm = lab_home() / "ci-warm" / "keycloak"
    warm.mkdir(parents=True, exist_ok=True)
    (warm / "canonical.json").write_text(json.dumps({"version": "10.1.0+26.0.5",
                                                     "timestamp": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}))
    try:
        cs = collect(cx, [{"kind": "canonical_state"}], progress=lambda m: None)[-1]
        assert cs.data["written_today"] is True and "WRITTEN TODAY" in cs.summary
    finally:
        (warm / "canonical.json").unlink()


def test_collector_failure_degrades_to_unavailable(tmp_path, stack):
    cx = ctx_for(tmp_path, "bluesky-pds.yaml")
    items = collect(cx, [{"kind": "dns", "network": "no-such-network-x", "name": "app"},
                         {"kind": "task_history"}], progress=lambda m: None)
    assert [i.status for i in items if i.kind in ("dns", "task_history")] == ["unavailable", "unavailable"]
    assert all(i.summary.startswith("unavailable:") for i in items if i.status == "unavailable")


def test_image_tools_looks_up_what_the_recipe_runs_inside_its_images(tmp_path, stack, engine):
    """The programs a healthcheck / entrypoint / command runs, derived from the compose at the tag, looked
    up in a throw-away container of the image on the node: busybox has wget and sh, not curl; an image
    the node does not have is recorded as such; nothing is left running."""
    from redfix_lib.analyze import image_tools_item
    from redfix_lib.bundle import EvidenceItem
    compose = """version: "3.8"
services:
  app:
    image: redfix-lab/base:1
    command: ["sh", "-c", "exec httpd -f -p 80"]
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://localhost/"]
  web:
    image: redfix-lab/base:1
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"]
  gone:
    image: redfix-lab/never-built:0.0.1
    entrypoint: ["/entrypoint.sh"]
"""
    cx = ctx_for(tmp_path, "ghost.yaml")
    cx.bundle.add_evidence(EvidenceItem(id="static_rules:ghost@tag", kind="static_rules", source="x", status="ok",
                                        summary="", data={"label": "tag", "ref": "t", "files": {"compose.yml": compose}}))
    before = {c.id for c in engine.containers.list(all=True)}
    items = by_kind(collect(cx, [{"kind": "image_tools"}], progress=lambda m: None, logs=False), "image_tools")
    j = image_tools_item(items[0])
    state = {(c["service"], c["tool"]): c["state"] for c in j.data["checks"]}
    assert state[("app", "curl")] == "missing" and state[("app", "sh")] == "present"
    assert state[("web", "/bin/sh")] == "present" and state[("web", "wget")] == "present"
    assert state[("gone", "/entrypoint.sh")] == "unknown"
    assert j.data["missing"] == ["curl"] and "curl (healthcheck (CMD)) is not in redfix-lab/base:1" in j.summary
    assert {c.id for c in engine.containers.list(all=True)} == before      # throw-away containers removed
