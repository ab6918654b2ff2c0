"""The same-machine peer OMLT + Pyomo + HiGHS (benchmarks/omlt_peer.py): same optimum as advmilp's exact
methods on small imported networks, its witness verified on advmilp's import, its network equal to
`Network.forward` with the input fixed, resumable rows, one-line refusals."""

from __future__ import annotations

import csv
import importlib.util
import runpy
import sys

import numpy as np
import pytest

pytest.importorskip("omlt")
pytest.importorskip("pyomo")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from advmilp.api import attack  # noqa: E402
from advmilp.errors import AdvmilpError  # noqa: E402
from advmilp.nn.interchange import export_onnx, load_onnx  # noqa: E402
from advmilp.nn.network import Network  # noqa: E402
from advmilp.spec.problems import ProblemSpec, SolverSettings  # noqa: E402
from advmilp.spec.rows import is_solved  # noqa: E402
from tests.nets import REPO, mnist_dir, random_net  # noqa: E402


def _load_peer():
    spec = importlib.util.spec_from_file_location("omlt_peer", REPO / "benchmarks" / "omlt_peer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["omlt_peer"] = module   # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


peer = _load_peer()
SETTINGS = SolverSettings("highs", 60.0, 1, 1e-4)
TARGETED = ProblemSpec("targeted", ratio=1.2, output_relu=False)
UNTARGETED = ProblemSpec("untargeted", factor=0.95, output_relu=False)


def external_style_onnx(net: Network, path, image=(1, 1, 4, 4)):
    """``net`` written the way the external files are: a Flatten of an image tensor first, Gemm nodes without
    alpha/beta attributes, every node unnamed (OMLT's parser takes none of that as it is)."""
    inits, nodes, x = [], [helper.make_node("Flatten", ["image"], ["flat"])], "flat"
    for k, layer in enumerate(net.layers):
        inits += [numpy_helper.from_array(layer.W.astype(np.float32), f"W{k}"),
                  numpy_helper.from_array(layer.b.astype(np.float32), f"b{k}")]
        last = k == len(net.layers) - 1
        z = "logits" if last else f"z{k}"
        nodes.append(helper.make_node("Gemm", [x, f"W{k}", f"b{k}"], [z], transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [z], [f"a{k}"]))
            x = f"a{k}"
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(image))],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, net.n_outputs])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7), str(path))
    return path


def tiny_instance(seed: int, tmp_path, style: str):
    """A random 16-8-6-10 network (float32 weights, so the ONNX file holds it exactly), as ONNX, an image
    and the network's label for it."""
    net = random_net([16, 8, 6, 10], seed=seed, scale=2.0)
    net = Network.from_arrays([lay.W.astype(np.float32).astype(np.float64) for lay in net.layers],
                              [lay.b.astype(np.float32).astype(np.float64) for lay in net.layers],
                              metadata={"architecture": f"tiny{seed}"})
    path = tmp_path / f"tiny{seed}-{style}.onnx"
    if style == "external":
        external_style_onnx(net, path)
    else:
        export_onnx(net, path)
    x_bar = np.random.default_rng(seed).random(16)
    return path, x_bar, int(net.predict(x_bar))


@pytest.mark.parametrize("seed,style,expected", [(1, "advmilp", "optimal"), (4, "external", "optimal"),
                                                 (10, "external", "optimal"), (11, "advmilp", "optimal"),
                                                 (0, "external", "infeasible")])
def test_targeted_optimum_equals_advmilps_exact_optimum_and_verifies(tmp_path, seed, style, expected):
    path, x_bar, label = tiny_instance(seed, tmp_path, style)
    net = load_onnx(path)
    ours = attack(net, x_bar, label=label, output_relu=False, time_limit=60)   # tight: exact
    res = peer.omlt_attack(path, x_bar, label, TARGETED, SETTINGS, image_index=seed)
    row = res.row
    assert row["method"] == "omlt" and row["network_hash"] == net.short_hash()
    assert row["target"] == (label + 5) % 10
    assert row["status"] == ours.status == expected
    if expected == "optimal":
        assert row["objective"] == pytest.approx(ours.objective, abs=1e-5)
        assert row["bound"] == pytest.approx(ours.objective, abs=1e-3)
        assert row["verified"] and is_solved(row)
        assert row["l1"] == pytest.approx(ours.objective, abs=1e-5)      # recomputed from the pixels
        assert res.witness is not None and np.abs(res.witness - x_bar).sum() == pytest.approx(row["l1"])
        assert row["time_s"] >= row["build_time_s"] > 0
    else:   # no point of the box reaches the target by ratio 1.2: both prove it
        assert not row["verified"] and res.witness is None


@pytest.mark.parametrize("seed", [0, 2])
def test_untargeted_optimum_equals_advmilps_milp(tmp_path, seed):
    path, x_bar, label = tiny_instance(seed, tmp_path, "external")
    net = load_onnx(path)
    ours = attack(net, x_bar, label=label, problem="untargeted", output_relu=False, time_limit=60)
    row = peer.omlt_attack(path, x_bar, label, UNTARGETED, SETTINGS).row
    assert ours.status == row["status"] == "optimal"
    assert row["objective"] == pytest.approx(ours.objective, abs=1e-5)
    assert row["verified"] and row["predicted"] != label


@pytest.mark.parametrize("seed,style", [(4, "advmilp"), (5, "external")])
def test_with_the_input_fixed_omlts_outputs_equal_forward(tmp_path, seed, style):
    path, _, _ = tiny_instance(seed, tmp_path, style)
    net = load_onnx(path)
    for x in np.random.default_rng(seed).random((3, 16)):
        res = peer.omlt_attack(path, x, 0, ProblemSpec("inference"), SETTINGS)
        assert res.row["status"] == "optimal" and res.row["objective"] == pytest.approx(0.0, abs=1e-9)
        np.testing.assert_allclose(res.extra["outputs"], net.forward(x), atol=1e-6)
        assert res.row["verified"]


def test_a_witness_that_fails_advmilps_check_is_unverified(tmp_path):
    """Verification runs on the network given (advmilp's import); here its target output is lowered, so
    OMLT's point is no example there: the row stays optimal as HiGHS said, but is never solved."""
    path, x_bar, label = tiny_instance(1, tmp_path, "advmilp")
    assert is_solved(peer.omlt_attack(path, x_bar, label, TARGETED, SETTINGS).row)
    net = load_onnx(path)
    W, b = [lay.W for lay in net.layers], [lay.b.copy() for lay in net.layers]
    b[-1][(label + 5) % 10] -= 10.0
    other = Network.from_arrays(W, b, metadata=dict(net.metadata))
    row = peer.omlt_attack(path, x_bar, label, TARGETED, SETTINGS, network=other).row
    assert row["status"] == "optimal" and not row["verified"] and not is_solved(row)
    assert row["verify_note"]


def test_refusals_are_one_line_errors(tmp_path):
    path, x_bar, label = tiny_instance(0, tmp_path, "advmilp")
    with pytest.raises(AdvmilpError, match="L1 over the box only"):
        peer.omlt_attack(path, x_bar, label, TARGETED.with_(linf_cap=0.2), SETTINGS)
    with pytest.raises(AdvmilpError, match="solves targeted, untargeted, inference"):
        peer.omlt_attack(path, x_bar, label, ProblemSpec("max-target", target=1), SETTINGS)
    with pytest.raises(AdvmilpError, match="the image has 15 values"):
        peer.omlt_attack(path, x_bar[:15], label, TARGETED, SETTINGS)
    # a normalising Sub before the first Gemm: advmilp imports it, OMLT's parser does not
    model = onnx.load(str(path))
    model.graph.initializer.append(numpy_helper.from_array(np.full(16, 0.1, dtype=np.float32), "mean"))
    model.graph.node[0].input[0] = "centred"
    nodes = [helper.make_node("Sub", ["input", "mean"], ["centred"], name="norm"), *model.graph.node]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(tmp_path / "sub.onnx"))
    with pytest.raises(AdvmilpError, match="OMLT cannot build this network"):
        peer.omlt_attack(tmp_path / "sub.onnx", x_bar, label, TARGETED, SETTINGS)
    with pytest.raises(AdvmilpError, match="write indices as 0-9"):
        peer.parse_indices("0-x")
    assert peer.parse_indices("0-2,7") == [0, 1, 2, 7]


def mnist_or_skip() -> str:
    root = mnist_dir()
    if root is None:
        pytest.skip("MNIST not found (set ADVMILP_DATA)")
    return str(root)


def test_cli_appends_whole_rows_and_resumes(tmp_path):
    data_dir = mnist_or_skip()
    net = random_net([784, 6, 10], seed=7, scale=3.0)
    path = export_onnx(Network.from_arrays([lay.W.astype(np.float32).astype(np.float64) for lay in net.layers],
                                           [lay.b.astype(np.float32).astype(np.float64) for lay in net.layers],
                                           metadata={"architecture": "mnist-tiny"}), tmp_path / "mnist-tiny.onnx")
    out = tmp_path / "run"
    argv = ["--model", str(path), "--images", "0-1", "--time-limit", "60", "--out", str(out), "--data-dir", data_dir]
    assert peer.main(argv) == 0
    rows = list(csv.DictReader((out / "instances.csv").open()))
    assert [r["image_index"] for r in rows] == ["0", "1"] and all(r["method"] == "omlt" for r in rows)
    assert all(r["git_sha"] and r["solver"] == "highs" and r["time_limit"] == "60.0" for r in rows)
    assert all(r["status"] in ("optimal", "infeasible") for r in rows)
    assert all(r["verified"] == "True" for r in rows if r["status"] == "optimal")
    assert peer.main(argv[:3] + ["0-2"] + argv[4:]) == 0   # image 2 is new; 0 and 1 are recorded
    rows = list(csv.DictReader((out / "instances.csv").open()))
    assert [r["image_index"] for r in rows] == ["0", "1", "2"]
    assert peer.main(["--model", str(tmp_path / "nope.onnx"), "--images", "0", "--out", str(out)]) == 2


def test_scale_bench_runs_omlt_beside_advmilp_on_dnn1(tmp_path, monkeypatch, capsys):
    data_dir = mnist_or_skip()
    monkeypatch.setenv("ADVMILP_DATA", data_dir)
    monkeypatch.setattr("sys.argv", ["scale_bench.py", "--networks", "dnn1", "--images", "1", "--time-limit", "60",
                                     "--methods", "tight,omlt", "--results-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(REPO / "benchmarks" / "scale_bench.py"), run_name="__main__")
    assert done.value.code == 0
    rows = {m: list(csv.DictReader((tmp_path / f"scale-1x60s-dnn1-targeted-{m}" / "instances.csv").open()))
            for m in ("tight", "omlt")}
    (t,), (o,) = rows["tight"], rows["omlt"]
    assert t["image_index"] == o["image_index"] and t["network_hash"] == o["network_hash"]
    assert t["status"] == o["status"] == "optimal" and o["verified"] == "True"
    assert float(o["objective"]) == pytest.approx(float(t["objective"]), abs=1e-5)
    assert "| dnn1 | 24 | targeted | omlt | 1 | 100 |" in capsys.readouterr().out


# ---- the verification peer (vnncomp_bench --omlt) -------------------------------------------------
def hand_net() -> Network:
    """h1 = relu(x0 + x1), h2 = relu(x0 − x1); y0 = h1 − h2, y1 = h2.  On [0, 1]²: y0 = 2·x1 if x0 ≥ x1
    else x0 + x1, y1 = max(x0 − x1, 0); so y1 − y0 = x0 − 3·x1 where x0 ≥ x1, at most 1 (x = (1, 0))."""
    return Network.from_arrays([np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([[1.0, -1.0], [0.0, 1.0]])],
                               [np.zeros(2), np.zeros(2)], metadata={"architecture": "hand"})


def vnnlib_file(path, x0_hi: float, disjuncts: list[str]):
    path.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                    "(declare-const Y_1 Real)\n(assert (>= X_0 0.0))\n"
                    f"(assert (<= X_0 {x0_hi}))\n(assert (>= X_1 0.0))\n(assert (<= X_1 1.0))\n"
                    f"(assert (or {' '.join(f'(and {d})' for d in disjuncts)}))\n")
    return path


@pytest.mark.parametrize("x0_hi,disjuncts,expected", [
    (1.0, ["(>= Y_1 (+ Y_0 0.5))"], "violated"),                 # x = (1, 0): y1 − y0 = 1
    (0.4, ["(>= Y_1 (+ Y_0 0.5))"], "holds"),                    # y1 − y0 ≤ 0.4
    (0.4, ["(>= Y_1 (+ Y_0 0.5))", "(>= Y_0 1.3)"], "violated"),  # the second: x = (0.4, 1), y0 = 1.4
    (0.4, ["(>= Y_1 (+ Y_0 0.5))", "(>= Y_0 1.5)"], "holds"),     # y0 ≤ 1.4
    (1.0, ["(>= Y_1 0.9) (<= Y_0 0.05)"], "violated"),            # both rows at x = (1, 0)
    (1.0, ["(>= Y_1 0.9) (>= Y_0 0.5)"], "holds"),                # y1 ≥ 0.9 needs x1 ≤ 0.1, so y0 ≤ 0.2
])
def test_the_verification_peer_decides_hand_made_properties(tmp_path, x0_hi, disjuncts, expected):
    path = external_style_onnx(hand_net(), tmp_path / "hand.onnx", image=(1, 2))
    verdict = peer.omlt_verify(path, vnnlib_file(tmp_path / "p.vnnlib", x0_hi, disjuncts), 60.0)
    assert verdict.result == expected, verdict


@pytest.mark.parametrize("seed", [2, 3, 5])
def test_the_verification_peer_agrees_with_verify(tmp_path, seed):
    """On small random networks, L∞ boxes around a random point, 'some other class scores at least the
    label's': OMLT + HiGHS and `advmilp verify` give the same answers."""
    from advmilp.methods.verify import verify_property
    from advmilp.spec.vnnlib import read_vnnlib

    path, x_bar, label = tiny_instance(seed, tmp_path, "external")
    net = load_onnx(path)
    answers = []
    for eps in (0.001, 0.05, 0.3):
        lo, hi = np.clip(x_bar - eps, 0, 1), np.clip(x_bar + eps, 0, 1)
        text = "".join(f"(declare-const X_{i} Real)\n" for i in range(16)) + \
            "".join(f"(declare-const Y_{j} Real)\n" for j in range(10)) + \
            "".join(f"(assert (>= X_{i} {lo[i]:.17g}))\n(assert (<= X_{i} {hi[i]:.17g}))\n" for i in range(16)) + \
            "(assert (or " + " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(10) if j != label) + "))\n"
        spec = tmp_path / f"eps{eps}.vnnlib"
        spec.write_text(text)
        ours = verify_property(net, read_vnnlib(spec), time_limit=60.0).result
        theirs = peer.omlt_verify(path, spec, 60.0).result
        assert ours == theirs, (eps, ours, theirs)
        answers.append(ours)
    assert answers[0] == "holds" and answers[-1] == "violated"   # both answers are exercised


def test_the_verification_peer_refuses_a_property_of_another_network(tmp_path):
    path = external_style_onnx(hand_net(), tmp_path / "hand.onnx", image=(1, 2))
    spec = tmp_path / "p.vnnlib"
    spec.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                    "(assert (>= X_0 0.0))\n(assert (<= X_0 1.0))\n(assert (>= X_1 0.0))\n(assert (<= X_1 1.0))\n"
                    "(assert (>= Y_0 3.0))\n")
    with pytest.raises(AdvmilpError, match="has 1 outputs; the network 2"):
        peer.omlt_verify(path, spec, 10.0)
