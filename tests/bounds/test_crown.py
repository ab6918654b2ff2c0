"""Backward linear bound propagation (bounds/crown.py): sound on sampled points, never looser than
interval arithmetic, exact where the network is linear, and tighter on random networks."""

from __future__ import annotations

import numpy as np
import pytest

from advmilp.bounds.ball import ball_bounds
from advmilp.bounds.compute import interval_bounds
from advmilp.bounds.crown import certified_radius, crown_bounds, relaxation_lines
from advmilp.nn.network import Network
from tests.nets import points_in_ball, random_net


def test_relaxation_lines_by_hand():
    # ReLU on [-1, 3]: chord from (-1, 0) to (3, 3): slope 3/4, intercept 3/4; lower slope 1 (U ≥ −L)
    lo_s, lo_i, up_s, up_i = relaxation_lines(0.0, np.array([-1.0, 1.0, -2.0, -3.0]), np.array([3.0, 2.0, -1.0, 1.0]))
    assert up_s[0] == pytest.approx(0.75) and up_i[0] == pytest.approx(0.75) and lo_s[0] == 1.0
    assert (lo_s[1], up_s[1], up_i[1]) == (1.0, 1.0, 0.0)          # stable active: exact
    assert (lo_s[2], up_s[2], up_i[2]) == (0.0, 0.0, 0.0)          # stable inactive: exact
    assert lo_s[3] == 0.0                                          # U < −L: the lower line is 0
    # leaky 0.5 on [-2, 2]: chord from (-2, -1) to (2, 2): slope 3/4, intercept 0.5
    lo_s, _, up_s, up_i = relaxation_lines(0.5, np.array([-2.0]), np.array([2.0]))
    assert up_s[0] == pytest.approx(0.75) and up_i[0] == pytest.approx(0.5) and lo_s[0] == 1.0


def test_cancellation_that_interval_arithmetic_cannot_see():
    """h1 = h2 = relu(x0) (stable active on [0, 1]); out = h1 − h2 ≡ 0.  Interval: [−1, 1]; CROWN: 0."""
    net = Network.from_arrays([np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[1.0, -1.0]])],
                              [np.zeros(2), np.zeros(1)])
    box, crown = interval_bounds(net), crown_bounds(net)
    assert box.lower[1][0] == -1.0 and box.upper[1][0] == 1.0
    # (bounds are widened by the same 1e-5 tolerance as every solver-free bound here)
    assert crown.lower[1][0] == pytest.approx(0.0, abs=2e-5) and crown.upper[1][0] == pytest.approx(0.0, abs=2e-5)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["relu", "leaky_relu"])
def test_sound_on_sampled_points_and_never_looser_than_interval(seed, kind):
    net = random_net([12, 10, 8, 6, 3], seed=seed, scale=2.0)
    if kind == "leaky_relu":
        net = Network.from_arrays([l.W for l in net.layers], [l.b for l in net.layers],
                                  ["leaky_relu"] * 3 + ["linear"], slopes=[0.1] * 3 + [None])
    rng = np.random.default_rng(seed)
    x_bar = rng.random(12)
    cases = [(crown_bounds(net), interval_bounds(net), rng.random((4000, 12))),
             (crown_bounds(net, x_bar=x_bar, radius=1.5), ball_bounds(net, x_bar, 1.5, use_lp=False),
              points_in_ball(x_bar, 1.5, rng))]
    for crown, interval, xs in cases:
        for pre, L, U, iL, iU in zip(net.preactivations(xs), crown.lower, crown.upper, interval.lower, interval.upper):
            assert np.all(pre >= L - 1e-9) and np.all(pre <= U + 1e-9)
            assert np.all(L >= iL - 1e-12) and np.all(U <= iU + 1e-12)


def test_tighter_than_interval_on_random_networks():
    widths_crown, widths_box = [], []
    for seed in range(5):
        net = random_net([20, 16, 16, 16, 4], seed=seed, scale=2.0)
        c, b = crown_bounds(net), interval_bounds(net)
        widths_crown.append(sum((U - L).sum() for L, U in zip(c.lower[1:], c.upper[1:])))
        widths_box.append(sum((U - L).sum() for L, U in zip(b.lower[1:], b.upper[1:])))
    assert sum(widths_crown) < 0.8 * sum(widths_box)


def test_output_bounds_of_a_difference_contain_sampled_values_and_beat_the_difference_of_bounds():
    net = random_net([10, 12, 12, 4], seed=3, scale=2.0)
    b = crown_bounds(net)
    from advmilp.bounds.crown import output_bounds
    C = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    lo, up = output_bounds(net, b, C, np.zeros(10), np.ones(10))
    ys = net.forward(np.random.default_rng(0).random((5000, 10))) @ C.T
    assert np.all(ys >= lo - 1e-9) and np.all(ys <= up + 1e-9)
    naive_up = b.upper[-1][[0, 2]] - b.lower[-1][[1, 3]]
    assert np.all(up <= naive_up + 1e-9)


def _identity_net(hidden_relu: bool):
    """Logits (x0, x1) — through an identity ReLU layer (stable on [0, 1]) or directly."""
    eye = np.eye(2)
    if hidden_relu:
        return Network.from_arrays([eye, eye], [np.zeros(2), np.zeros(2)])
    return Network.from_arrays([eye], [np.zeros(2)], activations=["linear"])


@pytest.mark.parametrize("hidden_relu", [False, True])
def test_certified_radius_by_hand(hidden_relu):
    """From x̄ = (0.8, 0.2), making x1 ≥ x0 costs L1 0.6 (x0 down 0.3 and x1 up 0.3, or any split) and
    L∞ 0.3; back-substitution is exact on these networks, so the certificate reaches them."""
    net = _identity_net(hidden_relu)
    x_bar, lo, up = np.array([0.8, 0.2]), np.zeros(2), np.ones(2)
    rows = [(np.array([[-1.0, 1.0]]), np.array([0.0]))]
    r1 = certified_radius(net, x_bar, rows, lo, up, upper=1.0, norm="l1", rel_precision=1e-3)
    assert 0.6 - 2e-3 <= r1 <= 0.6
    rinf = certified_radius(net, x_bar, rows, lo, up, upper=1.0, norm="linf", rel_precision=1e-3)
    assert 0.3 - 2e-3 <= rinf <= 0.3
    # a disjunction is certified only as far as its nearest conjunction: x1 ≥ x0 or x0 ≤ 0.5 (L1 0.3)
    rows.append((np.array([[-1.0, 0.0]]), np.array([-0.5])))
    r2 = certified_radius(net, x_bar, rows, lo, up, upper=1.0, norm="l1", rel_precision=1e-3)
    assert 0.3 - 2e-3 <= r2 <= 0.3


@pytest.mark.parametrize("seed", range(6))
def test_certified_radius_is_below_the_exact_minimal_distance(seed):
    from advmilp.spec.problems import input_box
    from advmilp.search.phase_bb import search_phases
    from advmilp.spec.problems import criteria
    from tests.nets import small_targeted_instance, targeted_problem

    inst = small_targeted_instance(seed)
    if inst.plain.row["status"] != "optimal":
        pytest.skip("no adversarial point on this instance")
    spec = inst.spec.with_(output_relu=False)
    lo, up = input_box(spec, 16, inst.x_bar)
    exact = search_phases(inst.net, inst.box, targeted_problem(inst.net, spec, inst.x_bar, inst.label, lo, up))
    assert exact.status == "optimal"
    rows = [(c.G, c.h) for c in criteria(spec, inst.label, inst.net.n_outputs)]
    upper = 2 * exact.objective
    r = certified_radius(inst.net, inst.x_bar, rows, lo, up, upper, base=inst.box, rel_precision=1e-3)
    assert 0 <= r <= exact.objective * (1 + 1e-6)
