import json
import subprocess
import sys

import numpy as np
import pytest

from advmilp.errors import NetworkError
from advmilp.nn.network import Network, load_network

from tests.nets import REPO, SHIPPED, random_net


def test_forward_matches_hand_computation():
    # x = (1, 2); layer 1: W = [[1, -1], [2, 0.5]], b = (0.5, -1)
    # pre1 = (1 - 2 + 0.5, 2 + 1 - 1) = (-0.5, 2) -> relu (0, 2)
    # layer 2: W = [[3, 1]], b = (-1): out = 0*3 + 2*1 - 1 = 1
    net = Network.from_arrays([[[1, -1], [2, 0.5]], [[3, 1]]], [[0.5, -1], [-1]])
    out = net.forward(np.array([1.0, 2.0]))
    assert out.shape == (1,)
    assert out[0] == pytest.approx(1.0)
    pres = net.preactivations(np.array([[1.0, 2.0], [0.0, 0.0]]))
    np.testing.assert_allclose(pres[0], [[-0.5, 2.0], [0.5, -1.0]])
    np.testing.assert_allclose(pres[1], [[1.0], [0.5 * 3 - 1]])


def test_sizes_and_parameters():
    net = random_net([784, 8, 8, 8, 10])
    assert net.sizes == [784, 8, 8, 8, 10]
    assert net.n_parameters == 784 * 8 + 8 + 2 * (8 * 8 + 8) + 8 * 10 + 10


def test_save_load_roundtrip_preserves_weights_and_hash(tmp_path):
    net = random_net([5, 4, 3], seed=3)
    path = net.save(tmp_path / "net.npz", {"architecture": "tiny", "seed": 3})
    back = Network.load(path)
    assert back.content_hash() == net.content_hash()
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
        assert a.activation == b.activation
    meta = json.loads((tmp_path / "net.json").read_text())
    assert meta["sha256"] == net.content_hash()
    assert meta["layer_sizes"] == [5, 4, 3]


def test_hash_changes_with_weights():
    a = random_net([5, 4, 3], seed=1)
    b = random_net([5, 4, 3], seed=2)
    assert a.content_hash() != b.content_hash()


def test_edited_weights_are_detected(tmp_path):
    net = random_net([5, 4, 3], seed=3)
    path = net.save(tmp_path / "net.npz")
    other = random_net([5, 4, 3], seed=4)
    arrays = {f"W{k}": l.W for k, l in enumerate(other.layers)}
    arrays.update({f"b{k}": l.b for k, l in enumerate(other.layers)})
    np.savez(path, **arrays)
    with pytest.raises(NetworkError, match="sha256"):
        Network.load(path)


def test_corrupted_npz_gives_clear_error(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(NetworkError, match="bad.npz"):
        Network.load(path)


def test_unknown_architecture_is_refused():
    with pytest.raises(NetworkError, match="unknown architecture"):
        load_network("dnn9")


def test_import_does_not_pull_tensorflow():
    code = ("import sys, advmilp, advmilp.nn.network, advmilp.cli, advmilp.bounds.compute, advmilp.methods.milp, "
            "advmilp.encode.milp, advmilp.solvers.pulp, advmilp.nn.training; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'tf imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_reproduce_their_accuracy(name, mnist_test):
    net = load_network(name)
    assert net.metadata["architecture"] == name
    acc = net.accuracy(mnist_test.images, mnist_test.labels)
    assert acc == net.metadata["test_accuracy"]
    thesis = net.metadata["thesis_accuracy"]
    if name == "notebook":
        assert acc >= 0.96
    else:
        assert abs(acc - thesis) <= 0.02
    for key in ("seed", "epochs", "optimizer", "learning_rate", "batch_size", "training_time_s",
                "tensorflow_version", "sha256"):
        assert key in net.metadata


@pytest.mark.tensorflow
def test_from_keras_matches_predict():
    keras = pytest.importorskip("keras")
    from advmilp.nn.interchange import convert_keras as from_keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(6, activation="relu"), keras.layers.Dense(10)])
    x = np.random.default_rng(0).random((50, 784)).astype(np.float32)
    net = from_keras(model)
    np.testing.assert_allclose(net.forward(x), model.predict(x, verbose=0), atol=1e-5)
    assert net.sizes == [784, 8, 6, 10]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_with_the_file_named(tmp_path, bad):
    W = np.eye(2)
    W[0, 1] = bad
    np.savez(tmp_path / "bad.npz", W0=W, b0=np.zeros(2), W1=np.eye(2), b1=np.zeros(2))
    with pytest.raises(NetworkError, match=r"bad\.npz: the weights contain NaN or infinite values"):
        Network.load(tmp_path / "bad.npz")


def test_input_gradient_matches_finite_differences():
    net = Network.from_arrays([np.array([[1.0, -2.0], [0.5, 1.0]]), np.array([[2.0, -1.0], [1.0, 1.0]])],
                              [np.array([0.1, -0.2]), np.zeros(2)], ["leaky_relu", "linear"], slopes=[0.1, None])
    x, c = np.array([0.3, 0.4]), np.array([1.0, -0.5])
    # by hand: pre1 = (0.3 − 0.8 + 0.1, 0.15 + 0.4 − 0.2) = (−0.4, 0.35): slopes (0.1, 1)
    # c·W2 = (2 − 0.5, −1 − 0.5) = (1.5, −1.5); times slopes: (0.15, −1.5); times W1: (0.15 − 0.75, −0.3 − 1.5)
    np.testing.assert_allclose(net.input_gradient(x, c), [-0.6, -1.8])
    eps = 1e-7
    fd = [(c @ net.forward(x + eps * e) - c @ net.forward(x - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(net.input_gradient(x, c), fd, atol=1e-6)
    # a batch: one c row per point, each row the single point's gradient
    X = np.array([[0.3, 0.4], [0.9, -0.2], [-0.5, 0.5]])
    C = np.array([[1.0, -0.5], [0.0, 2.0], [-1.0, 1.0]])
    np.testing.assert_allclose(net.input_gradient(X, C), [net.input_gradient(x_, c_) for x_, c_ in zip(X, C)])
