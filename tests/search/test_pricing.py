"""Pixel columns priced in on demand (`search.pricing`): HiGHS' dual-ray orientation, the seed by hand, and
the priced node LP equal to the full one — status and optimum — at random nodes, caps and cuts."""

import numpy as np
import pytest

from advmilp.bounds.compute import interval_bounds
from advmilp.nn.activations import ACTIVE, FREE, INACTIVE
from advmilp.search.phase_bb import PhaseLP
from advmilp.search.pricing import PixelPricing, certificate_gap
from advmilp.solvers.highs import HighsLP
from advmilp.spec.problems import ProblemSpec, targeted_criterion

from tests.nets import random_net


def test_highs_dual_ray_certifies_in_the_orientation_pricing_reads():
    """x0 + x1 ≥ 3 with x ∈ [0, 1]²: HiGHS' ray y has max (Aᵀy)·x over the box below the least y·(row activity)
    the row bounds allow — the orientation in which a left-out column with (Aᵀy)_j > 0 can break it."""
    lp = HighsLP()
    lp.add_cols(np.zeros(2), np.ones(2), np.array([1.0, 2.0]))
    lp.add_rows(np.array([3.0, -np.inf]), np.array([np.inf, 0.2]), np.array([0, 2]), np.array([0, 1, 0, 1]),
                np.array([1.0, 1.0, 1.0, -1.0]))
    assert lp.run()[0] == "infeasible"
    has, ray = lp.dual_ray()
    assert has
    gap, scale = certificate_gap(lp, ray)
    assert gap > 0 and scale > 0
    assert gap == pytest.approx(ray[0] * 3.0 - ray[0] * 2.0)        # least y·row = 3y₀; max = (y₀ + y₀)·1
    # a third column of the same bounds and a coefficient 1 in the row would break it (the LP is then feasible)
    lp.add_cols(np.zeros(1), np.ones(1), np.zeros(1))
    lp.set_coeff(0, 2, 1.0)
    assert lp.run()[0] == "optimal"


def test_seed_is_each_rows_knapsack_support_in_both_directions():
    # one row, coefficients (3, −1, 2, .5), rooms (1, 1, .5, 1), budget 1.2: upwards the columns 0 (room 1) and
    # 2 (the budget is not spent yet: 1 < 1.2), not 3 (1.5 ≥ 1.2); downwards column 1 alone
    p = PixelPricing(4, np.array([1.0, 1.0, 0.5, 1.0]), np.ones(4))
    lo, hi = np.array([-np.inf]), np.array([1.0])
    out = p.withhold(lo, hi, np.array([0], np.int32), np.array([0, 1, 2, 3, 4], np.int32),
                     np.array([3.0, -1.0, 2.0, 0.5, -1.0]), budget=1.2)
    assert p.active.tolist() == [True, True, True, False]
    assert p.rows == [0] and p.A.tolist() == [[3.0, -1.0, 2.0, 0.5]]
    # HiGHS gets the seed's coefficients and those of the other columns (4: not a pixel column)
    assert out[3].tolist() == [0, 1, 2, 4] and out[4].tolist() == [3.0, -1.0, 2.0, -1.0]
    # a kept row keeps every coefficient
    q = PixelPricing(4, np.ones(4), np.ones(4), keep_rows={0})
    assert q.withhold(lo, hi, np.array([0], np.int32), np.arange(4, dtype=np.int32), np.ones(4),
                      budget=0.5)[3].tolist() == [0, 1, 2, 3]


def _node_lps(seed: int):
    net = random_net([60, 10, 8, 4], seed=seed, scale=2.0)
    rng = np.random.default_rng(seed)
    x_bar = rng.random(60)
    label = int(net.predict(x_bar))
    target = (label + 1) % 4
    spec = ProblemSpec("targeted", target=target)
    G, h = targeted_criterion(spec, target, net.n_outputs)
    lo, up = np.zeros(60), np.ones(60)
    # built for a cap of 0.3 (the seed: each row's knapsack support for 0.3), then solved under caps up to 3
    make = lambda price: PhaseLP(net, interval_bounds(net), x_bar, lo, up, G, h + spec.margin, 0.3,  # noqa: E731
                                 price_pixels=price)
    return make(True), make(False), rng


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_priced_lp_equals_the_full_lp_at_random_nodes(seed):
    priced, full, rng = _node_lps(seed)
    assert priced.pricing is not None and full.pricing is None
    assert priced.pricing.active.sum() < len(priced.pricing.active)       # some columns are left out
    assert priced.lp.n_nonzeros < full.lp.n_nonzeros
    free = priced.root_phases()
    seen = {"optimal": 0, "infeasible": 0}
    for k in range(150):
        ph = free.copy()
        b = np.flatnonzero(priced.branchable)
        ph[b] = rng.choice([FREE, ACTIVE, INACTIVE], size=len(b), p=[0.5, 0.25, 0.25])
        cap = float(rng.choice([0.3, 1.0, 3.0]))
        for lp in (priced, full):
            lp.set_cap(cap)
            lp.set_phases(ph)
        (s1, v1, c1), (s2, v2, _) = priced.solve(30.0), full.solve(30.0)
        assert s1 == s2, k
        seen[s1] = seen.get(s1, 0) + 1
        if s1 == "optimal":
            assert v1 == pytest.approx(v2, rel=1e-6, abs=1e-7)
            assert v1 <= v2 + 1e-7                    # the priced value is a bound on the full LP's
            x = priced.point(c1, np.zeros(60), np.ones(60))
            assert np.abs(x - priced.x_bar).sum() <= cap + 1e-6
    assert seen["optimal"] >= 10 and seen["infeasible"] >= 10
    assert priced.pricing.priced > 0                  # columns did enter
    assert priced.pricing.kept_infeasible > 0         # and some infeasible LPs were settled without them


def test_priced_lp_with_cuts_equals_the_full_lp():
    """Ideal cuts on first-layer units hold pixel coefficients: withheld for the left-out columns, loaded
    when they enter; the LPs stay equal."""
    priced, full, rng = _node_lps(3)
    for lp in (priced, full):
        lp.set_cap(3.0)
        lp.set_phases(lp.root_phases())
    for _ in range(3):
        (s1, v1, c1), (s2, v2, c2) = priced.solve(30.0), full.solve(30.0)
        assert s1 == s2 == "optimal" and v1 == pytest.approx(v2, rel=1e-6, abs=1e-7)
        free = priced.root_phases() == FREE
        n1, n2 = priced.add_cuts(c1, free), full.add_cuts(c2, free)
        if not (n1 and n2):
            break
    assert priced.n_cuts > 0 and priced.pricing.A.shape[0] == len(priced.pricing.rows)
    for _ in range(60):
        ph = priced.root_phases()
        b = np.flatnonzero(priced.branchable)
        ph[b] = rng.choice([FREE, ACTIVE, INACTIVE], size=len(b), p=[0.6, 0.2, 0.2])
        for lp in (priced, full):
            lp.set_phases(ph)
        (s1, v1, _), (s2, v2, _) = priced.solve(30.0), full.solve(30.0)
        assert s1 == s2
        if s1 == "optimal":
            assert v1 == pytest.approx(v2, rel=1e-6, abs=1e-7)


def test_pinned_pixels_never_enter():
    priced, full, _ = _node_lps(4)
    pins = np.arange(0, 60, 2)
    for lp in (priced, full):
        lp.pin_pixels(pins)
        lp.set_cap(3.0)
        lp.set_phases(lp.root_phases())
    (s1, v1, c1), (s2, v2, _) = priced.solve(30.0), full.solve(30.0)
    assert s1 == s2
    if s1 == "optimal":
        assert v1 == pytest.approx(v2, rel=1e-6, abs=1e-7)
        assert priced.point(c1, np.zeros(60), np.ones(60))[pins] == pytest.approx(priced.x_bar[pins])


def test_priced_minimize_equals_the_full_lp_over_every_unit():
    """`PhaseLP.minimize` (the tightening's objectives: a unit's pre-activation, pixel columns at cost 0)
    prices the columns in against that objective: the min and max of every unstable unit equal the full LP's."""
    priced, full, _ = _node_lps(5)
    for lp in (priced, full):
        lp.set_cap(2.0)
        lp.set_phases(lp.root_phases())
        assert lp.solve(30.0)[0] == "optimal"
    entered = priced.pricing.priced
    for j in np.flatnonzero(priced.branchable):
        cols = np.array([priced.af[j], priced.sf[j]])
        for sense in (1.0, -1.0):
            (s1, v1), (s2, v2) = (lp.minimize(cols, sense * np.array([1.0, -1.0])) for lp in (priced, full))
            assert s1 == s2 == "optimal" and v1 == pytest.approx(v2, rel=1e-6, abs=1e-7)
    assert priced.pricing.priced > entered          # some columns entered for these objectives
