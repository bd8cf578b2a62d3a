"""Reruns spent per verdict by the stop rule over investigated lab cases, against a fixed 10.

    .venv/bin/python benchmarks/reruns_per_verdict.py outputs/example
"""
import json
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/example")
rows = []
for b in sorted(root.glob("*/bundle.json")):
    d = json.loads(b.read_text())
    v = json.loads((b.parent / "verdict.json").read_text())
    runs = d["runs"]
    rows.append((d["case"]["case"], len(runs), sum(r["mode"] == "isolated" for r in runs),
                 sum(r["mode"] == "under-load" for r in runs), sum(r["wall_s"] for r in runs), v["reproducibility"]))
for r in rows:
    print(f"{r[0]:24s} runs {r[1]:2d} (isolated {r[2]}, under load {r[3]})  {r[4]:7.1f} s  -> {r[5]}")
if rows:
    total = sum(r[1] for r in rows)
    print(f"mean reruns per verdict: {total / len(rows):.2f} vs fixed 10 -> {10 * len(rows) / total:.1f}x fewer runs; "
          f"wall {sum(r[4] for r in rows) / 60:.1f} min for {len(rows)} verdicts")
