"""redfix batch (papermill, replay mode) over stored lab bundles: notebooks, manifest, STATUS.md,
resumability and failure isolation. No engine needed: replay re-classifies stored bundles."""
import json
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
                    "## Node state left clean", "## Gate"):
        assert section in status
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
