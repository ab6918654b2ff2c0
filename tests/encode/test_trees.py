"""The tree-ensemble MILP: hand-computed optima, the model at a fixed input, brute force on small ensembles."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from advmilp.encode.trees import build_tree_model, down32, up32
from advmilp.errors import AdvmilpError
from advmilp.solvers.pulp import solve
from tests.trees_material import hand_tree, random_forest, random_gbt

X_BAR = np.array([0.2, 0.1])


def _solve(form):
    res = solve(form.prob, "highs", 30, 1e-9, 1)
    assert res.status == "optimal"
    return res


def test_float32_neighbours():
    for t in (0.3, 0.5, 0.123456789, 1 / 3):
        assert up32(t) > t and down32(t) <= t
        assert np.float32(up32(t)) == up32(t) and np.float32(down32(t)) == down32(t)
        assert float(np.float32(up32(t))) > t and float(np.float32(down32(t))) <= t
        assert up32(t) - down32(t) < 1e-7


@pytest.mark.parametrize("kind", ["targeted", "untargeted"])
def test_hand_tree_minimal_l1_and_linf(kind):
    ens = hand_tree()
    # L1: move x1 from 0.1 above 0.5 → up32(0.5) − 0.1 ≈ 0.4 (the other way costs ≈ 0.3 + 0.2 = 0.5)
    res = _solve(build_tree_model(ens, X_BAR, kind, label=0, target=1, norm="l1"))
    assert res.objective == pytest.approx(up32(0.5) - 0.1, abs=1e-9)
    # L∞: x0 above 0.5 and x1 above 0.3 → max(up32(0.5) − 0.2, up32(0.3) − 0.1) ≈ 0.3 (the other way ≈ 0.4)
    form = build_tree_model(ens, X_BAR, kind, label=0, target=1, norm="linf")
    res = _solve(form)
    assert res.objective == pytest.approx(up32(0.5) - 0.2, abs=1e-5)   # d ≥ cost_f within HiGHS' tolerance
    x = form.input_point(res.values)
    assert x.tolist() == [up32(0.5), up32(0.3)]
    assert ens.predict(x) == 1 and ens.predict(x, np.float64) == 1
    assert np.abs(x - X_BAR).max() == pytest.approx(res.objective, abs=1e-12)


def test_hand_tree_linf_cap_removes_the_l1_optimum():
    ens = hand_tree()
    form = build_tree_model(ens, X_BAR, "targeted", label=0, target=1, norm="l1", linf_cap=0.35)
    res = _solve(form)
    assert res.objective == pytest.approx((up32(0.5) - 0.2) + (up32(0.3) - 0.1), abs=1e-9)
    assert form.fixed >= 1        # x1 > 0.5 is out of reach
    res = solve(build_tree_model(ens, X_BAR, "targeted", label=0, target=1, linf_cap=0.25).prob, "highs", 30)
    assert res.status == "infeasible"


def test_leaves_are_integral_and_the_model_at_a_fixed_input_reproduces_apply():
    rng = np.random.default_rng(5)
    for ens in (random_forest(11, n_trees=4, depth=3), random_gbt(12, stages=2, depth=3), hand_tree()):
        for _ in range(3):
            x = np.round(rng.random(ens.n_features) * 20) / 20
            form = build_tree_model(ens, x, "inference")
            res = _solve(form)
            assert res.objective == pytest.approx(0.0, abs=1e-12)
            np.testing.assert_array_equal(form.selected_leaves(res.values), ens.apply(x, np.float64))
            np.testing.assert_allclose(form.score_values(res.values), ens.scores(x, np.float64), atol=1e-9)
            for _, vs in form.leaves:
                vals = np.array([res.values[v.name] for v in vs])
                assert np.all(np.isclose(vals, 0, atol=1e-9) | np.isclose(vals, 1, atol=1e-9))


def _brute_force(ens, x_bar, kind, label, target, norm, margin):
    """Every combination of each feature's candidate values (x̄_f, down/up of every threshold)."""
    cands = []
    for f in range(ens.n_features):
        ts = {float(t.threshold[n]) for t in ens.trees for n in np.flatnonzero(t.feature == f)}
        cands.append(sorted({x_bar[f], *(down32(t) for t in ts), *(up32(t) for t in ts)}))
    best = np.inf
    for point in itertools.product(*cands):
        x = np.array(point)
        s = ens.scores(x, np.float64)
        others = np.delete(s, target if kind == "targeted" else label)
        ok = (s[target] - others.max() >= margin) if kind == "targeted" else (others.max() - s[label] >= margin)
        if ok:
            d = np.abs(x - x_bar)
            best = min(best, d.sum() if norm == "l1" else d.max())
    return best


@pytest.mark.parametrize("seed", range(4))
def test_optimum_equals_brute_force_on_small_ensembles(seed):
    rng = np.random.default_rng(seed)
    ens = random_forest(seed, n_trees=3, depth=2) if seed % 2 else random_gbt(seed, stages=1, depth=2)
    x_bar = np.round(rng.random(3) * 10) / 10
    label = int(ens.predict(x_bar, np.float64))
    target = (label + 1) % 3
    for kind, norm in itertools.product(("targeted", "untargeted"), ("l1", "linf")):
        expected = _brute_force(ens, x_bar, kind, label, target, norm, 1e-4)
        form = build_tree_model(ens, x_bar, kind, label, target, norm, margin=1e-4)
        res = solve(form.prob, "highs", 30, 1e-9, 1)
        if not np.isfinite(expected):
            assert res.status == "infeasible"
            continue
        assert res.status == "optimal"
        assert res.objective == pytest.approx(expected, abs=1e-5), (kind, norm)   # the solver's tolerance
        x = form.input_point(res.values)
        d = np.abs(x - x_bar)
        assert (d.sum() if norm == "l1" else d.max()) == pytest.approx(expected, abs=1e-7)


def test_bad_arguments_are_refused():
    ens = hand_tree()
    with pytest.raises(AdvmilpError, match="unknown problem"):
        build_tree_model(ens, X_BAR, "max-target", 0, 1)
    with pytest.raises(AdvmilpError, match="unknown norm"):
        build_tree_model(ens, X_BAR, "targeted", 0, 1, norm="l2")
    with pytest.raises(AdvmilpError, match="features"):
        build_tree_model(ens, np.zeros(3), "targeted", 0, 1)
