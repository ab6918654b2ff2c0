"""The β-CROWN branch-and-bound (search/split_bab.py): exact answers on random 2-input networks against
a dense grid (holds just above the grid's maximum plus a Lipschitz allowance, violated just below it),
a conjunction of two rows, and a point reported only when the caller accepts it."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.bounds.crown import crown_bounds
from advmilp.search.split_bab import HOLDS, UNKNOWN, VIOLATED, SplitBabOptions, prove_disjunct
from tests.nets import random_net


def _grid(net):
    g = np.linspace(0, 1, 401)
    X = np.array(np.meshgrid(g, g)).reshape(2, -1).T
    lipschitz = np.prod([np.linalg.norm(layer.W, 2) for layer in net.layers]) * np.sqrt(2) * (g[1] - g[0])
    return X, net.forward(X), lipschitz


def _prove(net, G, h, accept=lambda x: True, **kw):
    lb, ub = np.zeros(2), np.ones(2)
    b = crown_bounds(net, lb, ub)
    return prove_disjunct(net, b.lower[:-1], b.upper[:-1], G, h, lb, ub, accept, **kw)


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_agree_with_a_dense_grid(seed):
    """Is there x with y0 − y1 ≤ c?  min over the grid of y0 − y1 is m: c below m − allowance: holds; c
    above m: violated (the point meets the row exactly)."""
    net = random_net([2, 10, 10, 2], seed=seed, scale=2.0)
    X, Y, lip = _grid(net)
    d = Y @ np.array([1.0, -1.0])
    low = float(d.min())
    r = _prove(net, [[1.0, -1.0]], [low - lip - 1e-3], deadline=None)
    assert r.status == HOLDS and r.bound > 0, r
    r = _prove(net, [[1.0, -1.0]], [low + 1e-3])
    assert r.status == VIOLATED and r.x is not None
    assert net.forward(r.x) @ np.array([1.0, -1.0]) <= low + 1e-3


def test_a_conjunction_of_two_rows_needs_both():
    """y0 − y1 ≤ c0 and y1 ≤ c1 together: holds when the grid has no point meeting both (with margin)."""
    net = random_net([2, 10, 10, 2], seed=7, scale=2.0)
    X, Y, lip = _grid(net)
    a, b = Y @ np.array([1.0, -1.0]), Y[:, 1]
    c1 = float(np.median(b))
    # the least y0 − y1 among grid points with y1 ≤ c1 + allowance
    low = float(a[b <= c1 + lip].min())
    G = [[1.0, -1.0], [0.0, 1.0]]
    r = _prove(net, G, [low - lip - 1e-3, c1])
    assert r.status == HOLDS, r
    meet = np.flatnonzero((b <= c1) & (a <= a[b <= c1].min() + 1e-2))
    r = _prove(net, G, [float(a[meet].max()) + 1e-3, c1])
    assert r.status == VIOLATED
    y = net.forward(r.x)
    assert y[0] - y[1] <= float(a[meet].max()) + 1e-3 and y[1] <= c1


def test_a_point_the_caller_refuses_is_never_reported():
    net = random_net([2, 12, 12, 2], seed=1, scale=2.0)
    X, Y, lip = _grid(net)
    low = float((Y @ np.array([1.0, -1.0])).min())
    r = _prove(net, [[1.0, -1.0]], [low + 0.5], accept=lambda x: False,
               options=SplitBabOptions(max_domains=50), deadline=None)
    assert r.status == UNKNOWN and r.x is None and r.bound <= low + 0.5


def test_the_region_lp_of_a_fully_split_domain_by_hand():
    """relu(x) + x on [−1, 1] (tests/bounds/test_beta.py): split inactive it is x on [−1, 0], least value −1
    at x = −1; split active it is 2x on [0, 1], least 0 at x = 0; a region with no box point is infeasible."""
    from advmilp.bounds.beta import SplitRelaxation
    from advmilp.nn.activations import ACTIVE, INACTIVE
    from advmilp.nn.network import Network
    from advmilp.search.split_bab import region_lp

    net = Network.from_arrays([np.array([[1.0], [1.0]]), np.array([[1.0, 1.0]])],
                              [np.array([0.0, 2.0]), np.array([-2.0])])
    lb, ub = np.array([-1.0]), np.array([1.0])
    b = crown_bounds(net, lb, ub)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    G, h = np.array([[1.0]]), np.array([0.0])
    st, t, x = region_lp(relax, np.array([INACTIVE, 0], np.int8), G, h, lb, ub)
    assert st == "optimal" and t == pytest.approx(-1.0) and x == pytest.approx([-1.0])
    st, t, x = region_lp(relax, np.array([ACTIVE, 0], np.int8), G, h - 1.5, lb, ub)
    assert st == "optimal" and t == pytest.approx(1.5) and x == pytest.approx([0.0])
    st, _, _ = region_lp(relax, np.array([ACTIVE, 0], np.int8), G, h, np.array([-1.0]), np.array([-0.5]))
    assert st == "infeasible"


def test_descending_through_regions_by_hand():
    """y = relu(x) + x on [−1, 1], find y ≤ −0.5 from x = 1: x's region (x ≥ 0, y = 2x) is least at x = 0
    (slack 0.5), on the unit's boundary; the flipped region (x ≤ 0, y = x) is least at x = −1 (slack −0.5)."""
    from advmilp.bounds.beta import SplitRelaxation
    from advmilp.nn.network import Network
    from advmilp.search.split_bab import descend_regions

    net = Network.from_arrays([np.array([[1.0], [1.0]]), np.array([[1.0, 1.0]])],
                              [np.array([0.0, 2.0]), np.array([-2.0])])
    lb, ub = np.full(1, -1.0), np.ones(1)
    b = crown_bounds(net, lb, ub)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    t, x = descend_regions(relax, np.ones(1), np.array([[1.0]]), np.array([-0.5]), lb, ub)
    assert t == pytest.approx(-0.5, abs=1e-7) and x == pytest.approx([-1.0], abs=1e-7)
    t, x = descend_regions(relax, np.ones(1), np.array([[1.0]]), np.array([-0.5]), lb, ub, steps=1)
    assert t == pytest.approx(0.5, abs=1e-7) and x == pytest.approx([0.0], abs=1e-7)
