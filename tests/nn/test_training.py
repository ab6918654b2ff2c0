import json

import pytest

pytestmark = pytest.mark.tensorflow


def test_one_epoch_on_a_subset_writes_metadata(tmp_path, mnist_test):
    pytest.importorskip("tensorflow")
    from advmilp.data.mnist import Split
    from advmilp.nn.training import train_and_save

    # 1,000 training images (taken from the test split to keep the fixture small)
    train = Split(mnist_test.images[:1000], mnist_test.labels[:1000])
    lines = []
    path = train_and_save("dnn1", tmp_path, epochs=1, seed=1, threads=1,
                          train_split=train, test_split=mnist_test, log=lines.append)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["architecture"] == "dnn1" and meta["epochs"] == 1 and meta["train_images"] == 1000
    assert meta["layer_sizes"] == [784, 8, 8, 8, 10]
    assert 0.0 <= meta["test_accuracy"] <= 1.0
    assert any("epoch   1/1" in line for line in lines)
    assert any("thesis 0.93" in line for line in lines)


def test_unknown_architecture():
    from advmilp.errors import AdvmilpError
    from advmilp.nn.training import train

    with pytest.raises(AdvmilpError, match="unknown architecture"):
        train("dnn7")


def test_a_study_network_trains_with_dropout_into_its_folder(tmp_path, mnist_test):
    pytest.importorskip("tensorflow")
    from advmilp.data.mnist import Split
    from advmilp.nn.training import import_tensorflow, build_model, train_and_save
    from advmilp.nn.architectures import find_architecture

    _, keras = import_tensorflow()
    kinds = [type(layer).__name__ for layer in build_model(find_architecture("mlp-w8-d2-p25"), keras).layers]
    assert kinds == ["Dense", "Dropout", "Dense", "Dropout", "Dense"]
    train = Split(mnist_test.images[:500], mnist_test.labels[:500])
    lines = []
    path = train_and_save("mlp-w8-d2-p25", tmp_path, epochs=1, seed=0, threads=1,
                          train_split=train, test_split=mnist_test, log=lines.append)
    assert path == tmp_path / "study" / "mlp-w8-d2-p25.npz"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["dropout"] == 0.25 and meta["layer_sizes"] == [784, 8, 8, 10] and "thesis_accuracy" not in meta
    assert not any("thesis" in line for line in lines)
