"""Lab recipe sources (shipped in the package) -> real git repositories with tags.

Folder format (see docs/lab.md): <name>/meta.yaml, versions/<tag>/..., optional
main/ and fixes/<branch>/, and tests/ with the harness overlay tests.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from ..bundle import atomic_write_json
from ..safety import recipe_problem, ref_problem
from . import RECIPES_SRC

GIT_ENV = {"GIT_AUTHOR_NAME": "redfix lab", "GIT_AUTHOR_EMAIL": "lab@redfix.invalid",
           "GIT_COMMITTER_NAME": "redfix lab", "GIT_COMMITTER_EMAIL": "lab@redfix.invalid",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def list_recipes(src: Path = RECIPES_SRC) -> list[str]:
    return sorted(p.name for p in src.iterdir() if (p / "meta.yaml").is_file())


def load_meta(name: str, src: Path = RECIPES_SRC) -> dict:
    if p := recipe_problem(name):
        raise ValueError(f"recipe: {p}")
    meta = yaml.safe_load((src / name / "meta.yaml").read_text())
    meta.setdefault("name", name)
    for v in meta.get("versions", []):
        if p := ref_problem(v):
            raise ValueError(f"{src / name / 'meta.yaml'}: versions: {p}")
    return meta


def all_images(src: Path = RECIPES_SRC) -> list[str]:
    """Every `redfix-lab/...` image named by any compose file of any lab recipe."""
    out = set()
    rx = re.compile(r"image:\s*[\"']?(redfix-lab/[A-Za-z0-9._/-]+:[A-Za-z0-9._-]+)")
    for f in list(src.rglob("compose*.yml")) + [src.parent / "harness" / "live_warm.yml"]:
        out.update(rx.findall(f.read_text()))
    return sorted(out)


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


def _replace_tree(repo: Path, src: Path, include: list[str] = (), shared: Path | None = None) -> None:
    for p in repo.iterdir():
        if p.name == ".git":
            continue
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    shutil.copytree(src, repo, dirs_exist_ok=True, copy_function=shutil.copy)  # fresh mtimes: git must see the change
    for name in include:   # files shared by several lab recipes (scripts delivered as configs)
        if not (repo / name).exists():
            shutil.copy(shared / name, repo / name)


def build_repo(name: str, dest: Path, src: Path = RECIPES_SRC) -> Path:
    meta = load_meta(name, src)
    repo = dest / name
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for tag in meta["versions"]:
        _replace_tree(repo, src / name / "versions" / tag, meta.get("include", []), src / "_shared")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"release {tag}")
        _git(repo, "tag", tag)
    last = meta["versions"][-1]
    if (src / name / "main").is_dir():
        _replace_tree(repo, src / name / "main", meta.get("include", []), src / "_shared")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "main: work after the last release")
    for branch in (meta.get("fixes") or {}):
        if ref_problem(branch):
            raise ValueError(f"{name}: bad fix branch name {branch!r}")
        fsrc = src / name / "fixes" / branch
        if not fsrc.is_dir():
            continue  # a harness-side fix: no recipe branch
        _git(repo, "checkout", "-q", "-b", branch, last)
        _replace_tree(repo, fsrc, meta.get("include", []), src / "_shared")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", f"fix: {branch}")
        _git(repo, "checkout", "-q", "main")
    return repo


def build_repos(dest: Path, src: Path = RECIPES_SRC) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [build_repo(n, dest, src) for n in list_recipes(src)]


def seed_warm_state(warm_root: Path, src: Path = RECIPES_SRC) -> None:
    """Starting canonical state, like the seed's /var/lib/ci-warm/<r>/canonical.json. A recipe whose
    meta names a canonical gets it back at every `lab up` when a promotion moved it (the lab's
    cases start from the state the meta declares); the others keep what promotions wrote."""
    import json
    for n in list_recipes(src):
        w = (load_meta(n, src).get("warm") or {})
        d = warm_root / n
        try:
            cur = json.loads((d / "canonical.json").read_text()).get("version")
        except (OSError, ValueError):
            cur = None
        if w.get("canonical") and cur != w["canonical"]:
            atomic_write_json(d / "canonical.json", {"version": w["canonical"],
                                                     "timestamp": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
                                                     "source": "seeded by lab up"})
            atomic_write_json(d / "env.json", w.get("env") or {})
