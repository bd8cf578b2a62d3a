"""Static recipe rules evaluated at git refs of the recipe checkout: the tag under
investigation, the previous tag and main (and a contrast recipe when the case names one)."""
from __future__ import annotations

import posixpath
import re

from ..bundle import EvidenceItem
from ..rules import RULESET_VERSION, evaluate


def _git(cx, repo: str, *args: str) -> str:
    code, out = cx.node.capture(["git", "-C", repo, *args], timeout_s=60)
    if code != 0:
        raise RuntimeError(f"git {' '.join(args[:2])} failed in {repo}")
    return out.decode("utf-8", "replace")


def version_key(tag: str):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", tag)]


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


def _item(recipe, ref, label, findings, repo) -> EvidenceItem:
    return EvidenceItem(
        id=f"static_rules:{recipe}@{label}", kind="static_rules", source=f"{repo}@{ref}", status="ok",
        summary=f"{recipe}@{ref} ({label}): " + (", ".join(f"{f.rule} {f.service}" for f in findings if f.severity != "hint")
                                                  or "no rule hit"),
        excerpt="\n".join(f"{f.rule} [{f.severity}] {f.service}: {f.message}" for f in findings[:10]),
        data={"recipe": recipe, "ref": ref, "label": label, "ruleset": RULESET_VERSION,
              "findings": [f.to_dict() for f in findings]})


def collect(cx, spec) -> list[EvidenceItem]:
    repo = cx.recipe_repo
    env = spec.get("env") or None      # an app env (e.g. {COMPOSE_FILE: ...}) over .env.sample
    ts = tags(cx, repo)
    ref = cx.case.ref
    prev = [t for t in ts if version_key(t) < version_key(ref)] if ref in ts else ts
    items = []
    cur = files_at(cx, repo, ref)
    prev_files = files_at(cx, repo, prev[-1]) if prev else None
    items.append(_item(cx.case.recipe, ref, "tag", evaluate(cur, tag=ref if ref in ts else None, prev_files=prev_files, env=env), repo))
    if prev:
        items.append(_item(cx.case.recipe, prev[-1], "previous-tag", evaluate(prev_files, tag=prev[-1], env=env), repo))
    try:
        items.append(_item(cx.case.recipe, "main", "main", evaluate(files_at(cx, repo, "main"), env=env), repo))
    except RuntimeError:
        pass
    other = spec.get("compare_recipe")
    if other:
        orepo = re.sub(r"[^/]+$", other, repo.rstrip("/"))
        ots = tags(cx, orepo)
        items.append(_item(other, ots[-1], "contrast", evaluate(files_at(cx, orepo, ots[-1]), tag=ots[-1]), orepo))
    return items
