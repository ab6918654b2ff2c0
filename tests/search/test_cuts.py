"""Ideal ReLU cuts: the separation by hand, validity at integer points, unchanged optima."""

import numpy as np
import pulp
import pytest

from advmilp.bounds.compute import interval_bounds
from advmilp.search.cuts import add_ideal_cuts, cut_coefficients, most_violated
from advmilp.encode.milp import build_model
from advmilp.spec.problems import ProblemSpec
from advmilp.solvers.pulp import solve

from tests.nets import random_net


def test_separation_by_hand():
    # y = max(0, x1 − x2), x ∈ [0,1]²; big-M relaxation point x = (1, 1), z = 0.5, y = 0.5.
    # i=1: w(x − L̆ z) = 1 > w Ŭ (1−z) = 0.5 → not in I; i=2: −1·(1 − 0.5) = −0.5 < 0 → in I.
    # rhs = 0.5 + (−0.5) = 0 → violation 0.5; the cut is  y + x2 ≤ 1  (c_z = −1 + 1 = 0).
    w, lo, up = np.array([1.0, -1.0]), np.zeros(2), np.ones(2)
    in_I, violation = most_violated(w, 0.0, lo, up, np.array([1.0, 1.0]), 0.5, 0.5)
    assert in_I.tolist() == [False, True] and violation == pytest.approx(0.5)
    coef, c_z, rhs = cut_coefficients(w, 0.0, lo, up, in_I)
    assert coef.tolist() == [1.0] and c_z == pytest.approx(0.0) and rhs == pytest.approx(1.0)
    # the exact graph of the unit satisfies every subset's inequality at both phases
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.random(2)
        y, z = max(0.0, x[0] - x[1]), float(x[0] - x[1] < 0)
        found = most_violated(w, 0.0, lo, up, x, y, z)
        assert found is None or found[1] < 1e-12
    # no cut at a point of the convex hull's interior, e.g. y = 0 with any z
    assert most_violated(w, 0.0, lo, up, np.array([0.5, 0.5]), 0.0, 0.5) is None


def _tight_form(seed):
    net = random_net([12, 8, 6, 3], seed=seed, scale=2.5)
    rng = np.random.default_rng(seed)
    x_bar = rng.random(12)
    label = int(net.predict(x_bar))
    spec = ProblemSpec("targeted", target=(label + 1) % 3, output_relu=False)
    return net, x_bar, label, spec, build_model(net, interval_bounds(net), spec, x_bar, label, split_distance=True)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cuts_hold_at_every_network_point_and_keep_the_optimum(seed):
    net, x_bar, label, spec, form = _tight_form(seed)
    plain = solve(form.prob, time_limit=60)
    _, _, _, _, cut_form = _tight_form(seed)
    n = add_ideal_cuts(cut_form, rounds=20)
    rows = {c.name: c for c in cut_form.prob.constraints() if c.name.startswith("ideal_")}
    assert n > 0 and len(rows) == n
    rng = np.random.default_rng(seed)
    for x in rng.random((300, 12)):    # every input's exact encoding satisfies every cut
        values = cut_form.assignment(x)
        for c in rows.values():
            lhs = sum(coef * values[v.name] for v, coef in c.items()) + c.constant
            assert lhs <= 1e-9
    cut = solve(cut_form.prob, time_limit=60)
    assert cut.status == plain.status
    if plain.status == "optimal":
        assert cut.objective == pytest.approx(plain.objective, rel=1e-6, abs=1e-9)


def _lp_bound(prob) -> float:
    binaries = [v for v in prob.variables() if v.cat == pulp.LpBinary or v.cat == pulp.LpInteger]
    for v in binaries:
        v.cat = pulp.LpContinuous
    try:
        res = solve(prob, time_limit=30)
    finally:
        for v in binaries:
            v.cat = pulp.LpInteger
    assert res.status == "optimal"
    return res.objective


def test_cuts_raise_the_root_bound_somewhere():
    # cuts never lower the LP bound, and on some of these models they strictly raise it
    raised = 0
    for seed in range(6):
        _, _, _, _, form = _tight_form(seed)
        before = _lp_bound(form.prob)
        add_ideal_cuts(form, rounds=20)
        after = _lp_bound(form.prob)
        assert after >= before - 1e-7
        raised += after > before + 1e-6
    assert raised >= 1
