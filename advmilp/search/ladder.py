"""The radius ladder: a least-distance problem settled from below by asking, at radii r between a proven
floor and an incumbent's distance, whether any point lies within r.

Each rung is a phase search over bounds re-computed for the smaller ball (far fewer unstable units than
at the incumbent's distance, so a proof costs a fraction of the full search's):

- no point within r (the search proves it, or the rung's bounds already leave no LP point): r is the
  new floor, and the next rung is asked;
- a point proven optimal within r: it is the optimum (every point outside r is farther) — the ladder
  ends with that search;
- anything else (out of time, a point not proven optimal): what the search proved bounds the optimum
  within r, hence overall (``min(bound, r)``), and the ladder ends — the radii below an unsettled one
  are easier but raised the floor little when tried (benchmarks/RESULTS.md).

Where the rungs stand is the caller's: `methods.tight` at fixed fractions of the way from the floor to
the incumbent, `methods.universal` by bisection between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from advmilp.search.phase_bb import PhaseSearchResult
from advmilp.solvers.clock import expired
from advmilp.spec.rows import INFEASIBLE, OPTIMAL


@dataclass
class LadderEnd:
    floor: float                            # proven lower bound of the optimum
    settled: PhaseSearchResult | None       # the rung's search that proved the optimum, else None
    point: np.ndarray | None                # the best point a rung found (None if none did)
    searches: list[PhaseSearchResult] = field(default_factory=list)   # every rung's search, in order


def climb_ladder(next_radius: Callable[[float], float | None],
                 rung: Callable[[float, float], PhaseSearchResult | None],
                 floor: float, deadline: float | None, tell: Callable[[str], None] = lambda message: None
                 ) -> LadderEnd:
    """Climb from the proven ``floor``: ``next_radius(floor)`` is the next rung's radius (None: no more
    rungs; a radius at or below the floor is skipped), ``rung(r, floor)`` the search for the least point
    within r over bounds for that ball, given the floor proven so far (None when those bounds already
    leave no LP point: nothing within r).  ``tell`` gets one line per rung."""
    searches: list[PhaseSearchResult] = []
    while not expired(deadline):
        r = next_radius(floor)
        if r is None:
            break
        if r <= max(floor, 0.0):
            continue
        res = rung(r, floor)
        if res is None:
            floor = max(floor, r)
            tell(f"radius {r:.6g}: no point within (its bounds leave no LP point)")
            continue
        searches.append(res)
        if res.status == INFEASIBLE:
            floor = max(floor, r)
            tell(f"radius {r:.6g}: no point within ({res.nodes} nodes)")
            continue
        if res.status == OPTIMAL and res.x is not None:
            tell(f"radius {r:.6g}: {res.objective:.6g}, optimal ({res.nodes} nodes)")
            return LadderEnd(floor, res, res.x, searches)
        floor = max(floor, min(res.bound, r))
        tell(f"radius {r:.6g}: not settled ({res.nodes} nodes), floor {floor:.6g}"
             + (f", a point of {res.objective:.6g}" if res.x is not None else ""))
        return LadderEnd(floor, None, res.x, searches)
    return LadderEnd(floor, None, None, searches)


def fractions(base: float, cap: float, fs) -> Callable[[float], float | None]:
    """Rungs at ``base + f·(cap − base)`` for f in ``fs`` (in order), then none."""
    radii = iter([base + f * (cap - base) for f in fs])
    return lambda floor: next(radii, None)


def bisection(best: float, steps: int, gap_rel: float) -> Callable[[float], float | None]:
    """Rungs halfway between the floor (at least 0) and ``best``, at most ``steps`` of them, until the
    two are within ``gap_rel`` of ``best``."""
    left = steps

    def next_radius(floor: float) -> float | None:
        nonlocal left
        base = max(floor, 0.0)
        if left <= 0 or best - base <= gap_rel * max(best, 1e-9) or not math.isfinite(best):
            return None
        left -= 1
        return base + 0.5 * (best - base)
    return next_radius
