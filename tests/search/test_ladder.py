"""The radius ladder's bookkeeping (`search.ladder`), on scripted rungs: what each outcome does to the floor."""

import math

import numpy as np

from advmilp.search.ladder import bisection, climb_ladder, fractions
from advmilp.search.phase_bb import PhaseSearchResult
from advmilp.spec.rows import INFEASIBLE, OPTIMAL, TIME_LIMIT


def _result(status, x=None, objective=math.nan, bound=0.0, nodes=1):
    return PhaseSearchResult(status, x, objective, bound, nodes, nodes, 0.0, 0)


def _scripted(outcomes):
    """A rung that answers from ``outcomes`` (radius → result or None) and records what it was asked."""
    asked = []

    def rung(r, floor):
        asked.append((round(r, 9), floor))
        return outcomes(r)
    return rung, asked


def test_empty_rungs_raise_the_floor_and_a_rung_optimal_within_settles():
    point = np.array([0.5])
    rung, asked = _scripted(lambda r: _result(INFEASIBLE) if r < 6 else None if r < 7
                            else _result(OPTIMAL, point, 7.5, 7.5))
    end = climb_ladder(fractions(2.0, 10.0, (0.25, 0.5, 0.75, 0.9)), rung, 2.0, None)
    # rungs at 4 (no point), 6 (its bounds leave no LP point), 8 (optimal 7.5): the floor passed on is
    # the one proven so far, and the search that proved the optimum is returned
    assert asked == [(4.0, 2.0), (6.0, 4.0), (8.0, 6.0)]
    assert end.floor == 6.0 and end.settled is not None and end.settled.objective == 7.5
    assert end.point is point and len(end.searches) == 2


def test_an_unsettled_rung_ends_the_ladder_with_what_it_proved_capped_at_its_radius():
    rung, asked = _scripted(lambda r: _result(TIME_LIMIT, np.array([1.0]), r - 0.1, bound=r + 5))
    end = climb_ladder(fractions(0.0, 8.0, (0.5, 0.75)), rung, 1.0, None)
    assert asked == [(4.0, 1.0)]                 # the rung at 6 is never asked
    assert end.floor == 4.0                      # min(bound 9, radius 4): nothing proven beyond the radius
    assert end.settled is None and end.point is not None

    rung, _ = _scripted(lambda r: _result(TIME_LIMIT, bound=2.5))
    assert climb_ladder(fractions(0.0, 8.0, (0.5,)), rung, 1.0, None).floor == 2.5


def test_radii_at_or_below_the_floor_are_skipped():
    rung, asked = _scripted(lambda r: _result(INFEASIBLE))
    end = climb_ladder(fractions(0.0, 10.0, (0.1, 0.2, 0.5)), rung, 3.0, None)
    assert asked == [(5.0, 3.0)] and end.floor == 5.0


def test_bisection_halves_towards_the_point_and_stops_within_the_gap():
    rung, asked = _scripted(lambda r: _result(INFEASIBLE))
    end = climb_ladder(bisection(8.0, steps=3, gap_rel=1e-4), rung, -math.inf, None)
    assert [r for r, _ in asked] == [4.0, 6.0, 7.0]        # from 0 (a floor below 0 counts as 0)
    assert end.floor == 7.0
    rung, asked = _scripted(lambda r: _result(INFEASIBLE))
    climb_ladder(bisection(8.0, steps=100, gap_rel=0.25), rung, 0.0, None)
    assert [r for r, _ in asked] == [4.0, 6.0]              # 8 - 6 = 2 ≤ 0.25 × 8: stop
