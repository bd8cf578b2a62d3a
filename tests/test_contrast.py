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
