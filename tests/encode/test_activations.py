"""The encoder table, and LeakyReLU end to end: the one new layer type added through it.

Adding LeakyReLU took one forward rule (`advmilp.nn.activations`) and one encoder entry
(`advmilp.encode.activations.ENCODERS`); these tests show it works in every consumer — the PuLP
MILP, the phase search's LP, the L1-ball relaxation, the heuristic, ONNX import/export and the CLI.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from advmilp.bounds.ball import ball_bounds
from advmilp.bounds.compute import interval_bounds
from advmilp.encode.activations import ENCODERS, encoder_for
from advmilp.methods.milp import SolverSettings, run_instance
from advmilp.nn.activations import make_activation
from advmilp.nn.network import Network
from advmilp.search.phase_bb import search_phases
from advmilp.spec.problems import ProblemSpec
from tests.nets import REPO, mnist_dir, points_in_ball, small_targeted_instance, targeted_problem


def leaky_threshold_net(alpha: float) -> Network:
    """h = leaky(x0 − 0.5) with slope alpha; y0 = 0.5 (bias only), y1 = −4h.  x1 is ignored."""
    return Network.from_arrays([np.array([[1.0, 0.0]]), np.array([[0.0], [-4.0]])],
                               [np.array([-0.5]), np.array([0.5, 0.0])], ["leaky_relu", "linear"],
                               {"architecture": "leaky-threshold"}, slopes=[alpha, None])


def random_leaky_net(sizes, seed, alpha=0.2, scale=2.5) -> Network:
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, scale / np.sqrt(m), size=(n, m)) for m, n in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, 0.1, size=n) for n in sizes[1:]]
    acts = ["leaky_relu"] * (len(Ws) - 1) + ["linear"]
    return Network.from_arrays(Ws, bs, acts, {"architecture": f"leaky{seed}"}, [alpha] * (len(Ws) - 1) + [None])


def test_every_activation_has_an_encoder_and_the_forward_rules_are_right():
    y = np.array([-2.0, -0.5, 0.0, 1.5])
    assert set(ENCODERS) == {"relu", "linear", "leaky_relu"}
    assert np.array_equal(make_activation("relu")(y), [0, 0, 0, 1.5])
    assert np.array_equal(make_activation("linear")(y), y)
    assert np.allclose(make_activation("leaky_relu", 0.1)(y), [-0.2, -0.05, 0, 1.5])
    assert make_activation("leaky_relu", 0.1)(y.astype(np.float32)).dtype == np.float32


def test_exact_encoding_of_an_unstable_leaky_unit_by_hand():
    enc = encoder_for(make_activation("leaky_relu", 0.5)).exact(-2.0, 3.0)
    cols = {c.role: (c.lo, c.hi, c.binary) for c in enc.columns}
    assert cols == {"a": (0.0, 3.0, False), "s": (0.0, 2.0, False), "z": (0.0, 1.0, True)}
    rows = {r.role: (dict(r.coefs), r.lo, r.hi) for r in enc.rows}
    assert rows["relu"] == ({"pre": 1.0, "a": -1.0, "s": 1.0}, 0.0, 0.0)      # pre = a − s
    assert rows["on"] == ({"a": 1.0, "z": 3.0}, -np.inf, 3.0)                 # a ≤ 3 (1 − z)
    assert rows["off"] == ({"s": 1.0, "z": -2.0}, -np.inf, 0.0)               # s ≤ 2 z
    assert dict(enc.value) == {"a": 1.0, "s": -0.5}                            # out = a − 0.5 s


def test_relaxation_of_a_leaky_unit_is_the_hull_by_hand():
    # slope 0.5 on [-2, 3]: the graph runs from (-2, -1) to (0, 0) to (3, 3); the hull's upper side is
    # the chord from (-2, -1) to (3, 3), slope 4/5: y ≤ -1 + 0.8 (pre + 2)
    enc = encoder_for(make_activation("leaky_relu", 0.5)).relaxation(-2.0, 3.0)
    rows = {r.role: (dict(r.coefs), r.lo, r.hi) for r in enc.rows}
    assert rows["ge"] == ({"pre": -1.0, "y": 1.0}, 0.0, np.inf)
    assert rows["ge_neg"] == ({"pre": -0.5, "y": 1.0}, 0.0, np.inf)
    coefs, lo, hi = rows["chord"]
    assert coefs == pytest.approx({"pre": -0.8, "y": 1.0}) and hi == pytest.approx(-1.0 + 0.8 * 2)


@pytest.mark.parametrize("alpha, optimum", [(0.5, 0.80005), (0.25, None)])
def test_leaky_threshold_net_minimal_l1_by_hand(alpha, optimum):
    """x̄ = (1, 0): h = 0.5, y1 = −2, label 0.  Target 1 needs −4h ≥ 1.2·0.5 (+ margin 1e-4), so
    h ≤ −0.150025, i.e. alpha (x0 − 0.5) ≤ −0.150025: with alpha 0.5, x0 ≤ 0.19995 and the minimal
    L1 distance is 0.80005; with alpha 0.25 it needs x0 ≤ −0.1001, outside [0, 1]: infeasible."""
    net = leaky_threshold_net(alpha)
    x_bar = np.array([1.0, 0.0])
    spec = ProblemSpec("targeted", target=1)
    res = run_instance(net, interval_bounds(net), spec, SolverSettings(time_limit=30), x_bar, 0, 0)
    if optimum is None:
        assert res.row["status"] == "infeasible"
        return
    assert res.row["status"] == "optimal" and res.row["verified"]
    assert res.row["objective"] == pytest.approx(optimum, abs=1e-6)
    r = search_phases(net, interval_bounds(net),
                      targeted_problem(net, spec.with_(output_relu=False), x_bar, 0, np.zeros(2), np.ones(2)))
    assert r.status == "optimal" and r.objective == pytest.approx(optimum, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_leaky_milp_at_a_fixed_input_equals_forward(seed):
    net = random_leaky_net([6, 5, 4, 3], seed)
    x = np.random.default_rng(seed).random(6)
    res = run_instance(net, interval_bounds(net), ProblemSpec("inference", output_relu=False),
                       SolverSettings(time_limit=30), x, 0, 0)
    assert res.row["verified"], res.row["verify_note"]


@pytest.mark.parametrize("seed", range(3))
def test_leaky_bounds_contain_sampled_activations(seed):
    net = random_leaky_net([10, 8, 6, 3], seed)
    rng = np.random.default_rng(seed)
    x_bar = rng.random(10)
    box, ball = interval_bounds(net), ball_bounds(net, x_bar, 1.5)
    for xs, b in ((rng.random((3000, 10)), box), (points_in_ball(x_bar, 1.5, rng), ball)):
        for pre, L, U in zip(net.preactivations(xs), b.lower, b.upper):
            assert np.all(pre >= L - 1e-9) and np.all(pre <= U + 1e-9)
    assert all(np.all(bl >= il - 1e-9) for bl, il in zip(ball.lower, box.lower))


@pytest.mark.parametrize("seed", range(4))
def test_leaky_phase_search_equals_the_thesis_model(seed):
    inst = small_targeted_instance(seed, random_leaky_net([16, 8, 6, 3], seed))
    net, x_bar, label, spec, box, plain = inst.net, inst.x_bar, inst.label, inst.spec, inst.box, inst.plain
    r = search_phases(net, box, targeted_problem(net, spec.with_(output_relu=False), x_bar, label, np.zeros(16), np.ones(16)))
    if plain.row["status"] == "infeasible":
        assert r.status == "infeasible"
        return
    assert plain.row["status"] == "optimal" and r.status == "optimal"
    assert r.objective == pytest.approx(plain.row["objective"], rel=1e-5, abs=1e-6)


def test_leaky_network_round_trips_through_npz_and_onnx(tmp_path):
    pytest.importorskip("onnx")
    from advmilp.nn.interchange import export_onnx, load_any

    net = random_leaky_net([6, 5, 4, 3], 0, alpha=0.125)      # exact in float32
    net = Network.from_arrays([layer.W.astype(np.float32) for layer in net.layers],
                              [layer.b.astype(np.float32) for layer in net.layers],
                              [layer.activation for layer in net.layers], {"architecture": "leaky"},
                              [layer.slope for layer in net.layers])
    saved = load_any(net.save(tmp_path / "leaky.npz"))
    assert saved.content_hash() == net.content_hash() and saved.layers[0].slope == 0.125
    back = load_any(export_onnx(net, tmp_path / "leaky.onnx"))
    assert [layer.activation for layer in back.layers] == ["leaky_relu", "leaky_relu", "linear"]
    x = np.random.default_rng(1).random((20, 6))
    assert np.allclose(back.forward(x), net.forward(x), atol=1e-6)


def test_relu_and_leaky_hashes_differ_and_relu_hashes_are_unchanged():
    relu = Network.from_arrays([np.eye(2), np.eye(2)], [np.zeros(2)] * 2)
    leaky = Network.from_arrays([np.eye(2), np.eye(2)], [np.zeros(2)] * 2, ["leaky_relu", "linear"], slopes=[0.1, None])
    assert relu.content_hash() != leaky.content_hash()
    from advmilp.nn.network import load_network
    assert load_network("dnn1").short_hash() == "f008e32aa6c0"    # the shipped caches stay valid


@pytest.mark.skipif(mnist_dir() is None, reason="MNIST not found")
def test_attack_a_leaky_mnist_network_from_the_cli(tmp_path):
    """End to end: a 784-8-6-10 leaky network (random weights, fixed seed) attacked from the command
    line by the thesis model and by tight; both prove the same optimum."""
    net = random_leaky_net([784, 8, 6, 10], 3, alpha=0.1, scale=4.0)
    path = net.save(tmp_path / "leaky784.npz")
    objectives = {}
    for method in ("milp", "tight"):
        out = subprocess.run([sys.executable, "-m", "advmilp", "attack", "--model", str(path), "--image", "0",
                              "--method", method, "--bounds", "basic", "--time-limit", "120",
                              "--cache-dir", str(tmp_path / "cache")],
                             capture_output=True, text=True, cwd=REPO, env={"ADVMILP_DATA": str(mnist_dir()),
                                                                            "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr
        lines = {ln.split()[0]: ln for ln in out.stdout.splitlines() if ln.strip()}
        assert "optimal" in lines["status"] and "yes" in lines["verified"], out.stdout
        objectives[method] = float(lines["objective"].split()[1])
    assert objectives["tight"] == pytest.approx(objectives["milp"], rel=1e-4)
