"""Analysis of the raw facts a bundle stores (pure: files on disk in, evidence items out).

Collectors store facts only — log files, recipe files at refs, the test's source, harness values,
DNS answers. Everything that judges them runs here, at classify time, with today's signature
catalogue, static ruleset and expectation checks, so `redfix classify` on an old bundle re-judges
it. Bundles collected before this split stored judged items (signature matches, rule findings,
`stale`): where their raw facts are absent the stored judgement is used and the verdict says so
(`analysis.stored`).
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

from .bundle import Bundle, EvidenceItem

IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$")
QUOTED_RE = re.compile(r"""(['"])((?:(?!\1).){1,200})\1""")


# ---------------------------------------------------------------- logs -> signatures
def _scan(path: Path) -> dict:
    from .signatures import explain_hits, scan_file
    return explain_hits(scan_file(str(path)))


def log_items(b: Bundle) -> list[EvidenceItem]:
    """Every run's harness log and the service logs the harness saved, scanned now."""
    items, seen = [], set()
    for run in b.runs:
        hl = b.path / run.log
        files = [("harness_log", hl)] if hl.is_file() else []
        rd = hl.parent
        files += [("service_logs", p) for p in sorted(rd.glob("services/**/*.log")) if p.is_file()]
        for kind, f in files:
            ex = _scan(f)
            rel = b.rel(f)
            name = "harness" if kind == "harness_log" else f.stem.split(".")[0]
            sub = f.parent.name if kind != "harness_log" else ""
            top = ex["matches"][:5]
            ev_id = f"{kind}:run{run.index:03d}:{(sub + '/') if sub else ''}{name}"
            if ev_id in seen:          # a service's second container in the same phase
                ev_id += "#" + (f.stem.split(".", 1) + [""])[1]
            seen.add(ev_id)
            items.append(EvidenceItem(
                id=ev_id, kind=kind,
                source=rel, status="ok", artifact=rel,
                excerpt="\n".join(f"L{m['line']}: {m['text']}" for m in top),
                summary=(f"run {run.index} ({run.outcome}) {name}: "
                         + (", ".join(sorted({m['signature'] for m in ex['matches']})) or "no signature matched")),
                data={"run": run.index, "outcome": run.outcome, "mode": run.mode,
                      "signatures": sorted({m["signature"] for m in ex["matches"]}),
                      "cause_hint": ex["cause_hint"], "matches": ex["matches"][:20]}))
    return items


# ---------------------------------------------------------------- recipe files -> static rules
def static_item(e: EvidenceItem, prev_files: dict | None) -> EvidenceItem:
    from .rules import RULESET_VERSION, evaluate
    d = e.data
    findings = evaluate(d["files"], tag=d["ref"] if d.get("is_tag") else None,
                        prev_files=prev_files if d.get("label") == "tag" else None,
                        **({"env": d["env"]} if d.get("env") else {}))
    data = {k: v for k, v in d.items() if k != "findings"}
    data.update(ruleset=RULESET_VERSION, findings=[f.to_dict() for f in findings])
    return dataclasses.replace(
        e, data=data,
        summary=f"{d['recipe']}@{d['ref']} ({d['label']}): "
                + (", ".join(f"{f.rule} {f.service}" for f in findings if f.severity != "hint") or "no rule hit"),
        excerpt="\n".join(f"{f.rule} [{f.severity}] {f.service}: {f.message}" for f in findings[:10]))


# ---------------------------------------------------------------- test source + refs -> expectations
def asserted(test_source: str, messages: list[str] = ()) -> dict:
    """What a test asserts, from its source (AST): image refs compared with ==, service names asserted
    absent (`"x" not in ctx.service_names()`) or present, HTTP status codes compared with ==, response
    bodies asserted to contain (or not) a string (`"x" in r.text`), other string values compared
    with ==; and from the failure messages (pytest's `assert a == b` lines, its diff, JUnit text) the
    values the running app actually produced."""
    images, removed, present, statuses, values, body = set(), set(), set(), set(), set(), set()
    try:
        tree = ast.parse(test_source)
    except SyntaxError:
        tree = ast.parse("")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        parts = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            left, right = parts[i], parts[i + 1]
            for a, other in ((left, right), (right, left)):
                if not isinstance(a, ast.Constant):
                    continue
                v = a.value
                if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(v, str):
                    (images if IMAGE_RE.match(v) else values).add(v)
                elif isinstance(op, ast.Eq) and isinstance(v, int) and 100 <= v <= 599 \
                        and "status" in ast.dump(other).lower():
                    statuses.add(v)
                elif a is left and isinstance(v, str) and isinstance(op, (ast.In, ast.NotIn)):
                    where = ast.dump(other).lower()
                    if re.search(r"service|stack|compose", where) and re.fullmatch(r"[a-z0-9_-]+", v):
                        (removed if isinstance(op, ast.NotIn) else present).add(v)
                    elif re.search(r"text|body|content|json|html|output|log", where):
                        body.add(("absent: " if isinstance(op, ast.NotIn) else "") + v)
    observed = set()
    expected = images | removed | present | values | body | {str(x) for x in statuses}
    for m in messages:
        for line in m.splitlines():
            if re.match(r"\s*(E\s+)?assert\b", line) or "AssertionError" in line:
                observed |= {q[1] for q in QUOTED_RE.findall(line)}
                observed |= {t for t in re.findall(r"[A-Za-z0-9][\w./-]*:[\w.-]+", line) if IMAGE_RE.match(t)}
                observed |= set(re.findall(r"\b([1-5]\d\d)\b", line)) if "status" in line.lower() else set()
            elif re.match(r"\s*(E\s+)?\+ \S", line):        # pytest's diff: + the value the app produced
                observed.add(line.split("+ ", 1)[1].strip())
    observed = {o for o in observed if "..." not in o and o not in expected}
    return {"images": sorted(images), "removed_services": sorted(removed), "present_services": sorted(present),
            "status_codes": sorted(statuses), "values": sorted(values), "body": sorted(body),
            "observed": sorted(observed)}


def _compose_facts(files: dict) -> tuple[set, set, str]:
    from .rules import merged_compose
    try:
        comp = merged_compose(files)[0]
    except Exception:  # noqa: BLE001 - an unparsable compose has no services for this check
        comp = {}
    svcs = comp.get("services") or {}
    images = {str(s.get("image")) for s in svcs.values() if isinstance(s, dict) and s.get("image")}
    text = "\n".join(v for k, v in files.items() if k.startswith("compose"))
    return set(svcs), images, text


def check_expectations(want: dict, refs: list[dict]) -> dict:
    """Each expectation against every ref: where an image is used, a service dropped or present.
    `stale` when the test asserts something checkable and NO release tag nor main satisfies any of it
    (an expectation no released ref meets points at the test, not the recipe)."""
    found_img = {i: [] for i in want["images"]}
    dropped = {s: [] for s in want["removed_services"]}
    kept = {s: [] for s in want.get("present_services", [])}
    for r in refs:
        svcs, images, text = _compose_facts(r["files"])
        for i in found_img:
            if i in images or re.search(rf"image:\s*['\"]?{re.escape(i)}['\"]?\s*$", text, re.M):
                found_img[i].append(r["ref"])
        for s in dropped:
            if s not in svcs:
                dropped[s].append(r["ref"])
        for s in kept:
            if s in svcs:
                kept[s].append(r["ref"])
    released = [r["ref"] for r in refs if r["kind"] == "tag"] + ["main"]
    per = {**{f"image {i}": v for i, v in found_img.items()}, **{f"no service {s}": v for s, v in dropped.items()},
           **{f"service {s}": v for s, v in kept.items()}}
    unsatisfied = sorted(k for k, v in per.items() if not any(r in released for r in v))
    stale = bool(per) and len(unsatisfied) == len(per)
    only_in = sorted({r for v in per.values() for r in v} - set(released))
    return {"asserted": want, "refs_checked": [r["ref"] for r in refs], "image_found_at": found_img,
            "service_dropped_at": dropped, "service_present_at": kept, "satisfied_at": per,
            "unsatisfied_everywhere_released": unsatisfied, "stale": stale, "only_in_unreleased": only_in}


def expectation_item(e: EvidenceItem, messages: list[str], ref: str = "") -> EvidenceItem:
    d = e.data
    want = asserted(d["test_source"], messages)
    res = check_expectations(want, d["refs"])
    # the running app: values the failure messages show it produced, and whether the ref under test
    # declares them (then the app does what the recipe says and the test expects something else)
    at_ref = next((r for r in d["refs"] if r["ref"] == ref), None)
    declared = _compose_facts(at_ref["files"])[1] if at_ref else set()
    res["running_app"] = {"observed": want["observed"],
                          "observed_declared_at_ref": sorted(set(want["observed"]) & declared)}
    name = Path(d.get("test", e.source)).name
    sat = sorted({r for v in res["satisfied_at"].values() for r in v})
    summary = (f"{name} asserts images {want['images']}, removed services {want['removed_services']}"
               + (f", services {want['present_services']}" if want["present_services"] else "")
               + (f", status {want['status_codes']}" if want["status_codes"] else "")
               + (f", body {want['body']}" if want["body"] else "") + ": "
               + ("found in NO release tag nor main" if res["stale"] else
                  ("found at " + ", ".join(sat) if sat else "nothing checkable against the refs"))
               + (f"; only in {', '.join(res['only_in_unreleased'])}" if res["only_in_unreleased"] else "")
               + (f"; the app ran {', '.join(res['running_app']['observed_declared_at_ref'])} as the ref declares"
                  if res["running_app"]["observed_declared_at_ref"] else ""))
    data = {k: v for k, v in d.items() if k not in ("test_source", "refs")}
    data.update(res)
    return dataclasses.replace(e, summary=summary, data=data)


# ---------------------------------------------------------------- harness values -> collisions
def harness_item(e: EvidenceItem) -> EvidenceItem:
    """A value the harness computes for this recipe equal to an entry of one of its own tables
    (e.g. a data-warm domain equal to a live-warm provider's domain): two roles, one name."""
    d = e.data
    if "functions" in d:          # discovery form: every naming function vs every table
        # a table entry produced by a function of the table's own module is how the table is built;
        # the same value from another module's function is two roles, one name
        hits = sorted(f"{fn}={val!r} in {tab}[{k!r}]" for fn, val in d["functions"].items()
                      for tab, table in d["tables"].items() for k, v in table.items()
                      if v == val and isinstance(val, str)
                      and (fn.split(".")[0] != tab.split(".")[0]))
        collides = sorted({h.rsplit("[", 1)[1][1:-2] for h in hits})      # the colliding table keys
        summary = (f"{len(d['functions'])} harness naming value(s) for {d['arg']!r} vs {len(d['tables'])} table(s): "
                   + ("; ".join(hits[:4]) if hits else "no value collides with a table entry"))
        first = hits[0] if hits else ""
        data = dict(d, collides_with=collides, collisions=hits,
                    call=first.split("=", 1)[0] if first else "", value=(d["functions"].get(first.split("=", 1)[0]) if first else None),
                    against=first.split(" in ", 1)[1].split("[", 1)[0] if first else "")
        return dataclasses.replace(e, summary=summary, data=data)
    val, other = d["value"], d["against_value"]
    if isinstance(other, dict):
        hits = sorted(k for k, v in other.items() if v == val)
    elif isinstance(other, (list, tuple)):
        hits = [str(i) for i, v in enumerate(other) if v == val]
    else:
        hits = ["<value>"] if other == val else []
    return dataclasses.replace(e, data=dict(d, collides_with=hits), summary=(
        f"{d['call']}({d['arg']!r}) = {val!r}; " + (f"EQUALS {d['against']}[{', '.join(map(repr, hits))}]" if hits
                                                    else f"differs from every value of {d['against']}")))


# ---------------------------------------------------------------- routes asked on a live stack -> hints
WARM_STEP_TIERS = ("promote", "upgrade")


def _answer_class(status) -> str:
    if status is None:
        return "not asked"
    if status == 0:
        return "no answer"
    return {2: "ok", 3: "redirect", 4: "client error", 5: "server error"}.get(int(status) // 100, "other")


def http_route_item(e: EvidenceItem, tier: str) -> EvidenceItem:
    """What the answers of a live stack's routes say, as hints only (never a cause on their own):
    a path the failure names answered 000/5xx on the live stack too (the failure is in the stack's
    state, not only in the run), or answered 2xx directly while the failure says it failed (look in
    front of the app: proxy, routing, names); a URL a service calls answered differently when asked
    as the caller writes the name than by the stack's own name (the name reaches another service)."""
    d = e.data
    answers = d.get("answers") or []
    hints = []
    warm = str(d.get("stack", "")).startswith("warm")
    for a in answers:
        a_cls = _answer_class(a.get("status"))
        vip = a.get("vip")
        if vip and _answer_class(vip.get("status")) == "no answer" and a_cls != "no answer":
            hints.append({"kind": "vip-silent-tasks-answer", "target": f"{a['service']}:{a['port']}{a['path']}",
                          "status": a.get("status"),
                          "note": f"{a['service']}'s virtual IP on {d.get('stack')} does not answer "
                                  f"({'; '.join(vip.get('errors') or [])[:120] or 'no answer'}) while its task address "
                                  f"answers {a.get('status')}: the app is up; the node's service VIP / routing mesh "
                                  "(IPVS) is not"})
        named = [w for w in a.get("why", []) if w.startswith("failure message")]
        if named and a_cls in ("no answer", "server error"):
            hints.append({"kind": "route-fails-live", "target": f"{a['service']}:{a['port']}{a['path']}",
                          "status": a.get("status"),
                          "note": f"the path the failure names answers {a.get('status')} on the live "
                                  f"{'warm ' if warm else ''}stack {d.get('stack')} too"
                                  + (" (corroborates a warm-step failure: the warm stack's state)" if warm and tier in WARM_STEP_TIERS else "")})
        elif named and a_cls == "ok":
            hints.append({"kind": "route-answers-direct", "target": f"{a['service']}:{a['port']}{a['path']}",
                          "status": a.get("status"),
                          "note": f"{a['service']} answers {a['path']} with {a.get('status')} when asked directly on "
                                  f"{d.get('stack')}: what failed sits in front of it (proxy, routing, a name), or is gone"})
    direct = {(a["service"], a["port"], a["path"]): a for a in answers if not a.get("from_service")}
    for a in answers:
        other = direct.get((a["service"], a["port"], a["path"])) if a.get("from_service") else None
        if other and a.get("status") is not None and other.get("status") is not None \
                and _answer_class(a["status"]) != _answer_class(other["status"]):
            hints.append({"kind": "caller-name-differs", "target": f"{a['service']}:{a['port']}{a['path']}",
                          "status": a.get("status"),
                          "note": f"{a['from_service']} asking {a['url']} gets {a['status']}, the stack's own name gets "
                                  f"{other['status']}: the name {a['url'].split('//', 1)[1].split(':', 1)[0]!r} reaches "
                                  "something else from the caller (check network_aliases/dns)"})
    summary = f"{d.get('stack')}: " + "; ".join(
        f"{a['service']}:{a['port']}{a['path']}" + (f" (as {a['from_service']} asks)" if a.get("from_service") else "")
        + f" -> {a.get('status') if a.get('status') is not None else 'not asked'}" for a in answers)
    if hints:
        summary = "; ".join(h["note"] for h in hints[:2]) + " | " + summary
    return dataclasses.replace(e, summary=summary[:700], data=dict(d, hints=hints))


# ---------------------------------------------------------------- the bundle, judged today
def settings_item(e: EvidenceItem) -> EvidenceItem:
    """The node's settings file read as cc-ci's loader reads it (ccci.read_settings): every
    non-default value with the tiers it changes, keys cc-ci refuses, what it ignores."""
    from . import ccci
    r = ccci.read_settings(e.data.get("text") if e.data.get("present") else None)
    parts = [f"{d['table']}.{d['key']} = {json.dumps(d['value'])} (cc-ci default {json.dumps(d['default'])}; "
             f"changes {', '.join(d['tiers'])})" for d in r["non_default"]]
    parts += [d["why"] for d in r["fatal"]]
    where = f"{e.source} ({e.data.get('path_from', '')})"
    summary = (f"node settings {where}: " + "; ".join(parts) if parts else
               f"node settings {where}: every key at cc-ci's default" + ("" if e.data.get("present") else " (no file)"))
    return dataclasses.replace(e, summary=summary[:400], data={**e.data, **r})


def image_tools_item(e: EvidenceItem) -> EvidenceItem:
    """Each program the recipe runs inside an image, as the node answered: present / missing /
    not-a-program (a command the image's own Entrypoint takes as arguments) / unknown (image not on
    the node, no shell to look with)."""
    checks = []
    for c in e.data.get("checks") or []:
        c = dict(c)
        err = str(c.get("error") or "")
        no_shell = "/bin/sh" in err and re.search(r"no such file|not found|executable file", err, re.I)
        if not c.get("image_present"):
            st = "unknown"
        elif c.get("why") == "command" and c.get("image_entrypoint"):
            st = "not-a-program"
        elif c.get("exit_code") == 0:
            st = "present"
        elif no_shell:
            st = "missing" if c["tool"] in ("/bin/sh", "sh") else "unknown"
        elif c.get("exit_code") in (1, 127):
            st = "missing"
        else:
            st = "unknown"
        c["state"] = st
        checks.append(c)
    missing = [c for c in checks if c["state"] == "missing"]
    summary = ("; ".join(f"{c['service']}: {c['tool']} ({c['why']}) is not in {c['image']}" for c in missing)
               if missing else f"{len(checks)} program(s) looked up in the images: none missing")
    return dataclasses.replace(e, summary=summary[:400], data={**e.data, "checks": checks,
                                                               "missing": [c["tool"] for c in missing]})


def failure_messages(b: Bundle) -> list[str]:
    tier = b.case["sweep_failure"].get("tier", "")
    return sorted({t.message for r in b.runs for tr in r.result.tiers if tr.name == tier
                   for t in tr.tests if t.status == "fail" and t.message})


def derive(b: Bundle) -> tuple[list[EvidenceItem], dict]:
    """The bundle's evidence as today's analysis judges it, and where each judgement came from:
    {"rejudged": [kinds judged now from raw facts], "stored": [kinds whose stored judgement was kept]}."""
    rejudged, stored = set(), set()
    logs = log_items(b)
    have_logs = {e.id for e in logs}
    out: list[EvidenceItem] = []
    prev = {e.data.get("recipe"): e.data.get("files") for e in b.evidence
            if e.kind == "static_rules" and e.status == "ok" and e.data.get("label") == "previous-tag"}
    msgs = None
    for e in b.evidence:
        if e.kind in ("harness_log", "service_logs"):
            if e.status == "ok" and e.id not in have_logs:
                out.append(e)           # the log file is gone: keep the stored scan
                stored.add(e.kind)
            elif e.status != "ok":
                out.append(e)
            continue
        if e.status != "ok":
            out.append(e)
            continue
        if e.kind == "static_rules":
            if "files" in e.data:
                out.append(static_item(e, prev.get(e.data.get("recipe"))))
                rejudged.add(e.kind)
            else:
                out.append(e)
                stored.add(e.kind)
        elif e.kind == "test_expectation":
            if "test_source" in e.data:
                msgs = failure_messages(b) if msgs is None else msgs
                out.append(expectation_item(e, msgs, b.case.get("ref", "")))
                rejudged.add(e.kind)
            else:
                out.append(e)
                stored.add(e.kind)
        elif e.kind == "harness_code":
            out.append(harness_item(e))
            rejudged.add(e.kind)
        elif e.kind == "image_tools" and "checks" in e.data:
            out.append(image_tools_item(e))
            rejudged.add(e.kind)
        elif e.kind == "harness_settings" and "present" in e.data:
            out.append(settings_item(e))
            rejudged.add(e.kind)
        elif e.kind == "http_route" and "answers" in e.data:
            out.append(http_route_item(e, b.case["sweep_failure"].get("tier", "")))
            rejudged.add(e.kind)
        else:
            out.append(e)
    for e in logs:
        rejudged.add(e.kind)
    out = logs + out
    return out, {"rejudged": sorted(rejudged), "stored": sorted(stored - rejudged)}
