"""The VNN-LIB decision engine (methods/verify.py): hand-made instances whose answer is known, random
2-input networks against a dense grid, and VNN-COMP instances whose truth is published."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from advmilp.methods.verify import HOLDS, UNKNOWN, VIOLATED, network_outputs, verify_property
from advmilp.nn.network import Network
from advmilp.spec.vnnlib import VnnlibProperty, read_vnnlib
from tests.nets import random_net

EXTERNAL = Path(__file__).resolve().parents[3] / "shared" / "external"


def prop(lb, ub, *disjuncts):
    return VnnlibProperty(np.array(lb, float), np.array(ub, float),
                          tuple((np.array(G, float), np.array(h, float)) for G, h in disjuncts), 2)


def test_identity_net_by_hand(identity_net):
    """y = x.  Y_0 ≥ Y_1 (row Y_1 − Y_0 ≤ 0) over [0, 0.4] × [0.6, 1]: impossible (x0 < x1 everywhere);
    over [0, 0.7] × [0.5, 1]: violated, e.g. at (0.7, 0.5)."""
    r = verify_property(identity_net, prop([0, 0.6], [0.4, 1], ([[-1, 1]], [0])))
    assert r.result == HOLDS and r.how == "bounds" and r.margin == pytest.approx(0.2, abs=1e-4)
    r = verify_property(identity_net, prop([0, 0.5], [0.7, 1], ([[-1, 1]], [0])))
    assert r.result == VIOLATED and r.x[0] >= r.x[1] and r.checked and r.margin <= 0
    assert np.all(r.x >= [0, 0.5]) and np.all(r.x <= [0.7, 1])


def test_abs_difference_needs_the_exact_model():
    """y0 = |x0 − x1| − relu(x0 + x1 − 1) (two ReLUs meeting), y1 = 0.  On [0, 1]²: y0 ≤ 0.5 exactly?
    max of |x0 − x1| − relu(x0 + x1 − 1): at (1, 0): 1 − 0 = 1.  So Y_0 ≥ 0.9 is violated and Y_0 ≥ 1.1 holds."""
    W1 = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    net = Network.from_arrays([W1, np.array([[1.0, 1.0, -1.0], [0.0, 0.0, 0.0]])],
                              [np.array([0.0, 0.0, -1.0]), np.zeros(2)])
    assert verify_property(net, prop([0, 0], [1, 1], ([[-1, 0]], [-0.9]))).result == VIOLATED
    r = verify_property(net, prop([0, 0], [1, 1], ([[-1, 0]], [-1.1])))
    assert r.result == HOLDS and r.margin > 0


def test_an_unknown_answer_says_how_far_it_got(identity_net):
    """With no time, the bounds still run.  y = x on [0, 0.4] × [0.6, 1], where x1 − x0 ∈ [0.2, 1]: of the
    disjuncts x1 − x0 ≤ −0.5 (impossible: ruled out) and x1 − x0 ≤ 0.5 (met, but the attack never ran),
    unknown, 1 of 2 ruled out; the margin bounds the open disjunct's least slack, 0.2 − 0.5 = −0.3, from
    below (exactly, up to the bounds' widening, on this linear network)."""
    p = prop([0, 0.6], [0.4, 1], ([[-1, 1]], [-0.5]), ([[-1, 1]], [0.5]))
    r = verify_property(identity_net, p, time_limit=0.0)
    assert r.result == UNKNOWN and r.how == "time limit; 1 of 2 disjuncts ruled out"
    assert -0.3 - 1e-3 <= r.margin <= -0.3


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_agree_with_a_dense_grid(seed):
    """Y_0 − Y_1 ≤ c for c just above the grid's maximum (+ a Lipschitz allowance): holds; just below
    the grid maximum: violated.  The engine must give exactly these answers."""
    net = random_net([2, 12, 12, 2], seed=seed, scale=2.0)
    g = np.linspace(0, 1, 401)
    X = np.array(np.meshgrid(g, g)).reshape(2, -1).T
    d = net.forward(X) @ np.array([1.0, -1.0])
    lipschitz = np.prod([np.linalg.norm(layer.W, 2) for layer in net.layers]) * np.sqrt(2)
    top = float(d.max())
    above = top + lipschitz * (g[1] - g[0]) + 1e-3
    r = verify_property(net, prop([0, 0], [1, 1], ([[-1, 1]], [-above])), time_limit=60)   # Y_0 − Y_1 ≥ above
    assert r.result == HOLDS, r
    r = verify_property(net, prop([0, 0], [1, 1], ([[-1, 1]], [-(top - 1e-3)])), time_limit=60)
    assert r.result == VIOLATED and (network_outputs(net, r.x) @ [1, -1]) >= top - 1e-3


def test_joint_attack_follows_the_disjunct_it_can_meet(identity_net):
    """y = x on [0, 1]².  Disjunct 0, Y_0 ≥ 2, cannot be met; disjunct 1, Y_1 − Y_0 ≥ 0.9, only in the
    corner x1 ≥ 0.9 + x0.  The joint attack returns disjunct 1 and a checked point of that corner."""
    from advmilp.methods.verify import _joint_attack

    p = prop([0, 0], [1, 1], ([[-1, 0]], [-2]), ([[1, -1]], [-0.9]))
    d, x, y = _joint_attack(identity_net, p, [0, 1], math.inf, np.random.default_rng(0))
    assert d == 1 and x[1] - x[0] >= 0.9 and np.all((x >= 0) & (x <= 1)) and np.allclose(y, x)
    assert _joint_attack(identity_net, p, [0], math.inf, np.random.default_rng(0)) is None
    r = verify_property(identity_net, p)
    assert r.result == VIOLATED and r.how == "attack" and r.x[1] - r.x[0] >= 0.9


@pytest.mark.skipif(not (EXTERNAL / "vnncomp2021_mnistfc").is_dir(), reason="../shared/external absent")
def test_joint_attack_finds_a_published_counterexample():
    """mnist-net_256x4 prop_1_0.05 (violated by six published tools; the per-disjunct attack this one
    replaced found nothing on any of its nine disjuncts, `benchmarks/attack_bench.py`): the joint attack
    finds a counterexample, and it passes the check."""
    from advmilp.methods.verify import _check, _joint_attack
    from advmilp.nn.interchange import load_any

    folder = EXTERNAL / "vnncomp2021_mnistfc"
    assert _published(folder, "mnist-net_256x4.onnx", "prop_1_0.05.vnnlib") == VIOLATED
    net = load_any(folder / "onnx" / "mnist-net_256x4.onnx")
    p = read_vnnlib(folder / "vnnlib" / "prop_1_0.05.vnnlib")
    d, x, y = _joint_attack(net, p, list(range(len(p.disjuncts))), math.inf, np.random.default_rng(0))
    assert _check(net, p, d, x)[0] and np.all((x >= p.x_lb) & (x <= p.x_ub))


def test_mismatched_sizes_are_refused(identity_net):
    from advmilp.errors import AdvmilpError

    with pytest.raises(AdvmilpError, match="3 inputs"):
        verify_property(identity_net, VnnlibProperty(np.zeros(3), np.ones(3), ((np.eye(2), np.zeros(2)),), 2))


@pytest.mark.skipif(not (EXTERNAL / "vnncomp2021_mnistfc").is_dir(), reason="../shared/external absent")
@pytest.mark.parametrize("spec, limit", [("prop_2_0.03.vnnlib", 30), ("prop_0_0.05.vnnlib", 10)])
def test_vnncomp_mnistfc_256x2_agrees_with_the_published_answer(spec, limit):
    """mnist-net_256x2 (512 ReLUs): the answer must be the published one whenever ours is not unknown."""
    from advmilp.nn.interchange import load_any

    folder = EXTERNAL / "vnncomp2021_mnistfc"
    published = _published(folder, "mnist-net_256x2.onnx", spec)
    if published not in (HOLDS, VIOLATED):
        pytest.skip(f"no published answer for {spec}")
    net = load_any(folder / "onnx" / "mnist-net_256x2.onnx")
    r = verify_property(net, read_vnnlib(folder / "vnnlib" / spec), time_limit=limit)
    assert r.result in (published, UNKNOWN)
    if spec == "prop_2_0.03.vnnlib":
        assert r.result == HOLDS and r.how == "bounds"      # a proof by CROWN bounds alone


def _published(folder: Path, onnx: str, spec: str) -> str | None:
    """The published answer (every tool that answered agrees, no conflict flag), or None."""
    name = f"{onnx.removesuffix('.onnx')}-{spec.removesuffix('.vnnlib')}"
    with (folder / "results" / "per_instance_scored_times.csv").open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    for row in rows:
        if row["instance"] == name and not row.get("conflict_flag"):
            answers = {"(h)": HOLDS, "(v)": VIOLATED}
            seen = {answers[c.split()[-1]] for k, c in row.items() if c and c.split()[-1] in answers}
            return seen.pop() if len(seen) == 1 else None
    return None
