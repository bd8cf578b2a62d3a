"""backupbot label semantics with the docker SDK (cf. coop-cloud backup-bot-two).

backup:  for each service labelled backupbot.backup=true: run backupbot.backup.pre-hook in
         its running container, copy each mounted volume (or the
         backupbot.backup.volumes.<vol>.path entries, comma separated, relative to the
         volume root; legacy backupbot.backup.path = absolute paths) out as tar, post-hook.
restore: restore pre-hook, copy the saved paths back into the running container, restore
         post-hook. Hooks run as `sh -c <hook>` inside the container.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import lifecycle


def _labels(svc) -> dict:
    return svc.attrs["Spec"].get("Labels") or {}


def _hook(cont, cmd: str | None, log) -> None:
    if not cmd:
        return
    r = cont.exec_run(["sh", "-c", cmd])
    out = (r.output or b"").decode("utf-8", "replace").strip()
    log(f"hook {cmd!r} -> exit {r.exit_code} {out[:300]}")
    if r.exit_code != 0:
        raise RuntimeError(f"hook {cmd!r} failed with exit {r.exit_code}: {out[:300]}")


def _targets(cont, labels: dict, stack: str) -> list[tuple[str, str]]:
    """(volume short name, absolute path in container) pairs to save."""
    out = []
    if labels.get("backupbot.backup.path"):          # legacy v1
        return [("legacy", p.strip()) for p in labels["backupbot.backup.path"].split(",") if p.strip()]
    for m in cont.attrs.get("Mounts", []):
        if m.get("Type") != "volume":
            continue
        short = m["Name"][len(stack) + 1:] if m["Name"].startswith(stack + "_") else m["Name"]
        if labels.get(f"backupbot.backup.volumes.{short}", "true").lower() == "false":
            continue
        paths = labels.get(f"backupbot.backup.volumes.{short}.path")
        if paths:
            out += [(short, os.path.join(m["Destination"], p.strip())) for p in paths.split(",") if p.strip()]
        else:
            out.append((short, m["Destination"]))
    return out


def backup(c, stack: str, snap_root: Path, log=print) -> str:
    snap_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    snap = snap_root / snap_id
    snap.mkdir(parents=True)
    manifest = []
    for svc in lifecycle.services(c, stack):
        labels = _labels(svc)
        if labels.get("backupbot.backup", "").lower() != "true":
            continue
        short = svc.name[len(stack) + 1:]
        cont = lifecycle.running_container(c, stack, short)
        if cont is None:
            raise RuntimeError(f"backup: {svc.name} has no running container (409 container not running)")
        cont.reload()
        _hook(cont, labels.get("backupbot.backup.pre-hook"), log)
        for i, (vol, path) in enumerate(_targets(cont, labels, stack)):
            stream, _ = cont.get_archive(path)
            f = snap / f"{short}.{i}.tar"
            with open(f, "wb") as out:
                for chunk in stream:
                    out.write(chunk)
            manifest.append({"service": short, "volume": vol, "path": path, "file": f.name})
            log(f"backup {svc.name}: {path} -> {f.name}")
        _hook(cont, labels.get("backupbot.backup.post-hook"), log)
    if not manifest:
        raise RuntimeError("backup: no service labelled backupbot.backup=true")
    (snap / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return snap_id


def restore(c, stack: str, snap_root: Path, snap_id: str, log=print) -> None:
    snap = snap_root / snap_id
    manifest = json.loads((snap / "manifest.json").read_text())
    by_svc: dict[str, list[dict]] = {}
    for m in manifest:
        by_svc.setdefault(m["service"], []).append(m)
    for short, items in by_svc.items():
        cont = lifecycle.running_container(c, stack, short)
        if cont is None:
            raise RuntimeError(f"restore: {stack}_{short} has no running container")
        svc = c.services.get(f"{stack}_{short}")
        labels = _labels(svc)
        _hook(cont, labels.get("backupbot.restore.pre-hook"), log)
        for m in items:
            parent = os.path.dirname(m["path"].rstrip("/")) or "/"
            with open(snap / m["file"], "rb") as f:
                ok = cont.put_archive(parent, f.read())
            log(f"restore {stack}_{short}: {m['file']} -> {m['path']} ({'ok' if ok else 'failed'})")
        _hook(cont, labels.get("backupbot.restore.post-hook"), log)
