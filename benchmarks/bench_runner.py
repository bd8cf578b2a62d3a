"""The isolation runner's overhead per run against running the harness command directly:
the same trivial harness (tests/harnesses/fake_harness.py pass) N times each way.

    .venv/bin/python benchmarks/bench_runner.py [-n 20]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    a = ap.parse_args()
    from conftest import HARNESS, write_case
    from redfix_lib.isolate import isolate, open_bundle
    from redfix_lib.nodes import LocalNode
    from redfix_lib.params import load_case
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        os.environ["REDFIX_LOCK_DIR"] = str(d / "locks")
        t0 = time.perf_counter()
        for i in range(a.n):
            subprocess.run([sys.executable, str(HARNESS), "pass", str(d / f"direct{i}")], env={**os.environ, "RECIPE": "r"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True)
        direct = (time.perf_counter() - t0) / a.n
        case = load_case(write_case(d, "pass", policy="{max: 200, stop_rule: fixed}"))
        node = LocalNode("bench")
        t0 = time.perf_counter()
        with node.lock():
            b = open_bundle(case, d / "bundle", node)
            isolate(case, b, node, runs=a.n, progress=lambda m: None)
        runner = (time.perf_counter() - t0) / a.n
    print(f"harness run directly        : {direct * 1000:.1f} ms per run")
    print(f"through the isolation runner: {runner * 1000:.1f} ms per run (busy check, process group, log redaction, "
          f"results parsing, atomic bundle write)")
    print(f"overhead per run            : {(runner - direct) * 1000:.1f} ms ({runner / direct:.2f}x)")


if __name__ == "__main__":
    main()
