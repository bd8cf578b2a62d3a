"""The node's harness settings (cc-ci: settings.toml, docs/cc-ci.md fact 18): the raw file the
harness reads at run start — `CCCI_SETTINGS` as the case's harness env sets it, else cc-ci's
/etc/cc-ci/settings.toml — or the fact that it is absent. The file is read, never judged here:
analyze/contrast read it at classify time with `ccci.read_settings`."""
from __future__ import annotations

from .. import ccci
from ..bundle import EvidenceItem

MAX_BYTES = 64 << 10


def source(cx, spec) -> tuple[str, str]:
    """(path, where the path came from)."""
    from ..gate import expand
    if spec.get("path"):
        return expand(spec["path"], cx.values), "the probe's path"
    env = cx.case.harness.env
    if ccci.SETTINGS_ENV in env:
        return expand(env[ccci.SETTINGS_ENV], cx.values), f"the case's harness env {ccci.SETTINGS_ENV}"
    return ccci.SETTINGS_PATH, "cc-ci's default path"


def collect(cx, spec) -> list[EvidenceItem]:
    path, how = source(cx, spec)
    base = {"path": path, "path_from": how}
    try:
        raw = cx.node.read_file(path)
    except FileNotFoundError:
        return [EvidenceItem(id="harness_settings:node", kind="harness_settings", source=path, status="ok",
                             summary=f"no settings file at {path} ({how}): the harness runs with every default",
                             data={**base, "present": False})]
    text = raw[:MAX_BYTES].decode("utf-8", "replace")
    art = cx.artifact("harness_settings.toml")      # the file as collected (redacted like every artifact)
    art.parent.mkdir(parents=True, exist_ok=True)
    art.write_text(text)
    return [EvidenceItem(id="harness_settings:node", kind="harness_settings", source=path, status="ok",
                         summary=f"settings file {path} ({how}), {len(raw)} bytes", artifact=cx.bundle.rel(art),
                         data={**base, "present": True, "text": text, "truncated": len(raw) > MAX_BYTES})]
