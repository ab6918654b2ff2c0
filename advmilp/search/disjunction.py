"""A disjunctive problem — the least optimum over several conjunctive `PhaseProblem`s — by phase search.

The untargeted criterion ("some class other than the label wins") and max-target's misclassification
constraint are disjunctions of one conjunction per winning class (`spec.problems.criteria`).  Their
optimum is the least of the conjunctions' optima, so each is searched by `phase_bb.search_phases`
with the best point so far as incumbent (every candidate is judged by the whole problem's check, so a
point found under one conjunction prunes the others):

1. the root LP of every conjunction (one node each): a bound, often a first point;
2. full searches in order of root bound, skipping those whose root bound cannot beat the incumbent.

The proven bound is the least over the conjunctions of what each search proved (its root bound if
it was skipped or never started), so a proven optimum is the disjunctive problem's optimum.  A point
that reaches the problems' ``stop_at`` settles the whole question (status ``found``), as in one search.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from advmilp.bounds.compute import Bounds
from advmilp.nn.network import Network
from advmilp.search.options import SearchOptions
from advmilp.search.phase_bb import FOUND, UNKNOWN, PhaseSearchResult, search_phases
from advmilp.search.problems import PhaseProblem
from advmilp.spec.rows import INFEASIBLE, LIMIT, OPTIMAL, TIME_LIMIT


def search_disjunction(network: Network, bounds: Bounds, problems: list[PhaseProblem],
                       incumbent: np.ndarray | None = None,
                       options: SearchOptions = SearchOptions(), floor: float = -math.inf) -> PhaseSearchResult:
    """The least optimum over ``problems`` (each judged by its own ``evaluate``, which must accept any
    point of the whole disjunction), within ``options.time_limit`` for all of them.  ``floor``: a proven
    lower bound of every conjunction's optimum (`search_phases`)."""
    t0 = time.perf_counter()
    deadline = t0 + options.time_limit
    best_x, best = incumbent, math.inf
    if incumbent is not None and problems:
        ok, value, x = problems[0].evaluate(incumbent)
        best_x, best = (x, value) if ok else (None, math.inf)
    n = len(problems)
    bound = np.full(n, float(floor))   # what is proven per conjunction so far
    done = np.zeros(n, bool)
    nodes = lps = cuts = 0
    binaries = 0
    statuses: list[str] = []

    def run(i: int, opts: SearchOptions) -> PhaseSearchResult:
        nonlocal best_x, best, nodes, lps, cuts, binaries
        r = search_phases(network, bounds, problems[i], best_x, opts, cutoff=best, floor=floor)
        nodes, lps, cuts = nodes + r.nodes, lps + r.lps, cuts + r.cuts
        binaries = max(binaries, r.binaries)
        if r.x is not None and r.objective < best:
            best_x, best = r.x, r.objective
        bound[i] = max(bound[i], r.bound)
        return r

    def level() -> float:
        return best - options.gap_rel * abs(best) if math.isfinite(best) else math.inf

    # 1. one node per conjunction: its root bound and maybe a point
    for i in range(n):
        if bound.min() >= level():         # the incumbent is within the gap of the floor
            break
        if time.perf_counter() > deadline:
            break
        r = run(i, replace(options, time_limit=deadline - time.perf_counter(), max_nodes=1))
        if r.status in (OPTIMAL, INFEASIBLE, FOUND):
            done[i] = True
            statuses.append(r.status)
        if r.status == FOUND:
            break
    # 2. full searches, most promising first
    for i in np.argsort(bound, kind="stable"):
        if FOUND in statuses:
            break
        if done[i]:
            continue
        if bound[i] >= level():
            done[i] = True
            continue
        left = deadline - time.perf_counter()
        if left <= 0:
            break
        r = run(int(i), replace(options, time_limit=left))
        statuses.append(r.status)
        if r.status in (OPTIMAL, INFEASIBLE, FOUND):
            done[i] = True
        elif r.status in (UNKNOWN, LIMIT):
            done[i] = True       # settled as far as this search goes: its bound stands
    proven = float(max(min(best, bound.min(initial=math.inf)), floor))
    if best_x is not None:
        proven = min(proven, best)
    if FOUND in statuses:
        status = FOUND
    elif proven >= level() and best_x is not None:
        status = OPTIMAL
    elif not done.all() or TIME_LIMIT in statuses:
        status = TIME_LIMIT
    elif UNKNOWN in statuses or LIMIT in statuses:
        status = UNKNOWN if UNKNOWN in statuses else LIMIT
    elif best_x is None:
        status = INFEASIBLE
    elif proven < level():
        status = UNKNOWN
    else:
        status = OPTIMAL
    return PhaseSearchResult(status, best_x, best if best_x is not None else math.nan, proven, nodes, lps,
                             time.perf_counter() - t0, binaries, cuts)
