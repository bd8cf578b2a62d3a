"""Static recipe rules evaluated at git refs of the recipe checkout: the tag under
investigation, the previous tag and main (and a contrast recipe when the case names one)."""
from __future__ import annotations

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
    names = [n for n in _git(cx, repo, "ls-tree", "-r", "--name-only", ref).split("\n")
             if n and (n.endswith((".yml", ".yaml", ".sh", ".sample", ".tmpl", ".ini")) or n == "abra.sh")]
    return {n: _git(cx, repo, "show", f"{ref}:{n}") for n in names}


def _item(recipe, ref, label, findings, repo) -> EvidenceItem:
    return EvidenceItem(
        id=f"static_rules:{recipe}@{label}", kind="static_rules", source=f"{repo}@{ref}", status="ok",
        summary=f"{recipe}@{ref} ({label}): " + (", ".join(f"{f.rule} {f.service}" for f in findings) or "no rule hit"),
        excerpt="\n".join(f"{f.rule} [{f.severity}] {f.service}: {f.message}" for f in findings[:10]),
        data={"recipe": recipe, "ref": ref, "label": label, "ruleset": RULESET_VERSION,
              "findings": [f.to_dict() for f in findings]})


def collect(cx, spec) -> list[EvidenceItem]:
    repo = cx.recipe_repo
    ts = tags(cx, repo)
    ref = cx.case.ref
    prev = [t for t in ts if version_key(t) < version_key(ref)] if ref in ts else ts
    items = []
    cur = files_at(cx, repo, ref)
    prev_files = files_at(cx, repo, prev[-1]) if prev else None
    items.append(_item(cx.case.recipe, ref, "tag", evaluate(cur, tag=ref if ref in ts else None, prev_files=prev_files), repo))
    if prev:
        items.append(_item(cx.case.recipe, prev[-1], "previous-tag", evaluate(prev_files, tag=prev[-1]), repo))
    try:
        items.append(_item(cx.case.recipe, "main", "main", evaluate(files_at(cx, repo, "main")), repo))
    except RuntimeError:
        pass
    other = spec.get("compare_recipe")
    if other:
        orepo = re.sub(r"[^/]+$", other, repo.rstrip("/"))
        ots = tags(cx, orepo)
        items.append(_item(other, ots[-1], "contrast", evaluate(files_at(cx, orepo, ots[-1]), tag=ots[-1]), orepo))
    return items
