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


@pytest.mark.parametrize("seed", range(4))
def test_sound_on_sampled_points_of_random_domains(seed):
    """Random splits of unstable units, random α ∈ [0, 1] and β ≥ 0: no sampled point of the domain
    (inside the box, every split's sign respected) has C·z_K above the bound."""
    rng = np.random.default_rng(seed)
    net = random_net([5, 10, 10, 3], seed=seed, scale=2.5)
    x_lb, x_ub = np.zeros(5), np.ones(5)
    b = crown_bounds(net, x_lb, x_ub)
    relax = SplitRelaxation(net, b.lower[:-1], b.upper[:-1])
    X = rng.random((20000, 5))
    pre = []
    h = X
    for layer in net.layers[:-1]:
        z = h @ layer.W.T + layer.b
        pre.append(z)
        h = layer.act(z)
    Z = np.hstack(pre)
    y = h @ net.layers[-1].W.T + net.layers[-1].b
    unstable = np.flatnonzero(relax.unstable)
    assert len(unstable) >= 4
    checked = 0
    for _ in range(25):
        ph = np.zeros(relax.H, np.int8)
        pick = rng.choice(unstable, size=rng.integers(1, 4), replace=False)
        ph[pick] = rng.choice([ACTIVE, INACTIVE], size=len(pick))
        inside = np.all((Z[:, pick] * ph[pick]) >= 0, axis=1)
        if not inside.any():
            continue
        C = rng.normal(size=(1, 3))
        r = split_upper_bound(relax, C, x_lb, x_ub, ph[None, :], rng.random((1, relax.H)),
                              rng.exponential(size=(1, relax.H)))
        assert (y[inside] @ C[0]).max() <= r.value[0] + 1e-9
        checked += 1
    assert checked >= 10


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
