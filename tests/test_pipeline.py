"""The pipeline's run stage on the fake harness (real processes, no engine): the posterior stop rule
counts the sweep's failure, never stops a passing sequence early when the sweep saw a failure, and
stops at once when a pass and a failure prove it intermittent."""
from redfix_lib import pipeline
from redfix_lib.bundle import load_bundle
from redfix_lib.classify import classify
from conftest import write_case

POLICY = "{max: 10, min: 1, stop_rule: sprt}"


def _stage(tmp_path, mode, arg=""):
    case_file = write_case(tmp_path, mode, arg, policy=POLICY)
    msgs = []
    with pipeline.session(case_file, tmp_path / "bundle") as s:
        pipeline.run_stage(s, under_load=False, progress=msgs.append)
    return load_bundle(tmp_path / "bundle"), msgs


def test_deterministic_after_four_with_the_sweeps_failure(tmp_path):
    b, msgs = _stage(tmp_path, "fail")
    assert len(b.runs) == 4 and any("posterior decided 'deterministic'" in m for m in msgs)
    v = classify(b)
    assert v["reproducibility"] == "deterministic" and v["runs"]["posterior"]["deterministic"] >= 0.95


def test_passes_alone_need_five_before_not_reproduced(tmp_path):
    b, msgs = _stage(tmp_path, "pass")
    assert len(b.runs) == 5
    assert classify(b)["reproducibility"] == "not-reproduced"


def test_flaky_stops_when_a_pass_and_a_failure_are_seen(tmp_path):
    b, _ = _stage(tmp_path, "flaky", "0.5,7")
    outs = [r.outcome for r in b.runs]
    assert "pass" in outs and "fail" in outs and len(set(outs[:-1])) == 1
    assert classify(b)["reproducibility"] == "intermittent"


def test_plan_probes_adds_named_probes_once():
    from redfix_lib.params import load_case
    from pathlib import Path
    case = load_case(Path(__file__).resolve().parent.parent / "params" / "lab" / "keycloak.yaml")
    case.probes = [{"kind": "node_clean"}, {"kind": "http", "url": "http://127.0.0.1:1/"},
                   {"kind": "static_rules", "compare_recipe": "immich"}]
    pre, post = pipeline.plan_probes(case)
    assert pre[0] == {"kind": "static_rules", "compare_recipe": "immich"}
    assert {"kind": "harness_code"} in pre and {"kind": "canonical_state"} in pre
    assert [p["kind"] for p in post] == ["service_logs", "task_history", "http", "node_clean"]


def test_shared_names_are_hosts_a_service_calls_over_an_external_network():
    compose = """
services:
  web:
    image: x/web:1
    environment: [UPSTREAM=http://app:8080/]
    networks: [proxy, internal]
    configs: [{source: conf, target: /etc/web.conf}]
  app:
    image: x/app:1
    networks: [internal]
  worker:
    image: x/w:1
    environment: [API=http://api:9000]
    networks: [internal]
networks:
  proxy: {external: true}
  internal: {}
configs:
  conf: {file: ./web.conf}
"""
    files = {"compose.yml": compose, "web.conf": "proxy_pass http://auth:9091;\nlisten http://localhost:80;\n"}
    assert pipeline.shared_names(files) == [("proxy", "app"), ("proxy", "auth")]
    # worker calls api only on its internal network: nothing another stack can answer
    assert pipeline.shared_names({"compose.yml": "services: {a: {image: x}}\n"}) == []


def test_contrasts_walk_back_across_tags_and_never_repeat(tmp_path):
    from redfix_lib.bundle import EvidenceItem
    from test_classify import mk_bundle, mk_run
    files = {"compose.yml": "services: {app: {image: x/app:1}}\n"}
    b = mk_bundle(tmp_path, [True] * 4, evidence=[
        EvidenceItem(id="static_rules:r@tag", kind="static_rules", source="x", status="ok", summary="",
                     data={"recipe": "r", "ref": "1.0.0", "label": "tag", "is_tag": True, "files": files,
                           "tags": ["0.8.0", "0.9.0", "1.0.0"]}),
        EvidenceItem(id="static_rules:r@previous-tag", kind="static_rules", source="x", status="ok", summary="",
                     data={"recipe": "r", "ref": "0.9.0", "label": "previous-tag", "is_tag": True, "files": files})])
    from redfix_lib.classify import classify
    from redfix_lib.contrast import plan

    def nxt():
        return (plan(b, classify(b))[0] or {}).get("ref")
    assert nxt() == "0.9.0"                                  # fails alone: the nearest earlier release first
    for i, ref in ((5, "0.9.0"), (6, "0.8.0")):
        c = mk_run(i, True, mode="contrast")
        c.ref = ref
        (tmp_path / c.log).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / c.log).write_text("failing line\n")
        b.runs.append(c)
        if ref == "0.9.0":
            assert nxt() == "0.8.0"                          # it fails too: bisect the older ones
    assert nxt() is None                                     # no older tag left, nothing asked twice
    assert "every release" in plan(b, classify(b))[1]
