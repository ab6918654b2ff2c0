"""The MILP against hand-computed optima and against Network.forward."""

import numpy as np
import pytest

from advmilp.methods.milp import SolverSettings, run_instance
from advmilp.bounds.compute import compute_bounds, interval_bounds
from advmilp.encode.milp import build_model
from advmilp.nn.network import load_network
from advmilp.spec.problems import ProblemSpec
from advmilp.solvers.pulp import solve

from tests.nets import SHIPPED, random_net

FAST = SolverSettings(time_limit=60)


def run(net, spec, x_bar, label, bounds=None):
    bounds = bounds or interval_bounds(net)
    return run_instance(net, bounds, spec, FAST, np.asarray(x_bar, float), label, 0)


@pytest.mark.parametrize("output_relu", [True, False])
def test_targeted_identity_net_hand_optimum(identity_net, output_relu):
    # x̄ = (0.8, 0.2) → y = (0.8, 0.2), label 0; target 1 needs y1 − 1.2·y0 ≥ margin.
    # Lowering x0 by a buys 1.2 per unit of L1, raising x1 only 1: a = (0.76 + m) / 1.2.
    spec = ProblemSpec("targeted", target=1, output_relu=output_relu)
    r = run(identity_net, spec, [0.8, 0.2], 0)
    assert r.row["status"] == "optimal" and r.row["verified"]
    expected = (0.76 + spec.margin) / 1.2
    assert r.row["objective"] == pytest.approx(expected, abs=1e-6)
    assert r.row["l1"] == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(r.witness, [0.8 - expected, 0.2], atol=1e-6)
    assert r.row["predicted"] == 1


def test_untargeted_identity_net_hand_optimum(identity_net):
    # label 0: need y0 ≤ 0.95·y1 − m:  0.8 − a ≤ 0.95·(0.2 + c) − m; cheapest is a = 0.61 + m.
    spec = ProblemSpec("untargeted")
    r = run(identity_net, spec, [0.8, 0.2], 0)
    assert r.row["status"] == "optimal" and r.row["verified"]
    assert r.row["objective"] == pytest.approx(0.61 + spec.margin, abs=1e-6)


def test_targeted_threshold_net_needs_the_relu(threshold_net):
    # y1 = 4·relu(x0 − 0.5) must reach 1.2·0.5 + m → x0 = 0.65 + m/4, from x̄0 = 0.3.
    spec = ProblemSpec("targeted", target=1)
    r = run(threshold_net, spec, [0.3, 0.9], 0)
    assert r.row["status"] == "optimal" and r.row["verified"]
    assert r.row["objective"] == pytest.approx(0.35 + spec.margin / 4, abs=1e-6)
    assert r.witness[1] == pytest.approx(0.9)


def test_linf_cap_makes_it_infeasible(threshold_net):
    spec = ProblemSpec("targeted", target=1, linf_cap=0.1)   # x0 can reach 0.4 < 0.65
    r = run(threshold_net, spec, [0.3, 0.9], 0)
    assert r.row["status"] == "infeasible"
    assert not r.row["verified"] and r.witness is None


def test_max_target_respects_budget(identity_net):
    # maximise y1 with L1 ≤ 0.7 − m and y0 ≤ 0.95·y1: all of it on x1 → y1 = 0.9 − m (0.8 ≤ 0.95·0.9 holds).
    spec = ProblemSpec("max-target", target=1, l1_budget=0.7)
    r = run(identity_net, spec, [0.8, 0.2], 0)
    assert r.row["status"] == "optimal" and r.row["verified"]
    assert r.row["objective"] == pytest.approx(0.9 - spec.margin, abs=1e-6)
    assert r.row["l1"] <= 0.7


def test_feature_hidden_and_output(threshold_net, identity_net):
    r = run_instance(threshold_net, interval_bounds(threshold_net),
                     ProblemSpec("feature", layer=1, unit=0), FAST)
    assert r.row["status"] == "optimal" and r.row["objective"] == pytest.approx(0.5)
    # diff objective on identity: max y0 − y1 = 1 at x = (1, 0)
    r = run_instance(identity_net, interval_bounds(identity_net),
                     ProblemSpec("feature", objective="diff", unit=0), FAST)
    assert r.row["objective"] == pytest.approx(1.0) and r.row["verified"]
    np.testing.assert_allclose(r.witness, [1.0, 0.0], atol=1e-7)


def test_stable_units_get_no_binary(identity_net):
    # identity net over [0.5, 1]^2: every unit provably active -> no binaries at all
    b = interval_bounds(identity_net, 0.5, 1.0)
    form = build_model(identity_net, b, ProblemSpec("targeted", target=1), np.array([0.9, 0.6]), 0,
                       lb0=0.5, ub0=1.0)
    assert form.n_binaries == 0
    b = interval_bounds(identity_net, 0.0, 1.0)   # U > 0, L = 0 → still stable (L ≥ 0)
    assert build_model(identity_net, b, ProblemSpec("targeted", target=1, output_relu=False),
                       np.array([0.9, 0.6]), 0).n_binaries == 0
    net = random_net([4, 3, 2], seed=5)
    b = interval_bounds(net)
    unstable = sum(1 for lo, up in zip(b.lower[0], b.upper[0]) if lo < 0 < up)
    form = build_model(net, b, ProblemSpec("targeted", target=1, output_relu=False), np.full(4, 0.5), 0)
    assert form.n_binaries == unstable


def test_warm_start_assignment_is_feasible():
    net = random_net([6, 5, 4, 3], seed=2)
    b = interval_bounds(net)
    x_bar = np.full(6, 0.5)
    label = int(net.predict(x_bar))
    target = (label + 1) % 3
    form = build_model(net, b, ProblemSpec("targeted", target=target, ratio=1.0), x_bar, label)
    res = solve(form.prob, time_limit=30)
    assert res.status == "optimal"
    x = form.input_point(res.values)
    form2 = build_model(net, b, ProblemSpec("targeted", target=target, ratio=1.0), x_bar, label)
    res2 = solve(form2.prob, time_limit=30, warm_start=form2.assignment(x))
    assert res2.status == "optimal" and res2.objective == pytest.approx(res.objective, rel=1e-6)


@pytest.mark.parametrize("name", SHIPPED)
def test_inference_equals_forward_on_real_images(name, mnist_test):
    net = load_network(name)
    bounds = compute_bounds(net, "basic")
    for i in range(20):
        x = mnist_test.images[i]
        for output_relu in (True, False):
            spec = ProblemSpec("inference", output_relu=output_relu)
            form = build_model(net, bounds, spec, x, int(mnist_test.labels[i]))
            res = solve(form.prob, time_limit=30)
            assert res.status == "optimal"
            out = np.array([res.values[u.a.name] if u.a is not None else 0.0 for u in form.outputs])
            ref = net.forward(x)
            ref = np.maximum(ref, 0) if output_relu else ref
            np.testing.assert_allclose(out, ref, atol=1e-6)


def test_dnn1_real_image_optimal_verified_and_tiny_cap_infeasible(mnist_test):
    net = load_network("dnn1")
    x_bar, label = mnist_test.images[0], int(mnist_test.labels[0])
    b = compute_bounds(net, "basic")
    r = run_instance(net, b, ProblemSpec("targeted"), SolverSettings(time_limit=120), x_bar, label, 0)
    assert r.row["status"] == "optimal" and r.row["verified"]
    assert r.row["l1"] == pytest.approx(r.row["objective"], rel=1e-6)
    assert int(net.predict(r.witness)) == (label + 5) % 10
    r = run_instance(net, b, ProblemSpec("targeted", linf_cap=0.001), SolverSettings(time_limit=60), x_bar, label, 0)
    assert r.row["status"] == "infeasible" and r.witness is None
