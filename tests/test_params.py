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
        runs: {max: 0}
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
