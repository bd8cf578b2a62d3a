"""HTTP probe with httpx: status (0 when nothing answers), latency, bounded retries."""
from __future__ import annotations

import time

import httpx

from ..bundle import EvidenceItem


def probe(url: str, tries: int = 3, delay: float = 1.0, timeout: float = 5.0) -> dict:
    attempts = []
    for i in range(max(1, min(tries, 10))):
        t0 = time.monotonic()
        try:
            r = httpx.get(url, timeout=timeout, follow_redirects=False)
            attempts.append({"status": r.status_code, "ms": int((time.monotonic() - t0) * 1000), "error": ""})
            if r.status_code < 500:
                break
        except httpx.HTTPError as e:
            attempts.append({"status": 0, "ms": int((time.monotonic() - t0) * 1000), "error": type(e).__name__})
        if i + 1 < tries:
            time.sleep(delay)
    return {"url": url, "status": attempts[-1]["status"], "attempts": attempts}


def collect(cx, spec) -> list[EvidenceItem]:
    res = probe(spec["url"], int(spec.get("tries", 3)))
    last = res["attempts"][-1]
    return [EvidenceItem(id=f"http:{spec['url']}", kind="http", source=spec["url"], status="ok",
                         summary=f"GET {spec['url']} -> status {res['status']} in {last['ms']} ms"
                                 + (f" ({last['error']})" if last["error"] else "")
                                 + (f"; note: {spec['note']}" if spec.get("note") else ""),
                         data=res)]
