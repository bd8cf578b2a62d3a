"""How stable is a lab case's end-to-end verdict? N consecutive fresh investigations on the real engine,
each compared with the verdict the lab recipe expects (its meta.yaml); prints one line per run and the
pass rate. Needs the lab up (`redfix lab up`).

    .venv/bin/python benchmarks/bench_e2e_stability.py params/lab/mumble.yaml -n 10
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redfix_lib.lab.recipes import load_meta  # noqa: E402
from redfix_lib.params import load_case  # noqa: E402
from redfix_lib.pipeline import investigate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--keep", default=None, help="keep the bundles under this folder")
    a = ap.parse_args()
    case = load_case(a.case)
    exp = load_meta(case.recipe)["expected"]
    want = (exp["reproducibility"], exp["cause"], exp["sub_cause"])
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="redfix-stability-"))
    ok, rows = 0, []
    for i in range(1, a.n + 1):
        t0 = time.monotonic()
        v = investigate(a.case, root / f"run-{i:02d}", fresh=True, progress=lambda m: None)
        got = (v["reproducibility"], v["cause"], v["sub_cause"])
        hit = got == want
        ok += hit
        rows.append({"i": i, "ok": hit, "verdict": got, "confidence": v["confidence"]["value"],
                     "runs": v["runs"]["total"], "wall_s": round(time.monotonic() - t0, 1)})
        print(f"{i:2d} {'PASS' if hit else 'FAIL'} {'/'.join(map(str, got))} conf {v['confidence']['value']} "
              f"runs {v['runs']['total']} (isolated {v['runs']['isolated']['runs']}, under load "
              f"{v['runs']['under_load']['runs']}) {rows[-1]['wall_s']} s", flush=True)
    print(json.dumps({"case": case.case, "expected": want, "runs": a.n, "pass": ok, "pass_rate": round(ok / a.n, 3),
                      "median_wall_s": sorted(r["wall_s"] for r in rows)[len(rows) // 2]}))
    return 0 if ok == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
