"""The Python API: advmilp.load_network / advmilp.attack on a hand-built network with a known optimum,
on the shipped DNN1, the README's example as written, and `import advmilp` staying light."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import advmilp
from advmilp.errors import AdvmilpError

from tests.nets import REPO, mnist_dir

# The README's "Python API" example, verbatim, and what it prints.
README_EXAMPLE = '''\
import advmilp

net = advmilp.load_network("dnn1")
result = advmilp.attack(net, 0, time_limit=60)    # MNIST test image 0, from $ADVMILP_DATA
print(result.status, result.verified, f"{result.objective:.5f}")
print("label", result.row["label"], "-> target", result.row["target"], "-> predicted", result.row["predicted"])
'''
README_OUTPUT = "optimal True 4.97822\nlabel 7 -> target 2 -> predicted 2\n"


def test_import_is_light_and_leaves_the_environment_alone():
    code = ("import os, sys, advmilp; "
            "print(sorted(m for m in ('pulp', 'highspy', 'tensorflow', 'keras', 'pandas') if m in sys.modules), "
            "'OPENBLAS_NUM_THREADS' in os.environ, callable(advmilp.attack))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, env=env)
    assert out.stdout.split() == ["[]", "False", "True"]


@pytest.mark.parametrize("method", ["tight", "milp"])
def test_attack_on_a_hand_built_network(identity_net, method):
    # x̄ = (0.8, 0.2): the network predicts 0 (the default label); target 1 needs y1 − 1.2·y0 ≥ margin,
    # cheapest by lowering x0 (1.2 per unit of L1): L1 = (0.76 + 1e-4) / 1.2 (tests/encode/test_milp.py).
    r = advmilp.attack(identity_net, [0.8, 0.2], target=1, method=method, time_limit=30)
    expected = (0.76 + 1e-4) / 1.2
    assert r.status == "optimal" and r.verified and r.solved
    assert r.objective == pytest.approx(expected, abs=1e-6) and r.l1 == pytest.approx(expected, abs=1e-6)
    assert r.bound == pytest.approx(expected, abs=1e-5) and r.gap_pct < 0.01
    np.testing.assert_allclose(r.witness, [0.8 - expected, 0.2], atol=1e-6)
    assert r.linf == pytest.approx(expected, abs=1e-6) and r.time_s > 0
    assert r.row["label"] == 0 and r.row["target"] == 1 and r.row["predicted"] == 1 and r.row["method"] == method
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.status = "x"


def test_attack_label_and_problem_keywords(identity_net):
    # label given as 1 (against the prediction): untargeted asks y1 ≤ 0.95·y0 − m, already true at x̄
    r = advmilp.attack(identity_net, np.array([0.8, 0.2]), label=1, problem="untargeted", method="milp")
    assert r.status == "optimal" and r.objective == pytest.approx(0.0, abs=1e-6) and r.verified


def test_attack_refuses_bad_arguments(identity_net):
    with pytest.raises(AdvmilpError, match="unknown method"):
        advmilp.attack(identity_net, [0.8, 0.2], target=1, method="warp")
    with pytest.raises(AdvmilpError, match="3 pixels, the network 2 inputs"):
        advmilp.attack(identity_net, [0.8, 0.2, 0.1], target=1)
    with pytest.raises(AdvmilpError, match=r"\[0, 1\]"):
        advmilp.attack(identity_net, [1.8, 0.2], target=1)


@pytest.fixture
def with_mnist(monkeypatch):
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    monkeypatch.setenv("ADVMILP_DATA", str(root))


def test_attack_shipped_dnn1_image_0(with_mnist):
    net = advmilp.load_network("dnn1")
    r = advmilp.attack(net, 0, method="tight", time_limit=60)
    assert r.status == "optimal" and r.verified
    assert r.objective == pytest.approx(4.97822, abs=1e-5)      # as the CLI (README "One instance")
    assert r.witness.shape == (784,) and r.row["target"] == 2 and r.row["image_index"] == 0
    fast = advmilp.attack("dnn1", 0, method="fast", time_limit=10)
    assert fast.status == "found" and fast.solved and fast.objective >= r.objective - 1e-6


def test_the_readme_example_runs_as_written(with_mnist, capfd):
    exec(compile(README_EXAMPLE, "README.md", "exec"), {})
    assert capfd.readouterr().out.endswith(README_OUTPUT)
    readme = (REPO / "README.md").read_text()
    if "## Python API" in readme:       # the lead's README section carries the same example
        assert README_EXAMPLE in readme and README_OUTPUT in readme
