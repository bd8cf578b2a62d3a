"""Reruns spent per verdict by the pipeline's stop rule (the posterior: the sweep's failure counts,
a deterministic mechanism found in the code may shorten the sequence), replayed on stored lab
bundles, and whether any verdict changed against the stored one (all its runs).

    .venv/bin/python benchmarks/bench_reruns.py [outputs/example]

The real pipeline.run_stage runs with a replay node: each run it asks for is the stored bundle's next
run of that mode (a stored run used at most once); past the stored runs the last stored outcome of
that mode repeats (marked `extrapolated`). The load stage replays the stored under-load runs (2, the
default). Then the classifier judges the bundle truncated to the runs spent.
"""
from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redfix_lib import isolate as iso_mod, pipeline  # noqa: E402
from redfix_lib.bundle import Bundle, load_bundle  # noqa: E402
from redfix_lib.classify import classify  # noqa: E402
from redfix_lib.params import load_case  # noqa: E402


class ReplayNode:
    name = "replay"

    def ensure_quiet(self, busy):
        return None


def simulate(stored_dir: Path, case_file: Path | None) -> dict:
    stored = load_bundle(stored_dir)
    case = load_case(case_file) if case_file else None
    tmp = Path(tempfile.mkdtemp(prefix="bench-reruns-")) / "b"
    shutil.copytree(stored_dir, tmp)          # the stored run folders: replayed runs point at them
    try:
        b = Bundle(path=tmp, case=stored.case, node=stored.node, created=stored.created,
                   evidence=[e for e in stored.evidence if e.kind in pipeline.PRE_KINDS])
        pools = {m: [r for r in stored.runs if r.mode == m] for m in ("isolated", "under-load")}
        used = {"isolated": 0, "under-load": 0}
        extrapolated = 0
        contrast_pool = [r for r in stored.runs if r.mode == "contrast"]

        def replay_once(case_, bundle, node, *, mode="isolated", ref=None, load=None, timeout_s=None, env_extra=None, variant=None):
            nonlocal extrapolated
            if mode == "contrast":        # the stored contrast run that asked the same question
                kind = (variant or {}).get("kind", "")
                src = next((r for r in contrast_pool if r.ref == (ref or stored.case["ref"])
                            and (r.variant or {}).get("kind", "") == kind), None)
                if src is None:
                    raise LookupError(f"no stored contrast run at {ref} ({kind or 'release'})")
                contrast_pool.remove(src)
                rec = type(src).from_dict({**src.to_dict(), "index": len(bundle.runs) + 1})
                bundle.runs.append(rec)
                return rec
            pool = pools[mode]
            if used[mode] < len(pool):
                src = pool[used[mode]]
            else:
                src, extrapolated = pool[-1], extrapolated + 1
            used[mode] += 1
            rec = type(src).from_dict({**src.to_dict(), "index": len(bundle.runs) + 1})
            bundle.runs.append(rec)
            return rec

        def replay_load(case_, bundle, node, *, run_fn, runs=None, max_rungs=None, **kw):
            for _ in range(runs or 2):
                run_fn({"cpu_burners": "replayed"})

        saved = (iso_mod.run_once, pipeline._under_load, pipeline._collect)
        iso_mod.run_once, pipeline._under_load = replay_once, replay_load
        pipeline._collect = lambda *a, **k: None          # the stored bundle already holds the files at refs
        try:
            s = pipeline.Session(case, ReplayNode(), b)
            pipeline.run_stage(s, progress=lambda m: None)
            b.evidence = [e for e in stored.evidence if e.kind in pipeline.PRE_KINDS]
            try:
                pipeline.contrast_stage(s, progress=lambda m: None)     # the contrasts the verdict then asks for
            except LookupError:
                pass
        finally:
            iso_mod.run_once, pipeline._under_load, pipeline._collect = saved
        logs = {r.log for r in b.runs}
        b.evidence = [e for e in stored.evidence
                      if not (e.kind in ("harness_log", "service_logs", "task_history") and e.source
                              and not any(e.source.startswith(str(Path(x).parent)) for x in logs))]
        v = classify(b)
        return {"runs": len(b.runs), "isolated": sum(r.mode == "isolated" for r in b.runs),
                "under_load": sum(r.mode == "under-load" for r in b.runs), "extrapolated": extrapolated,
                "verdict": (v["reproducibility"], v["cause"], v["sub_cause"]),
                "posterior": v["runs"]["posterior"], "wall_s": sum(r.wall_s for r in b.runs)}
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def main(root: Path) -> int:
    rows = []
    for bj in sorted(root.glob("*/bundle.json")):
        d = json.loads(bj.read_text())
        v = json.loads((bj.parent / "verdict.json").read_text())
        src = d["case"].get("source") or ""
        case_file = ROOT / src if src and (ROOT / src).exists() else ROOT / "params" / "lab" / (d["case"]["case"].removeprefix("lab-") + ".yaml")
        sim = simulate(bj.parent, case_file if case_file.exists() else None)
        before = (v["reproducibility"], v["cause"], v["sub_cause"])
        rows.append((d["case"]["case"], len(d["runs"]), sim, before))
    changed = 0
    for name, n_before, sim, before in rows:
        same = sim["verdict"] == before
        changed += not same
        post = max(sim["posterior"].items(), key=lambda kv: kv[1])
        print(f"{name:22s} runs {n_before:2d} -> {sim['runs']:2d} (isolated {sim['isolated']}, under load "
              f"{sim['under_load']}{', extrapolated ' + str(sim['extrapolated']) if sim['extrapolated'] else ''})  "
              f"{'same verdict' if same else 'CHANGED'} {'/'.join(str(x) for x in sim['verdict'])}  "
              f"posterior {post[0]} {post[1]:.3f}")
    if rows:
        before = [r[1] for r in rows]
        after = [r[2]["runs"] for r in rows]
        print(f"reruns per verdict: median {statistics.median(before):g} -> {statistics.median(after):g}, "
              f"mean {statistics.mean(before):.2f} -> {statistics.mean(after):.2f} "
              f"({sum(before)} -> {sum(after)} runs for {len(rows)} verdicts); verdicts changed: {changed}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "outputs" / "example")))
