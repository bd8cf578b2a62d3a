"""Test-expectation check: the images and service names an overlay test asserts, searched
across every ref of the recipe (tags, main, other branches)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from ..bundle import EvidenceItem
from .static import _git, files_at, tags

IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$")


def asserted(test_source: str) -> dict:          # kept for callers; analyze.asserted is the full check
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
    """(where, text) of the overlay test, read on the node: under the case's harness.tests_dir
    (cc-ci: /etc/cc-ci/tests/<recipe>/, see ccci.TESTS_DIR) when it names one, else under the
    harness root. FileNotFoundError when the node has no such test."""
    from ..gate import expand
    tdir = getattr(cx.case.harness, "tests_dir", None)
    if tdir:
        node_path = str(Path(expand(tdir, cx.values)) / Path(rel).name)
    else:
        node_path = str(Path(cx.harness_dir).parent.parent / rel)
    try:
        return node_path, cx.node.read_file(node_path).decode("utf-8", "replace")
    except OSError as e:
        raise FileNotFoundError(f"{node_path}: {e}") from e


def collect(cx, spec) -> list[EvidenceItem]:
    """Stores the raw facts: the test's source and the recipe's compose files at every ref (tags,
    branches). What it asserts and which ref satisfies it is judged at classify time
    (analyze.expectation_item, which also reads the failing tests' messages)."""
    rel = spec.get("test") or f"tests/test_{cx.case.sweep_failure.tier}.py"
    try:
        src, text = _test_source(cx, rel)
    except FileNotFoundError:
        if spec.get("test"):
            raise
        return []          # the default probe: this tier has no overlay test to check
    repo = cx.recipe_repo
    branches = [b.strip() for b in _git(cx, repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").split("\n")
                if b.strip()]
    refs = [("tag", t) for t in tags(cx, repo)] + [("branch", b) for b in branches]
    stored = [{"kind": kind, "ref": ref, "files": {k: v for k, v in files_at(cx, repo, ref).items()
                                                  if k.startswith("compose") or k.endswith(".env.sample")}}
              for kind, ref in refs]
    return [EvidenceItem(
        id=f"test_expectation:{Path(rel).name}", kind="test_expectation", source=str(src), status="ok",
        summary=f"{Path(rel).name}: source and compose files at {len(stored)} ref(s) (judged at classify time)",
        data={"test": rel, "test_source": text, "refs": stored})]
