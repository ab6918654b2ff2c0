"""Tree ensembles (a decision tree, a random forest, gradient-boosted trees) as plain arrays.

A `TreeEnsemble` scores an input x as ``s(x) = init + Σ_t weight_t · value_t[leaf_t(x)]`` (one vector
of ``n_classes`` per leaf) and predicts ``argmax s(x)`` (the first maximum, as numpy and scikit-learn).

    tree     one classifier tree: value = the leaf's class fractions, weight 1, init 0
    forest   T classifier trees: value = each tree's class fractions, weight 1/T (scikit-learn's
             predict_proba is this average), init 0
    gbt      multi-class gradient boosting: one regression tree per class per stage; tree (stage, k)
             adds learning_rate × its leaf value to class k only (value is zero elsewhere); init is
             the initial raw score (scikit-learn's decision_function = s)

A node goes left when ``x[feature] <= threshold`` (scikit-learn's rule).  scikit-learn compares the
input cast to float32 (its trees' dtype), so `predict` does the same by default (``dtype=float32``);
a witness is accepted only if its float64 and its float32 evaluation agree (`advmilp.methods.trees`).

On disk: ``NAME.npz`` (the concatenated node arrays, no pickles) beside ``NAME.json`` (metadata:
``format: advmilp-trees``, kind, sizes, training settings, test accuracy, versions and the sha256
of the arrays).  scikit-learn is imported only by `train` and `from_sklearn`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from advmilp.errors import AdvmilpError, NetworkError
from advmilp.nn.architectures import TREE_KINDS as KINDS, is_tree_arch  # noqa: F401  (the names' one home)

FORMAT = "advmilp-trees"
LEAF = -1
ARCH_PATTERN = re.compile(r"^(tree)-d(\d+)$|^(forest|gbt)-d(\d+)-n(\d+)$")


@dataclass(frozen=True)
class Tree:
    """One tree: per node its feature (-1 at a leaf), threshold, children (-1 at a leaf) and value
    (n_nodes, n_classes); node 0 is the root."""

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def __post_init__(self):
        n = len(self.feature)
        if n == 0 or any(len(a) != n for a in (self.threshold, self.left, self.right, self.value)):
            raise NetworkError("a tree's node arrays must be non-empty and of equal length")
        inner = self.feature >= 0
        if np.any(self.left[inner] <= np.flatnonzero(inner)) or np.any(self.right[inner] <= np.flatnonzero(inner)) \
                or np.any(self.left[inner] >= n) or np.any(self.right[inner] >= n):
            raise NetworkError("a tree's children must come after their parent and be nodes of the tree")
        if not (np.all(np.isfinite(self.threshold[inner])) and np.all(np.isfinite(self.value))):
            raise NetworkError("a tree contains NaN or infinite thresholds or values")

    @property
    def leaves(self) -> np.ndarray:
        return np.flatnonzero(self.feature < 0)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """The leaf reached by every row of X (compared as given: cast X first for float32 rules)."""
        node = np.zeros(len(X), dtype=np.int64)
        rows = np.arange(len(X))
        while True:
            f = self.feature[node]
            inner = f >= 0
            if not inner.any():
                return node
            go_left = X[rows[inner], f[inner]] <= self.threshold[node[inner]]
            node[inner] = np.where(go_left, self.left[node[inner]], self.right[node[inner]])


@dataclass(frozen=True)
class TreeEnsemble:
    kind: str
    trees: tuple[Tree, ...]
    weights: np.ndarray          # (T,)
    init: np.ndarray             # (n_classes,)
    n_features: int
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise NetworkError(f"unknown tree ensemble kind {self.kind!r} (choose from {', '.join(KINDS)})")
        if not self.trees or len(self.weights) != len(self.trees):
            raise NetworkError("a tree ensemble needs at least one tree and one weight per tree")
        for t in self.trees:
            if t.value.shape[1] != len(self.init):
                raise NetworkError("every tree's values need one entry per class")
            if t.feature.max() >= self.n_features:
                raise NetworkError(f"a tree splits on feature {t.feature.max()} of {self.n_features}")

    # ---- what the rest of advmilp reads of a model -------------------------------------------------
    is_tree_ensemble = True
    NETWORK_ONLY = ("layers", "n_inputs", "n_outputs", "forward", "preactivations", "input_gradient", "n_parameters")

    def __getattr__(self, name: str):
        """A command made for networks (bounds, feature, export, verify) ends with one clear error."""
        if name in TreeEnsemble.NETWORK_ONLY:
            raise NetworkError(f"{self.name} is a tree ensemble: it is attacked with 'advmilp attack --model FILE.json' "
                               "(or benchmarks/trees_bench.py); this command takes networks")
        raise AttributeError(name)

    @property
    def n_classes(self) -> int:
        return len(self.init)

    @property
    def sizes(self) -> list[int]:
        """[inputs, classes]: what `ProblemSpec.check_for` reads."""
        return [self.n_features, self.n_classes]

    @property
    def name(self) -> str:
        return str(self.metadata.get("architecture", self.kind))

    @property
    def n_leaves(self) -> int:
        return int(sum(len(t.leaves) for t in self.trees))

    @property
    def n_nodes(self) -> int:
        return int(sum(len(t.feature) for t in self.trees))

    def describe(self) -> str:
        depth = self.metadata.get("max_depth")
        return f"{self.kind}, {len(self.trees)} trees, {self.n_leaves} leaves" + (f", depth ≤ {depth}" if depth else "")

    # ---- evaluation ------------------------------------------------------------------------------------
    def scores(self, X: np.ndarray, dtype=np.float32) -> np.ndarray:
        """s(x) for a batch (N, n) or one input (n,); the input is cast to ``dtype`` before the
        comparisons (scikit-learn: float32), the sums are float64."""
        X = np.asarray(X, dtype=np.float64)
        single = X.ndim == 1
        X2 = np.atleast_2d(X).astype(dtype).astype(np.float64)
        s = np.tile(self.init, (len(X2), 1))
        for w, t in zip(self.weights, self.trees):
            s += w * t.value[t.apply(X2)]
        return s[0] if single else s

    def predict(self, X: np.ndarray, dtype=np.float32) -> np.ndarray:
        return np.argmax(self.scores(X, dtype), axis=-1)

    def apply(self, X: np.ndarray, dtype=np.float32) -> np.ndarray:
        """(N, T) leaf indices (one input: (T,))."""
        X = np.asarray(X, dtype=np.float64)
        X2 = np.atleast_2d(X).astype(dtype).astype(np.float64)
        out = np.stack([t.apply(X2) for t in self.trees], axis=1)
        return out[0] if X.ndim == 1 else out

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean(self.predict(images) == labels))

    # ---- identity and files ----------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        counts = np.array([len(t.feature) for t in self.trees], dtype=np.int64)
        return {"kind": np.array(self.kind), "n_features": np.array(self.n_features, dtype=np.int64),
                "node_counts": counts, "weights": np.asarray(self.weights, dtype=np.float64),
                "init": np.asarray(self.init, dtype=np.float64),
                "feature": np.concatenate([t.feature for t in self.trees]).astype(np.int32),
                "threshold": np.concatenate([t.threshold for t in self.trees]).astype(np.float64),
                "left": np.concatenate([t.left for t in self.trees]).astype(np.int32),
                "right": np.concatenate([t.right for t in self.trees]).astype(np.int32),
                "value": np.concatenate([t.value for t in self.trees]).astype(np.float64)}

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for key, arr in sorted(self.arrays().items()):
            h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def short_hash(self) -> str:
        return self.content_hash()[:12]

    @classmethod
    def from_arrays(cls, a: dict, metadata: dict | None = None) -> "TreeEnsemble":
        try:
            counts = np.asarray(a["node_counts"], dtype=np.int64)
            ends = np.cumsum(counts)
            starts = ends - counts
            trees = tuple(Tree(np.asarray(a["feature"][s:e], np.int64), np.asarray(a["threshold"][s:e], np.float64),
                               np.asarray(a["left"][s:e], np.int64), np.asarray(a["right"][s:e], np.int64),
                               np.asarray(a["value"][s:e], np.float64)) for s, e in zip(starts, ends))
            return cls(str(a["kind"]), trees, np.asarray(a["weights"], np.float64), np.asarray(a["init"], np.float64),
                       int(a["n_features"]), dict(metadata or {}))
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise NetworkError(f"not a tree ensemble's arrays ({type(exc).__name__}: {exc})") from exc

    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> Path:
        """Write ``path`` (.json metadata) and the arrays beside it (.npz); returns the json path."""
        path = Path(path).with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.metadata)
        meta.update(metadata or {})
        meta.update(format=FORMAT, kind=self.kind, trees=len(self.trees), leaves=self.n_leaves, nodes=self.n_nodes,
                    n_features=self.n_features, n_classes=self.n_classes, sha256=self.content_hash())
        npz = path.with_suffix(".npz")
        tmp = npz.with_name(npz.name + ".tmp.npz")
        np.savez_compressed(tmp, **self.arrays())
        os.replace(tmp, npz)
        path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TreeEnsemble":
        path = Path(path).with_suffix(".json")
        if not path.is_file():
            raise NetworkError(f"{path}: tree ensemble file not found")
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise NetworkError(f"{path}: invalid JSON ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise NetworkError(f"{path}: not a tree ensemble saved by advmilp (no \"format\": \"{FORMAT}\"); "
                               "networks are .npz, .onnx or .keras files")
        npz = path.with_suffix(".npz")
        if not npz.is_file():
            raise NetworkError(f"{npz}: the arrays of {path.name} are missing")
        try:
            with np.load(npz, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # zip/npz corruption surfaces as many types
            raise NetworkError(f"{npz}: cannot read the tree arrays ({exc})") from exc
        try:
            ens = cls.from_arrays(arrays, meta)
        except NetworkError as exc:
            raise NetworkError(f"{npz}: {exc}") from exc
        if meta.get("sha256") and meta["sha256"] != ens.content_hash():
            raise NetworkError(f"{npz}: arrays do not match the sha256 in {path.name} (corrupted or edited)")
        return ens


def is_tree_file(path: str | os.PathLike) -> bool:
    """A ``.json`` model path (tree ensembles are loaded by their metadata file)."""
    return Path(path).suffix.lower() == ".json"


# ---- scikit-learn -----------------------------------------------------------------------------------
def _sk_tree(t, n_classes: int, classifier: bool, column: int | None = None, scale: float = 1.0) -> Tree:
    """A fitted sklearn ``tree_`` → `Tree`.  Classifier: leaf values normalised to class fractions;
    regressor (boosting): its scalar value × scale in class ``column``."""
    feature = np.where(t.children_left >= 0, t.feature, LEAF).astype(np.int64)
    left = np.where(feature >= 0, t.children_left, LEAF).astype(np.int64)
    right = np.where(feature >= 0, t.children_right, LEAF).astype(np.int64)
    threshold = np.where(feature >= 0, t.threshold, 0.0).astype(np.float64)
    if classifier:
        v = np.asarray(t.value[:, 0, :], dtype=np.float64)
        value = v / np.maximum(v.sum(axis=1, keepdims=True), 1e-300)
    else:
        value = np.zeros((len(feature), n_classes))
        value[:, column] = scale * np.asarray(t.value[:, 0, 0], dtype=np.float64)
    value[feature >= 0] = 0.0      # only leaves score (and zeros compress)
    return Tree(feature, threshold, left, right, value)


def from_sklearn(model, metadata: dict | None = None) -> TreeEnsemble:
    """A fitted DecisionTreeClassifier, RandomForestClassifier or GradientBoostingClassifier (classes
    0..K-1) → `TreeEnsemble` with the same predictions."""
    kind = type(model).__name__
    classes = np.asarray(getattr(model, "classes_", []))
    if not np.array_equal(classes, np.arange(len(classes))):
        raise NetworkError(f"{kind}: classes must be 0..K-1 (got {classes.tolist()})")
    K, n = len(classes), int(model.n_features_in_)
    if kind == "DecisionTreeClassifier":
        return TreeEnsemble("tree", (_sk_tree(model.tree_, K, True),), np.ones(1), np.zeros(K), n, dict(metadata or {}))
    if kind == "RandomForestClassifier":
        trees = tuple(_sk_tree(e.tree_, K, True) for e in model.estimators_)
        return TreeEnsemble("forest", trees, np.full(len(trees), 1.0 / len(trees)), np.zeros(K), n, dict(metadata or {}))
    if kind == "GradientBoostingClassifier":
        if K < 3:
            raise NetworkError("GradientBoostingClassifier: only the multi-class model (one tree per class) is supported")
        lr = float(model.learning_rate)
        stages = model.estimators_
        trees = tuple(_sk_tree(stages[s, k].tree_, K, False, k, lr) for s in range(stages.shape[0]) for k in range(K))
        x0 = np.zeros((1, n))
        init = model.decision_function(x0)[0] - lr * sum(stages[s, k].predict(x0)[0] * np.eye(K)[k]
                                                          for s in range(stages.shape[0]) for k in range(K))
        return TreeEnsemble("gbt", trees, np.ones(len(trees)), np.asarray(init, np.float64), n, dict(metadata or {}))
    raise NetworkError(f"{kind} is not supported (DecisionTreeClassifier, RandomForestClassifier, "
                       "GradientBoostingClassifier)")


def import_sklearn():
    try:
        import sklearn
    except ImportError as exc:
        raise AdvmilpError("tree ensembles are trained with scikit-learn: pip install 'advmilp[trees]'") from exc
    return sklearn


@dataclass(frozen=True)
class TreeArch:
    """A tree ensemble to train: ``tree-d8``, ``forest-d8-n20``, ``gbt-d4-n10`` (depth, trees or stages)."""

    kind: str
    depth: int
    n: int = 1

    @classmethod
    def parse(cls, name: str) -> "TreeArch":
        m = ARCH_PATTERN.match(name.lower())
        if not m:
            raise AdvmilpError(f"unknown tree architecture {name!r} (tree-d<depth>, forest-d<depth>-n<trees>, "
                               "gbt-d<depth>-n<stages>)")
        if m.group(1):
            arch = cls("tree", int(m.group(2)))
        else:
            arch = cls(m.group(3), int(m.group(4)), int(m.group(5)))
        if not 1 <= arch.depth <= 30 or not 1 <= arch.n <= 1000:
            raise AdvmilpError(f"{name}: depth must be 1..30 and the number of trees 1..1000")
        return arch

    @property
    def name(self) -> str:
        return f"tree-d{self.depth}" if self.kind == "tree" else f"{self.kind}-d{self.depth}-n{self.n}"


def data_hash(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the training pixels (as bytes 0..255) and labels."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(np.round(np.asarray(images) * 255).astype(np.uint8)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(labels, dtype=np.int64)).tobytes())
    return h.hexdigest()


def train(name: str, train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray | None = None,
          test_labels: np.ndarray | None = None, seed: int = 0, threads: int = 1,
          log: Callable[[str], None] = print) -> TreeEnsemble:
    """Train ``name`` (`TreeArch`) with scikit-learn; the metadata records the settings, the data's
    sha256, the versions and the test accuracy computed by `TreeEnsemble.predict` (checked equal to
    scikit-learn's own predictions on the test set)."""
    arch = TreeArch.parse(name)
    sklearn = import_sklearn()
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    if arch.kind == "tree":
        model = DecisionTreeClassifier(max_depth=arch.depth, random_state=seed)
        settings = {}
    elif arch.kind == "forest":
        model = RandomForestClassifier(n_estimators=arch.n, max_depth=arch.depth, random_state=seed, n_jobs=threads)
        settings = {"max_features": "sqrt"}
    else:
        settings = {"learning_rate": 0.3, "max_features": "sqrt", "subsample": 0.5}
        model = GradientBoostingClassifier(n_estimators=arch.n, max_depth=arch.depth, random_state=seed, **settings)
    start = time.perf_counter()
    model.fit(train_images, train_labels)
    elapsed = time.perf_counter() - start
    meta = {"architecture": arch.name, "estimator": type(model).__name__, "max_depth": arch.depth,
            "n_estimators": arch.n, **settings, "seed": seed, "train_images": int(len(train_labels)),
            "train_data_sha256": data_hash(train_images, train_labels), "training_time_s": round(elapsed, 2),
            "sklearn_version": sklearn.__version__, "numpy_version": np.__version__,
            "python_version": platform.python_version(), "host": platform.node()}
    ens = from_sklearn(model, meta)
    if test_images is not None:
        ours = ens.predict(test_images)
        theirs = model.predict(test_images)
        if not np.array_equal(ours, theirs):
            raise AdvmilpError(f"{arch.name}: the converted ensemble disagrees with scikit-learn on "
                               f"{int(np.sum(ours != theirs))} test images")
        ens.metadata["test_accuracy"] = float(np.mean(ours == test_labels))
        ens.metadata["test_images"] = int(len(test_labels))
        log(f"{arch.name}: test accuracy {ens.metadata['test_accuracy']:.4f}, {ens.describe()}, "
            f"trained in {elapsed:.1f} s")
    return ens
