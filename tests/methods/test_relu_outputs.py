"""Networks with a ReLU on the outputs (issue 15): the independent CPLEX replication ships its networks
that way.  Every method accepts them, the exact methods find the same optimum as on the same weights
with a linear output layer (the criteria with y_d ≥ ε > 0 are the same on the ReLU'd outputs as on the
logits), and what reads the outputs uses the output layer's own activation."""

from dataclasses import replace

import numpy as np
import pytest

from advmilp.bounds.compute import interval_bounds
from advmilp.methods.cdh import run_cdh
from advmilp.methods.milp import run_instance
from advmilp.methods.registry import MethodInputs, run_method
from advmilp.methods.tight import DEFAULT_POLICY, run_tight
from advmilp.nn.interchange import load_any
from advmilp.nn.network import Network
from advmilp.spec.problems import ProblemSpec, SolverSettings
from advmilp.spec.rows import OPTIMAL

from tests.nets import REPO

SETTINGS = SolverSettings(time_limit=60.0)
FJ = REPO.parent / "shared" / "external" / "fj_replication_tim25432" / "onnx"


def twins(seed: int) -> tuple[Network, Network]:
    """The same random 10-8-6-4 weights with a linear and with a ReLU output layer."""
    rng = np.random.default_rng(seed)
    sizes = [10, 8, 6, 4]
    Ws = [rng.normal(0, 2.0 / np.sqrt(m), size=(n, m)) for m, n in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, 0.1, size=n) + (0.5 if k == 2 else 0.0) for k, n in enumerate(sizes[1:])]
    linear = Network.from_arrays(Ws, bs, metadata={"architecture": f"twin{seed}"})
    relu = Network.from_arrays(Ws, bs, activations=["relu"] * 3, metadata={"architecture": f"twin{seed}_reluout"})
    return linear, relu


def instance(net: Network, seed: int):
    rng = np.random.default_rng(100 + seed)
    x_bar = rng.random(net.n_inputs)
    label = int(net.predict(x_bar))
    return x_bar, label, ProblemSpec("targeted", target=(label + 1) % net.n_outputs, ratio=1.1)


@pytest.mark.parametrize("seed", [2, 3, 4])      # instances with an adversarial point in the box
def test_exact_methods_find_the_same_optimum_with_and_without_the_output_relu(seed):
    linear, relu = twins(seed)
    x_bar, label, spec = instance(linear, seed)
    optima = []
    for net in (linear, relu):
        b = interval_bounds(net)
        for s in (spec, spec.with_(output_relu=False)):
            row = run_instance(net, b, s, SETTINGS, x_bar, label, 0).row
            assert row["status"] == OPTIMAL and row["verified"]
            optima.append(row["objective"])
        for policy in (DEFAULT_POLICY, replace(DEFAULT_POLICY, phase_search=False)):
            row = run_tight(net, b, spec, SETTINGS, x_bar, label, 0, policy=policy).row
            assert row["status"] == OPTIMAL and row["verified"]
            optima.append(row["objective"])
    assert optima == pytest.approx([optima[0]] * len(optima), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_inference_and_feature_checks_read_the_output_layers_activation(seed):
    """With --linear-output the model's outputs are the output layer's own activation (here a ReLU):
    the checks must compare with that, not with the raw logits."""
    _, relu = twins(seed)
    x_bar, _, _ = instance(relu, seed)
    b = interval_bounds(relu)
    row = run_instance(relu, b, ProblemSpec("inference", output_relu=False), SETTINGS, x_bar, 0, 0).row
    assert row["verified"], row["verify_note"]
    for unit in range(relu.n_outputs):
        spec = ProblemSpec("feature", objective="diff", unit=unit, output_relu=False)
        row = run_instance(relu, b, spec, SETTINGS).row
        assert row["verified"], row["verify_note"]


def test_cdh_attacks_the_target_the_problem_names():
    """The cdh method used to ignore an explicit --target (it attacked label + 5)."""
    hits = 0
    for seed in range(6):
        linear, relu = twins(seed)
        for net in (linear, relu):
            x_bar, label, spec = instance(net, seed)
            spec = spec.with_(target=(label + 2) % net.n_outputs)      # not label + 5 (mod 4)
            masks = np.full((net.n_outputs, net.n_inputs), 0.5)
            res = run_cdh(net, interval_bounds(net), spec, SETTINGS, x_bar, label, 0, masks=masks)
            assert res.row["target"] == spec.target
            if res.row["status"] == "found":
                assert res.row["predicted"] == spec.target and res.row["verified"]
                hits += 1
    assert hits > 0


@pytest.mark.skipif(not FJ.is_dir(), reason="../shared/external (CPLEX replication) not present")
def test_replication_networks_with_output_relu_match_their_linear_twins(mnist_test):
    """DNN1 of the replication with and without the ReLU on its outputs (same weights), image 3 →
    target 1 (the issue's command): every method runs; tight proves the same optimum on both."""
    nets = [load_any(str(FJ / f"DNN1_8_8_8{suffix}.onnx")) for suffix in ("", "_reluout")]
    assert nets[1].layers[-1].act.piecewise and not nets[0].layers[-1].act.piecewise
    x_bar, label = mnist_test.images[3], int(mnist_test.labels[3])
    spec = ProblemSpec("targeted", target=1)
    masks = np.full((10, 784), 0.5)
    rows = {}
    for net in nets:
        b = interval_bounds(net)
        for method in ("tight", "fast", "cdh"):
            rows[net.name, method] = run_method(method, net, b, spec, SETTINGS, x_bar, label, 3,
                                                MethodInputs(masks=masks)).row
        rows[net.name, "milp"] = run_method("milp", net, b, spec, SolverSettings(time_limit=2.0), x_bar, label, 3).row
    for method in ("tight", "fast", "cdh", "milp"):
        a, r = rows[nets[0].name, method], rows[nets[1].name, method]
        assert a["status"] == r["status"] and a["target"] == r["target"] == 1
        assert a["objective"] == pytest.approx(r["objective"], rel=1e-6, nan_ok=True)
    assert rows[nets[1].name, "tight"]["status"] == OPTIMAL
