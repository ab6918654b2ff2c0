"""β-CROWN bounds over split domains (bounds/beta.py): CROWN's bound when nothing is split, a hand-made
network where the split constraint's multiplier closes the gap, soundness on sampled points of random
domains for random α and β, and the gradient against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.bounds.beta import SplitRelaxation, split_upper_bound
from advmilp.nn.activations import ACTIVE, FREE, INACTIVE
from advmilp.bounds.crown import _upper_bound, crown_bounds
from advmilp.nn.network import Network
from tests.nets import random_net


def _relu_plus_x() -> Network:
    """x ∈ [−1, 1]; z1 = x (unstable), z2 = x + 2 (active); y = a1 + a2 − 2 = relu(x) + x."""
    return Network.from_arrays([np.array([[1.0], [1.0]]), np.array([[1.0, 1.0]])],
                               [np.array([0.0, 2.0]), np.array([-2.0])])


def _bound(net, phases, alpha, beta, C=None, lb=-1.0, ub=1.0, gradient=False):
    n0 = net.n_inputs
    x_lb, x_ub = np.full(n0, lb), np.full(n0, ub)
    b = crown_bounds(net, x_lb, x_ub)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    C = np.ones((len(phases), 1)) if C is None else C
    return relax, split_upper_bound(relax, C, x_lb, x_ub, np.asarray(phases, np.int8), np.asarray(alpha, float),
                                    np.asarray(beta, float), gradient)


def test_a_split_and_its_multiplier_by_hand():
    """Root: the chord 0.5·(x + 1) gives y ≤ 1.5x + 0.5, max 2 (exact, at x = 1).  Split active: y = 2x,
    max 2.  Split inactive (x ≤ 0): y = x without β, max 1 at x = 1 — the split constraint is lost —;
    with β: y + β·(−x) = (1 − β)·x, max |1 − β|: β = 1 gives the exact 0, and d/dβ at β = 0.5 is −x* = −1."""
    net = _relu_plus_x()
    phases = [[FREE, FREE], [ACTIVE, FREE], [INACTIVE, FREE], [INACTIVE, FREE], [INACTIVE, FREE]]
    beta = [[0, 0], [0, 0], [0, 0], [1.0, 0], [0.5, 0]]
    _, r = _bound(net, phases, [[1.0, 1.0]] * 5, beta, gradient=True)
    assert r.value == pytest.approx([2.0, 2.0, 1.0, 0.0, 0.5], abs=1e-12)
    assert r.grad_beta[4, 0] == pytest.approx(-1.0) and r.grad_beta[4, 1] == 0.0
    assert r.scores[0, 0] == pytest.approx(0.5) and r.scores[1, 0] == 0.0      # the chord's intercept, free only
    assert r.x[2].tolist() == [1.0]


def test_nothing_split_is_crown():
    net = random_net([6, 9, 8, 4], seed=3, scale=2.0)
    x_lb, x_ub = np.zeros(6), np.ones(6)
    b = crown_bounds(net, x_lb, x_ub)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    C = np.random.default_rng(0).normal(size=(5, 4))
    r = split_upper_bound(relax, C, x_lb, x_ub, np.zeros((5, relax.H), np.int8),
                          np.tile(relax.crown_alpha(), (5, 1)), np.zeros((5, relax.H)))
    assert np.allclose(r.value, _upper_bound(net, 2, C, b.lower, b.upper, x_lb, x_ub, None, None), rtol=0, atol=1e-10)


def _check_random_domains(net, relax, X, rng, x_lb, x_ub, ball=None, most_splits=3):
    """Random splits of unstable units, random α ∈ [0, 1] and β ≥ 0: no point of ``X`` in the domain (every
    split's sign respected) has C·z_K above the bound; at least 10 domains checked."""
    Z = np.hstack(net.preactivations(X)[:-1])
    y = net.forward(X)
    unstable = np.flatnonzero(relax.unstable)
    assert len(unstable) >= 3
    checked = 0
    for _ in range(25):
        ph = np.zeros(relax.H, np.int8)
        pick = rng.choice(unstable, size=rng.integers(1, most_splits), replace=False)
        ph[pick] = rng.choice([ACTIVE, INACTIVE], size=len(pick))
        inside = np.all((Z[:, pick] * ph[pick]) >= 0, axis=1)
        if not inside.any():
            continue
        C = rng.normal(size=(1, y.shape[1]))
        r = split_upper_bound(relax, C, x_lb, x_ub, ph[None, :], rng.random((1, relax.H)),
                              rng.exponential(size=(1, relax.H)), ball=ball)
        assert (y[inside] @ C[0]).max() <= r.value[0] + 1e-9
        if ball is not None:
            assert np.abs(r.x[0] - ball[0]).sum() <= ball[1] + 1e-9
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("seed", range(4))
def test_sound_on_sampled_points_of_random_domains(seed):
    """Over the box (`_check_random_domains`)."""
    rng = np.random.default_rng(seed)
    net = random_net([5, 10, 10, 3], seed=seed, scale=2.5)
    x_lb, x_ub = np.zeros(5), np.ones(5)
    b = crown_bounds(net, x_lb, x_ub)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    _check_random_domains(net, relax, rng.random((20000, 5)), rng, x_lb, x_ub, most_splits=4)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    net = random_net([6, 8, 7, 3], seed=1, scale=2.0)
    x_lb, x_ub = np.zeros(6), np.ones(6)
    b = crown_bounds(net, x_lb, x_ub)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    unstable = np.flatnonzero(relax.unstable)
    ph = np.zeros((1, relax.H), np.int8)
    ph[0, unstable[:2]] = [ACTIVE, INACTIVE]
    alpha, beta = rng.uniform(0.2, 0.8, (1, relax.H)), rng.uniform(0.2, 0.8, (1, relax.H))
    C = rng.normal(size=(1, 3))
    r = split_upper_bound(relax, C, x_lb, x_ub, ph, alpha, beta, gradient=True)
    eps = 1e-6
    for name, arr, grad in (("alpha", alpha, r.grad_alpha), ("beta", beta, r.grad_beta)):
        for u in range(relax.H):
            plus, minus = arr.copy(), arr.copy()
            plus[0, u] += eps
            minus[0, u] -= eps
            args = {"alpha": alpha, "beta": beta}
            hi = split_upper_bound(relax, C, x_lb, x_ub, ph, **{**args, name: plus}).value[0]
            lo = split_upper_bound(relax, C, x_lb, x_ub, ph, **{**args, name: minus}).value[0]
            assert grad[0, u] == pytest.approx((hi - lo) / (2 * eps), abs=1e-5), (name, u)
    assert np.any(r.grad_beta[0, unstable[:2]] != 0) and np.any(r.grad_alpha != 0)


def test_over_a_ball_the_bound_is_the_fractional_knapsack_by_hand():
    """h = relu(x) (stable on [0, 1]²), y = 2·h0 − h1.  Around x̄ = (0.5, 0.5) with ‖x − x̄‖₁ ≤ 0.6 the
    budget goes to x0 first (+0.5, all its room: +1.0), then to x1 (−0.1: +0.1): max y = 0.5 + 1.1 = 1.6,
    at (1, 0.4); over the whole box it is 2."""
    net = Network.from_arrays([np.eye(2), np.array([[2.0, -1.0]])], [np.zeros(2), np.zeros(1)])
    lo, up, x_bar = np.zeros(2), np.ones(2), np.array([0.5, 0.5])
    b = crown_bounds(net, lo, up)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    none = np.zeros((1, relax.H))
    ball = split_upper_bound(relax, np.array([[1.0]]), lo, up, np.zeros((1, 2), np.int8), none, none,
                             ball=(x_bar, 0.6))
    assert ball.value[0] == pytest.approx(1.6) and ball.x[0] == pytest.approx([1.0, 0.4])
    box = split_upper_bound(relax, np.array([[1.0]]), lo, up, np.zeros((1, 2), np.int8), none, none)
    assert box.value[0] == pytest.approx(2.0)


@pytest.mark.parametrize("seed", range(3))
def test_sound_on_sampled_points_of_a_ball(seed):
    """Over the box cut by an L1 ball, with bounds for that set (`_check_random_domains` on sampled points
    of the ball; the maximiser lies in the ball)."""
    rng = np.random.default_rng(seed)
    net = random_net([5, 10, 10, 3], seed=seed, scale=2.5)
    x_lb, x_ub = np.zeros(5), np.ones(5)
    x_bar, radius = rng.random(5), 0.7
    b = crown_bounds(net, x_lb, x_ub, x_bar=x_bar, radius=radius)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    d = rng.laplace(size=(40000, 5)) * rng.random((40000, 1)) ** 3
    d *= radius / np.maximum(np.abs(d).sum(axis=1, keepdims=True), radius)       # ‖d‖₁ ≤ r
    _check_random_domains(net, relax, np.clip(x_bar + d, 0, 1), rng, x_lb, x_ub, ball=(x_bar, radius))
