"""Bounds tightened over a search problem's LP: valid for its feasible points, never looser, same optimum."""

import numpy as np
import pytest

from advmilp.bounds.compute import Bounds, interval_bounds, unstable_widths
from advmilp.search.options import SearchOptions
from advmilp.search.phase_bb import search_phases
from advmilp.search.tighten import tighten_over_problem
from advmilp.spec.problems import input_box

from tests.nets import random_net, small_targeted_instance, targeted_problem


def test_a_criterion_bounds_a_unit_by_hand():
    # y = relu(x0 − x1) on x in [0, 1]²: the box gives the hidden unit [−1, 1].  Asking for output ≥ .5
    # (one row on y = relu(pre)) leaves only points with pre ≥ .5: the unit becomes stably active.
    net = random_net([2, 1, 1], seed=0)
    net.layers[0].W[:] = [[1.0, -1.0]]
    net.layers[0].b[:] = 0.0
    net.layers[1].W[:] = [[1.0]]
    net.layers[1].b[:] = 0.0
    box = interval_bounds(net)
    assert box.lower[0][0] == pytest.approx(-1) and box.upper[0][0] == pytest.approx(1)
    from advmilp.search.problems import PhaseProblem

    problem = PhaseProblem(np.zeros(2), np.zeros(2), np.ones(2), np.array([[1.0]]), np.array([0.5]),
                           lambda x: (True, float(np.abs(x).sum()), x), cap=None)
    tight, infeasible = tighten_over_problem(net, box, problem)
    assert not infeasible
    assert tight.lower[0][0] == pytest.approx(0.5, abs=1e-4) and tight.upper[0][0] == pytest.approx(1, abs=1e-4)
    assert unstable_widths(tight, net).size == 0
    assert unstable_widths(box, net).size == 1 and unstable_widths(box, net).sum() == pytest.approx(2.0)
    # output ≥ 2 cannot be met: the problem is infeasible, and it is said so
    problem2 = PhaseProblem(np.zeros(2), np.zeros(2), np.ones(2), np.array([[1.0]]), np.array([2.0]),
                            lambda x: (True, 0.0, x), cap=None)
    assert tighten_over_problem(net, box, problem2)[1]


@pytest.mark.parametrize("seed", range(6))
def test_tightened_bounds_hold_for_feasible_points_and_keep_the_optimum(seed):
    inst = small_targeted_instance(seed)
    net, x_bar, label, spec, box, plain = inst.net, inst.x_bar, inst.label, inst.spec, inst.box, inst.plain
    lo, up = input_box(spec, 16, x_bar)
    linear = spec.with_(output_relu=False)
    if plain.row["status"] != "optimal":
        pytest.skip("no adversarial point on this net")
    opt = plain.row["objective"]
    cap = 1.5 * opt
    problem = targeted_problem(net, linear, x_bar, label, lo, up, cap)
    tight, infeasible = tighten_over_problem(net, box, problem, passes=3)
    assert not infeasible
    for k in range(len(net.layers) - 1):          # never looser
        assert np.all(tight.lower[k] >= box.lower[k] - 1e-12) and np.all(tight.upper[k] <= box.upper[k] + 1e-12)
    assert unstable_widths(tight, net).sum() <= unstable_widths(box, net).sum()
    # every feasible point (criterion met, within the cap) sampled around the optimum lies inside them
    rng = np.random.default_rng(seed)
    seen = 0
    x_opt = np.asarray(search_phases(net, box, problem).x)
    for _ in range(3000):
        x = np.clip(x_opt + rng.normal(0, 0.05, 16) * (rng.random(16) < 0.4), lo, up)
        if np.abs(x - x_bar).sum() > cap or np.any(problem.G @ net.forward(x) < problem.h - 1e-12):
            continue
        seen += 1
        for k, z in enumerate(net.preactivations(x)[:-1]):
            assert np.all(z >= tight.lower[k] - 1e-7) and np.all(z <= tight.upper[k] + 1e-7)
    assert seen > 0
    # the same optimum through the tightened bounds
    r = search_phases(net, tight, problem, options=SearchOptions())
    assert r.status == "optimal" and r.objective == pytest.approx(opt, rel=1e-4, abs=1e-6)


def test_a_passed_deadline_returns_the_bounds_unchanged():
    inst = small_targeted_instance(0)
    lo, up = input_box(inst.spec, 16, inst.x_bar)
    problem = targeted_problem(inst.net, inst.spec, inst.x_bar, inst.label, lo, up, 5.0)
    same, infeasible = tighten_over_problem(inst.net, inst.box, problem, deadline=0.0)
    assert not infeasible and isinstance(same, Bounds)
    for a, b in zip(same.lower, inst.box.lower):
        assert np.array_equal(a, b)
