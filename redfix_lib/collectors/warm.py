"""Warm/canonical state: canonical.json version and timestamp, flagged when written today.
cc-ci writes {recipe, version, commit, status, ts} (docs/cc-ci.md fact 11); `timestamp` is read too."""
from __future__ import annotations

import json
import time

from ..bundle import EvidenceItem


def collect(cx, spec) -> list[EvidenceItem]:
    path = spec.get("path") or f"{cx.values['lab_home']}/ci-warm/{cx.case.recipe}/canonical.json"
    today = time.strftime("%Y%m%d", time.gmtime())
    try:
        d = json.loads(cx.node.read_file(path))
    except FileNotFoundError:
        return [EvidenceItem(id=f"canonical_state:{cx.case.recipe}", kind="canonical_state", source=path, status="ok",
                             summary=f"no canonical for {cx.case.recipe} ({path} absent)",
                             data={"present": False, "collected_on": today})]
    ts = str(d.get("ts") or d.get("timestamp") or "")
    written_today = ts.replace("-", "").startswith(today)
    return [EvidenceItem(
        id=f"canonical_state:{cx.case.recipe}", kind="canonical_state", source=path, status="ok",
        summary=f"canonical {d.get('version')} @ {ts}" + (
            (" — WRITTEN TODAY by a green promotion (flake signal)" if d.get("source", "promoted") == "promoted"
             else f" — written today ({d.get('source')})") if written_today else ""),
        data={"present": True, "version": d.get("version"), "timestamp": ts, "written_today": written_today,
              "source": d.get("source", ""), "commit": d.get("commit"), "status": d.get("status"),
              "collected_on": today})]
