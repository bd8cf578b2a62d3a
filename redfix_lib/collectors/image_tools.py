"""What a recipe expects to find inside its images — the programs its healthchecks run (CMD's first
word; CMD-SHELL needs /bin/sh and the first word of each command), and its entrypoints and commands —
derived purely from the compose files at the tag (`expected`), then looked up in each image on the
node: `command -v <program>` in a throw-away container of the image (no network, removed after).
Raw answers only (exit status, output, the image's own Entrypoint); analyze.image_tools_item judges
them at classify time. An image not on the node, or without a shell, is recorded as such."""
from __future__ import annotations

import re
import shlex

from ..bundle import EvidenceItem

MAX_CHECKS = 8
SHELL_WORDS = {"if", "then", "else", "fi", "exit", "test", "[", "[[", "true", "false", "echo", "printf", "cd", "set",
               "export", "exec", "!", "{", "}", "(", ")", "return", "sleep", "for", "do", "done", "while", "case"}


def _first_words(cmd: str) -> list[str]:
    out = []
    for seg in re.split(r"&&|\|\||;|\|", cmd):
        try:
            w = shlex.split(seg.strip())
        except ValueError:
            w = seg.split()
        while w and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w[0]):     # VAR=value prefixes
            w = w[1:]
        if w and w[0] not in SHELL_WORDS and not w[0].startswith("$"):
            out.append(w[0])
    return out


def expected(files: dict[str, str], env: dict[str, str] | None = None) -> list[dict]:
    """[{service, image, tool, why}] from the default stack at the tag (pure)."""
    from ..rules import merged_compose
    try:
        comp = merged_compose(files, env)[0]
    except Exception:  # noqa: BLE001 - compose that does not load gives nothing to look for
        return []
    out, seen, mounts = [], set(), []

    def mounted(svc: dict) -> list[str]:
        """Paths the service gets at run time (configs, secrets, volumes, binds): not in the image."""
        out = []
        for c in svc.get("configs") or []:
            out.append(c.get("target") or f"/{c.get('source')}" if isinstance(c, dict) else f"/{c}")
        for c in svc.get("secrets") or []:
            out.append(c.get("target") if isinstance(c, dict) and str(c.get("target", "")).startswith("/") else
                       f"/run/secrets/{(c.get('target') or c.get('source')) if isinstance(c, dict) else c}")
        for v in svc.get("volumes") or []:
            t = v.get("target") if isinstance(v, dict) else (str(v).split(":")[1] if ":" in str(v) else str(v))
            out.append(t)
        return [str(x).rstrip("/") for x in out if x]

    def add(svc, image, tool, why):
        if tool.startswith("/") and any(tool == m or tool.startswith(m + "/") for m in mounts):
            return                        # delivered by a mount, not by the image
        if tool and (image, tool) not in seen:
            seen.add((image, tool))
            out.append({"service": svc, "image": image, "tool": tool, "why": why})

    for name, svc in sorted((comp.get("services") or {}).items()):
        svc = svc or {}
        image = str(svc.get("image") or "")
        if not image or "$" in image or not re.match(r"^[\w./:@-]+$", image):
            continue
        mounts = mounted(svc)
        hc = svc.get("healthcheck") or {}
        test = hc.get("test")
        if not hc.get("disable") and test not in (None, "NONE", ["NONE"]):
            if isinstance(test, str):
                test = ["CMD-SHELL", test]
            if isinstance(test, list) and test and test[0] == "CMD" and len(test) > 1:
                add(name, image, str(test[1]), "healthcheck (CMD)")
            elif isinstance(test, list) and test and test[0] == "CMD-SHELL" and len(test) > 1:
                add(name, image, "/bin/sh", "healthcheck (CMD-SHELL runs /bin/sh -c)")
                for w in _first_words(str(test[1])):
                    add(name, image, w, "healthcheck (CMD-SHELL)")
        ep, cmd = svc.get("entrypoint"), svc.get("command")
        if isinstance(ep, str):
            ep = shlex.split(ep) if ep.strip() else []
        if isinstance(cmd, str):
            cmd = shlex.split(cmd) if cmd.strip() else []
        if ep:
            add(name, image, str(ep[0]), "entrypoint")
        elif cmd and not str(cmd[0]).startswith("-"):
            # the image's own Entrypoint may take the command as its arguments: analysis decides with it
            add(name, image, str(cmd[0]), "command")
    return out[:MAX_CHECKS]


def collect(cx, spec) -> list[EvidenceItem]:
    from .static import tag_files
    tag = tag_files(cx.bundle)
    if tag is None:
        return [EvidenceItem(id="image_tools:tag", kind="image_tools", source="-", status="unavailable",
                             summary="unavailable: the recipe's files at the tag were not collected")]
    want = expected(tag.data["files"], tag.data.get("env"))
    if not want:
        return []
    client = cx.node.docker()
    checks = []
    for w in want:
        c = dict(w)
        try:
            img = client.images.get(w["image"])
        except Exception as e:  # noqa: BLE001 - docker.errors.ImageNotFound and transport errors alike
            c.update(image_present=False, error=f"{type(e).__name__}: {str(e)[:200]}")
            checks.append(c)
            continue
        cfg = img.attrs.get("Config") or {}
        c.update(image_present=True, image_id=img.id[:19], image_entrypoint=cfg.get("Entrypoint") or [],
                 image_cmd=cfg.get("Cmd") or [])
        try:
            out = client.containers.run(w["image"], entrypoint=["/bin/sh", "-c", 'command -v -- "$0" || test -x "$0"'],
                                        command=[w["tool"]], network_disabled=True, remove=True, stdout=True,
                                        stderr=True, user="0", labels={"redfix.probe": "image_tools"})
            c.update(exit_code=0, output=out.decode("utf-8", "replace")[:300])
        except Exception as e:  # noqa: BLE001 - ContainerError carries the exit status; no /bin/sh raises APIError
            c.update(exit_code=getattr(e, "exit_status", None),
                     output=(getattr(e, "stderr", None) or b"").decode("utf-8", "replace")[:300] if
                     isinstance(getattr(e, "stderr", None), bytes) else "",
                     error=f"{type(e).__name__}: {str(e)[:300]}")
        checks.append(c)
    return [EvidenceItem(id="image_tools:tag", kind="image_tools", source=f"{cx.case.recipe}@{tag.data.get('ref')}",
                         status="ok", summary=f"{len(checks)} program(s) the recipe runs inside its images looked up",
                         data={"ref": tag.data.get("ref"), "checks": checks})]
