"""redfix batch (papermill, replay mode) over stored lab bundles: notebooks, manifest, STATUS.md,
resumability and failure isolation. No engine needed: replay re-classifies stored bundles."""
import json
import re
import sys
import shutil
from pathlib import Path

import pytest

from redfix_lib.batch import run_batch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "outputs" / "example"
CASES = sorted(p.name for p in EXAMPLE.iterdir() if (p / "bundle.json").exists()) if EXAMPLE.is_dir() else []


@pytest.fixture
def day(tmp_path):
    d = tmp_path / "out" / "2026-11-27"
    d.mkdir(parents=True)
    for c in CASES:
        shutil.copytree(EXAMPLE / c, d / c)
    return d


def test_batch_replay_writes_notebooks_status_and_resumes(day, tmp_path):
    msgs = []
    rc = run_batch([str(ROOT / "params" / "lab")], date=day.name, out_root=str(day.parent), live=False,
                   progress=msgs.append)
    assert rc == 0, msgs
    man = json.loads((day / "manifest.json").read_text())
    assert {k: e["status"] for k, e in man["cases"].items()} == {c: "ok" for c in CASES}
    assert man["summary"] == "ok"
    status = (day / "STATUS.md").read_text()
    for section in ("## Starting state", "## Investigation tracker", "## Results table", "## HOW to cold-verify",
                    "## Contrasts", "## Node state left clean", "## Gate"):
        assert section in status
    contrasts = status.split("## Contrasts", 1)[1].split("## Node state", 1)[0]
    assert all(f"- {json.loads((day / c / 'verdict.json').read_text())['recipe']}: " in contrasts for c in CASES)
    for c in CASES:
        v = json.loads((day / c / "verdict.json").read_text())
        assert f"| {v['recipe']} |" in status and (day / f"{c}.ipynb").exists()
    assert "**PASS**" in status
    html = (day / "STATUS.html").read_text()
    assert html.startswith("<!doctype html>") and "data:image/png;base64," in html
    msgs.clear()
    assert run_batch([str(ROOT / "params" / "lab")], date=day.name, out_root=str(day.parent), live=False,
                     progress=msgs.append) == 0
    assert sum("done already" in m for m in msgs) == len(CASES)


def test_one_failing_case_does_not_stop_the_others(day):
    shutil.rmtree(day / CASES[0])                 # its replay has no bundle -> notebook error
    msgs = []
    rc = run_batch([str(ROOT / "params" / "lab")], date=day.name, out_root=str(day.parent), live=False,
                   progress=msgs.append)
    assert rc == 1
    man = json.loads((day / "manifest.json").read_text())
    assert man["cases"][CASES[0]]["status"] == "notebook-error" and "bundle.json" in man["cases"][CASES[0]]["error"]
    assert all(man["cases"][c]["status"] == "ok" for c in CASES[1:])
    assert (day / f"{CASES[0]}.ipynb").exists()                     # the error is kept in its notebook


def test_parallel_notebooks_run_in_their_own_folder_without_moving_the_process(tmp_path):
    """The node pool runs notebooks from threads: each kernel must start in its case's folder, and
    the process's own working directory must never move (papermill's cwd= chdir'd process-wide and,
    interleaved across threads, left the process in a case folder)."""
    import os
    import threading
    import nbformat
    from redfix_lib.batch import run_notebook
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os, time\ntime.sleep(1.0)\n"
                                          "open('where.txt', 'w').write(os.getcwd())")]
    src = tmp_path / "probe.ipynb"
    nbformat.write(nb, str(src))
    before = os.getcwd()
    dirs = [tmp_path / f"case{i}" for i in range(3)]
    errors = []

    def one(d):
        d.mkdir()
        try:
            run_notebook(src, d / "out.ipynb", {}, cwd=d, timeout=120)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=one, args=(d,)) for d in dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert os.getcwd() == before
    for d in dirs:
        assert (d / "where.txt").read_text() == str(d.resolve())


# ---- quiet output -------------------------------------------------------------------------
def test_batch_output_has_no_kernel_transport_warning(day, capfd):
    """Each notebook's kernel used to print ipykernel's "Kernel is running over TCP without
    encryption" warning into the batch output; the kernel manager now provisions CurveZMQ keys."""
    msgs = []
    assert run_batch([str(ROOT / "params" / "lab" / "gitea.yaml")], date=day.name, out_root=str(day.parent),
                     live=False, progress=msgs.append, progress_bar=False) == 0
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err and "[IPKernelApp] WARNING" not in out + err, err[-2000:]


# ---- cold-verify HOW lines, run as printed --------------------------------------------------
def _steps():
    for c in CASES:
        for s in json.loads((EXAMPLE / c / "verdict.json").read_text())["cold_verify"]:
            yield c, s


OFFLINE = ("grep -F ", "cd ")   # stored-log greps (from the bundle folder) and harness-code checks


def test_every_how_line_is_clean_shell():
    import shlex
    steps = list(_steps())
    assert steps
    for c, s in steps:
        assert "\x1b" not in s["how"] + s["expect"], (c, s)
        assert not re.search(r"<[a-z ]+>", s["how"]), f"{c}: placeholder left in {s['how']!r}"
        argv = shlex.split(s["how"])                      # parses as printed
        assert argv[0] in ("redfix", "grep", "git", "docker", "cd", "for"), (c, argv)
    assert sum(s["how"].startswith(OFFLINE) for _, s in steps) >= len(CASES) - 1


def test_offline_how_lines_run_as_printed_and_meet_their_expect():
    """Every HOW that needs no live node runs here exactly as printed (bash, from the bundle
    folder) and its EXPECT is checked: a stored-log grep finds the line, and the same literal
    is absent from the passing runs' logs ("failing runs only"); a harness-code check prints
    the colliding value. HOWs that need the node or the lab (redfix isolate, docker, git on the
    lab's recipe repos) are checked for form only (test above)."""
    import shlex
    import subprocess
    ran = 0
    for c, s in _steps():
        how, bundle = s["how"], EXAMPLE / c
        if how.startswith("grep -F "):
            p = subprocess.run(["bash", "-c", how], cwd=bundle, capture_output=True, text=True, timeout=30)
            assert p.returncode == 0 and p.stdout.strip(), f"{c}: {how} -> rc {p.returncode} {p.stderr}"
            assert s["expect"].startswith("the line is present")
            literal = shlex.split(how)[2]
            from redfix_lib.bundle import load_bundle
            b = load_bundle(bundle)
            for r in b.runs:
                if r.outcome == "pass":
                    for f in (bundle / "runs" / f"{r.index:03d}").rglob("*.log"):
                        assert literal not in f.read_text(errors="replace"), f"{c}: passing run {f} has the line"
            ran += 1
        elif how.startswith("cd "):
            argv = shlex.split(how)
            hdir = Path(argv[1])
            if not hdir.is_dir():          # investigated in another checkout: the same harness is ours
                hdir = ROOT / "redfix_lib" / "lab"
            code = argv[argv.index("-c") + 1]
            p = subprocess.run([sys.executable, "-c", code], cwd=hdir, capture_output=True, text=True, timeout=30)
            assert p.returncode == 0, p.stderr
            m = re.match(r"(\S+) equals (\S+)\[(.+)\]$", s["expect"])
            assert m, s["expect"]
            value, key = m.group(1), m.group(3).strip("'\"")
            assert value in p.stdout and f"'{key}': '{value}'" in p.stdout, (how, p.stdout)
            ran += 1
    assert ran >= len(CASES) - 1


def test_grep_literal_matches_a_coloured_log_as_stored(tmp_path):
    """pytest colours its output: the HOW's literal must match the stored file, escapes and all."""
    import shlex
    import subprocess
    from redfix_lib.classify import grep_literal
    line = ">       \x1b[94massert\x1b[39;49;00m code == \x1b[94m0\x1b[39;49;00m, \x1b[33mf\x1b[39;49;00m\x1b[33m\"restored data missing\"\x1b[39;49;00m"
    log = tmp_path / "harness.log"
    log.write_text("before\n" + line + "\nafter\n")
    lit = grep_literal(line)
    assert "\x1b" not in lit and len(lit) >= 8
    p = subprocess.run(["bash", "-c", f"grep -F {shlex.quote(lit)} harness.log"], cwd=tmp_path, capture_output=True)
    assert p.returncode == 0 and line.encode() in p.stdout
    assert grep_literal("2026-11-27T09:37:45.335Z gitea: [F] cannot save") == "gitea: [F] cannot save"


def test_status_html_is_a_page_with_tables_links_and_coloured_verdicts():
    html = (EXAMPLE / "STATUS.html").read_text()
    assert "<pre" not in html and "|---|" not in html and "\x1b" not in html
    assert html.count("<table") >= 4
    for c in CASES:
        v = json.loads((EXAMPLE / c / "verdict.json").read_text())
        assert f"href='{c}.ipynb'" in html and f"href='{c}/'" in html
        assert f"<td class='v-{v['flake_or_genuine'].split('-')[0]}'>" in html


# ---- ask for more -------------------------------------------------------------------------
def test_ask_more_adds_to_the_same_bundle_and_rewrites_the_verdict(tmp_path):
    from conftest import write_case
    from redfix_lib.errors import ParamsError
    from redfix_lib.explore import ask_more, tests_by_run
    from redfix_lib.isolate import investigate
    case = write_case(tmp_path, "fail", policy="{max: 2, stop_rule: fixed}")
    out = tmp_path / "b"
    v0 = investigate(str(case), str(out), progress=lambda m: None)
    assert v0["runs"]["isolated"]["runs"] == 2
    b, v1 = ask_more(str(case), str(out), "isolated-run", progress=lambda m: None)
    assert [r.mode for r in b.runs] == ["isolated"] * 3 and v1["runs"]["isolated"]["runs"] == 3
    assert json.loads((out / "verdict.json").read_text()) == v1
    b, v2 = ask_more(str(case), str(out), "ref", ref="fix-branch", progress=lambda m: None)
    assert b.runs[-1].mode == "contrast" and v2["runs"]["isolated"]["runs"] == 3    # not counted as isolated
    assert list(tests_by_run(b).columns) == ["001", "002", "003", "004 @fix-branch"]
    b, v3 = ask_more(str(case), str(out), "harness-defaults", progress=lambda m: None)
    assert b.runs[-1].mode == "contrast" and b.runs[-1].variant == {"kind": "harness-defaults",
                                                                    "env": {"CCCI_SETTINGS": "/dev/null"}}
    assert b.runs[-1].ref == b.case["ref"] and v3["runs"]["isolated"]["runs"] == 3
    with pytest.raises(ParamsError):          # the defaults contrast asks about the case's own ref only
        ask_more(str(case), str(out), "harness-defaults", ref="fix-branch")
    with pytest.raises(ParamsError):
        ask_more(str(case), str(out), "bogus")
    with pytest.raises(ParamsError):
        ask_more("", str(out), "isolated-run")


# ---- the summary as a place to look ---------------------------------------------------------
def test_summary_views_shared_causes_fixes_and_trend_across_dated_folders(tmp_path):
    from redfix_lib import report
    from redfix_lib.bundle import load_bundle
    d1, d2 = tmp_path / "2026-11-26", tmp_path / "2026-11-27"
    for c in CASES:
        shutil.copytree(EXAMPLE / c, d2 / c)
    for c in CASES[:2]:                                   # the day before: only two of the cases
        shutil.copytree(EXAMPLE / c, d1 / c)
    (tmp_path / "example").mkdir()                         # not a dated folder: never in the trend
    fix = d2 / f"{CASES[0]}-fix"
    fix.mkdir()
    (fix / "fix.json").write_text(json.dumps({"status": "verified", "fix_ref": "fix-x", "outcomes": ["pass", "pass"]}))
    vs = report.load_verdicts(d2)
    hist = report.dated_verdicts(d2)
    assert sorted({v["_date"] for v in hist}) == ["2026-11-26", "2026-11-27"] and len(hist) == len(CASES) + 2
    tr = report.trend(hist).set_index("recipe")
    recipes = [json.loads((EXAMPLE / c / "verdict.json").read_text())["recipe"] for c in CASES]
    assert tr.loc[recipes[0], "dates"] == 2 and tr.loc[recipes[-1], "dates"] == 1
    fx = report.fixes_table(vs, d2).set_index("recipe")
    assert fx.loc[recipes[0], "state"] == "verified" and set(fx["state"].iloc[1:]) == {"pending"}
    shared = report.shared_causes(vs, [load_bundle(d2 / v["_bundle"]) for v in vs])
    by = {(r["shared by"], r["key"]): r["cases"] for _, r in shared.iterrows()}
    causes = [json.loads((EXAMPLE / c / "verdict.json").read_text())["cause"] for c in CASES]
    for cause in set(causes):
        assert by[("cause class", cause)] == causes.count(cause)
    report.write_status(d2, all_dates=True)
    html = (d2 / "STATUS.html").read_text()
    assert "trend across dates" in html and html.count("data:image/png;base64,") == len(CASES) + 3
