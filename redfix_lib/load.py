"""Controlled load on a node, escalated until a load-only failure shows or a stated ceiling is reached.

Stressors are Swarm services in one namespace (`redfix-stress`), so the node's own scheduler shares
CPU, disk and memory between them and the recipe's containers the way neighbour stacks do. Kinds:

  cpu     busy-loop tasks (single-threaded each; N of them at equal CPU shares with the recipe)
  io      write + fsync loops (64 MiB files in the task's writable layer, `dd conv=fsync`)
  mem     MiB held in tmpfs and re-read (pages pinned and touched), capped at a quarter of the
          engine's memory, each task memory-limited so that an OOM kill hits the stressor
  stacks  churn like neighbour stacks deploying: short-lived tasks the scheduler restarts without
          pause (dockerd / containerd / runc work on every start)

A ladder of rungs (each a mix of kinds, heavier upward) is climbed by `escalate`: `probe_runs` run(s)
per rung; the first rung with a run that fails the case's tier is the level it took and gets `runs`
runs in all; the last rung (the ceiling) gets `runs` runs when nothing failed below it. Each run
records its rung in RunRecord.load, and the whole climb is stored as evidence `load:escalation`
(rungs, runs, failures, the rung it took or the ceiling it reached). Costed: every run is counted.

This module does not import isolate.py: callers pass `run_fn(load) -> RunRecord`.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass
from typing import Callable

from .results import reproduction

STRESS_STACK = "redfix-stress"
STRESS_IMAGE_ENV = "REDFIX_STRESS_IMAGE"     # an image on the node with sh and dd (busybox will do)
BURNER = ["sh", "-c", "trap 'exit 0' TERM; while :; do :; done"]
IO_LOOP = ["sh", "-c", "trap 'exit 0' TERM; while :; do dd if=/dev/zero of=/tmp/io bs=1M count=64 conv=fsync "
                       "2>/dev/null; rm -f /tmp/io; done"]
CHURN_TASK = ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"]
MEM_CHUNK_MB = 256
PROBE = "probe"
CPU_WORK = 'n=${WORK:-100000}; i=0; while [ $i -lt $n ]; do i=$((i+1)); done'
SERVICES = {"cpu": "burn", "io": "io", "mem": "mem", "stacks": "churn"}


@dataclass(frozen=True)
class Rung:
    """One level of load: how many tasks of each kind run beside the case."""
    name: str
    cpu: int = 0        # busy-loop tasks
    io: int = 0         # write+fsync loop tasks
    mem_mb: int = 0     # MiB held in tmpfs and re-read (capped at apply time)
    stacks: int = 0     # continuously restarted short tasks (deploy churn)

    @property
    def kinds(self) -> list[str]:
        return [k for k, v in (("cpu", self.cpu), ("io", self.io), ("mem", self.mem_mb), ("stacks", self.stacks)) if v]


def default_level(cores: int | None = None) -> int:
    return 8 * (cores or os.cpu_count() or 1)


def default_ladder(cores: int | None = None, level: int | None = None) -> list[Rung]:
    """cpu (8 per core, or `level` burners) -> cpu x2 -> + io -> + memory -> + stacks (the ceiling).
    Worst case cost with probe_runs=1, runs=3: 4 + 3 = 7 runs."""
    c = cores or os.cpu_count() or 1
    base = level or default_level(c)
    hi = 2 * base
    return [Rung(f"cpu-{base}", cpu=base),
            Rung(f"cpu-{hi}", cpu=hi),
            Rung(f"cpu-{hi}+io-{2 * c}", cpu=hi, io=2 * c),
            Rung(f"cpu-{hi}+io-{2 * c}+mem-1024", cpu=hi, io=2 * c, mem_mb=1024),
            Rung(f"cpu-{hi}+io-{2 * c}+mem-1024+stacks-{2 * c}", cpu=hi, io=2 * c, mem_mb=1024, stacks=2 * c)]


def ladder_from_spec(spec: dict | None, cores: int | None = None) -> list[Rung]:
    """The ladder a case's load probe asks for: `level` (CPU burners of the first rung, default 8 per
    core) and optional `max_rungs` (cut the default ladder: 1 = CPU only at `level`)."""
    spec = spec or {}
    ladder = default_ladder(cores, int(spec["level"]) if spec.get("level") else None)
    if spec.get("max_rungs"):
        ladder = ladder[:max(1, int(spec["max_rungs"]))]
    return ladder


class Stressors:
    """Start / clear the stressor services for a rung on one engine (a docker SDK client)."""

    def __init__(self, client, image: str | None = None, timeout: float = 90):
        self.client, self.timeout = client, timeout
        self._image = image

    @property
    def image(self) -> str:
        if self._image is None:
            self._image = stress_image(self.client)
        return self._image

    def facts(self) -> dict:
        info = self.client.info()
        return {"cores": int(info.get("NCPU") or os.cpu_count() or 1),
                "mem_total_mb": int((info.get("MemTotal") or 0) / (1 << 20))}

    def _create(self, kind: str, command: list[str], replicas: int, **kw) -> None:
        import docker
        self.client.services.create(
            self.image, command=command, name=f"{STRESS_STACK}_{SERVICES[kind]}",
            labels={"com.docker.stack.namespace": STRESS_STACK, "redfix.lab": "1", "redfix.stress": kind},
            container_labels={"com.docker.stack.namespace": STRESS_STACK},
            mode=docker.types.ServiceMode("replicated", replicas=replicas),
            stop_grace_period=1_000_000_000, **kw)

    # ---- a probe task timing a fixed single-threaded CPU workload through `docker exec` ----------
    def start_probe(self) -> None:
        """A long-lived task in the stress namespace (kept across rungs) to time workloads in."""
        import docker
        name = f"{STRESS_STACK}_{PROBE}"
        if not self.client.services.list(filters={"name": name}):
            self.client.services.create(
                self.image, command=["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"], name=name,
                labels={"com.docker.stack.namespace": STRESS_STACK, "redfix.lab": "1", "redfix.probe": "1"},
                container_labels={"com.docker.stack.namespace": STRESS_STACK, "redfix.probe": "1"},
                mode=docker.types.ServiceMode("replicated", replicas=1), stop_grace_period=1_000_000_000)
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            if self._probe_container() is not None:
                return
            time.sleep(0.5)
        raise RuntimeError(f"probe task {name} did not start in {self.timeout:g}s")

    def _probe_container(self):
        cs = self.client.containers.list(filters={"label": [f"com.docker.swarm.service.name={STRESS_STACK}_{PROBE}"],
                                                  "status": "running"})
        return cs[0] if cs else None

    def time_exec(self, argv: list[str], env: dict | None = None) -> float:
        """Wall seconds of one `docker exec` in the probe task (what a harness's exec pays)."""
        cont = self._probe_container()
        if cont is None:
            raise RuntimeError("no running probe task: start_probe() first")
        t0 = time.monotonic()
        r = cont.exec_run(argv, environment=env or {})
        dt = time.monotonic() - t0
        if r.exit_code != 0:
            raise RuntimeError(f"probe exec {argv[:2]} exited {r.exit_code}: {(r.output or b'')[-200:]!r}")
        return dt

    def time_work(self, work: int, script: str = CPU_WORK, var: str = "WORK", samples: int = 3) -> dict:
        """Median and min wall seconds of `script` doing `work` iterations, and of a bare exec."""
        over = sorted(self.time_exec(["true"]) for _ in range(max(1, samples)))
        ts = sorted(self.time_exec(["sh", "-c", script], {var: str(work)}) for _ in range(max(1, samples)))
        return {"work": work, "median_s": round(ts[len(ts) // 2], 4), "min_s": round(ts[0], 4),
                "exec_overhead_s": round(over[len(over) // 2], 4), "samples": len(ts)}

    def apply(self, rung: Rung) -> dict:
        """Clear, then start the rung's stressors and wait for them to run. Returns the load
        description recorded with every run at this rung."""
        import docker
        self.clear(keep_probe=True)
        facts = self.facts()
        want: dict[str, int] = {}
        if rung.cpu:
            self._create("cpu", BURNER, rung.cpu)
            want["cpu"] = rung.cpu
        if rung.io:
            self._create("io", IO_LOOP, rung.io)
            want["io"] = rung.io
        mem_mb = min(rung.mem_mb, facts["mem_total_mb"] // 4) if rung.mem_mb else 0
        if mem_mb >= MEM_CHUNK_MB:
            n = mem_mb // MEM_CHUNK_MB
            mem_mb = n * MEM_CHUNK_MB
            fill = ["sh", "-c", f"trap 'exit 0' TERM; dd if=/dev/zero of=/fill/x bs=1M count={MEM_CHUNK_MB} 2>/dev/null; "
                                "while :; do cat /fill/x > /dev/null; sleep 1; done"]
            self._create("mem", fill, n,
                         mounts=[docker.types.Mount("/fill", "", type="tmpfs", tmpfs_size=(MEM_CHUNK_MB + 16) << 20)],
                         resources=docker.types.Resources(mem_limit=(MEM_CHUNK_MB + 64) << 20))
            want["mem"] = n
        else:
            mem_mb = 0
        if rung.stacks:
            self._create("stacks", CHURN_TASK, rung.stacks,
                         restart_policy=docker.types.RestartPolicy(condition="any", delay=0))
        running = self._wait_running(want)
        return {"rung": rung.name, "kinds": rung.kinds, "cpu_burners": rung.cpu, "io_workers": rung.io,
                "mem_mb": mem_mb, "churn_tasks": rung.stacks, "running": running, "cores": facts["cores"],
                "per_core": round(rung.cpu / facts["cores"], 2)}

    def _wait_running(self, want: dict[str, int]) -> dict[str, int]:
        deadline = time.time() + self.timeout
        running = {k: 0 for k in want}
        while want and time.time() < deadline:
            for kind in want:
                svc = self.client.services.get(f"{STRESS_STACK}_{SERVICES[kind]}")
                running[kind] = sum(1 for t in svc.tasks() if t["Status"]["State"] == "running")
            if all(running[k] >= want[k] for k in want):
                break
            time.sleep(1)
        return running

    def clear(self, keep_probe: bool = False) -> None:
        flt = {"label": f"com.docker.stack.namespace={STRESS_STACK}"}
        for s in self.client.services.list(filters=flt):
            if not (keep_probe and (s.attrs["Spec"].get("Labels") or {}).get("redfix.probe")):
                s.remove()
        deadline = time.time() + self.timeout
        while time.time() < deadline and [c for c in self.client.containers.list(all=True, filters=flt, sparse=True)
                                          if not (keep_probe and (c.attrs.get("Labels") or {}).get("redfix.probe"))]:
            time.sleep(1)


def stress_image(client) -> str:
    """The image stressors run from: $REDFIX_STRESS_IMAGE, else an image the node already has (no
    registry is assumed): one a running container uses, small shell-bearing bases first."""
    if os.environ.get(STRESS_IMAGE_ENV):
        return os.environ[STRESS_IMAGE_ENV]
    tags = [t for c in client.containers.list(filters={"status": "running"}) for t in (c.image.tags or [])]
    pref = [t for t in tags if re.search(r"(^|/)(busybox|alpine|debian|ubuntu)(:|$)|/base:", t)]
    if pref or tags:
        return sorted(pref)[0] if pref else tags[0]
    raise RuntimeError(f"no image on the node to run stressors from: set {STRESS_IMAGE_ENV}")


def start_stressors(client, replicas: int, image: str | None = None, timeout: float = 60) -> dict:
    """Start `replicas` CPU burners (one CPU-only rung); returns the load description."""
    s = Stressors(client, image, timeout)
    if replicas <= 0:
        s.clear()
        return {"cpu_burners": 0}
    return s.apply(Rung(f"cpu-{replicas}", cpu=replicas))


def stop_stressors(client, timeout: float = 60) -> None:
    Stressors(client, timeout=timeout).clear()


def escalate(case, bundle, node, run_fn: Callable[[dict], object], levels: list[Rung] | None = None, *,
             runs: int = 2, probe_runs: int = 1, stressors=None, tier: str | None = None,
             measure: bool = True, progress: Callable[[str], None] = print) -> dict:
    """Climb the ladder `levels` (default: `default_ladder` for the node's cores) until a run fails
    the case's tier; returns the climb's record (also stored as evidence `load:escalation`).

    run_fn(load) runs the case once beside the current stressors and returns its RunRecord (the
    caller holds the node lock and checks the node quiet). `stressors` defaults to Stressors on
    node.docker(); tests pass a fake. With `measure`, a fixed single-threaded CPU workload is timed
    alone and at every rung (`reference_cpu_work` in the load record): whether the load really slows
    CPU-bound work on this node is a fact in the bundle, not an assumption."""
    from .bundle import EvidenceItem
    tier = tier if tier is not None else case.sweep_failure.tier
    stressors = stressors or Stressors(node.docker())
    ladder = list(levels) if levels else default_ladder(stressors.facts()["cores"])
    if not ladder:
        raise ValueError("escalate: empty ladder")
    runs, probe_runs = max(1, runs), max(1, min(probe_runs, runs))
    ceiling = ladder[-1].name
    record = {"ladder": [asdict(r) for r in ladder], "ceiling": ceiling, "runs_per_rung": {"probe": probe_runs,
              "confirm": runs}, "rungs": [], "took": None, "total_runs": 0, "stopped": ""}
    name = getattr(case, "case", "case")
    try:
        base = _measure(stressors, None) if measure else None
        if base:
            record["reference_cpu_work"] = base
        for i, rung in enumerate(ladder, 1):
            last = i == len(ladder)
            progress(f"[{name}] load rung {i}/{len(ladder)} {rung.name} ({', '.join(rung.kinds)})"
                     + (" — the ceiling" if last else ""))
            load = {**stressors.apply(rung), "rung_index": i, "ladder": len(ladder), "ceiling": ceiling}
            if base and "median_s" in base:
                load["reference_cpu_work"] = _measure(stressors, base)
            step = {"rung": rung.name, "index": i, "load": load, "runs": [], "failed": 0, "inconclusive": 0}
            record["rungs"].append(step)
            budget = runs if last else probe_runs
            while len(step["runs"]) < budget:
                rec = run_fn(load)
                seen = reproduction(rec.outcome, rec.result, tier)
                step["runs"].append({"index": rec.index, "outcome": rec.outcome, "tier": seen})
                record["total_runs"] += 1
                step["failed"] += seen == "fail"
                step["inconclusive"] += seen == "inconclusive"
                progress(f"[{name}] under load {rung.name}: run {rec.index} {rec.outcome} (tier {tier or '-'}: {seen})")
                if step["failed"]:
                    budget = runs          # reproduced here: the rest of the runs confirm at this level
            if step["failed"]:
                record["took"] = rung.name
                break
            if step["inconclusive"] == len(step["runs"]):
                record["stopped"] = (f"no run reached tier {tier} at {rung.name}: more load would not "
                                     f"make it reachable")
                break
    finally:
        stressors.clear()
        progress(f"[{name}] stressors removed")
    last = record["rungs"][-1]
    if record["took"]:
        summary = (f"failure reproduced at load rung {last['index']}/{len(ladder)} {record['took']} "
                   f"({last['failed']}/{len(last['runs'])} runs failed {tier}); {record['total_runs']} "
                   f"under-load run(s) in all")
    elif record["stopped"]:
        summary = f"load escalation stopped at {last['rung']}: {record['stopped']}"
    else:
        summary = (f"not reproduced up to the ceiling {ceiling} ({len(last['runs'])} run(s) there, "
                   f"{record['total_runs']} under-load run(s) in all)")
    record["summary"] = summary
    bundle.add_evidence(EvidenceItem(id="load:escalation", kind="load", source="stressors", status="ok",
                                     summary=summary, data=record))
    progress(f"[{name}] {summary}")
    return record


REF_WORK = 100000


def _measure(stressors, base: dict | None) -> dict:
    """Time REF_WORK iterations in the probe task: alone (base None, 3 samples) or under the current
    rung (1 sample, with the slowdown against base). Failures are recorded, never raised."""
    try:
        if base is None:
            stressors.start_probe()
            return stressors.time_work(REF_WORK, samples=3)
        m = stressors.time_work(REF_WORK, samples=1)
        work_alone = max(base["median_s"] - base["exec_overhead_s"], 1e-3)
        work_now = max(m["median_s"] - m["exec_overhead_s"], 1e-3)
        return {**m, "slowdown": round(work_now / work_alone, 2)}
    except Exception as e:  # noqa: BLE001 - a measurement, not a precondition
        return {"error": f"{type(e).__name__}: {e}"[:300]}


def isolate_under_load(case, bundle, node, runs: int | None = None, level: int | None = None, progress=print,
                       env_extra: dict | None = None, run_fn: Callable[[dict], object] | None = None,
                       max_rungs: int | None = None) -> dict:
    """Signature-compatible wrapper: `escalate` with the default ladder starting at `level` CPU
    burners. run_fn(load) -> RunRecord must be given (this module does not import isolate)."""
    if run_fn is None:
        raise TypeError("isolate_under_load needs run_fn(load) -> RunRecord (e.g. a run_once closure)")
    stressors = Stressors(node.docker())
    ladder = ladder_from_spec({"level": level, "max_rungs": max_rungs}, stressors.facts()["cores"])
    return escalate(case, bundle, node, run_fn, ladder, runs=runs or 2, stressors=stressors, progress=progress)
