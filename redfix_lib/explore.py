"""Exploration views for the case notebook: pure functions of a bundle + its verdict (tables,
Markdown, figures), plus `ask_more`, the one call that runs something (one more isolated run,
one more probe, a run at another ref) and re-classifies the same bundle.

Links are relative to the notebook's folder (`link_root` = the bundle folder as the notebook
sees it, e.g. "lab-gitea"), so they open in JupyterLab's file browser/editor."""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from .bundle import Bundle

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
FAILED = ("fail", "timeout", "error")
LOG_KINDS = ("harness_log", "service_logs")


def judged(b: Bundle) -> Bundle:
    """The bundle with its evidence as today's analysis judges it (analyze.derive: logs scanned
    with today's catalogue, static rules and expectations evaluated from the stored raw facts),
    which is what the verdict was computed from."""
    import dataclasses
    from .analyze import derive
    return dataclasses.replace(b, evidence=derive(b)[0])


def strip_ansi(s: str) -> str:
    return ANSI_RE.sub("", s)


def _md_escape(s: str) -> str:
    return s.replace("`", "'")


def _link(link_root: str, rel: str, line: int | None = None) -> str:
    target = f"{link_root.rstrip('/')}/{rel}" if link_root not in ("", ".") else rel
    label = rel + (f":{line}" if line else "")
    return f"[{label}]({target.replace(' ', '%20')})"


def _run_of(e) -> int | None:
    r = e.data.get("run") if isinstance(e.data, dict) else None
    if isinstance(r, int):
        return r
    m = re.search(r":run(\d+)", e.id)
    return int(m.group(1)) if m else None


def _read_lines(b: Bundle, rel: str) -> list[str]:
    p = Path(b.path) / rel
    try:
        return p.read_text(errors="replace").splitlines()
    except OSError:
        return []


# ---- failing lines ----------------------------------------------------------------------
def failing_lines_md(b: Bundle, verdict: dict, link_root: str = ".", context: int = 2, per_run: int = 3,
                     max_runs: int = 6) -> str:
    """For each failing run: the log lines a signature matched (cited ones first), each with
    `context` lines around it and a link to the file. A failing run whose logs matched no
    signature shows the failing tests' messages and a link to its harness log instead."""
    cited = set(verdict.get("evidence_cited") or [])
    b = judged(b)
    by_run: dict[int, list] = {}
    for e in b.evidence:
        if e.kind in LOG_KINDS and e.status == "ok" and e.data.get("matches"):
            by_run.setdefault(_run_of(e), []).append(e)
    out = []
    failing = [r for r in b.runs if r.outcome in FAILED]
    for r in failing[:max_runs]:
        where = "alone" if r.mode == "isolated" else r.mode + (f" ({r.load.get('cpu_burners')} CPU burners)" if r.load else "")
        out.append(f"#### run {r.index:03d} — {r.outcome} ({where}, {r.wall_s:.0f}s) · {_link(link_root, r.log)}")
        items = sorted(by_run.get(r.index, []), key=lambda e: (e.id not in cited, e.id))
        shown = 0
        for e in items:
            if shown >= per_run:
                break
            lines = _read_lines(b, e.artifact) if e.artifact else []
            hits = {int(m.get("line") or 0): m for m in e.data["matches"]}
            first = min(hits)
            lo, hi = max(1, first - context), max(n for n in hits if n <= first + 6) + context
            if lines:
                block = [f"{'>>' if i in hits else '  '} {i:5d} {strip_ansi(lines[i - 1])[:220]}"
                         for i in range(lo, min(hi, len(lines)) + 1)]
            else:
                block = [f">> {n:5d} {strip_ansi(m.get('text', ''))[:220]}" for n, m in sorted(hits.items())[:4]]
            sigs = ", ".join(dict.fromkeys(f"`{m.get('signature')}`" for m in hits.values()))
            mark = " **cited**" if e.id in cited else ""
            out.append(f"- {sigs}{mark} in {_link(link_root, e.artifact or e.source, first)}\n\n```\n"
                       + "\n".join(block) + "\n```")
            shown += 1
        if not shown:
            msgs = [f"{t.name}/{x.name}: {strip_ansi(x.message)[:200]}" for t in r.result.tiers for x in t.tests
                    if x.status in FAILED and x.message]
            out.append("- no signature matched in this run's logs; failing tests:\n\n```\n"
                       + ("\n".join(msgs[:4]) or "(no message recorded)") + "\n```")
    if len(failing) > max_runs:
        out.append(f"... and {len(failing) - max_runs} more failing run(s)")
    return "\n\n".join(out) or "_No failing run in this bundle._"


# ---- failing vs passing -----------------------------------------------------------------
def tests_by_run(b: Bundle) -> pd.DataFrame:
    """Tests x runs: each test's status per run (columns `NNN` alone, `NNN L` under load,
    `NNN @ref` at another ref), failing tests first."""
    cols, data = [], {}
    for r in b.runs:
        c = f"{r.index:03d}" + (" L" if r.mode == "under-load" else "") + (f" @{r.ref}" if r.mode in ("fix", "contrast") else "")
        cols.append(c)
        for t in r.result.tiers:
            for x in t.tests:
                data.setdefault(f"{t.name}/{x.name}", {})[c] = x.status
    df = pd.DataFrame.from_dict(data, orient="index").reindex(columns=cols).fillna("-")
    if df.empty:
        return df
    bad = df.apply(lambda row: sum(v in FAILED for v in row), axis=1)
    return df.loc[bad.sort_values(ascending=False, kind="stable").index]


def failing_vs_passing(verdict: dict) -> pd.DataFrame:
    """Normalised log lines present in failing runs and absent from passing ones (logdiff)."""
    return pd.DataFrame(verdict.get("log_diff") or [], columns=["line", "failing_runs", "of"])


# ---- reruns timeline --------------------------------------------------------------------
def _t(s: str) -> datetime | None:
    try:
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return None


def timeline_fig(b: Bundle):
    """One bar per run along wall-clock time: green pass / red fail / grey inconclusive,
    hatched when under load; labels give the run, mode and duration."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    runs = list(b.runs)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.42 * max(1, len(runs))))
    t0 = min((_t(r.started) for r in runs if _t(r.started)), default=None)
    colour = {"pass": "tab:green", "fail": "tab:red", "timeout": "darkred", "error": "tab:gray"}
    x = 0.0
    for i, r in enumerate(runs):
        st = _t(r.started)
        left = (st - t0).total_seconds() if (st and t0) else x
        x = left + r.wall_s + 1
        ax.barh(i, max(r.wall_s, 0.5), left=left, color=colour.get(r.outcome, "tab:gray"),
                hatch="///" if r.mode == "under-load" else ("..." if r.mode in ("fix", "contrast") else None), edgecolor="black", lw=0.5)
        mode = "alone" if r.mode == "isolated" else ("under load" if r.mode == "under-load" else f"ref {r.ref}")
        ax.text(left + max(r.wall_s, 0.5) + 1, i, f"{r.outcome} · {mode} · {r.wall_s:.0f}s", va="center", fontsize=8)
    ax.set_yticks(range(len(runs)), [f"run {r.index:03d}" for r in runs])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first run started")
    ax.set_xlim(0, max(x, 1) * 1.35)
    ax.legend(handles=[Patch(color="tab:green", label="pass"), Patch(color="tab:red", label="fail"),
                       Patch(facecolor="white", edgecolor="black", hatch="///", label="under load")],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(f"{b.case.get('case')}: reruns timeline", fontsize=10)
    fig.tight_layout()
    return fig


# ---- evidence for / against each candidate ----------------------------------------------
def _item_cause(e, chosen_by: dict[str, set]) -> tuple[str | None, str]:
    """(cause this item points to, why) from the raw facts alone."""
    hint = (e.data or {}).get("cause_hint") or {}
    if e.status != "ok":
        return None, "unavailable"
    if e.kind in LOG_KINDS:
        if hint.get("signature"):
            return (hint.get("cause") if hint.get("cause") != "unknown" else None), f"signature {hint['signature']}"
        return None, "no signature matched"
    if e.kind == "static_rules":
        f = (e.data or {}).get("findings") or []
        return ("recipe" if f else None), (", ".join(x["rule"] for x in f) if f else "no rule hit")
    if e.kind == "test_expectation":
        return ("test" if e.data.get("stale") else None), ("asserts a state no ref has" if e.data.get("stale") else "assertions match a ref")
    if e.kind == "harness_code":
        return "harness", "harness values collide"
    if e.kind in ("dns", "network_aliases"):
        other = e.data.get("owners") or e.data.get("holders")
        return ("recipe" if other else None), ("the name resolves to other stacks" if other else "name resolves to own stack")
    if e.kind == "node_clean":
        return (None if e.data.get("clean") else "infra"), ("node left clean" if e.data.get("clean") else "node left dirty")
    return None, e.summary[:60]


def evidence_for_against(b: Bundle, verdict: dict) -> pd.DataFrame:
    """Every evidence item grouped by kind, with one column per candidate cause (the classifier's
    candidates, plus `load` and `flake` which the reruns always speak to). A cell says
    `FOR (cited)` when the candidate cites the item, `for` when the item's own finding points to
    that cause, `against` when it points to another cause or rules this one out (e.g. failing
    alone every time is against load; a clean node is against infrastructure), `-` when silent."""
    b = judged(b)
    cands = [(c["cause"], c.get("sub_cause")) for c in verdict.get("candidates") or []]
    causes = list(dict.fromkeys([c for c, _ in cands] + ["load", "flake"]))
    cited = {c["cause"]: set(c.get("evidence") or []) for c in verdict.get("candidates") or []}
    iso, ld = verdict["runs"]["isolated"], verdict["runs"]["under_load"]
    rows = []
    # the reruns themselves, as the first group
    det = iso["runs"] and iso["failed"] == iso["runs"]
    passes_alone = iso["runs"] and iso["failed"] < iso["runs"]
    row = {"kind": "reruns", "id": "runs:isolated", "finding": f"{iso['failed']}/{iso['runs']} isolated runs failed"}
    for c in causes:
        row[c] = ("against" if det else "for") if c in ("load", "flake") else ("for" if det else ("against" if passes_alone else "-"))
    rows.append(row)
    if ld["runs"]:
        row = {"kind": "reruns", "id": "runs:under-load", "finding": f"{ld['failed']}/{ld['runs']} under-load runs failed"}
        for c in causes:
            row[c] = ("FOR (cited)" if "runs:under-load" in cited.get(c, ()) else ("for" if ld["failed"] else "against")) \
                if c == "load" else "-"
        rows.append(row)
    for e in sorted(b.evidence, key=lambda e: (e.kind, e.id)):
        pointed, why = _item_cause(e, cited)
        row = {"kind": e.kind, "id": e.id, "finding": why if e.kind in LOG_KINDS else e.summary[:90]}
        for c in causes:
            if e.id in cited.get(c, ()):
                row[c] = "FOR (cited)"
            elif e.status != "ok":
                row[c] = "unavailable"
            elif pointed == c:
                row[c] = "for"
            elif pointed is not None and c not in ("flake",):
                row[c] = "against"
            elif e.kind == "node_clean" and c == "infra":
                row[c] = "against"
            else:
                row[c] = "-"
        rows.append(row)
    df = pd.DataFrame(rows, columns=["kind", "id", "finding"] + causes)
    return df.set_index(["kind", "id"])


def style_for_against(df: pd.DataFrame):
    colours = {"FOR (cited)": "background-color:#1a7f37;color:white;font-weight:bold",
               "for": "background-color:#d1f0d9", "against": "background-color:#f8d7da",
               "unavailable": "color:#888;font-style:italic"}
    cols = [c for c in df.columns if c != "finding"]
    return df.style.set_uuid("forag").map(lambda v: colours.get(v, ""), subset=cols)


def verdict_md(verdict: dict) -> str:
    """The verdict as one Markdown block: headline, confidence and how, fix, cited evidence."""
    v = verdict
    colour = {"genuine": "#b42318", "flake": "#b54708"}.get(v["flake_or_genuine"].split("-")[0], "#344054")
    lines = [f"<div style='border-left:6px solid {colour};padding:4px 12px'>",
             f"<h3 style='margin:4px 0'>Verdict: <span style='color:{colour}'>{v['flake_or_genuine']}</span> — "
             f"{v['cause']} / {v['sub_cause'] or '-'} (confidence {v['confidence']['value']})</h3>", "</div>", "",
             f"**{v['recipe']} @ {v['ref']}** · sweep failure `{v['sweep_failure'].get('tier')}`: "
             f"{', '.join(v['sweep_failure'].get('tests', []))} · reproducibility **{v['reproducibility']}**", "",
             f"- confidence: {_md_escape(v['confidence']['how'])}",
             f"- reasoning: {_md_escape(v['cause_reasoning'])}",
             f"- fix approach: {_md_escape(v['fix_approach'])}" + (f" (fix ref `{v['fix_ref']}`)" if v.get("fix_ref") else ""),
             f"- evidence cited ({len(v['evidence_cited'])}): " + ", ".join(f"`{x}`" for x in v["evidence_cited"])]
    return "\n".join(lines)


# ---- asking for more --------------------------------------------------------------------
ASK_ACTIONS = ("isolated-run", "probe", "ref", "harness-defaults")


def ask_more(case_path: str, bundle_dir: str, action: str, *, ref: str | None = None, probe: str | None = None,
             node_host: str | None = None, progress=print):
    """One more piece of evidence in the SAME bundle, then re-classify it:
    `isolated-run` one more run alone; `probe` re-collect the case's probes (all, or those whose
    `kind` is `probe`); `ref` one run at another ref (a contrast run, as `redfix isolate --ref`:
    shown in the timeline and the test table, never counted as an isolated run of the failing ref);
    `harness-defaults` one run with the node's harness settings at cc-ci's defaults (a contrast, as
    `redfix isolate --harness-defaults`).
    Returns (bundle, verdict)."""
    from .bundle import load_bundle
    from .classify import write_verdict
    from .errors import ParamsError
    from .isolate import isolate
    from .pipeline import _collect, contrast_run, harness_defaults_run, plan_probes, session
    from .safety import ref_problem
    if action not in ASK_ACTIONS:
        raise ParamsError([("<notebook parameters>", "ask", f"must be one of {', '.join(ASK_ACTIONS)}, got {action!r}")])
    if not case_path:
        raise ParamsError([("<notebook parameters>", "case", "asking for more needs the case file")])
    if action == "ref" and (not ref or ref_problem(ref)):
        raise ParamsError([("<notebook parameters>", "ask_ref", ref_problem(ref) if ref else "a ref is needed for action 'ref'")])
    if action == "harness-defaults":
        from .params import load_case
        from .pipeline import harness_defaults_problem
        harness_defaults_problem(load_case(case_path), ref, "<notebook parameters>", "ask_ref")
    with session(case_path, bundle_dir, node_host=node_host) as s:
        if action == "isolated-run":
            isolate(s.case, s.bundle, s.node, runs=1, stop_rule="fixed", progress=progress)
        elif action == "ref":          # as cc-ci runs a PR (REF=<ref>): a contrast never promotes
            contrast_run(s, ref, progress=progress)
        elif action == "harness-defaults":
            harness_defaults_run(s, progress=progress)
        else:
            pre, post = plan_probes(s.case, s.bundle)
            pick = [p for p in pre if probe in (None, "", p["kind"])], [p for p in post if probe in (None, "", p["kind"])]
            if not (pick[0] or pick[1]):
                raise ParamsError([(case_path, "probes", f"no probe of kind {probe!r} applies to this case")])
            _collect(s, pick[0], progress, logs=False)
            _collect(s, pick[1], progress, logs=True)
    verdict = write_verdict(bundle_dir)
    return load_bundle(bundle_dir), verdict
