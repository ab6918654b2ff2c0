"""The robustness study's grid: names, sizes, where the weights live, the one-line refusals."""

import pytest

from advmilp.errors import NetworkError
from advmilp.nn.architectures import (ARCHITECTURES, find_architecture, study_name, study_names,
                                      unknown_architecture)
from advmilp.nn.network import load_network


def test_a_study_name_is_parsed_into_its_grid_point():
    a = find_architecture("mlp-w16-d2-p25")
    assert a.hidden == (16, 16) and a.dropout == 0.25 and a.sizes == [784, 16, 16, 10]
    assert a.n_parameters == 784 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    assert a.weights_name == "study/mlp-w16-d2-p25" and a.thesis_accuracy is None
    assert find_architecture("MLP-W8-D1-P0").name == "mlp-w8-d1-p0"
    assert find_architecture("dnn3") is ARCHITECTURES["dnn3"] and ARCHITECTURES["dnn3"].weights_name == "dnn3"


@pytest.mark.parametrize("bad", ["mlp-w0-d1-p0", "mlp-w8-d0-p0", "mlp-w8-d1-p100", "mlp-w8-d1", "mlp-w8-d1-p-5",
                                 "dnn7", "mlp-w8-d1-p5x", ""])
def test_other_names_are_not_architectures(bad):
    assert find_architecture(bad) is None


def test_the_default_grid_and_its_names_round_trip():
    names = study_names()
    assert len(names) == 4 * 3 * 3 == len(set(names))
    assert names[0] == "mlp-w8-d1-p0" and names[-1] == "mlp-w64-d3-p50"
    assert all(find_architecture(n).name == n for n in names)
    assert study_name(32, 3, 0.5) == "mlp-w32-d3-p50"
    with pytest.raises(ValueError):
        study_name(8, 1, 0.333)


def test_study_weights_are_looked_up_in_their_folder(tmp_path):
    with pytest.raises(NetworkError, match=r"study/mlp-w8-d1-p0\.npz: no trained weights .*advmilp train --arch mlp-w8-d1-p0"):
        load_network("mlp-w8-d1-p0", tmp_path)
    with pytest.raises(NetworkError, match="unknown architecture 'mlp-w8'.*mlp-w<width>-d<depth>-p<dropout %>"):
        load_network("mlp-w8", tmp_path)
    assert "\n" not in unknown_architecture("x")


def test_the_committed_study_weights_match_their_names(mnist_test):
    """Every committed study network has the sizes its name says, the dropout in its metadata, and the
    test accuracy recorded there (our float64 forward pass on the 10,000 test images)."""
    from tests.nets import REPO

    folder = REPO / "models" / "study"
    files = sorted(folder.glob("*.npz"))
    if not files:
        pytest.skip("no study weights in this checkout")
    for f in files:
        arch = find_architecture(f.stem)
        net = load_network(f.stem, REPO / "models")
        assert net.sizes == arch.sizes and net.metadata["dropout"] == arch.dropout
        assert net.metadata["test_accuracy"] == net.accuracy(mnist_test.images, mnist_test.labels)
