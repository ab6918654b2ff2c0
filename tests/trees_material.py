"""Hand-built tree ensembles for the tree tests (no scikit-learn needed)."""

from __future__ import annotations

import numpy as np

from advmilp.nn.trees import Tree, TreeEnsemble

L = -1


def hand_tree() -> TreeEnsemble:
    """Two features, depth 2, two classes:

        x0 ≤ 0.5 ?  yes: x1 ≤ 0.5 ? yes: class 0 (leaf 2)   no: class 1 (leaf 3)
                    no:  x1 ≤ 0.3 ? yes: class 0 (leaf 5)   no: class 1 (leaf 6)

    From x̄ = (0.2, 0.1) (class 0) class 1 is reached by x1 > 0.5 (L1 = L∞ ≈ 0.4) or by x0 > 0.5 and
    x1 > 0.3 (L1 ≈ 0.5, L∞ ≈ 0.3): the minimal L1 and L∞ examples differ."""
    feature = np.array([0, 1, L, L, 1, L, L])
    threshold = np.array([0.5, 0.5, 0, 0, 0.3, 0, 0])
    left = np.array([1, 2, L, L, 5, L, L])
    right = np.array([4, 3, L, L, 6, L, L])
    value = np.array([[0, 0], [0, 0], [1, 0], [0, 1], [0, 0], [1, 0], [0, 1]], dtype=float)
    return TreeEnsemble("tree", (Tree(feature, threshold, left, right, value),), np.ones(1), np.zeros(2), 2,
                        {"architecture": "hand-tree"})


def random_tree(rng, n_features: int, n_classes: int, depth: int, regression_class: int | None = None) -> Tree:
    """A complete random tree of ``depth`` with thresholds on a coarse grid (so trees share thresholds)."""
    feature, threshold, left, right, value = [], [], [], [], []

    def node(d):
        i = len(feature)
        feature.append(L), threshold.append(0.0), left.append(L), right.append(L)
        value.append(np.zeros(n_classes))
        if d == depth:
            if regression_class is None:
                v = rng.random(n_classes)
                value[i] = v / v.sum()
            else:
                value[i][regression_class] = rng.normal()
            return i
        feature[i] = int(rng.integers(n_features))
        threshold[i] = float(rng.integers(1, 10)) / 10 + 0.05
        left[i] = node(d + 1)
        right[i] = node(d + 1)
        return i

    node(0)
    return Tree(np.array(feature), np.array(threshold), np.array(left), np.array(right), np.array(value))


def random_forest(seed: int, n_features=3, n_classes=3, n_trees=3, depth=2) -> TreeEnsemble:
    rng = np.random.default_rng(seed)
    trees = tuple(random_tree(rng, n_features, n_classes, depth) for _ in range(n_trees))
    return TreeEnsemble("forest", trees, np.full(n_trees, 1 / n_trees), np.zeros(n_classes), n_features,
                        {"architecture": f"random-forest{seed}"})


def random_gbt(seed: int, n_features=3, n_classes=3, stages=2, depth=2) -> TreeEnsemble:
    rng = np.random.default_rng(seed)
    trees = tuple(random_tree(rng, n_features, n_classes, depth, k) for _ in range(stages) for k in range(n_classes))
    return TreeEnsemble("gbt", trees, np.ones(len(trees)), rng.normal(size=n_classes), n_features,
                        {"architecture": f"random-gbt{seed}"})
