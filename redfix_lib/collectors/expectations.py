"""Test-expectation check: the images and service names an overlay test asserts, searched
across every ref of the recipe (tags, main, other branches)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from ..bundle import EvidenceItem
from .static import _git, files_at, tags

IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$")


def asserted(test_source: str) -> dict:
    """Image refs compared with == and service names asserted absent (`"x" not in ...`)."""
    tree = ast.parse(test_source)
    images, removed = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
            for op, right in zip(node.ops, node.comparators):
                left = parts[parts.index(right) - 1]
                for a, b in ((left, right), (right, left)):
                    if isinstance(a, ast.Constant) and isinstance(a.value, str):
                        if isinstance(op, (ast.Eq, ast.NotEq)) and IMAGE_RE.match(a.value) and a is not b:
                            images.add(a.value)
                        if isinstance(op, ast.NotIn) and a is left and re.fullmatch(r"[a-z0-9_-]+", a.value):
                            removed.add(a.value)
    return {"images": sorted(images), "removed_services": sorted(removed)}


def _test_source(cx, rel: str) -> tuple[str, str]:
    """(where, text) of the overlay test: on the node under the harness root (cc-ci:
    /etc/cc-ci/<rel>), else in the lab recipe's folder."""
    from ..lab import RECIPES_SRC
    node_path = str(Path(cx.harness_dir).parent.parent / rel)
    try:
        return node_path, cx.node.read_file(node_path).decode("utf-8", "replace")
    except (FileNotFoundError, OSError):
        p = RECIPES_SRC / cx.case.recipe / rel
        return str(p), p.read_text()


def collect(cx, spec) -> list[EvidenceItem]:
    src, text = _test_source(cx, spec["test"])
    want = asserted(text)
    repo = cx.recipe_repo
    branches = [b.strip() for b in _git(cx, repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split("\n")
                if b.strip()]
    refs = [("tag", t) for t in tags(cx, repo)] + [("branch", b) for b in branches]
    found_img = {i: [] for i in want["images"]}
    has_svc = {s: [] for s in want["removed_services"]}
    for kind, ref in refs:
        files = files_at(cx, repo, ref)
        text = "\n".join(v for k, v in files.items() if k.startswith("compose"))
        for i in found_img:
            if re.search(rf"image:\s*['\"]?{re.escape(i)}['\"]?\s*$", text, re.M):
                found_img[i].append(ref)
        from ..rules import merged_compose
        svcs = set((merged_compose(files)[0].get("services") or {}))
        for s in has_svc:
            if s not in svcs:
                has_svc[s].append(ref)        # refs where the service IS dropped
    released = [r for k, r in refs if k == "tag"] + ["main"]
    satisfied_released = {i: [r for r in found_img[i] if r in released] for i in found_img}
    dropped_released = {s: [r for r in has_svc[s] if r in released] for s in has_svc}
    stale = bool(want["images"] or want["removed_services"]) and \
        not any(satisfied_released.values()) and not any(dropped_released.values())
    only_in = sorted({r for v in list(found_img.values()) + list(has_svc.values()) for r in v} - set(released))
    return [EvidenceItem(
        id=f"test_expectation:{Path(spec['test']).name}", kind="test_expectation", source=str(src), status="ok",
        summary=(f"{Path(spec['test']).name} asserts images {want['images']} and removed services "
                 f"{want['removed_services']}: " + ("found in NO release tag nor main" if stale else "found at "
                 + ", ".join(sorted({r for v in satisfied_released.values() for r in v} | {r for v in dropped_released.values() for r in v}))))
                + (f"; only in {', '.join(only_in)}" if only_in else ""),
        data={"asserted": want, "refs_checked": [r for _, r in refs], "image_found_at": found_img,
              "service_dropped_at": has_svc, "stale": stale, "only_in_unreleased": only_in})]
