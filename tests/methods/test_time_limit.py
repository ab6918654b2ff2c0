"""The time limit is a limit (issue 15): an instance that cannot be solved in time returns a
``time_limit`` row — never an exception — whose time_s, everything included (heuristic, ball bounds,
relaxation tightening, search, MILP, verification), stays within the limit plus a small slack.

The slack asserted (2 s) is what the issue asks for; on the code before this change the tight
pipeline took 4-8 s at a 1 s limit on DNN5 image 1 (its tightening and its searches each took their
own time), and the heuristic 7 s at 2 s on the ERAN 6x100 net (benchmarks/overrun_bench.py records
the overrun over a batch)."""

from dataclasses import replace

import numpy as np
import pytest

from advmilp.bounds.compute import compute_bounds, get_bounds
from advmilp.methods.registry import MethodInputs, run_method
from advmilp.methods.tight import DEFAULT_POLICY, run_tight
from advmilp.nn.interchange import load_any
from advmilp.nn.network import load_network
from advmilp.spec.problems import ProblemSpec, SolverSettings
from advmilp.spec.rows import TIME_LIMIT

from tests.nets import REPO

SLACK = 2.0
ERAN = REPO.parent / "shared" / "external" / "eran_mlp_via_abcrown" / "mnist_6_100_nat.onnx"


@pytest.fixture(scope="module")
def dnn5():
    net = load_network("dnn5")
    return net, get_bounds(net, "improved", warn=lambda m: None)[0]


@pytest.mark.parametrize("phase_search", [True, False])
def test_tight_on_a_hard_instance_stops_at_the_limit_with_its_incumbent(dnn5, mnist_test, phase_search):
    net, bounds = dnn5
    limit = 1.0
    policy = replace(DEFAULT_POLICY, phase_search=phase_search)
    res = run_tight(net, bounds, ProblemSpec(), SolverSettings(time_limit=limit), mnist_test.images[1],
                    int(mnist_test.labels[1]), 1, policy=policy)
    row = res.row
    assert row["status"] == TIME_LIMIT
    assert row["time_s"] <= limit + SLACK
    assert row["time_limit"] == limit            # the row records the user's limit, not a share of it
    assert row["verified"] and res.witness is not None


def test_milp_on_a_hard_instance_stops_at_the_limit(dnn5, mnist_test):
    net, _ = dnn5
    limit = 1.0
    res = run_method("milp", net, compute_bounds(net, "basic"), ProblemSpec(), SolverSettings(time_limit=limit),
                     mnist_test.images[1], int(mnist_test.labels[1]), 1)
    assert res.row["status"] == TIME_LIMIT
    assert res.row["time_s"] <= limit + SLACK
    assert res.row["time_s"] >= res.row["build_time_s"]     # time_s counts the build too


@pytest.mark.skipif(not ERAN.is_file(), reason="../shared/external (ERAN 6x100) not present")
@pytest.mark.parametrize("method", ["tight", "fast", "cdh"])
def test_every_method_stops_at_the_limit_on_a_large_network(method, mnist_test):
    net = load_any(str(ERAN))
    limit = 2.0
    masks = np.full((10, net.n_inputs), 0.5) if method == "cdh" else None
    res = run_method(method, net, compute_bounds(net, "basic"), ProblemSpec(), SolverSettings(time_limit=limit),
                     mnist_test.images[0], int(mnist_test.labels[0]), 0, MethodInputs(masks=masks))
    assert res.row["time_s"] <= limit + SLACK
