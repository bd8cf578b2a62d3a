"""Reports: pure views of bundles and verdicts for the notebooks, and STATUS.md.

Nothing here touches a node. Every function takes bundles/verdicts already on disk and
returns tables (pandas), figures (matplotlib) or text, so executed notebooks reproduce."""
from __future__ import annotations

import html
import json
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
             f"evidence        {len(v['evidence_cited'])} item(s) cited", f"ruleset         {v['ruleset_version']}"]
    return "\n".join(lines)


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
            "## HOW to cold-verify each classification (EXPECTED output)", ""]
    for v in vs:
        out += [f"- **{v['recipe']}** — {v['reproducibility']} / {v['cause']} ({v['sub_cause'] or '-'}), "
                f"confidence {v['confidence']['value']}"]
        out += ["  " + line for line in cold_verify_md(v).splitlines()]
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


def status_html(md_text: str, figures: list[tuple[str, str]] = ()) -> str:
    """Self-contained HTML: the STATUS text plus embedded PNG figures (base64)."""
    body = "<pre style='white-space:pre-wrap;font-family:monospace'>" + html.escape(md_text) + "</pre>"
    imgs = "".join(f"<h3>{html.escape(t)}</h3><img src='data:image/png;base64,{b64}'/>" for t, b64 in figures)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>redfix STATUS</title></head><body>{body}{imgs}</body></html>"


def fig_png_b64(fig) -> str:
    import base64
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return base64.b64encode(buf.getvalue()).decode()


def durations_fig(bundles: list[Bundle]):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3))
    for i, b in enumerate(bundles):
        ws = [r.wall_s for r in b.runs]
        ax.scatter([i] * len(ws), ws, c=["tab:red" if r.outcome != "pass" else "tab:green" for r in b.runs], s=18)
    ax.set_xticks(range(len(bundles)), [b.case["recipe"] for b in bundles], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("run wall time (s)")
    ax.set_title("run durations (red = failed)", fontsize=9)
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


def write_status(outputs_dir: str | Path, all_dates: bool = False) -> dict:
    """Write STATUS.md and a self-contained STATUS.html for one date folder. Returns paths + counts."""
    from .bundle import atomic_write_text
    d = Path(outputs_dir).resolve()
    vs = load_verdicts(d.parent if all_dates else d, all_dates=all_dates)
    date = d.name
    md = status_md([v for v in vs if v["_date"] == date] if all_dates else vs, date)
    atomic_write_text(d / "STATUS.md", md)
    bundles = [load_bundle(d / v["_bundle"]) for v in vs if (d / v["_bundle"] / "bundle.json").exists()]
    figs = [(f"{b.case['recipe']}: tiers x runs", fig_png_b64(heatmap(b))) for b in bundles]
    if vs:
        figs.append(("verdict counts", fig_png_b64(counts_fig(vs))))
    if bundles:
        figs.append(("run durations", fig_png_b64(durations_fig(bundles))))
    import matplotlib.pyplot as plt
    plt.close("all")
    atomic_write_text(d / "STATUS.html", status_html(md, figs))
    return {"status_md": "STATUS.md", "status_html": "STATUS.html", "cases": len(vs)}
