"""lab up / down / status: engine, swarm, shared `proxy` network, base image, recipe repos.

Everything the lab creates is recorded in <lab_home>/state.json so that
`lab down` removes exactly that and nothing else.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

from ..bundle import atomic_write_json, atomic_write_text
from ..errors import EngineUnavailable
from ..load import STRESS_STACK
from ..nodes import spawn_daemon
from . import BASE_IMAGE, HARNESS_DIR, LAB_LABEL, RECIPES_SRC, lab_home
from .harness import lifecycle
from .recipes import all_images, build_repos, list_recipes, seed_warm_state

DOCKERD_LOG = "/var/log/redfix-dockerd.log"


def say(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


def _client(timeout=120):
    import docker
    return docker.from_env(timeout=timeout)


def engine_reachable() -> str | None:
    try:
        _client(10).ping()
        return None
    except Exception as e:  # noqa: BLE001
        return str(e)


def _is_debian() -> bool:
    try:
        return "debian" in Path("/etc/os-release").read_text().lower()
    except OSError:
        return False


MANUAL = """No Docker engine is reachable. On Debian, as root:
  apt-get update && apt-get install -y docker.io busybox-static
  nohup dockerd > /var/log/redfix-dockerd.log 2>&1 &
then run `redfix lab up` again (or set DOCKER_HOST to a reachable engine)."""


def ensure_engine() -> None:
    why = engine_reachable()
    if why is None:
        return
    if os.environ.get("DOCKER_HOST"):
        raise EngineUnavailable(f"DOCKER_HOST={os.environ['DOCKER_HOST']} is not reachable: {why}")
    if not (_is_debian() and os.geteuid() == 0):
        raise EngineUnavailable(MANUAL)
    if not shutil.which("dockerd"):
        say("no Docker engine found: installing Debian's docker.io (apt-get) ...")
        _apt(["docker.io"])
    say(f"starting dockerd (log: {DOCKERD_LOG}) ...")
    # not a child of redfix: the command's exit stops every descendant it leaves behind
    spawn_daemon(["dockerd"], DOCKERD_LOG)
    for _ in range(60):
        time.sleep(1)
        if engine_reachable() is None:
            say("dockerd is up")
            return
    raise EngineUnavailable(f"dockerd did not come up in 60s; see {DOCKERD_LOG}")


def _apt(pkgs: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *pkgs], check=True, env=env)


def _static_busybox() -> Path:
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        p = Path(cand)
        if p.exists() and _is_static(p):
            return p
    if not (_is_debian() and os.geteuid() == 0):
        raise EngineUnavailable("a static busybox is needed for the lab image: apt-get install busybox-static")
    say("installing Debian's busybox-static for the lab base image ...")
    _apt(["busybox-static"])
    for cand in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(cand).exists() and _is_static(Path(cand)):
            return Path(cand)
    raise EngineUnavailable("busybox-static installed but no static busybox found")


def _is_static(p: Path) -> bool:
    data = p.read_bytes()[:1 << 20]
    return b"ld-linux" not in data and data[:4] == b"\x7fELF"


def base_image_tar(busybox: Path) -> bytes:
    """A root filesystem: static busybox + one symlink per applet, /etc/passwd, /tmp."""
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name, mode=0o755):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode = tarfile.DIRTYPE, mode
            tar.addfile(ti)
        for d in ("bin", "etc", "tmp", "var", "var/www", "run", "data", "root"):
            add_dir(d, 0o1777 if d == "tmp" else 0o755)
        tar.add(str(busybox), arcname="bin/busybox")
        for a in applets:
            if a == "busybox":
                continue
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(ti)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
                           ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            raw = text.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(raw)
            tar.addfile(ti, io.BytesIO(raw))
    return buf.getvalue()


def _state_path() -> Path:
    return lab_home() / "state.json"


def load_state() -> dict:
    try:
        return json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_state(st: dict) -> None:
    atomic_write_json(_state_path(), st)


GWBRIDGE = "docker_gwbridge"


def _networks_named(client, name: str) -> list:
    """Networks called exactly `name` (the engine's name filter also matches other names containing it)."""
    return [n for n in client.networks.list(names=[name]) if n.name == name]


def lab_up() -> dict:
    ensure_engine()
    client = _client()
    home = lab_home()
    home.mkdir(parents=True, exist_ok=True)
    st = load_state()
    st.setdefault("created", {"swarm": False, "networks": [], "images": []})
    info = client.info()
    if info.get("Swarm", {}).get("LocalNodeState") != "active":
        say("docker swarm init (single node) ...")
        gw_before = bool(_networks_named(client, GWBRIDGE))
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
        st["created"]["swarm"] = True
        st["created"]["gwbridge"] = not gw_before   # swarm init makes it; swarm leave does not remove it
    existing = _networks_named(client, "proxy")
    if not existing:
        say("creating the shared attachable overlay network 'proxy' ...")
        client.networks.create("proxy", driver="overlay", attachable=True, labels={LAB_LABEL: "1"})
        st["created"]["networks"] = sorted(set(st["created"]["networks"]) | {"proxy"})
    elif (existing[0].attrs.get("Labels") or {}).get(LAB_LABEL) == "1":
        # made by an earlier lab whose state is gone: still the lab's to remove
        st["created"]["networks"] = sorted(set(st["created"]["networks"]) | {"proxy"})
    _save_state(st)
    wanted = sorted({BASE_IMAGE} | set(all_images()))
    have = {t for img in client.images.list() for t in img.tags}
    if BASE_IMAGE not in have:
        bb = _static_busybox()
        say(f"building {BASE_IMAGE} locally from {bb} (docker import, no registry) ...")
        client.api.import_image_from_data(base_image_tar(bb), repository=BASE_IMAGE.split(":")[0],
                                          tag=BASE_IMAGE.split(":")[1],
                                          changes=[f"LABEL {LAB_LABEL}=1", 'CMD ["/bin/sh"]'])
    base = client.images.get(BASE_IMAGE)
    for ref in wanted:
        if ref not in have and ref != BASE_IMAGE:
            repo, tag = ref.rsplit(":", 1)
            base.tag(repo, tag)
    st["created"]["images"] = wanted
    _save_state(st)
    clear_stale_runs(client)
    say(f"building lab recipe repositories under {home / 'recipes'} ...")
    build_repos(home / "recipes")
    seed_warm_state(home / "ci-warm")
    from . import write_node_settings
    write_node_settings(home)
    from .harness import warm as hwarm
    deploy_live_warm(client)
    st["calibration"] = calibrate(client, st.get("calibration"))
    st["recipes"] = list_recipes()
    st["live_warm"] = sorted(hwarm.WARM_DOMAINS)
    _save_state(st)
    say("lab is up: " + ", ".join(st["recipes"]))
    return st


# ---- calibration: the handshake's cost fitted to this machine --------------------------------
CALIBRATION_VERSION = 2
ALONE_MAX = 0.4      # alone, the handshake must take at most this fraction of its window
LOADED_MIN = 1.5     # beside the chosen load, at least this fraction
CAL_WORK = 200000    # iterations timed alone
NODE_ENV = "node.env"


def _handshake_script() -> str:
    return (RECIPES_SRC / "_shared" / "handshake.sh").read_text()


def _calibration_key(client) -> dict:
    import hashlib
    from .recipes import load_meta
    info = client.info()
    return {"version": CALIBRATION_VERSION, "cores": int(info.get("NCPU") or 0),
            "kernel": info.get("KernelVersion", ""), "cgroup": f"v{info.get('CgroupVersion', '1')}/{info.get('CgroupDriver', '')}",
            "script_sha": hashlib.sha256(_handshake_script().encode()).hexdigest()[:12],
            "window_s": float(load_meta("mumble")["handshake"]["window_s"])}


def fit_work(window_s: float, alone: dict, loaded: dict, equal_share: float | None = None) -> dict:
    """The handshake cost (loop iterations) for a window, from timings alone and under load
    (`Stressors.time_work` records). Model: t = exec overhead + work / rate. Each margin is held
    against its own worst case:
      alone  <= ALONE_MAX x window at the typical (median) alone speed — neighbours' processes only
             make it slower, which the margin absorbs;
      loaded >= LOADED_MIN x window at the fastest alone speed (min sample) times the smallest
             credible slowdown: the measured one, but never more than `equal_share` ((N + 1) / C for
             N burners on C cores: what equal CPU shares give on a machine with nothing else on it;
             a busy machine measures more, a quiet CI machine will not).
    Feasible works lie in [w_min, w_max]; the geometric middle leaves equal multiplicative margins
    on both sides. Pure: unit-tested."""
    ov_a, ov_l = alone["exec_overhead_s"], loaded["exec_overhead_s"]
    rate_typ = alone["work"] / max(alone["median_s"] - ov_a, 1e-3)
    rate_fast = alone["work"] / max(alone.get("min_s", alone["median_s"]) - ov_a, 1e-3)
    rate_l = loaded["work"] / max(loaded["median_s"] - ov_l, 1e-3)
    measured = rate_typ / rate_l
    used = min(measured, equal_share) if equal_share else measured
    w_max = (ALONE_MAX * window_s - ov_a) * rate_typ
    w_min = (LOADED_MIN * window_s - ov_l) * rate_fast / used
    ok = 0 < w_min <= w_max
    work = int((w_min * w_max) ** 0.5) if ok else int(max(w_max, 1000))
    pa = ov_a + work / rate_typ
    pl = ov_l + work * used / rate_fast
    return {"work": work, "separates": ok, "slowdown": round(measured, 2), "slowdown_used": round(used, 2),
            "equal_share": equal_share, "rate_alone_per_s": int(rate_typ), "rate_alone_fastest_per_s": int(rate_fast),
            "rate_loaded_per_s": int(rate_l), "work_range": [int(w_min), int(w_max)],
            "predicted_alone_s": round(pa, 2), "predicted_loaded_s": round(pl, 2),
            "predicted_loaded_measured_s": round(ov_l + work / rate_l, 2),
            "alone_fraction": round(pa / window_s, 3), "loaded_fraction": round(pl / window_s, 3)}


def calibrate(client, previous: dict | None = None, force: bool = False) -> dict:
    """Fit mumble's handshake cost to this machine: time a fixed single-threaded CPU workload
    (handshake.sh itself, through `docker exec` in a Swarm task, the path the custom tier takes)
    alone, then beside the load ladder's rungs until one separates (alone <= ALONE_MAX x window,
    loaded >= LOADED_MIN x window). Writes HANDSHAKE_WORK to <lab home>/node.env, returns the
    record kept in state.json. Reused while the machine key (cores, kernel, cgroup, script, window)
    is unchanged; REDFIX_LAB_RECALIBRATE=1 forces a new one."""
    from ..load import Stressors, default_ladder
    key = _calibration_key(client)
    env_file = lab_home() / NODE_ENV
    force = force or os.environ.get("REDFIX_LAB_RECALIBRATE") == "1"
    if previous and not force and previous.get("key") == key and env_file.exists():
        return previous
    window = key["window_s"]
    script = _handshake_script()
    say(f"calibrating the handshake cost to this machine ({key['cores']} cores, window {window:g}s) ...")
    st = Stressors(client, BASE_IMAGE)
    t0 = time.monotonic()
    tried = []
    try:
        st.clear()
        st.start_probe()
        alone = st.time_work(CAL_WORK, script, "HANDSHAKE_WORK", samples=7)
        rate_a = CAL_WORK / max(alone["median_s"] - alone["exec_overhead_s"], 1e-3)
        w_load = int(min(CAL_WORK, max(20000, 0.15 * rate_a)))     # ~0.15 s alone: bounded cost under load
        fit = None
        for rung in default_ladder(key["cores"])[:3]:
            load = st.apply(rung)
            loaded = st.time_work(w_load, script, "HANDSHAKE_WORK", samples=3)
            fit = fit_work(window, alone, loaded, equal_share=(rung.cpu + 1) / key["cores"] if rung.cpu else None)
            tried.append({"rung": rung.name, "running": load.get("running"), "loaded": loaded,
                          "slowdown": fit["slowdown"], "separates": fit["separates"]})
            say(f"  {rung.name}: CPU work x{fit['slowdown']} slower than alone (fit with x{fit['slowdown_used']})"
                + (" — separates" if fit["separates"] else " — not enough to separate"))
            if fit["separates"]:
                break
        st.clear(keep_probe=True)
        check = st.time_work(fit["work"], script, "HANDSHAKE_WORK", samples=1)
    finally:
        st.clear()
    rec = {"key": key, "window_s": window, "alone_max": ALONE_MAX, "loaded_min": LOADED_MIN,
           "alone": alone, "tried": tried, "rung": tried[-1]["rung"], **fit,
           "check_alone_s": check["median_s"], "took_s": round(time.monotonic() - t0, 1),
           "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    env_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(env_file, f"# written by `redfix lab up` (calibration {rec['at']})\nHANDSHAKE_WORK={fit['work']}\n")
    say(f"handshake cost {fit['work']} iterations: alone ~{fit['predicted_alone_s']}s "
        f"({fit['alone_fraction']:.0%} of {window:g}s; measured {check['median_s']}s), beside {rec['rung']} "
        f">= ~{fit['predicted_loaded_s']}s ({fit['loaded_fraction']:.0%}; ~{fit['predicted_loaded_measured_s']}s at the measured slowdown)")
    if not fit["separates"]:
        say("WARNING: no rung of the load ladder slows CPU-bound work enough on this machine to separate "
            "alone from loaded; the handshake keeps the alone margin and the load case may not reproduce")
    return rec


COLD_STACK_RE = r"^[a-z0-9]{1,4}-[0-9a-f]{6}_"


def clear_stale_runs(client) -> None:
    """Cold-run stacks (and stressors) left by a run that was killed: removed when no harness
    process is running, so a node reads quiet again. Warm (canonical) stacks are left alone."""
    import re
    from ..nodes import LocalNode
    if LocalNode().busy_reasons([{"process": r"redfix_lib\.lab\.harness\.run_recipe_ci"}]):
        return
    stale = [s for s in lab_stacks(client) if re.match(COLD_STACK_RE, s) or s == STRESS_STACK]
    if stale:
        say(f"removing stacks left by killed runs: {', '.join(stale)}")
        lifecycle.teardown(client, stale)


def deploy_live_warm(client) -> None:
    """The live-warm providers the harness config names (e.g. a shared SSO): always running."""
    from .harness import warm as hwarm
    compose = HARNESS_DIR / "live_warm.yml"
    for name, domain in hwarm.WARM_DOMAINS.items():
        stack = domain.replace(".", "_")
        env = {**os.environ, "DOMAIN": domain, "STACK_NAME": stack}
        r = subprocess.run(["docker", "stack", "deploy", "--prune", "-c", str(compose), stack], env=env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise EngineUnavailable(f"deploying the live-warm provider {name} failed: {r.stderr.strip()[-500:]}")
        say(f"live-warm provider {name} deployed as stack {stack}")


def _is_lab_namespace(ns: str) -> bool:
    from .harness.canonical import BASE_DOMAIN
    return ns.endswith("_" + BASE_DOMAIN.replace(".", "_")) or ns == STRESS_STACK


def lab_stacks(client=None) -> list[str]:
    """Stacks the lab made: every name under the lab's base domain, and the stressors."""
    client = client or _client()
    return sorted({ns for s in client.services.list()
                   if _is_lab_namespace(ns := (s.attrs["Spec"].get("Labels") or {}).get("com.docker.stack.namespace", ""))})


def lab_down() -> None:
    if engine_reachable() is not None:
        say("no engine reachable: nothing to remove")
        return
    client = _client()
    st = load_state()
    stacks = lab_stacks(client)
    say(f"removing stacks: {', '.join(stacks) or '(none)'}")
    lifecycle.teardown(client, stacks)
    # retained warm volumes and any config/secret a lab stack left behind
    for v in client.volumes.list():
        if _is_lab_namespace((v.attrs.get("Labels") or {}).get("com.docker.stack.namespace", "")):
            _retry(lambda: v.remove(force=True))
    for obj in client.configs.list() + client.secrets.list():
        if _is_lab_namespace((obj.attrs["Spec"].get("Labels") or {}).get("com.docker.stack.namespace", "")):
            _retry(obj.remove)
    created = st.get("created", {})
    for name in created.get("networks", []):
        for n in _networks_named(client, name):
            if (n.attrs.get("Labels") or {}).get(LAB_LABEL) == "1":
                say(f"removing network {name}")
                _retry(n.remove)
    ours = {t for i in client.images.list() for t in i.tags if t.startswith("redfix-lab/")}  # the lab's namespace
    for ref in sorted(set(created.get("images", [])) | ours, reverse=True):
        try:
            client.images.remove(ref, force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
    if created.get("swarm"):
        say("leaving the swarm lab up initialised")
        client.swarm.leave(force=True)
        if created.get("gwbridge"):
            for n in _networks_named(client, GWBRIDGE):
                say(f"removing network {GWBRIDGE} (made by the swarm init)")
                _retry(n.remove)
    home = lab_home()
    if home.exists():
        shutil.rmtree(home)
    say("lab is down")


def _retry(fn, tries=15):
    for i in range(tries):
        try:
            return fn()
        except Exception:  # noqa: BLE001
            if i == tries - 1:
                raise
            time.sleep(1)


def lab_status() -> dict:
    why = engine_reachable()
    out = {"engine": "reachable" if why is None else f"unreachable: {why}", "lab_home": str(lab_home())}
    if why is not None:
        return out
    client = _client()
    info = client.info()
    out["swarm"] = info.get("Swarm", {}).get("LocalNodeState")
    out["proxy_network"] = bool(_networks_named(client, "proxy"))
    have = {t for img in client.images.list() for t in img.tags}
    out["base_image"] = BASE_IMAGE in have
    out["stacks"] = lab_stacks(client)
    out["recipes"] = sorted(p.name for p in (lab_home() / "recipes").glob("*") if (p / ".git").exists())
    out["state"] = load_state()
    return out
