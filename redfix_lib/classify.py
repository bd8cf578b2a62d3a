"""The classifier: a pure function of an evidence bundle -> verdict.json.

No engine, no clock, no randomness: replaying a stored bundle gives a byte-identical
verdict. Reproducibility comes from the runs (SPRT / consecutive failures / Fisher's exact
test isolated vs under load); the cause from independent kinds of evidence (signatures in
failing-only log lines, static rules, test expectations, harness code, network/DNS,
reproduction under load). One kind alone is a hint, not a verdict: the cause is `unknown`
unless the evidence is a proof or corroborated, and never when two strong causes disagree.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from math import comb
from pathlib import Path

from . import __version__
from .bundle import Bundle, atomic_write_text, load_bundle
from . import ccci
from . import contrast as C
from .analyze import derive
from .logdiff import diff as log_diff
from .results import reproduced, reproduction
from .rules import RULES, corroborates
from .rules import RULESET_VERSION as RULES_VERSION
from .signatures import load_catalogue
from .stats import consecutive_failures_needed, decide, wilson
from .versions import versions

CLASSIFIER_VERSION = "classify-3"
N_DET = consecutive_failures_needed()        # 5: rules out a <=50% flake at 95%
CAUSE_THRESHOLD = 0.8
CODE_PROOF_CONFIDENCE = 0.95     # reproducibility of a harness-only case decided from code (no run)

NOTE_PRIORITY = {"harness_code": 0, "test_expectation": 0, "image_probe": 1, "static_rule": 1, "upgrade_diff": 2, "network": 2,
                 "reproduction": 3, "signature": 4}
FIX = {
    "stale-overlay-test": "scope the overlay: assert the migration only when the head IS that migration (the PR it was "
                          "written for), or land the recipe migration; do not weaken the test elsewhere",
    "warm-domain-collision": "harness: collision-free canonical_domain for live-warm providers (warm-canon-<r>), then enroll",
    "cross-stack-alias-collision": RULES["R08"].fix,
}


def _failed_tiers(run) -> list[str]:
    return sorted(t.name for t in run.result.tiers if t.status in ("fail", "timeout"))


def _reproduces(run, tier: str) -> bool:
    return reproduction(run.outcome, run.result, tier) == "fail"


def _conclusive(run, tier: str) -> bool:
    return reproduction(run.outcome, run.result, tier) != "inconclusive"


def fisher_one_sided(a_fail: int, a_n: int, b_fail: int, b_n: int) -> float:
    """P(>= b_fail failures in group b | margins) under H0 'same rate' (hypergeometric)."""
    k, n, N = a_fail + b_fail, b_n, a_n + b_n
    if k == 0:
        return 1.0
    return sum(comb(k, x) * comb(N - k, n - x) for x in range(b_fail, min(k, n) + 1)) / comb(N, n)


DET_KINDS = {"static_rule", "harness_code", "test_expectation", "image_probe"}   # a mechanism in code: same every run
DEPLOY_TIERS = ("install", "upgrade", "promote", "")     # tiers that deploy the recipe's images


def _load_runs(runs, tier: str) -> list:
    """Conclusive under-load runs at the load the reproduction settled on: the highest rung of an
    escalation (lower rungs that passed measured too little load, not the failure)."""
    lr = [r for r in runs if r.mode == "under-load" and _conclusive(r, tier)]
    top = max((int((r.load or {}).get("rung_index", 0)) for r in lr), default=0)
    return [r for r in lr if int((r.load or {}).get("rung_index", 0)) == top]


def escalation(runs, tier: str) -> list[dict]:
    """The load ladder's climb as the runs record it (load.escalate): per rung, its conclusive runs and
    failures, lightest first; [] for bundles without rungs (one fixed level)."""
    lr = [r for r in runs if r.mode == "under-load" and _conclusive(r, tier) and (r.load or {}).get("rung_index")]
    idx = sorted({int(r.load["rung_index"]) for r in lr})
    return [{"rung": next(r.load.get("rung", "") for r in lr if int(r.load["rung_index"]) == i),
             "runs": sum(int(r.load["rung_index"]) == i for r in lr),
             "failed": sum(int(r.load["rung_index"]) == i and _reproduces(r, tier) for r in lr)} for i in idx]


def load_sequence(runs, tier: str) -> list[bool]:
    return [_reproduces(r, tier) for r in _load_runs(runs, tier)]


def deterministic_evidence(b: Bundle) -> bool:
    """A mechanism in the code (rule / harness value / test expectation) explaining the tier, judged now."""
    tier = b.case["sweep_failure"].get("tier", "")
    items, _ = derive(b)
    return _has_det_evidence(_candidates(dataclasses.replace(b, evidence=items), {"value": "unknown"}, tier))


def reproducibility(b: Bundle, det_evidence: bool = False) -> dict:
    """From the runs (and the sweep's own failure, one observation): the posterior over
    deterministic / intermittent / load-only / not-reproduced (stats.decide, the runner's stop rule
    reads the same), with Wilson intervals and Fisher's exact test isolated vs under load."""
    tier = b.case["sweep_failure"].get("tier", "")
    inconclusive = [r.index for r in b.runs if r.mode in ("isolated", "under-load") and not _conclusive(r, tier)]
    iso = [r for r in b.runs if r.mode == "isolated" and _conclusive(r, tier)]
    load = _load_runs(b.runs, tier)
    climb = escalation(b.runs, tier)
    k = sum(_reproduces(r, tier) for r in iso)
    lk = sum(_reproduces(r, tier) for r in load)
    other = sorted({t for r in iso + load if not _reproduces(r, tier) for t in _failed_tiers(r)})
    iso_seq, load_seq = reproduced(b.runs, tier, "isolated"), load_sequence(b.runs, tier)
    value, conf, post = decide(iso_seq, load_seq, sweep_failed=bool(tier), det_evidence=det_evidence)
    out = {"isolated": {"runs": len(iso), "failed": k, "rate": round(k / len(iso), 4) if iso else None,
                        "ci95": list(wilson(k, len(iso)))},
           "under_load": {"runs": len(load), "failed": lk, "rate": round(lk / len(load), 4) if load else None,
                          "ci95": list(wilson(lk, len(load))),
                          "level": (load[0].load if load else {}),
                          **({"escalation": climb} if climb else {})},
           "sweep_failed": bool(tier), "failed_elsewhere": other, "inconclusive_runs": inconclusive,
           "posterior": post, "deterministic_evidence": det_evidence, "consecutive_needed": N_DET,
           "value": value, "confidence": round(conf, 4)}
    obs = (f"the sweep's failure + {k}/{len(iso)} isolated" + (f" + {lk}/{len(load)} under load" if load else "")
           + (" + a deterministic mechanism in the code (x2)" if det_evidence else ""))
    post_s = ", ".join(f"{h} {p:.3f}" for h, p in sorted(post.items(), key=lambda kv: (-kv[1], kv[0])))
    harness_only = ((b.case.get("runs") or {}).get("max") == 0) and not b.runs
    if harness_only and det_evidence:
        # a harness-only case (runs.max 0, e.g. a de-enrolled recipe whose step never runs): the
        # mechanism is in the harness code and state, which answer the same on every run
        out.update(value="deterministic", confidence=CODE_PROOF_CONFIDENCE, decided_from="code",
                   how=("harness-only case (runs.max 0): decided from harness code and state with zero runs; "
                        "the mechanism found there gives the same answer on every run"))
    elif not iso and not load:
        out.update(value="unknown", confidence=0.0,
                   how="no conclusive isolated run" + (f" ({len(inconclusive)} run(s) never reached {tier})" if inconclusive else ""))
    elif value == "intermittent" and 0 < k < len(iso):
        out["how"] = f"{k}/{len(iso)} isolated runs failed (95% CI {out['isolated']['ci95']}); a pass proves it is not deterministic"
    elif value == "load-only":
        p = fisher_one_sided(0, len(iso), lk + 1, len(load) + 1)
        out["how"] = (f"posterior load-only {conf:.4f} from {obs}; Fisher exact one-sided p = {p:.4f} "
                      f"(0/{len(iso)} isolated vs {lk}/{len(load)} under load + the sweep's failure)")
    elif value == "unknown" and iso and k == len(iso):
        out["how"] = (f"{k}/{k} isolated failures, posterior deterministic {post['deterministic']:.4f} < 0.95 "
                      f"({obs}; {post_s})")
    else:
        out["how"] = f"posterior {value} {conf:.4f} from {obs} ({post_s})"
    return out


def rule_explains(finding: dict, tier: str) -> tuple[str, str] | None:
    """(cause, sub_cause) when this rule finding may count as evidence for a failure of `tier`."""
    if not corroborates(finding, tier):
        return None
    r = RULES[finding["rule"]]
    return (r.cause, r.sub_cause)


def contrasts(b: Bundle, tier: str) -> list[dict]:
    """Each contrast ref run (mode 'contrast'): its outcomes on the tier and, when the recipe's files are
    stored, what changed between it and the nearest failing ref above it (the first failing release
    the walk found, else the case's ref) and which rule findings are new there."""
    files = {e.data.get("ref"): e for e in b.evidence if e.kind == "static_rules" and e.status == "ok"
             and e.data.get("recipe") == b.case["recipe"]}
    known = C.outcomes(b, tier)
    tags = C.releases(b)
    w = C.walk(tags, b.case["ref"], known)
    out = []
    for ref, o in known.items():
        other = files.get(ref)
        label = ("fix" if ref == (b.case.get("lab") or {}).get("fix_ref") else
                 "previous-tag" if other and other.data.get("label") == "previous-tag" else
                 "release" if ref in tags else "ref")
        against = w["first_fail"] if (o["verdict"] == "passes" and ref == w["last_pass"]) else b.case["ref"]
        cur = files.get(against) or files.get(b.case["ref"])
        c = {"id": f"runs:contrast@{ref}", "ref": ref, "label": label, **o,
             "against": cur.data.get("ref") if cur else b.case["ref"]}
        if cur and other and "files" in (cur.data or {}) and "files" in (other.data or {}):
            a, o_ = cur.data["files"], other.data["files"]
            c["changed_files"] = sorted(k for k in set(a) | set(o_) if a.get(k) != o_.get(k))
            if c["changed_files"]:
                c["changed_services"] = changed_services(o_, a, other.data.get("env"), cur.data.get("env"))
        if cur and other:
            key = lambda f: (f["rule"], f["service"])  # noqa: E731
            before = {key(f) for f in other.data.get("findings", [])}
            c["new_findings"] = [f for f in cur.data.get("findings", []) if f["severity"] == "error" and key(f) not in before]
        out.append(c)
    d = C.defaults_outcome(b, tier)
    if d:
        out.append(d)
    return out


def changed_services(old: dict, new: dict, old_env=None, new_env=None) -> list[str]:
    """Services whose deployed definition (the default stack, merged and interpolated) differs between
    two refs' recipe files: added, removed or changed (image, command, env, mounts, labels...)."""
    from .rules import merged_compose
    try:
        a = (merged_compose(old, old_env)[0].get("services") or {})
        b = (merged_compose(new, new_env)[0].get("services") or {})
    except Exception:  # noqa: BLE001 - an unloadable compose names no service
        return []

    def norm(svc):       # the release's own version label changes with every release: not a change of the service
        if not isinstance(svc, dict):
            return svc
        svc = json.loads(json.dumps(svc, default=str))
        labels = (svc.get("deploy") or {}).get("labels")
        if isinstance(labels, dict):
            svc["deploy"]["labels"] = {k: v for k, v in labels.items() if not re.match(r"coop-cloud\.[^.]+\.version$", k)}
        elif isinstance(labels, list):
            svc["deploy"]["labels"] = [x for x in labels if not re.match(r"coop-cloud\.[^.=]+\.version=", str(x))]
        return svc
    dump = lambda v: json.dumps(norm(v), sort_keys=True, default=str)  # noqa: E731
    return sorted(n for n in set(a) | set(b) if dump(a.get(n)) != dump(b.get(n)))


def _log_service(ev_id: str, services) -> str | None:
    """The compose service a saved service log belongs to (Swarm names tasks <stack>_<service>)."""
    base = ev_id.rsplit("/", 1)[-1].split("#", 1)[0].split(".", 1)[0]
    return next((s for s in sorted(services, key=len, reverse=True) if base == s or base.endswith("_" + s)), None)


def _signatures_from(cands: dict, services) -> list[tuple[tuple, dict, list[str]]]:
    """(key, candidate, services) for each cause a signature line supports when that line came from the
    own log of one of `services` (a service a diff changed)."""
    out = []
    for key, cand in list(cands.items()):
        if key[0] == "unknown" or "signature" not in cand["kinds"]:
            continue
        hit = sorted({sv for i in cand["ids"] if i.startswith("service_logs:") and (sv := _log_service(i, services))})
        if hit:
            out.append((key, cand, hit))
    return out


def _candidates(b: Bundle, repro: dict, tier: str) -> dict:
    """(cause, sub_cause) -> {kinds, ids, precedence, fix, proof, notes}."""
    cat = load_catalogue()
    sig = {s.id: s for s in cat.signatures}
    cands: dict[tuple, dict] = {}

    def add(cause, sub, kind, ev_id, precedence=50, fix="", proof=False, note="", sig_id=None):
        c = cands.setdefault((cause, sub), {"kinds": set(), "ids": set(), "precedence": 0, "fix": "", "proof": False,
                                             "notes": [], "sigs": set()})
        if sig_id:
            c["sigs"].add(sig_id)
        c["kinds"].add(kind)
        c["ids"].add(ev_id)
        c["precedence"] = max(c["precedence"], precedence)
        # a signature's fix hint is generic (a family); any other kind's fix is specific and wins
        if fix and (not c["fix"] or (c.get("fix_kind") == "signature" and kind != "signature")):
            c["fix"], c["fix_kind"] = fix, kind
        c["proof"] = c["proof"] or proof
        if note and note not in [n for _, n in c["notes"]] and not note.split(": ", 1)[-1].lstrip().startswith(">"):
            c["notes"].append((NOTE_PRIORITY.get(kind, 9), note))

    failing = {r.index for r in b.runs if _reproduces(r, tier)}
    passing = {r.index for r in b.runs if reproduction(r.outcome, r.result, tier) == "pass"}
    # signatures: lines in failing runs' logs whose signature never shows in a passing run
    seen_pass = {s for e in b.evidence if e.kind in ("harness_log", "service_logs") and e.status == "ok"
                 and e.data.get("run") in passing for s in e.data.get("signatures", [])}
    for e in b.evidence:
        if e.kind not in ("harness_log", "service_logs") or e.status != "ok" or e.data.get("run") not in failing:
            continue
        for m in e.data.get("matches", []):
            s = sig.get(m["signature"])
            if s and s.cause != "unknown" and s.id not in seen_pass:
                add(s.cause, s.sub_cause, "signature", e.id, s.precedence, s.fix_hint,
                    note=f"{e.source} L{m['line']}: {m['text'][:160]}", sig_id=s.id)
    for e in b.evidence:
        if e.status != "ok":
            continue
        if e.kind == "static_rules" and e.data.get("label") == "tag":
            for f in e.data.get("findings", []):
                if corroborates(f, tier):
                    r = RULES[f["rule"]]
                    add(r.cause, r.sub_cause, "static_rule", e.id, 50, r.fix,
                        note=f"{f['rule']} {f['service']}: {f['message'][:160]}")
        elif e.kind == "test_expectation" and e.data.get("stale"):
            add("test", "stale-overlay-test", "test_expectation", e.id, 90, FIX["stale-overlay-test"], proof=True,
                note=e.summary[:200])
        elif e.kind == "test_expectation" and e.data.get("unsatisfied_everywhere_released"):
            # part of what the test asserts no released ref meets: a hint at the test, not a proof
            add("test", "expectation-no-release-meets", "test_expectation", e.id, 60,
                "check the test's expectation against the recipe's releases: "
                + ", ".join(e.data["unsatisfied_everywhere_released"][:3]),
                note=f"no release tag nor main meets: {', '.join(e.data['unsatisfied_everywhere_released'][:4])}")
        elif e.kind == "harness_code" and e.data.get("collides_with") and tier in ("promote", ""):
            add("harness", "warm-domain-collision", "harness_code", e.id, 95, FIX["warm-domain-collision"], proof=True,
                note=e.summary[:200])
        elif e.kind == "image_tools" and tier in DEPLOY_TIERS:
            for c in e.data.get("checks") or []:
                if c.get("state") != "missing":
                    continue
                hc = str(c.get("why", "")).startswith("healthcheck")
                sub = "healthcheck-tool-missing" if hc else "entrypoint-missing"
                fix = (f"recipe: {c['service']}'s {c['why']} runs {c['tool']}, which {c['image']} does not have — use a "
                       "program the image ships (e.g. wget, or the app's own health command) or install it in the image")
                note = f"{c['service']}: {c['tool']} ({c['why']}) not found in {c['image']} on the node"
                add("recipe", sub, "image_probe", e.id, 75, fix, note=note)
                # corroborated by what Swarm did with the tasks: killed as unhealthy / could not exec
                want = ("unhealthy",) if hc else ("executable file not found", "no such file", "exit (127)", "exit (126)")
                for t in b.evidence:
                    if t.kind == "task_history" and t.status == "ok" and t.data.get("run") in failing \
                            and any(w in (t.excerpt or "").lower() for w in want):
                        add("recipe", sub, "task_history", t.id, 75, fix, note=f"{t.id}: {(t.excerpt or '')[:160]}")
                        break
        elif e.kind == "dns" and e.data.get("addresses") and not e.data.get("recipe_addresses") \
                and any(not ("_" + b.case["recipe"]) in (s or "") for s in e.data.get("owners", {}).values()):
            add("recipe", "cross-stack-alias-collision", "network", e.id, 60, FIX["cross-stack-alias-collision"],
                note=e.summary[:200])
    # the upgrade run's own contrast: the base release deployed, the head on top of it failed. A failing
    # service's own log line (a signature) whose definition changed between the previous release and the
    # head is corroborated by that diff (the upgrade changed exactly that service).
    if tier == "upgrade" and failing:
        by_label = {e.data.get("label"): e for e in b.evidence if e.kind == "static_rules" and e.status == "ok"
                    and e.data.get("recipe", b.case["recipe"]) == b.case["recipe"] and "files" in e.data}
        base, head = by_label.get("previous-tag"), by_label.get("tag")
        if base and head:
            svcs = changed_services(base.data["files"], head.data["files"], base.data.get("env"), head.data.get("env"))
            for key, cand, hit in _signatures_from(cands, svcs):
                add(key[0], key[1], "upgrade_diff", head.id, cand["precedence"], cand["fix"],
                    note=f"the upgrade {base.data.get('ref')} -> {head.data.get('ref')} changed {', '.join(hit)}, "
                         "whose own log carries the failing line")
    # contrast runs: the same harness at another ref (previous tag, fix branch). A contrast that passes
    # while this ref fails localises the failure to what changed between the two refs.
    for c in contrasts(b, tier):
        if c["verdict"] != "passes" or not failing:
            continue
        if c["label"] == C.HARNESS_DEFAULTS:
            # same ref, same node, one thing changed: the node's settings reduced to cc-ci's defaults —
            # evidence only when the node's file sets something that changes this tier
            dev = C.settings_deviation(b, tier)[1]
            if not dev:
                continue
            what = ", ".join(c["settings"]) or "the node's settings file"
            where = c.get("settings_path") or "the node's settings file"
            fatal = [d for d in dev if "why" in d]
            fix = (f"node configuration: {what} in {where} is a value cc-ci refuses (every run fails at start) — "
                   "correct its type or remove it" if fatal else
                   f"node configuration: {what} in {where} is not cc-ci's default and {tier} fails only with it — "
                   f"restore the default, or, if it is meant, make {tier} pass under it"
                   + (" (e.g. pin the upgrade base past the release it now starts from)" if tier == "upgrade" else ""))
            note = (f"{tier} passes at {c['ref']} with cc-ci's default settings ({c['runs'] - c['failed']}/{c['runs']}) "
                    f"and fails with the node's ({what})")
            add("harness", "node-settings", "contrast", c["id"], 85, fix, note=note)
            if c.get("settings_evidence"):
                add("harness", "node-settings", "harness_settings", c["settings_evidence"], 85, fix, note=note)
            continue
        changed = c.get("changed_files") or []
        explained = False
        # a failing service's own log line (a signature) and that service's definition changed between the
        # passing and the failing release: the contrast corroborates what the line says
        for key, cand, hit in _signatures_from(cands, c.get("changed_services") or []):
            explained = True
            add(key[0], key[1], "contrast", c["id"], cand["precedence"], cand["fix"],
                note=f"{c['ref']} passes {tier}, {c['against']} fails; {', '.join(hit)} (whose own log says so) "
                     f"changed between them")
        for f in c.get("new_findings") or []:
            rc = rule_explains(f, tier)
            if rc:
                explained = True
                add(rc[0], rc[1], "contrast", c["id"], 50, f"recipe: fix {f['title']}",
                    note=f"{c['ref']} passes {tier}, {c['against']} fails; {f['rule']} is new since {c['ref']}")
        if not explained and changed:
            add("recipe", f"change-since-{c['label']}", "contrast", c["id"], 40,
                f"recipe: review what changed between {c['ref']} and {c['against']} ({', '.join(changed[:5])})",
                note=f"{c['ref']} passes {tier}, {c['against']} fails; changed: {', '.join(changed[:8])}")
    if repro["value"] == "load-only":
        subs = [k[1] for k, v in cands.items() if k[0] == "load"]
        add("load", subs[0] if subs else "resource-contention", "reproduction", "runs:under-load", 80,
            "harness stabilisation: readiness gate / longer, smarter retry for the load-sensitive step", proof=True,
            note=repro["how"])
    # a load cause needs a failure that is NOT deterministic
    if repro["value"] in ("deterministic",):
        cands = {k: v for k, v in cands.items() if k[0] != "load"}
    return cands


def _strength(c: dict) -> float:
    if c["proof"]:
        return 0.95
    if len(c["kinds"]) >= 2:
        return 0.9
    return 0.6


ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def grep_literal(line: str, limit: int = 80) -> str:
    """A `grep -F` literal that matches the stored log line as it is: terminal escapes split the
    line (pytest colours it), so the longest escape-free stretch is taken, after the log's own
    timestamp prefix, at most `limit` characters."""
    text = line.split("Z ", 1)[-1] if re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ", line) else line
    parts = [p for p in ANSI_RE.split(text) if p.strip()]
    best = max(parts, key=lambda p: len(p.strip()), default=text)
    return best.strip()[:limit]


def cold_verify(b: Bundle, repro: dict, chosen: tuple | None, cand: dict | None, failing_tests: list[str]) -> list[dict]:
    case = b.case
    src = case.get("source") or f"params/{case['case']}.yaml"
    tier = case["sweep_failure"].get("tier", "")
    steps = []
    if repro["value"] == "deterministic":
        steps.append({"how": f"redfix isolate {src} --runs {N_DET} --fresh --out /tmp/cold-{case['case']}",
                      "expect": f"{N_DET}/{N_DET} runs fail tier {tier}" + (f" ({', '.join(failing_tests)})" if failing_tests else "")})
    elif repro["value"] == "load-only":
        lvl = (repro["under_load"].get("level") or {}).get("cpu_burners", "N")
        steps.append({"how": f"redfix isolate {src} --runs 2 --fresh --out /tmp/cold-{case['case']}",
                      "expect": f"2/2 runs pass (tier {tier} green alone)"})
        steps.append({"how": f"redfix isolate {src} --under-load --load-level {lvl} --runs 2 --out /tmp/cold-{case['case']}",
                      "expect": f"runs fail tier {tier}" + (f" ({', '.join(failing_tests)})" if failing_tests else "")})
    else:
        steps.append({"how": f"redfix isolate {src} --runs 5 --fresh", "expect": f"reproducibility: {repro['value']}"})
    by_id = {e.id: e for e in b.evidence}
    for ev_id in sorted(cand["ids"]) if cand else []:
        e = by_id.get(ev_id)
        if e is None:
            continue
        if e.kind == "static_rules":
            hits = [f for f in e.data["findings"] if f["rule"] in RULES and RULES[f["rule"]].sub_cause == chosen[1]]
            pat = RULES[hits[0]["rule"]].grep if hits else "image:"
            blamed = hits[0].get("file", "compose.yml") if hits else "compose.yml"
            steps.append({"how": f"git -C {shlex.quote(e.source.split('@')[0])} show {shlex.quote(e.data['ref'] + ':' + blamed)} "
                                 f"| grep -nE {shlex.quote(pat)}",
                          "expect": "; ".join(f"{f['rule']}: {f['message'][:100]}" for f in hits)})
        elif e.kind == "test_expectation":
            a = e.data["asserted"]
            pat = "|".join(a["images"] + [f"^  {s}:" for s in a["removed_services"]])
            repo = next((x.source.split("@")[0] for x in b.evidence if x.kind == "static_rules" and "@" in x.source),
                        None) or f"<{case['recipe']} recipe repo>"
            steps.append({"how": f"for r in $(git -C {shlex.quote(repo)} tag) main; do git -C {shlex.quote(repo)} show "
                                 f"$r:compose.yml | grep -cE {shlex.quote(pat)}; done",
                          "expect": f"asserted {a['images']} found in no tag nor main; {a['removed_services']} still present "
                                    f"in all (only in: {', '.join(e.data['only_in_unreleased']) or 'nowhere'})"})
        elif e.kind == "harness_code":
            hdir = os.path.dirname(os.path.dirname(e.source.split(",")[0].strip())) or "<harness parent dir>"
            code = (f"from harness import {e.data['call'].split('.')[0]}, {e.data['against'].split('.')[0]}; "
                    f"print({e.data['call']}({json.dumps(e.data['arg'])}), {e.data['against']})")
            steps.append({"how": f"cd {shlex.quote(hdir)} && python3 -c {shlex.quote(code)}",
                          "expect": f"{e.data['value']} equals {e.data['against']}[{', '.join(map(repr, e.data['collides_with']))}]"})
        elif e.kind == "harness_settings":
            dev = C.settings_deviation(b, tier)[1]
            line = next((ln.strip() for d in dev for ln in (e.data.get("text") or "").splitlines()
                         if re.match(rf"\s*{re.escape(d['key'])}\s*=", ln)), None)
            if line and e.artifact:      # the file as collected, from the bundle folder; on the node: e.source
                steps.append({"how": f"grep -F {shlex.quote(line)} {shlex.quote(e.artifact)}",
                              "expect": f"the line is present (the node's settings file {e.source} as collected"
                                        + "".join(f"; cc-ci's default: {d['key']} = {ccci.toml_value(d['default'])}"
                                                  for d in dev if 'default' in d) + ")"})
            if dev:
                steps.append({"how": f"redfix isolate {src} --harness-defaults --runs 1 --out /tmp/cold-{case['case']}",
                              "expect": f"1/1 contrast run passes tier {tier} with cc-ci's default settings"})
        elif e.kind == "dns":
            img = e.data.get("image") or "busybox"       # older bundles did not record the probe image
            steps.append({"how": f"docker run --rm --network {shlex.quote(e.data['network'])} {shlex.quote(img)} "
                                 f"nslookup {shlex.quote(e.data['name'])}",
                          "expect": f"only other stacks' addresses ({', '.join(f'{k}={v}' for k, v in sorted(e.data['owners'].items()))}), "
                                    f"never {case['recipe']}'s"})
        elif e.kind in ("harness_log", "service_logs"):
            line = next((m["text"] for m in e.data.get("matches", []) if load_catalogue() and
                         any(s.id == m["signature"] and (s.cause, s.sub_cause) == chosen for s in load_catalogue().signatures)), None)
            if line:
                steps.append({"how": f"grep -F {shlex.quote(grep_literal(line))} {shlex.quote(e.artifact or e.source)}",
                              "expect": "the line is present (failing runs only)"})
    # keep it readable: the reruns, then at most one step per kind of evidence
    seen, out = set(), []
    for s in steps:
        key = s["how"] if s["how"].startswith("redfix ") else s["how"].split()[0]
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out[:6]


CORROBORATE = {   # cause -> (probe kinds whose evidence would corroborate it, what each would show)
    "recipe": [("static_rules", "a rule on the recipe files at the tag explaining the tier"),
               ("image_tools", "a program the recipe runs (healthcheck, entrypoint) missing from its image"),
               ("service_logs", "the service's own error line, failing runs only"),
               ("dns", "the name resolving to another stack")],
    "test": [("test_expectation", "what the test asserts, satisfied by no released ref")],
    "harness": [("harness_code", "a harness value colliding with another role's"),
                ("harness_settings", "the node's settings file setting a non-default value for the tier")],
    "warm-machinery": [("canonical_state", "the warm canonical's version/time"), ("harness_code", "harness values")],
    "load": [("load", "failures under load against passes alone")],
    "infrastructure": [("node_clean", "objects other runs left"), ("task_history", "task errors (no suitable node, OOM)")],
}


def _runs_to_decide(repro: dict, det: bool) -> int:
    """More isolated failures needed before the posterior calls the failure deterministic."""
    k = repro["isolated"]["failed"]
    lk = [True] * repro["under_load"]["failed"]
    for extra in range(1, 11):
        if decide([True] * (k + extra), lk, True, det)[0] == "deterministic":
            return extra
    return 10


def explain_unknown(b: Bundle, repro: dict, ranked: list, tier: str, why: str) -> dict:
    """What an undecided verdict still tells: every hint with its evidence, what was ruled out and
    the next probe or contrast that would decide (cheapest first)."""
    case = b.case
    src = case.get("source") or f"params/{case['case']}.yaml"
    cat = {s.id: s for s in load_catalogue().signatures}
    as_kind = {"static_rules": "static_rule", "service_logs": "signature", "dns": "network", "load": "reproduction",
               "image_tools": "image_probe"}

    def deciders(cause, sub, kinds):
        out = []
        for kind, what in CORROBORATE.get(cause, []):
            if as_kind.get(kind, kind) in kinds or (kind == "dns" and "alias" not in (sub or "")):
                continue
            rules = sorted(r.id for r in RULES.values() if r.sub_cause == sub) if kind == "static_rules" else []
            out.append((kind, what + (f" (rule {', '.join(rules)})" if rules else "")))
        return out

    hints = [{"cause": k[0], "sub_cause": k[1], "kinds": sorted(v["kinds"]), "evidence": sorted(v["ids"])[:6],
              "notes": [n for _, n in sorted(v["notes"])][:3],
              "would_decide": sorted({getattr(cat[i], "decided_by", "")[:240] for i in v.get("sigs", ()) if i in cat} - {""})
                              + [f"{kind}: {what}" for kind, what in deciders(k[0], k[1], v["kinds"])][:2]}
             for k, v in ranked[:4]]
    failing = {r.index for r in b.runs if _reproduces(r, tier)}
    seen = set()
    for e in b.evidence:      # lines the catalogue only hints at (a class the context must decide)
        if e.kind in ("harness_log", "service_logs") and e.status == "ok" and e.data.get("run") in failing:
            for m in e.data.get("matches", []):
                sg = cat.get(m["signature"])
                if sg and sg.cause == "unknown" and sg.id not in seen:
                    seen.add(sg.id)
                    hints.append({"cause": "unknown", "sub_cause": sg.sub_cause, "kinds": ["signature"],
                                  "evidence": [e.id], "notes": [f"{e.source} L{m['line']}: {m['text'][:160]}"],
                                  "would_decide": [(getattr(sg, "decided_by", "") or sg.explanation)[:240]]})
    for e in b.evidence:      # routes asked on a live stack: what they answered, a hint never a cause
        if e.kind == "http_route" and e.status == "ok":
            for h in e.data.get("hints", [])[:3]:
                hints.append({"cause": "unknown", "sub_cause": h["kind"], "kinds": ["http_route"], "evidence": [e.id],
                              "notes": [h["note"][:240]], "would_decide": [
                                  "service_logs of that service on the live stack, network_aliases/dns for the name, "
                                  "and a contrast run that passes"]})
    ruled_out = [f"{h}: posterior {p:.4f}" for h, p in sorted(repro["posterior"].items()) if p < 0.05]
    if repro["isolated"]["failed"]:
        ruled_out.append(f"load as the cause: the failure reproduces alone ({repro['isolated']['failed']}/"
                         f"{repro['isolated']['runs']} isolated runs)")
    kinds = {e.kind for e in b.evidence if e.status == "ok"}
    for e in b.evidence:
        if e.status != "ok":
            continue
        if e.kind == "static_rules" and e.data.get("label") == "tag":
            errs = [f for f in e.data.get("findings", []) if rule_explains(f, tier)]
            if not errs:
                ruled_out.append(f"a recipe rule for tier {tier} at {e.data.get('ref')}: "
                                 f"{len(e.data.get('findings', []))} finding(s), none an error explaining {tier}")
        elif e.kind == "test_expectation" and not e.data.get("stale"):
            ruled_out.append(f"a stale test: {e.summary[:200]}")
        elif e.kind == "harness_code" and not e.data.get("collides_with"):
            ruled_out.append(f"a harness naming collision: {e.summary[:200]}")
        elif e.kind == "dns" and e.data.get("recipe_addresses"):
            ruled_out.append(f"a cross-stack alias: {e.summary[:200]}")
        elif e.kind == "node_clean" and e.data.get("clean"):
            ruled_out.append("objects left on the node by other runs: node clean")
        elif e.kind == "image_tools" and e.data.get("checks") and not e.data.get("missing"):
            looked = [c for c in e.data["checks"] if c.get("state") == "present"]
            if looked:
                ruled_out.append("a program missing from the images: " + ", ".join(
                    f"{c['tool']} in {c['image']}" for c in looked[:4]) + " found")
    nxt = []
    iso = repro["isolated"]
    if repro["value"] == "unknown" and iso["runs"] and iso["failed"] == iso["runs"]:
        m = _runs_to_decide(repro, repro.get("deterministic_evidence", False))
        nxt.append({"how": f"redfix isolate {src} --runs {m}", "decides": "reproducibility",
                    "why": f"{m} more isolated failure(s) take the posterior for deterministic to 0.95"})
    elif repro["value"] in ("unknown", "not-reproduced") and not iso["failed"]:
        if not repro["under_load"]["runs"]:
            nxt.append({"how": f"redfix isolate {src} --under-load --runs 3", "decides": "reproducibility",
                        "why": "passes alone: failures under load would make it load-only (contrast: load)"})
        if iso["runs"] < N_DET:
            nxt.append({"how": f"redfix isolate {src} --runs {N_DET - iso['runs']}", "decides": "reproducibility",
                        "why": f"{N_DET} isolated passes rule out a <=50% flake at 95%"})
    for h in hints[:2]:
        for kind, what in deciders(h["cause"], h["sub_cause"], set(h["kinds"])):
            if kind not in kinds and kind != "load":
                nxt.append({"how": f"redfix collect {src}  (probe {kind})", "decides": f"{h['cause']}/{h['sub_cause']}",
                            "why": f"{kind} would show {what}"})
    for e in b.evidence:
        if e.status != "ok" and e.kind not in ("service_logs", "task_history"):
            nxt.append({"how": f"redfix collect {src}  (probe {e.kind} again)", "decides": "evidence",
                        "why": f"{e.id} was {e.summary[:120]}"})
    allc = contrasts(b, tier)
    done = {c["ref"]: c for c in allc if c["label"] != C.HARNESS_DEFAULTS}
    w = C.walk(C.releases(b), case["ref"], C.outcomes(b, tier))
    for c in allc:
        if c["label"] != C.HARNESS_DEFAULTS:
            continue
        if c["verdict"] == "fails too":
            ruled_out.append(f"the node's harness settings ({', '.join(c['settings']) or 'its file'}): {tier} fails with "
                             f"cc-ci's default settings too ({c['failed']}/{c['runs']})")
        elif c["verdict"] == "passes":
            hints.append({"cause": "harness", "sub_cause": "node-settings", "kinds": ["contrast"], "evidence": [c["id"]],
                          "notes": [f"{tier} passes with cc-ci's default settings; the node sets "
                                    f"{', '.join(c['settings']) or 'something else'}"],
                          "would_decide": ["the node's settings file (probe harness_settings) naming the value"]})
    se, dev = C.settings_deviation(b, tier)
    if se is not None and not dev:
        ruled_out.append(f"the node's harness settings: {se.summary[:200]} — nothing in it changes {tier}")
    elif dev and not any(c["label"] == C.HARNESS_DEFAULTS for c in allc) and iso["failed"]:
        nxt.append({"how": f"redfix isolate {src} --harness-defaults --runs 1", "decides": "node configuration vs the rest",
                    "why": f"contrast: the node's settings set {', '.join(x['table'] + '.' + x['key'] for x in dev)}; "
                           f"if {tier} passes with cc-ci's defaults, the node's configuration is the difference"})
    for c in done.values():
        if c["verdict"] == "fails too":
            ruled_out.append(f"a change since {c['ref']}: the {c['label']} ref fails {tier} too ({c['failed']}/{c['runs']})")
        elif c["verdict"] == "passes":
            hints.append({"cause": "recipe", "sub_cause": f"change-since-{c['label']}", "kinds": ["contrast"],
                          "evidence": [c["id"]], "notes": [f"{c['ref']} passes {tier}, {c['against']} fails; changed files: "
                                                           f"{', '.join(c.get('changed_files') or []) or 'not stored'}"],
                          "would_decide": ["static_rules/service_logs naming what in that diff breaks the tier"]})
    if w["state"] == "every-release" and done:
        ruled_out.append(f"a recipe change between releases: {tier} fails at every release tested, back to "
                         f"{w['first_fail']} — the test, the harness or the node changed, or the defect is old")
    elif w["state"] == "began-at":
        ruled_out.append(f"an old defect: {w['last_pass']} passes {tier}; the failure began at {w['first_fail']}")
    cw = C.in_run(b, tier)
    if cw and cw["cold_tiers"] and cw["cold_passed"] == cw["failing_runs"]:
        ruled_out.append(f"the recipe's cold deploy at {case['ref']}: {cw['reading']}")
    if w["next"] and iso["failed"]:
        nxt.append({"how": f"redfix isolate {src} --ref {w['next']} --runs 1",
                    "decides": "recipe change vs environment" if w["step"] == "previous-tag" else "where the failure began",
                    "why": (f"contrast: if {w['next']} passes, the change between {w['next']} and {case['ref']} is the cause "
                            f"(diff: git diff {w['next']} {case['ref']})" if w["step"] == "previous-tag" else
                            f"bisect the releases between {w['last_pass'] or 'the oldest'} and {w['first_fail']}: "
                            "the first failing release's diff holds the change")})
    if (case.get("lab") or {}).get("fix_ref") and case["lab"]["fix_ref"] not in done:
        nxt.append({"how": f"redfix verify {src}", "decides": "the fix", "why": f"contrast: the fix ref "
                    f"{case['lab']['fix_ref']} passing localises the cause to what it changes"})
    if not nxt:
        nxt.append({"how": f"redfix isolate {src} --runs 2 && redfix classify <bundle>", "decides": "reproducibility",
                    "why": "more runs sharpen the posterior; nothing else is left to probe"})
    out, seen_how = [], set()
    for s_ in nxt:
        if s_["how"] not in seen_how:
            seen_how.add(s_["how"])
            out.append(s_)
    return {"why": why, "hints": hints, "ruled_out": ruled_out, "next": out[:6]}


def _has_det_evidence(cands: dict) -> bool:
    return any(v["kinds"] & DET_KINDS for v in cands.values())


def classify(b: Bundle) -> dict:
    """The verdict of a bundle, its evidence judged now (analyze.derive) with today's catalogue,
    ruleset and expectation checks."""
    case = b.case
    tier = case["sweep_failure"].get("tier", "")
    items, provenance = derive(b)
    b = dataclasses.replace(b, evidence=items)
    det = _has_det_evidence(_candidates(b, {"value": "unknown"}, tier))
    repro = reproducibility(b, det_evidence=det)
    cands = _candidates(b, repro, tier)
    ranked = sorted(cands.items(), key=lambda kv: (-_strength(kv[1]), -len(kv[1]["kinds"]), -kv[1]["precedence"], kv[0]))
    chosen, cand, cause_conf, why = None, None, 0.0, ""
    if ranked:
        top_key, top = ranked[0]
        s = _strength(top)
        rivals = [k for k, v in ranked[1:] if k[0] != top_key[0] and _strength(v) >= CAUSE_THRESHOLD]
        if s < CAUSE_THRESHOLD:
            why = (f"weak: only {', '.join(sorted(top['kinds']))} points at {top_key[0]}/{top_key[1]}; "
                   "a single kind of evidence is a hint, not a verdict")
        elif rivals:
            why = f"contradictory: {top_key} and {rivals[0]} are both strongly supported"
        elif repro["value"] in ("not-reproduced", "unknown") and not top["proof"]:
            why = f"{top_key[0]}/{top_key[1]} is suggested but the failure was not reproduced"
        else:
            chosen, cand, cause_conf = top_key, top, s
            why = ("proof: " if top["proof"] else "corroborated: ") + ", ".join(sorted(top["kinds"]))
    else:
        why = "no evidence points at a cause"
    failing_runs = [r for r in b.runs if r.mode != "contrast" and _reproduces(r, tier)]
    failing_tests = sorted({t.name for r in failing_runs for tr in r.result.tiers if tr.name == tier
                            for t in tr.tests if t.status == "fail"})
    messages = sorted({t.message.splitlines()[0][:300] for r in failing_runs for tr in r.result.tiers if tr.name == tier
                       for t in tr.tests if t.status == "fail" and t.message})
    flake = {"deterministic": "genuine", "intermittent": "flake", "load-only": "flake",
             "not-reproduced": "flake?", "unknown": "unknown"}[repro["value"]]
    if chosen and chosen[0] == "harness" and repro["value"] == "deterministic":
        flake = "genuine"
    conf = round(min(repro["confidence"], cause_conf) if chosen else 0.0, 4)
    logs = lambda idx: [b.path / r.log for r in b.runs if r.index in idx]  # noqa: E731
    ld = log_diff(logs({r.index for r in failing_runs}), logs({r.index for r in b.runs if r.outcome == "pass"}), top=10)
    undecided = explain_unknown(b, repro, ranked, tier, why) if not chosen or repro["value"] == "unknown" else None
    verdict = {
        "case": case["case"],
        "recipe": case["recipe"],
        "ref": case["ref"],
        "sweep_failure": case["sweep_failure"],
        "reproducibility": repro["value"],
        "flake_or_genuine": flake,
        "cause": chosen[0] if chosen else "unknown",
        "sub_cause": chosen[1] if chosen else None,
        "confidence": {"value": conf,
                       "how": f"min(reproducibility {repro['confidence']} [{repro['how']}], cause {cause_conf} [{why}])"},
        "cause_reasoning": why,
        "candidates": [{"cause": k[0], "sub_cause": k[1], "strength": _strength(v), "kinds": sorted(v["kinds"]),
                        "evidence": sorted(v["ids"]), "notes": [n for _, n in sorted(v["notes"])][:3]} for k, v in ranked],
        "failing_tier": tier if failing_runs else None,
        "failing_tests": failing_tests,
        "failure_messages": messages[:5],
        "evidence_cited": sorted(cand["ids"]) if cand else [],
        "fix_approach": (cand["fix"] if cand else f"undecided ({why}); next: " + undecided["next"][0]["how"]),
        "fix_ref": (case.get("lab") or {}).get("fix_ref"),
        "cold_verify": cold_verify(b, repro, chosen, cand, failing_tests),
        "runs": {"isolated": repro["isolated"], "under_load": repro["under_load"], "total": len(b.runs),
                 "inconclusive": repro["inconclusive_runs"],
                 "failed_elsewhere": repro["failed_elsewhere"], "posterior": repro["posterior"],
                 "deterministic_evidence": repro["deterministic_evidence"],
                 "consecutive_failures_needed_for_deterministic": N_DET},
        "log_diff": ld,
        "node_clean": next((e.data for e in b.evidence if e.kind == "node_clean" and e.status == "ok"), None),
        "contrasts": contrasts(b, tier),
        "contrast_walk": C.walk(C.releases(b), case["ref"], C.outcomes(b, tier)),
        "cold_vs_warm": C.in_run(b, tier),
        "ruleset_version": f"{CLASSIFIER_VERSION}+signatures-v{load_catalogue().version}+{RULES_VERSION}",
        "redfix_version": __version__,
        "versions": versions(),
        "analysis": provenance,
    }
    if undecided:
        verdict["undecided"] = undecided
    nxt, why_none = C.plan(b, verdict)
    verdict["contrast_plan"] = ({"next": nxt["ref"], "kind": nxt["kind"], "question": nxt["question"],
                                 **({"env": nxt["env"]} if nxt.get("env") else {})} if nxt
                                else {"next": None, "why": why_none})
    return verdict


def verdict_json(b: Bundle) -> str:
    return json.dumps(classify(b), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def changes(old: dict | None, new: dict) -> list[str]:
    """What re-judging changed against the stored verdict (fields a reader acts on)."""
    if not old:
        return ["no stored verdict"]
    out = []
    for k in ("reproducibility", "flake_or_genuine", "cause", "sub_cause"):
        if old.get(k) != new.get(k):
            out.append(f"{k}: {old.get(k)!r} -> {new.get(k)!r}")
    oc, nc = (old.get("confidence") or {}).get("value"), new["confidence"]["value"]
    if oc != nc:
        out.append(f"confidence: {oc} -> {nc}")
    oe, ne = set(old.get("evidence_cited") or []), set(new["evidence_cited"])
    if oe != ne:
        out.append(f"evidence cited: +{sorted(ne - oe)} -{sorted(oe - ne)}")
    ocand = {(c["cause"], c["sub_cause"]) for c in old.get("candidates") or []}
    ncand = {(c["cause"], c["sub_cause"]) for c in new["candidates"]}
    if ocand != ncand:
        out.append(f"candidates: +{sorted(ncand - ocand, key=str)} -{sorted(ocand - ncand, key=str)}")
    ov = old.get("versions") or {"ruleset_version": old.get("ruleset_version"), "redfix": old.get("redfix_version")}
    if ov != new["versions"]:
        out.append(f"versions: {ov} -> {new['versions']}")
    return out


def reclassify(bundle_path) -> tuple[dict, list[str]]:
    """Re-judge a stored bundle with today's analysis; returns (verdict, what changed vs the stored one)."""
    p = Path(bundle_path)
    p = p.parent if p.is_file() else p
    old = json.loads((p / "verdict.json").read_text()) if (p / "verdict.json").exists() else None
    v = write_verdict(p)
    return v, changes(old, v)


def write_verdict(bundle_path) -> dict:
    b = load_bundle(bundle_path)
    text = verdict_json(b)
    atomic_write_text(Path(b.path) / "verdict.json", text)
    return json.loads(text)
