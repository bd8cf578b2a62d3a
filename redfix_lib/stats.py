"""Statistics for reruns: Wilson intervals and the sequential stop rule.

Pure functions. The stop rule is Wald's SPRT between
  H_det:   the failure is deterministic (fails with p1 = 0.99 per isolated run)
  H_flaky: it is a flake failing at most p0 = 0.5 of isolated runs
with alpha = beta = 0.05. A single isolated pass adds log(0.01/0.5) = -3.9 and
ends the test on 'flaky' at once (one pass means not deterministic); each
failure adds log(0.99/0.5) = +0.683, so 5 consecutive failures cross
log(19) = 2.944: the same 5 runs that rule out a <=50% flake at 95%
(0.5**5 = 0.031 < 0.05; 0.5**4 = 0.0625 is not enough).

The pipeline's stop rule and the verdict read `decide`: a posterior over deterministic /
intermittent / load-only / not-reproduced in which the sweep's own failure is one observation and
a deterministic mechanism found in the code (a rule, a harness value, a test expectation) is a
Bayes factor of 2 for deterministic — 4 isolated failures decide without it, 3 with it; a passing
sequence after a sweep failure needs 5 passes (or a load reproduction) before it is called anything.
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


# ---- the posterior over what the failure is (the reruns' stop rule and the verdict read the same) ----
# hypothesis -> (P(fail) per isolated run, P(fail) per run under load / in the sweep)
HYPOTHESES = {"deterministic": (P_DET, P_DET), "intermittent": (P_FLAKY, P_FLAKY),
              "load-only": (1 - P_DET, P_DET), "not-reproduced": (1 - P_DET, 1 - P_DET)}
# the sweep's failure is one observation: near certain if deterministic or load-only (the sweep runs
# recipes side by side), a coin if a flake, and for a one-off outside cause just as likely
SWEEP_LIKELIHOOD = {"deterministic": P_DET, "intermittent": P_FLAKY, "load-only": P_DET, "not-reproduced": 0.5}
# equal prior per question: deterministic, a flake, or quiet alone (load-only and not-reproduced share)
PRIOR = {"deterministic": 1 / 3, "intermittent": 1 / 3, "load-only": 1 / 6, "not-reproduced": 1 / 6}
DECIDE = 1 - ALPHA          # 0.95
DET_EVIDENCE_BF = 2.0       # a deterministic mechanism found in the code (rule / harness / test expectation)


def posterior(iso: list[bool], load: list[bool] = (), sweep_failed: bool = True,
              det_evidence: bool = False) -> dict[str, float]:
    """P(hypothesis | isolated outcomes, under-load outcomes, the sweep's failure, evidence), uniform prior.
    Outcomes: True = the run reproduced the failure."""
    like = {}
    for h, (pi, pl) in HYPOTHESES.items():
        v = PRIOR[h] * (SWEEP_LIKELIHOOD[h] if sweep_failed else 1.0)
        for f in iso:
            v *= pi if f else 1 - pi
        for f in load:
            v *= pl if f else 1 - pl
        if h == "deterministic" and det_evidence:
            v *= DET_EVIDENCE_BF
        like[h] = v
    tot = sum(like.values()) or 1.0
    return {h: round(v / tot, 4) for h, v in like.items()}


def decide(iso: list[bool], load: list[bool] = (), sweep_failed: bool = True, det_evidence: bool = False) -> tuple[str, float, dict]:
    """(reproducibility, confidence, posterior). An isolated pass and an isolated failure prove
    `intermittent`; otherwise the hypothesis whose posterior reaches 0.95, else `unknown`.
    `load-only` needs a failure under load; `deterministic` needs isolated failures only."""
    post = posterior(iso, load, sweep_failed, det_evidence)
    if any(iso) and not all(iso):
        return "intermittent", 1.0, post
    score = dict(post)
    if not any(load):        # without a failure under load, 'passes alone' is one question: not reproduced
        score["not-reproduced"] = round(post["not-reproduced"] + post["load-only"], 4)
        score.pop("load-only")
    best = max(score, key=lambda h: (score[h], h))
    ok = score[best] >= DECIDE - 1e-9
    if best == "deterministic" and (not iso or not all(iso)):
        ok = False
    if best == "not-reproduced" and not any(load) and len(iso) + len(load) < consecutive_failures_needed():
        ok = False           # a <=50% flake passes n times with p 0.5^n: 5 passes are needed for 95%
    return (best if ok else "unknown"), score[best], post


def sequential_stop(iso: list[bool], load: list[bool], sweep_failed: bool, det_evidence: bool,
                    min_runs: int, max_runs: int, load_planned: bool = False) -> tuple[bool, str]:
    """The isolated runner's stop rule. Stops when the posterior decides; when the runs pass alone and
    a load reproduction follows, after 2 passes (the load runs and the posterior decide then)."""
    n = len(iso)
    if n >= max_runs:
        return True, f"reached the maximum of {max_runs} runs"
    if n < min_runs:
        return False, f"{n} of at least {min_runs} runs"
    value, conf, post = decide(iso, load, sweep_failed, det_evidence)
    if value in ("deterministic", "intermittent", "not-reproduced", "load-only"):
        return True, f"posterior decided '{value}' ({conf:.3f}) after {n} isolated run(s)"
    if load_planned and not any(iso) and n >= 2:
        return True, (f"{n} isolated passes; the load reproduction decides next "
                      f"(P(intermittent) {post['intermittent']:.3f})")
    return False, (f"posterior undecided after {n} run(s): "
                   + ", ".join(f"{h} {p:.3f}" for h, p in sorted(post.items(), key=lambda kv: -kv[1])))
