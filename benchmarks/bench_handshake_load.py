"""The lab's calibrated handshake, timed alone and beside each rung of the load ladder: mumble's
handshake.sh with this lab's HANDSHAKE_WORK (<lab home>/node.env), run through `docker exec` in a
probe task (the custom tier's path), printed as seconds and as a fraction of the 4 s window. The
custom tier cuts the handshake at the window; this shows how long it really takes under load.

    REDFIX_LAB_HOME=... flock /tmp/redfix-engine.lock .venv/bin/python benchmarks/bench_handshake_load.py [--rungs 2] [-n 3]

Needs `redfix lab up` (engine, base image, calibration) and the engine to itself.
"""
import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rungs", type=int, default=2, help="how many rungs of the default ladder")
    ap.add_argument("-n", type=int, default=3, help="samples per setting")
    a = ap.parse_args()
    import docker
    from redfix_lib.lab import RECIPES_SRC, lab_home
    from redfix_lib.lab.engine import load_state
    from redfix_lib.lab.harness.lifecycle import node_env
    from redfix_lib.load import Stressors, default_ladder
    work = int(node_env().get("HANDSHAKE_WORK") or 350000)
    cal = load_state().get("calibration") or {}
    window = float(cal.get("window_s") or 4)
    script = (RECIPES_SRC / "_shared" / "handshake.sh").read_text()
    print(f"lab home {lab_home()}: HANDSHAKE_WORK={work}, window {window:g}s, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    if cal:
        print(f"calibration {cal.get('at')}: slowdown x{cal.get('slowdown')} beside {cal.get('rung')}, predicted "
              f"alone {cal.get('predicted_alone_s')}s / loaded {cal.get('predicted_loaded_s')}s")
    st = Stressors(docker.from_env(timeout=120))
    rows = []
    try:
        st.clear()
        st.start_probe()
        m = st.time_work(work, script, "HANDSHAKE_WORK", samples=a.n)
        rows.append(("alone", m))
        for rung in default_ladder(st.facts()["cores"])[:a.rungs]:
            st.apply(rung)
            rows.append((rung.name, st.time_work(work, script, "HANDSHAKE_WORK", samples=a.n)))
    finally:
        st.clear()
    print(f"{'setting':<34} {'median s':>9} {'min s':>7} {'x window':>9}")
    for name, m in rows:
        print(f"{name:<34} {m['median_s']:>9.2f} {m['min_s']:>7.2f} {m['median_s'] / window:>9.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
