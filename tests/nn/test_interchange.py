"""Interchange: Keras/ONNX import, ONNX export, VNN-LIB benchmark folders."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from advmilp.errors import NetworkError
from advmilp.nn.interchange import export_onnx, load_any, load_onnx
from advmilp.nn.network import Network

from tests.nets import REPO, random_net

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # the import-hygiene tests below still run
    onnx = None
needs_onnx = pytest.mark.skipif(onnx is None, reason="needs the onnx package")


def make_model(nodes, inits, n_in, n_out, in_shape=None):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape or ["N", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)


def save(model, path):
    onnx.save(model, str(path))
    return path


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ---- ONNX import ----------------------------------------------------------------------------
@needs_onnx
def test_matmul_add_graph_matches_numpy(tmp_path):
    W1, b1, W2, b2 = rand(6, 5, seed=1), rand(5, seed=2), rand(5, 3, seed=3), rand(3, seed=4)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "W1"], ["m1"], name="mm1"),
             helper.make_node("Add", ["b1", "m1"], ["h1"], name="add1"),  # constant first also works
             helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
             helper.make_node("MatMul", ["r1", "W2"], ["m2"], name="mm2"),
             helper.make_node("Add", ["m2", "b2"], ["z"], name="add2"),
             helper.make_node("Softmax", ["z"], ["y"], name="softmax")]
    path = save(make_model(nodes, {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, 6, 3, ["N", 2, 3]), tmp_path / "mm.onnx")
    net = load_onnx(path)
    assert net.sizes == [6, 5, 3] and [l.activation for l in net.layers] == ["relu", "linear"]
    assert net.name == "mm"
    x = rand(20, 6, seed=5).astype(np.float64)
    expected = np.maximum(x @ W1 + b1, 0) @ W2 + b2
    np.testing.assert_allclose(net.forward(x), expected, atol=1e-6)


@needs_onnx
def test_gemm_alpha_beta_transb_and_normalisation(tmp_path):
    B, C = rand(4, 3, seed=1), rand(3, seed=2)
    nodes = [helper.make_node("Sub", ["x", "mean"], ["s"], name="sub"),
             helper.make_node("Div", ["s", "std"], ["n"], name="div"),
             helper.make_node("Gemm", ["n", "B", "C"], ["g"], name="gemm", alpha=0.5, beta=2.0, transB=0),
             helper.make_node("Identity", ["g"], ["y"], name="id")]
    path = save(make_model(nodes, {"B": B, "C": C, "mean": [0.1], "std": [0.3]}, 4, 3), tmp_path / "g.onnx")
    net = load_onnx(path)
    x = rand(7, 4, seed=3).astype(np.float64)
    np.testing.assert_allclose(net.forward(x), 0.5 * ((x - np.float32(0.1)) / np.float32(0.3)) @ B + 2.0 * C,
                               atol=1e-5)
    nodes[2] = helper.make_node("Gemm", ["n", "B", "C"], ["g"], name="gemm", transB=1)
    path = save(make_model(nodes, {"B": B.T, "C": C, "mean": [0.0], "std": [1.0]}, 4, 3), tmp_path / "t.onnx")
    np.testing.assert_allclose(load_onnx(path).forward(x), x @ B + C, atol=1e-5)


@needs_onnx
def test_conv_node_is_refused_by_name(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv1"),
             helper.make_node("Flatten", ["c"], ["y"], name="flat")]
    path = save(make_model(nodes, {"K": rand(2, 1, 3, 3)}, 0, 0, ["N", 1, 5, 5]), tmp_path / "conv.onnx")
    with pytest.raises(NetworkError, match=r"node 'conv1' \(Conv\) is not supported"):
        load_onnx(path)


@needs_onnx
def test_residual_add_is_refused(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="fc", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "x"], ["y"], name="skip")]
    path = save(make_model(nodes, {"W": rand(4, 4), "b": rand(4)}, 4, 4), tmp_path / "res.onnx")
    with pytest.raises(NetworkError, match=r"node 'skip' \(Add\) has 2 dynamic inputs"):
        load_onnx(path)


@needs_onnx
def test_sigmoid_is_refused(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="fc", transB=1),
             helper.make_node("Sigmoid", ["h"], ["y"], name="sig")]
    path = save(make_model(nodes, {"W": rand(3, 4), "b": rand(3)}, 4, 3), tmp_path / "sig.onnx")
    with pytest.raises(NetworkError, match=r"node 'sig' \(Sigmoid\) is not supported"):
        load_onnx(path)


@needs_onnx
def test_missing_and_corrupt_onnx_files(tmp_path):
    with pytest.raises(NetworkError, match="not found"):
        load_onnx(tmp_path / "nope.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(NetworkError, match="cannot read ONNX model"):
        load_any(tmp_path / "bad.onnx")


# ---- ONNX export ----------------------------------------------------------------------------
@needs_onnx
def test_export_shipped_dnn1_round_trips(tmp_path):
    net = Network.load(REPO / "models" / "dnn1.npz")
    path = export_onnx(net, tmp_path / "dnn1.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["logits"]
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu"] * 3 + ["Gemm"]
    props = {p.key: p.value for p in model.metadata_props}
    assert props["advmilp_sha256"] == net.content_hash()
    back = load_any(path)
    assert back.content_hash() == net.content_hash()  # float32 weights round-trip exactly
    assert back.metadata["architecture"] == "dnn1"
    x = np.random.default_rng(0).random((16, 784))
    np.testing.assert_allclose(back.forward(x), net.forward(x), atol=1e-6)


@needs_onnx
def test_load_any_dispatches(tmp_path):
    net = random_net([4, 3, 2], seed=1)
    assert load_any(net.save(tmp_path / "mine.npz")).content_hash() == net.content_hash()
    assert load_any(export_onnx(net, tmp_path / "mine.onnx")).name == "mine"
    assert load_any("dnn1", REPO / "models").sizes == [784, 8, 8, 8, 10]
    with pytest.raises(NetworkError, match="unknown architecture"):
        load_any("dnn99")


# ---- Keras ----------------------------------------------------------------------------------
@pytest.mark.tensorflow
@needs_onnx
def test_keras_onnx_round_trip(tmp_path):
    keras = pytest.importorskip("keras")
    from advmilp.nn.interchange import load_keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.2), keras.layers.Dense(12),
                              keras.layers.ReLU(), keras.layers.Dense(10), keras.layers.Softmax()])
    model.save(tmp_path / "mine.keras")
    net = load_keras(tmp_path / "mine.keras")
    assert net.sizes == [784, 16, 12, 10] and net.name == "mine"
    x = np.random.default_rng(1).random((32, 784)).astype(np.float32)
    logits = keras.Model(model.inputs[0], model.layers[-2].output).predict(x, verbose=0)
    np.testing.assert_allclose(net.forward(x), logits, atol=1e-5)
    back = load_onnx(export_onnx(net, tmp_path / "mine.onnx"))
    np.testing.assert_allclose(back.forward(x), net.forward(x), atol=1e-6)
    model.save(tmp_path / "legacy.h5")
    np.testing.assert_allclose(load_any(tmp_path / "legacy.h5").forward(x), net.forward(x), atol=1e-6)


@pytest.mark.tensorflow
def test_keras_refusals_name_the_layer(tmp_path):
    keras = pytest.importorskip("keras")
    from advmilp.nn.interchange import load_keras

    conv = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3, name="conv_a"),
                             keras.layers.Flatten(), keras.layers.Dense(10)])
    conv.save(tmp_path / "conv.keras")
    with pytest.raises(NetworkError, match=r"layer 'conv_a' \(Conv2D\) is not supported"):
        load_keras(tmp_path / "conv.keras")
    tanh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh", name="t"),
                             keras.layers.Dense(2)])
    tanh.save(tmp_path / "tanh.keras")
    with pytest.raises(NetworkError, match=r"layer 't' \(Dense\) has activation 'tanh'"):
        load_keras(tmp_path / "tanh.keras")
    bn = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(name="bn")])
    bn.save(tmp_path / "bn.keras")
    with pytest.raises(NetworkError, match=r"layer 'bn' \(BatchNormalization\)"):
        load_keras(tmp_path / "bn.keras")
    inp = keras.Input((4,))
    h = keras.layers.Dense(4, activation="relu", name="h")(inp)
    out = keras.layers.Dense(4, name="skip")(keras.layers.Add(name="res")([h, inp]))
    keras.Model(inp, out).save(tmp_path / "res.keras")
    with pytest.raises(NetworkError, match=r"layer 'res' \(Add\) is not on a single chain"):
        load_keras(tmp_path / "res.keras")


def test_import_pulls_in_no_heavy_packages():
    code = ("import sys, advmilp.nn.interchange; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_onnx_package_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(NetworkError, match=r"pip install 'advmilp\[onnx\]'"):
        load_onnx(tmp_path / "m.onnx")
