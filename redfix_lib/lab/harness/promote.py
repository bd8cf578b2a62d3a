"""Warm promote (cf. cc-ci WC5): an orchestrator step run by run_recipe_ci.py after the teardown of a
green cold run on latest: reattach the canonical, advance to head, probe, promote on green. Reports
only in the log (`WC5 ...`, `!! WC5 promote failed for <r>: ...`) and in canonical.json."""
from __future__ import annotations

import json
import time
from pathlib import Path

from . import lifecycle
from .canonical import canonical_domain, stack_name
from .warm import WARM_DOMAINS


def collision(recipe: str) -> str | None:
    dom = canonical_domain(recipe)
    for name, live in WARM_DOMAINS.items():
        if live == dom:
            return (f"canonical domain {dom} collides with live-warm provider {name!r} "
                    f"(WARM_DOMAINS[{name!r}] == canonical_domain({recipe!r}))")
    return None


def probe(port: int | None, path: str, tries: int = 10, delay: float = 2.0) -> tuple[int, str]:
    import httpx
    if port is None:
        return 0, "no published port"
    last = (0, "")
    for _ in range(tries):
        try:
            r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5.0)
            last = (r.status_code, r.text[:200])
            if r.status_code == 200:
                return last
        except httpx.HTTPError as e:
            last = (0, f"{type(e).__name__}: {e}")
        time.sleep(delay)
    return last


def promote(ctx) -> tuple[bool, str]:
    recipe, head = ctx.recipe, ctx.head_ref
    if why := collision(recipe):
        print(f"!! WC5 promote failed for {recipe}: refused: {why}", flush=True)
        return False, f"promote refused: {why}"
    warm_root = Path(ctx.lab_home) / "ci-warm" / recipe
    canon_file = warm_root / "canonical.json"
    canon = json.loads(canon_file.read_text()) if canon_file.exists() else None
    env = json.loads((warm_root / "env.json").read_text()) if (warm_root / "env.json").exists() else ctx.cold_env()
    dom = canonical_domain(recipe)
    stack = stack_name(dom)
    health = ctx.meta["warm"].get("health") or {}
    try:
        if canon and canon.get("version") != head:
            print(f"[harness] WC5 reattach canonical {canon['version']} as {stack}", flush=True)
            ctx.deploy(canon["version"], stack=stack, domain=dom, env=env)
            ok, detail = ctx.wait(stack)
            if not ok:
                return False, f"canonical {canon['version']} did not come up: {detail}"
        print(f"[harness] WC5 advance {stack} -> {head}", flush=True)
        ctx.deploy(head, stack=stack, domain=dom, env=env)
        ok, detail = ctx.wait(stack)
        port = lifecycle.host_port(ctx.c, stack, health.get("service", "app"), int(health.get("port", 80)))
        status, body = probe(port, health.get("path", "/"), tries=3 if not ok else 8, delay=1.5)
        if ok and status == 200 and not ctx.head_is_tag:
            print(f"[harness] WC5 health green for {recipe}@{head}; not promoted (not a release tag)", flush=True)
            return True, "green (not promoted: ref is not a release tag)"
        if ok and status == 200:
            warm_root.mkdir(parents=True, exist_ok=True)
            import subprocess
            commit = subprocess.run(["git", "-C", str(ctx.recipe_dir), "rev-parse", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
            canon_file.write_text(json.dumps({"recipe": recipe, "version": head, "commit": commit, "status": "idle",
                                              "ts": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}))
            (warm_root / "env.json").write_text(json.dumps(env))
            print(f"[harness] WC5 promoted {recipe} canonical -> {head}", flush=True)
            return True, "promoted"
        msg = (f"!! WC5 promote failed for {recipe}: {dom}{health.get('path', '/')} last status {status}"
               f"{'' if ok else '; ' + detail}")
        print(msg + f" ({body[:120]})", flush=True)
        return False, msg
    finally:
        lifecycle.dump_logs(ctx.c, stack, Path(ctx.results_dir) / "services" / "warm")
        # back to idle: stack removed, data volumes retained, canonical.json unchanged on failure
        lifecycle.teardown(ctx.c, [stack], keep_volumes=True)
