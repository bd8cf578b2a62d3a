"""What a tier's pytest run sees: the run state written by run_recipe_ci.py (CI_STATE)."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from . import lifecycle


class Ctx:
    def __init__(self, state_path: str):
        self.state_path = Path(state_path)
        self.s = json.loads(self.state_path.read_text())
        self.c = lifecycle.client()

    def __getattr__(self, k):
        try:
            return self.s[k]
        except KeyError:
            raise AttributeError(k) from None

    def save(self, **kw) -> None:
        self.s.update(kw)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.s, indent=1, sort_keys=True))
        os.replace(tmp, self.state_path)

    @property
    def meta(self) -> dict:
        return self.s["meta"]

    def deploy_env(self, stack: str | None = None, domain: str | None = None, env: dict | None = None) -> dict:
        e = {"STACK_NAME": stack or self.stack, "DOMAIN": domain or self.domain}
        e.update(env if env is not None else self.cold_env())
        return e

    def cold_env(self) -> dict:
        """Fresh per-run secrets, as a cold deploy generates them (kept outside the results dir)."""
        f = Path(self.s["secrets_file"])
        if not f.exists():
            f.parent.mkdir(parents=True, exist_ok=True)
            vals = {k: secrets.token_hex(16) for k in self.meta.get("secrets", [])}
            f.write_text(json.dumps(vals))
            f.chmod(0o600)
        return json.loads(f.read_text())

    def src(self, ref: str) -> Path:
        d = Path(self.s["work_dir"]) / ref.replace("/", "_")
        if not d.exists():
            lifecycle.export_ref(Path(self.recipe_dir), ref, d)
        return d

    def deploy(self, ref: str, stack: str | None = None, domain: str | None = None, env: dict | None = None):
        print(f"[harness] deploy {self.recipe}@{ref} as {stack or self.stack}", flush=True)
        lifecycle.deploy(stack or self.stack, self.src(ref), self.deploy_env(stack, domain, env))

    def wait(self, stack: str | None = None, timeout: float | None = None) -> tuple[bool, str]:
        ok, detail = lifecycle.wait_converged(self.c, stack or self.stack,
                                              timeout or float(self.meta.get("deploy_timeout", 60)))
        print(f"[harness] converge {stack or self.stack}: {detail}", flush=True)
        return ok, detail

    def exec(self, service: str, argv: list[str], stack: str | None = None, timeout: float | None = None):
        return lifecycle.exec_in(self.c, stack or self.stack, service, argv, timeout)

    def service_names(self, stack: str | None = None) -> list[str]:
        st = stack or self.stack
        return sorted(s.name[len(st) + 1:] for s in lifecycle.services(self.c, st))

    def service_image(self, service: str, stack: str | None = None) -> str:
        s = self.c.services.get(f"{stack or self.stack}_{service}")
        return s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]


def get() -> Ctx:
    return Ctx(os.environ["CI_STATE"])
