"""Intermediate bounds refined by the β-CROWN search (search/refine.py): the truncated network is the unit's
pre-activation; refined bounds contain every sampled activation, are never looser than where they
started, never tighter than the exact MILP range; by hand, they close what backward propagation leaves
loose."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.bounds.compute import tighten_bounds
from advmilp.bounds.crown import AlphaOptions, crown_bounds
from advmilp.nn.network import Network
from advmilp.search.refine import RefineOptions, refine_bounds, refine_layer, truncated_at
from tests.nets import random_net


def _box(n, seed):
    rng = np.random.default_rng(seed)
    centre = rng.random(n)
    return np.clip(centre - 0.3, 0, 1), np.clip(centre + 0.3, 0, 1)


def test_the_truncated_network_is_the_units_pre_activation():
    net = random_net([5, 7, 6, 4, 3], seed=1)
    X = np.random.default_rng(0).random((50, 5))
    for k, j in [(1, 0), (1, 5), (2, 3), (3, 2)]:
        pre = net.preactivations(X)[k][:, j]
        assert truncated_at(net, k, j).forward(X)[:, 0] == pytest.approx(pre, abs=1e-12)


def test_a_unit_by_hand():
    """h = relu(x0 − x1), relu(x0 + x1 − 1); z = h0 + h1 − 0.5 on [0, 1]²: range [−0.5, 0.5] (both active:
    z = 2·x0 − 1.5).  Each ReLU's pre-activation spans [−1, 1], so CROWN's chords bound h0 + h1 by
    (x0 − x1 + 1)/2 + (x0 + x1)/2 = x0 + 0.5: z ≤ 1.  The search splits the two units and proves 0.5."""
    net = Network.from_arrays([np.array([[1.0, -1.0], [1.0, 1.0]]), np.array([[1.0, 1.0]]), np.array([[1.0]])],
                              [np.array([0.0, -1.0]), np.array([-0.5]), np.zeros(1)])
    lo, up = np.zeros(2), np.ones(2)
    b = crown_bounds(net, lo, up, alpha=AlphaOptions())
    assert b.upper[1][0] == pytest.approx(1.0, abs=1e-4) and b.lower[1][0] == pytest.approx(-0.5, abs=1e-4)
    L, U = refine_layer(net, b, 1, lo, up, RefineOptions(unit_time=5.0))
    assert U[0] == pytest.approx(0.5, abs=1e-4) and L[0] == pytest.approx(-0.5, abs=1e-4)   # (widened outward)


@pytest.mark.parametrize("seed", range(3))
def test_refined_bounds_are_sound(seed):
    """(How much they tighten depends on the time each search gets; that they do is the hand test's.)"""
    net = random_net([6, 10, 10, 10, 3], seed=seed, scale=1.5)
    lo, up = _box(6, seed)
    start = crown_bounds(net, lo, up, alpha=AlphaOptions())
    refined = refine_bounds(net, start, lo, up, RefineOptions(unit_time=0.1))
    exact = tighten_bounds(net, "improved", x_lb=lo, x_ub=up)        # MILP per unit: the exact ranges
    X = np.vstack([lo + (up - lo) * np.random.default_rng(seed).random((20000, 6)),
                   np.where(np.random.default_rng(seed + 9).random((2000, 6)) < 0.5, lo, up)])   # + corners
    pres = net.preactivations(X)
    for k in range(len(net.layers)):
        L, U = refined.lower[k], refined.upper[k]
        assert np.all(pres[k] >= L - 1e-9) and np.all(pres[k] <= U + 1e-9)                  # sound
        assert np.all(L >= start.lower[k] - 1e-12) and np.all(U <= start.upper[k] + 1e-12)    # never looser
        assert np.all(L <= exact.lower[k] + 1e-6) and np.all(U >= exact.upper[k] - 1e-6)      # not past exact


def test_refinement_stops_when_the_caller_has_enough():
    net = random_net([6, 10, 10, 10, 3], seed=0, scale=1.5)
    lo, up = _box(6, 0)
    start = crown_bounds(net, lo, up, alpha=AlphaOptions())
    calls = []
    out = refine_bounds(net, start, lo, up, RefineOptions(unit_time=0.2), enough=lambda b: calls.append(1) or True)
    assert len(calls) == 1 and out.params["refined_layers"] == 1
