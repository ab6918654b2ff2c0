"""The L1 ball's fractional knapsack (`bounds.ball`): the top-k shortcut equals the greedy over every pixel."""

import numpy as np
import pytest

from advmilp.bounds.ball import knapsack_bounds, knapsack_max


def greedy_max(w, x_bar, radius, x_lb, x_ub):
    """max w·x over {x in box, Σ|x − x̄| ≤ radius}, pixel by pixel in plain Python: largest |w_i| first."""
    value, budget = float(w @ x_bar), radius
    for i in sorted(range(len(w)), key=lambda i: -abs(w[i])):
        room = (x_ub[i] - x_bar[i]) if w[i] > 0 else (x_bar[i] - x_lb[i])
        step = min(room, budget)
        value += abs(w[i]) * step
        budget -= step
    return value


@pytest.mark.parametrize("radius", [0.0, 0.3, 2.5, 40.0, 1e3])   # small (top-k) to larger than the box
@pytest.mark.parametrize("ties", [False, True])
def test_knapsack_equals_the_greedy_over_every_pixel(radius, ties):
    rng = np.random.default_rng(7)
    n = 300
    W = rng.normal(size=(9, n))
    if ties:    # many equal |w|, and rows of zeros
        W = np.round(W * 2) / 2
        W[3] = 0.0
    x_bar = np.where(rng.random(n) < 0.6, 0.0, rng.random(n))    # MNIST-like: most pixels at 0
    x_lb, x_ub = np.zeros(n), np.ones(n)
    b = rng.normal(size=9)
    lo, up = knapsack_bounds(W, b, x_bar, radius, x_lb, x_ub)
    for j in range(9):
        assert up[j] == pytest.approx(greedy_max(W[j], x_bar, radius, x_lb, x_ub) + b[j], rel=1e-12, abs=1e-12)
        assert lo[j] == pytest.approx(-greedy_max(-W[j], x_bar, radius, x_lb, x_ub) + b[j], rel=1e-12, abs=1e-12)
    value, X = knapsack_max(W, b, x_bar, radius, x_lb, x_ub, argmax=True)   # a maximiser: in the set, attaining the max
    assert np.array_equal(value, up)
    assert np.all(X >= x_lb - 1e-12) and np.all(X <= x_ub + 1e-12)
    assert np.all(np.abs(X - x_bar).sum(axis=1) <= radius + 1e-9)
    assert np.allclose((W * X).sum(axis=1) + b, up, rtol=1e-12, atol=1e-12)
