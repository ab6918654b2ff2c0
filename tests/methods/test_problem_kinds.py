"""Untargeted and max-target problems on the fast engine (`tight`: heuristic, ball bounds, one phase
search per winning class) equal the thesis-style MILP: by hand on 2-unit networks, and on random
16-8-6-3 networks against the thesis model (`milp`)."""

import math

import numpy as np
import pytest

from advmilp.bounds.compute import interval_bounds
from advmilp.errors import AdvmilpError
from advmilp.spec.problems import input_box
from advmilp.methods.milp import run_instance
from advmilp.methods.registry import MethodInputs, run_method
from advmilp.search.disjunction import search_disjunction
from advmilp.search.options import SearchOptions
from advmilp.search.problems import distance_problem, output_problem
from advmilp.spec.problems import ProblemSpec, SolverSettings, criteria

from tests.nets import random_net

SETTINGS = SolverSettings(time_limit=60)


def test_max_target_by_hand(identity_net):
    # y = x, x̄ = (.8, .2), label 0.  Maximise y1 with Σ|δ| ≤ .7 − m and y0 ≤ .95·y1 − m, y1 ≥ ε + m:
    # all the budget on x1 (x1 = .9 − m) meets .8 ≤ .95·(.9 − m) − m, so the optimum is .9 − m.
    x_bar = np.array([0.8, 0.2])
    spec = ProblemSpec("max-target", target=1, l1_budget=0.7)
    box = interval_bounds(identity_net)
    for name in ("milp", "tight"):
        res = run_method(name, identity_net, box, spec, SETTINGS, x_bar, 0, 0, MethodInputs())
        assert res.row["status"] == "optimal" and res.solved, name
        assert res.row["objective"] == pytest.approx(0.9 - spec.margin, abs=1e-6), name
        assert res.row["l1"] <= 0.7


def test_max_target_without_a_misclassified_point_is_infeasible(identity_net):
    # the least distance to misclassify x̄ = (.8, .2) is .61 + m (see test_registry): a budget of .5 has none
    spec = ProblemSpec("max-target", target=1, l1_budget=0.5)
    res = run_method("tight", identity_net, interval_bounds(identity_net), spec, SETTINGS, np.array([0.8, 0.2]), 0, 0,
                     MethodInputs())
    assert res.row["status"] == "infeasible" and not res.solved and res.witness is None


def _instance(seed):
    net = random_net([16, 8, 6, 3], seed=seed, scale=2.5)
    x_bar = np.random.default_rng(seed).random(16)
    return net, x_bar, int(net.predict(x_bar))


@pytest.mark.parametrize("seed", range(5))
def test_untargeted_equals_the_thesis_model(seed):
    net, x_bar, label = _instance(seed)
    spec = ProblemSpec("untargeted")
    box = interval_bounds(net)
    plain = run_instance(net, box, spec, SETTINGS, x_bar, label, 0)
    fast = run_method("tight", net, box, spec, SETTINGS, x_bar, label, 0, MethodInputs())
    assert fast.row["solver"] in ("advmilp-phase-bb", "highs") and fast.row["problem"] == spec.describe()
    if plain.row["status"] == "infeasible":
        assert fast.row["status"] in ("infeasible", "not_found") and not fast.solved
        return
    assert plain.row["status"] == fast.row["status"] == "optimal" and fast.solved
    assert fast.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4, abs=1e-6)
    assert fast.row["predicted"] != label


@pytest.mark.parametrize("seed", range(5))
def test_max_target_equals_the_thesis_model(seed):
    net, x_bar, label = _instance(seed)
    spec = ProblemSpec("max-target", target=(label + 1) % 3, l1_budget=2.0)
    box = interval_bounds(net)
    plain = run_instance(net, box, spec, SETTINGS, x_bar, label, 0)
    fast = run_method("tight", net, box, spec, SETTINGS, x_bar, label, 0, MethodInputs())
    assert plain.row["status"] == fast.row["status"], (plain.row["message"], fast.row["message"])
    if plain.row["status"] == "optimal":
        assert fast.solved and fast.row["l1"] <= 2.0
        assert fast.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4, abs=1e-6)
        y = net.forward(fast.witness)
        assert max(y[spec.target], 0.0) == pytest.approx(fast.row["objective"], rel=1e-9, abs=1e-12)


def _untargeted_disjunction(seed):
    """(network, box bounds, the untargeted problem's conjunctions, their search run to the end)."""
    net, x_bar, label = _instance(seed)
    spec = ProblemSpec("untargeted", output_relu=False)
    box = interval_bounds(net)
    lo, up = input_box(spec, 16, x_bar)
    problems = [distance_problem(net, spec, x_bar, label, lo, up, c) for c in criteria(spec, label, 3)]
    return net, box, problems, search_disjunction(net, box, problems)


@pytest.mark.parametrize("seed", range(3))
def test_disjunction_bounds_are_valid_when_stopped_early(seed):
    """Under node limits the disjunctive search's bound never exceeds the optimum (untargeted)."""
    net, box, problems, full = _untargeted_disjunction(seed)
    if full.status == "infeasible":
        return
    assert full.status == "optimal"
    for k in (1, 2, 4):
        early = search_disjunction(net, box, problems, options=SearchOptions(max_nodes=k))
        assert early.bound <= full.objective * (1 + 1e-6) + 1e-9
        if early.x is not None:
            assert early.objective >= full.objective * (1 - 1e-6) - 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_a_disjunction_stops_at_the_first_point_that_reaches_stop_at(seed):
    """With stop_at +inf (max-target's "is there any point within the budget"), the first verified point of
    any conjunction ends the whole search: status found, a point the exact check accepts, fewer nodes."""
    from dataclasses import replace

    net, box, problems, full = _untargeted_disjunction(seed)
    first = search_disjunction(net, box, [replace(p, stop_at=math.inf) for p in problems])
    if full.status == "infeasible":
        assert first.status == "infeasible"
        return
    assert first.status == "found" and first.x is not None and problems[0].evaluate(first.x)[0]
    assert first.objective >= full.objective * (1 - 1e-6) - 1e-9 and first.nodes <= full.nodes


def _shifted_net():
    """2 inputs → 2 ReLU units (identity) → outputs (x0, x1, x1 − 1): output 2 is negative on the box but at x1 = 1."""
    from advmilp.nn.network import Network

    W2 = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    return Network.from_arrays([np.eye(2), W2], [np.zeros(2), np.array([0.0, 0.0, -1.0])])


def test_max_target_with_an_output_relu_is_zero_where_the_logit_stays_negative():
    # x̄ = (.8, .2), label 0, budget .7: misclassified points need x1 ≥ .61 + m (test_registry's distance),
    # and x1 ≤ .9 − m, so y2 = x1 − 1 ≤ −.1 − m: after the output ReLU every such point is worth 0.
    net, x_bar = _shifted_net(), np.array([0.8, 0.2])
    for relu, optimum in ((True, 0.0), (False, -0.1 - 1e-4)):
        spec = ProblemSpec("max-target", target=2, l1_budget=0.7, output_relu=relu)
        for name in ("milp", "tight") if relu else ("tight",):
            res = run_method(name, net, interval_bounds(net), spec, SETTINGS, x_bar, 0, 0, MethodInputs())
            assert res.row["status"] == "optimal" and res.solved, (name, relu)
            assert res.row["objective"] == pytest.approx(optimum, abs=1e-6), (name, relu)
            assert res.row["bound"] == pytest.approx(optimum, abs=1e-6), (name, relu)
            assert res.row["l1"] <= 0.7 and net.predict(res.witness) != 0


def test_output_problem_with_relu_values_a_negative_logit_at_zero():
    net, x_bar = _shifted_net(), np.array([0.8, 0.2])
    spec = ProblemSpec("max-target", target=2, l1_budget=0.7, output_relu=False)
    criterion = criteria(spec, 0, 3)[0]
    point = np.array([0.8, 0.89])                 # y = (.8, .89, −.11): class 1 wins, within the budget
    plain = output_problem(net, spec, x_bar, 0, np.zeros(2), np.ones(2), criterion)
    clamped = output_problem(net, spec, x_bar, 0, np.zeros(2), np.ones(2), criterion, relu=True)
    assert plain.evaluate(point)[0] and plain.evaluate(point)[1] == pytest.approx(0.11)
    assert clamped.evaluate(point)[0] and clamped.evaluate(point)[1] == 0.0


def test_output_problem_counts_only_points_within_the_budget(identity_net):
    spec = ProblemSpec("max-target", target=1, l1_budget=0.7, output_relu=False)
    x_bar = np.array([0.8, 0.2])
    (criterion,) = criteria(spec, 0, 2)
    problem = output_problem(identity_net, spec, x_bar, 0, np.zeros(2), np.ones(2), criterion)
    ok, value, _ = problem.evaluate(np.array([0.8, 1.0]))      # misclassified, but Σ|δ| = .8 > .7
    assert not ok
    ok, value, _ = problem.evaluate(np.array([0.8, 0.89]))     # Σ|δ| = .69, .8 ≤ .95·.89
    assert ok and value == pytest.approx(-0.89)
    assert math.isinf(problem.stop_at)


# ---- norms: minimal L∞ and L0 distances, caps on the others ------------------------------------------
def _run(name, net, spec, x_bar=np.array([0.8, 0.2]), label=0):
    return run_method(name, net, interval_bounds(net), spec, SETTINGS, x_bar, label, 0, MethodInputs())


def test_linf_by_hand(identity_net):
    # y = x, x̄ = (.8, .2).  Targeted 1: .2 + t ≥ 1.2·(.8 − t) + m  →  t = (.76 + m) / 2.2; untargeted:
    # .8 − t ≤ .95·(.2 + t) − m  →  t = (.61 + m) / 1.95.
    m = ProblemSpec().margin
    for spec, opt in ((ProblemSpec("targeted", target=1, norm="linf"), (0.76 + m) / 2.2),
                      (ProblemSpec("untargeted", norm="linf"), (0.61 + m) / 1.95)):
        for name in ("milp", "tight"):
            res = _run(name, identity_net, spec)
            assert res.row["status"] == "optimal" and res.solved, (name, spec.describe())
            assert res.row["objective"] == pytest.approx(opt, abs=1e-6), (name, spec.describe())
            assert res.row["linf"] == pytest.approx(opt, abs=1e-6)
            assert "norm linf" in res.row["problem"]


def test_linf_with_an_l1_cap_by_hand(identity_net):
    # Σ|δ| ≤ .68 − m rules out the symmetric move (Σ = .691): with a + b = .68 − m and a + 1.2·b ≥ .76 + m
    # the least max(a, b) is b = .4 + 10·m
    m = ProblemSpec().margin
    spec = ProblemSpec("targeted", target=1, norm="linf", l1_cap=0.68)
    for name in ("milp", "tight"):
        res = _run(name, identity_net, spec)
        assert res.row["status"] == "optimal" and res.solved, name
        assert res.row["objective"] == pytest.approx(0.4 + 10 * m, abs=1e-6), name
        assert res.row["l1"] <= 0.68


def test_l0_by_hand(identity_net):
    # one pixel suffices (x1 → 1: 1 ≥ 1.2·.8 + m), none does not: the optimum is 1 changed pixel
    spec = ProblemSpec("targeted", target=1, norm="l0")
    m = spec.margin
    for name in ("milp", "tight"):
        res = _run(name, identity_net, spec)
        assert res.row["status"] == "optimal" and res.solved, name
        assert res.row["objective"] == pytest.approx(1.0, abs=1e-6) and res.row["bound"] == pytest.approx(1.0), name
        assert np.count_nonzero(res.witness - np.array([0.8, 0.2])) == 1, name
        # the least max|δ| moving one pixel only: x0 down to (.2 − m) / 1.2 (x1 up would take .76 + m), where
        # both pixels may move by (.76 + m) / 2.2
        capped = _run(name, identity_net, ProblemSpec("targeted", target=1, norm="linf", l0_cap=1))
        assert capped.solved and capped.row["objective"] == pytest.approx(0.8 - (0.2 - m) / 1.2, abs=1e-6), name
        assert np.count_nonzero(capped.witness - np.array([0.8, 0.2])) == 1, name


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ("targeted", "untargeted"))
def test_l0_on_the_fast_engine_equals_the_thesis_style_milp(seed, kind):
    """`tight` (the L1 problem first: its bound b gives L0 ≥ ⌈b⌉, its point an incumbent; then the MILP
    with pixel binaries over the L1 ball of the incumbent's count − 1) proves the MILP's optimum."""
    net, x_bar, label = _instance(seed)
    spec = ProblemSpec(kind, target=(label + 1) % 3 if kind == "targeted" else None, norm="l0")
    plain = _run("milp", net, spec, x_bar, label)
    fast = _run("tight", net, spec, x_bar, label)
    assert plain.row["status"] in ("optimal", "infeasible")
    assert fast.row["status"] == plain.row["status"]
    if plain.row["status"] == "optimal":
        assert fast.solved and fast.row["objective"] == pytest.approx(plain.row["objective"], abs=1e-6)
        assert fast.row["bound"] == fast.row["objective"]
        assert np.count_nonzero(fast.witness - x_bar) == fast.row["objective"]


@pytest.mark.parametrize("seed", range(3))
def test_an_l0_cap_on_the_fast_engine_equals_the_thesis_style_milp(seed):
    net, x_bar, label = _instance(seed)
    for cap in (1, 2, 4):
        spec = ProblemSpec("targeted", target=(label + 1) % 3, l0_cap=cap)
        plain = _run("milp", net, spec, x_bar, label)
        fast = _run("tight", net, spec, x_bar, label)
        assert fast.row["status"] == plain.row["status"], cap
        if plain.row["status"] == "optimal":
            assert fast.solved and fast.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4, abs=1e-6)
            assert np.count_nonzero(fast.witness - x_bar) <= cap


@pytest.mark.parametrize("seed", range(3))
def test_linf_equals_the_thesis_style_milp(seed):
    net, x_bar, label = _instance(seed)
    spec = ProblemSpec("targeted", target=(label + 1) % 3, norm="linf")
    plain = _run("milp", net, spec, x_bar, label)
    fast = _run("tight", net, spec, x_bar, label)
    assert plain.row["status"] == fast.row["status"]
    if plain.row["status"] == "optimal":
        assert fast.solved and fast.row["objective"] == pytest.approx(plain.row["objective"], rel=1e-4, abs=1e-6)


def test_norms_are_for_distance_problems():
    with pytest.raises(AdvmilpError, match="norm is for the targeted and untargeted"):
        ProblemSpec("max-target", target=1, norm="linf")
    with pytest.raises(AdvmilpError, match="norm must be one of l1, linf, l0"):
        ProblemSpec(norm="l2")


def test_a_max_target_search_out_of_time_without_a_point_reports_its_bound():
    """DNN5 test image 56, output 7: the phase search finds no point in 300 s (benchmarks/RESULTS.md);
    given 3 s, the row is a time limit with the search's nodes and proven bound, not 'before the solve'."""
    from tests.nets import mnist_dir

    data = mnist_dir()
    if data is None:
        pytest.skip("MNIST not found")
    from advmilp.bounds.compute import find_cached
    from advmilp.data.mnist import load_split
    from advmilp.nn.network import load_network

    net = load_network("dnn5")
    test = load_split("test", data, rows=slice(56, 57))
    res = run_method("tight", net, find_cached(net, "weak"), ProblemSpec("max-target", target=7),
                     SolverSettings(time_limit=3), test.images[0], int(test.labels[0]), 56, MethodInputs())
    assert res.row["status"] == "time_limit" and res.witness is None
    assert "before the solve" not in str(res.row["message"]) and res.row["nodes"] > 0
    assert math.isfinite(res.row["bound"]) and res.row["bound"] > 0


@pytest.mark.parametrize("problem, target", [("untargeted", None), ("max-target", 3)])
def test_untargeted_and_max_target_on_dnn1_equal_the_thesis_model(problem, target):
    """Issue 18 §1 on a shipped network: DNN1 test image 0, the fast engine against the thesis-style MILP
    (improved bounds), both proven optimal (2.99759 and 14.1778 when measured)."""
    from advmilp.api import attack

    from tests.nets import mnist_dir

    data = mnist_dir()
    if data is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    fast = attack("dnn1", 0, problem=problem, target=target, method="tight", bounds="improved", time_limit=120,
                  data_dir=data)
    plain = attack("dnn1", 0, problem=problem, target=target, method="milp", bounds="improved", time_limit=120,
                   data_dir=data)
    assert fast.status == plain.status == "optimal" and fast.solved and plain.solved
    assert fast.objective == pytest.approx(plain.objective, rel=1e-4)
