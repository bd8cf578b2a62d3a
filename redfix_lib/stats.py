"""Statistics for reruns: Wilson intervals and the sequential stop rule.

Pure functions. The stop rule is Wald's SPRT between
  H_det:   the failure is deterministic (fails with p1 = 0.99 per isolated run)
  H_flaky: it is a flake failing at most p0 = 0.5 of isolated runs
with alpha = beta = 0.05. A single isolated pass adds log(0.01/0.5) = -3.9 and
ends the test on 'flaky' at once (one pass means not deterministic); each
failure adds log(0.99/0.5) = +0.683, so 5 consecutive failures cross
log(19) = 2.944: the same 5 runs that rule out a <=50% flake at 95%
(0.5**5 = 0.031 < 0.05; 0.5**4 = 0.0625 is not enough).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
BETA = 0.05
P_DET = 0.99
P_FLAKY = 0.5
UPPER = math.log((1 - BETA) / ALPHA)
LOWER = math.log(BETA / (1 - ALPHA))


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for k successes in n trials."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def consecutive_failures_needed(max_flake_rate: float = P_FLAKY, confidence: float = 0.95) -> int:
    """Smallest n with max_flake_rate**n <= 1 - confidence."""
    return math.ceil(math.log(1 - confidence) / math.log(max_flake_rate) - 1e-12)


@dataclass
class SprtState:
    llr: float
    decision: str       # "deterministic" | "flaky" | "continue"
    n: int
    fails: int


def sprt(outcomes: list[bool]) -> SprtState:
    """outcomes: True = the run failed. Decides as soon as a bound is crossed."""
    llr, fails = 0.0, 0
    up_f = math.log(P_DET / P_FLAKY)
    up_p = math.log((1 - P_DET) / (1 - P_FLAKY))
    for i, failed in enumerate(outcomes, 1):
        llr += up_f if failed else up_p
        fails += failed
        if llr >= UPPER - 1e-9:
            return SprtState(round(llr, 4), "deterministic", i, fails)
        if llr <= LOWER + 1e-9:
            return SprtState(round(llr, 4), "flaky", i, fails)
    return SprtState(round(llr, 4), "continue", len(outcomes), fails)


def stop_decision(outcomes: list[bool], rule: str, min_runs: int, max_runs: int) -> tuple[bool, str]:
    """May the isolation runner stop after these outcomes? Returns (stop, reason)."""
    n = len(outcomes)
    if n >= max_runs:
        return True, f"reached the maximum of {max_runs} runs"
    if n < min_runs:
        return False, f"{n} of at least {min_runs} runs"
    if rule == "fixed":
        return False, f"fixed rule: {n} of {max_runs} runs"
    s = sprt(outcomes)
    if s.decision == "continue":
        return False, f"SPRT undecided after {n} runs (llr {s.llr:+.3f}, bounds {LOWER:+.3f}/{UPPER:+.3f})"
    return True, f"SPRT decided '{s.decision}' at run {s.n} (llr {s.llr:+.3f}); {n} run(s) done (min {min_runs})"
