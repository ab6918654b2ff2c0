"""Tree ensembles as arrays: prediction rule, files, architecture names, scikit-learn conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from advmilp.errors import AdvmilpError, NetworkError
from advmilp.nn.interchange import load_any
from advmilp.nn.trees import TreeArch, TreeEnsemble, is_tree_arch
from tests.trees_material import hand_tree, random_forest, random_gbt


def test_a_node_goes_left_when_x_is_at_most_its_threshold():
    ens = hand_tree()
    X = np.array([[0.2, 0.1], [0.2, 0.5], [0.2, 0.51], [0.5, 0.3], [0.51, 0.3], [0.51, 0.31]])
    assert ens.apply(X, np.float64)[:, 0].tolist() == [2, 2, 3, 2, 5, 6]
    assert ens.predict(X, np.float64).tolist() == [0, 0, 1, 0, 0, 1]
    np.testing.assert_array_equal(ens.scores(X[2], np.float64), [0.0, 1.0])


def test_the_default_rule_compares_the_input_cast_to_float32():
    ens = hand_tree()
    x = np.array([0.2, 0.5 + 1e-12])      # > 0.5 in float64, == 0.5 in float32
    assert ens.predict(x, np.float64) == 1 and ens.predict(x) == 0


def test_forest_and_boosting_scores_are_weighted_sums_of_leaf_values():
    rng = np.random.default_rng(0)
    X = rng.random((50, 3))
    for ens in (random_forest(1), random_gbt(2)):
        leaves = ens.apply(X, np.float64)
        expected = ens.init + sum(w * t.value[leaves[:, k]] for k, (w, t) in enumerate(zip(ens.weights, ens.trees)))
        np.testing.assert_allclose(ens.scores(X, np.float64), expected)


def test_save_load_round_trip_and_corruption(tmp_path):
    ens = random_gbt(3)
    path = ens.save(tmp_path / "g.json", {"note": "x"})
    back = load_any(path)
    assert isinstance(back, TreeEnsemble) and back.content_hash() == ens.content_hash()
    assert back.metadata["note"] == "x" and back.metadata["format"] == "advmilp-trees"
    X = np.random.default_rng(1).random((20, 3))
    np.testing.assert_array_equal(back.scores(X), ens.scores(X))
    meta = json.loads(path.read_text())
    meta["sha256"] = "0" * 64
    path.write_text(json.dumps(meta))
    with pytest.raises(NetworkError, match="do not match the sha256"):
        TreeEnsemble.load(path)
    other = tmp_path / "other.json"
    other.write_text("{}")
    with pytest.raises(NetworkError, match="not a tree ensemble saved by advmilp"):
        load_any(other)
    with pytest.raises(NetworkError, match="not found"):
        load_any(tmp_path / "missing.json")


def test_malformed_trees_are_refused():
    t = hand_tree().trees[0]
    from advmilp.nn.trees import Tree

    with pytest.raises(NetworkError, match="children"):
        Tree(t.feature, t.threshold, np.array([1, 0, -1, -1, 5, -1, -1]), t.right, t.value)
    with pytest.raises(NetworkError, match="NaN"):
        Tree(t.feature, np.array([np.nan, 0.5, 0, 0, 0.3, 0, 0]), t.left, t.right, t.value)


def test_architecture_names():
    assert TreeArch.parse("tree-d8") == TreeArch("tree", 8, 1)
    assert TreeArch.parse("forest-d10-n100").name == "forest-d10-n100"
    assert TreeArch.parse("GBT-d4-n20") == TreeArch("gbt", 4, 20)
    assert is_tree_arch("forest-d8-n20") and not is_tree_arch("dnn1")
    for bad in ("tree", "forest-d8", "tree-d0", "gbt-d4-n0", "tree-d8-n3"):
        with pytest.raises(AdvmilpError):
            TreeArch.parse(bad)


@pytest.mark.parametrize("kind", ["tree", "forest", "gbt"])
def test_converted_scikit_learn_models_predict_as_scikit_learn(kind):
    pytest.importorskip("sklearn")
    from advmilp.nn.trees import train

    rng = np.random.default_rng(0)
    X = np.round(rng.random((300, 6)) * 255) / 255
    y = (X[:, 0] + X[:, 1] > 1).astype(int) + (X[:, 2] > 0.5).astype(int)
    name = {"tree": "tree-d4", "forest": "forest-d3-n5", "gbt": "gbt-d2-n3"}[kind]
    ens = train(name, X[:200], y[:200], X[200:], y[200:], log=lambda m: None)   # checks agreement itself
    assert ens.kind == kind and 0 <= ens.metadata["test_accuracy"] <= 1
    assert len(ens.metadata["train_data_sha256"]) == 64 and ens.metadata["sklearn_version"]
    if kind == "gbt":
        assert len(ens.trees) == 9   # 3 stages × 3 classes
