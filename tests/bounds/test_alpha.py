"""α-CROWN (bounds/crown.py `optimised_upper`, `crown_bounds(alpha=…)`): the slopes' gradient is the
bound's, the optimised bounds are sound on sampled points, never looser than CROWN's, never tighter than
the LP over the same triangle relaxation, and reach the hand-computed optimum on a one-unit network."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.bounds.crown import AlphaOptions, _upper_bound, crown_bounds, optimised_upper, output_bounds
from advmilp.nn.network import Network
from tests.nets import points_in_ball, random_net


def _one_unit_net() -> Network:
    """x ∈ [−1, 2]; a1 = relu(x) (unstable), a2 = relu(x + 1) (active on the box); y = −a1 + 0.5·a2.

    max y = 0.5 (at every x ≥ 0 and at x = 0).  The lower line λ·x of a1 gives y ≤ (0.5 − λ)·x + 0.5,
    whose maximum over [−1, 2] is max(λ, 1.5 − 2λ): CROWN's λ = 1 (U ≥ −L) gives 1.0, the best λ = 0.5
    gives the exact 0.5; interval arithmetic gives 1.5."""
    return Network.from_arrays([np.array([[1.0], [1.0]]), np.array([[-1.0, 0.5]])],
                               [np.array([0.0, 1.0]), np.zeros(1)])


def test_one_unit_network_by_hand():
    net = _one_unit_net()
    b = crown_bounds(net, -1.0, 2.0)
    _, crown_up = output_bounds(net, b, np.eye(1), np.array([-1.0]), np.array([2.0]))
    _, alpha_up = output_bounds(net, b, np.eye(1), np.array([-1.0]), np.array([2.0]), alpha=AlphaOptions())
    assert crown_up[0] == pytest.approx(1.0, abs=1e-4)
    assert 0.5 - 1e-9 <= alpha_up[0] <= 0.5 + 0.02


@pytest.mark.parametrize("ball", [False, True])
def test_gradient_matches_finite_differences(ball):
    net = random_net([8, 7, 6, 3], seed=1, scale=2.0)
    rng = np.random.default_rng(0)
    x_lb, x_ub = np.zeros(8), np.ones(8)
    x_bar, radius = (rng.random(8), 1.3) if ball else (None, None)
    b = crown_bounds(net, x_lb, x_ub, x_bar=x_bar, radius=radius)
    C = rng.normal(size=(4, 3))
    slopes = {j: rng.uniform(0.05, 0.95, size=(4, len(b.lower[j]))) for j in range(2)}
    value, grads = _upper_bound(net, 2, C, b.lower, b.upper, x_lb, x_ub, x_bar, radius, slopes, True)
    eps = 1e-7
    for j in range(2):
        for r, u in [(0, 0), (1, 2), (3, len(b.lower[j]) - 1)]:
            moved = {i: s.copy() for i, s in slopes.items()}
            moved[j][r, u] += eps
            v2 = _upper_bound(net, 2, C, b.lower, b.upper, x_lb, x_ub, x_bar, radius, moved)
            assert grads[j][r, u] == pytest.approx((v2[r] - value[r]) / eps, abs=1e-5)
            assert np.allclose(np.delete(v2, r), np.delete(value, r))       # rows are independent


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["relu", "leaky_relu"])
def test_sound_on_sampled_points_and_never_looser_than_crown(seed, kind):
    net = random_net([12, 10, 8, 6, 3], seed=seed, scale=2.0)
    if kind == "leaky_relu":
        net = Network.from_arrays([l.W for l in net.layers], [l.b for l in net.layers],
                                  ["leaky_relu"] * 3 + ["linear"], slopes=[0.1] * 3 + [None])
    rng = np.random.default_rng(seed)
    x_bar = rng.random(12)
    for kw, xs in [({}, rng.random((4000, 12))), ({"x_bar": x_bar, "radius": 1.5}, points_in_ball(x_bar, 1.5, rng))]:
        crown = crown_bounds(net, **kw)
        alpha = crown_bounds(net, alpha=AlphaOptions(), **kw)
        assert alpha.method == "alpha-crown"
        for pre, L, U, cL, cU in zip(net.preactivations(xs), alpha.lower, alpha.upper, crown.lower, crown.upper):
            assert np.all(pre >= L - 1e-9) and np.all(pre <= U + 1e-9)
            assert np.all(L >= cL - 1e-12) and np.all(U <= cU + 1e-12)


def _triangle_lp_max(net: Network, lower: list, upper: list, c: np.ndarray, x_lb, x_ub) -> float:
    """max c·y over the triangle relaxation with the given pre-activation bounds (an LP written out
    independently of advmilp's encoders, solved by scipy's HiGHS)."""
    from scipy.optimize import linprog

    sizes = net.sizes
    n_var = sum(sizes[:-1]) + sum(sizes[1:-1]) + sizes[-1]      # x, then per hidden layer z and a, then y
    offs, pos = [], 0
    for n in [sizes[0]] + [m for m in sizes[1:-1] for _ in (0, 1)] + [sizes[-1]]:
        offs.append(pos)
        pos += n
    A_eq, b_eq, A_ub, b_ub = [], [], [], []
    bounds = [(lo, hi) for lo, hi in zip(x_lb, x_ub)]
    prev = offs[0]
    for k, layer in enumerate(net.layers):
        z_off = offs[1 + 2 * k] if k < len(net.layers) - 1 else offs[-1]
        for u in range(len(layer.b)):
            row = np.zeros(n_var)
            row[z_off + u] = 1.0
            row[prev:prev + layer.W.shape[1]] -= layer.W[u]
            A_eq.append(row)
            b_eq.append(layer.b[u])
        if k == len(net.layers) - 1:
            bounds += [(None, None)] * len(layer.b)
            break
        bounds += list(zip(lower[k], upper[k]))
        a_off = offs[2 + 2 * k]
        for u, (L, U) in enumerate(zip(lower[k], upper[k])):
            if L >= 0 or U <= 0:
                row = np.zeros(n_var)
                row[a_off + u] = 1.0
                row[z_off + u] = -1.0 if L >= 0 else 0.0
                A_eq.append(row)
                b_eq.append(0.0)
                continue
            for coef in (1.0, 0.0):                               # a ≥ z, a ≥ 0
                row = np.zeros(n_var)
                row[a_off + u], row[z_off + u] = -1.0, coef
                A_ub.append(row)
                b_ub.append(0.0)
            row = np.zeros(n_var)                                 # a ≤ U (z − L) / (U − L)
            row[a_off + u], row[z_off + u] = 1.0, -U / (U - L)
            A_ub.append(row)
            b_ub.append(-U * L / (U - L))
        bounds += [(0.0, max(U, 0.0)) for U in upper[k]]
        prev = a_off
    cost = np.zeros(n_var)
    cost[offs[-1]:] = -c
    res = linprog(cost, A_ub=np.array(A_ub), b_ub=b_ub, A_eq=np.array(A_eq), b_eq=b_eq, bounds=bounds,
                  method="highs")
    assert res.status == 0
    return -res.fun


@pytest.mark.parametrize("seed", range(4))
def test_between_the_lp_and_crown_and_tighter_somewhere(seed):
    """With the same intermediate bounds the LP over the triangle relaxation is the best any choice of
    slopes can give (α-CROWN's optimum equals it), so α-CROWN lies between the LP and CROWN."""
    net = random_net([6, 8, 8, 3], seed=seed, scale=2.0)
    x_lb, x_ub = np.zeros(6), np.ones(6)
    b = crown_bounds(net, x_lb, x_ub)
    C = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [-1.0, 0.0, 1.0]])
    crown = _upper_bound(net, 2, C, b.lower, b.upper, x_lb, x_ub, None, None)
    alpha = optimised_upper(net, 2, C, b.lower, b.upper, x_lb, x_ub, None, None, AlphaOptions(iterations=60))
    lp = np.array([_triangle_lp_max(net, b.lower, b.upper, c, x_lb, x_ub) for c in C])
    assert np.all(alpha >= lp - 1e-7) and np.all(alpha <= crown + 1e-12)
    assert np.any(alpha < crown - 1e-3)


def test_deadline_in_the_past_returns_crown():
    net = random_net([6, 8, 8, 3], seed=0, scale=2.0)
    b = crown_bounds(net)
    C = np.eye(3)
    crown = _upper_bound(net, 2, C, b.lower, b.upper, np.zeros(6), np.ones(6), None, None)
    alpha = optimised_upper(net, 2, C, b.lower, b.upper, np.zeros(6), np.ones(6), None, None, AlphaOptions(), deadline=0.0)
    assert np.array_equal(alpha, crown)
