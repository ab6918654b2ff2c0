"""The boundary attack of `heuristics.gradient` on a hand-built 3-unit network whose minimal L1
adversarial point is known, its L1 projection, its deadline, its box, and its wiring in `find_adversarial`."""

import numpy as np
import pytest

from advmilp.heuristics.gradient import GradientOptions, gradient_start, l1_project
from advmilp.heuristics.primal import find_adversarial
from advmilp.nn.network import Network
from advmilp.spec.problems import ProblemSpec, criteria, input_box
from advmilp.spec.verify import verify_witness

# target 1 of a 2-output network, label 0: y_1 ≥ 1.2 · y_0 and y_1 ≥ ε
SPEC = ProblemSpec(kind="targeted", target=1, ratio=1.2, output_relu=False)
X_BAR = np.array([0.1, 0.1])
OPTIMUM = 0.5        # at (0.5, 0.2), worked out in kinked_net's docstring


def kinked_net() -> Network:
    """2 inputs, 3 ReLUs h = (x1, x2, x1 − 0.5)⁺, logits y_0 = 1, y_1 = 2 h1 + h2 − 4 h3.

    At x̄ = (0.1, 0.1): y = (1, 0.3), label 0.  Target 1 needs y_1 ≥ 1.2.  For x1 ≤ 0.5, y_1 = 2 x1 + x2,
    so 2Δ1 + Δ2 ≥ 0.9 with Δ1 ≤ 0.4 costs at least Δ1 + Δ2 = 0.4 + 0.1 = 0.5 (x1 first: it gains 2 per
    unit); for x1 > 0.5, y_1 = 2 − 2 x1 + x2 is smaller for the same cost.  Minimal L1: 0.5 at
    (0.5, 0.2).  The linearisation at x̄ says 0.45 (x1 to 0.55), past the kink: one step is not enough."""
    W1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    b1 = np.array([0.0, 0.0, -0.5])
    W2 = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, -4.0]])
    b2 = np.array([1.0, 0.0])
    return Network.from_arrays([W1, W2], [b1, b2])


def _criterion(net):
    return criteria(SPEC, 0, net.n_outputs)[0]


def test_the_hand_built_network_is_as_described():
    net = kinked_net()
    np.testing.assert_allclose(net.forward(X_BAR), [1.0, 0.3])
    assert net.predict(X_BAR) == 0
    # the optimum meets the criterion exactly (ratio 1.2), a point of smaller L1 along x1 does not
    assert net.forward(np.array([0.5, 0.2]))[1] == pytest.approx(1.2)
    assert net.forward(np.array([0.55, 0.1]))[1] < 1.2


def test_attack_finds_a_verified_point_close_to_the_optimum():
    net = kinked_net()
    lb, ub = input_box(SPEC, 2, X_BAR)
    x = gradient_start(net, X_BAR, _criterion(net), SPEC.margin, lb, ub)
    assert x is not None
    check = verify_witness(net, x, SPEC, X_BAR, 0, 1, lb, ub)
    assert check.verified, check.reason
    # no point closer than the optimum meets the criterion; the attack's is within 20 % of it
    assert OPTIMUM - 1e-9 <= check.l1 <= 1.2 * OPTIMUM


def test_find_adversarial_polishes_the_attack_to_the_optimum():
    net = kinked_net()
    res = find_adversarial(net, X_BAR, 0, SPEC, starts=(), gradient=GradientOptions(min_hidden_units=0))
    assert res.found and res.start == "gradient"
    assert verify_witness(net, res.x, SPEC, X_BAR, 0, 1).verified
    # the region LPs take the attack's point to the optimum (+ the model's margin)
    assert res.l1 == pytest.approx(OPTIMUM, abs=1e-3)


def test_gradient_start_is_off_below_its_network_size():
    net = kinked_net()
    res = find_adversarial(net, X_BAR, 0, SPEC, starts=(), gradient=GradientOptions(min_hidden_units=4))
    assert not res.found
    res = find_adversarial(net, X_BAR, 0, SPEC, starts=(), gradient=None)
    assert not res.found


def test_deadline_already_passed_returns_at_once():
    net = kinked_net()
    lb, ub = input_box(SPEC, 2, X_BAR)
    assert gradient_start(net, X_BAR, _criterion(net), SPEC.margin, lb, ub, deadline=0.0) is None
    res = find_adversarial(net, X_BAR, 0, SPEC, starts=(), deadline=0.0, gradient=GradientOptions(min_hidden_units=0))
    assert not res.found


def test_points_stay_inside_the_box():
    net = kinked_net()
    crit = _criterion(net)
    # x1 ≤ 0.45: the optimum moves to (0.45, 0.3), L1 0.55
    lb, ub = np.zeros(2), np.array([0.45, 1.0])
    x = gradient_start(net, X_BAR, crit, SPEC.margin, lb, ub)
    assert x is not None and np.all(x >= lb) and np.all(x <= ub)
    check = verify_witness(net, x, SPEC, X_BAR, 0, 1, lb, ub)
    assert check.verified and 0.55 - 1e-9 <= check.l1 <= 1.2 * 0.55
    # a box where y_1 ≤ 0.3 + 0.3 < 1.2: nothing to find, and nothing invented
    assert gradient_start(net, X_BAR, crit, SPEC.margin, np.zeros(2), np.full(2, 0.3)) is None


def test_seeds_beyond_the_boundary_are_walked_back():
    net = kinked_net()
    lb, ub = input_box(SPEC, 2, X_BAR)
    far = np.array([0.5, 1.0])     # meets the criterion (y_1 = 2.0), L1 1.3
    x = gradient_start(net, X_BAR, _criterion(net), SPEC.margin, lb, ub,
                       options=GradientOptions(restarts=2), seeds=[far])
    check = verify_witness(net, x, SPEC, X_BAR, 0, 1, lb, ub)
    assert check.verified and check.l1 <= 1.2 * OPTIMUM


def test_l1_projection_by_hand():
    # g = (2, 1, 0): need 0.9 from p = (0.1, 0.1, 0.5) in [0, 0.4] × [0, 1] × [0, 1]: the first coordinate
    # to its bound (gain 0.6), then the second by 0.3; the third (no gain) stays
    z = l1_project(np.array([0.1, 0.1, 0.5]), np.array([2.0, 1.0, 0.0]), 0.9, np.zeros(3), np.array([0.4, 1, 1]))
    np.testing.assert_allclose(z, [[0.4, 0.4, 0.5]])
    # a negative gradient moves down; need ≤ 0 stays; an unreachable need moves everything to its limit
    z = l1_project(np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]), np.array([[-1.0, 0.0], [1.0, 1.0], [1.0, 1.0]]),
                   np.array([0.2, -1.0, 5.0]), np.zeros(2), np.ones(2))
    np.testing.assert_allclose(z, [[0.3, 0.5], [0.5, 0.5], [1.0, 1.0]])


def test_bad_options_are_one_line_errors():
    with pytest.raises(ValueError, match="restarts"):
        GradientOptions(restarts=0)
    with pytest.raises(ValueError, match="share"):
        GradientOptions(share=0.0)


def test_l1_projection_sorting_only_the_top_coordinates_is_the_full_projection():
    rng = np.random.default_rng(3)
    P, g = rng.uniform(0, 1, (6, 300)), rng.normal(size=(6, 300))
    need = np.array([0.0, 0.5, 2.0, 10.0, 40.0, 1e6])     # the last ones need more than the top 96 give
    lb, ub = np.zeros(300), np.ones(300)
    full = l1_project(P, g, need, lb, ub, top=300)
    np.testing.assert_allclose(l1_project(P, g, need, lb, ub, top=96), full, atol=1e-12)
    np.testing.assert_allclose(l1_project(P, g, need, lb, ub, top=5), full, atol=1e-12)
    # every row meets its need (or gives all the box allows), in the box
    gain = ((full - P) * g).sum(axis=1)
    assert np.all(gain >= np.minimum(need, np.where(g > 0, (ub - P) * g, (lb - P) * g).sum(axis=1)) - 1e-9)
    assert np.all((full >= lb) & (full <= ub))
