import subprocess
import sys
import textwrap

import pytest

from redfix_lib.errors import ParamsError
from redfix_lib.params import load_case, load_cases
from redfix_lib.safety import recipe_problem, ref_problem
from conftest import write_case, ROOT


@pytest.mark.parametrize("ref", ["1.0.0+1.2.3", "main", "3.6.0+1.24.2-rootless", "ci/pg-restore", "v1.6.870-0"])
def test_good_refs(ref):
    assert ref_problem(ref) is None


@pytest.mark.parametrize("ref", ["main;rm -rf /", "$(id)", "../etc", "-rf", "a..b", "x`y`", "a b", "a/", "x.lock", ""])
def test_bad_refs(ref):
    assert ref_problem(ref)


@pytest.mark.parametrize("name", ["Gitea", "a;b", "../x", "-x", "a b", "$(x)", ""])
def test_bad_recipe_names(name):
    assert recipe_problem(name)


def test_good_case_loads(tmp_path):
    c = load_case(write_case(tmp_path, "pass"))
    assert c.recipe == "fakerecipe" and c.ref == "1.0.0+1.2.3"
    assert c.harness.unset == ["UNSET_ME"] and c.runs.max == 3


def test_malformed_reports_every_problem(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(textwrap.dedent("""\
        case: bad case
        recipe: "gitea;reboot"
        ref: "$(curl evil)"
        sweep_failure: {tier: deploy}
        harness:
          argv: "run_recipe_ci.py --all"
          env: {RECIPE: 5}
        runs: {max: -1}
        timeout_s: -1
        surprise: 1
        """))
    with pytest.raises(ParamsError) as ei:
        load_case(p)
    fields = [f for _, f, _ in ei.value.problems]
    for f in ("case", "recipe", "ref", "sweep_failure.tier", "harness.argv", "harness.env.RECIPE",
              "runs.max", "timeout_s", "surprise"):
        assert f in fields, f
    assert all(path == str(p) for path, _, _ in ei.value.problems)


def test_unknown_placeholder_and_yaml_number(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("case: x\nrecipe: r\nref: 1.0\nharness: {argv: ['{evil}']}\n")
    with pytest.raises(ParamsError) as ei:
        load_case(p)
    msgs = {f: r for _, f, r in ei.value.problems}
    assert "number" in msgs["ref"]
    assert "unknown placeholder" in msgs["harness.argv[0]"]


def test_invalid_yaml_names_line(tmp_path):
    p = tmp_path / "y.yaml"
    p.write_text("case: x\n  bad: [\n")
    with pytest.raises(ParamsError) as ei:
        load_case(p)
    assert ei.value.problems[0][1].startswith("line")


def test_duplicate_case_ids(tmp_path):
    write_case(tmp_path, "pass", name="a")
    (tmp_path / "b.yaml").write_text((tmp_path / "a.yaml").read_text())
    with pytest.raises(ParamsError) as ei:
        load_cases([str(tmp_path)])
    assert "duplicate" in ei.value.problems[0][2]


def test_cli_check_exit_2_one_line_per_problem(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("case: ok\nrecipe: 'a;b'\nref: '-x'\nharness: {argv: ['true']}\n")
    r = subprocess.run([sys.executable, "-m", "redfix_lib.cli", "check", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and all(str(p) in l for l in lines)
    assert "recipe" in lines[0] and "ref" in lines[1]


def test_shipped_params_are_valid():
    r = subprocess.run([sys.executable, "-m", "redfix_lib.cli", "check", str(ROOT / "params")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ---- the input gate (units; tests/test_hostile.py runs the hostile corpus through the CLI) ----------

def test_schema_and_dataclasses_agree():
    """A field the schema accepts is a field the code keeps (parse_case builds the dataclasses from
    the validated mapping, so a schema-only field would be dropped silently)."""
    import json
    from dataclasses import fields
    from redfix_lib.params import Case, HarnessSpec, NodeSpec, RunsPolicy, SCHEMA_PATH, SweepFailure
    props = json.loads(SCHEMA_PATH.read_text())["properties"]
    assert set(props) - {"$schema"} == {f.name for f in fields(Case)} - {"source"}
    for key, cls in (("harness", HarnessSpec), ("node", NodeSpec), ("runs", RunsPolicy),
                     ("sweep_failure", SweepFailure)):
        assert set(props[key]["properties"]) == {f.name for f in fields(cls)}, key


@pytest.mark.parametrize("tmpl,ok", [("{recipe}", True), ("a{{b}}c-{run_dir}/x", True), ("{recipe:>9}", False),
                                     ("{recipe!r}", False), ("{recipe.x}", False), ("{ref[0]}", False),
                                     ("{}", False), ("{0}", False), ("{recipe", False), ("}", False)])
def test_templates_only_plain_names(tmpl, ok):
    from redfix_lib.gate import template_problem
    from redfix_lib.params import PLACEHOLDERS
    assert (template_problem(tmpl, PLACEHOLDERS) is None) is ok


def test_expand_never_runs_a_format_spec():
    from redfix_lib.gate import expand
    assert expand("a{{b}}-{recipe}", {"recipe": "r"}) == "a{b}-r"
    # even if an unchecked template reached it, no spec is applied (no 1.5 GB padding)
    assert expand("{recipe:>1500000000}", {"recipe": "r"}) == "r"


@pytest.mark.parametrize("host,ok", [("cc-ci", True), ("root@cc-ci.example.org", True), ("u@h:2222", True),
                                     ("[::1]:22", True), ("-oProxyCommand=x", False), ("u@-oX", False),
                                     ("a b", False), ("h;id", False), ("h:0", False), ("h:70000", False),
                                     ("h\n", False), ("", False)])
def test_host_forms(host, ok):
    from redfix_lib.gate import host_problem
    assert (host_problem(host) is None) is ok


@pytest.mark.parametrize("url,ok", [("unix:///var/run/docker.sock", True), ("ssh://root@cc-ci:22", True),
                                    ("tcp://10.0.0.1:2376", True), ("http://x", False), ("unix://rel.sock", False),
                                    ("ssh://-oProxyCommand=x", False), ("tcp://h:0", False), ("/var/run/x", False),
                                    ("unix:///x\n", False)])
def test_docker_host_forms(url, ok):
    from redfix_lib.gate import docker_host_problem
    assert (docker_host_problem(url) is None) is ok


def test_names_match_in_full():
    """re.match with `$` accepted 'x\\n'; a case id ending in a newline named a folder."""
    assert recipe_problem("gitea\n") and ref_problem("main\n")
    from redfix_lib.safety import case_problem
    assert case_problem("x\n")


def test_alias_bomb_refused_before_expansion(tmp_path):
    p = tmp_path / "bomb.yaml"
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParamsError) as ei:
        load_case(p)
    assert "anchor" in ei.value.problems[0][2]


def test_symlinked_case_inside_its_folder_is_fine_outside_is_refused(tmp_path):
    good = write_case(tmp_path, "pass")
    (tmp_path / "link.yaml").symlink_to(good.name)
    assert load_case(tmp_path / "link.yaml").case == "fake"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "out.yaml").symlink_to(good)
    with pytest.raises(ParamsError) as ei:
        load_case(tmp_path / "sub" / "out.yaml")
    assert "symlink" in ei.value.problems[0][2]
    assert load_case(tmp_path / "sub" / "out.yaml", root=tmp_path).case == "fake"


def test_cc_ci_cases_follow_the_contract():
    """params/cc-ci/* are written against redfix_lib/ccci.py (docs/cc-ci.md): a case and the
    contract module cannot drift apart silently."""
    from redfix_lib import ccci
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent / "params" / "cc-ci"
    cases = [load_case(p) for p in sorted(root.glob("*.yaml"))]
    assert len(cases) == 6
    for c in cases:
        h = c.harness
        assert h.runs_dir == ccci.RUNS_DIR_DEFAULT and not h.results_json and not h.junit_glob, c.case
        assert h.tests_dir == ccci.TESTS_DIR, c.case
        assert tuple(h.argv) == ccci.HARNESS_ARGV and h.cwd == ccci.HARNESS_CWD, c.case
        assert h.env.get(ccci.SKIP_FETCH_ENV) == "1" and set(ccci.UNSET_FOR_COLD_LATEST) <= set(h.unset), c.case
        assert h.pre and h.pre[0][2] == ccci.STAGED_CHECKOUT, c.case
        assert c.node.busy == ccci.busy_probes(), c.case
        assert c.timeout_s > ccci.DEADLINE_S, c.case
        if c.sweep_failure.tier in ccci.ORCHESTRATOR_STEPS:
            assert c.sweep_failure.tests == ["WC5 promote"], c.case
    assert next(c for c in cases if c.recipe == "keycloak").runs.max == 0     # harness-only: no run
