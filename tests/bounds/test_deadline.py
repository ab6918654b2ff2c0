"""Every bound pass takes a deadline and, given one that has passed, returns valid bounds at once (no
solve), so a time limit bounds the whole instance (issue 15)."""

import numpy as np

from advmilp.bounds.ball import ball_bounds
from advmilp.bounds.compute import compute_bounds, get_bounds, interval_bounds, tighten_bounds
from advmilp.encode.milp import build_model
from advmilp.methods.tight import DEFAULT_POLICY, tighten_over_criteria
from advmilp.search.cuts import add_ideal_cuts

from tests.nets import points_in_ball, random_net, small_targeted_instance

PAST = 0.0    # a perf_counter() value long gone


def samples(net, rng, n=4000):
    x = rng.random((n, net.n_inputs))
    return net.preactivations(x)


def test_improved_bounds_at_a_past_deadline_are_the_interval_bounds_and_say_so():
    net = random_net([6, 8, 8, 3], seed=1, scale=2.0)
    b = tighten_bounds(net, "improved", deadline=PAST)
    ref = interval_bounds(net)
    for lo, up, rlo, rup in zip(b.lower, b.upper, ref.lower, ref.upper):
        assert np.array_equal(lo, rlo) and np.array_equal(up, rup)
    assert b.params["incomplete"] == "0/11 units bounded before the deadline"
    assert b.contains(samples(net, np.random.default_rng(0)))
    assert "incomplete" not in compute_bounds(net, "improved").params


def test_ball_bounds_at_a_past_deadline_solve_no_lp_and_stay_sound():
    net = random_net([10, 12, 8, 3], seed=2, scale=2.0)
    rng = np.random.default_rng(2)
    x_bar = rng.random(10)
    stopped = ball_bounds(net, x_bar, 1.5, deadline=PAST)
    no_lp = ball_bounds(net, x_bar, 1.5, use_lp=False)
    full = ball_bounds(net, x_bar, 1.5)
    for lo, up, nlo, nup in zip(stopped.lower, stopped.upper, no_lp.lower, no_lp.upper):
        assert np.array_equal(lo, nlo) and np.array_equal(up, nup)
    pts = points_in_ball(x_bar, 1.5, rng)
    assert stopped.contains(net.preactivations(pts)) and full.contains(net.preactivations(pts))


def test_relaxation_tightening_and_cuts_at_a_past_deadline_solve_nothing():
    inst = small_targeted_instance(3)
    spec = inst.spec.with_(output_relu=False)
    form = build_model(inst.net, inst.box, spec, inst.x_bar, inst.label, split_distance=True)
    assert add_ideal_cuts(form, 20, deadline=PAST) == 0
    cap = 2.0 * inst.plain.row["objective"] if inst.plain.row["status"] == "optimal" else 8.0
    tightened = tighten_over_criteria(inst.net, inst.box, spec, inst.x_bar, inst.label, cap, DEFAULT_POLICY,
                                      deadline=PAST)
    assert all(np.array_equal(a, b) for a, b in zip(tightened.lower, inst.box.lower))
    assert all(np.array_equal(a, b) for a, b in zip(tightened.upper, inst.box.upper))
    free = tighten_over_criteria(inst.net, inst.box, spec, inst.x_bar, inst.label, cap, DEFAULT_POLICY)
    assert any(not np.array_equal(a, b) for a, b in zip(free.upper, inst.box.upper))   # without one it tightens


def test_bounds_stopped_by_the_deadline_are_not_cached(tmp_path):
    net = random_net([6, 8, 8, 3], seed=4, scale=2.0)
    b, hit = get_bounds(net, "weak", 1.0, cache_dir=tmp_path, deadline=PAST)
    assert not hit and "incomplete" in b.params
    assert not list(tmp_path.iterdir())
    b, hit = get_bounds(net, "weak", 1.0, cache_dir=tmp_path)
    assert not hit and "incomplete" not in b.params and list(tmp_path.iterdir())
