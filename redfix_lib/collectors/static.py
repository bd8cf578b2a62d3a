"""The recipe's files at git refs of the recipe checkout: the tag under investigation, the previous
tag and main (and a contrast recipe when the case names one). Stored raw; the static rules run on
them at classify time (analyze.static_item), so a stored bundle is re-judged with today's ruleset."""
from __future__ import annotations

import posixpath
import re

from ..bundle import EvidenceItem
from ..contrast import version_key


def _git(cx, repo: str, *args: str) -> str:
    code, out = cx.node.capture(["git", "-C", repo, *args], timeout_s=60)
    if code != 0:
        raise RuntimeError(f"git {' '.join(args[:2])} failed in {repo}")
    return out.decode("utf-8", "replace")


def tags(cx, repo: str) -> list[str]:
    return sorted(_git(cx, repo, "tag").split(), key=version_key)


def files_at(cx, repo: str, ref: str) -> dict[str, str]:
    """The recipe tree at a ref: compose files and overlays (subfolders too), .env.sample, abra.sh,
    templates, and every file a compose file mounts as a config or secret (`file:`), whatever its
    name (nginx.conf, Caddyfile): the cross-ref rule compares them between refs."""
    all_names = {n for n in _git(cx, repo, "ls-tree", "-r", "--name-only", ref).split("\n") if n}
    names = {n for n in all_names if n.endswith((".yml", ".yaml", ".sh", ".sample", ".tmpl", ".ini"))}
    out = {n: _git(cx, repo, "show", f"{ref}:{n}") for n in sorted(names)}
    for n, text in list(out.items()):
        if n.endswith((".yml", ".yaml")):
            for m in re.finditer(r"^\s*file:\s*['\"]?([^'\"\s#]+)", text, re.M):
                # relative to the first compose file of the stack (the root for a recipe) or to its own folder
                for p in {posixpath.normpath(m.group(1)), posixpath.normpath(posixpath.join(posixpath.dirname(n), m.group(1)))}:
                    if p in all_names and p not in out:
                        out[p] = _git(cx, repo, "show", f"{ref}:{p}")
    return out


def tag_files(bundle) -> EvidenceItem | None:
    """The item this collector stored with the recipe's files at the case's tag (None before it ran)."""
    return next((e for e in (bundle.evidence if bundle else []) if e.kind == "static_rules" and e.status == "ok"
                 and e.data.get("label") == "tag" and "files" in e.data), None)


def _item(recipe, ref, label, files, repo, is_tag: bool, env: dict | None = None) -> EvidenceItem:
    return EvidenceItem(
        id=f"static_rules:{recipe}@{ref if label == 'release' else label}", kind="static_rules", source=f"{repo}@{ref}", status="ok",
        summary=f"{recipe}@{ref} ({label}): {len(files)} recipe file(s) (rules run at classify time)",
        data={"recipe": recipe, "ref": ref, "label": label, "is_tag": is_tag, "files": files,
              **({"env": env} if env else {})})


def collect(cx, spec) -> list[EvidenceItem]:
    repo = cx.recipe_repo
    env = spec.get("env") or None      # an app env (e.g. {COMPOSE_FILE: ...}) over .env.sample
    ts = tags(cx, repo)
    if spec.get("refs"):                # the files at contrast refs (pipeline.contrast_stage), nothing else
        return [_item(cx.case.recipe, r, "release", files_at(cx, repo, r), repo, r in ts, env)
                for r in spec["refs"] if r in ts]
    ref = cx.case.ref
    prev = [t for t in ts if version_key(t) < version_key(ref)] if ref in ts else ts
    items = [_item(cx.case.recipe, ref, "tag", files_at(cx, repo, ref), repo, ref in ts, env)]
    items[0].data["tags"] = ts              # the recipe's releases, oldest first (contrasts walk back on them)
    if prev:
        items.append(_item(cx.case.recipe, prev[-1], "previous-tag", files_at(cx, repo, prev[-1]), repo, True, env))
    try:
        items.append(_item(cx.case.recipe, "main", "main", files_at(cx, repo, "main"), repo, False, env))
    except RuntimeError:
        pass
    other = spec.get("compare_recipe")
    if other:
        orepo = re.sub(r"[^/]+$", other, repo.rstrip("/"))
        ots = tags(cx, orepo)
        items.append(_item(other, ots[-1], "contrast", files_at(cx, orepo, ots[-1]), orepo, True))
    return items
