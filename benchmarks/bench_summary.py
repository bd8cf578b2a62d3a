"""Summary over 1,000 synthetic verdicts (status table + tracker + STATUS.md) vs reading the
1,000 executed notebooks those verdicts would come from; and papermill's overhead per case
notebook (replay of a stored bundle) vs the same library call made directly. Prints figures.

    .venv/bin/python benchmarks/bench_summary.py [--bundle outputs/example/lab-keycloak]
"""
import argparse
import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from redfix_lib import report  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default=str(ROOT / "outputs" / "example" / "lab-keycloak"))
    ap.add_argument("-n", type=int, default=1000)
    a = ap.parse_args()
    src = Path(a.bundle)
    nb_src = src.parent / f"{src.name}.ipynb"
    base = json.loads((src / "verdict.json").read_text())
    with tempfile.TemporaryDirectory() as d:
        day = Path(d) / "2026-01-01"
        for i in range(a.n):
            v = copy.deepcopy(base)
            v["case"] = f"{base['case']}-{i:04d}"
            v["recipe"] = f"{base['recipe']}-{i:04d}"
            (day / v["case"]).mkdir(parents=True)
            (day / v["case"] / "verdict.json").write_text(json.dumps(v))
            if nb_src.exists():
                shutil.copy(nb_src, day / f"{v['case']}.ipynb")
        t0 = time.perf_counter()
        vs = report.load_verdicts(day)
        report.status_table(vs)
        report.tracker(vs)
        md = report.status_md(vs, day.name)
        t_sum = time.perf_counter() - t0
        print(f"summary of {len(vs)} verdicts (table + tracker + STATUS.md {len(md) // 1024} KiB): {t_sum:.2f} s (goal <= 5 s)")
        if nb_src.exists():
            import nbformat
            t0 = time.perf_counter()
            for p in sorted(day.glob("*.ipynb")):
                nbformat.read(str(p), as_version=4)
            t_nb = time.perf_counter() - t0
            print(f"reading the {a.n} executed notebooks (nbformat): {t_nb:.2f} s -> summary is {t_nb / t_sum:.1f}x faster (goal >= 10x)")
        # papermill overhead per case notebook
        work = Path(d) / "pm"
        shutil.copytree(src, work / src.name)
        from redfix_lib.isolate import investigate_or_replay
        t0 = time.perf_counter()
        investigate_or_replay("", "replay", str(work / src.name), progress=lambda m: None)
        t_direct = time.perf_counter() - t0
        from redfix_lib.batch import NB_DIR, run_notebook
        t0 = time.perf_counter()
        run_notebook(NB_DIR / "investigate.ipynb", work / "out.ipynb", {"mode": "replay", "bundle_dir": src.name}, cwd=work)
        t_pm = time.perf_counter() - t0
        print(f"papermill per case notebook (replay): {t_pm:.2f} s vs direct library call {t_direct:.3f} s "
              f"-> overhead {t_pm - t_direct:.2f} s per case")


if __name__ == "__main__":
    main()
