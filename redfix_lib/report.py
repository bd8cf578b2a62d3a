"""Reports: pure views of bundles and verdicts for the notebooks, and STATUS.md.

Nothing here touches a node. Every function takes bundles/verdicts already on disk and
returns tables (pandas), figures (matplotlib) or text, so executed notebooks reproduce."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd

from .bundle import Bundle, load_bundle

TIER_ORDER = ["install", "upgrade", "backup", "restore", "custom", "promote", "run"]
STATUS_CODE = {"pass": 1, "skip": 0, "unver": -0.5, "fail": -1, "timeout": -1}


# ---- one case ---------------------------------------------------------------------------
def runs_table(b: Bundle) -> pd.DataFrame:
    rows = []
    for r in b.runs:
        failed = [t.name for t in r.result.tiers if t.status in ("fail", "timeout", "unver")]
        rows.append({"run": r.index, "mode": r.mode, "outcome": r.outcome, "exit": r.exit_code,
                     "wall_s": round(r.wall_s, 1), "source": r.result.source, "failed_tiers": ", ".join(failed),
                     "load": (r.load or {}).get("cpu_burners", 0), "log": r.log})
    return pd.DataFrame(rows, columns=["run", "mode", "outcome", "exit", "wall_s", "source", "failed_tiers", "load", "log"])


def tier_matrix(b: Bundle) -> pd.DataFrame:
    tiers = [t for t in TIER_ORDER if any(x.name == t for r in b.runs for x in r.result.tiers)]
    data = {f"{r.index}{'L' if r.mode == 'under-load' else ''}": {t.name: t.status for t in r.result.tiers} for r in b.runs}
    return pd.DataFrame(data, index=tiers).fillna("-")


def heatmap(b: Bundle, ax=None):
    import matplotlib.pyplot as plt
    m = tier_matrix(b)
    vals = m.apply(lambda col: col.map(lambda s: STATUS_CODE.get(s, 0)))
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 0.5 * max(1, len(m.columns)), 0.6 + 0.4 * max(1, len(m.index))))
    else:
        fig = ax.figure
    ax.imshow(vals.values.astype(float) if len(m) else [[0]], cmap="RdYlGn", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(m.columns)), m.columns)
    ax.set_yticks(range(len(m.index)), m.index)
    for i, t in enumerate(m.index):
        for j, c in enumerate(m.columns):
            ax.text(j, i, m.loc[t, c], ha="center", va="center", fontsize=7)
    ax.set_title(f"{b.case['case']}: tiers x runs (L = under load)", fontsize=9)
    fig.tight_layout()
    return fig


def evidence_table(b: Bundle) -> pd.DataFrame:
    rows = [{"id": e.id, "kind": e.kind, "status": e.status, "summary": e.summary[:160]} for e in b.evidence]
    return pd.DataFrame(rows, columns=["id", "kind", "status", "summary"])


def marked_excerpts(b: Bundle, verdict: dict, limit: int = 8) -> str:
    """The cited log lines, each marked with >>> and its file:line."""
    cited = set(verdict.get("evidence_cited") or [])
    out = []
    for e in b.evidence:
        if e.id in cited and e.kind in ("harness_log", "service_logs"):
            for m in e.data.get("matches", [])[:2]:
                out.append(f">>> {e.artifact or e.source}:{m['line']} [{m['signature']}] {m['text'][:200]}")
        elif e.id in cited and e.excerpt:
            out.append(f">>> {e.id}\n" + "\n".join("    " + l for l in e.excerpt.splitlines()[:4]))
        if len(out) >= limit:
            break
    return "\n".join(out) or "(no log line cited)"


def verdict_text(v: dict) -> str:
    lines = [f"case            {v['case']}  ({v['recipe']} @ {v['ref']})",
             f"sweep failure   {v['sweep_failure'].get('tier')}: {', '.join(v['sweep_failure'].get('tests', []))}",
             f"reproducibility {v['reproducibility']}  ->  {v['flake_or_genuine']}",
             f"cause           {v['cause']} / {v['sub_cause']}",
             f"confidence      {v['confidence']['value']}",
             f"  how           {v['confidence']['how']}",
             f"failing         {v['failing_tier']}: {', '.join(v['failing_tests'])}",
             f"fix approach    {v['fix_approach']}" + (f"  (fix ref: {v['fix_ref']})" if v.get("fix_ref") else ""),
             f"contrasts       {contrasts_line(v)}",
             f"evidence        {len(v['evidence_cited'])} item(s) cited", f"ruleset         {v['ruleset_version']}"]
    return "\n".join(lines)


def contrasts_line(v: dict) -> str:
    """Which contrasts a case used and what they showed, or why none ran (one line)."""
    parts = [(f"{c['ref']} with cc-ci's default settings (the node sets {', '.join(c.get('settings') or []) or '?'}) "
              if c.get("label") == "harness-defaults" else f"{c['ref']} ") + f"{c['verdict']} ({c['failed']}/{c['runs']} failed)"
             for c in v.get("contrasts") or []]
    w = v.get("contrast_walk") or {}
    if w.get("state") == "began-at":
        parts.append(f"the failure began at {w['first_fail']} ({w['last_pass']} passes)")
    elif w.get("state") == "every-release" and parts:
        parts.append(f"fails at every release tested, back to {w['first_fail']}")
    cw = v.get("cold_vs_warm")
    if cw:
        parts.append(f"cold vs warm in each run: cold tiers passed in {cw['cold_passed']}/{cw['failing_runs']} "
                     f"run(s) whose {cw['step']} step failed")
    plan = v.get("contrast_plan") or {}
    if plan.get("next"):
        parts.append(f"next: {plan['kind']} {plan['next']}")
    elif plan.get("why") and not v.get("contrasts"):
        parts.append(f"no contrast run: {plan['why']}")
    return "; ".join(parts) or "none"


def cold_verify_md(v: dict) -> str:
    return "\n".join(f"- HOW: `{s['how']}`\n  EXPECT: {s['expect']}" for s in v["cold_verify"])


# ---- many cases -------------------------------------------------------------------------
def load_verdicts(root: str | Path, all_dates: bool = False) -> list[dict]:
    """verdict.json files under outputs/<date>/<case>/ (one date folder, or every date folder)."""
    root = Path(root).resolve()
    dirs = sorted(p for p in root.iterdir() if p.is_dir()) if all_dates else [root]
    out = []
    for d in dirs:
        for vf in sorted(d.glob("*/verdict.json")):
            v = json.loads(vf.read_text())
            v["_date"] = d.name if all_dates else root.name
            v["_bundle"] = str(vf.parent.relative_to(root))
            out.append(v)
    return out


def status_table(verdicts: list[dict]) -> pd.DataFrame:
    rows = []
    for v in verdicts:
        iso, ld = v["runs"]["isolated"], v["runs"]["under_load"]
        iso_txt = f"{iso['failed']}/{iso['runs']} isolated fail" + (f"; {ld['failed']}/{ld['runs']} under load" if ld["runs"] else "")
        rows.append({"recipe": v["recipe"], "sweep failure": f"{v['sweep_failure'].get('tier')}: "
                     + ", ".join(v["sweep_failure"].get("tests", [])),
                     "isolation result": iso_txt, "flake or genuine": f"{v['flake_or_genuine']} ({v['reproducibility']})",
                     "cause": v["cause"], "sub-cause": v["sub_cause"] or "-", "fix approach": v["fix_approach"],
                     "confidence": v["confidence"]["value"]})
    return pd.DataFrame(rows, columns=["recipe", "sweep failure", "isolation result", "flake or genuine", "cause",
                                       "sub-cause", "fix approach", "confidence"])


def tracker(verdicts: list[dict]) -> pd.DataFrame:
    rows = [{"recipe": v["recipe"], "isolation run": f"DONE ({v['runs']['total']} runs)",
             "result": f"{v['failing_tier'] or '-'} {'RED' if v['failing_tier'] else 'GREEN alone'}",
             "root cause": (v["candidates"][0]["notes"][0][:120] if v["candidates"] and v["candidates"][0]["notes"] else v["cause_reasoning"][:120]),
             "classification": f"{v['cause']} / {v['sub_cause'] or '-'}"} for v in verdicts]
    return pd.DataFrame(rows, columns=["recipe", "isolation run", "result", "root cause", "classification"])


def trend(verdicts: list[dict]) -> pd.DataFrame:
    """Per recipe over dates: first/last seen failing, flips between failing and not."""
    if not verdicts:
        return pd.DataFrame(columns=["recipe", "dates", "first_seen_failing", "last_seen_failing", "flip_rate"])
    rows = []
    df = pd.DataFrame([{"recipe": v["recipe"], "date": v["_date"], "failing": v["failing_tier"] is not None}
                       for v in verdicts]).sort_values(["recipe", "date"])
    for r, g in df.groupby("recipe"):
        f = g["failing"].tolist()
        flips = sum(1 for a, b in zip(f, f[1:]) if a != b)
        fd = g[g["failing"]]["date"]
        rows.append({"recipe": r, "dates": len(g), "first_seen_failing": fd.min() if len(fd) else None,
                     "last_seen_failing": fd.max() if len(fd) else None,
                     "flip_rate": round(flips / (len(f) - 1), 3) if len(f) > 1 else 0.0})
    return pd.DataFrame(rows)


def md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    esc = lambda x: str(x).replace("|", "/").replace("\n", " ")  # noqa: E731
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                     + ["| " + " | ".join(esc(x) for x in row) + " |" for row in df.itertuples(index=False, name=None)])


def status_md(verdicts: list[dict], date: str, node_facts: dict | None = None) -> str:
    """STATUS.md with the seed's sections, generated from the verdicts."""
    vs = sorted(verdicts, key=lambda v: v["recipe"])
    n_gen = sum(v["flake_or_genuine"] == "genuine" for v in vs)
    n_flake = sum(v["flake_or_genuine"].startswith("flake") for v in vs)
    unknown = [v["recipe"] for v in vs if v["cause"] == "unknown"]
    clean = [v for v in vs if (v.get("node_clean") or {}).get("clean")]
    from .versions import versions
    ver = versions()
    out = [f"# STATUS — redfix investigation {date}", "",
           "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(ver.items())), "",
           f"{len(vs)} case(s): {n_gen} genuine, {n_flake} flake, {len(unknown)} with cause unknown.", "",
           "## Isolation harness (how each failure is reproduced ALONE)", "",
           "Each case runs its harness alone on the node (busy probes refuse to start while another run is in "
           "flight; an exclusive node lock), repeated until the posterior over deterministic / intermittent / "
           "load-only / not-reproduced reaches 0.95 (the sweep's failure counts as one observation; a mechanism "
           "found in the code counts x2 for deterministic; an isolated pass and failure prove intermittent). A "
           "failure that passes alone is rerun beside controlled load.", "",
           "## Starting state", ""]
    out += [md_table(pd.DataFrame([{"recipe": v["recipe"], "ref": v["ref"], "sweep failure": v["sweep_failure"].get("message", "")}
                                   for v in vs])) if vs else "(no case)", "",
            "## Investigation tracker", "", md_table(tracker(vs)) if vs else "", "",
            "## Results table (recipe → failure → isolation result → classification → fix approach)", "",
            md_table(status_table(vs)) if vs else "", "",
            "## HOW to cold-verify each classification (EXPECTED output)", "",
            "Each HOW is a shell command as printed, run from the case's bundle folder (`<case>/` beside this file); "
            "`grep` lines check the stored logs offline, the others need the node or the lab.", ""]
    for v in vs:
        out += [f"- **{v['recipe']}** — {v['reproducibility']} / {v['cause']} ({v['sub_cause'] or '-'}), "
                f"confidence {v['confidence']['value']}"]
        out += ["  " + line for line in cold_verify_md(v).splitlines()]
    out += ["", "## Contrasts (the same harness with one thing changed)", ""]
    out += [f"- {v['recipe']}: {contrasts_line(v)}" for v in vs]
    out += ["", "## Node state left clean", ""]
    for v in vs:
        nc = v.get("node_clean") or {}
        left = "; ".join(f"{k}: {', '.join(x)}" for k, x in (nc.get("left") or {}).items() if x)
        out.append(f"- {v['recipe']}: " + ("clean" if nc.get("clean") else f"NOT clean — {left or 'not checked'}"))
    gate_ok = vs and not unknown and len(clean) == len(vs)
    out += ["", "## Gate", "",
            f"**{'PASS' if gate_ok else 'NOT PASSED'}** — every case classified with cited evidence"
            + ("" if not unknown else f"; cause unknown for: {', '.join(unknown)}")
            + ("" if len(clean) == len(vs) else "; node not left clean after some case") + ".", ""]
    return "\n".join(out)


VERDICT_CSS = {"genuine": "#f8d7da", "flake": "#fff3cd", "unknown": "#e2e3e5"}
CAUSE_CSS = {"recipe": "#fde2c8", "test": "#dbe9ff", "harness": "#e8dcff", "warm": "#d5f5f0", "load": "#fff3cd",
             "infra": "#e2e3e5", "unknown": "#e2e3e5"}
PAGE_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1400px;padding:0 16px;color:#1f2328}
h1{font-size:1.6em;margin-bottom:4px} h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f6f8fa} code{background:#f6f8fa;padding:1px 4px;border-radius:4px;font-size:12px;white-space:pre-wrap;word-break:break-all}
.v-genuine{background:#f8d7da;font-weight:600} .v-flake{background:#fff3cd;font-weight:600} .v-unknown{background:#e2e3e5;font-weight:600}
.gate-pass{color:#1a7f37} .gate-fail{color:#b42318}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:16px}
figure{margin:0;border:1px solid #d0d7de;border-radius:6px;padding:8px;background:white} figure img{width:100%;height:auto}
figure.wide{max-width:1000px;margin-bottom:16px} figcaption{font-weight:600;margin-bottom:6px}
"""


def md_to_html(md_text: str) -> str:
    """CommonMark + pipe tables (markdown-it-py); raw HTML in the text is escaped, never passed on."""
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(md_text)


def cases_table(verdicts: list[dict]) -> pd.DataFrame:
    """One row per case with links (relative to the date folder) to its notebook and bundle."""
    rows = []
    for v in sorted(verdicts, key=lambda v: v["recipe"]):
        b = v.get("_bundle") or v["case"]
        rows.append({"recipe": v["recipe"], "verdict": v["flake_or_genuine"], "cause": v["cause"],
                     "sub-cause": v["sub_cause"] or "-", "reproducibility": v["reproducibility"],
                     "confidence": v["confidence"]["value"],
                     "notebook": f"<a href='{html.escape(b)}.ipynb'>{html.escape(b)}.ipynb</a>",
                     "bundle": f"<a href='{html.escape(b)}/'>{html.escape(b)}/</a> · "
                               f"<a href='{html.escape(b)}/verdict.json'>verdict.json</a>"})
    return pd.DataFrame(rows, columns=["recipe", "verdict", "cause", "sub-cause", "reproducibility", "confidence",
                                       "notebook", "bundle"])


def style_cases(df: pd.DataFrame):
    """Verdict and cause cells coloured; links kept as HTML (the cells are built by cases_table)."""
    st = df.style.set_uuid("cases").hide(axis="index")
    st = st.map(lambda x: f"background-color:{VERDICT_CSS.get(str(x).split('-')[0], '')};font-weight:600", subset=["verdict"])
    st = st.map(lambda x: f"background-color:{CAUSE_CSS.get(str(x), '')}", subset=["cause"])
    return st.format(precision=2)


def status_html(md_text: str, figures: list[tuple[str, str]] = (), verdicts: list[dict] = (),
                wide: list[tuple[str, str]] = ()) -> str:
    """Self-contained HTML page: the cases table (verdicts coloured, links to each notebook and
    bundle), STATUS.md rendered (tables as tables), the overview plots full width, then one plot
    per case in a grid. Figures are (title, base64 PNG)."""
    body_md = "\n".join(l for l in md_text.splitlines() if not l.startswith("# "))
    title = next((l[2:] for l in md_text.splitlines() if l.startswith("# ")), "redfix STATUS")
    rendered = md_to_html(body_md)
    rendered = re.sub(r"<td>(genuine|flake|unknown)\b", r"<td class='v-\1'>\1", rendered)
    rendered = rendered.replace("<strong>PASS</strong>", "<strong class='gate-pass'>PASS</strong>") \
                       .replace("<strong>NOT PASSED</strong>", "<strong class='gate-fail'>NOT PASSED</strong>")
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if verdicts:
        parts += ["<h2>Cases</h2>", style_cases(cases_table(list(verdicts))).to_html(escape=False)]
    if wide:
        parts += ["<h2>At a glance</h2>"] + [f"<figure class='wide'><figcaption>{html.escape(t)}</figcaption>"
                                             f"<img alt='{html.escape(t)}' src='data:image/png;base64,{b64}'/></figure>"
                                             for t, b64 in wide]
    parts.append(rendered)
    if figures:
        parts += ["<h2>Per case: tiers x runs</h2>", "<div class='grid'>"] + \
                 [f"<figure><figcaption>{html.escape(t)}</figcaption><img alt='{html.escape(t)}' "
                  f"src='data:image/png;base64,{b64}'/></figure>" for t, b64 in figures] + ["</div>"]
    return ("<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head><body>" + "\n".join(parts) + "</body></html>")


def fig_png_b64(fig) -> str:
    import base64
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


def durations_fig(bundles: list[Bundle]):
    """Each run's wall time per case: circle = alone, triangle = under load; red = failed."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for i, b in enumerate(bundles):
        for mode, marker, dx in (("isolated", "o", -0.12), ("under-load", "^", 0.12), ("fix", "s", 0.0)):
            rs = [r for r in b.runs if r.mode == mode]
            if rs:
                ax.scatter([i + dx] * len(rs), [r.wall_s for r in rs], marker=marker, s=40, edgecolors="black", lw=0.5,
                           c=["tab:red" if r.outcome != "pass" else "tab:green" for r in rs])
    ax.set_xticks(range(len(bundles)), [b.case["recipe"] for b in bundles], fontsize=9)
    ax.set_ylabel("run wall time (s)")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("run durations per case (o alone, ^ under load; red = failed, green = passed)", fontsize=10)
    fig.tight_layout()
    return fig


def counts_fig(verdicts: list[dict]):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.6))
    for ax, key in zip(axes, ("flake_or_genuine", "cause")):
        s = pd.Series([v[key] for v in verdicts]).value_counts().sort_index()
        ax.bar(s.index.astype(str), s.values, color="tab:blue")
        ax.set_title(key, fontsize=9)
        ax.tick_params(axis="x", labelsize=7, rotation=30)
    fig.tight_layout()
    return fig


DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def dated_verdicts(day_dir: str | Path) -> list[dict]:
    """Verdicts of this folder and of every sibling date folder (outputs/YYYY-MM-DD), each with
    `_date`: the history a trend is drawn from. `_bundle` is relative to its own date folder."""
    d = Path(day_dir).resolve()
    if not DATE_RE.match(d.name):          # e.g. outputs/example: its own verdicts only
        return load_verdicts(d)
    dirs = sorted({p for p in d.parent.iterdir() if p.is_dir() and DATE_RE.match(p.name)} | {d})
    return [v for x in dirs for v in load_verdicts(x)]


def shared_causes(verdicts: list[dict], bundles: list[Bundle] = ()) -> pd.DataFrame:
    """Which failures share a cause (cause/sub-cause) or a log signature (matched in a failing
    run), one row per shared key, most cases first."""
    rows = {}
    for v in verdicts:
        rows.setdefault(("cause", f"{v['cause']} / {v['sub_cause'] or '-'}"), set()).add(v["recipe"])
        rows.setdefault(("cause class", v["cause"]), set()).add(v["recipe"])
    from .explore import judged
    for b in map(judged, bundles):
        failing = {r.index for r in b.runs if r.outcome != "pass"}
        for e in b.evidence:
            sig = ((e.data or {}).get("cause_hint") or {}).get("signature") if e.kind in ("harness_log", "service_logs") else None
            if sig and (e.data.get("run") in failing):
                rows.setdefault(("signature", sig), set()).add(b.case["recipe"])
    out = [{"shared by": k, "key": key, "cases": len(c), "recipes": ", ".join(sorted(c))} for (k, key), c in rows.items()]
    df = pd.DataFrame(out, columns=["shared by", "key", "cases", "recipes"])
    order = {"cause class": 0, "cause": 1, "signature": 2}
    return df.sort_values(["cases", "shared by", "key"], ascending=[False, True, True],
                          key=lambda c: c.map(order) if c.name == "shared by" else c).reset_index(drop=True)


def fixes_table(verdicts: list[dict], day_dir: str | Path) -> pd.DataFrame:
    """Fix approach per case and its state: `verified` / `not verified` from `redfix verify`'s
    <case>-fix/fix.json in the same date folder, else `pending`."""
    d = Path(day_dir)
    rows = []
    for v in sorted(verdicts, key=lambda v: v["recipe"]):
        fx = d / f"{v.get('_bundle') or v['case']}-fix" / "fix.json"
        row = json.loads(fx.read_text()) if fx.exists() else {}
        rows.append({"recipe": v["recipe"], "cause": f"{v['cause']} / {v['sub_cause'] or '-'}",
                     "fix approach": v["fix_approach"], "fix ref": v.get("fix_ref") or row.get("fix_ref") or "-",
                     "state": row.get("status", "pending"),
                     "fix runs": f"{row.get('outcomes')}" if row else "-"})
    return pd.DataFrame(rows, columns=["recipe", "cause", "fix approach", "fix ref", "state", "fix runs"])


def overview_fig(verdicts: list[dict]):
    """One bar per case: its confidence, coloured by cause, labelled cause/sub-cause (reproducibility)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    vs = sorted(verdicts, key=lambda v: v["recipe"])
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.5 * max(1, len(vs))))
    pal = {"recipe": "tab:orange", "test": "tab:blue", "harness": "tab:purple", "warm": "tab:cyan", "load": "gold",
           "infra": "tab:gray", "unknown": "lightgray"}
    for i, v in enumerate(vs):
        c = v["confidence"]["value"]
        ax.barh(i, c, color=pal.get(v["cause"], "lightgray"), edgecolor="black", lw=0.5,
                hatch="///" if v["flake_or_genuine"].startswith("flake") else None)
        ax.text(c + 0.01, i, f"{v['cause']} / {v['sub_cause'] or '-'}  ({v['reproducibility']})", va="center", fontsize=9)
    ax.set_yticks(range(len(vs)), [v["recipe"] for v in vs])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.9)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("confidence")
    causes = sorted({v["cause"] for v in vs})
    ax.legend(handles=[Patch(color=pal.get(c, "lightgray"), label=c) for c in causes]
              + [Patch(facecolor="white", edgecolor="black", hatch="///", label="flake")],
              loc="lower right", fontsize=8, frameon=False)
    ax.set_title("verdicts: cause and confidence per case (hatched = flake)", fontsize=10)
    fig.tight_layout()
    return fig


def trend_fig(verdicts: list[dict], last: int = 14):
    """Recipes x dates (the `last` dated folders): each cell coloured by that day's cause, blank
    when not investigated that day."""
    import matplotlib.pyplot as plt
    import numpy as np
    dates = sorted({v["_date"] for v in verdicts})[-last:]
    verdicts = [v for v in verdicts if v["_date"] in dates]
    recipes = sorted({v["recipe"] for v in verdicts})
    causes = sorted({v["cause"] for v in verdicts})
    grid = np.full((len(recipes), len(dates)), np.nan)
    fig, ax = plt.subplots(figsize=(2.5 + 1.3 * len(dates), 0.9 + 0.45 * max(1, len(recipes))))
    for v in verdicts:
        i, j = recipes.index(v["recipe"]), dates.index(v["_date"])
        grid[i, j] = causes.index(v["cause"])
        ax.text(j, i, (v["sub_cause"] or v["cause"])[:22], ha="center", va="center", fontsize=7)
    ax.imshow(np.ma.masked_invalid(grid), cmap="Pastel1", vmin=0, vmax=max(8, len(causes)), aspect="auto")
    ax.set_xticks(range(len(dates)), dates, fontsize=8)
    ax.set_yticks(range(len(recipes)), recipes, fontsize=8)
    ax.set_title("trend: cause per recipe per dated run (blank = not investigated that day)", fontsize=10)
    fig.tight_layout()
    return fig


def heatmaps_fig(bundles: list[Bundle]):
    """Every case's tiers x runs heatmap in one figure, two per row, big enough to read."""
    import matplotlib.pyplot as plt
    n = max(1, len(bundles))
    rows = (n + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(11, 2.3 * rows), squeeze=False)
    for ax, b in zip(axes.flat, bundles):
        heatmap(b, ax=ax)
    for ax in list(axes.flat)[len(bundles):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def write_status(outputs_dir: str | Path, all_dates: bool = False) -> dict:
    """Write STATUS.md and a self-contained STATUS.html for one date folder. Returns paths + counts."""
    from .bundle import atomic_write_text
    d = Path(outputs_dir).resolve()
    vs = load_verdicts(d)
    date = d.name
    md = status_md(vs, date)
    atomic_write_text(d / "STATUS.md", md)
    bundles = [load_bundle(d / v["_bundle"]) for v in sorted(vs, key=lambda v: v["recipe"])
               if (d / v["_bundle"] / "bundle.json").exists()]
    figs = [(f"{b.case['recipe']}: tiers x runs", fig_png_b64(heatmap(b))) for b in bundles]
    wide = []
    if vs:
        wide.append(("verdicts: cause and confidence", fig_png_b64(overview_fig(vs))))
    if bundles:
        wide.append(("run durations", fig_png_b64(durations_fig(bundles))))
    history = dated_verdicts(d) if all_dates else []
    if len({v["_date"] for v in history}) > 1:
        wide.append(("trend across dates", fig_png_b64(trend_fig(history))))
    import matplotlib.pyplot as plt
    plt.close("all")
    atomic_write_text(d / "STATUS.html", status_html(md, figs, verdicts=vs, wide=wide))
    return {"status_md": "STATUS.md", "status_html": "STATUS.html", "cases": len(vs)}
