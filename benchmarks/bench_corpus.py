"""explain-log on the real-failure corpus (benchmarks/corpus/corpus.jsonl): per-class precision /
recall, macro-F1 and the confident-wrong count, overall and per collection batch. Each batch was
collected and labelled before the catalogue in force was scored on it: batch 1 revised v2 into v3;
batch 2 was held out from v3; batch 3 (test code, compose files) was scored on v3 and revised it into
v4; batch 4 was held out from v4 and revised it into v5; batch 5 was held out from v5 (3
confident-wrong) and turned two decisive compose entries into hints (v6); batch 6 was held out from
v6; batch 7 was held out from v6 (1 confident-wrong) and revised it into v7; batch 8 was held out
from v7 and revised it into v8; batch 9 was held out from v8 (2 confident-wrong) and narrowed one
entry (v9); batch 10 was held out from v9 (macro-F1 0.577, accuracy 0.561, 1 confident-wrong) and
revised it into v10; batch 11 was held out from v10 and not revised on; batch 12 was held out from v10
(macro-F1 0.289, accuracy 0.300, 1 confident-wrong) and revised it into v11. A batch a catalogue was revised on scores in-sample under it (README: the batch
table says which figure is held out). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_corpus.py [--catalogue FILE] [--misses] [--json]

Scoring (one excerpt = one explain-log call on its text):
  prediction  = the class when a decisive line decides it; `unknown-from-line` when only hints
                matched (or decisive lines disagree); `none` when nothing matched.
  correct     = label is a class: the prediction is that class;
                label is unknown-from-line: the prediction is unknown-from-line AND one of the
                hints is of the labelled family (a hint about something else does not count).
  confident-wrong = a confident class different from the label (for an excerpt labelled
                unknown-from-line every confident class is confident-wrong: the line cannot
                decide it).
  per class c: precision = correct predictions of c / predictions of c; recall = correct
                predictions of c / excerpts labelled c; macro-F1 = mean F1 over the labels present
                (a class with zero support, `load` today, is left out rather than averaged in as 0;
                a class that is present but never predicted counts with F1 0).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from redfix_lib.signatures import CATALOGUE, explain_text, load_catalogue  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus" / "corpus.jsonl"
LABELS = ("recipe", "test", "harness", "load", "infrastructure", "unknown-from-line")


def load_corpus(path: Path = CORPUS) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def predict(text: str, cat) -> tuple[str, dict]:
    out = explain_text(text, cat)
    v = out["verdict"]
    if v["confidence"] == "decisive":
        return v["class"], out
    return ("unknown-from-line" if v["confidence"] == "hint" else "none"), out


def is_correct(rec: dict, pred: str, out: dict) -> bool:
    if rec["label"] != "unknown-from-line":
        return pred == rec["label"]
    return pred == "unknown-from-line" and any(h["family"] == rec["family"] for h in out["hints"])


def score(records: list[dict], cat) -> dict:
    rows = []
    for r in records:
        pred, out = predict(r["excerpt"], cat)
        rows.append({"id": r["id"], "label": r["label"], "family": r["family"], "pred": pred,
                     "correct": is_correct(r, pred, out),
                     "confident_wrong": pred in LABELS[:-1] and pred != r["label"],
                     "signatures": [m["signature"] for m in out["matches"]][:4], "url": r["url"]})
    per = {}
    present = [c for c in LABELS if any(x["label"] == c for x in rows)]
    for c in LABELS:
        n_pred = sum(x["pred"] == c for x in rows)
        n_lab = sum(x["label"] == c for x in rows)
        tp = sum(x["pred"] == c and x["label"] == c and x["correct"] for x in rows)
        p = tp / n_pred if n_pred else 0.0
        rc = tp / n_lab if n_lab else 0.0
        f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
        per[c] = {"support": n_lab, "predicted": n_pred, "tp": tp, "precision": round(p, 3),
                  "recall": round(rc, 3), "f1": round(f1, 3)}
    macro = sum(per[c]["f1"] for c in present) / len(present) if present else 0.0
    return {"n": len(rows), "per_class": per, "macro_f1": round(macro, 3),
            "accuracy": round(sum(x["correct"] for x in rows) / len(rows), 3) if rows else 0.0,
            "confident_wrong": sum(x["confident_wrong"] for x in rows),
            "no_match": sum(x["pred"] == "none" for x in rows),
            "families": dict(Counter(x["family"] for x in rows)), "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalogue", default=str(CATALOGUE))
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument("--misses", action="store_true", help="list every excerpt scored wrong")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cat = load_catalogue(a.catalogue)
    s = score(load_corpus(Path(a.corpus)), cat)
    if a.json:
        print(json.dumps({k: v for k, v in s.items() if k != "rows"}, indent=2))
        return 0
    print(f"corpus: {s['n']} excerpts from public threads; catalogue v{cat.version} ({len(cat.signatures)} signatures)")
    print(f"{'class':<18}{'support':>8}{'predicted':>10}{'precision':>10}{'recall':>8}{'F1':>7}")
    for c in LABELS:
        x = s["per_class"][c]
        print(f"{c:<18}{x['support']:>8}{x['predicted']:>10}{x['precision']:>10.3f}{x['recall']:>8.3f}{x['f1']:>7.3f}")
    print(f"macro-F1 (labels present): {s['macro_f1']:.3f}   accuracy: {s['accuracy']:.3f}   "
          f"confident-wrong: {s['confident_wrong']}   no signature matched: {s['no_match']}")
    for b in sorted({r.get("batch", 1) for r in load_corpus(Path(a.corpus))}):
        sb = score([r for r in load_corpus(Path(a.corpus)) if r.get("batch", 1) == b], cat)
        print(f"  batch {b}: {sb['n']} excerpts, macro-F1 {sb['macro_f1']:.3f}, accuracy {sb['accuracy']:.3f}, "
              f"confident-wrong {sb['confident_wrong']}, no match {sb['no_match']}")
    if a.misses:
        for x in s["rows"]:
            if not x["correct"]:
                flag = "CONFIDENT-WRONG " if x["confident_wrong"] else ""
                print(f"  {flag}{x['id']} label={x['label']}/{x['family']} pred={x['pred']} "
                      f"sigs={','.join(x['signatures']) or '-'} {x['url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
