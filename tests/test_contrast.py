"""Contrast planning and reading (redfix_lib/contrast.py): pure, on synthetic bundles."""
from __future__ import annotations

from redfix_lib.bundle import EvidenceItem
from redfix_lib.classify import classify
from redfix_lib.contrast import MAX_CONTRAST_RUNS, in_run, plan, releases, walk
from redfix_lib.results import HarnessResult, TierResult
from redfix_lib.results import TestResult as TResult
from test_classify import mk_bundle, mk_run

TAGS = [f"1.{i}.0" for i in range(10)]        # 1.0.0 .. 1.9.0; the case fails at 1.9.0


def _known(**verdicts):
    return {t.replace("_", "."): {"verdict": v} for t, v in verdicts.items()}


def test_walk_takes_the_previous_tag_first_then_bisects_to_the_first_failing_release():
    w = walk(TAGS, "1.9.0", {})
    assert (w["next"], w["step"], w["state"]) == ("1.8.0", "previous-tag", "untested")
    # the failure began at 1.5.0: 1.0.0-1.4.0 pass, 1.5.0-1.9.0 fail
    truth = {t: ("passes" if t < "1.5.0" else "fails too") for t in TAGS}
    known, asked = {}, []
    while (w := walk(TAGS, "1.9.0", known))["next"]:
        asked.append(w["next"])
        known[w["next"]] = {"verdict": truth[w["next"]]}
    assert w["state"] == "began-at" and (w["last_pass"], w["first_fail"]) == ("1.4.0", "1.5.0")
    assert asked[0] == "1.8.0" and len(asked) <= 5 and len(set(asked)) == len(asked)   # log2, never twice


def test_walk_end_states():
    assert walk(TAGS, "1.9.0", {"1.8.0": {"verdict": "passes"}})["state"] == "began-at"   # the change since 1.8.0
    every = {t: {"verdict": "fails too"} for t in TAGS[:9]}
    w = walk(TAGS, "1.9.0", every)
    assert w["state"] == "every-release" and w["first_fail"] == "1.0.0" and w["next"] is None
    assert walk(["1.9.0"], "1.9.0", {})["state"] == "no-releases"
    # a branch (not a tag): every tag is earlier
    assert walk(TAGS, "fix/x", {})["next"] == "1.9.0"
    # mixed runs at the ref the walk wants next: it stops rather than guess
    w = walk(TAGS, "1.9.0", {"1.8.0": {"verdict": "fails too"}, "1.3.0": {"verdict": "mixed"}})
    assert w["next"] is None and w["state"] == "undecided"


def _static(ref, label, tags=None, files=None):
    return EvidenceItem(id=f"static_rules:r@{label}", kind="static_rules", source="x", status="ok", summary="",
                        data={"recipe": "r", "ref": ref, "label": label, "is_tag": True,
                              "files": files or {"compose.yml": "services: {app: {image: x/app:1}}\n"},
                              **({"tags": tags} if tags else {})})


def _contrast_run(b, tmp_path, ref, fail):
    c = mk_run(len(b.runs) + 1, fail, mode="contrast")
    c.ref = ref
    (tmp_path / c.log).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / c.log).write_text("failing line\n" if fail else "ok\n")
    b.runs.append(c)


def test_plan_is_costed_and_says_why_not(tmp_path):
    tags = ["0.7.0", "0.8.0", "0.9.0", "1.0.0"]
    b = mk_bundle(tmp_path / "det", [True] * 3, evidence=[_static("1.0.0", "tag", tags)])
    assert releases(b) == tags
    nxt, _ = plan(b, classify(b))
    assert nxt["ref"] == "0.9.0" and nxt["kind"] == "previous-tag"
    for ref in ("0.9.0", "0.8.0", "0.7.0"):
        _contrast_run(b, tmp_path / "det", ref, True)
    nxt, why = plan(b, classify(b))
    assert nxt is None and ("budget" in why or "every release" in why)
    assert len([r for r in b.runs if r.mode == "contrast"]) <= MAX_CONTRAST_RUNS
    # intermittent alone: one run elsewhere proves nothing
    b = mk_bundle(tmp_path / "int", [True, False, True, False], evidence=[_static("1.0.0", "tag", tags)])
    nxt, why = plan(b, classify(b))
    assert nxt is None and "not deterministic" in why
    # passes alone: nothing to localise
    b = mk_bundle(tmp_path / "pass", [False, False, False], evidence=[_static("1.0.0", "tag", tags)])
    assert plan(b, classify(b))[0] is None
    # the warm promotion runs only on latest: no release contrast, the reason says so
    b = mk_bundle(tmp_path / "warm", [True] * 3, tier="promote", evidence=[_static("1.0.0", "tag", tags)])
    nxt, why = plan(b, classify(b))
    assert nxt is None and "only on the latest release" in why


def test_a_passing_release_localises_against_the_first_failing_one(tmp_path):
    """Bisect found 0.8.0 passing and 0.9.0 failing: the changed files are those between them, not
    between 0.8.0 and the case's ref; the verdict records the walk and cites the contrast."""
    tags = ["0.8.0", "0.9.0", "1.0.0"]
    f_old = {"compose.yml": "services: {app: {image: x/app:1}}\n"}
    f_mid = {"compose.yml": "services: {app: {image: x/app:2}}\n", "abra.sh": "x\n"}
    b = mk_bundle(tmp_path, [True] * 3, evidence=[
        _static("1.0.0", "tag", tags, f_mid), _static("0.9.0", "previous-tag", None, f_mid),
        EvidenceItem(id="static_rules:r@0.8.0", kind="static_rules", source="x", status="ok", summary="",
                     data={"recipe": "r", "ref": "0.8.0", "label": "release", "is_tag": True, "files": f_old})])
    _contrast_run(b, tmp_path, "0.9.0", True)
    _contrast_run(b, tmp_path, "0.8.0", False)
    v = classify(b)
    assert v["contrast_walk"]["state"] == "began-at"
    c = next(c for c in v["contrasts"] if c["ref"] == "0.8.0")
    assert c["verdict"] == "passes" and c["against"] == "0.9.0" and c["changed_files"] == ["abra.sh", "compose.yml"]
    assert any("runs:contrast@0.8.0" in x["evidence"] for x in v["candidates"])
    assert v["contrast_plan"]["next"] is None and "began at 0.9.0" in v["contrast_plan"]["why"]


def test_cold_vs_warm_inside_the_runs(tmp_path):
    b = mk_bundle(tmp_path, [True] * 2, tier="promote")
    cw = in_run(b, "promote")
    assert cw["cold_passed"] == 2 and cw["cold_tiers"] == ["install"] and cw["reading"].startswith("cold passes")
    # a run whose cold tier failed as well is not a warm-only failure
    r = b.runs[0]
    r.result = HarnessResult("results.json", [TierResult("install", "fail"),
                                              TierResult("promote", "fail", [TResult("WC5 promote", "fail", 1, "x")])])
    assert in_run(b, "promote")["cold_passed"] == 1 and "not a warm-only" in in_run(b, "promote")["reading"]
    assert in_run(mk_bundle(tmp_path / "p", [True], tier="restore"), "restore") is None   # a pytest tier


# ---- the node's harness configuration: settings.toml at cc-ci's defaults --------------------
def _settings(text, present=True):
    return EvidenceItem(id="harness_settings:node", kind="harness_settings", source="/etc/cc-ci/settings.toml",
                        status="ok", summary="", data={"path": "/etc/cc-ci/settings.toml", "path_from": "cc-ci's default path",
                                                      "present": present, **({"text": text} if present else {})})


SKIP = "[upgrade]\nskip_canonicals_for_upgrade = true\n"


def _defaults_run(b, tmp_path, fail):
    c = mk_run(len(b.runs) + 1, fail, tier=b.case["sweep_failure"]["tier"], mode="contrast")
    c.ref = b.case["ref"]
    (tmp_path / c.log).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / c.log).write_text("failing line\n" if fail else "ok\n")
    b.runs.append(c)
    b.runs[-1].variant = {"kind": "harness-defaults", "env": {"CCCI_SETTINGS": "/dev/null"}}


def test_a_non_default_setting_for_the_failing_tier_is_contrasted_first_and_localises(tmp_path):
    tags = ["0.9.0", "1.0.0"]
    b = mk_bundle(tmp_path, [True] * 4, tier="upgrade", evidence=[_static("1.0.0", "tag", tags), _settings(SKIP)])
    nxt, _ = plan(b, classify(b))
    # before any release: one run with the node's settings at cc-ci's defaults, at the same ref
    assert nxt["kind"] == "harness-defaults" and nxt["ref"] == "1.0.0"
    assert nxt["env"] == {"CCCI_SETTINGS": "/dev/null"} and "skip_canonicals_for_upgrade = true" in nxt["question"]
    _defaults_run(b, tmp_path, fail=False)
    v = classify(b)
    assert (v["cause"], v["sub_cause"], v["flake_or_genuine"]) == ("harness", "node-settings", "genuine")
    assert {"runs:contrast@harness-defaults", "harness_settings:node"} <= set(v["evidence_cited"])
    assert "skip_canonicals_for_upgrade" in v["fix_approach"]
    assert any("--harness-defaults" in s["how"] for s in v["cold_verify"])
    # localised: no release contrast under the node's settings afterwards
    assert v["contrast_plan"]["next"] is None and v["contrast_plan"]["why"].startswith("localised")
    # the release walk ignores the defaults run (same ref, another question)
    from redfix_lib.contrast import outcomes
    assert outcomes(b, "upgrade") == {}


def test_failing_with_the_defaults_too_rules_the_settings_out_and_the_walk_goes_on(tmp_path):
    tags = ["0.9.0", "1.0.0"]
    b = mk_bundle(tmp_path, [True] * 4, tier="upgrade", evidence=[_static("1.0.0", "tag", tags), _settings(SKIP)])
    _defaults_run(b, tmp_path, fail=True)
    v = classify(b)
    assert v["cause"] != "harness"
    assert any("fails with cc-ci's default settings too" in r for r in v["undecided"]["ruled_out"])
    nxt, _ = plan(b, v)
    assert nxt["kind"] == "previous-tag" and nxt["ref"] == "0.9.0"      # never the same question twice


def test_settings_that_do_not_touch_the_tier_plan_no_defaults_contrast(tmp_path):
    # the skip setting acts on the upgrade base only: a restore failure is not contrasted with it
    b = mk_bundle(tmp_path / "r", [True] * 4, tier="restore", evidence=[_settings(SKIP)])
    nxt, _ = plan(b, classify(b))
    assert not nxt or nxt["kind"] != "harness-defaults"
    # every key at its default (or no file): nothing to contrast, and the verdict says it was ruled out
    for ev, name in ((_settings("[upgrade]\nskip_canonicals_for_upgrade = false\n"), "default"),
                     (_settings(None, present=False), "absent")):
        b = mk_bundle(tmp_path / name, [True] * 4, tier="upgrade", evidence=[ev])
        v = classify(b)
        nxt, _ = plan(b, v)
        assert not nxt or nxt["kind"] != "harness-defaults"
        assert any("the node's harness settings" in r and "nothing in it changes upgrade" in r
                   for r in v["undecided"]["ruled_out"])


def test_a_key_cc_ci_refuses_is_contrasted_for_any_tier(tmp_path):
    b = mk_bundle(tmp_path, [True] * 4, tier="install",
                  evidence=[_settings('[upgrade]\nskip_canonicals_for_upgrade = "yes"\n')])
    nxt, _ = plan(b, classify(b))
    assert nxt["kind"] == "harness-defaults"


def test_the_settings_reading_follows_cc_ci_loader():
    from redfix_lib import ccci
    r = ccci.read_settings(SKIP)
    assert r["non_default"] == [{"table": "upgrade", "key": "skip_canonicals_for_upgrade", "value": True,
                                 "default": False, "tiers": ["install", "upgrade"]}] and not r["problems"]
    assert ccci.read_settings("")["non_default"] == [] and ccci.read_settings("")["parsed"]
    assert ccci.read_settings(None)["problems"] == ["absent: every key at its default"]
    bad = ccci.read_settings("[[[")
    assert not bad["parsed"] and bad["non_default"] == [] and "malformed" in bad["problems"][0]
    odd = ccci.read_settings("[upgrade]\nskip_canonicals_for_upgrade = 1\nother = 2\n[ui]\nx = 1\n")
    assert odd["fatal"] and odd["fatal"][0]["key"] == "skip_canonicals_for_upgrade"
    assert any("unknown key upgrade.other" in p for p in odd["problems"]) and any("[ui]" in p for p in odd["problems"])


def test_the_lab_harness_resolves_the_upgrade_base_as_cc_ci(tmp_path, monkeypatch):
    from redfix_lib.lab.harness import settings as S
    from redfix_lib.lab.harness.run_recipe_ci import resolve_upgrade_base as base
    tags = ["1.0.0", "1.1.0", "1.2.0"]
    assert base("1.2.0", True, tags, "1.0.0", False)[0] == "1.0.0"            # the warm canonical (last green)
    assert base("1.2.0", True, tags, "1.0.0", True)[0] == "1.1.0"             # skipped: newest older release tag
    assert base("1.2.0", True, tags, None, False)[0] == "1.1.0"               # no canonical: the same fallback
    assert base("1.2.0", True, tags, "1.2.0", False)[0] == "1.1.0"            # canonical is the head: step back
    assert base("1.0.0", True, tags, None, False)[0] == ""                    # nothing older: upgrade skips
    f = tmp_path / "settings.toml"
    f.write_text(SKIP)
    monkeypatch.setenv("CCCI_SETTINGS", str(f))
    assert S.load()["upgrade"]["skip_canonicals_for_upgrade"] is True
    monkeypatch.setenv("CCCI_SETTINGS", "/dev/null")                          # what the contrast hands it
    assert S.load()["upgrade"]["skip_canonicals_for_upgrade"] is False
    monkeypatch.setenv("CCCI_SETTINGS", str(tmp_path / "absent.toml"))
    assert S.load()["upgrade"]["skip_canonicals_for_upgrade"] is False
    f.write_text('[upgrade]\nskip_canonicals_for_upgrade = "yes"\n')
    monkeypatch.setenv("CCCI_SETTINGS", str(f))
    import pytest
    with pytest.raises(TypeError):
        S.load()


def test_the_settings_probe_stores_the_raw_file_and_the_verdict_reads_it(tmp_path, monkeypatch):
    """The harness_settings collector (a file read on the node, no engine): the path the case's harness
    env gives (else cc-ci's default), the raw text and a copy in evidence/; absent -> said so."""
    from pathlib import Path
    from redfix_lib.bundle import Bundle
    from redfix_lib.collectors import Context, collect
    from redfix_lib.isolate import template_values
    from redfix_lib.nodes import LocalNode
    from redfix_lib.params import load_case
    monkeypatch.setenv("REDFIX_LAB_HOME", str(tmp_path / "lab"))
    case = load_case(Path(__file__).resolve().parent.parent / "params" / "lab" / "ghost.yaml")
    b = Bundle(path=tmp_path / "b", case={"case": case.case, "recipe": case.recipe, "ref": case.ref,
                                          "sweep_failure": {"tier": "upgrade"}})
    b.path.mkdir()
    cx = Context(case=case, bundle=b, node=LocalNode("t"), values=template_values(case, b.path, 0))
    got = collect(cx, [{"kind": "harness_settings"}], progress=lambda m: None, logs=False)
    assert got[0].data["present"] is False and "every default" in got[0].summary
    assert got[0].source == str(tmp_path / "lab" / "etc" / "cc-ci" / "settings.toml")
    f = tmp_path / "lab" / "etc" / "cc-ci" / "settings.toml"
    f.parent.mkdir(parents=True)
    f.write_text("# node settings\n" + SKIP)
    b.evidence.clear()
    got = collect(cx, [{"kind": "harness_settings"}], progress=lambda m: None, logs=False)[0]
    assert got.data["text"].endswith(SKIP) and (b.path / got.artifact).read_text() == f.read_text()
    assert got.data["path_from"] == "the case's harness env CCCI_SETTINGS"
    # judged at classify time, from the raw text
    from redfix_lib.analyze import settings_item
    j = settings_item(got)
    assert j.data["non_default"][0]["key"] == "skip_canonicals_for_upgrade" and "changes install, upgrade" in j.summary
    # a case without CCCI_SETTINGS reads cc-ci's default path
    case.harness.env.pop("CCCI_SETTINGS")
    from redfix_lib.collectors.settings import source
    assert source(cx, {}) == ("/etc/cc-ci/settings.toml", "cc-ci's default path")


def test_a_defaults_run_proves_nothing_without_a_setting_that_changes_the_tier(tmp_path):
    # the node's settings are at cc-ci's defaults: a passing defaults run is chance, never node-settings
    b = mk_bundle(tmp_path / "a", [True] * 4, tier="upgrade", evidence=[_settings(None, present=False)])
    _defaults_run(b, tmp_path / "a", fail=False)
    assert classify(b)["cause"] != "harness"
    # a defaults run at another ref does not answer the question about the case's ref
    b = mk_bundle(tmp_path / "b", [True] * 4, tier="upgrade", evidence=[_settings(SKIP)])
    _defaults_run(b, tmp_path / "b", fail=False)
    b.runs[-1].ref = "0.9.0"
    v = classify(b)
    assert v["cause"] != "harness" and v["contrast_plan"]["kind"] == "harness-defaults"


def test_an_unanswered_defaults_run_is_asked_once_more_then_the_walk_goes_on(tmp_path):
    b = mk_bundle(tmp_path, [True] * 4, tier="upgrade", evidence=[_static("1.0.0", "tag", ["0.9.0", "1.0.0"]),
                                                                   _settings(SKIP)])
    for n in (1, 2):
        _defaults_run(b, tmp_path, fail=False)
        b.runs[-1].outcome, b.runs[-1].result.source = "inconclusive", "unreadable"
        nxt, _ = plan(b, classify(b))
        assert nxt["kind"] == ("harness-defaults" if n == 1 else "previous-tag")


def test_a_refused_key_fails_every_tier_and_is_worded_as_such(tmp_path):
    bad = '[upgrade]\nskip_canonicals_for_upgrade = "yes"\n'
    for tier in ("", "install"):
        b = mk_bundle(tmp_path / (tier or "none"), [True] * 4, tier=tier or "install", evidence=[_settings(bad)])
        b.case["sweep_failure"]["tier"] = tier
        nxt, _ = plan(b, classify(b))
        assert nxt and nxt["kind"] == "harness-defaults", tier
    b = mk_bundle(tmp_path / "w", [True] * 4, tier="install", evidence=[_settings(bad)])
    _defaults_run(b, tmp_path / "w", fail=False)
    v = classify(b)
    assert (v["cause"], v["sub_cause"]) == ("harness", "node-settings")
    assert "cc-ci refuses" in v["fix_approach"] and "'yes'" not in v["fix_approach"] and '"yes"' in v["fix_approach"]
    # the warm promotion is never run with other settings (a green run on latest would promote)
    b = mk_bundle(tmp_path / "p", [True] * 4, tier="promote", evidence=[_settings(bad)])
    nxt, _ = plan(b, classify(b))
    assert not nxt or nxt["kind"] != "harness-defaults"


def test_the_cli_refuses_a_defaults_contrast_it_cannot_answer(tmp_path):
    import pytest
    from pathlib import Path
    from redfix_lib.errors import ParamsError
    from redfix_lib.params import load_case
    from redfix_lib.pipeline import harness_defaults_problem
    root = Path(__file__).resolve().parent.parent / "params" / "lab"
    ghost = load_case(root / "ghost.yaml")
    harness_defaults_problem(ghost, None, "<command line>", "--harness-defaults")          # fine
    harness_defaults_problem(ghost, ghost.ref, "<command line>", "--harness-defaults")     # fine
    with pytest.raises(ParamsError, match="another ref"):
        harness_defaults_problem(ghost, "1.0.0+5.80.0", "<command line>", "--harness-defaults")
    with pytest.raises(ParamsError, match="would promote"):
        harness_defaults_problem(load_case(root / "gitea.yaml"), None, "<command line>", "--harness-defaults")


def test_a_run_variant_round_trips_and_old_bundles_read_the_same(tmp_path):
    from redfix_lib.bundle import load_bundle
    b = mk_bundle(tmp_path, [True] * 2, tier="upgrade", evidence=[_settings(SKIP)])
    _defaults_run(b, tmp_path, fail=False)
    b.save()
    import json
    raw = json.loads((tmp_path / "bundle.json").read_text())
    assert "variant" not in raw["runs"][0] and raw["runs"][-1]["variant"]["kind"] == "harness-defaults"
    back = load_bundle(tmp_path)
    assert back.runs[-1].variant == b.runs[-1].variant and back.runs[0].variant == {}
    from redfix_lib.report import contrasts_line
    line = contrasts_line(classify(back))
    assert "with cc-ci's default settings (the node sets upgrade.skip_canonicals_for_upgrade = true) passes" in line
